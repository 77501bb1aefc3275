//! `index.html`: the day at a glance for people. One self-contained file (inline CSS, bars
//! drawn with CSS, no script, no font or image fetched), so it opens the same from S3, a
//! local folder or an e-mail attachment, and reads on a phone.

use std::fmt::Write;

use ledger::money::format_minor;

use crate::ReportError;
use crate::statement::{ReportKind, Statement};

/// Rows of the exceptions table on the page; the CSV has them all.
const EXCEPTION_ROWS: usize = 200;
/// Bars per chart; the rest are summed into one "others" bar.
const BARS: usize = 15;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567.89` as `1,234,567.89`: grouping for the eye only, the digits are the CSV's.
fn grouped(minor: i64, exponent: u8) -> String {
    let plain = format_minor(minor, exponent);
    let (sign, rest) = match plain.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", plain.as_str()),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Largest values first, ties by label; beyond `BARS`, one "others" bar.
fn top(mut bars: Vec<(String, i64)>) -> Vec<(String, i64)> {
    bars.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if bars.len() > BARS {
        let rest = bars.split_off(BARS - 1);
        let sum = rest.iter().map(|b| b.1).sum();
        bars.push((format!("{} others", rest.len()), sum));
    }
    bars
}

fn chart(
    out: &mut String,
    id: &str,
    title: &str,
    bars: &[(String, i64)],
    label: impl Fn(i64) -> String,
) {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let _ = write!(out, "<section id=\"{id}\"><h2>{}</h2>", escape(title));
    if bars.is_empty() {
        out.push_str("<p class=\"empty\">Nothing on this date.</p></section>");
        return;
    }
    out.push_str("<div class=\"chart\">");
    for (name, value) in bars {
        // Integer per-mille widths: no floating point anywhere near amounts.
        let permille = (value.max(&0) * 1000 / max).clamp(0, 1000);
        let _ = write!(
            out,
            "<div class=\"bar-row\"><span class=\"bar-label\">{}</span>\
             <span class=\"bar\"><span style=\"width:{}.{}%\"></span></span>\
             <span class=\"bar-value\">{}</span></div>",
            escape(name),
            permille / 10,
            permille % 10,
            escape(&label(*value)),
        );
    }
    out.push_str("</div></section>");
}

const STYLE: &str = "
:root{--ink:#1b1f24;--muted:#5b6570;--line:#d9dee3;--accent:#0b6e4f;--warn:#b3261e;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header,main{max-width:1100px;margin:0 auto;padding:12px 16px}
header h1{font-size:1.35rem;margin:.4rem 0}
header p{margin:0;color:var(--muted)}
h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
.totals{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:8px;margin:0}
.totals div{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.totals dt{color:var(--muted);font-size:.8rem}
.totals dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums;word-break:break-all}
.totals .warn dd{color:var(--warn)}
.chart{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.bar-row{display:grid;grid-template-columns:minmax(70px,9rem) 1fr minmax(80px,auto);gap:8px;align-items:center;margin:3px 0}
.bar-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:.85rem}
.bar{background:#eef1f4;border-radius:4px;height:14px;display:block}
.bar span{display:block;height:100%;background:var(--accent);border-radius:4px}
#exceptions-by-case .bar span{background:var(--warn)}
.bar-value{font-variant-numeric:tabular-nums;font-size:.85rem;text-align:right}
.table-wrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.empty,.note{color:var(--muted)}
.banner{background:#fde68a;color:#111;padding:8px 12px;border-radius:6px;font-weight:600}
.status-no_file,.status-exceptions,tr.overdue td:first-child{font-weight:600}
";

pub fn render(s: &Statement) -> Result<String, ReportError> {
    let exp = s.currency.exponent();
    let money = |n: i64| grouped(n, exp);
    let t = s.totals();
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{title_kind}Settlement {date}</title><style>{STYLE}</style></head><body>\
         <header><h1>{title_kind}Settlement of {date}</h1><p id=\"report-meta\">{meta}. \
         Amounts in {cur}. Data: settlement_summary.csv, discrepancies.csv, \
         fare_distribution.csv, device_gaps.csv, negative_cards.csv, hotlist_violations.csv, \
         exceptions_open.csv, \
         adjustments.csv, remittances.csv, receivables_aging.csv.</p>{banner}</header><main>",
        date = s.date,
        cur = escape(s.currency.code()),
        title_kind = match s.meta.kind {
            ReportKind::Provisional => "PROVISIONAL ",
            ReportKind::Final => "",
        },
        meta = match s.meta.version {
            Some(v) => format!("Version {v}, inputs as of {}", s.meta.as_of),
            None => format!("Provisional, inputs as of {}", s.meta.as_of),
        },
        banner = match s.meta.kind {
            ReportKind::Provisional => {
                "<p class=\"banner\" id=\"provisional\">PROVISIONAL: this day has not closed. \
                 Nothing was posted and these figures will change; the final report is \
                 published when the day is settled.</p>"
            }
            ReportKind::Final => "",
        },
    );
    out.push_str("<section><h2>Totals</h2><dl class=\"totals\">");
    let mut total = |id: &str, label: &str, value: String, warn: bool| {
        let _ = write!(
            out,
            "<div{}><dt>{label}</dt><dd id=\"total-{id}\">{}</dd></div>",
            if warn { " class=\"warn\"" } else { "" },
            escape(&value)
        );
    };
    total("operators", "Operators", s.lines.len().to_string(), false);
    total("sales-count", "Sales", t.sales_count.to_string(), false);
    total("sales-amount", "Sales amount", money(t.sales_amount), false);
    total("voids-amount", "Voids amount", money(t.voids_amount), false);
    total("net-sales", "Net sales", money(t.net_sales), false);
    total("commission", "Commission", money(t.commission), false);
    total(
        "commission-tax",
        "Tax on commission",
        money(t.commission_tax),
        false,
    );
    total("net-due", "Net due from operators", money(t.net_due), false);
    let warn = t.exception_count > 0;
    total(
        "exception-count",
        "Exceptions",
        t.exception_count.to_string(),
        warn,
    );
    total(
        "exception-amount",
        "Exception difference",
        money(t.exception_amount),
        warn,
    );
    total("fare-revenue", "Fare revenue", money(t.fare_revenue), false);
    total(
        "open-cases",
        "Open exception cases",
        t.open_cases.to_string(),
        t.open_cases > 0,
    );
    total("adjustments", "Adjustments", money(t.adjustments), false);
    out.push_str("</dl></section>");
    operators(&mut out, s, &money);

    let sales: Vec<(String, i64)> = s
        .lines
        .iter()
        .filter(|l| l.sales.sales_count > 0)
        .map(|l| (l.operator_id.clone(), l.sales.net()))
        .collect();
    chart(
        &mut out,
        "sales-by-operator",
        "Net sales by operator",
        &top(sales),
        money,
    );
    let cases: Vec<(String, i64)> = s
        .exceptions_by_case()?
        .into_iter()
        .filter(|c| c.1 > 0)
        .map(|(c, n)| (c.to_string(), n))
        .collect();
    chart(
        &mut out,
        "exceptions-by-case",
        "Exceptions by case",
        &cases,
        |n| n.to_string(),
    );
    let fares: Vec<(String, i64)> = s
        .fares
        .iter()
        .map(|(op, f)| (op.clone(), f.revenue()))
        .collect();
    chart(
        &mut out,
        "fare-revenue",
        "Fare revenue by transport operator",
        &top(fares),
        money,
    );

    let d = &s.discrepancies;
    let _ = write!(
        out,
        "<section id=\"exceptions\"><h2>Exceptions ({})</h2>",
        d.height()
    );
    if d.height() == 0 {
        out.push_str("<p class=\"empty\">Every sale matched.</p></section>");
    } else {
        if d.height() > EXCEPTION_ROWS {
            let _ = write!(
                out,
                "<p class=\"note\">The first {EXCEPTION_ROWS} by operator, case and ref; \
                 discrepancies.csv has all {}.</p>",
                d.height()
            );
        }
        out.push_str(
            "<div class=\"table-wrap\"><table><thead><tr><th>Operator</th><th>Case</th>\
             <th>Ref</th><th>Ledger card</th><th>File card</th><th>Ledger</th><th>File</th>\
             <th>Difference</th></tr></thead><tbody>",
        );
        let c = s.discrepancy_columns()?;
        let cell = |v: Option<&str>| escape(v.unwrap_or(""));
        let amount = |v: Option<i64>| v.map(money).unwrap_or_default();
        for i in 0..d.height().min(EXCEPTION_ROWS) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                cell(c.operator_id.get(i)),
                cell(c.case.get(i)),
                cell(c.operator_ref.get(i)),
                cell(c.ledger_card_id.get(i)),
                cell(c.file_card_id.get(i)),
                amount(c.ledger_amount.get(i)),
                amount(c.file_amount.get(i)),
                amount(c.difference.get(i)),
            );
        }
        out.push_str("</tbody></table></div></section>");
    }
    open_by_age(&mut out, s, &money);
    adjustments(&mut out, s, &money);
    receivables(&mut out, s, &money);
    remittances_posted(&mut out, s, &money);
    rejected_files(&mut out, s);
    device_gaps(&mut out, s);
    negative_cards(&mut out, s, &money);
    hotlist(&mut out, s);
    out.push_str("</main></body></html>\n");
    Ok(out)
}

/// Starts a section with a table, or says there is nothing and returns false.
fn table_section(
    out: &mut String,
    id: &str,
    title: &str,
    rows: usize,
    empty: &str,
    header: &[&str],
) -> bool {
    let _ = write!(out, "<section id=\"{id}\"><h2>{title} ({rows})</h2>");
    if rows == 0 {
        let _ = write!(out, "<p class=\"empty\">{empty}</p></section>");
        return false;
    }
    out.push_str("<div class=\"table-wrap\"><table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    true
}

fn end_table(out: &mut String) {
    out.push_str("</tbody></table></div></section>");
}

/// What each operator owes, by when, and whether its file agreed.
fn operators(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Operator",
        "Name",
        "Net sales",
        "Net due",
        "Due date",
        "Adjustments",
        "Status",
    ];
    if !table_section(
        out,
        "operators",
        "Operators",
        s.lines.len(),
        "No operator.",
        &header,
    ) {
        return;
    }
    for l in &s.lines {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"status-{}\">{}</td></tr>",
            escape(&l.operator_id),
            escape(&l.operator_name),
            money(l.sales.net()),
            money(l.settlement.net_due),
            l.due_date,
            money(l.adjustments),
            l.status().to_ascii_lowercase(),
            l.status(),
        );
    }
    end_table(out);
}

/// The cases still open at the end of the day, by how long they have waited.
fn open_by_age(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Age",
        "Cases",
        "Open",
        "Disputed",
        "Pending approval",
        "Difference",
    ];
    let empty = "No exception case is open.";
    let rows = s.open_cases.len();
    let _ = write!(
        out,
        "<section id=\"open-exceptions-by-age\"><h2>Open exceptions by age ({rows})</h2>"
    );
    if rows == 0 {
        let _ = write!(out, "<p class=\"empty\">{empty}</p></section>");
        return;
    }
    out.push_str(
        "<p class=\"note\">Every case OPEN, DISPUTED or PENDING_APPROVAL at the end of the \
         day, whatever day it was found on; exceptions_open.csv lists them.</p>\
         <div class=\"table-wrap\"><table><thead><tr>",
    );
    for h in header {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for b in s.open_by_age() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            b.label,
            b.cases,
            b.open,
            b.disputed,
            b.pending_approval,
            money(b.difference),
        );
    }
    end_table(out);
}

/// What finance decided that moved the books on this day.
fn adjustments(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Case",
        "Found on",
        "Operator",
        "Ref",
        "Kind",
        "Owed change",
        "Decided by",
    ];
    let rows = s.adjustments.len();
    let empty = "No adjustment or write-off was posted on this day.";
    let title = "Adjustments and write-offs";
    if !table_section(out, "adjustments", title, rows, empty, &header) {
        return;
    }
    for a in s.adjustments.iter().take(EXCEPTION_ROWS) {
        let case = a.case.as_ref();
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            case.map(|c| c.id.to_string()).unwrap_or_default(),
            case.map(|c| c.business_date.to_string())
                .unwrap_or_default(),
            escape(&a.operator_id),
            escape(case.map_or("", |c| c.operator_ref.as_str())),
            a.kind,
            money(a.amount),
            escape(&a.actor),
        );
    }
    out.push_str("</tbody></table></div>");
    if rows > EXCEPTION_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">The first {EXCEPTION_ROWS}; adjustments.csv has all {rows}.</p>"
        );
    }
    out.push_str("</section>");
}

/// Who owes, and who is late: every operator that owes or holds a credit at the end of the
/// day, the most overdue first.
fn receivables(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Operator",
        "Owed",
        "Not due",
        "1–30 days",
        "31–60 days",
        "61–90 days",
        "Over 90 days",
        "Credit",
        "Oldest due",
    ];
    let mut rows: Vec<&remittances::AgingRow> = s
        .aging
        .iter()
        .filter(|a| a.owed != 0 || a.credit != 0)
        .collect();
    rows.sort_by(|a, b| {
        (b.over_90, b.days_61_90, b.days_31_60, b.days_1_30)
            .cmp(&(a.over_90, a.days_61_90, a.days_31_60, a.days_1_30))
            .then_with(|| a.operator_id.cmp(&b.operator_id))
    });
    let overdue = rows.iter().filter(|a| a.overdue() > 0).count();
    let title = "Receivables: owed and overdue";
    let empty = "No operator owes anything settled.";
    if !table_section(out, "receivables", title, rows.len(), empty, &header) {
        return;
    }
    let _ = write!(
        out,
        "<tr><td colspan=\"9\" class=\"note\">{overdue} operator(s) overdue at the end of \
         the day; receivables_aging.csv lists every operator.</td></tr>"
    );
    for a in rows {
        let late = if a.overdue() > 0 {
            " class=\"overdue\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{late}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&a.operator_id),
            money(a.owed),
            money(a.not_due),
            money(a.days_1_30),
            money(a.days_31_60),
            money(a.days_61_90),
            money(a.over_90),
            money(a.credit),
            a.oldest_due.map(|d| d.to_string()).unwrap_or_default(),
        );
    }
    end_table(out);
}

/// The bank entries posted on the day, and what each paid.
fn remittances_posted(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Bank ref",
        "Booked",
        "Direction",
        "Amount",
        "Payer",
        "Operator",
        "Matched by",
        "Applied to",
    ];
    let rows = s.remittances.len();
    let empty = "No bank entry was posted on this day.";
    if !table_section(
        out,
        "remittances",
        "Bank entries posted",
        rows,
        empty,
        &header,
    ) {
        return;
    }
    for r in s.remittances.iter().take(EXCEPTION_ROWS) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.bank_ref),
            r.booking_date,
            escape(&r.direction),
            money(r.amount),
            escape(r.payer_name.as_deref().unwrap_or("")),
            escape(r.operator_id.as_deref().unwrap_or("")),
            escape(r.matched_by.as_deref().unwrap_or("")),
            escape(&r.applied_to_text(money)),
        );
    }
    out.push_str("</tbody></table></div>");
    if rows > EXCEPTION_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">The first {EXCEPTION_ROWS}; remittances.csv has all {rows}.</p>"
        );
    }
    out.push_str("</section>");
}

fn rejected_files(out: &mut String, s: &Statement) {
    let header = [
        "Operator",
        "Received as",
        "Kept at (with .errors.json)",
        "Errors",
    ];
    let rows = s.rejected_files.len();
    if !table_section(
        out,
        "rejected-files",
        "Rejected files",
        rows,
        "No file was rejected.",
        &header,
    ) {
        return;
    }
    for f in &s.rejected_files {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&f.operator_id),
            escape(&f.received_as),
            escape(&f.kept_at),
            f.error_count,
        );
    }
    end_table(out);
}

fn device_gaps(out: &mut String, s: &Statement) {
    let header = ["Device", "From seq", "To seq", "Missing taps"];
    let rows = s.gaps.len();
    if !table_section(
        out,
        "device-gaps",
        "Device gaps",
        rows,
        "No tap is missing.",
        &header,
    ) {
        return;
    }
    for g in &s.gaps {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            escape(&g.device_id),
            g.from_seq,
            g.to_seq,
            g.to_seq - g.from_seq + 1,
        );
    }
    end_table(out);
}

fn negative_cards(out: &mut String, s: &Statement, money: &dyn Fn(i64) -> String) {
    let header = [
        "Card",
        "Balance at the end of the day",
        "Validations on the day",
    ];
    let rows = s.negative_cards.len();
    let empty = "No card went below zero.";
    if !table_section(
        out,
        "negative-cards",
        "Cards below zero",
        rows,
        empty,
        &header,
    ) {
        return;
    }
    for c in &s.negative_cards {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&c.card_id),
            money(c.balance),
            c.validations,
        );
    }
    end_table(out);
}

/// The action list at the end of the date, and the devices that did not apply it.
fn hotlist(out: &mut String, s: &Statement) {
    let state = match &s.hotlist {
        Some(h) => format!(
            "Action list version {} ({} blocked cards), published {}.",
            h.version,
            h.cards,
            h.published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "No action list was published by the end of the day.".to_string(),
    };
    let _ = write!(
        out,
        "<section id=\"hotlist\"><h2>Action list</h2><p id=\"hotlist-state\">{}</p></section>",
        escape(&state)
    );
    let header = [
        "Device",
        "Taps on blocked cards",
        "Cards",
        "First",
        "Last",
        "Newest list version reported",
    ];
    if !table_section(
        out,
        "hotlist-violations",
        "Hotlist violations",
        s.hotlist_violations.len(),
        "No device accepted a card blocked past the grace period.",
        &header,
    ) {
        return;
    }
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%H:%M:%S UTC").to_string();
    for v in &s.hotlist_violations {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&v.device_id),
            v.taps,
            v.cards,
            time(&v.first_tap_at),
            time(&v.last_tap_at),
            v.hotlist_version
                .map_or("none".to_string(), |n| n.to_string()),
        );
    }
    end_table(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_for_the_eye() {
        assert_eq!(grouped(123_456_789, 2), "1,234,567.89");
        assert_eq!(grouped(-100_000, 2), "-1,000.00");
        assert_eq!(grouped(5, 2), "0.05");
        assert_eq!(grouped(1_000, 0), "1,000");
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
