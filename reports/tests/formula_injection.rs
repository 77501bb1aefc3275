//! Text from outside that starts with `=`, `+`, `-` or `@` is escaped in every CSV of a
//! report, whatever column it lands in; numbers we format (a negative difference) are not.
//! The inputs are built by hand: the parsers upstream refuse most such ids today, and the
//! reports must not rely on that.

use std::collections::BTreeMap;

use ledger::device_gap::DeviceGap;
use ledger::{BusinessDate, Currency, Operator, OperatorId, OperatorName, Rate, VoidWindow};
use polars::prelude::*;
use reconcile::store::{CurrentRun, OperatorSummary};
use reports::inputs::{Fares, OperatorSales, ReportInputs};

const HOSTILE: [&str; 4] = ["=HYPERLINK(\"http://x\")", "+57300", "-2+3", "@SUM(A1)"];

fn inputs() -> ReportInputs {
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let operator = Operator {
        id: OperatorId::parse("OP001").unwrap(),
        name: OperatorName::parse("=cmd|' /C calc'!A0").unwrap(),
        commission_rate: Rate::parse("commission_rate", "0.035").unwrap(),
        tax_rate: Rate::parse("tax_rate", "0.19").unwrap(),
        void_window: VoidWindow::parse("30m").unwrap(),
        settlement_lag_days: 1,
        active: true,
    };
    let n = HOSTILE.len();
    let exceptions = df!(
        "business_date" => vec![reconcile::source::days(date); n],
        "operator_id" => vec!["OP001"; n],
        "operator_ref" => HOSTILE.to_vec(),
        "case" => vec!["CARD_MISMATCH"; n],
        "ledger_card_id" => HOSTILE.iter().map(|h| Some(*h)).collect::<Vec<_>>(),
        "file_card_id" => HOSTILE.iter().rev().map(|h| Some(*h)).collect::<Vec<_>>(),
        "ledger_amount" => vec![Some(1_000i64); n],
        "file_amount" => vec![Some(3_000i64); n],
        "difference" => vec![-2_000i64; n],
        "ledger_occurred_at" => vec![Some(1_764_000_000_000_000i64); n],
        "file_occurred_at" => vec![None::<i64>; n],
    )
    .unwrap();
    let mut counts: BTreeMap<String, i64> = reconcile::Case::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), 0))
        .collect();
    counts.insert("CARD_MISMATCH".into(), n as i64);
    let sales = OperatorSales {
        sales_count: n as i64,
        sales_amount: 4_000,
        voids_count: 0,
        voids_amount: 0,
    };
    ReportInputs {
        date,
        currency: Currency::COP,
        holidays: vec![],
        operators: vec![operator],
        sales: BTreeMap::from([("OP001".to_string(), sales)]),
        reconciliation: CurrentRun {
            run_id: "run".into(),
            input_seq: Some(0),
            summaries: vec![OperatorSummary {
                operator_id: "OP001".into(),
                counts,
                ledger_total: 4_000,
                file_total: 12_000,
                exceptions_difference: -8_000,
            }],
            exceptions,
        },
        fares: BTreeMap::from([("@TO1".to_string(), Fares::default())]),
        gaps: vec![DeviceGap {
            device_id: "-DEV".into(),
            from_seq: 3,
            to_seq: 4,
        }],
        files: vec![],
        rejected_files: vec![],
        negative_cards: vec![reports::inputs::NegativeCard {
            card_id: "=CARD1".into(),
            balance: -500,
            validations: 2,
        }],
        open_cases: vec![exceptions::OpenCase {
            case: hostile_case(),
            state: exceptions::CaseState::Disputed,
            age_days: 3,
        }],
        adjustments: vec![reports::inputs::Adjustment {
            transaction_id: 9,
            kind: "writeoff",
            document: "exception:1:1".into(),
            operator_id: "OP001".into(),
            amount: -2_000,
            actor: "@finance".into(),
            posted_at: chrono::DateTime::from_timestamp(1_764_300_000, 0).unwrap(),
            case: Some(hostile_case()),
        }],
        hotlist_violations: vec![ledger::hotlist_violation::DeviceViolations {
            device_id: "=GATE".into(),
            taps: 2,
            cards: 1,
            first_tap_at: chrono::DateTime::from_timestamp(1_764_200_000, 0).unwrap(),
            last_tap_at: chrono::DateTime::from_timestamp(1_764_200_600, 0).unwrap(),
            hotlist_version: Some(3),
        }],
        hotlist: None,
    }
}

/// A case whose texts came from an operator's file.
fn hostile_case() -> exceptions::ExceptionCase {
    let at = chrono::DateTime::from_timestamp(1_764_200_000, 0).unwrap();
    exceptions::ExceptionCase {
        id: 1,
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        operator_id: "OP001".into(),
        operator_ref: "-1+1".into(),
        case_name: "AMOUNT_MISMATCH".into(),
        ledger_card_id: Some("+CARD".into()),
        file_card_id: Some("=CARD".into()),
        ledger_amount: Some(1_000),
        file_amount: Some(3_000),
        difference: -2_000,
        state: exceptions::CaseState::Disputed,
        resolution: None,
        proposed_by: None,
        decisions: 0,
        transaction_id: None,
        dispute_reason: Some("=evil".into()),
        evidence_ref: None,
        opened_run: "run".into(),
        last_run: "run".into(),
        cleared_run: None,
        opened_at: at,
        updated_at: at,
    }
}

fn meta() -> reports::ReportMeta {
    reports::ReportMeta {
        kind: reports::ReportKind::Final,
        version: Some(1),
        as_of: "2026-11-27T05:00:00Z".into(),
    }
}

#[test]
fn text_starting_a_formula_is_escaped_in_every_csv() {
    let mut statement = reports::statement::build(&inputs(), meta()).unwrap();
    // What the bank wrote is text from outside too.
    statement.remittances = vec![remittances::Remittance {
        business_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        bank_account: "CO12BANK0001".into(),
        bank_ref: "=1+1".into(),
        booking_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        value_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        direction: "CREDIT".into(),
        amount: 5_000,
        currency: "COP".into(),
        reference: Some("@SUM(A1) RC-OP001-20261125".into()),
        payer_name: Some("+Tienda".into()),
        payer_account: Some("-CO55".into()),
        kind: "deposit".into(),
        operator_id: Some("OP001".into()),
        matched_by: Some("reference".into()),
        actor: None,
        transaction_id: 12,
        assigned: false,
        applied_to: vec![remittances::Application {
            seq: 12,
            settles_date: None,
            amount: 5_000,
        }],
        created_at: chrono::DateTime::from_timestamp(1_764_300_000, 0).unwrap(),
    }];
    statement.aging = vec![remittances::AgingRow {
        operator_id: "OP001".into(),
        owed: -5_000,
        credit: 5_000,
        ..Default::default()
    }];
    let files = reports::files::render(&statement).unwrap();
    let csvs: Vec<_> = files.iter().filter(|f| f.path.ends_with(".csv")).collect();
    assert_eq!(
        csvs.len(),
        11,
        "summary, one operator, discrepancies, fares, gaps, negative cards, hotlist \
         violations, open cases, adjustments, remittances, aging"
    );
    for f in csvs {
        // Read as a spreadsheet or a CSV library would.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&f.bytes[..]);
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                let is_number =
                    cell.parse::<i64>().is_ok() || cell.replace('.', "").parse::<i64>().is_ok();
                if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    assert!(is_number, "{}: unescaped cell {cell:?}", f.path);
                }
            }
        }
    }
    let cells = |path: &str| -> Vec<String> {
        let f = files.iter().find(|f| f.path == path).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&f.bytes[..]);
        reader
            .records()
            .flat_map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
            .collect()
    };
    let found = cells("discrepancies.csv");
    for escaped in ["'=HYPERLINK(\"http://x\")", "'+57300", "'@SUM(A1)"] {
        assert!(found.iter().any(|c| c == escaped), "{escaped} in {found:?}");
    }
    assert!(
        cells("settlement_summary.csv")
            .iter()
            .any(|c| c == "'=cmd|' /C calc'!A0")
    );
    assert!(
        cells("hotlist_violations.csv")
            .iter()
            .any(|c| c == "'=GATE")
    );
    let open = cells("exceptions_open.csv");
    for escaped in ["'-1+1", "'+CARD", "'=CARD"] {
        assert!(open.iter().any(|c| c == escaped), "{escaped} in {open:?}");
    }
    let banked = cells("remittances.csv");
    for escaped in ["'=1+1", "'@SUM(A1) RC-OP001-20261125", "'+Tienda", "'-CO55"] {
        assert!(
            banked.iter().any(|c| c == escaped),
            "{escaped} in {banked:?}"
        );
    }
    assert!(banked.iter().any(|c| c == "credit:50.00"), "{banked:?}");
    assert!(cells("receivables_aging.csv").iter().any(|c| c == "-50.00"));
    let adjusted = cells("adjustments.csv");
    for escaped in ["'-1+1", "'@finance"] {
        assert!(
            adjusted.iter().any(|c| c == escaped),
            "{escaped} in {adjusted:?}"
        );
    }
    let discrepancies = files
        .iter()
        .find(|f| f.path == "discrepancies.csv")
        .unwrap();
    let text = String::from_utf8(discrepancies.bytes.clone()).unwrap();
    assert!(
        text.contains(",-20.00,"),
        "a negative difference stays a number: {text}"
    );
}
