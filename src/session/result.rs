//! What a statement returns, and how the command line shows it.

use std::fmt;

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementResult {
    /// A message: "Stream created", "Source `X` (topic: x) was dropped.", …
    Status { message: String },
    /// Rows under column headings, with an optional block of text above them.
    Table { title: Option<String>, columns: Vec<String>, rows: Vec<Vec<String>> },
    /// One line of a stream of lines (`PRINT`), shown as it comes.
    Line(String),
}

impl StatementResult {
    pub fn status(message: impl Into<String>) -> Self {
        StatementResult::Status { message: message.into() }
    }

    pub fn table(columns: &[&str], rows: Vec<Vec<String>>) -> Self {
        StatementResult::Table { title: None, columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
    }
}

impl fmt::Display for StatementResult {
    /// ksqlDB's CLI layout: ` A | B ` headings, a rule, rows, a closing rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementResult::Status { message } => writeln!(f, " {message}"),
            StatementResult::Line(line) => writeln!(f, "{line}"),
            StatementResult::Table { title, columns, rows } => {
                if let Some(title) = title {
                    writeln!(f, "{title}")?;
                }
                let widths: Vec<usize> = (0..columns.len())
                    .map(|i| {
                        rows.iter()
                            .filter_map(|r| r.get(i))
                            .chain(std::iter::once(&columns[i]))
                            .map(|s| s.chars().count())
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
                    let padded: Vec<String> = widths
                        .iter()
                        .enumerate()
                        .map(|(i, w)| format!(" {:<w$} ", cells.get(i).map_or("", |s| s.as_str())))
                        .collect();
                    writeln!(f, "{}", padded.join("|").trim_end())
                };
                let rule = "-".repeat(widths.iter().map(|w| w + 3).sum::<usize>().saturating_sub(1));
                line(f, columns)?;
                writeln!(f, "{rule}")?;
                for row in rows {
                    line(f, row)?;
                }
                writeln!(f, "{rule}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_ksqldb() {
        let table = StatementResult::table(
            &["Stream Name", "Kafka Topic"],
            vec![vec!["PAGEVIEWS".into(), "pv".into()], vec!["S".into(), "a-long-topic".into()]],
        );
        assert_eq!(
            table.to_string(),
            " Stream Name | Kafka Topic\n\
             ----------------------------\n \
             PAGEVIEWS   | pv\n \
             S           | a-long-topic\n\
             ----------------------------\n"
        );
        assert_eq!(StatementResult::status("Stream created").to_string(), " Stream created\n");
    }
}
