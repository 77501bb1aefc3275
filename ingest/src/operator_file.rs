//! The operator sales file of DESIGN.md, parsed line by line as it streams in. The parser
//! keeps no records: it hands each valid `D` record out and keeps only counts, totals and
//! errors, so a file of any size parses in constant memory.
//!
//! Fields are read as RFC 4180 says (the `csv` crate), so a field quoted as spreadsheets and
//! CSV libraries write it (`"SALE"`, `"a ""b"""`) is its plain value. A record is one line:
//! no valid value contains a line break, so a quote left open at the end of a line is an
//! error, as is one that is not closed right before a comma or the line's end.
//!
//! Choices the format leaves open, made here: a UTF-8 BOM is skipped; lines end in LF or
//! CRLF; blank lines after the trailer are ignored, anywhere else they are an error; a line
//! longer than 4 KiB is an error (lines are split here, before the CSV reader, so memory
//! and line numbers stay exact); a VOID may name a sale of an earlier file.

use chrono::{DateTime, Utc};
use ledger::money::truncate;
use ledger::{BusinessDate, CardId, MoneyRules, OperatorId, OperatorRef, PointOfSale};
use serde::Serialize;

/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// Errors kept per file: enough to fix a file, bounded for a file that is all wrong.
pub const MAX_ERRORS: usize = 100;

/// What the object key says: `incoming/{operator}/{date}/{operator}_{YYYYMMDD}_{seq:03}.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub operator_id: OperatorId,
    pub business_date: BusinessDate,
    pub seq: u32,
}

impl FileName {
    pub fn parse(key: &str) -> Result<FileName, String> {
        let parts: Vec<&str> = key.split('/').collect();
        let [_, operator, date, name] = parts.as_slice() else {
            return Err("the key is not incoming/{operator}/{date}/{file}.csv".into());
        };
        let operator_id = OperatorId::parse(operator).map_err(|e| e.to_string())?;
        let business_date = BusinessDate::parse(date).map_err(|e| e.to_string())?;
        let expected_prefix = format!("{operator}_{}_", business_date.compact());
        let seq = name
            .strip_prefix(&expected_prefix)
            .and_then(|r| r.strip_suffix(".csv"))
            .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|s| *s >= 1)
            .ok_or_else(|| {
                format!("the file name must be {expected_prefix}NNN.csv with NNN from 001")
            })?;
        Ok(FileName {
            operator_id,
            business_date,
            seq,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordKind {
    #[serde(rename = "SALE")]
    Sale,
    #[serde(rename = "VOID")]
    Void,
}

impl RecordKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Sale => "SALE",
            RecordKind::Void => "VOID",
        }
    }
}

/// A valid `D` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u32,
    pub kind: RecordKind,
    pub operator_ref: OperatorRef,
    pub occurred_at: DateTime<Utc>,
    pub card_id: CardId,
    pub amount_minor: i64,
    pub point_of_sale: PointOfSale,
    pub voided_ref: Option<OperatorRef>,
}

/// One reason to reject a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// 1-based; 0 for the file as a whole.
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

/// What a valid file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub sales_total: i64,
    pub voids_total: i64,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    ExpectHeader,
    Body,
    AfterTrailer,
}

pub struct Parser {
    name: FileName,
    rules: MoneyRules,
    state: State,
    line: u64,
    /// Lines that are detail (`D`) records, well-formed or not.
    detail_lines: u64,
    /// Detail records that parsed without an error.
    records: u64,
    sales_total: i64,
    voids_total: i64,
    errors: Vec<LineError>,
    error_count: usize,
}

impl Parser {
    pub fn new(name: FileName, rules: MoneyRules) -> Parser {
        Parser {
            name,
            rules,
            state: State::ExpectHeader,
            line: 0,
            detail_lines: 0,
            records: 0,
            sales_total: 0,
            voids_total: 0,
            errors: Vec::new(),
            error_count: 0,
        }
    }

    fn error(&mut self, field: Option<&str>, reason: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(LineError {
                line: self.line,
                field: field.map(str::to_string),
                reason: reason.into(),
            });
        }
    }

    /// Reports a line longer than `MAX_LINE` (the splitter drops its content).
    pub fn too_long(&mut self) {
        self.line += 1;
        self.error(None, format!("the line is longer than {MAX_LINE} bytes"));
    }

    /// Takes the next line (without its line ending); returns it as a record if it is a
    /// valid `D` record.
    pub fn push_line(&mut self, raw: &[u8]) -> Option<Record> {
        self.line += 1;
        let raw = if self.line == 1 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            self.error(None, "the line is not valid UTF-8");
            return None;
        };
        if self.state == State::AfterTrailer {
            if !text.trim().is_empty() {
                self.error(None, "nothing may follow the trailer (T) record");
            }
            return None;
        }
        if text.is_empty() {
            self.error(None, "empty line");
            return None;
        }
        // Without a quote, RFC 4180 fields are exactly the comma-separated pieces; the CSV
        // reader is for lines that quote (building one per line costs more than the rest of
        // the line's parsing: BENCHMARKS.md, data in).
        let record;
        let fields: Vec<&str> = if text.contains('"') {
            record = match fields_of(text) {
                Ok(r) => r,
                Err(reason) => {
                    self.error(None, reason);
                    return None;
                }
            };
            record.iter().collect()
        } else {
            text.split(',').collect()
        };
        match (fields[0], &self.state) {
            ("H", State::ExpectHeader) => {
                self.header(&fields);
                self.state = State::Body;
                None
            }
            ("H", _) => {
                self.error(Some("record_type"), "a second header (H) record");
                None
            }
            (_, State::ExpectHeader) => {
                self.error(
                    Some("record_type"),
                    "the first record must be the header (H)",
                );
                self.state = State::Body;
                self.body(&fields)
            }
            _ => self.body(&fields),
        }
    }

    fn header(&mut self, f: &[&str]) {
        if f.len() != 6 {
            self.error(
                None,
                format!("a header has 6 fields, this one has {}", f.len()),
            );
            return;
        }
        if f[1] != "1" {
            self.error(
                Some("format_version"),
                format!("format version {:?} is not supported (1)", f[1]),
            );
        }
        if f[2] != self.name.operator_id.as_str() {
            self.error(
                Some("operator_id"),
                format!(
                    "the header says {:?} but the file is under {}",
                    f[2], self.name.operator_id
                ),
            );
        }
        if f[3] != self.name.business_date.to_string() {
            self.error(
                Some("business_date"),
                format!(
                    "the header says {:?} but the file is for {}",
                    f[3], self.name.business_date
                ),
            );
        }
        if f[4] != format!("{:03}", self.name.seq) {
            self.error(
                Some("seq"),
                format!(
                    "the header says {:?} but the file name says {:03}",
                    f[4], self.name.seq
                ),
            );
        }
        if DateTime::parse_from_rfc3339(f[5]).is_err() {
            self.error(
                Some("generated_at"),
                format!("{:?} is not an RFC 3339 time with offset", f[5]),
            );
        }
    }

    fn body(&mut self, f: &[&str]) -> Option<Record> {
        match f[0] {
            "D" => self.detail(f),
            "T" => {
                self.trailer(f);
                self.state = State::AfterTrailer;
                None
            }
            other => {
                self.error(
                    Some("record_type"),
                    format!("unknown record type {:?}", truncate(other)),
                );
                None
            }
        }
    }

    fn detail(&mut self, f: &[&str]) -> Option<Record> {
        self.detail_lines += 1;
        if f.len() != 9 {
            self.error(
                None,
                format!("a detail (D) record has 9 fields, this one has {}", f.len()),
            );
            return None;
        }
        let errors_before = self.error_count;
        let kind = match f[1] {
            "SALE" => Some(RecordKind::Sale),
            "VOID" => Some(RecordKind::Void),
            other => {
                self.error(
                    Some("kind"),
                    format!("{:?} is not SALE or VOID", truncate(other)),
                );
                None
            }
        };
        let operator_ref = self.field(OperatorRef::parse(f[2]));
        let occurred_at = match DateTime::parse_from_rfc3339(f[3]) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.error(
                    Some("occurred_at"),
                    format!("{:?} is not an RFC 3339 time with offset", truncate(f[3])),
                );
                None
            }
        };
        let card_id = self.field(CardId::parse(f[4]));
        let amount = self.field(self.rules.parse_amount("amount", f[5]));
        self.field(self.rules.parse_currency("currency", f[6]));
        let point_of_sale = self.field(PointOfSale::parse(f[7]));
        let voided_ref = match (kind, f[8]) {
            (Some(RecordKind::Void), "") => {
                self.error(
                    Some("voided_ref"),
                    "a VOID must name the operator_ref it voids",
                );
                None
            }
            (Some(RecordKind::Void), r) => self.field(OperatorRef::parse_as("voided_ref", r)),
            (Some(RecordKind::Sale), "") | (None, _) => None,
            (Some(RecordKind::Sale), _) => {
                self.error(Some("voided_ref"), "only a VOID names a voided ref");
                None
            }
        };
        if self.error_count > errors_before {
            return None;
        }
        self.records += 1;
        let (kind, amount) = (kind?, amount?);
        match kind {
            RecordKind::Sale => self.sales_total = self.sales_total.saturating_add(amount.minor),
            RecordKind::Void => self.voids_total = self.voids_total.saturating_add(amount.minor),
        }
        Some(Record {
            line: u32::try_from(self.line).unwrap_or(u32::MAX),
            kind,
            operator_ref: operator_ref?,
            occurred_at: occurred_at?,
            card_id: card_id?,
            amount_minor: amount.minor,
            point_of_sale: point_of_sale?,
            voided_ref,
        })
    }

    fn field<T>(&mut self, parsed: Result<T, ledger::InvalidInput>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(Some(e.field), e.reason);
                None
            }
        }
    }

    fn trailer(&mut self, f: &[&str]) {
        if f.len() != 4 {
            self.error(
                None,
                format!("a trailer (T) has 4 fields, this one has {}", f.len()),
            );
            return;
        }
        match f[1].parse::<u64>() {
            // A bad detail line has its own error; the count is of lines, as the sender
            // counted them.
            Ok(n) if n == self.detail_lines => {}
            Ok(n) => self.error(
                Some("record_count"),
                format!(
                    "the trailer says {n} detail records; the file has {} detail lines, {} of \
                     them parsed",
                    self.detail_lines, self.records
                ),
            ),
            Err(_) => self.error(
                Some("record_count"),
                format!("{:?} is not a count", truncate(f[1])),
            ),
        }
        for (field, text, actual) in [
            ("sales_total", f[2], self.sales_total),
            ("voids_total", f[3], self.voids_total),
        ] {
            match self.rules.parse_total(field, text) {
                Ok(total) if total.minor == actual => {}
                Ok(total) => self.error(
                    Some(field),
                    format!(
                        "the trailer says {} but the valid records add up to {}",
                        total.to_decimal_string(),
                        ledger::money::format_minor(actual, self.rules.currency.exponent())
                    ),
                ),
                Err(e) => self.error(Some(field), e.reason),
            }
        }
    }

    /// Ends the file: its summary, or every reason to reject it.
    pub fn finish(mut self) -> Result<Summary, (Vec<LineError>, usize)> {
        match self.state {
            State::ExpectHeader => {
                self.line = 0;
                self.error(None, "the file is empty");
            }
            State::Body => {
                self.line = 0;
                self.error(None, "the file has no trailer (T) record");
            }
            State::AfterTrailer => {}
        }
        if self.error_count > 0 {
            return Err((self.errors, self.error_count));
        }
        Ok(Summary {
            records: self.records,
            sales_total: self.sales_total,
            voids_total: self.voids_total,
        })
    }
}

/// The fields of one line, unquoted as RFC 4180 says. The reader itself accepts any
/// quoting; what it cannot tell us, we check: every quote is closed, and a closing quote
/// ends its field.
fn fields_of(line: &str) -> Result<csv::StringRecord, &'static str> {
    if !well_quoted(line) {
        return Err("a quoted field is not closed, or has text after its closing quote");
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(line.len().max(64))
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record),
        Ok(false) => Err("empty line"),
        Err(_) => Err("the line is not valid CSV"),
    }
}

/// Whether every quoted field of `line` opens at the field's start, closes right before a
/// comma or the end, and doubles the quotes inside.
fn well_quoted(line: &str) -> bool {
    let mut bytes = line.bytes().peekable();
    loop {
        // At a field's start.
        if bytes.peek() == Some(&b'"') {
            bytes.next();
            loop {
                match bytes.next() {
                    None => return false,
                    Some(b'"') if bytes.peek() == Some(&b'"') => {
                        bytes.next();
                    }
                    Some(b'"') => break,
                    Some(_) => {}
                }
            }
            match bytes.next() {
                None => return true,
                Some(b',') => continue,
                Some(_) => return false,
            }
        }
        loop {
            match bytes.next() {
                None => return true,
                Some(b',') => break,
                Some(b'"') => return false,
                Some(_) => {}
            }
        }
    }
}

/// Splits a byte stream into lines of at most `MAX_LINE` bytes without holding more than
/// one line; a longer line is reported and skipped to its end.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    overlong: bool,
}

pub enum Piece<'a> {
    Line(&'a [u8]),
    TooLong,
}

impl LineSplitter {
    /// Feeds a chunk; `each` gets every complete line in it.
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(Piece<'_>)) {
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            let (head, rest) = chunk.split_at(pos);
            chunk = &rest[1..];
            if self.overlong || self.partial.len() + head.len() > MAX_LINE + 1 {
                each(Piece::TooLong);
            } else if self.partial.is_empty() {
                each(Piece::Line(head));
            } else {
                self.partial.extend_from_slice(head);
                each(Piece::Line(&self.partial));
            }
            self.partial.clear();
            self.overlong = false;
        }
        if !self.overlong {
            if self.partial.len() + chunk.len() > MAX_LINE + 1 {
                self.overlong = true;
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(chunk);
            }
        }
    }

    /// The last line, if the file does not end with a newline.
    pub fn finish(self, mut each: impl FnMut(Piece<'_>)) {
        if self.overlong {
            each(Piece::TooLong);
        } else if !self.partial.is_empty() {
            each(Piece::Line(&self.partial));
        }
    }
}
