//! Date and time functions with Java patterns (`yyyy-MM-dd HH:mm:ss.SSS`):
//! `STRINGTOTIMESTAMP`, `TIMESTAMPTOSTRING`, `STRINGTODATE`, `DATETOSTRING`, `PARSE_DATE`,
//! `FORMAT_DATE`, `PARSE_TIMESTAMP`, `FORMAT_TIMESTAMP`, `PARSE_TIME`, `FORMAT_TIME`.
//!
//! A value that does not parse, or a bad pattern or zone, gives null for that row, as
//! ksqlDB's functions do when they throw.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringArray, Time32MillisecondArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};
use crate::engine::time_format::TimeFormat;

const MILLIS_PER_DAY: i64 = 86_400_000;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// `(text, pattern[, zone])` or `(value, pattern[, zone])` with `first` the value's type.
fn with_pattern(first: DataType, zone: bool) -> Signature {
    let mut signatures = vec![TypeSignature::Exact(vec![first.clone(), DataType::Utf8])];
    if zone {
        signatures.push(TypeSignature::Exact(vec![first, DataType::Utf8, DataType::Utf8]));
    }
    Signature::one_of(signatures, Volatility::Immutable)
}

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("stringtotimestamp", with_pattern(DataType::Utf8, true), returns::<1>, |args, _| {
            Ok(Arc::new(parse_each(args).collect::<Result<Int64Array>>()?))
        }),
        KsqlFunction::udf("parse_timestamp", with_pattern(DataType::Utf8, true), returns::<4>, |args, _| {
            Ok(Arc::new(parse_each(args).collect::<Result<TimestampMillisecondArray>>()?))
        }),
        KsqlFunction::udf("stringtodate", with_pattern(DataType::Utf8, false), returns::<2>, |args, _| {
            let days = parse_each(args).map(|m| m.map(|m| m.map(|m| m.div_euclid(MILLIS_PER_DAY) as i32)));
            Ok(Arc::new(days.collect::<Result<Int32Array>>()?))
        }),
        KsqlFunction::udf("parse_date", with_pattern(DataType::Utf8, false), returns::<3>, |args, _| {
            let days = parse_each(args).map(|m| m.map(|m| m.map(|m| m.div_euclid(MILLIS_PER_DAY) as i32)));
            Ok(Arc::new(days.collect::<Result<Date32Array>>()?))
        }),
        KsqlFunction::udf("parse_time", with_pattern(DataType::Utf8, false), returns::<5>, parse_time),
        KsqlFunction::udf("timestamptostring", with_pattern(DataType::Int64, true), returns::<0>, |args, _| {
            format_each(args, cast(&args[0], &DataType::Int64)?, 1)
        }),
        KsqlFunction::udf("format_timestamp", with_pattern(timestamp(), true), returns::<0>, |args, _| {
            format_each(args, cast(&args[0], &DataType::Int64)?, 1)
        }),
        KsqlFunction::udf("datetostring", with_pattern(DataType::Int32, false), returns::<0>, |args, _| {
            format_each(args, cast(&args[0], &DataType::Int64)?, MILLIS_PER_DAY)
        }),
        KsqlFunction::udf("format_date", with_pattern(DataType::Date32, false), returns::<0>, |args, _| {
            format_each(args, cast(&cast(&args[0], &DataType::Int32)?, &DataType::Int64)?, MILLIS_PER_DAY)
        }),
        KsqlFunction::udf(
            "format_time",
            with_pattern(DataType::Time32(TimeUnit::Millisecond), false),
            returns::<0>,
            |args, _| format_each(args, cast(&cast(&args[0], &DataType::Int32)?, &DataType::Int64)?, 1),
        ),
    ]
}

/// Patterns translated once per distinct text.
#[derive(Default)]
struct Patterns(HashMap<String, Option<TimeFormat>>);

impl Patterns {
    fn get(&mut self, pattern: &str) -> Option<&TimeFormat> {
        self.0.entry(pattern.to_owned()).or_insert_with(|| TimeFormat::try_new(pattern).ok()).as_ref()
    }
}

fn zone_at(args: &Arrays, row: usize) -> Result<Option<chrono_tz::Tz>, ()> {
    match args.get(2).map(|z| z.as_string::<i32>()) {
        None => Ok(None),
        Some(zones) if zones.is_null(row) => Err(()),
        Some(zones) => zones.value(row).parse::<chrono_tz::Tz>().map(Some).map_err(|_| ()),
    }
}

/// Milliseconds since the epoch of each `(text, pattern[, zone])` row; text that does not
/// parse, a bad pattern or an unknown zone is an error.
fn parse_each(args: &Arrays) -> impl Iterator<Item = Result<Option<i64>>> + '_ {
    let (texts, patterns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut cache = Patterns::default();
    (0..texts.len()).map(move |row| {
        if texts.is_null(row) || patterns.is_null(row) {
            return Ok(None);
        }
        let zone = match zone_at(args, row) {
            Ok(zone) => zone,
            Err(()) if args[2].is_null(row) => return Ok(None),
            Err(()) => return exec_err!("Unknown time zone '{}'", args[2].as_string::<i32>().value(row)),
        };
        let (text, pattern) = (texts.value(row), patterns.value(row));
        match cache.get(pattern).and_then(|format| format.parse_millis_in(text, zone)) {
            Some(millis) => Ok(Some(millis)),
            None => exec_err!("Failed to parse '{text}' with the pattern '{pattern}'"),
        }
    })
}

fn parse_time(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, patterns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut cache = Patterns::default();
    let times: Time32MillisecondArray = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return None;
            }
            cache.get(patterns.value(row))?.parse_time_millis(texts.value(row)).map(|m| m as i32)
        })
        .collect();
    Ok(Arc::new(times))
}

/// Each `(value, pattern[, zone])` row as text, the value in units of `unit_ms`.
fn format_each(args: &Arrays, values: ArrayRef, unit_ms: i64) -> Result<ArrayRef> {
    let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let patterns = args[1].as_string::<i32>();
    let mut cache = Patterns::default();
    let strings: StringArray = (0..values.len())
        .map(|row| {
            if values.is_null(row) || patterns.is_null(row) {
                return None;
            }
            let zone = zone_at(args, row).ok()?;
            cache.get(patterns.value(row))?.format_millis_in(values.value(row).checked_mul(unit_ms)?, zone)
        })
        .collect();
    Ok(Arc::new(strings))
}
