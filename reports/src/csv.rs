//! CSV as finance opens it: in a spreadsheet. Text that came from outside (an operator's
//! name, a card id, a ref) and starts with `=`, `+`, `-`, `@`, a tab or a carriage return
//! would run as a formula there, so such a cell is prefixed with `'` (OWASP's advice) and
//! quoted. Numbers are written by us from integers and are never escaped, so a negative
//! difference stays a number.

/// One cell of a row.
pub enum Cell<'a> {
    /// Text from outside: escaped against formula injection, quoted when needed.
    Text(&'a str),
    /// A value we formatted ourselves (amount, count, date): written as is.
    Number(String),
    Empty,
}

/// A CSV document being written: a header line, then rows, LF line ends.
pub struct CsvTable {
    out: String,
    columns: usize,
    rows: u64,
}

impl CsvTable {
    pub fn new(header: &[&str]) -> CsvTable {
        let mut t = CsvTable {
            out: String::new(),
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
            if n > 0 {
                self.out.push(',');
            }
            match cell {
                Cell::Text(text) => push_text(&mut self.out, text),
                Cell::Number(text) => self.out.push_str(&text),
                Cell::Empty => {}
            }
            n += 1;
        }
        debug_assert_eq!(n, self.columns, "a row has as many cells as the header");
        self.out.push('\n');
    }

    /// Data rows written (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

fn push_text(out: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
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
        assert_eq!(one(Cell::Text("=1+1")), "a\n\"'=1+1\"\n");
        assert_eq!(one(Cell::Text("+57")), "a\n\"'+57\"\n");
        assert_eq!(one(Cell::Text("-2")), "a\n\"'-2\"\n");
        assert_eq!(one(Cell::Text("@SUM(A1)")), "a\n\"'@SUM(A1)\"\n");
        assert_eq!(one(Cell::Text("\tx")), "a\n\"'\tx\"\n");
        assert_eq!(
            one(Cell::Text("=HYPERLINK(\"http://x\")")),
            "a\n\"'=HYPERLINK(\"\"http://x\"\")\"\n"
        );
    }

    #[test]
    fn plain_text_and_numbers_are_left_alone() {
        assert_eq!(one(Cell::Text("CARD-1")), "a\nCARD-1\n");
        assert_eq!(one(Cell::Number("-2950.00".into())), "a\n-2950.00\n");
        assert_eq!(one(Cell::Empty), "a\n\n");
        assert_eq!(
            one(Cell::Text("Tienda \"La 14\", centro")),
            "a\n\"Tienda \"\"La 14\"\", centro\"\n"
        );
    }
}
