//! Date and time functions with Java patterns (`yyyy-MM-dd HH:mm:ss.SSS`, read and written by
//! [`crate::engine::time_format`]): `STRINGTOTIMESTAMP`, `TIMESTAMPTOSTRING`,
//! `STRINGTODATE`, `DATETOSTRING`, `PARSE_DATE`, `FORMAT_DATE`, `PARSE_TIMESTAMP`,
//! `FORMAT_TIMESTAMP`, `PARSE_TIME`, `FORMAT_TIME`.
//!
//! A value that does not parse or cannot be written, a bad pattern or an unknown zone fails
//! the call on its row (null, and an entry in the processing log), as ksqlDB's functions throw.
//! NULL arguments give NULL, except where ksqlDB's Java has no null check
//! (`STRINGTOTIMESTAMP`, `STRINGTODATE`) or a primitive parameter (the BIGINT of
//! `TIMESTAMPTOSTRING`, the INT of `DATETOSTRING`): there they fail. Without a zone, times
//! are UTC (GMT for `PARSE_TIMESTAMP`/`FORMAT_TIMESTAMP`, the JVM's zone, UTC, for the
//! deprecated functions).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringArray, Time32MillisecondArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};
use crate::engine::time_format::{JavaZone, SimpleDateFormat, TimeFormat};

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

/// What a NULL argument does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// The result is NULL.
    Give,
    /// The call fails (no null check in ksqlDB's Java).
    Fail,
    /// A NULL value fails (a primitive Java parameter); a NULL pattern or zone gives NULL.
    FailOnValue,
}

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("stringtotimestamp", with_pattern(DataType::Utf8, true), returns::<1>, |args, _| {
            let millis =
                parse_each(args, Nulls::Fail, |f, text, zone| f.timestamp(text, zone.unwrap_or(&JavaZone::UTC)))?;
            Ok(Arc::new(millis.into_iter().collect::<Int64Array>()))
        }),
        KsqlFunction::udf("parse_timestamp", with_pattern(DataType::Utf8, true), returns::<4>, |args, _| {
            let gmt = JavaZone::Prefixed("GMT", 0);
            let millis = parse_each(args, Nulls::Give, |f, text, zone| f.timestamp(text, zone.unwrap_or(&gmt)))?;
            Ok(Arc::new(millis.into_iter().collect::<TimestampMillisecondArray>()))
        }),
        KsqlFunction::udf("stringtodate", with_pattern(DataType::Utf8, false), returns::<2>, |args, _| {
            let days = parse_each(args, Nulls::Fail, |f, text, _| f.date(text))?;
            Ok(Arc::new(days.into_iter().map(|d| d.map(|d| d as i32)).collect::<Int32Array>()))
        }),
        KsqlFunction::udf("parse_date", with_pattern(DataType::Utf8, false), returns::<3>, |args, _| {
            let days = parse_each(args, Nulls::Give, |f, text, _| f.simple_date(text))?;
            Ok(Arc::new(days.into_iter().map(|d| d.map(|d| d as i32)).collect::<Date32Array>()))
        }),
        KsqlFunction::udf("parse_time", with_pattern(DataType::Utf8, false), returns::<5>, |args, _| {
            let millis = parse_each(args, Nulls::Give, |f, text, _| f.time(text))?;
            Ok(Arc::new(millis.into_iter().map(|m| m.map(|m| m as i32)).collect::<Time32MillisecondArray>()))
        }),
        KsqlFunction::udf("timestamptostring", with_pattern(DataType::Int64, true), returns::<0>, |args, _| {
            let millis = cast(&args[0], &DataType::Int64)?;
            format_each(args, &millis, Nulls::FailOnValue, |f, millis, zone| {
                f.format_timestamp(millis, zone.unwrap_or(&JavaZone::UTC))
            })
        }),
        KsqlFunction::udf("format_timestamp", with_pattern(timestamp(), true), returns::<0>, |args, _| {
            let millis = cast(&cast(&args[0], &timestamp())?, &DataType::Int64)?;
            let gmt = JavaZone::Prefixed("GMT", 0);
            format_each(args, &millis, Nulls::Give, |f, millis, zone| f.format_timestamp(millis, zone.unwrap_or(&gmt)))
        }),
        KsqlFunction::udf("datetostring", with_pattern(DataType::Int32, false), returns::<0>, |args, _| {
            let days = cast(&args[0], &DataType::Int64)?;
            format_each(args, &days, Nulls::FailOnValue, |f, days, _| f.format_date(days))
        }),
        KsqlFunction::udf("format_date", with_pattern(DataType::Date32, false), returns::<0>, |args, _| {
            let days = cast(&cast(&args[0], &DataType::Int32)?, &DataType::Int64)?;
            format_each(args, &days, Nulls::Give, |f, days, _| f.format_date(days))
        }),
        KsqlFunction::udf(
            "format_time",
            with_pattern(DataType::Time32(TimeUnit::Millisecond), false),
            returns::<0>,
            |args, _| {
                let millis = cast(&cast(&args[0], &DataType::Int32)?, &DataType::Int64)?;
                format_each(args, &millis, Nulls::Give, |f, millis, _| f.format_time(millis))
            },
        ),
    ]
}

/// A pattern compiled both ways it is read (`DateTimeFormatter` and, for `PARSE_DATE`,
/// `SimpleDateFormat`), or why it does not compile.
struct Compiled {
    modern: Result<TimeFormat, String>,
    simple: Option<Result<SimpleDateFormat, String>>,
    pattern: String,
}

impl Compiled {
    fn modern(&self) -> Result<&TimeFormat> {
        match &self.modern {
            Ok(format) => Ok(format),
            Err(why) => exec_err!("Invalid pattern '{}': {why}", self.pattern),
        }
    }

    fn timestamp(&self, text: &str, zone: &JavaZone) -> Result<i64> {
        self.modern()?.parse_timestamp(text, zone).or_else(|why| self.failed_parse(text, &why))
    }

    fn date(&self, text: &str) -> Result<i64> {
        self.modern()?.parse_date(text).map(i64::from).or_else(|why| self.failed_parse(text, &why))
    }

    fn time(&self, text: &str) -> Result<i64> {
        self.modern()?.parse_time(text).or_else(|why| self.failed_parse(text, &why))
    }

    fn simple_date(&mut self, text: &str) -> Result<i64> {
        let simple = self.simple.get_or_insert_with(|| SimpleDateFormat::try_new(&self.pattern));
        let days = match simple {
            Ok(format) => format.parse_date(text),
            Err(why) => return exec_err!("Invalid pattern '{}': {why}", self.pattern),
        };
        days.map(i64::from).or_else(|why| self.failed_parse(text, &why))
    }

    fn failed_parse<T>(&self, text: &str, why: &str) -> Result<T> {
        exec_err!("Failed to parse '{text}' with formatter '{}': {why}", self.pattern)
    }

    fn format_timestamp(&self, millis: i64, zone: &JavaZone) -> Result<String> {
        self.modern()?.format_timestamp(millis, zone).or_else(|why| self.failed_format(millis, &why))
    }

    fn format_date(&self, days: i64) -> Result<String> {
        self.modern()?.format_date(days).or_else(|why| self.failed_format(days, &why))
    }

    fn format_time(&self, millis: i64) -> Result<String> {
        self.modern()?.format_time(millis).or_else(|why| self.failed_format(millis, &why))
    }

    fn failed_format<T>(&self, value: i64, why: &str) -> Result<T> {
        exec_err!("Failed to format {value} with formatter '{}': {why}", self.pattern)
    }
}

/// Patterns compiled once per distinct text.
#[derive(Default)]
struct Patterns(HashMap<String, Compiled>);

impl Patterns {
    fn get(&mut self, pattern: &str) -> &mut Compiled {
        self.0.entry(pattern.to_owned()).or_insert_with(|| Compiled {
            modern: TimeFormat::try_new(pattern),
            simple: None,
            pattern: pattern.to_owned(),
        })
    }
}

/// Zones read once per distinct text.
#[derive(Default)]
struct Zones(HashMap<String, Result<JavaZone, String>>);

impl Zones {
    fn get(&mut self, id: &str) -> Result<JavaZone> {
        match self.0.entry(id.to_owned()).or_insert_with(|| JavaZone::parse(id)) {
            Ok(zone) => Ok(*zone),
            Err(why) => exec_err!("Invalid time zone '{id}': {why}"),
        }
    }
}

/// The zone argument of `row`, if the call has one: `Err` when it is null.
fn zone_arg(args: &Arrays, row: usize, zones: &mut Zones) -> Result<Option<Result<JavaZone>>, ()> {
    match args.get(2).and_then(|z| z.as_string_opt::<i32>()) {
        None => Ok(None),
        Some(ids) if ids.is_null(row) => Err(()),
        Some(ids) => Ok(Some(zones.get(ids.value(row)))),
    }
}

/// `read` over each `(text, pattern[, zone])` row; a row that fails fails the call.
fn parse_each(
    args: &Arrays,
    nulls: Nulls,
    read: impl Fn(&mut Compiled, &str, Option<&JavaZone>) -> Result<i64>,
) -> Result<Vec<Option<i64>>> {
    let (texts, patterns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let (mut cache, mut zones) = (Patterns::default(), Zones::default());
    (0..texts.len())
        .map(|row| {
            let zone = zone_arg(args, row, &mut zones);
            if texts.is_null(row) || patterns.is_null(row) || zone.is_err() {
                return match nulls {
                    Nulls::Give => Ok(None),
                    _ => exec_err!("a null argument"),
                };
            }
            let zone = match zone {
                Ok(Some(zone)) => Some(zone?),
                _ => None,
            };
            read(cache.get(patterns.value(row)), texts.value(row), zone.as_ref()).map(Some)
        })
        .collect()
}

/// `write` over each `(value, pattern[, zone])` row, the value as an integer; a row that
/// fails fails the call.
fn format_each(
    args: &Arrays,
    values: &ArrayRef,
    nulls: Nulls,
    write: impl Fn(&Compiled, i64, Option<&JavaZone>) -> Result<String>,
) -> Result<ArrayRef> {
    let values = values.as_primitive::<Int64Type>();
    let patterns = args[1].as_string::<i32>();
    let (mut cache, mut zones) = (Patterns::default(), Zones::default());
    let strings: StringArray = (0..values.len())
        .map(|row| {
            if values.is_null(row) && nulls != Nulls::Give {
                return exec_err!("a null value for a primitive Java parameter");
            }
            let zone = zone_arg(args, row, &mut zones);
            if values.is_null(row) || patterns.is_null(row) || zone.is_err() {
                return Ok(None);
            }
            let zone = match zone {
                Ok(Some(zone)) => Some(zone?),
                _ => None,
            };
            write(cache.get(patterns.value(row)), values.value(row), zone.as_ref()).map(Some)
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(strings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[test]
    fn nulls_and_failures_are_ksqldbs() {
        let patterns = strings(&[Some("yyyy-MM-dd")]);
        let timestamp =
            |f: &mut Compiled, text: &str, zone: Option<&JavaZone>| f.timestamp(text, zone.unwrap_or(&JavaZone::UTC));
        assert_eq!(parse_each(&[strings(&[None]), patterns.clone()], Nulls::Give, timestamp).unwrap(), [None]);
        assert!(parse_each(&[strings(&[None]), patterns.clone()], Nulls::Fail, timestamp).is_err());
        let time = |f: &mut Compiled, text: &str, _: Option<&JavaZone>| f.time(text);
        assert!(parse_each(&[strings(&[Some("25:00")]), strings(&[Some("HH:mm")])], Nulls::Give, time).is_err());
        let date = |f: &mut Compiled, text: &str, _: Option<&JavaZone>| f.simple_date(text);
        let args = [strings(&[Some("2021-03-15 10")]), strings(&[Some("yyyy-MM-dd HH")])];
        assert!(parse_each(&args, Nulls::Give, date).is_err());
        let write = |f: &Compiled, millis: i64, zone: Option<&JavaZone>| {
            f.format_timestamp(millis, zone.unwrap_or(&JavaZone::UTC))
        };
        let none: ArrayRef = Arc::new(Int64Array::from(vec![None::<i64>]));
        assert!(format_each(&[none.clone(), patterns.clone()], &none, Nulls::FailOnValue, write).is_err());
        assert!(format_each(&[none.clone(), patterns.clone()], &none, Nulls::Give, write).is_ok());
        let zero: ArrayRef = Arc::new(Int64Array::from(vec![0]));
        let bad_zone = strings(&[Some("Nowhere/Special")]);
        assert!(format_each(&[zero.clone(), patterns.clone(), bad_zone], &zero, Nulls::Give, write).is_err());
        let out = format_each(&[zero.clone(), strings(&[Some("yyyy-MM-dd'T'HH:mmXXX")])], &zero, Nulls::Give, write);
        assert_eq!(out.unwrap().as_string::<i32>().value(0), "1970-01-01T00:00Z");
    }
}
