//! Text tables as etcdctl draws them (its tablewriter settings): a ruled
//! box, header centred, cells right-aligned, one space of margin.

/// A table: a header row and data rows of the same width.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, each line ending in a newline.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let rule: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .collect::<String>()
            + "+\n";
        let line = |cells: &[String], centre: bool| -> String {
            let mut text = String::new();
            for (cell, width) in cells.iter().zip(&widths) {
                let gap = width - cell.chars().count();
                let (left, right) = if centre {
                    (gap / 2, gap - gap / 2)
                } else {
                    (gap, 0)
                };
                text.push_str(&format!(
                    "| {}{cell}{} ",
                    " ".repeat(left),
                    " ".repeat(right)
                ));
            }
            text + "|\n"
        };
        let mut text = rule.clone();
        text.push_str(&line(&self.header, true));
        text.push_str(&rule);
        for row in &self.rows {
            text.push_str(&line(row, false));
        }
        text.push_str(&rule);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_etcdctl() {
        let mut table = Table::new(&["ID", "STATUS", "NAME", "IS LEARNER"]);
        table.row(vec![
            "2e1259d415f2a040".into(),
            "started".into(),
            "e1".into(),
            "false".into(),
        ]);
        table.row(vec![
            "479d1f654aca3f2c".into(),
            "unstarted".into(),
            "".into(),
            "true".into(),
        ]);
        let expected = "\
+------------------+-----------+------+------------+
|        ID        |  STATUS   | NAME | IS LEARNER |
+------------------+-----------+------+------------+
| 2e1259d415f2a040 |   started |   e1 |      false |
| 479d1f654aca3f2c | unstarted |      |       true |
+------------------+-----------+------+------------+
";
        assert_eq!(table.render(), expected);
    }
}
