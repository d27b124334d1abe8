//! Java `DateTimeFormatter` patterns (ksqlDB's `TIMESTAMP_FORMAT` and its date functions)
//! translated to chrono's, and strings parsed with them.
//!
//! Times without a zone in the pattern are UTC, as ksqlDB reads them by default.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveTime, Timelike};
use chrono_tz::Tz;

/// A pattern, translated once and used for many strings.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    chrono: String,
    /// `chrono` parsed once: parsing many strings does not parse the pattern each time.
    items: Vec<Item<'static>>,
    has_zone: bool,
    has_time: bool,
    /// The pattern as fixed places, when it is all zero-padded numbers and literals
    /// (`yyyy-MM-dd HH:mm:ss.SSS`): such text is read without chrono.
    fixed: Option<Vec<Place>>,
}

/// A place in a fixed-width pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Literal(u8),
    /// So many digits of a field.
    Digits(Field, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Milli,
}

impl TimeFormat {
    /// Translates a Java pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSX`); fails on letters chrono has
    /// no counterpart for.
    pub fn try_new(java: &str) -> Result<TimeFormat, String> {
        let mut out = String::with_capacity(java.len() * 2);
        let (mut has_zone, mut has_time) = (false, false);
        let mut fixed = Some(Vec::new());
        let literal = |fixed: &mut Option<Vec<Place>>, c: char| match u8::try_from(c) {
            Ok(byte) if c.is_ascii() => fixed.iter_mut().for_each(|f| f.push(Place::Literal(byte))),
            _ => *fixed = None,
        };
        let chars: Vec<char> = java.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // Quoted literal; '' is a quote.
                let mut j = i + 1;
                if j < chars.len() && chars[j] == '\'' {
                    out.push('\'');
                    literal(&mut fixed, '\'');
                    i += 2;
                    continue;
                }
                while j < chars.len() && chars[j] != '\'' {
                    push_literal(&mut out, chars[j]);
                    literal(&mut fixed, chars[j]);
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                push_literal(&mut out, c);
                literal(&mut fixed, c);
                i += 1;
                continue;
            }
            let mut run = 1;
            while i + run < chars.len() && chars[i + run] == c {
                run += 1;
            }
            let spec = match (c, run) {
                ('y' | 'u', 2) => "%y",
                ('y' | 'u', _) => "%Y",
                ('M', 1) => "%-m",
                ('M', 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', 1) => "%-d",
                ('d', _) => "%d",
                ('D', _) => "%j",
                ('H', 1) => "%-H",
                ('H', _) => "%H",
                ('h', 1) => "%-I",
                ('h', _) => "%I",
                ('m', 1) => "%-M",
                ('m', _) => "%M",
                ('s', 1) => "%-S",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('S', _) => "%f",
                ('a', _) => "%p",
                ('E', 4..) => "%A",
                ('E', _) => "%a",
                ('X' | 'x', 1) => "%#z",
                ('X' | 'x' | 'Z', 2 | 1) => "%z",
                ('X' | 'x', _) => "%:z",
                ('Z', _) => "%:z",
                ('z' | 'V', _) => "%Z",
                ('n', _) => "%f",
                _ => return Err(format!("Unknown pattern letter: {c}")),
            };
            let place = match (c, run) {
                ('y' | 'u', 4) => Some(Place::Digits(Field::Year, 4)),
                ('M', 2) => Some(Place::Digits(Field::Month, 2)),
                ('d', 2) => Some(Place::Digits(Field::Day, 2)),
                ('H', 2) => Some(Place::Digits(Field::Hour, 2)),
                ('m', 2) => Some(Place::Digits(Field::Minute, 2)),
                ('s', 2) => Some(Place::Digits(Field::Second, 2)),
                ('S', 3) => Some(Place::Digits(Field::Milli, 3)),
                _ => None,
            };
            match (place, &mut fixed) {
                (Some(place), Some(places)) => places.push(place),
                _ => fixed = None,
            }
            if matches!(c, 'X' | 'x' | 'Z' | 'z' | 'V') {
                has_zone = true;
            }
            if matches!(c, 'H' | 'h' | 'm' | 's' | 'S') {
                has_time = true;
            }
            out.push_str(spec);
            i += run;
        }
        if StrftimeItems::new(&out).any(|item| matches!(item, Item::Error)) {
            return Err(format!("Invalid pattern: {java}"));
        }
        let items = StrftimeItems::new(&out).parse_to_owned().map_err(|_| format!("Invalid pattern: {java}"))?;
        let fixed = fixed.filter(|_| !has_zone && has_time);
        Ok(TimeFormat { chrono: out, items, has_zone, has_time, fixed })
    }

    /// Milliseconds since the epoch of `text`, or `None` if it does not match.
    pub fn parse_millis(&self, text: &str) -> Option<i64> {
        self.parse_millis_in(text, None)
    }

    /// As [`TimeFormat::parse_millis`], reading a time without a zone in `zone` (UTC when
    /// `None`).
    pub fn parse_millis_in(&self, text: &str, zone: Option<Tz>) -> Option<i64> {
        let fast = self.fixed.as_deref().and_then(|places| parse_fixed(places, text.as_bytes()));
        if let Some(local) = fast {
            return match zone {
                None => Some(local.and_utc().timestamp_millis()),
                Some(zone) => local.and_local_timezone(zone).earliest().map(|t| t.timestamp_millis()),
            };
        }
        let mut parsed = Parsed::new();
        if self.has_zone {
            chrono::format::parse(&mut parsed, text, self.items.iter()).ok()?;
            return parsed.to_datetime().ok().map(|t| t.timestamp_millis());
        }
        let local = if self.has_time {
            chrono::format::parse(&mut parsed, text, self.items.iter()).ok()?;
            parsed.to_naive_datetime_with_offset(0).ok()?
        } else {
            // Text after a whole date is ignored, as ksqlDB's date parsing ignores it.
            chrono::format::parse_and_remainder(&mut parsed, text, self.items.iter()).ok()?;
            parsed.to_naive_date().ok()?.and_time(NaiveTime::MIN)
        };
        match zone {
            None => Some(local.and_utc().timestamp_millis()),
            Some(zone) => local.and_local_timezone(zone).earliest().map(|t| t.timestamp_millis()),
        }
    }

    /// The time of day of `text` in milliseconds, for patterns of a time only.
    pub fn parse_time_millis(&self, text: &str) -> Option<i64> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).ok()?;
        let time = parsed.to_naive_time().ok()?;
        Some(i64::from(time.num_seconds_from_midnight()) * 1000 + i64::from(time.nanosecond() / 1_000_000))
    }

    /// `millis` formatted with this pattern, in UTC.
    pub fn format_millis(&self, millis: i64) -> Option<String> {
        self.format_millis_in(millis, None)
    }

    /// `millis` formatted with this pattern, in `zone` (UTC when `None`).
    pub fn format_millis_in(&self, millis: i64, zone: Option<Tz>) -> Option<String> {
        use std::fmt::Write;
        let time = DateTime::from_timestamp_millis(millis)?;
        let mut out = String::new();
        match zone {
            None => write!(out, "{}", time.format(&self.chrono)).ok()?,
            Some(zone) => write!(out, "{}", time.with_timezone(&zone).format(&self.chrono)).ok()?,
        }
        Some(out)
    }
}

/// `text` read by a fixed-width pattern; `None` where it does not fit exactly (chrono then
/// reads it, or refuses it), or holds a leap second, which chrono reads its own way.
fn parse_fixed(places: &[Place], text: &[u8]) -> Option<chrono::NaiveDateTime> {
    let mut fields = [0u32; 7];
    fields[1] = 1; // month and day when the pattern has none
    fields[2] = 1;
    let mut at = 0;
    for place in places {
        match *place {
            Place::Literal(byte) => {
                if *text.get(at)? != byte {
                    return None;
                }
                at += 1;
            }
            Place::Digits(field, width) => {
                let mut value = 0u32;
                for digit in text.get(at..at + width)? {
                    if !digit.is_ascii_digit() {
                        return None;
                    }
                    value = value * 10 + u32::from(digit - b'0');
                }
                fields[field as usize] = value;
                at += width;
            }
        }
    }
    if at != text.len() {
        return None;
    }
    let [year, month, day, hour, minute, second, milli] = fields;
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    date.and_hms_milli_opt(hour, minute, second, milli)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_and_parses_ksqldb_patterns() {
        let f = TimeFormat::try_new("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap();
        assert_eq!(f.parse_millis("2018-05-11T21:58:23.000"), Some(1_526_075_903_000));
        assert_eq!(f.format_millis(1_526_075_903_123).as_deref(), Some("2018-05-11T21:58:23.123"));
        let zoned = TimeFormat::try_new("yyyy-MM-dd HH:mm:ssX").unwrap();
        assert_eq!(zoned.parse_millis("1970-01-01 01:00:00+01"), Some(0));
        let date = TimeFormat::try_new("yyyy-MM-dd").unwrap();
        assert_eq!(date.parse_millis("1970-01-02"), Some(86_400_000));
        assert_eq!(f.parse_millis("not a time"), None);
        assert!(TimeFormat::try_new("yyyy-qq").is_err());
    }

    /// The fixed-width reading gives chrono's answer wherever it answers at all.
    #[test]
    fn fixed_width_patterns_read_as_chrono_reads_them() {
        let slow = |f: &TimeFormat, text: &str| TimeFormat { fixed: None, ..f.clone() }.parse_millis(text);
        for pattern in ["yyyy-MM-dd HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "dd/MM/yyyy HH:mm", "yyyyMMddHHmmssSSS"] {
            let format = TimeFormat::try_new(pattern).unwrap();
            assert!(format.fixed.is_some(), "{pattern}");
            let mut millis = -62_135_596_800_000i64; // year 1
            while millis < 253_402_300_799_000 {
                let text = format.format_millis(millis).unwrap();
                assert_eq!(format.parse_millis(&text), slow(&format, &text), "{pattern}: {text}");
                millis += 86_400_000 * 97 + 3_723_456;
            }
        }
        let format = TimeFormat::try_new("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        for text in [
            "2024-02-29 23:59:59.999",
            "2023-02-29 00:00:00.000",
            "2024-13-01 00:00:00.000",
            "2024-01-01 24:00:00.000",
            "2024-06-30 23:59:60.000",
            "2024-01-01 00:00:00.00",
            "2024-01-01 00:00:00.0000",
            "+2024-01-01 00:00:00.000",
            "2024-01-01T00:00:00.000",
            "12024-01-01 00:00:00.000",
        ] {
            let fast =
                parse_fixed(format.fixed.as_deref().unwrap(), text.as_bytes()).map(|t| t.and_utc().timestamp_millis());
            if fast.is_some() {
                assert_eq!(fast, slow(&format, text), "{text}");
            }
            assert_eq!(format.parse_millis(text), slow(&format, text), "{text}");
        }
        assert!(TimeFormat::try_new("yyyy-MM-dd HH:mm:ssX").unwrap().fixed.is_none());
        assert!(TimeFormat::try_new("yyyy-MMM-dd HH:mm").unwrap().fixed.is_none());
    }
}
