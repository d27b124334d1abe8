//! Date and time arithmetic: `TIMESTAMPADD`/`TIMESTAMPSUB`, `DATEADD`/`DATESUB`,
//! `TIMEADD`/`TIMESUB` (the unit is a bare word: `TIMESTAMPADD(SECONDS, 5, ts)`, turned into
//! a string by the rewrite), `UNIX_DATE`, `UNIX_TIMESTAMP`, `FROM_UNIXTIME`, `FROM_DAYS`,
//! `CONVERT_TZ`; and `GEO_DISTANCE`.
//!
//! The arithmetic is ksqlDB's Java: `DATEADD` adds milliseconds to the date's and truncates
//! toward zero to whole days (an hour before 1970-01-01 is still 1970-01-01), `TIMEADD`
//! wraps around midnight after `TimeUnit.toNanos` (which saturates), `TIMESTAMPADD` wraps as
//! a long does. The amount is an INT. `FROM_DAYS` takes a primitive `int` (NULL fails);
//! `CONVERT_TZ` reads zones as `ZoneId.of` and offsets them as `java.util.TimeZone`;
//! `GEO_DISTANCE` takes primitive doubles (NULL fails, NaN passes its range checks).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int32Array, Int64Array, Time32MillisecondArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};
use crate::engine::time_format::JavaZone;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The functions taking a unit, and whether they add.
pub const UNIT_FUNCTIONS: [&str; 6] = ["timestampadd", "timestampsub", "dateadd", "datesub", "timeadd", "timesub"];

pub fn functions() -> Vec<ScalarUDF> {
    let arithmetic = |name: &'static str, result: fn(&[DataType]) -> Result<DataType>, invoke: super::Invoke| {
        KsqlFunction::udf(name, Signature::any(3, Volatility::Immutable), result, invoke)
    };
    vec![
        arithmetic("timestampadd", |a| unit_result("timestampadd", a, timestamp()), |a, _| shift_timestamps(a, 1)),
        arithmetic("timestampsub", |a| unit_result("timestampsub", a, timestamp()), |a, _| shift_timestamps(a, -1)),
        arithmetic("dateadd", |a| unit_result("dateadd", a, DataType::Date32), |a, _| shift_dates(a, 1)),
        arithmetic("datesub", |a| unit_result("datesub", a, DataType::Date32), |a, _| shift_dates(a, -1)),
        arithmetic("timeadd", |a| unit_result("timeadd", a, time()), |a, _| shift_times(a, 1)),
        arithmetic("timesub", |a| unit_result("timesub", a, time()), |a, _| shift_times(a, -1)),
        KsqlFunction::udf("unix_date", none_or_one(), returns::<2>, |args, _| match args.first() {
            Some(date) => Ok(cast(&cast(date, &DataType::Date32)?, &DataType::Int32)?),
            None => {
                let today = (crate::log::record::now_ms().div_euclid(MILLIS_PER_DAY)) as i32;
                Ok(Arc::new(Int32Array::from(vec![today])))
            }
        }),
        KsqlFunction::udf("unix_timestamp", none_or_one(), returns::<1>, |args, _| match args.first() {
            Some(ts) => Ok(cast(&cast(ts, &DataType::Timestamp(TimeUnit::Millisecond, None))?, &DataType::Int64)?),
            None => Ok(Arc::new(Int64Array::from(vec![crate::log::record::now_ms()]))),
        }),
        KsqlFunction::udf(
            "from_unixtime",
            Signature::any(1, Volatility::Immutable),
            |a| accepting("from_unixtime", a, &[DataType::Int32, DataType::Int64], timestamp()),
            |args, _| {
                let millis = cast(&args[0], &DataType::Int64)?;
                let out: TimestampMillisecondArray = millis.as_primitive::<Int64Type>().iter().collect();
                Ok(Arc::new(out))
            },
        ),
        KsqlFunction::udf(
            "from_days",
            Signature::any(1, Volatility::Immutable),
            |a| accepting("from_days", a, &[DataType::Int32], DataType::Date32),
            |args, _| {
                // `fromDays(final int days)`: a primitive.
                if args[0].null_count() > 0 {
                    return exec_err!("FROM_DAYS of a null INT (a primitive Java parameter)");
                }
                let days = cast(&args[0], &DataType::Int32)?;
                let out: Date32Array = days.as_primitive::<datafusion::arrow::datatypes::Int32Type>().iter().collect();
                Ok(Arc::new(out))
            },
        ),
        KsqlFunction::udf("convert_tz", Signature::any(3, Volatility::Immutable), returns::<4>, convert_tz),
        KsqlFunction::udf(
            "geo_distance",
            Signature::variadic_any(Volatility::Immutable),
            geo_distance_type,
            geo_distance,
        ),
    ]
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn time() -> DataType {
    DataType::Time32(TimeUnit::Millisecond)
}

/// No argument (now) or one.
fn none_or_one() -> Signature {
    Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::Any(1)], Volatility::Volatile)
}

/// `(unit, amount, value)` with an INT amount and `value` of `kind`, which is also the
/// result; refused with ksqlDB's message otherwise.
fn unit_result(name: &str, args: &[DataType], kind: DataType) -> Result<DataType> {
    let fits = args.len() == 3
        && args[0] == DataType::Utf8
        && matches!(args[1], DataType::Int32 | DataType::Null)
        && (args[2] == kind || args[2] == DataType::Null);
    if !fits {
        return not_accepted(name, args);
    }
    Ok(kind)
}

fn not_accepted<T>(name: &str, args: &[DataType]) -> Result<T> {
    let shown: Vec<String> =
        args.iter().map(|t| if t.is_null() { "null".into() } else { crate::sql::types::ksql_type_name(t) }).collect();
    plan_err!("Function '{name}' does not accept parameters ({}).", shown.join(", "))
}

/// `result` when the one argument is of an `accepted` type (or an untyped NULL).
fn accepting(name: &str, args: &[DataType], accepted: &[DataType], result: DataType) -> Result<DataType> {
    match args {
        [t] if t.is_null() || accepted.contains(t) => Ok(result),
        _ => not_accepted(name, args),
    }
}

/// Milliseconds in one of ksqlDB's units (`MILLISECONDS` … `DAYS`, singular too).
fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => MILLIS_PER_DAY,
        _ => return None,
    })
}

/// Per row: the shift in milliseconds (`sign` × amount × unit), null where any part is.
fn shifts(args: &Arrays, sign: i64) -> Result<Vec<Option<i64>>> {
    if args[0].data_type() != &DataType::Utf8 {
        return plan_err!("the first argument must be a time unit (MILLISECONDS, SECONDS, … DAYS)");
    }
    let units = args[0].as_string::<i32>();
    let amounts = cast(&args[1], &DataType::Int64)?;
    let amounts = amounts.as_primitive::<Int64Type>();
    Ok((0..units.len())
        .map(|row| {
            if units.is_null(row) || amounts.is_null(row) {
                return None;
            }
            Some(sign * amounts.value(row) * unit_millis(units.value(row))?)
        })
        .collect())
}

/// The timestamp plus the shift, wrapping as Java's long arithmetic does.
fn shift_timestamps(args: &Arrays, sign: i64) -> Result<ArrayRef> {
    let shifts = shifts(args, sign)?;
    let times = cast(&cast(&args[2], &DataType::Timestamp(TimeUnit::Millisecond, None))?, &DataType::Int64)?;
    let times = times.as_primitive::<Int64Type>();
    let out: TimestampMillisecondArray = (0..times.len())
        .map(|row| Some(times.value(row).wrapping_add(shifts[row]?)).filter(|_| times.is_valid(row)))
        .collect();
    Ok(Arc::new(out))
}

/// The date's milliseconds plus the shift, truncated toward zero to days
/// (`TimeUnit.MILLISECONDS.toDays`): DATEADD(HOURS, 1, FROM_DAYS(-1)) is 1970-01-01.
fn shift_dates(args: &Arrays, sign: i64) -> Result<ArrayRef> {
    let shifts = shifts(args, sign)?;
    if !matches!(args[2].data_type(), DataType::Date32 | DataType::Null) {
        return exec_err!("DATEADD needs a DATE");
    }
    let days = cast(&args[2], &DataType::Int32)?;
    let days = days.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    let out: Date32Array = (0..days.len())
        .map(|row| {
            let shift = shifts[row]?;
            let millis = i64::from(days.value(row)) * MILLIS_PER_DAY + shift;
            days.is_valid(row).then_some((millis / MILLIS_PER_DAY) as i32)
        })
        .collect();
    Ok(Arc::new(out))
}

/// The time of day plus the shift, around midnight, as `LocalTime.plus(unit.toNanos(n))`:
/// the shift in nanoseconds saturates at a long's extremes (TIMEADD(DAYS, 200000, t) is not t).
fn shift_times(args: &Arrays, sign: i64) -> Result<ArrayRef> {
    let shifts = shifts(args, sign)?;
    let times = cast(&cast(&args[2], &DataType::Time32(TimeUnit::Millisecond))?, &DataType::Int32)?;
    let times = times.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    const NANOS_PER_DAY: i64 = MILLIS_PER_DAY * 1_000_000;
    let out: Time32MillisecondArray = (0..times.len())
        .map(|row| {
            let shift = shifts[row]?;
            let nanos = (i128::from(shift) * 1_000_000).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            let time = i64::from(times.value(row)) * 1_000_000;
            let moved = (nanos % NANOS_PER_DAY + time + NANOS_PER_DAY) % NANOS_PER_DAY;
            times.is_valid(row).then_some((moved / 1_000_000) as i32)
        })
        .collect();
    Ok(Arc::new(out))
}

/// A zone by name (`America/New_York`) or offset (`+0200`, `-05:00`), at the current
/// instant (the offsets of timestamp literals).
pub(crate) fn zone(text: &str) -> Option<chrono::FixedOffset> {
    use chrono::Offset;
    if let Some(sign) = text.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits: String = text[1..].chars().filter(|c| c.is_ascii_digit()).collect();
        let (hours, minutes) =
            (digits.get(..2)?.parse::<i32>().ok()?, digits.get(2..4).unwrap_or("00").parse::<i32>().ok()?);
        let seconds = (hours * 3600 + minutes * 60) * if sign == '-' { -1 } else { 1 };
        return chrono::FixedOffset::east_opt(seconds);
    }
    let tz: chrono_tz::Tz = text.parse().ok()?;
    Some(chrono::Utc::now().with_timezone(&tz).offset().fix())
}

/// `CONVERT_TZ(ts, from, to)`: the timestamp plus the offset of `to` less that of `from`,
/// each taken at the timestamp as `TimeZone.getTimeZone(ZoneId.of(zone)).getOffset(ts)`
/// does; a zone `ZoneId.of` does not know is an error.
fn convert_tz(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let times = cast(&cast(&args[0], &DataType::Timestamp(TimeUnit::Millisecond, None))?, &DataType::Int64)?;
    let times = times.as_primitive::<Int64Type>();
    let (from, to) = (args[1].as_string_opt::<i32>(), args[2].as_string_opt::<i32>());
    let (Some(from), Some(to)) = (from, to) else { return exec_err!("CONVERT_TZ takes zone names") };
    let out: TimestampMillisecondArray = (0..times.len())
        .map(|row| {
            if times.is_null(row) || from.is_null(row) || to.is_null(row) {
                return Ok(None);
            }
            let instant = times.value(row);
            let offset = |name: &str| match JavaZone::parse(name) {
                Ok(zone) => Ok(i64::from(zone.time_zone_offset_at(instant)) * 1000),
                Err(why) => exec_err!("Invalid time zone: {why}"),
            };
            Ok(Some(instant.wrapping_add(offset(to.value(row))? - offset(from.value(row))?)))
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// GEO_DISTANCE takes four numbers (widened to DOUBLE) and an optional unit.
fn geo_distance_type(args: &[DataType]) -> Result<DataType> {
    let number = |t: &DataType| {
        t.is_null() || matches!(t, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(..))
    };
    let fits = matches!(args.len(), 4 | 5)
        && args[..4].iter().all(number)
        && args.get(4).is_none_or(|t| matches!(t, DataType::Utf8 | DataType::Null));
    if fits { Ok(DataType::Float64) } else { not_accepted("geo_distance", args) }
}

/// `GEO_DISTANCE(lat1, lon1, lat2, lon2[, 'KM' | 'MI'])`: the great-circle distance.
fn geo_distance(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    if args.len() < 4 {
        return plan_err!("GEO_DISTANCE takes two latitude/longitude pairs and an optional unit");
    }
    let coordinates: Vec<ArrayRef> = args[..4].iter().map(|a| cast(a, &DataType::Float64)).collect::<Result<_, _>>()?;
    let c: Vec<&Float64Array> = coordinates.iter().map(|a| a.as_primitive()).collect();
    let units = args.get(4).and_then(|u| u.as_string_opt::<i32>().cloned());
    let out: Float64Array = (0..c[0].len())
        .map(|row| {
            if c.iter().any(|a| a.is_null(row)) {
                return exec_err!("GEO_DISTANCE: a coordinate is null");
            }
            let (lat1, lon1, lat2, lon2) = (c[0].value(row), c[1].value(row), c[2].value(row), c[3].value(row));
            // Java's comparisons: NaN is in range.
            if [lat1, lat2].iter().any(|l| *l < -90.0 || *l > 90.0) {
                return exec_err!(
                    "valid latitude values for GeoDistance function are in the range of -90 to 90 decimal degrees"
                );
            }
            if [lon1, lon2].iter().any(|l| *l < -180.0 || *l > 180.0) {
                return exec_err!(
                    "valid longitude values for GeoDistance function are in the range of -180 to +180 decimal degrees"
                );
            }
            let unit = units
                .as_ref()
                .filter(|u| u.is_valid(row))
                .map(|u| u.value(row).trim_matches(|c: char| c <= ' ').to_lowercase());
            let radius = match unit.as_deref() {
                None | Some("") | Some("km" | "kilometer" | "kilometers" | "kilometre" | "kilometres") => 6371.0,
                Some("mi" | "mile" | "miles") => 3959.0,
                Some(_) => {
                    return exec_err!(
                        "GeoDistance function units parameter must be one of mi, mile, miles, km, kilometer, \
                         kilometers, kilometre or kilometres. Values are case-insensitive."
                    );
                }
            };
            // Haversine, in ksqlDB's order of operations (so that the last digits agree).
            let haversin = |v: f64| (v / 2.0).sin().powi(2);
            let radians = super::math::java_radians;
            let (delta_lat, delta_lon) = (radians(lat2 - lat1), radians(lon2 - lon1));
            let a = haversin(delta_lat) + haversin(delta_lon) * radians(lat1).cos() * radians(lat2).cos();
            Ok(Some(2.0 * a.sqrt().asin() * radius))
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}
