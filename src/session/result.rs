//! What a statement returns, and how the command line shows it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementResult {
    /// A message: "Stream created", "Source `X` (topic: x) was dropped.", …
    Status { message: String },
    /// Rows under column headings, with an optional block of text above them.
    Table { title: Option<String>, columns: Vec<String>, rows: Vec<Vec<String>> },
    /// One line of a stream of lines (`PRINT`), shown as it comes.
    Line(String),
    /// A push query's columns, before its rows.
    Header(Arc<RowsHeader>),
    /// A query's rows: a push query's as they come, a pull query's all at once.
    Rows(QueryRows),
    /// A result as the command line shows it, with the entity ksqlDB's REST API answers
    /// for it (`{"@type":"streams",…}`).
    Entity { shown: Box<StatementResult>, entity: serde_json::Value },
}

/// Where a statement's results go, as they come.
///
/// Any `FnMut(StatementResult)` is one. A receiver that can fall behind (an HTTP client)
/// also implements [`ResultSink::flush`], which streaming statements await between batches:
/// it holds them back until the results sent so far are taken, and stops them once nobody
/// takes results any more.
pub trait ResultSink: Send {
    fn send(&mut self, result: StatementResult);

    /// Waits until the results sent so far are taken; false when they never will be (the
    /// statement should stop).
    fn flush(&mut self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(std::future::ready(true))
    }
}

impl<F: FnMut(StatementResult) + Send> ResultSink for F {
    fn send(&mut self, result: StatementResult) {
        self(result)
    }
}

/// What a query's rows are.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsHeader {
    /// `transient_<SOURCE>_<n>`, as ksqlDB names push and pull queries.
    pub query_id: String,
    /// The rows' columns.
    pub schema: SchemaRef,
    /// Per column: whether it is a key column (a deleted row shows only these).
    pub keys: Vec<bool>,
    /// A push query (rows as they come) rather than a pull query (all at once).
    pub push: bool,
    /// The message the rows end with, if any (`Query Completed` after a pull query's scan
    /// of a stream, as ksqlDB's REST API writes it).
    pub completion: Option<&'static str>,
}

/// Rows of a query, with the header they are under.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRows {
    pub header: Arc<RowsHeader>,
    pub batch: RecordBatch,
    /// Rows that are deletions (a table's changes): only their key columns hold values.
    pub tombstones: Option<BooleanArray>,
}

impl QueryRows {
    /// Whether row `i` is a deletion.
    pub fn is_tombstone(&self, i: usize) -> bool {
        self.tombstones.as_ref().is_some_and(|t| t.value(i))
    }

    /// Each row's cells as text (`null` for none; a deletion's value columns are null).
    pub fn cells(&self) -> Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
        let options = FormatOptions::default().with_null("null");
        let formatters = self
            .batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((0..self.batch.num_rows())
            .map(|row| {
                let deleted = self.is_tombstone(row);
                formatters
                    .iter()
                    .enumerate()
                    .map(|(c, f)| {
                        if deleted && !self.header.keys.get(c).copied().unwrap_or(false) {
                            "null".into()
                        } else {
                            f.value(row).to_string()
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

/// A push query's columns are at least this wide when its rows are shown.
const MIN_COLUMN_WIDTH: usize = 12;

impl RowsHeader {
    fn names(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }
}

/// How the command line lays out a push query's rows (here, and for a server's rows in
/// `eddy --server`): columns at least 12 wide between `|`, the names between rules.
pub mod push_layout {
    /// Each column's width for these names.
    pub fn widths(names: &[String]) -> Vec<usize> {
        names.iter().map(|c| c.chars().count().max(super::MIN_COLUMN_WIDTH)).collect()
    }

    /// `+------------+------------+`
    pub fn rule(widths: &[usize]) -> String {
        format!("+{}+", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("+"))
    }

    /// `|a           |b           |`
    pub fn row(cells: &[String], widths: &[usize]) -> String {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("|{}|", padded.join("|"))
    }
}

impl StatementResult {
    pub fn status(message: impl Into<String>) -> Self {
        StatementResult::Status { message: message.into() }
    }

    pub fn table(columns: &[&str], rows: Vec<Vec<String>>) -> Self {
        StatementResult::Table { title: None, columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
    }

    /// This result with its REST entity.
    pub fn with_entity(self, entity: serde_json::Value) -> Self {
        StatementResult::Entity { shown: Box::new(self), entity }
    }
}

impl fmt::Display for StatementResult {
    /// ksqlDB's CLI layout: ` A | B ` headings, a rule, rows, a closing rule; a push query's
    /// rows between `|` in columns at least 12 wide, as they come.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementResult::Status { message } => writeln!(f, " {message}"),
            StatementResult::Line(line) => writeln!(f, "{line}"),
            StatementResult::Entity { shown, .. } => shown.fmt(f),
            StatementResult::Header(header) => {
                let names = header.names();
                let widths = push_layout::widths(&names);
                let rule = push_layout::rule(&widths);
                writeln!(f, "{rule}")?;
                writeln!(f, "{}", push_layout::row(&names, &widths))?;
                writeln!(f, "{rule}")
            }
            StatementResult::Rows(rows) => {
                let cells = rows.cells().map_err(|_| fmt::Error)?;
                if rows.header.push {
                    let widths = push_layout::widths(&rows.header.names());
                    for row in &cells {
                        writeln!(f, "{}", push_layout::row(row, &widths))?;
                    }
                    Ok(())
                } else {
                    StatementResult::Table { title: None, columns: rows.header.names(), rows: cells }.fmt(f)
                }
            }
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
