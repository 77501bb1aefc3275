//! CSV as finance opens it: in a spreadsheet. Text that came from outside (an operator's
//! name, a card id, a ref) and starts with `=`, `+`, `-`, `@`, a tab or a carriage return
//! would run as a formula there, so such a cell is prefixed with `'` (OWASP's advice).
//! Numbers are written by us from integers and are never escaped, so a negative
//! difference stays a number.

/// One cell of a row.
pub enum Cell<'a> {
    /// Text from outside: escaped against formula injection, quoted when needed.
    Text(&'a str),
    /// A value we formatted ourselves (amount, count, date): written as is.
    Number(String),
    Empty,
}

/// A CSV document being written: a header line, then rows, LF line ends, quoted as
/// RFC 4180 needs (the `csv` crate).
pub struct CsvTable {
    out: csv::Writer<Vec<u8>>,
    columns: usize,
    rows: u64,
}

impl CsvTable {
    pub fn new(header: &[&str]) -> CsvTable {
        let mut t = CsvTable {
            out: csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new()),
            columns: header.len(),
            rows: 0,
        };
        t.line(header.iter().map(|h| Cell::Text(h)));
        t.rows = 0;
        t
    }

    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) {
        self.line(cells);
        self.rows += 1;
    }

    fn line<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) {
        let mut n = 0;
        for cell in cells {
            let written = match cell {
                Cell::Text(text) => self.out.write_field(escaped(text).as_ref()),
                Cell::Number(text) => self.out.write_field(text),
                Cell::Empty => self.out.write_field(""),
            };
            written.expect("writing to memory cannot fail");
            n += 1;
        }
        debug_assert_eq!(n, self.columns, "a row has as many cells as the header");
        self.out
            .write_record(None::<&[u8]>)
            .expect("writing to memory cannot fail");
    }

    /// Data rows written (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
            .into_inner()
            .expect("writing to memory cannot fail")
    }
}

/// Text as a spreadsheet may safely open it: a formula starter gets a leading `'`.
fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(cell: Cell) -> String {
        let mut t = CsvTable::new(&["a"]);
        t.row([cell]);
        String::from_utf8(t.into_bytes()).unwrap()
    }

    #[test]
    fn formula_starters_are_escaped_in_text_cells() {
        assert_eq!(one(Cell::Text("=1+1")), "a\n'=1+1\n");
        assert_eq!(one(Cell::Text("+57")), "a\n'+57\n");
        assert_eq!(one(Cell::Text("-2")), "a\n'-2\n");
        assert_eq!(one(Cell::Text("@SUM(A1)")), "a\n'@SUM(A1)\n");
        assert_eq!(one(Cell::Text("\tx")), "a\n'\tx\n");
        assert_eq!(one(Cell::Text("\rx")), "a\n\"'\rx\"\n");
        assert_eq!(
            one(Cell::Text("=HYPERLINK(\"http://x\")")),
            "a\n\"'=HYPERLINK(\"\"http://x\"\")\"\n"
        );
    }

    #[test]
    fn plain_text_and_numbers_are_left_alone() {
        assert_eq!(one(Cell::Text("CARD-1")), "a\nCARD-1\n");
        assert_eq!(one(Cell::Number("-2950.00".into())), "a\n-2950.00\n");
        assert_eq!(one(Cell::Empty), "a\n\"\"\n");
        assert_eq!(
            one(Cell::Text("Tienda \"La 14\", centro")),
            "a\n\"Tienda \"\"La 14\"\", centro\"\n"
        );
    }
}
