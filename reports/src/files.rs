//! The report's files, rendered in memory from a statement. CSV amounts are decimal strings
//! with the currency's minor digits; Parquet carries minor units as integers beside a
//! currency column. Nothing here reads a clock, so the same statement gives the same bytes.

use chrono::{DateTime, Utc};
use ledger::money::format_minor;
use polars::prelude::*;

use crate::ReportError;
use crate::csv::{Cell, CsvTable};
use crate::statement::Statement;

/// One file of a report, relative to its version's prefix.
pub struct ReportFile {
    pub path: String,
    pub bytes: Vec<u8>,
    /// Data rows (header excluded); `None` for the page.
    pub rows: Option<u64>,
}

pub const SETTLEMENT_COLUMNS: [&str; 21] = [
    "business_date",
    "operator_id",
    "operator_name",
    "currency",
    "sales_count",
    "sales_amount",
    "voids_count",
    "voids_amount",
    "net_sales",
    "commission_rate",
    "commission",
    "commission_tax",
    "net_due",
    "due_date",
    "matched_count",
    "exception_count",
    "exception_amount",
    "adjustments",
    "payment_reference",
    "status",
    "report_kind",
];

pub const REMITTANCE_COLUMNS: [&str; 18] = [
    "business_date",
    "bank_account",
    "bank_ref",
    "booking_date",
    "value_date",
    "direction",
    "amount",
    "currency",
    "payer_name",
    "payer_account",
    "reference",
    "kind",
    "operator_id",
    "matched_by",
    "applied_to",
    "actor",
    "transaction_id",
    "report_kind",
];

pub const AGING_COLUMNS: [&str; 12] = [
    "business_date",
    "operator_id",
    "currency",
    "owed",
    "not_due",
    "days_1_30",
    "days_31_60",
    "days_61_90",
    "over_90",
    "credit",
    "oldest_due",
    "report_kind",
];

pub const OPEN_EXCEPTION_COLUMNS: [&str; 14] = [
    "business_date",
    "case_id",
    "found_on",
    "age_days",
    "operator_id",
    "operator_ref",
    "case",
    "state",
    "ledger_card_id",
    "file_card_id",
    "ledger_amount",
    "file_amount",
    "difference",
    "report_kind",
];

pub const ADJUSTMENT_COLUMNS: [&str; 12] = [
    "business_date",
    "transaction_id",
    "kind",
    "case_id",
    "found_on",
    "operator_id",
    "operator_ref",
    "document",
    "amount",
    "actor",
    "posted_at",
    "report_kind",
];

pub const DISCREPANCY_COLUMNS: [&str; 12] = [
    "business_date",
    "operator_id",
    "case",
    "operator_ref",
    "ledger_card_id",
    "file_card_id",
    "ledger_amount",
    "file_amount",
    "difference",
    "ledger_occurred_at",
    "file_occurred_at",
    "report_kind",
];

pub const FARE_COLUMNS: [&str; 9] = [
    "business_date",
    "transport_operator_id",
    "currency",
    "validations_count",
    "validations_amount",
    "online_payments_count",
    "online_payments_amount",
    "revenue",
    "report_kind",
];

pub const NEGATIVE_CARD_COLUMNS: [&str; 5] = [
    "business_date",
    "card_id",
    "balance",
    "validations",
    "report_kind",
];

fn number(n: i64) -> Cell<'static> {
    Cell::Number(n.to_string())
}

/// Every file of the report but the manifest, in a fixed order.
pub fn render(statement: &Statement) -> Result<Vec<ReportFile>, ReportError> {
    let mut files = Vec::new();
    settlement(statement, &mut files)?;
    discrepancies(statement, &mut files)?;
    fares(statement, &mut files)?;
    files.push(device_gaps(statement));
    files.push(negative_cards(statement));
    files.push(hotlist_violations(statement));
    open_exceptions(statement, &mut files)?;
    files.push(adjustments(statement));
    files.push(remittances_file(statement));
    receivables_aging(statement, &mut files)?;
    files.push(ReportFile {
        path: "index.html".into(),
        bytes: crate::page::render(statement)?.into_bytes(),
        rows: None,
    });
    Ok(files)
}

fn csv_file(path: String, table: CsvTable) -> ReportFile {
    let rows = table.rows();
    ReportFile {
        path,
        bytes: table.into_bytes(),
        rows: Some(rows),
    }
}

/// Every data file says whether it is final or provisional, in its last column: a
/// provisional file read out of its folder must not pass for a final one.
fn parquet_file(s: &Statement, path: &str, frame: DataFrame) -> Result<ReportFile, ReportError> {
    let mut frame = frame
        .lazy()
        .with_column(lit(s.meta.kind.as_str()).alias("report_kind"))
        .collect()?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut frame)?;
    Ok(ReportFile {
        path: path.into(),
        bytes,
        rows: Some(frame.height() as u64),
    })
}

/// Days since the epoch, as polars stores dates.
fn epoch_days(date: ledger::BusinessDate) -> i32 {
    reconcile::source::days(date)
}

fn settlement(s: &Statement, files: &mut Vec<ReportFile>) -> Result<(), ReportError> {
    let exp = s.currency.exponent();
    let money = |n: i64| Cell::Number(format_minor(n, exp));
    let date = s.date.to_string();
    let mut summary = CsvTable::new(&SETTLEMENT_COLUMNS);
    for l in &s.lines {
        let reference = l.payment_reference(s.date);
        let cells = || {
            [
                Cell::Number(date.clone()),
                Cell::Text(&l.operator_id),
                Cell::Text(&l.operator_name),
                Cell::Text(s.currency.code()),
                number(l.sales.sales_count),
                money(l.sales.sales_amount),
                number(l.sales.voids_count),
                money(l.sales.voids_amount),
                money(l.sales.net()),
                Cell::Number(l.commission_rate.to_string()),
                money(l.settlement.commission),
                money(l.settlement.commission_tax),
                money(l.settlement.net_due),
                Cell::Number(l.due_date.to_string()),
                number(l.matched_count),
                number(l.exception_count),
                money(l.exception_amount),
                money(l.adjustments),
                Cell::Text(&reference),
                Cell::Text(l.status()),
                Cell::Text(s.meta.kind.as_str()),
            ]
        };
        summary.row(cells());
        let mut one = CsvTable::new(&SETTLEMENT_COLUMNS);
        one.row(cells());
        files.push(csv_file(format!("settlement/{}.csv", l.operator_id), one));
    }
    // The summary first: it is what finance opens.
    files.insert(0, csv_file("settlement_summary.csv".into(), summary));
    let ls = &s.lines;
    let ints =
        |f: fn(&crate::statement::SettlementLine) -> i64| ls.iter().map(f).collect::<Vec<_>>();
    let frame = df!(
        "business_date" => vec![epoch_days(s.date); ls.len()],
        "operator_id" => ls.iter().map(|l| l.operator_id.as_str()).collect::<Vec<_>>(),
        "operator_name" => ls.iter().map(|l| l.operator_name.as_str()).collect::<Vec<_>>(),
        "currency" => vec![s.currency.code(); ls.len()],
        "sales_count" => ints(|l| l.sales.sales_count),
        "sales_amount" => ints(|l| l.sales.sales_amount),
        "voids_count" => ints(|l| l.sales.voids_count),
        "voids_amount" => ints(|l| l.sales.voids_amount),
        "net_sales" => ints(|l| l.sales.net()),
        "commission_rate" => ls.iter().map(|l| l.commission_rate.to_string()).collect::<Vec<_>>(),
        "commission" => ints(|l| l.settlement.commission),
        "commission_tax" => ints(|l| l.settlement.commission_tax),
        "net_due" => ints(|l| l.settlement.net_due),
        "due_date" => ls.iter().map(|l| epoch_days(l.due_date)).collect::<Vec<_>>(),
        "matched_count" => ints(|l| l.matched_count),
        "exception_count" => ints(|l| l.exception_count),
        "exception_amount" => ints(|l| l.exception_amount),
        "adjustments" => ints(|l| l.adjustments),
        "payment_reference" => ls.iter().map(|l| l.payment_reference(s.date)).collect::<Vec<_>>(),
        "status" => ls.iter().map(|l| l.status()).collect::<Vec<_>>(),
    )?
    .lazy()
    .with_columns([
        col("business_date").cast(DataType::Date),
        col("due_date").cast(DataType::Date),
    ])
    .collect()?;
    files.insert(1, parquet_file(s, "settlement_summary.parquet", frame)?);
    Ok(())
}

fn instant(micros: Option<i64>) -> Cell<'static> {
    match micros.and_then(DateTime::<Utc>::from_timestamp_micros) {
        Some(t) => Cell::Number(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        None => Cell::Empty,
    }
}

fn naive_epoch_days(date: chrono::NaiveDate) -> i32 {
    epoch_days(ledger::BusinessDate::from_naive(date))
}

/// Every case open at the end of the date, whatever date it was found on, with its age.
fn open_exceptions(s: &Statement, files: &mut Vec<ReportFile>) -> Result<(), ReportError> {
    let exp = s.currency.exponent();
    let money = |n: Option<i64>| n.map_or(Cell::Empty, |n| Cell::Number(format_minor(n, exp)));
    let date = s.date.to_string();
    let mut table = CsvTable::new(&OPEN_EXCEPTION_COLUMNS);
    for o in &s.open_cases {
        let c = &o.case;
        table.row([
            Cell::Number(date.clone()),
            number(c.id),
            Cell::Number(c.business_date.to_string()),
            number(o.age_days),
            Cell::Text(&c.operator_id),
            Cell::Text(&c.operator_ref),
            Cell::Text(&c.case_name),
            Cell::Text(o.state.as_str()),
            opt_text(c.ledger_card_id.as_deref()),
            opt_text(c.file_card_id.as_deref()),
            money(c.ledger_amount),
            money(c.file_amount),
            money(Some(c.difference)),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    files.push(csv_file("exceptions_open.csv".into(), table));
    let os: Vec<_> = s.open_cases.iter().collect();
    let frame = df!(
        "business_date" => vec![epoch_days(s.date); os.len()],
        "case_id" => os.iter().map(|o| o.case.id).collect::<Vec<_>>(),
        "found_on" => os.iter().map(|o| naive_epoch_days(o.case.business_date)).collect::<Vec<_>>(),
        "age_days" => os.iter().map(|o| o.age_days).collect::<Vec<_>>(),
        "operator_id" => os.iter().map(|o| o.case.operator_id.as_str()).collect::<Vec<_>>(),
        "operator_ref" => os.iter().map(|o| o.case.operator_ref.as_str()).collect::<Vec<_>>(),
        "case" => os.iter().map(|o| o.case.case_name.as_str()).collect::<Vec<_>>(),
        "state" => os.iter().map(|o| o.state.as_str()).collect::<Vec<_>>(),
        "ledger_card_id" => os.iter().map(|o| o.case.ledger_card_id.as_deref()).collect::<Vec<_>>(),
        "file_card_id" => os.iter().map(|o| o.case.file_card_id.as_deref()).collect::<Vec<_>>(),
        "currency" => vec![s.currency.code(); os.len()],
        "ledger_amount" => os.iter().map(|o| o.case.ledger_amount).collect::<Vec<_>>(),
        "file_amount" => os.iter().map(|o| o.case.file_amount).collect::<Vec<_>>(),
        "difference" => os.iter().map(|o| o.case.difference).collect::<Vec<_>>(),
    )?
    .lazy()
    .with_columns([
        col("business_date").cast(DataType::Date),
        col("found_on").cast(DataType::Date),
    ])
    .collect()?;
    files.push(parquet_file(s, "exceptions_open.parquet", frame)?);
    Ok(())
}

/// Every adjustment and write-off posted on the date, with its case.
fn adjustments(s: &Statement) -> ReportFile {
    let exp = s.currency.exponent();
    let mut table = CsvTable::new(&ADJUSTMENT_COLUMNS);
    for a in &s.adjustments {
        let case = a.case.as_ref();
        table.row([
            Cell::Number(s.date.to_string()),
            number(a.transaction_id),
            Cell::Text(a.kind),
            case.map_or(Cell::Empty, |c| number(c.id)),
            case.map_or(Cell::Empty, |c| Cell::Number(c.business_date.to_string())),
            Cell::Text(&a.operator_id),
            opt_text(case.map(|c| c.operator_ref.as_str())),
            Cell::Text(&a.document),
            Cell::Number(format_minor(a.amount, exp)),
            Cell::Text(&a.actor),
            instant(Some(a.posted_at.timestamp_micros())),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    csv_file("adjustments.csv".into(), table)
}

/// Every bank entry posted on the date (and every assignment made on it), and what it paid.
fn remittances_file(s: &Statement) -> ReportFile {
    let exp = s.currency.exponent();
    let mut table = CsvTable::new(&REMITTANCE_COLUMNS);
    for r in &s.remittances {
        let applied = r.applied_to_text(|n| format_minor(n, exp));
        table.row([
            Cell::Number(s.date.to_string()),
            Cell::Text(&r.bank_account),
            Cell::Text(&r.bank_ref),
            Cell::Number(r.booking_date.to_string()),
            Cell::Number(r.value_date.to_string()),
            Cell::Text(&r.direction),
            Cell::Number(format_minor(r.amount, exp)),
            Cell::Text(&r.currency),
            opt_text(r.payer_name.as_deref()),
            opt_text(r.payer_account.as_deref()),
            opt_text(r.reference.as_deref()),
            Cell::Text(&r.kind),
            opt_text(r.operator_id.as_deref()),
            opt_text(r.matched_by.as_deref()),
            Cell::Number(applied),
            opt_text(r.actor.as_deref()),
            number(r.transaction_id),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    csv_file("remittances.csv".into(), table)
}

/// Per operator, what it owes at the end of the date: not yet due, and overdue by bucket.
fn receivables_aging(s: &Statement, files: &mut Vec<ReportFile>) -> Result<(), ReportError> {
    let exp = s.currency.exponent();
    let money = |n: i64| Cell::Number(format_minor(n, exp));
    let mut table = CsvTable::new(&AGING_COLUMNS);
    for a in &s.aging {
        table.row([
            Cell::Number(s.date.to_string()),
            Cell::Text(&a.operator_id),
            Cell::Text(s.currency.code()),
            money(a.owed),
            money(a.not_due),
            money(a.days_1_30),
            money(a.days_31_60),
            money(a.days_61_90),
            money(a.over_90),
            money(a.credit),
            a.oldest_due
                .map_or(Cell::Empty, |d| Cell::Number(d.to_string())),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    files.push(csv_file("receivables_aging.csv".into(), table));
    let rows = &s.aging;
    let ints = |f: fn(&remittances::AgingRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let frame = df!(
        "business_date" => vec![epoch_days(s.date); rows.len()],
        "operator_id" => rows.iter().map(|a| a.operator_id.as_str()).collect::<Vec<_>>(),
        "currency" => vec![s.currency.code(); rows.len()],
        "owed" => ints(|a| a.owed),
        "not_due" => ints(|a| a.not_due),
        "days_1_30" => ints(|a| a.days_1_30),
        "days_31_60" => ints(|a| a.days_31_60),
        "days_61_90" => ints(|a| a.days_61_90),
        "over_90" => ints(|a| a.over_90),
        "credit" => ints(|a| a.credit),
        "oldest_due" => rows.iter().map(|a| a.oldest_due.map(naive_epoch_days)).collect::<Vec<_>>(),
    )?
    .lazy()
    .with_columns([
        col("business_date").cast(DataType::Date),
        col("oldest_due").cast(DataType::Date),
    ])
    .collect()?;
    files.push(parquet_file(s, "receivables_aging.parquet", frame)?);
    Ok(())
}

fn opt_text(v: Option<&str>) -> Cell<'_> {
    v.map_or(Cell::Empty, Cell::Text)
}

fn discrepancies(s: &Statement, files: &mut Vec<ReportFile>) -> Result<(), ReportError> {
    let exp = s.currency.exponent();
    let money = |n: Option<i64>| n.map_or(Cell::Empty, |n| Cell::Number(format_minor(n, exp)));
    let d = &s.discrepancies;
    let c = s.discrepancy_columns()?;
    let date = s.date.to_string();
    let mut table = CsvTable::new(&DISCREPANCY_COLUMNS);
    for i in 0..d.height() {
        table.row([
            Cell::Number(date.clone()),
            opt_text(c.operator_id.get(i)),
            opt_text(c.case.get(i)),
            opt_text(c.operator_ref.get(i)),
            opt_text(c.ledger_card_id.get(i)),
            opt_text(c.file_card_id.get(i)),
            money(c.ledger_amount.get(i)),
            money(c.file_amount.get(i)),
            money(Some(c.difference.get(i).unwrap_or(0))),
            instant(c.ledger_occurred_at.get(i)),
            instant(c.file_occurred_at.get(i)),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    files.push(csv_file("discrepancies.csv".into(), table));
    let utc = || DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    let frame = d
        .clone()
        .lazy()
        .select([
            lit(epoch_days(s.date))
                .cast(DataType::Date)
                .alias("business_date"),
            col("operator_id"),
            col("case"),
            col("operator_ref"),
            col("ledger_card_id"),
            col("file_card_id"),
            lit(s.currency.code()).alias("currency"),
            col("ledger_amount"),
            col("file_amount"),
            col("difference"),
            col("ledger_occurred_at").cast(utc()),
            col("file_occurred_at").cast(utc()),
        ])
        .collect()?;
    files.push(parquet_file(s, "discrepancies.parquet", frame)?);
    Ok(())
}

fn fares(s: &Statement, files: &mut Vec<ReportFile>) -> Result<(), ReportError> {
    let exp = s.currency.exponent();
    let money = |n: i64| Cell::Number(format_minor(n, exp));
    let date = s.date.to_string();
    let mut table = CsvTable::new(&FARE_COLUMNS);
    for (op, f) in &s.fares {
        table.row([
            Cell::Number(date.clone()),
            Cell::Text(op),
            Cell::Text(s.currency.code()),
            number(f.validations_count),
            money(f.validations_amount),
            number(f.online_payments_count),
            money(f.online_payments_amount),
            money(f.revenue()),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    files.push(csv_file("fare_distribution.csv".into(), table));
    let fs: Vec<_> = s.fares.values().collect();
    let ints = |f: fn(&crate::inputs::Fares) -> i64| fs.iter().map(|x| f(x)).collect::<Vec<_>>();
    let frame = df!(
        "business_date" => vec![epoch_days(s.date); fs.len()],
        "transport_operator_id" => s.fares.keys().map(String::as_str).collect::<Vec<_>>(),
        "currency" => vec![s.currency.code(); fs.len()],
        "validations_count" => ints(|f| f.validations_count),
        "validations_amount" => ints(|f| f.validations_amount),
        "online_payments_count" => ints(|f| f.online_payments_count),
        "online_payments_amount" => ints(|f| f.online_payments_amount),
        "revenue" => ints(|f| f.revenue()),
    )?
    .lazy()
    .with_column(col("business_date").cast(DataType::Date))
    .collect()?;
    files.push(parquet_file(s, "fare_distribution.parquet", frame)?);
    Ok(())
}

fn device_gaps(s: &Statement) -> ReportFile {
    let mut table = CsvTable::new(&[
        "business_date",
        "device_id",
        "from_seq",
        "to_seq",
        "missing",
        "report_kind",
    ]);
    for g in &s.gaps {
        table.row([
            Cell::Number(s.date.to_string()),
            Cell::Text(&g.device_id),
            number(g.from_seq),
            number(g.to_seq),
            number(g.to_seq - g.from_seq + 1),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    csv_file("device_gaps.csv".into(), table)
}

/// Cards the date's validations left below zero, with their balance at the end of it.
fn negative_cards(s: &Statement) -> ReportFile {
    let exp = s.currency.exponent();
    let mut table = CsvTable::new(&NEGATIVE_CARD_COLUMNS);
    for c in &s.negative_cards {
        table.row([
            Cell::Number(s.date.to_string()),
            Cell::Text(&c.card_id),
            Cell::Number(format_minor(c.balance, exp)),
            number(c.validations),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    csv_file("negative_cards.csv".into(), table)
}

/// Devices that accepted taps on cards blocked for longer than the grace, with the newest
/// action-list version each reported (empty: the device reports none).
fn hotlist_violations(s: &Statement) -> ReportFile {
    let mut table = CsvTable::new(&[
        "business_date",
        "device_id",
        "taps",
        "cards",
        "first_tap_at",
        "last_tap_at",
        "hotlist_version",
        "report_kind",
    ]);
    for v in &s.hotlist_violations {
        table.row([
            Cell::Number(s.date.to_string()),
            Cell::Text(&v.device_id),
            number(v.taps),
            number(v.cards),
            instant(Some(v.first_tap_at.timestamp_micros())),
            instant(Some(v.last_tap_at.timestamp_micros())),
            v.hotlist_version.map_or(Cell::Empty, number),
            Cell::Text(s.meta.kind.as_str()),
        ]);
    }
    csv_file("hotlist_violations.csv".into(), table)
}
