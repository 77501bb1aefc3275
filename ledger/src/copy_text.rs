//! Rows for PostgreSQL's `COPY … FROM STDIN` in its text format, for the bulk paths that
//! write hundreds of thousands of rows in one transaction (a city's day of cases, a load's
//! events), where multi-row INSERTs cost the server a parse and a plan per statement.

use chrono::{DateTime, Utc};

/// Appends one row to `out`: each field escaped (backslash, tab, line breaks), `\N` for
/// none, tab-separated, a line feed at the end.
pub fn row(out: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match field {
            None => out.push_str("\\N"),
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.push('\n');
}

/// An instant as COPY reads a `TIMESTAMPTZ`, to the microsecond PostgreSQL keeps.
pub fn instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_would_break_a_row_are_escaped() {
        let mut out = String::new();
        row(&mut out, &[Some("a\tb"), None, Some("line\nnext\\end\r")]);
        assert_eq!(out, "a\\tb\t\\N\tline\\nnext\\\\end\\r\n");
    }
}
