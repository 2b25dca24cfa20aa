//! How results are printed: compact aligned columns and `key  value` blocks for people, the
//! response's JSON for machines (`--json`), and the small formatters both share.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::problem::Failure;

/// Shown for an absent value.
pub const NONE: &str = "-";

/// Rows under headers, each column as wide as its widest cell; the last column is not padded.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    #[must_use]
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (one cell per header).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// The table as text, one line per row after the header line.
    #[must_use]
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i == last {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `key  value` lines with the values aligned.
#[must_use]
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// Prints `key  value` lines.
pub fn print_fields(fields: &[(&str, String)]) {
    print!("{}", render_fields(fields));
}

/// Prints `value` as pretty JSON.
///
/// # Errors
/// [`Failure::Other`] if it cannot be serialized (it always can: it was deserialized).
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Other(format!("cannot print the answer as JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// An optional value, or `-`.
#[must_use]
pub fn opt<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| NONE.to_owned(), |v| v.to_string())
}

/// A time as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`.
#[must_use]
pub fn time(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(
        || NONE.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// A duration in milliseconds as `850ms`, `12.3s` or `4m05s`, or `-`.
#[must_use]
pub fn millis(ms: Option<i64>) -> String {
    match ms {
        None => NONE.to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// Text for one cell: line breaks become spaces, and past `max` characters it ends in `…`.
#[must_use]
pub fn cell(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut s: String = flat.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let mut t = Table::new(&["ID", "NAME", "STATUS"]);
        t.row(vec!["1".into(), "a-long-name".into(), "ready".into()]);
        t.row(vec!["22".into(), "b".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME         STATUS\n1   a-long-name  ready\n22  b            -\n"
        );
    }

    #[test]
    fn fields_durations_and_cells_format_compactly() {
        assert_eq!(
            render_fields(&[("id", "1".into()), ("status", "ok".into())]),
            "id      1\nstatus  ok\n"
        );
        assert_eq!(millis(Some(850)), "850ms");
        assert_eq!(millis(Some(12_345)), "12.3s");
        assert_eq!(millis(Some(245_000)), "4m05s");
        assert_eq!(millis(None), "-");
        assert_eq!(cell("a\n  b", 10), "a b");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(opt(None::<u8>), "-");
    }
}
