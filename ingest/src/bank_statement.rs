//! Bank statements of our collection accounts (DESIGN.md, Bank statements and remittances):
//! ISO 20022 camt.053 XML, or the CSV layout
//! `booking_date,value_date,direction,amount,currency,bank_ref,reference,payer_name,payer_account`,
//! parsed into one statement of entries. A statement is accepted whole or rejected whole, so
//! parsing collects every error it finds (bounded), each naming the entry or line, the field
//! and the reason.
//!
//! The XML comes from outside and is read defensively: at most `MAX_BYTES`, no DTD at all (so
//! no entity can be declared, expanded or fetched: billion laughs and external entities are
//! refused before anything is resolved), only XML's predefined entities and character
//! references, elements nested at most `MAX_DEPTH` deep, one statement per document, a
//! camt.053 namespace of versions .001.02 to .001.08.

use std::borrow::Cow;

use chrono::NaiveDate;
use ledger::MoneyRules;
use ledger::money::{parse_minor, truncate};
use quick_xml::events::Event;
use serde::Serialize;

/// The largest statement accepted, in bytes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// The deepest element nesting accepted (camt.053 needs about 12).
pub const MAX_DEPTH: usize = 32;
/// Errors kept per statement.
pub const MAX_ERRORS: usize = 100;

/// Money in or out of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    Credit,
    Debit,
}

/// One booked entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankEntry {
    /// Its position: the entry's number in a camt.053 (1-based), the line of a CSV.
    pub position: u32,
    pub booking_date: NaiveDate,
    pub value_date: NaiveDate,
    pub direction: Direction,
    /// Minor units, always positive; `direction` says which way.
    pub amount: i64,
    /// The bank's own reference (`AcctSvcrRef`), unique in the account.
    pub bank_ref: String,
    /// What the payer wrote (`RmtInf/Ustrd`), where a payment reference is looked for.
    pub reference: Option<String>,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
}

impl BankEntry {
    /// The entry's effect on the account's balance.
    pub fn signed(&self) -> i64 {
        match self.direction {
            Direction::Credit => self.amount,
            Direction::Debit => -self.amount,
        }
    }
}

/// A statement as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankStatement {
    pub account: String,
    /// Signed minor units (a debit balance is negative); camt.053 only.
    pub opening: Option<i64>,
    pub closing: Option<i64>,
    pub entries: Vec<BankEntry>,
}

/// What is wrong, and where: `statement`, `entry 3` or `line 4`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementError {
    pub at: String,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.field, self.reason)
    }
}

#[derive(Default)]
struct Errors(Vec<StatementError>);

impl Errors {
    /// No errors yet, or the one that a statement over `MAX_BYTES` is refused with.
    fn sized(bytes: &[u8]) -> Result<Errors, Vec<StatementError>> {
        let mut errors = Errors::default();
        if bytes.len() > MAX_BYTES {
            errors.push(
                "statement",
                "size",
                format!("{} bytes, more than the {MAX_BYTES} accepted", bytes.len()),
            );
            return Err(errors.0);
        }
        Ok(errors)
    }

    fn push(&mut self, at: impl Into<String>, field: &str, reason: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(StatementError {
                at: at.into(),
                field: field.to_string(),
                reason: reason.into(),
            });
        }
    }
}

const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.0";

/// Parses a camt.053 document and checks it (`check`): a statement, or every error found.
pub fn parse_camt053(
    bytes: &[u8],
    rules: &MoneyRules,
    our_accounts: &[String],
) -> Result<BankStatement, Vec<StatementError>> {
    let mut errors = Errors::sized(bytes)?;
    // Text is trimmed once it is whole: trimming each piece would eat the spaces around an
    // entity (`La 14 &amp; Cía`).
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    // Local names from the root down, and the text of the innermost element.
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut statements = 0;
    let mut account: Option<String> = None;
    let mut balances: Vec<RawBalance> = Vec::new();
    let mut entries: Vec<RawEntry> = Vec::new();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                let position = reader.buffer_position();
                errors.push("statement", "xml", format!("at byte {position}: {e}"));
                return Err(errors.0);
            }
        };
        match event {
            Event::DocType(_) => {
                errors.push(
                    "statement",
                    "xml",
                    "a DTD (<!DOCTYPE …>) is not accepted: entities are never declared here",
                );
                return Err(errors.0);
            }
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    let ns = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"xmlns")
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default();
                    let version = ns.strip_prefix(NAMESPACE).unwrap_or("");
                    if name != "Document"
                        || !matches!(version, "2" | "3" | "4" | "5" | "6" | "7" | "8")
                    {
                        errors.push(
                            "statement",
                            "Document",
                            format!(
                                "not a camt.053 document of versions .001.02 to .001.08 \
                                 (root {name:?}, namespace {:?})",
                                truncate(&ns)
                            ),
                        );
                        return Err(errors.0);
                    }
                }
                path.push(name);
                if path.len() > MAX_DEPTH {
                    errors.push(
                        "statement",
                        "xml",
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    );
                    return Err(errors.0);
                }
                text.clear();
                let currency_attr = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"Ccy")
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                let at: Vec<&str> = path.iter().map(String::as_str).collect();
                match at.as_slice() {
                    [.., "BkToCstmrStmt", "Stmt"] => statements += 1,
                    [.., "Stmt", "Bal"] => balances.push(RawBalance::default()),
                    [.., "Stmt", "Ntry"] => entries.push(RawEntry::default()),
                    _ => {}
                }
                if let (Some(ccy), [.., "Amt"]) = (&currency_attr, at.as_slice()) {
                    match at.as_slice() {
                        [.., "Bal", "Amt"] => {
                            if let Some(b) = balances.last_mut() {
                                b.currency = Some(ccy.clone());
                            }
                        }
                        [.., "Ntry", "Amt"] => {
                            if let Some(n) = entries.last_mut() {
                                n.currency = Some(ccy.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            Event::Empty(_) => {}
            Event::Text(t) => match t.xml_content() {
                Ok(s) => text.push_str(&s),
                Err(e) => errors.push("statement", "xml", e.to_string()),
            },
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(Cow::Owned(c.to_string())),
                    _ => quick_xml::escape::resolve_predefined_entity(&name).map(Cow::Borrowed),
                };
                match resolved {
                    Some(s) => text.push_str(&s),
                    None => {
                        errors.push(
                            "statement",
                            "xml",
                            format!(
                                "the entity &{}; is not XML's and is not expanded",
                                truncate(&name)
                            ),
                        );
                        return Err(errors.0);
                    }
                }
            }
            Event::End(_) => {
                let at: Vec<&str> = path.iter().map(String::as_str).collect();
                let value = text.trim().to_string();
                match at.as_slice() {
                    [.., "Stmt", "Acct", "Id", "IBAN"]
                    | [.., "Stmt", "Acct", "Id", "Othr", "Id"] => account = Some(value),
                    [.., "Bal", "Tp", "CdOrPrtry", "Cd"] => last(&mut balances).kind = Some(value),
                    [.., "Bal", "Amt"] => last(&mut balances).amount = Some(value),
                    [.., "Bal", "CdtDbtInd"] => last(&mut balances).indicator = Some(value),
                    [.., "Ntry", "Amt"] => last(&mut entries).amount = Some(value),
                    [.., "Ntry", "CdtDbtInd"] => last(&mut entries).indicator = Some(value),
                    [.., "Ntry", "BookgDt", "Dt"] => last(&mut entries).booking = Some(value),
                    [.., "Ntry", "BookgDt", "DtTm"] => {
                        last(&mut entries).booking = Some(value.chars().take(10).collect())
                    }
                    [.., "Ntry", "ValDt", "Dt"] => last(&mut entries).value = Some(value),
                    [.., "Ntry", "ValDt", "DtTm"] => {
                        last(&mut entries).value = Some(value.chars().take(10).collect())
                    }
                    [.., "Ntry", "AcctSvcrRef"] => last(&mut entries).bank_ref = Some(value),
                    [.., "TxDtls", "RmtInf", "Ustrd"] => {
                        let e = last(&mut entries);
                        // Several lines of remittance information read as one.
                        e.reference = Some(match e.reference.take() {
                            Some(before) => format!("{before} {value}"),
                            None => value,
                        });
                    }
                    [.., "RltdPties", "Dbtr", "Nm"] | [.., "RltdPties", "Dbtr", "Pty", "Nm"] => {
                        last(&mut entries).payer_name = Some(value)
                    }
                    [.., "RltdPties", "DbtrAcct", "Id", "IBAN"]
                    | [.., "RltdPties", "DbtrAcct", "Id", "Othr", "Id"] => {
                        last(&mut entries).payer_account = Some(value)
                    }
                    _ => {}
                }
                text.clear();
                path.pop();
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
        buf.clear();
    }
    if statements != 1 {
        errors.push(
            "statement",
            "Stmt",
            format!("{statements} statements in the document; exactly one is accepted"),
        );
        return Err(errors.0);
    }
    let account = account.unwrap_or_default();
    let (mut opening, mut closing) = (None, None);
    for (i, b) in balances.iter().enumerate() {
        let at = format!("balance {}", i + 1);
        let amount = money(
            &mut errors,
            &at,
            "Amt",
            b.amount.as_deref(),
            b.currency.as_deref(),
            rules,
        );
        let sign = match b.indicator.as_deref() {
            Some("CRDT") => 1,
            Some("DBIT") => -1,
            other => {
                errors.push(&at, "CdtDbtInd", format!("{other:?} is not CRDT or DBIT"));
                1
            }
        };
        match b.kind.as_deref() {
            Some("OPBD") => opening = amount.map(|a| a * sign),
            Some("CLBD") => closing = amount.map(|a| a * sign),
            _ => {}
        }
    }
    for (field, found) in [("OPBD", opening), ("CLBD", closing)] {
        if found.is_none() && !balances.iter().any(|b| b.kind.as_deref() == Some(field)) {
            errors.push("statement", "Bal", format!("no {field} balance"));
        }
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, raw) in entries.into_iter().enumerate() {
        let position = i as u32 + 1;
        let at = format!("entry {position}");
        if let Some(entry) = raw.entry(position, &at, rules, &mut errors) {
            parsed.push(entry);
        }
    }
    let statement = BankStatement {
        account,
        opening,
        closing,
        entries: parsed,
    };
    check(statement, our_accounts, "entry", errors)
}

/// Parses the CSV layout of the statement of `account` (the object key names it) and checks
/// it (`check`; a CSV carries no balances).
pub fn parse_csv(
    bytes: &[u8],
    account: &str,
    rules: &MoneyRules,
    our_accounts: &[String],
) -> Result<BankStatement, Vec<StatementError>> {
    const HEADER: [&str; 9] = [
        "booking_date",
        "value_date",
        "direction",
        "amount",
        "currency",
        "bank_ref",
        "reference",
        "payer_name",
        "payer_account",
    ];
    let mut errors = Errors::sized(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut entries = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u32 + 1;
        let at = format!("line {line}");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(&at, "csv", e.to_string());
                continue;
            }
        };
        if line == 1 {
            let header: Vec<&str> = record.iter().collect();
            if header != HEADER {
                errors.push(&at, "header", format!("must be {}", HEADER.join(",")));
                return Err(errors.0);
            }
            continue;
        }
        if record.len() != HEADER.len() {
            errors.push(
                &at,
                "line",
                format!("{} fields, {} expected", record.len(), HEADER.len()),
            );
            continue;
        }
        let cell = |i: usize| Some(record[i].trim().to_string()).filter(|s| !s.is_empty());
        let raw = RawEntry {
            booking: cell(0),
            value: cell(1),
            indicator: cell(2).map(|d| match d.as_str() {
                "CREDIT" => "CRDT".to_string(),
                "DEBIT" => "DBIT".to_string(),
                other => other.to_string(),
            }),
            amount: cell(3),
            currency: cell(4),
            bank_ref: cell(5),
            reference: cell(6),
            payer_name: cell(7),
            payer_account: cell(8),
        };
        if let Some(entry) = raw.entry(line, &at, rules, &mut errors) {
            entries.push(entry);
        }
    }
    let statement = BankStatement {
        account: account.to_string(),
        opening: None,
        closing: None,
        entries,
    };
    check(statement, our_accounts, "line", errors)
}

/// What makes a parsed statement acceptable: an account of ours, at least one entry, bank
/// references unique, and (when it has balances) opening + entries = closing.
/// `unit` is what a position counts: `entry` (camt.053) or `line` (CSV). The statement, or
/// every error found in parsing it and here.
fn check(
    statement: BankStatement,
    our_accounts: &[String],
    unit: &str,
    mut errors: Errors,
) -> Result<BankStatement, Vec<StatementError>> {
    if !our_accounts.contains(&statement.account) {
        errors.push(
            "statement",
            "account",
            format!(
                "{:?} is not one of our collection accounts",
                truncate(&statement.account)
            ),
        );
    }
    let mut seen = std::collections::HashMap::new();
    for e in &statement.entries {
        if let Some(first) = seen.insert(e.bank_ref.as_str(), e.position) {
            errors.push(
                format!("{unit} {}", e.position),
                "bank_ref",
                format!("{:?} also at {unit} {first}", truncate(&e.bank_ref)),
            );
        }
    }
    if let (Some(opening), Some(closing)) = (statement.opening, statement.closing) {
        let moved: i64 = statement.entries.iter().map(BankEntry::signed).sum();
        if opening + moved != closing {
            errors.push(
                "statement",
                "Bal",
                format!(
                    "the opening balance {opening} and the entries ({moved}) make {}, not the \
                     closing balance {closing} (minor units)",
                    opening + moved
                ),
            );
        }
    }
    if errors.0.is_empty() {
        Ok(statement)
    } else {
        Err(errors.0)
    }
}

#[derive(Default)]
struct RawBalance {
    kind: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    indicator: Option<String>,
}

#[derive(Default)]
struct RawEntry {
    amount: Option<String>,
    currency: Option<String>,
    indicator: Option<String>,
    booking: Option<String>,
    value: Option<String>,
    bank_ref: Option<String>,
    reference: Option<String>,
    payer_name: Option<String>,
    payer_account: Option<String>,
}

fn last<T: Default>(items: &mut Vec<T>) -> &mut T {
    if items.is_empty() {
        items.push(T::default());
    }
    items.last_mut().expect("one item at least")
}

fn money(
    errors: &mut Errors,
    at: &str,
    field: &'static str,
    amount: Option<&str>,
    currency: Option<&str>,
    rules: &MoneyRules,
) -> Option<i64> {
    let expected = rules.currency.code();
    if currency != Some(expected) {
        errors.push(
            at,
            field,
            format!("currency {currency:?}, the statement must be in {expected}"),
        );
        return None;
    }
    let Some(text) = amount else {
        errors.push(at, field, "missing");
        return None;
    };
    match parse_minor(field, text, rules.currency.exponent()) {
        Ok(minor) => Some(minor),
        Err(e) => {
            errors.push(at, field, e.to_string());
            None
        }
    }
}

fn date(errors: &mut Errors, at: &str, field: &str, text: Option<&str>) -> Option<NaiveDate> {
    match text.map(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d")) {
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            errors.push(
                at,
                field,
                format!(
                    "{:?} is not a date (YYYY-MM-DD)",
                    truncate(text.unwrap_or(""))
                ),
            );
            None
        }
        None => {
            errors.push(at, field, "missing");
            None
        }
    }
}

impl RawEntry {
    fn entry(
        self,
        position: u32,
        at: &str,
        rules: &MoneyRules,
        errors: &mut Errors,
    ) -> Option<BankEntry> {
        let amount = money(
            errors,
            at,
            "amount",
            self.amount.as_deref(),
            self.currency.as_deref(),
            rules,
        );
        let direction = match self.indicator.as_deref() {
            Some("CRDT") => Some(Direction::Credit),
            Some("DBIT") => Some(Direction::Debit),
            other => {
                errors.push(
                    at,
                    "direction",
                    format!("{other:?} is not a credit or a debit"),
                );
                None
            }
        };
        let booking_date = date(errors, at, "booking_date", self.booking.as_deref());
        let value_date = date(errors, at, "value_date", self.value.as_deref());
        let bank_ref = self.bank_ref.filter(|r| !r.is_empty());
        if bank_ref.is_none() {
            errors.push(
                at,
                "bank_ref",
                "missing: every entry needs the bank's reference",
            );
        }
        if amount == Some(0) {
            errors.push(at, "amount", "an entry of zero");
        }
        Some(BankEntry {
            position,
            booking_date: booking_date?,
            value_date: value_date?,
            direction: direction?,
            amount: amount.filter(|a| *a > 0)?,
            bank_ref: bank_ref?,
            reference: self.reference,
            payer_name: self.payer_name,
            payer_account: self.payer_account,
        })
    }
}
