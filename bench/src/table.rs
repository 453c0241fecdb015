//! Plain-text tables for terminals: the first column left-aligned (names),
//! the others right-aligned (numbers), columns two spaces apart.

/// A table being built row by row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        let mut table = Table::default();
        table.row(header);
        table
    }

    /// Appends a row; a row shorter than the header leaves its last
    /// cells empty.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as lines, each prefixed by `indent`, with a trailing
    /// newline.
    pub fn render(&self, indent: &str) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i == 0 {
                    line.push_str(&format!("{cell:<width$}"));
                } else {
                    line.push_str(&format!("  {cell:>width$}"));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A count with thousands separators: `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate or other positive quantity, readable at a glance: thousands
/// separators from 100 up, one decimal below.
pub fn quantity(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.abs() >= 100.0 {
        let rounded = value.abs().round() as u64;
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", thousands(rounded))
    } else {
        format!("{value:.1}")
    }
}

/// Milliseconds with two decimals (latencies on loopback are often
/// below one).
pub fn millis(ms: f64) -> String {
    format!("{ms:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut t = Table::new(["op", "count", "p99 ms"]);
        t.row(["put", "12", "3.40"]);
        t.row(["election", "1,200", "15.00"]);
        assert_eq!(
            t.render("  "),
            "  op        count  p99 ms\n\
             \x20 put          12    3.40\n\
             \x20 election  1,200   15.00\n"
        );
    }

    #[test]
    fn short_rows_leave_cells_empty() {
        let mut t = Table::new(["a", "b", "c"]);
        t.row(["x"]);
        assert_eq!(t.render(""), "a  b  c\nx\n");
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(quantity(8612.4), "8,612");
        assert_eq!(quantity(99.94), "99.9");
        assert_eq!(quantity(0.5), "0.5");
        assert_eq!(quantity(-1500.0), "-1,500");
        assert_eq!(millis(0.1234), "0.12");
        assert_eq!(millis(73.0), "73.00");
    }
}
