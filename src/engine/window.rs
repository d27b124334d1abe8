//! Time windows (`WINDOW TUMBLING (SIZE …)`, `WINDOW HOPPING (SIZE …, ADVANCE BY …)`): each
//! row is assigned to the windows its event time falls in, as the columns `WINDOWSTART` and
//! `WINDOWEND` (a hopping window repeats the row once per window), before aggregation groups
//! by them.
//!
//! Late rows follow Kafka Streams: stream time is the largest event time seen; a row is
//! dropped from a window once `WINDOWEND + grace <= stream time` (the window has closed).
//! Without `GRACE PERIOD` the grace is 24 hours, as ksqlDB's default.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};

use super::plan::PlanError;
use crate::sql::ast::{WindowKind, WindowSpec};

/// The milliseconds of `INTERVAL '10' SECONDS` or `INTERVAL '10 seconds'` (an `OVER`
/// frame's bound).
pub fn interval_ms(interval: &datafusion::sql::sqlparser::ast::Interval) -> Result<i64, PlanError> {
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
            other => other.to_string(),
        },
        other => other.to_string(),
    };
    let refused =
        || PlanError::user(format!("{interval} is not an interval of milliseconds, seconds, minutes, hours or days"));
    let mut words = text.split_whitespace();
    let amount: u64 = words.next().and_then(|n| n.parse().ok()).ok_or_else(refused)?;
    let unit = match (&interval.leading_field, words.next()) {
        (Some(field), None) => field.to_string(),
        (None, Some(unit)) => unit.to_owned(),
        _ => return Err(refused()),
    };
    let unit = crate::sql::ast::TimeUnit::parse(&unit).ok_or_else(refused)?;
    i64::try_from(amount.saturating_mul(unit.millis())).map_err(|_| refused())
}

/// The grace period when a query names none: 24 hours.
pub const DEFAULT_GRACE_MS: i64 = 24 * 3_600_000;

/// Tumbling (advance = size) or hopping windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
    pub hopping: bool,
    /// Session windows: the inactivity gap that ends a session (the size and advance are
    /// then unused).
    pub session_gap_ms: Option<i64>,
}

impl TimeWindows {
    /// The windows of a `WINDOW` clause; SESSION windows are refused here (not yet).
    pub fn try_new(spec: &WindowSpec) -> Result<TimeWindows, PlanError> {
        let millis = |span: crate::sql::ast::TimeSpan| i64::try_from(span.millis()).unwrap_or(i64::MAX);
        let grace_ms = spec.grace_period.map_or(DEFAULT_GRACE_MS, millis);
        let (size_ms, advance_ms, hopping) = match spec.kind {
            WindowKind::Tumbling { size } => (millis(size), millis(size), false),
            WindowKind::Hopping { size, advance_by } => (millis(size), millis(advance_by), true),
            WindowKind::Session { gap } => {
                let gap_ms = millis(gap);
                if gap_ms <= 0 {
                    return Err(PlanError::user("A session window's gap must be positive"));
                }
                return Ok(TimeWindows {
                    size_ms: 0,
                    advance_ms: 0,
                    grace_ms,
                    hopping: false,
                    session_gap_ms: Some(gap_ms),
                });
            }
        };
        if size_ms <= 0 || advance_ms <= 0 {
            return Err(PlanError::user("A window's size and advance must be positive"));
        }
        if advance_ms > size_ms {
            return Err(PlanError::user(format!(
                "A window's advance ({advance_ms} ms) cannot be larger than its size ({size_ms} ms)"
            )));
        }
        Ok(TimeWindows { size_ms, advance_ms, grace_ms, hopping, session_gap_ms: None })
    }

    pub fn is_session(&self) -> bool {
        self.session_gap_ms.is_some()
    }

    /// A window with end `e` has closed once stream time reaches `e` plus this: its grace
    /// for time windows; for a session, also its gap (a record within the gap could still
    /// extend it), and one more (a record exactly at the gap still merges).
    pub fn close_delay(&self) -> i64 {
        match self.session_gap_ms {
            Some(gap) => gap.saturating_add(self.grace_ms).saturating_add(1),
            None => self.grace_ms,
        }
    }

    /// `WINDOW_TYPE` as a windowed sink declares it.
    pub fn kind_name(&self) -> &'static str {
        if self.is_session() {
            "SESSION"
        } else if self.hopping {
            "HOPPING"
        } else {
            "TUMBLING"
        }
    }

    /// The starts of the windows `time` falls in (never negative, as Kafka Streams makes them).
    fn starts(&self, time: i64) -> impl Iterator<Item = i64> + '_ {
        let last = time - time.rem_euclid(self.advance_ms);
        // The first window ending after `time`: the smallest start above `time - size`.
        let first = (time - self.size_ms + 1).max(0);
        let first = first + (self.advance_ms - first.rem_euclid(self.advance_ms)) % self.advance_ms;
        (first..=last).step_by(self.advance_ms as usize).filter(move |s| *s >= 0 && *s <= time)
    }

    /// `rows` (with their event times at `row_time`) repeated once per open window, with
    /// `WINDOWSTART` and `WINDOWEND` after their columns; `stream_time` moves forward.
    pub fn assign(&self, rows: &RecordBatch, row_time: usize, stream_time: &mut i64) -> Result<RecordBatch, PlanError> {
        let times = rows.column(row_time).as_primitive::<Int64Type>();
        let (mut sources, mut starts) = (Vec::new(), Vec::new());
        for row in 0..rows.num_rows() {
            if times.is_null(row) {
                continue;
            }
            let time = times.value(row);
            *stream_time = (*stream_time).max(time);
            for start in self.starts(time) {
                if start + self.size_ms + self.grace_ms > *stream_time {
                    sources.push(row as u32);
                    starts.push(start);
                }
            }
        }
        let sources = UInt32Array::from(sources);
        // A windowed source's own window is replaced by the new one.
        let mut columns: Vec<ArrayRef> = rows
            .schema()
            .fields()
            .iter()
            .zip(rows.columns())
            .filter(|(f, _)| !matches!(f.name().as_str(), "WINDOWSTART" | "WINDOWEND"))
            .map(|(_, c)| take(c.as_ref(), &sources, None))
            .collect::<Result<_, _>>()?;
        let ends: Vec<i64> = starts.iter().map(|s| s + self.size_ms).collect();
        columns.push(Arc::new(Int64Array::from(starts)));
        columns.push(Arc::new(Int64Array::from(ends)));
        Ok(RecordBatch::try_new(windowed_schema(&rows.schema()), columns)?)
    }
}

/// One window's share of a batch of windowed rows, as an aggregation takes them in.
pub(crate) struct WindowRows {
    pub start: i64,
    pub end: i64,
    /// Its rows' numbers in the batch (`None`: every row of the batch).
    pub rows: Option<UInt32Array>,
    /// Its rows' grouping columns, each aggregate's arguments, and event times.
    pub keys: Vec<ArrayRef>,
    pub arguments: Vec<Vec<ArrayRef>>,
    pub times: Int64Array,
}

/// A batch's windowed rows (each row's window start and end, grouping columns, aggregate
/// arguments and event time) split by window, in the order of each window's first row.
pub(crate) fn split_by_window(
    starts: &Int64Array,
    ends: &Int64Array,
    keys: &[ArrayRef],
    arguments: &[Vec<ArrayRef>],
    times: &Int64Array,
) -> Result<Vec<WindowRows>, PlanError> {
    // A batch spans few windows.
    let mut windows: Vec<(i64, i64)> = Vec::new();
    for (start, end) in starts.values().iter().zip(ends.values()) {
        if !windows.iter().any(|(s, _)| s == start) {
            windows.push((*start, *end));
        }
    }
    if let [(start, end)] = windows[..] {
        let (keys, arguments, times) = (keys.to_vec(), arguments.to_vec(), times.clone());
        return Ok(vec![WindowRows { start, end, rows: None, keys, arguments, times }]);
    }
    windows
        .into_iter()
        .map(|(start, end)| {
            let mine: UInt32Array =
                (0..starts.len() as u32).filter(|i| starts.value(*i as usize) == start).collect::<Vec<_>>().into();
            let pick = |a: &ArrayRef| take(a.as_ref(), &mine, None);
            Ok(WindowRows {
                start,
                end,
                keys: keys.iter().map(pick).collect::<Result<_, _>>()?,
                arguments: arguments
                    .iter()
                    .map(|args| args.iter().map(pick).collect::<Result<Vec<_>, _>>())
                    .collect::<Result<_, _>>()?,
                times: take(times, &mine, None)?.as_primitive::<Int64Type>().clone(),
                rows: Some(mine),
            })
        })
        .collect()
}

/// A row schema with `WINDOWSTART` and `WINDOWEND` after its columns (replacing a windowed
/// source's own).
pub fn windowed_schema(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| !matches!(f.name().as_str(), "WINDOWSTART" | "WINDOWEND"))
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("WINDOWSTART", DataType::Int64, false));
    fields.push(Field::new("WINDOWEND", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_where_kafka_streams_starts_them() {
        let tumbling =
            TimeWindows { size_ms: 30_000, advance_ms: 30_000, grace_ms: 0, hopping: false, session_gap_ms: None };
        assert_eq!(tumbling.starts(45_000).collect::<Vec<_>>(), [30_000]);
        let hopping =
            TimeWindows { size_ms: 30_000, advance_ms: 10_000, grace_ms: 0, hopping: true, session_gap_ms: None };
        assert_eq!(hopping.starts(45_000).collect::<Vec<_>>(), [20_000, 30_000, 40_000]);
        assert_eq!(hopping.starts(0).collect::<Vec<_>>(), [0], "no window starts before 0");
        assert_eq!(hopping.starts(10_000).collect::<Vec<_>>(), [0, 10_000]);
    }
}
