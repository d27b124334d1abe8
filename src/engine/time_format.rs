//! Java's date and time patterns and zones as ksqlDB uses them, read and written the way
//! `java.time` does (no translation to another library's patterns):
//!
//! - [`TimeFormat`]: a `DateTimeFormatter` pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`), for
//!   `TIMESTAMP_FORMAT` and the `PARSE_*`/`FORMAT_*` functions. Parsing is ksqlDB's: case
//!   insensitive and strict (`MM` takes two digits, `yyyy` four or more, a variable-width
//!   number before fixed-width ones leaves them their digits), the whole text must be read,
//!   fields resolve as `ResolverStyle.SMART` does (31 April is 30 April, 24:00 the next day),
//!   and a timestamp's missing fields come from 1970-01-01T00:00 in the zone
//!   (`StringToTimestampParser`). Writing is `DateTimeFormatter.format`: a field the value
//!   does not have (an hour of a DATE) fails, unless it is in an optional `[…]` section.
//!   Names are English. Week-based letters (`Y w W e c`), `F`, `v`, `B`, `g` and padding (`p`)
//!   are refused; `zzzz` writes a region's abbreviation where Java writes its long name.
//! - [`SimpleDateFormat`]: the `java.text.SimpleDateFormat` patterns `PARSE_DATE` reads with
//!   (through commons-lang's `FastDateFormat`): lenient, numbers of any width, text after the
//!   date ignored, the Julian calendar before 1582-10-15.
//! - [`JavaZone`]: a zone as `ZoneId.of` reads it (`America/Los_Angeles`, `+05:30`, `Z`,
//!   `UTC`, `GMT+2`).
//!
//! Times without a zone are UTC, as ksqlDB's run in UTC.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike};
use chrono_tz::{OffsetName, Tz};

const MILLIS_PER_DAY: i64 = 86_400_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

// ------------------------------------------------------------------------------------------
// Zones

/// A time zone as Java's `ZoneId.of` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaZone {
    /// A `ZoneOffset` (`+05:30`, `Z`): seconds east of UTC.
    Offset(i32),
    /// `UTC`, `GMT` or `UT`, bare (offset 0) or with an offset (`UTC+01:00`).
    Prefixed(&'static str, i32),
    /// A region of the time-zone database.
    Region(Tz),
}

impl JavaZone {
    /// `UTC`, the zone ksqlDB's JVM runs in (`ZoneId.systemDefault()`).
    pub const UTC: JavaZone = JavaZone::Prefixed("UTC", 0);

    /// `ZoneId.of(id)`; the error is Java's message.
    pub fn parse(id: &str) -> Result<JavaZone, String> {
        if id.chars().count() <= 1 || id.starts_with(['+', '-']) {
            return parse_offset_id(id).map(JavaZone::Offset);
        }
        for prefix in ["UTC", "GMT", "UT"] {
            let Some(rest) = id.strip_prefix(prefix) else { continue };
            if rest.is_empty() {
                return Ok(JavaZone::Prefixed(prefix, 0));
            }
            if rest.starts_with(['+', '-']) {
                return match parse_offset_id(rest) {
                    Ok(seconds) => Ok(JavaZone::Prefixed(prefix, seconds)),
                    Err(_) => Err(format!("Invalid ID for offset-based ZoneId: {id}")),
                };
            }
            break;
        }
        let valid_name = id.len() >= 2
            && id.starts_with(|c: char| c.is_ascii_alphabetic())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || "~/._+-".contains(c));
        if !valid_name {
            return Err(format!("Invalid ID for region-based ZoneId, invalid format: {id}"));
        }
        id.parse::<Tz>().map(JavaZone::Region).map_err(|_| format!("Unknown time-zone ID: {id}"))
    }

    /// The zone's ID as Java writes it (`ZoneId.getId`).
    pub fn id(&self) -> String {
        match self {
            JavaZone::Offset(seconds) => offset_id(*seconds),
            JavaZone::Prefixed(prefix, 0) => (*prefix).to_owned(),
            JavaZone::Prefixed(prefix, seconds) => format!("{prefix}{}", offset_id(*seconds)),
            JavaZone::Region(tz) => tz.name().to_owned(),
        }
    }

    /// Seconds east of UTC at the instant `utc_millis`.
    pub fn offset_at(&self, utc_millis: i64) -> i32 {
        match self {
            JavaZone::Offset(seconds) | JavaZone::Prefixed(_, seconds) => *seconds,
            JavaZone::Region(tz) => match chrono::DateTime::from_timestamp_millis(utc_millis) {
                Some(instant) => tz.offset_from_utc_datetime(&instant.naive_utc()).fix().local_minus_utc(),
                None => 0,
            },
        }
    }

    /// The offset `java.util.TimeZone.getTimeZone(zone)` has at `utc_millis` (ksqlDB's
    /// `CONVERT_TZ`): as [`JavaZone::offset_at`], except that `TimeZone` knows only `GMT`
    /// offsets of whole minutes and falls back to GMT for the others (`UTC+01:00` is 0).
    pub fn time_zone_offset_at(&self, utc_millis: i64) -> i32 {
        match self {
            JavaZone::Offset(seconds) | JavaZone::Prefixed("GMT", seconds) if seconds % 60 == 0 => *seconds,
            JavaZone::Offset(_) | JavaZone::Prefixed(..) => 0,
            JavaZone::Region(_) => self.offset_at(utc_millis),
        }
    }

    /// The instant (milliseconds since the epoch) of the local date-time `local` in this zone:
    /// in a gap (clocks put forward) it is moved later by the gap's length, in an overlap the
    /// earlier offset is taken, as `ZonedDateTime.ofLocal` does.
    pub fn local_to_utc(&self, local: NaiveDateTime) -> i64 {
        let as_utc = local.and_utc().timestamp_millis();
        match self {
            JavaZone::Offset(seconds) | JavaZone::Prefixed(_, seconds) => as_utc - i64::from(*seconds) * 1000,
            JavaZone::Region(tz) => match tz.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => t.timestamp_millis(),
                chrono::LocalResult::Ambiguous(earlier, _) => earlier.timestamp_millis(),
                // The offset before the gap, from a day earlier.
                chrono::LocalResult::None => as_utc - i64::from(self.offset_at(as_utc - MILLIS_PER_DAY)) * 1000,
            },
        }
    }

    /// The zone's short (or full) name at `utc_millis`, as pattern letter `z` writes it.
    fn name_at(&self, utc_millis: i64, full: bool) -> String {
        match self {
            JavaZone::Offset(seconds) => offset_id(*seconds),
            JavaZone::Prefixed("UTC", 0) if full => "Coordinated Universal Time".into(),
            JavaZone::Prefixed("GMT", 0) if full => "Greenwich Mean Time".into(),
            JavaZone::Prefixed(..) => self.id(),
            JavaZone::Region(tz) => {
                let Some(instant) = chrono::DateTime::from_timestamp_millis(utc_millis) else { return self.id() };
                let offset = tz.offset_from_utc_datetime(&instant.naive_utc());
                match offset.abbreviation() {
                    Some(name) if name.starts_with(|c: char| c.is_ascii_alphabetic()) => name.to_owned(),
                    _ => localized_offset(offset.fix().local_minus_utc(), true),
                }
            }
        }
    }
}

/// `ZoneOffset.of(id)`: `Z`, `+h`, `+hh`, `+hhmm`, `+hh:mm`, `+hhmmss`, `+hh:mm:ss`.
fn parse_offset_id(id: &str) -> Result<i32, String> {
    let invalid = || format!("Invalid ID for ZoneOffset, invalid format: {id}");
    if id == "Z" {
        return Ok(0);
    }
    let bytes = id.as_bytes();
    let sign = match bytes.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(invalid()),
    };
    let digits = |at: usize| -> Result<i32, String> {
        match bytes.get(at..at + 2) {
            Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => Ok(i32::from((a - b'0') * 10 + (b - b'0'))),
            _ => Err(invalid()),
        }
    };
    let colon = |at: usize| if bytes.get(at) == Some(&b':') { Ok(()) } else { Err(invalid()) };
    let (hours, minutes, seconds) = match bytes.len() {
        2 if bytes[1].is_ascii_digit() => (i32::from(bytes[1] - b'0'), 0, 0),
        3 => (digits(1)?, 0, 0),
        5 => (digits(1)?, digits(3)?, 0),
        6 => {
            colon(3)?;
            (digits(1)?, digits(4)?, 0)
        }
        7 => (digits(1)?, digits(3)?, digits(5)?),
        9 => {
            colon(3)?;
            colon(6)?;
            (digits(1)?, digits(4)?, digits(7)?)
        }
        _ => return Err(invalid()),
    };
    if hours > 18 || minutes > 59 || seconds > 59 || (hours == 18 && (minutes > 0 || seconds > 0)) {
        return Err(format!("Zone offset not in valid range: {id}"));
    }
    Ok(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// A `ZoneOffset`'s ID: `Z`, `+hh:mm` or `+hh:mm:ss`.
fn offset_id(seconds: i32) -> String {
    if seconds == 0 {
        return "Z".into();
    }
    let abs = seconds.unsigned_abs();
    let sign = if seconds < 0 { '-' } else { '+' };
    match abs % 60 {
        0 => format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60),
        s => format!("{sign}{:02}:{:02}:{s:02}", abs / 3600, abs / 60 % 60),
    }
}

/// `GMT`, `GMT+1`, `GMT+05:30` (short) or `GMT+01:00` (full), as pattern letter `O` writes.
fn localized_offset(seconds: i32, full: bool) -> String {
    if seconds == 0 {
        return "GMT".into();
    }
    let abs = seconds.unsigned_abs();
    let (hours, minutes, secs) = (abs / 3600 % 100, abs / 60 % 60, abs % 60);
    let mut out = format!("GMT{}", if seconds < 0 { '-' } else { '+' });
    if full {
        out.push_str(&format!("{hours:02}:{minutes:02}"));
        if secs != 0 {
            out.push_str(&format!(":{secs:02}"));
        }
    } else {
        out.push_str(&hours.to_string());
        if minutes != 0 || secs != 0 {
            out.push_str(&format!(":{minutes:02}"));
            if secs != 0 {
                out.push_str(&format!(":{secs:02}"));
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// DateTimeFormatter patterns

/// A `DateTimeFormatter` pattern, compiled once and used for many values.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    items: Vec<Item>,
    /// The pattern's layout when every field is a fixed run of digits (`yyyy-MM-dd HH:mm:ss.SSS`
    /// and the like): read by position, without the general parser, for TIMESTAMP_FORMAT.
    fixed: Option<FixedLayout>,
}

/// The text of the quoted literal opening at `chars[start]` (`''` inside it is a quote), and
/// the index of its closing quote; `None` when it is not closed.
fn quoted_literal(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut j = start + 1;
    loop {
        match (chars.get(j)?, chars.get(j + 1)) {
            ('\'', Some('\'')) => {
                text.push('\'');
                j += 2;
            }
            ('\'', _) => return Some((text, j)),
            (x, _) => {
                text.push(*x);
                j += 1;
            }
        }
    }
}

/// A pattern of fixed-width numeric fields and literal characters, each at its byte offset.
#[derive(Debug, Clone)]
struct FixedLayout {
    len: usize,
    /// Where each field's digits start: four for the year, two for the others.
    year: Option<usize>,
    month: Option<usize>,
    day: Option<usize>,
    hour: Option<usize>,
    minute: Option<usize>,
    second: Option<usize>,
    /// The fraction of a second's offset and width (1 to 9 digits).
    fraction: Option<(usize, usize)>,
    literals: Vec<(usize, u8)>,
}

impl FixedLayout {
    /// The layout of `java`, when it has one: four-digit years, two-digit months, days, hours,
    /// minutes and seconds, one to nine fraction digits, ASCII separators and a quoted `'T'`.
    fn of(java: &str) -> Option<FixedLayout> {
        let bytes = java.as_bytes();
        let mut layout = FixedLayout {
            len: 0,
            year: None,
            month: None,
            day: None,
            hour: None,
            minute: None,
            second: None,
            fraction: None,
            literals: Vec::new(),
        };
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let at = layout.len;
            if c.is_ascii_alphabetic() {
                let run = bytes[i..].iter().take_while(|b| **b == c).count();
                let slot = match (c, run) {
                    (b'y' | b'u', 4) => &mut layout.year,
                    (b'M', 2) => &mut layout.month,
                    (b'd', 2) => &mut layout.day,
                    (b'H', 2) => &mut layout.hour,
                    (b'm', 2) => &mut layout.minute,
                    (b's', 2) => &mut layout.second,
                    (b'S', 1..=9) if layout.fraction.is_none() => {
                        layout.fraction = Some((at, run));
                        layout.len += run;
                        i += run;
                        continue;
                    }
                    _ => return None,
                };
                if slot.replace(at).is_some() {
                    return None;
                }
                layout.len += run;
                i += run;
            } else if bytes[i..].starts_with(b"'T'") {
                layout.literals.push((at, b'T'));
                layout.len += 1;
                i += 3;
            } else if c.is_ascii() && !matches!(c, b'\'' | b'[' | b']' | b'{' | b'}' | b'#') {
                layout.literals.push((at, c));
                layout.len += 1;
                i += 1;
            } else {
                return None;
            }
        }
        Some(layout)
    }

    /// Milliseconds since the epoch (UTC) of `text`, when it fits the layout with every field
    /// in range; `None` sends it to the general parser, which says why, or resolves it.
    fn parse_millis(&self, text: &str) -> Option<i64> {
        let bytes = text.as_bytes();
        if bytes.len() != self.len || self.literals.iter().any(|(at, c)| bytes[*at] != *c) {
            return None;
        }
        let number = |at: usize, width: usize| -> Option<u32> {
            let mut n = 0u32;
            for &b in &bytes[at..at + width] {
                let digit = b.wrapping_sub(b'0');
                if digit > 9 {
                    return None;
                }
                n = n * 10 + u32::from(digit);
            }
            Some(n)
        };
        let two = |field: Option<usize>, absent: u32| field.map_or(Some(absent), |at| number(at, 2));
        let year = self.year.map_or(Some(1970), |at| number(at, 4))?;
        let (month, day) = (two(self.month, 1)?, two(self.day, 1)?);
        let (hour, minute, second) = (two(self.hour, 0)?, two(self.minute, 0)?, two(self.second, 0)?);
        let millis = match self.fraction {
            None => 0,
            Some((at, width)) if width <= 3 => number(at, width)? * 10u32.pow(3 - width as u32),
            Some((at, width)) => number(at, width)? / 10u32.pow(width as u32 - 3),
        };
        if year < 1 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day < 1 || day > month_days {
            return None;
        }
        let days = days_from_civil(i64::from(year), month, day);
        Some(
            ((days * 24 + i64::from(hour)) * 60 + i64::from(minute)) * 60_000
                + i64::from(second) * 1000
                + i64::from(millis),
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A field of a date-time, as `java.time`'s `ChronoField` (and `IsoFields.QUARTER_OF_YEAR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Era,
    YearOfEra,
    Year,
    Quarter,
    Month,
    DayOfMonth,
    DayOfYear,
    DayOfWeek,
    AmPm,
    HourOfAmPm,
    ClockHourOfAmPm,
    HourOfDay,
    ClockHourOfDay,
    Minute,
    Second,
    NanoOfSecond,
    MilliOfDay,
    NanoOfDay,
    Offset,
}

const FIELDS: usize = 19;

impl Field {
    /// Java's name for the field, for messages.
    fn java_name(self) -> &'static str {
        match self {
            Field::Era => "Era",
            Field::YearOfEra => "YearOfEra",
            Field::Year => "Year",
            Field::Quarter => "QuarterOfYear",
            Field::Month => "MonthOfYear",
            Field::DayOfMonth => "DayOfMonth",
            Field::DayOfYear => "DayOfYear",
            Field::DayOfWeek => "DayOfWeek",
            Field::AmPm => "AmPmOfDay",
            Field::HourOfAmPm => "HourOfAmPm",
            Field::ClockHourOfAmPm => "ClockHourOfAmPm",
            Field::HourOfDay => "HourOfDay",
            Field::ClockHourOfDay => "ClockHourOfDay",
            Field::Minute => "MinuteOfHour",
            Field::Second => "SecondOfMinute",
            Field::NanoOfSecond => "NanoOfSecond",
            Field::MilliOfDay => "MilliOfDay",
            Field::NanoOfDay => "NanoOfDay",
            Field::Offset => "OffsetSeconds",
        }
    }

    /// The field's valid values, as `ChronoField.range()` (SMART resolution checks them).
    fn range(self) -> (i64, i64) {
        match self {
            Field::Era => (0, 1),
            Field::YearOfEra => (1, 999_999_999),
            Field::Year => (-999_999_999, 999_999_999),
            Field::Quarter => (1, 4),
            Field::Month => (1, 12),
            Field::DayOfMonth => (1, 31),
            Field::DayOfYear => (1, 366),
            Field::DayOfWeek => (1, 7),
            Field::AmPm => (0, 1),
            Field::HourOfAmPm => (0, 11),
            Field::ClockHourOfAmPm => (1, 12),
            Field::HourOfDay => (0, 23),
            Field::ClockHourOfDay => (1, 24),
            Field::Minute | Field::Second => (0, 59),
            Field::NanoOfSecond => (0, 999_999_999),
            Field::MilliOfDay => (0, MILLIS_PER_DAY - 1),
            Field::NanoOfDay => (0, NANOS_PER_DAY - 1),
            Field::Offset => (-64_800, 64_800),
        }
    }

    fn check(self, value: i64) -> Result<i64, String> {
        let (low, high) = self.range();
        if value < low || value > high {
            return Err(format!("Invalid value for {} (valid values {low} - {high}): {value}", self.java_name()));
        }
        Ok(value)
    }

    fn is_date(self) -> bool {
        matches!(
            self,
            Field::Era
                | Field::YearOfEra
                | Field::Year
                | Field::Month
                | Field::DayOfMonth
                | Field::DayOfYear
                | Field::DayOfWeek
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    /// A minus sign for a negative value only.
    Normal,
    /// A sign when the value has more digits than the minimum width.
    ExceedsPad,
    /// Never a sign.
    NotNegative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Short,
    Full,
    Narrow,
}

/// Whether an offset's minutes (or seconds) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Never,
    /// When not zero.
    Optional,
    Always,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Literal(String),
    /// A number of `min..=max` digits; `subsequent` is the width of the fixed-width numbers
    /// right after it, which parsing leaves them (`yyyyMMdd`).
    Number {
        field: Field,
        min: usize,
        max: usize,
        sign: Sign,
        subsequent: usize,
    },
    /// A year as its last two digits, read as 2000–2099 (`yy`).
    Reduced(Field),
    /// So many digits of the second's fraction (`SSS`).
    Fraction(usize),
    Text(Field, Style),
    /// An offset as `+HH`, `+HHmm`, `+HH:MM:ss`…, and the text for zero.
    Offset {
        colon: bool,
        minutes: Need,
        seconds: Need,
        zero: &'static str,
    },
    /// `GMT+1` (`O`) or `GMT+01:00` (`OOOO`, `ZZZZ`).
    LocalizedOffset {
        full: bool,
    },
    /// `VV`: the zone's ID.
    ZoneId,
    /// `z`: the zone's name.
    ZoneName {
        full: bool,
    },
    /// `[…]`: written when the value has its fields, read when the text has them.
    Optional(Vec<Item>),
}

impl Item {
    /// The width of a number that takes part in adjacent value parsing as a fixed-width one.
    fn fixed_width(&self) -> Option<usize> {
        match self {
            Item::Number { min, max, sign: Sign::NotNegative, .. } if min == max => Some(*max),
            Item::Reduced(_) => Some(2),
            Item::Fraction(width) => Some(*width),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Item::Number { .. } | Item::Reduced(_) | Item::Fraction(_))
    }
}

/// The items of one level of a pattern (the whole, or an optional section) as they are
/// appended, with `DateTimeFormatterBuilder`'s adjacent value parsing: a fixed-width number
/// right after another number adds its width to the first one's `subsequent`.
#[derive(Default)]
struct Builder {
    items: Vec<Item>,
    /// The number later fixed-width numbers are adjacent to.
    value_parser: Option<usize>,
}

impl Builder {
    fn append(&mut self, item: Item) {
        if item.is_number() {
            match (self.value_parser, item.fixed_width()) {
                (Some(base), Some(width)) => {
                    if let Some(Item::Number { subsequent, .. }) = self.items.get_mut(base) {
                        *subsequent += width;
                    }
                    self.items.push(item);
                }
                _ => {
                    self.items.push(item);
                    self.value_parser = Some(self.items.len() - 1);
                }
            }
        } else {
            self.items.push(item);
            self.value_parser = None;
        }
    }

    fn literal(&mut self, text: &str) {
        match self.items.last_mut() {
            Some(Item::Literal(previous)) if self.value_parser.is_none() => previous.push_str(text),
            _ => self.append(Item::Literal(text.to_owned())),
        }
    }
}

fn number(field: Field, min: usize, max: usize, sign: Sign) -> Item {
    Item::Number { field, min, max, sign, subsequent: 0 }
}

/// The item of `count` pattern letters `letter`, as `DateTimeFormatterBuilder.appendPattern`.
fn letter_item(letter: char, count: usize) -> Result<Item, String> {
    let too_many = || Err(format!("Too many pattern letters: {letter}"));
    let value = |field: Field| -> Result<Item, String> {
        match count {
            1 => Ok(number(field, 1, 19, Sign::Normal)),
            2 => Ok(number(field, 2, 2, Sign::NotNegative)),
            _ => too_many(),
        }
    };
    let text_or_value = |field: Field| -> Result<Item, String> {
        match count {
            1 => Ok(number(field, 1, 19, Sign::Normal)),
            2 => Ok(number(field, 2, 2, Sign::NotNegative)),
            3 => Ok(Item::Text(field, Style::Short)),
            4 => Ok(Item::Text(field, Style::Full)),
            5 => Ok(Item::Text(field, Style::Narrow)),
            _ => too_many(),
        }
    };
    let offset = |index: usize, zero: &'static str| {
        // DateTimeFormatterBuilder's "+HH", "+HHmm", "+HH:mm", "+HHMM", "+HH:MM", "+HHMMss",
        // "+HH:MM:ss", "+HHMMSS", "+HH:MM:SS".
        let (colon, minutes, seconds) = match index {
            0 => (false, Need::Never, Need::Never),
            1 => (false, Need::Optional, Need::Never),
            2 => (true, Need::Optional, Need::Never),
            3 => (false, Need::Always, Need::Never),
            4 => (true, Need::Always, Need::Never),
            5 => (false, Need::Always, Need::Optional),
            6 => (true, Need::Always, Need::Optional),
            7 => (false, Need::Always, Need::Always),
            _ => (true, Need::Always, Need::Always),
        };
        Item::Offset { colon, minutes, seconds, zero }
    };
    let unsupported = || Err(format!("Pattern letter {letter} is not supported"));
    match letter {
        'y' | 'u' => {
            let field = if letter == 'y' { Field::YearOfEra } else { Field::Year };
            Ok(match count {
                2 => Item::Reduced(field),
                1 | 3 => number(field, count, 19, Sign::Normal),
                _ if count <= 19 => number(field, count, 19, Sign::ExceedsPad),
                _ => return Err(format!("The minimum width must be from 1 to 19 inclusive but was {count}")),
            })
        }
        'M' | 'L' => text_or_value(Field::Month),
        'Q' | 'q' => text_or_value(Field::Quarter),
        'E' => match count {
            1..=3 => Ok(Item::Text(Field::DayOfWeek, Style::Short)),
            4 => Ok(Item::Text(Field::DayOfWeek, Style::Full)),
            5 => Ok(Item::Text(Field::DayOfWeek, Style::Narrow)),
            _ => too_many(),
        },
        'G' => match count {
            1..=3 => Ok(Item::Text(Field::Era, Style::Short)),
            4 => Ok(Item::Text(Field::Era, Style::Full)),
            5 => Ok(Item::Text(Field::Era, Style::Narrow)),
            _ => too_many(),
        },
        'a' if count == 1 => Ok(Item::Text(Field::AmPm, Style::Short)),
        'a' => too_many(),
        'd' => value(Field::DayOfMonth),
        'h' => value(Field::ClockHourOfAmPm),
        'H' => value(Field::HourOfDay),
        'k' => value(Field::ClockHourOfDay),
        'K' => value(Field::HourOfAmPm),
        'm' => value(Field::Minute),
        's' => value(Field::Second),
        'D' => match count {
            1 => Ok(number(Field::DayOfYear, 1, 19, Sign::Normal)),
            2 | 3 => Ok(number(Field::DayOfYear, count, 3, Sign::NotNegative)),
            _ => too_many(),
        },
        'S' if count <= 9 => Ok(Item::Fraction(count)),
        'S' => Err(format!("Maximum width must be from 1 to 9 inclusive but was {count}")),
        'A' | 'n' | 'N' => {
            let field = match letter {
                'A' => Field::MilliOfDay,
                'n' => Field::NanoOfSecond,
                _ => Field::NanoOfDay,
            };
            match count {
                1 => Ok(number(field, 1, 19, Sign::Normal)),
                2..=19 => Ok(number(field, count, count, Sign::NotNegative)),
                _ => Err(format!("The width must be from 1 to 19 inclusive but was {count}")),
            }
        }
        'z' => match count {
            1..=3 => Ok(Item::ZoneName { full: false }),
            4 => Ok(Item::ZoneName { full: true }),
            _ => too_many(),
        },
        'V' if count == 2 => Ok(Item::ZoneId),
        'V' => Err(format!("Pattern letter count must be 2: {letter}")),
        'Z' => match count {
            1..=3 => Ok(offset(3, "+0000")),
            4 => Ok(Item::LocalizedOffset { full: true }),
            5 => Ok(offset(6, "Z")),
            _ => too_many(),
        },
        'O' => match count {
            1 => Ok(Item::LocalizedOffset { full: false }),
            4 => Ok(Item::LocalizedOffset { full: true }),
            _ => Err(format!("Pattern letter count must be 1 or 4: {letter}")),
        },
        'X' | 'x' if count > 5 => too_many(),
        'X' => Ok(offset(count + usize::from(count != 1), "Z")),
        'x' => Ok(offset(
            count + usize::from(count != 1),
            match count {
                1 => "+00",
                c if c % 2 == 0 => "+0000",
                _ => "+00:00",
            },
        )),
        'Y' | 'w' | 'W' | 'e' | 'c' | 'F' | 'v' | 'B' | 'g' | 'p' => unsupported(),
        _ => Err(format!("Unknown pattern letter: {letter}")),
    }
}

/// English names (Java's default locale), by the field's value from its lowest.
fn names(field: Field, style: Style) -> &'static [&'static str] {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const MONTHS_SHORT: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const MONTHS_NARROW: [&str; 12] = ["J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    const DAYS_SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const DAYS_NARROW: [&str; 7] = ["M", "T", "W", "T", "F", "S", "S"];
    match (field, style) {
        (Field::Month, Style::Full) => &MONTHS,
        (Field::Month, Style::Short) => &MONTHS_SHORT,
        (Field::Month, Style::Narrow) => &MONTHS_NARROW,
        (Field::DayOfWeek, Style::Full) => &DAYS,
        (Field::DayOfWeek, Style::Short) => &DAYS_SHORT,
        (Field::DayOfWeek, Style::Narrow) => &DAYS_NARROW,
        (Field::AmPm, _) => &["AM", "PM"],
        (Field::Era, Style::Full) => &["Before Christ", "Anno Domini"],
        (Field::Era, Style::Short) => &["BC", "AD"],
        (Field::Era, Style::Narrow) => &["B", "A"],
        (Field::Quarter, Style::Full) => &["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"],
        (Field::Quarter, Style::Short) => &["Q1", "Q2", "Q3", "Q4"],
        (Field::Quarter, Style::Narrow) => &["1", "2", "3", "4"],
        _ => &[],
    }
}

/// What a value to write has: a DATE has no time of day, a TIME no date, neither a zone.
#[derive(Debug, Clone, Copy)]
struct Moment {
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    /// The zone and the instant (milliseconds since the epoch), for a timestamp.
    zone: Option<(JavaZone, i64)>,
}

impl Moment {
    fn get(&self, field: Field) -> Option<i64> {
        if field == Field::Offset {
            return self.zone.map(|(zone, instant)| i64::from(zone.offset_at(instant)));
        }
        if field.is_date() || field == Field::Quarter {
            let date = self.date?;
            let year = i64::from(date.year());
            return Some(match field {
                Field::Era => i64::from(year >= 1),
                Field::YearOfEra if year >= 1 => year,
                Field::YearOfEra => 1 - year,
                Field::Year => year,
                Field::Quarter => i64::from(date.month0() / 3 + 1),
                Field::Month => i64::from(date.month()),
                Field::DayOfMonth => i64::from(date.day()),
                Field::DayOfYear => i64::from(date.ordinal()),
                _ => i64::from(date.weekday().number_from_monday()),
            });
        }
        let time = self.time?;
        let hour = i64::from(time.hour());
        let nanos = i64::from(time.nanosecond());
        let second_of_day = i64::from(time.num_seconds_from_midnight());
        Some(match field {
            Field::AmPm => hour / 12,
            Field::HourOfAmPm => hour % 12,
            Field::ClockHourOfAmPm if hour % 12 == 0 => 12,
            Field::ClockHourOfAmPm => hour % 12,
            Field::HourOfDay => hour,
            Field::ClockHourOfDay if hour == 0 => 24,
            Field::ClockHourOfDay => hour,
            Field::Minute => i64::from(time.minute()),
            Field::Second => i64::from(time.second()),
            Field::NanoOfSecond => nanos,
            Field::MilliOfDay => second_of_day * 1000 + nanos / 1_000_000,
            _ => second_of_day * 1_000_000_000 + nanos,
        })
    }
}

/// A field the value has not: Java's message.
fn unsupported(field: Field) -> String {
    format!("Unsupported field: {}", field.java_name())
}

/// Writes `items`; `Ok(false)` when an optional section lacks a field (the caller drops what
/// the section wrote).
fn format_items(items: &[Item], moment: &Moment, out: &mut String, optional: bool) -> Result<bool, String> {
    macro_rules! get {
        ($field:expr) => {
            match moment.get($field) {
                Some(value) => value,
                None if optional => return Ok(false),
                None => return Err(unsupported($field)),
            }
        };
    }
    for item in items {
        match item {
            Item::Literal(text) => out.push_str(text),
            Item::Number { field, min, max, sign, .. } => {
                let value = get!(*field);
                let digits = value.unsigned_abs().to_string();
                if digits.len() > *max {
                    return Err(format!(
                        "Field {} cannot be printed as the value {value} exceeds the maximum print width of {max}",
                        field.java_name()
                    ));
                }
                match (value < 0, sign) {
                    (false, Sign::ExceedsPad) if *min < 19 && digits.len() > *min => out.push('+'),
                    (true, Sign::NotNegative) => {
                        return Err(format!(
                            "Field {} cannot be printed as the value {value} cannot be negative according to the \
                             SignStyle",
                            field.java_name()
                        ));
                    }
                    (true, _) => out.push('-'),
                    _ => {}
                }
                pad(out, &digits, *min);
            }
            Item::Reduced(field) => {
                let value = get!(*field);
                pad(out, &(value.unsigned_abs() % 100).to_string(), 2);
            }
            Item::Fraction(width) => {
                let nanos = get!(Field::NanoOfSecond);
                let digits = format!("{nanos:09}");
                out.push_str(digits.get(..*width).unwrap_or(&digits));
            }
            Item::Text(field, style) => {
                let value = get!(*field);
                let (names, lowest) = (names(*field, *style), lowest(*field));
                match usize::try_from(value - lowest).ok().and_then(|i| names.get(i)) {
                    Some(name) => out.push_str(name),
                    None => out.push_str(&value.to_string()),
                }
            }
            Item::Offset { colon, minutes, seconds, zero } => {
                let total = get!(Field::Offset);
                out.push_str(&format_offset(total, *colon, *minutes, *seconds, zero));
            }
            Item::LocalizedOffset { full } => {
                let total = get!(Field::Offset);
                out.push_str(&localized_offset(total as i32, *full));
            }
            Item::ZoneId | Item::ZoneName { .. } => {
                let Some((zone, instant)) = moment.zone else {
                    if optional {
                        return Ok(false);
                    }
                    return Err(format!("Unable to extract ZoneId from temporal {}", describe(moment)));
                };
                match item {
                    Item::ZoneName { full } => out.push_str(&zone.name_at(instant, *full)),
                    _ => out.push_str(&zone.id()),
                }
            }
            Item::Optional(section) => {
                let start = out.len();
                if !format_items(section, moment, out, true)? {
                    out.truncate(start);
                }
            }
        }
    }
    Ok(true)
}

/// A value as Java writes it in messages (`2021-03-15`, `12:30`).
fn describe(moment: &Moment) -> String {
    match (moment.date, moment.time) {
        (Some(date), None) => date.to_string(),
        (None, Some(time)) => time.to_string(),
        (Some(date), Some(time)) => format!("{date}T{time}"),
        (None, None) => String::new(),
    }
}

/// The value of a field's first name.
fn lowest(field: Field) -> i64 {
    match field {
        Field::Era | Field::AmPm => 0,
        _ => 1,
    }
}

fn pad(out: &mut String, digits: &str, width: usize) {
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// An offset as `OffsetIdPrinterParser` writes it.
fn format_offset(total: i64, colon: bool, minutes: Need, seconds: Need, zero: &str) -> String {
    if total == 0 {
        return zero.to_owned();
    }
    let abs = total.unsigned_abs();
    let (h, m, s) = (abs / 3600 % 100, abs / 60 % 60, abs % 60);
    let mut out = format!("{}{h:02}", if total < 0 { '-' } else { '+' });
    let separator = if colon { ":" } else { "" };
    let mut written = h;
    if minutes == Need::Always || (minutes == Need::Optional && m > 0) {
        out.push_str(&format!("{separator}{m:02}"));
        written += m;
        if seconds == Need::Always || (seconds == Need::Optional && s > 0) {
            out.push_str(&format!("{separator}{s:02}"));
            written += s;
        }
    }
    // An offset of seconds only, written without them, is the zero text.
    if written == 0 { zero.to_owned() } else { out }
}

/// The fields a text gave, as `java.time.format.Parsed` holds them before resolving.
#[derive(Debug, Clone, Copy, Default)]
struct Parsed {
    values: [Option<i64>; FIELDS],
    zone: Option<JavaZone>,
}

impl Parsed {
    fn get(&self, field: Field) -> Option<i64> {
        self.values[field as usize]
    }

    fn take(&mut self, field: Field) -> Option<i64> {
        self.values[field as usize].take()
    }

    /// Sets a field; a different value for one already set is a conflict.
    fn set(&mut self, field: Field, value: i64) -> Result<(), String> {
        match self.values[field as usize] {
            Some(old) if old != value => {
                Err(format!("Conflict found: {} {old} differs from {} {value}", field.java_name(), field.java_name()))
            }
            _ => {
                self.values[field as usize] = Some(value);
                Ok(())
            }
        }
    }
}

/// Case-insensitive comparison of `expected` with the start of `text`; the bytes it took.
fn starts_with_ignoring_case(text: &str, expected: &str) -> Option<usize> {
    let mut taken = 0;
    let mut chars = text.chars();
    for e in expected.chars() {
        let t = chars.next()?;
        if t != e && !t.to_lowercase().eq(e.to_lowercase()) && !t.to_uppercase().eq(e.to_uppercase()) {
            return None;
        }
        taken += t.len_utf8();
    }
    Some(taken)
}

/// Reads `items` from `text` at byte `at`; the position after them.
fn parse_items(items: &[Item], text: &str, mut at: usize, parsed: &mut Parsed) -> Result<usize, ()> {
    for item in items {
        let rest = text.get(at..).ok_or(())?;
        at += match item {
            Item::Literal(expected) => starts_with_ignoring_case(rest, expected).ok_or(())?,
            Item::Number { field, min, max, sign, subsequent } => {
                parse_number(rest, *field, *min, *max, *sign, *subsequent, parsed)?
            }
            Item::Reduced(field) => {
                let digits = rest.as_bytes().iter().take(2).take_while(|b| b.is_ascii_digit()).count();
                if digits < 2 {
                    return Err(());
                }
                let value = i64::from(rest.as_bytes()[0] - b'0') * 10 + i64::from(rest.as_bytes()[1] - b'0');
                parsed.set(*field, 2000 + value).map_err(|_| ())?;
                2
            }
            Item::Fraction(width) => {
                let digits = rest.as_bytes().get(..*width).ok_or(())?;
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(());
                }
                let mut nanos = digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
                for _ in *width..9 {
                    nanos *= 10;
                }
                parsed.set(Field::NanoOfSecond, nanos).map_err(|_| ())?;
                *width
            }
            Item::Text(field, style) => parse_text(rest, *field, *style, parsed)?,
            Item::Offset { colon, minutes, seconds, zero } => {
                parse_offset(rest, *colon, *minutes, *seconds, zero, parsed)?
            }
            Item::LocalizedOffset { full } => parse_localized_offset(rest, *full, parsed)?,
            Item::ZoneId | Item::ZoneName { .. } => {
                let (zone, taken) = parse_zone(rest, matches!(item, Item::ZoneName { .. })).ok_or(())?;
                if parsed.zone.is_some_and(|z| z != zone) {
                    return Err(());
                }
                parsed.zone = Some(zone);
                taken
            }
            Item::Optional(section) => {
                let mut attempt = *parsed;
                match parse_items(section, text, at, &mut attempt) {
                    Ok(end) => {
                        *parsed = attempt;
                        end - at
                    }
                    Err(()) => 0,
                }
            }
        };
    }
    Ok(at)
}

/// A number as `NumberPrinterParser` reads it strictly; the bytes it took.
fn parse_number(
    text: &str,
    field: Field,
    min: usize,
    max: usize,
    sign: Sign,
    subsequent: usize,
    parsed: &mut Parsed,
) -> Result<usize, ()> {
    let bytes = text.as_bytes();
    let (negative, positive) = (bytes.first() == Some(&b'-'), bytes.first() == Some(&b'+'));
    match sign {
        Sign::Normal if positive => return Err(()),
        Sign::NotNegative if positive || negative => return Err(()),
        _ => {}
    }
    let start = usize::from(negative || positive);
    let available = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    // Fixed-width numbers after this one keep their digits.
    let mut width = available.min(max + subsequent);
    if subsequent > 0 {
        width = min.max(width.saturating_sub(subsequent));
    }
    if width < min || width == 0 || width > available {
        return Err(());
    }
    let digits = &bytes[start..start + width];
    let mut value = digits.iter().fold(0i128, |n, d| n.saturating_mul(10).saturating_add(i128::from(d - b'0')));
    let mut taken = width;
    if value > i128::from(i64::MAX) {
        // Java drops the last digit of a number too large for a long.
        value /= 10;
        taken -= 1;
    }
    if negative {
        if value == 0 {
            return Err(());
        }
        value = -value;
    } else if sign == Sign::ExceedsPad && (positive != (taken > min)) {
        return Err(());
    }
    parsed.set(field, value as i64).map_err(|_| ())?;
    Ok(start + taken)
}

/// A name of `field` in `style` (the longest that fits); narrow months and days, whose names
/// are not unique, are read as numbers as Java does.
fn parse_text(text: &str, field: Field, style: Style, parsed: &mut Parsed) -> Result<usize, ()> {
    if style == Style::Narrow && matches!(field, Field::Month | Field::DayOfWeek) {
        return parse_number(text, field, 1, 19, Sign::Normal, 0, parsed);
    }
    let mut best: Option<(usize, i64)> = None;
    for (i, name) in names(field, style).iter().enumerate() {
        if let Some(taken) = starts_with_ignoring_case(text, name)
            && best.is_none_or(|(longest, _)| taken > longest)
        {
            best = Some((taken, i as i64 + lowest(field)));
        }
    }
    let (taken, value) = best.ok_or(())?;
    parsed.set(field, value).map_err(|_| ())?;
    Ok(taken)
}

/// Two digits at `at`.
fn two_digits(bytes: &[u8], at: usize) -> Option<i64> {
    match bytes.get(at..at + 2) {
        Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
        }
        _ => None,
    }
}

/// An offset as `OffsetIdPrinterParser` reads it: the zero text, or a sign, two digits of
/// hours and the minutes and seconds the pattern has.
fn parse_offset(
    text: &str,
    colon: bool,
    minutes: Need,
    seconds: Need,
    zero: &str,
    parsed: &mut Parsed,
) -> Result<usize, ()> {
    if let Some(taken) = starts_with_ignoring_case(text, zero) {
        parsed.set(Field::Offset, 0).map_err(|_| ())?;
        return Ok(taken);
    }
    let bytes = text.as_bytes();
    let sign = match bytes.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(()),
    };
    let hours = two_digits(bytes, 1).ok_or(())?;
    let mut at = 3;
    // Minutes (then seconds), after a colon when the pattern has one.
    let part = |need: Need, at: &mut usize| -> Result<i64, ()> {
        if need == Need::Never {
            return Ok(0);
        }
        let digits_at = *at + usize::from(colon);
        let separated = !colon || bytes.get(*at) == Some(&b':');
        match two_digits(bytes, digits_at) {
            Some(value) if separated => {
                *at = digits_at + 2;
                Ok(value)
            }
            _ if need == Need::Optional => Ok(0),
            _ => Err(()),
        }
    };
    let m = part(minutes, &mut at)?;
    let s = if minutes != Need::Never && at > 3 { part(seconds, &mut at)? } else { 0 };
    if hours > 23 || m > 59 || s > 59 {
        return Err(());
    }
    parsed.set(Field::Offset, sign * (hours * 3600 + m * 60 + s)).map_err(|_| ())?;
    Ok(at)
}

/// `GMT`, or `GMT` and a signed offset (`GMT+1`, `GMT+05:30`).
fn parse_localized_offset(text: &str, full: bool, parsed: &mut Parsed) -> Result<usize, ()> {
    let mut at = starts_with_ignoring_case(text, "GMT").ok_or(())?;
    let bytes = text.as_bytes();
    let sign = match bytes.get(at) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => {
            parsed.set(Field::Offset, 0).map_err(|_| ())?;
            return Ok(at);
        }
    };
    at += 1;
    let hour_digits = bytes[at..].iter().take(2).take_while(|b| b.is_ascii_digit()).count();
    if hour_digits == 0 || (full && hour_digits < 2) {
        return Err(());
    }
    let hours = bytes[at..at + hour_digits].iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    at += hour_digits;
    let mut total = hours * 3600;
    for unit in [60, 1] {
        match (bytes.get(at), two_digits(bytes, at + 1)) {
            (Some(b':'), Some(value)) => {
                total += value * unit;
                at += 3;
            }
            _ if full && unit == 60 => return Err(()),
            _ => break,
        }
    }
    parsed.set(Field::Offset, sign * total).map_err(|_| ())?;
    Ok(at)
}

/// A zone at the start of `text`: an offset (`+05:30`, `Z`), `UTC`/`GMT`/`UT` with or
/// without one, or a region's ID (the longest, compared without case); with `names`, also
/// the abbreviations Java reads for US zones. The zone and the bytes it took.
fn parse_zone(text: &str, names: bool) -> Option<(JavaZone, usize)> {
    let bytes = text.as_bytes();
    if bytes.first().is_some_and(|b| *b == b'+' || *b == b'-') {
        // The longest offset ID that parses.
        let end = bytes.iter().take(9).take_while(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b':')).count();
        return (2..=end).rev().find_map(|n| parse_offset_id(&text[..n]).ok().map(|s| (JavaZone::Offset(s), n)));
    }
    for prefix in ["UTC", "GMT", "UT"] {
        if let Some(taken) = starts_with_ignoring_case(text, prefix) {
            let prefix_end = taken;
            if let Some((JavaZone::Offset(seconds), n)) = parse_zone(&text[prefix_end..], false) {
                return Some((JavaZone::Prefixed(prefix, seconds), prefix_end + n));
            }
            // A region whose name starts so (`UTC` is not `UCT`, but `GMT0` and `Etc/…`) is
            // longer; else the bare prefix.
            let region = parse_region(text);
            return match region {
                Some((zone, n)) if n > prefix_end => Some((zone, n)),
                _ => Some((JavaZone::Prefixed(prefix, 0), prefix_end)),
            };
        }
    }
    if bytes.first() == Some(&b'Z') || bytes.first() == Some(&b'z') {
        return match parse_region(text) {
            Some(found) => Some(found),
            None => Some((JavaZone::Offset(0), 1)),
        };
    }
    if names {
        const ABBREVIATIONS: [(&str, Tz); 12] = [
            ("PST", Tz::America__Los_Angeles),
            ("PDT", Tz::America__Los_Angeles),
            ("MST", Tz::America__Denver),
            ("MDT", Tz::America__Denver),
            ("CST", Tz::America__Chicago),
            ("CDT", Tz::America__Chicago),
            ("EST", Tz::America__New_York),
            ("EDT", Tz::America__New_York),
            ("AKST", Tz::America__Anchorage),
            ("AKDT", Tz::America__Anchorage),
            ("HST", Tz::Pacific__Honolulu),
            ("BST", Tz::Europe__London),
        ];
        let region = parse_region(text);
        let abbreviation = ABBREVIATIONS.iter().filter_map(|(name, tz)| {
            let taken = starts_with_ignoring_case(text, name)?;
            let letters_follow = text[taken..].starts_with(|c: char| c.is_ascii_alphabetic());
            (!letters_follow).then_some((JavaZone::Region(*tz), taken))
        });
        return match (region, abbreviation.max_by_key(|(_, n)| *n)) {
            (Some(r), Some(a)) if a.1 > r.1 => Some(a),
            (Some(r), _) => Some(r),
            (None, a) => a,
        };
    }
    parse_region(text)
}

/// The longest region ID at the start of `text`, compared without case.
fn parse_region(text: &str) -> Option<(JavaZone, usize)> {
    let end = text.bytes().take_while(|b| b.is_ascii_alphanumeric() || b"~/._+-".contains(b)).count();
    let candidate = &text[..end];
    chrono_tz::TZ_VARIANTS
        .iter()
        .filter(|tz| {
            let name = tz.name();
            name.len() <= candidate.len() && candidate.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
        .max_by_key(|tz| tz.name().len())
        .map(|tz| (JavaZone::Region(*tz), tz.name().len()))
}

/// The fields of a parse, resolved as `Parsed.resolve` does with `ResolverStyle.SMART`.
#[derive(Debug, Default)]
struct Resolved {
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    /// The fields that did not make a whole date or time.
    rest: Parsed,
}

fn resolve(mut f: Parsed) -> Result<Resolved, String> {
    // Year of era and era to year; a year of era alone is of the current era.
    if let Some(year_of_era) = f.take(Field::YearOfEra) {
        Field::YearOfEra.check(year_of_era)?;
        let year = match f.take(Field::Era) {
            None if f.get(Field::Year).is_none_or(|y| y > 0) => year_of_era,
            None | Some(0) => 1 - year_of_era,
            Some(1) => year_of_era,
            Some(era) => return Err(format!("Invalid value for era: {era}")),
        };
        f.set(Field::Year, year)?;
    } else if let Some(era) = f.get(Field::Era) {
        Field::Era.check(era)?;
    }
    let mut date = None;
    if let Some(year) = f.get(Field::Year) {
        let year = i32::try_from(Field::Year.check(year)?).map_err(|e| e.to_string())?;
        if let (Some(month), Some(day)) = (f.get(Field::Month), f.get(Field::DayOfMonth)) {
            Field::Month.check(month)?;
            Field::DayOfMonth.check(day)?;
            let first = NaiveDate::from_ymd_opt(year, month as u32, 1).ok_or_else(|| out_of_range(year))?;
            // SMART: a day past the month's end is its last.
            let last = first.with_day(days_in_month(first)).unwrap_or(first);
            date = Some(first.with_day(day as u32).unwrap_or(last));
            f.take(Field::Year);
            f.take(Field::Month);
            f.take(Field::DayOfMonth);
        } else if let Some(day) = f.get(Field::DayOfYear) {
            Field::DayOfYear.check(day)?;
            date = Some(
                NaiveDate::from_yo_opt(year, day as u32)
                    .ok_or_else(|| format!("Invalid date 'DayOfYear {day}' as '{year}' is not a leap year"))?,
            );
            f.take(Field::Year);
            f.take(Field::DayOfYear);
        }
    }
    // Hours of the clock and of AM/PM to the hour of the day.
    if let Some(hour) = f.take(Field::ClockHourOfDay) {
        if hour != 0 {
            Field::ClockHourOfDay.check(hour)?;
        }
        f.set(Field::HourOfDay, if hour == 24 { 0 } else { hour })?;
    }
    if let Some(hour) = f.take(Field::ClockHourOfAmPm) {
        if hour != 0 {
            Field::ClockHourOfAmPm.check(hour)?;
        }
        f.set(Field::HourOfAmPm, if hour == 12 { 0 } else { hour })?;
    }
    if let (Some(am_pm), Some(hour)) = (f.get(Field::AmPm), f.get(Field::HourOfAmPm)) {
        Field::AmPm.check(am_pm)?;
        Field::HourOfAmPm.check(hour)?;
        f.set(Field::HourOfDay, am_pm * 12 + hour)?;
        f.take(Field::AmPm);
        f.take(Field::HourOfAmPm);
    }
    for (field, unit) in [(Field::NanoOfDay, 1), (Field::MilliOfDay, 1_000_000)] {
        if let Some(value) = f.take(field) {
            let nanos = field.check(value)? * unit;
            f.set(Field::HourOfDay, nanos / 3_600_000_000_000)?;
            f.set(Field::Minute, nanos / 60_000_000_000 % 60)?;
            f.set(Field::Second, nanos / 1_000_000_000 % 60)?;
            f.set(Field::NanoOfSecond, nanos % 1_000_000_000)?;
        }
    }
    let mut time = None;
    let mut next_day = false;
    if let Some(hour) = f.get(Field::HourOfDay) {
        let (minute, second, nano) = (f.get(Field::Minute), f.get(Field::Second), f.get(Field::NanoOfSecond));
        // An hour with seconds but no minutes (or nanos but no seconds) stays fields.
        let incomplete = (minute.is_none() && (second.is_some() || nano.is_some()))
            || (minute.is_some() && second.is_none() && nano.is_some());
        if !incomplete {
            let minute = Field::Minute.check(minute.unwrap_or(0))?;
            let nano = Field::NanoOfSecond.check(nano.unwrap_or(0))?;
            let second = second.unwrap_or(0);
            if hour == 24 && minute == 0 && second == 0 && nano == 0 {
                // 24:00 is the end of the day: midnight of the next.
                time = Some(NaiveTime::MIN);
                next_day = true;
            } else {
                let hour = Field::HourOfDay.check(hour)?;
                let second = Field::Second.check(second)?;
                time = NaiveTime::from_hms_nano_opt(hour as u32, minute as u32, second as u32, nano as u32);
            }
            for field in [Field::HourOfDay, Field::Minute, Field::Second, Field::NanoOfSecond] {
                f.take(field);
            }
        }
    }
    // The time fields left are checked.
    for field in [Field::AmPm, Field::HourOfAmPm, Field::HourOfDay, Field::Minute, Field::Second, Field::NanoOfSecond] {
        if let Some(value) = f.get(field) {
            field.check(value)?;
        }
    }
    if let (Some(d), true, Some(_)) = (date, next_day, time) {
        date = d.succ_opt();
    }
    // What is left must agree with the date and time.
    let moment = Moment { date, time, zone: None };
    for (i, value) in f.values.iter().enumerate() {
        let Some(value) = value else { continue };
        let field = ALL_FIELDS[i];
        if field == Field::Offset {
            continue;
        }
        if let Some(actual) = moment.get(field)
            && actual != *value
        {
            return Err(format!(
                "Conflict found: Field {} {actual} differs from {} {value}",
                field.java_name(),
                field.java_name()
            ));
        }
    }
    Ok(Resolved { date, time, rest: f })
}

const ALL_FIELDS: [Field; FIELDS] = [
    Field::Era,
    Field::YearOfEra,
    Field::Year,
    Field::Quarter,
    Field::Month,
    Field::DayOfMonth,
    Field::DayOfYear,
    Field::DayOfWeek,
    Field::AmPm,
    Field::HourOfAmPm,
    Field::ClockHourOfAmPm,
    Field::HourOfDay,
    Field::ClockHourOfDay,
    Field::Minute,
    Field::Second,
    Field::NanoOfSecond,
    Field::MilliOfDay,
    Field::NanoOfDay,
    Field::Offset,
];

fn out_of_range(year: i32) -> String {
    format!("Invalid value for Year: {year}")
}

fn days_in_month(first: NaiveDate) -> u32 {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.map_or(31, |n| n.signed_duration_since(first).num_days() as u32)
}

impl TimeFormat {
    /// Compiles a Java pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSX`); fails as
    /// `DateTimeFormatter.ofPattern` does, and on the letters Eddy does not support.
    pub fn try_new(java: &str) -> Result<TimeFormat, String> {
        let chars: Vec<char> = java.chars().collect();
        // The pattern's level, and the optional sections open inside it.
        let mut levels: Vec<Builder> = vec![Builder::default()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let level = levels.last_mut().ok_or("no level")?;
            if c.is_ascii_alphabetic() {
                let run = chars[i..].iter().take_while(|x| **x == c).count();
                level.append(letter_item(c, run)?);
                i += run;
            } else if c == '\'' {
                let Some((text, j)) = quoted_literal(&chars, i) else {
                    return Err(format!("Pattern ends with an incomplete string literal: {java}"));
                };
                level.literal(if j == i + 1 { "'" } else { &text });
                i = j + 1;
            } else if c == '[' {
                levels.push(Builder::default());
                i += 1;
            } else if c == ']' {
                if levels.len() < 2 {
                    return Err(format!("Pattern invalid as it contains ] without previous [: {java}"));
                }
                let section = levels.pop().map(|b| b.items).unwrap_or_default();
                levels.last_mut().ok_or("no level")?.append(Item::Optional(section));
                i += 1;
            } else if matches!(c, '{' | '}' | '#') {
                return Err(format!("Pattern includes reserved character: '{c}'"));
            } else {
                level.literal(c.encode_utf8(&mut [0; 4]));
                i += 1;
            }
        }
        // Sections left open close at the end.
        while levels.len() > 1 {
            let section = levels.pop().map(|b| b.items).unwrap_or_default();
            levels.last_mut().ok_or("no level")?.append(Item::Optional(section));
        }
        Ok(TimeFormat { items: levels.pop().map(|b| b.items).unwrap_or_default(), fixed: FixedLayout::of(java) })
    }

    /// Reads `text` (all of it) into fields and resolves them.
    fn read(&self, text: &str) -> Result<Resolved, String> {
        let mut parsed = Parsed::default();
        match parse_items(&self.items, text, 0, &mut parsed) {
            Ok(end) if end == text.len() => resolve(parsed),
            Ok(end) => Err(format!("Text '{text}' could not be parsed, unparsed text found at index {end}")),
            Err(()) => Err(format!("Text '{text}' could not be parsed")),
        }
    }

    /// Milliseconds since the epoch of `text`, a time without a zone in UTC; `None` if it does
    /// not parse.
    pub fn parse_millis(&self, text: &str) -> Option<i64> {
        if let Some(millis) = self.fixed.as_ref().and_then(|layout| layout.parse_millis(text)) {
            return Some(millis);
        }
        self.parse_timestamp(text, &JavaZone::UTC).ok()
    }

    /// Milliseconds since the epoch of `text` as ksqlDB's `StringToTimestampParser` reads it:
    /// the fields it has over 1970-01-01T00:00, in its zone or offset, else in `zone`.
    pub fn parse_timestamp(&self, text: &str, zone: &JavaZone) -> Result<i64, String> {
        let Resolved { date, time, rest } = self.read(text)?;
        let mut day = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("no epoch")?;
        match date {
            Some(date) => day = date,
            None => {
                if let Some(era) = rest.get(Field::Era)
                    && i64::from(day.year() >= 1) != era
                {
                    day = with_year(day, 1 - day.year())?;
                }
                if let Some(year) = rest.get(Field::Year) {
                    day = with_year(day, i32::try_from(year).map_err(|e| e.to_string())?)?;
                }
                if let Some(month) = rest.get(Field::Month) {
                    let first = NaiveDate::from_ymd_opt(day.year(), Field::Month.check(month)? as u32, 1)
                        .ok_or_else(|| out_of_range(day.year()))?;
                    day = first.with_day(day.day().min(days_in_month(first))).unwrap_or(first);
                }
                if let Some(weekday) = rest.get(Field::DayOfWeek) {
                    let shift = Field::DayOfWeek.check(weekday)? - i64::from(day.weekday().number_from_monday());
                    day = chrono::TimeDelta::try_days(shift)
                        .and_then(|shift| day.checked_add_signed(shift))
                        .ok_or_else(|| out_of_range(day.year()))?;
                }
                if let Some(day_of_month) = rest.get(Field::DayOfMonth) {
                    Field::DayOfMonth.check(day_of_month)?;
                    day = day
                        .with_day(day_of_month as u32)
                        .ok_or_else(|| format!("Invalid date '{} {day_of_month}'", month_name(day.month())))?;
                }
                if let Some(day_of_year) = rest.get(Field::DayOfYear) {
                    if day_of_year == 366 && rest.get(Field::Year).is_none() {
                        return Err("Leap day cannot be parsed without supplying the year field".into());
                    }
                    Field::DayOfYear.check(day_of_year)?;
                    day = day.with_ordinal(day_of_year as u32).ok_or_else(|| {
                        format!("Invalid date 'DayOfYear {day_of_year}' as '{}' is not a leap year", day.year())
                    })?;
                }
            }
        }
        let mut clock = NaiveTime::MIN;
        match time {
            Some(time) => clock = time,
            None => {
                let mut hour = 0;
                if let Some(am_pm) = rest.get(Field::AmPm) {
                    hour = hour % 12 + 12 * am_pm;
                }
                if let Some(hour_of_am_pm) = rest.get(Field::HourOfAmPm) {
                    hour = hour / 12 * 12 + hour_of_am_pm;
                }
                if let Some(hour_of_day) = rest.get(Field::HourOfDay) {
                    hour = hour_of_day;
                }
                let minute = rest.get(Field::Minute).unwrap_or(0);
                let second = rest.get(Field::Second).unwrap_or(0);
                let nano = rest.get(Field::NanoOfSecond).unwrap_or(0);
                clock = NaiveTime::from_hms_nano_opt(hour as u32, minute as u32, second as u32, nano as u32)
                    .unwrap_or(clock);
            }
        }
        let local = day.and_time(clock);
        Ok(match (rest.get(Field::Offset), rest.zone) {
            (Some(offset), _) => local.and_utc().timestamp_millis() - offset * 1000,
            (None, Some(parsed)) => parsed.local_to_utc(local),
            (None, None) => zone.local_to_utc(local),
        })
    }

    /// The time of day of `text` in milliseconds, as ksqlDB's `PARSE_TIME` reads it: a
    /// pattern with a date field fails, and the text must give a time (an hour at least).
    pub fn parse_time(&self, text: &str) -> Result<i64, String> {
        let Resolved { date, time, rest } = self.read(text)?;
        if date.is_some() || ALL_FIELDS.iter().any(|f| f.is_date() && rest.get(*f).is_some()) {
            return Err("Time format contains date field.".into());
        }
        let time = time.ok_or_else(|| format!("Unable to obtain LocalTime from TemporalAccessor: {text}"))?;
        Ok(i64::from(time.num_seconds_from_midnight()) * 1000 + i64::from(time.nanosecond() / 1_000_000))
    }

    /// The days since the epoch of the date in `text` (`LocalDate.parse`: the text must give a
    /// whole date).
    pub fn parse_date(&self, text: &str) -> Result<i32, String> {
        let Resolved { date, .. } = self.read(text)?;
        let date = date.ok_or_else(|| format!("Unable to obtain LocalDate from TemporalAccessor: {text}"))?;
        Ok(date.signed_duration_since(epoch()).num_days() as i32)
    }

    /// `millis` written with this pattern, in UTC; `None` where it cannot be.
    pub fn format_millis(&self, millis: i64) -> Option<String> {
        self.format_timestamp(millis, &JavaZone::UTC).ok()
    }

    /// A timestamp written with this pattern in `zone` (a `ZonedDateTime`'s fields).
    pub fn format_timestamp(&self, millis: i64, zone: &JavaZone) -> Result<String, String> {
        let offset = i64::from(zone.offset_at(millis)) * 1000;
        let local = chrono::DateTime::from_timestamp_millis(millis.saturating_add(offset))
            .ok_or_else(|| format!("Instant exceeds minimum or maximum instant: {millis}"))?
            .naive_utc();
        self.write(&Moment { date: Some(local.date()), time: Some(local.time()), zone: Some((*zone, millis)) })
    }

    /// A DATE (days since the epoch) written with this pattern: a time or zone field fails.
    pub fn format_date(&self, days: i64) -> Result<String, String> {
        let date = epoch()
            .checked_add_signed(chrono::TimeDelta::try_days(days).ok_or("day out of range")?)
            .ok_or_else(|| format!("Invalid value for EpochDay: {days}"))?;
        self.write(&Moment { date: Some(date), time: None, zone: None })
    }

    /// A TIME (milliseconds of the day) written with this pattern: a date or zone field fails.
    pub fn format_time(&self, millis: i64) -> Result<String, String> {
        let nanos = millis.checked_mul(1_000_000).filter(|n| (0..NANOS_PER_DAY).contains(n));
        let nanos =
            nanos.ok_or_else(|| format!("Invalid value for NanoOfDay: {}", millis.saturating_mul(1_000_000)))?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            (nanos / 1_000_000_000) as u32,
            (nanos % 1_000_000_000) as u32,
        )
        .ok_or("time out of range")?;
        self.write(&Moment { date: None, time: Some(time), zone: None })
    }

    fn write(&self, moment: &Moment) -> Result<String, String> {
        let mut out = String::new();
        format_items(&self.items, moment, &mut out, false)?;
        Ok(out)
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// `LocalDate.withYear`: 29 February becomes 28 February in a year that is not leap.
fn with_year(day: NaiveDate, year: i32) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, day.month(), day.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, day.month(), day.day() - 1))
        .ok_or_else(|| out_of_range(year))
}

fn month_name(month: u32) -> &'static str {
    names(Field::Month, Style::Full).get(month as usize - 1).copied().unwrap_or("")
}

// ------------------------------------------------------------------------------------------
// SimpleDateFormat patterns (PARSE_DATE)

/// A `java.text.SimpleDateFormat` pattern as commons-lang's `FastDateParser` reads dates with
/// it, in GMT: numbers of any width (of the pattern's width when another number follows),
/// names without case, text after the pattern ignored, out-of-range values rolling over as
/// a lenient `GregorianCalendar` has them (30 February is 2 March), the Julian calendar
/// before 1582-10-15.
#[derive(Debug, Clone)]
pub struct SimpleDateFormat {
    items: Vec<SimpleItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CalendarField {
    Era,
    Year,
    /// A two-digit year, within 80 years before and 20 after now.
    ShortYear,
    Month,
    DayOfMonth,
    DayOfYear,
    /// Read and not used (Java resolves it only with week fields).
    Ignored,
    HourOfDay,
    /// `k`: 1–24, 24 being 0.
    HourOfDay24,
    /// `K`: 0–11.
    Hour,
    /// `h`: 1–12, 12 being 0.
    Hour12,
    AmPm,
    Minute,
    Second,
    Millisecond,
    /// Milliseconds east of GMT.
    ZoneOffset,
}

#[derive(Debug, Clone, PartialEq)]
enum SimpleItem {
    Literal(String),
    /// A number; `width` 0 reads every digit (after leading white space).
    Number {
        field: CalendarField,
        width: usize,
    },
    /// Month, day-of-week, AM/PM or era names, short or long.
    Text(CalendarField),
    /// `X`, `Z` or `z`: `Z`, `±hh`, `±hhmm`, `±hh:mm` or `GMT±hh:mm`.
    Zone,
}

impl SimpleDateFormat {
    pub fn try_new(pattern: &str) -> Result<SimpleDateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut items: Vec<SimpleItem> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                let run = chars[i..].iter().take_while(|x| **x == c).count();
                let number = |field| SimpleItem::Number { field, width: run };
                items.push(match c {
                    'y' | 'Y' if run == 2 => number(CalendarField::ShortYear),
                    'y' | 'Y' => number(CalendarField::Year),
                    'M' | 'L' if run <= 2 => number(CalendarField::Month),
                    'M' | 'L' => SimpleItem::Text(CalendarField::Month),
                    'd' => number(CalendarField::DayOfMonth),
                    'D' => number(CalendarField::DayOfYear),
                    'H' => number(CalendarField::HourOfDay),
                    'k' => number(CalendarField::HourOfDay24),
                    'K' => number(CalendarField::Hour),
                    'h' => number(CalendarField::Hour12),
                    'm' => number(CalendarField::Minute),
                    's' => number(CalendarField::Second),
                    'S' => number(CalendarField::Millisecond),
                    'u' | 'w' | 'W' | 'F' => number(CalendarField::Ignored),
                    'E' => SimpleItem::Text(CalendarField::Ignored),
                    'a' => SimpleItem::Text(CalendarField::AmPm),
                    'G' => SimpleItem::Text(CalendarField::Era),
                    'z' | 'Z' | 'X' => SimpleItem::Zone,
                    _ => return Err(format!("Illegal pattern component: {}", c.to_string().repeat(run))),
                });
                i += run;
            } else if c == '\'' {
                let Some((text, j)) = quoted_literal(&chars, i) else {
                    return Err(format!("Unterminated quote: {pattern}"));
                };
                items.push(SimpleItem::Literal(if j == i + 1 { "'".into() } else { text }));
                i = j + 1;
            } else {
                match items.last_mut() {
                    Some(SimpleItem::Literal(text)) => text.push(c),
                    _ => items.push(SimpleItem::Literal(c.to_string())),
                }
                i += 1;
            }
        }
        // A number followed by another takes its pattern's width; else any.
        let numbers: Vec<bool> = items.iter().map(|i| matches!(i, SimpleItem::Number { .. })).collect();
        for (i, item) in items.iter_mut().enumerate() {
            if let SimpleItem::Number { width, .. } = item
                && !numbers.get(i + 1).copied().unwrap_or(false)
            {
                *width = 0;
            }
        }
        Ok(SimpleDateFormat { items })
    }

    /// The days since the epoch of the date at the start of `text`; a time of day other than
    /// midnight fails ("Date format contains time field.").
    pub fn parse_date(&self, text: &str) -> Result<i32, String> {
        let unparseable = || format!("Unparseable date: \"{text}\"");
        // Calendar fields in the order they were set (a later one wins).
        let mut set: Vec<(CalendarField, i64)> = Vec::new();
        let mut at = 0;
        for item in &self.items {
            let rest = text.get(at..).ok_or_else(unparseable)?;
            match item {
                SimpleItem::Literal(expected) => {
                    if !rest.starts_with(expected.as_str()) {
                        return Err(unparseable());
                    }
                    at += expected.len();
                }
                SimpleItem::Number { field, width } => {
                    let skipped = if *width == 0 { rest.len() - rest.trim_start().len() } else { 0 };
                    let digits = rest[skipped..]
                        .bytes()
                        .take(if *width == 0 { usize::MAX } else { *width })
                        .take_while(u8::is_ascii_digit)
                        .count();
                    if digits == 0 {
                        return Err(unparseable());
                    }
                    let value: i32 = rest[skipped..skipped + digits].parse().map_err(|e| format!("{e}"))?;
                    set.push((*field, i64::from(value)));
                    at += skipped + digits;
                }
                SimpleItem::Text(field) => {
                    let candidates: Vec<(&str, i64)> = match field {
                        CalendarField::Month => (0..12)
                            .flat_map(|m| {
                                [
                                    (names(Field::Month, Style::Full)[m], m as i64 + 1),
                                    (names(Field::Month, Style::Short)[m], m as i64 + 1),
                                ]
                            })
                            .collect(),
                        CalendarField::AmPm => vec![("AM", 0), ("PM", 1)],
                        CalendarField::Era => vec![("AD", 1), ("BC", 0)],
                        _ => (0..7)
                            .flat_map(|d| {
                                [
                                    (names(Field::DayOfWeek, Style::Full)[d], 0),
                                    (names(Field::DayOfWeek, Style::Short)[d], 0),
                                ]
                            })
                            .collect(),
                    };
                    let (taken, value) = candidates
                        .iter()
                        .filter_map(|(name, value)| starts_with_ignoring_case(rest, name).map(|n| (n, *value)))
                        .max_by_key(|(n, _)| *n)
                        .ok_or_else(unparseable)?;
                    set.push((*field, value));
                    at += taken;
                }
                SimpleItem::Zone => {
                    let (millis, taken) = simple_zone(rest).ok_or_else(unparseable)?;
                    set.push((CalendarField::ZoneOffset, millis));
                    at += taken;
                }
            }
        }
        let millis = calendar_millis(&set)?;
        if millis % MILLIS_PER_DAY != 0 {
            return Err("Date format contains time field.".into());
        }
        i32::try_from(millis / MILLIS_PER_DAY).map_err(|e| e.to_string())
    }
}

/// A zone for `FastDateParser`: `Z`, `±hh`, `±hhmm`, `±hh:mm`, optionally after `GMT`/`UTC`;
/// its offset in milliseconds and the bytes it took.
fn simple_zone(text: &str) -> Option<(i64, usize)> {
    let prefix = ["GMT", "UTC"].iter().find_map(|p| starts_with_ignoring_case(text, p)).unwrap_or(0);
    let rest = &text[prefix..];
    let bytes = rest.as_bytes();
    let sign = match bytes.first() {
        Some(b'Z') if prefix == 0 => return Some((0, 1)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ if prefix > 0 => return Some((0, prefix)),
        _ => return None,
    };
    let hours = two_digits(bytes, 1)?;
    let (minutes, taken) = match (bytes.get(3), two_digits(bytes, 3), two_digits(bytes, 4)) {
        (Some(b':'), _, Some(m)) => (m, 6),
        (_, Some(m), _) => (m, 5),
        _ => (0, 3),
    };
    Some((sign * (hours * 3_600_000 + minutes * 60_000), prefix + taken))
}

/// The instant a lenient `GregorianCalendar` in GMT computes from fields set in order
/// (unset ones are 1970-01-01T00:00).
fn calendar_millis(set: &[(CalendarField, i64)]) -> Result<i64, String> {
    let last = |wanted: &[CalendarField]| set.iter().rev().find(|(f, _)| wanted.contains(f)).map(|(_, v)| *v);
    let position = |wanted: CalendarField| set.iter().rposition(|(f, _)| *f == wanted);
    let mut year = match (last(&[CalendarField::Year]), last(&[CalendarField::ShortYear])) {
        (_, Some(short)) if position(CalendarField::ShortYear) > position(CalendarField::Year) && short < 100 => {
            two_digit_year(short)
        }
        (_, Some(short)) if position(CalendarField::ShortYear) > position(CalendarField::Year) => short,
        (Some(year), _) => year,
        _ => 1970,
    };
    if last(&[CalendarField::Era]) == Some(0) {
        year = 1 - year;
    }
    // A day of the year set after the month and day wins.
    let by_day_of_year = position(CalendarField::DayOfYear)
        .is_some_and(|p| Some(p) > position(CalendarField::DayOfMonth) && Some(p) > position(CalendarField::Month));
    let day = if by_day_of_year {
        fixed_day(year, 1, last(&[CalendarField::DayOfYear]).unwrap_or(1))?
    } else {
        let month0 = last(&[CalendarField::Month]).unwrap_or(1) - 1;
        let (year, month0) = (year + month0.div_euclid(12), month0.rem_euclid(12));
        fixed_day(year, month0 + 1, last(&[CalendarField::DayOfMonth]).unwrap_or(1))?
    };
    // The hour of the day, or of AM/PM, whichever was set last.
    let of_day = [CalendarField::HourOfDay, CalendarField::HourOfDay24];
    let of_am_pm = [CalendarField::Hour, CalendarField::Hour12, CalendarField::AmPm];
    let last_of = |fields: &[CalendarField]| fields.iter().filter_map(|f| position(*f)).max();
    let hour = if last_of(&of_day) >= last_of(&of_am_pm) {
        match set.iter().rev().find(|(f, _)| of_day.contains(f)) {
            Some((CalendarField::HourOfDay24, 24)) => 0,
            Some((_, hour)) => *hour,
            None => 0,
        }
    } else {
        let hour = match set.iter().rev().find(|(f, _)| matches!(f, CalendarField::Hour | CalendarField::Hour12)) {
            Some((CalendarField::Hour12, 12)) => 0,
            Some((_, hour)) => *hour,
            None => 0,
        };
        hour + 12 * last(&[CalendarField::AmPm]).unwrap_or(0)
    };
    let millis_of_day = hour * 3_600_000
        + last(&[CalendarField::Minute]).unwrap_or(0) * 60_000
        + last(&[CalendarField::Second]).unwrap_or(0) * 1000
        + last(&[CalendarField::Millisecond]).unwrap_or(0);
    let zone = last(&[CalendarField::ZoneOffset]).unwrap_or(0);
    day.checked_mul(MILLIS_PER_DAY)
        .and_then(|m| m.checked_add(millis_of_day))
        .and_then(|m| m.checked_sub(zone))
        .ok_or_else(|| "date out of range".into())
}

/// A two-digit year within 80 years before and 20 years after the current one.
fn two_digit_year(short: i64) -> i64 {
    let start = i64::from(chrono::Utc::now().year()) - 80;
    let century = start.div_euclid(100) * 100;
    if short >= start - century { century + short } else { century + 100 + short }
}

/// Days since the epoch of a year, month and day (the day possibly out of the month's range),
/// in the Gregorian calendar from 1582-10-15 and the Julian before.
fn fixed_day(year: i64, month: i64, day: i64) -> Result<i64, String> {
    let year32 = i32::try_from(year).map_err(|_| out_of_range(0))?;
    let first = NaiveDate::from_ymd_opt(year32, month as u32, 1).ok_or_else(|| out_of_range(year32))?;
    let gregorian = first.signed_duration_since(epoch()).num_days() + day - 1;
    // 1582-10-15, the first Gregorian day.
    const CUTOVER: i64 = -141_427;
    if gregorian >= CUTOVER {
        return Ok(gregorian);
    }
    // The Julian day number of the Julian calendar's first of the month.
    let a = (14 - month).div_euclid(12);
    let y = year + 4800 - a;
    let m = month + 12 * a - 3;
    let julian_day = 1 + (153 * m + 2).div_euclid(5) + 365 * y + y.div_euclid(4) - 32083;
    Ok(julian_day - 2_440_588 + day - 1)
}

#[cfg(test)]
mod fixed_layout_tests {
    use super::*;

    /// The positional reading agrees with the general parser wherever it answers, and leaves
    /// to it what is out of range.
    #[test]
    fn fixed_layouts_read_as_the_general_parser_does() {
        let pattern = "yyyy-MM-dd HH:mm:ss.SSS";
        let format = TimeFormat::try_new(pattern).unwrap();
        let layout = FixedLayout::of(pattern).unwrap();
        for text in [
            "2024-01-01 00:00:00.001",
            "1999-12-31 23:59:59.999",
            "2024-02-29 12:30:45.500",
            "2000-02-29 00:00:00.000",
            "1900-03-01 01:02:03.004",
            "0001-01-01 00:00:00.000",
            "1969-12-31 23:59:59.999",
            "9999-12-31 23:59:59.999",
        ] {
            assert_eq!(layout.parse_millis(text), format.parse_timestamp(text, &JavaZone::UTC).ok(), "{text}");
        }
        for text in [
            "2023-02-29 00:00:00.000",
            "1900-02-29 00:00:00.000",
            "2024-04-31 00:00:00.000",
            "2024-13-01 00:00:00.000",
            "2024-00-10 00:00:00.000",
            "2024-01-01 24:00:00.000",
            "2024-1-01 00:00:00.000",
            "x",
        ] {
            assert_eq!(layout.parse_millis(text), None, "{text}");
        }
        let iso = FixedLayout::of("yyyy-MM-dd'T'HH:mm:ss").unwrap();
        assert_eq!(iso.parse_millis("1970-01-02T00:00:01"), Some(86_401_000));
        assert!(FixedLayout::of("yyyy-MM-dd HH:mm:ss z").is_none());
        assert!(FixedLayout::of("dd MMM yyyy").is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str, text: &str) -> Result<i64, String> {
        TimeFormat::try_new(pattern)?.parse_timestamp(text, &JavaZone::UTC)
    }

    fn format(pattern: &str, millis: i64, zone: &str) -> String {
        TimeFormat::try_new(pattern).unwrap().format_timestamp(millis, &JavaZone::parse(zone).unwrap()).unwrap()
    }

    #[test]
    fn reads_ksqldb_patterns() {
        let f = TimeFormat::try_new("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap();
        assert_eq!(f.parse_millis("2018-05-11T21:58:23.000"), Some(1_526_075_903_000));
        assert_eq!(f.format_millis(1_526_075_903_123).as_deref(), Some("2018-05-11T21:58:23.123"));
        assert_eq!(parse("yyyy-MM-dd HH:mm:ssX", "1970-01-01 01:00:00+01"), Ok(0));
        assert_eq!(parse("yyyy-MM-dd", "1970-01-02"), Ok(86_400_000));
        assert_eq!(f.parse_millis("not a time"), None);
        assert!(TimeFormat::try_new("yyyy-qqqqqq").is_err());
        assert!(TimeFormat::try_new("yyyy-bb").is_err());
        assert!(TimeFormat::try_new("'open").is_err());
        assert!(TimeFormat::try_new("ddd").is_err());
    }

    #[test]
    fn numbers_are_strict_and_adjacent_ones_keep_their_digits() {
        assert_eq!(parse("yyyyMMddHHmmss", "19700102030405"), Ok(86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5000));
        assert_eq!(parse("yyyyMMddHHmmssSSS", "19700101000000123"), Ok(123));
        assert!(parse("yyyy-MM-dd", "1970-1-02").is_err(), "MM takes two digits");
        assert!(parse("yyyy-MM-dd", "12024-01-01").is_err(), "more than four digits need a sign");
        assert_eq!(parse("yyyy-MM-dd", "+12024-01-01").map(|m| m > 0), Ok(true));
        assert_eq!(parse("y-M-d", "1970-1-2"), Ok(86_400_000));
        assert_eq!(parse("yy-MM-dd", "70-01-01").map(|m| m / MILLIS_PER_DAY), Ok(36_525), "2070, not 1970");
        assert!(parse("yyyy-MM-dd", "1970-01-01 ").is_err(), "all the text is read");
    }

    #[test]
    fn fields_resolve_smartly() {
        let day = |text: &str| parse("yyyy-MM-dd", text).map(|m| m / MILLIS_PER_DAY);
        assert_eq!(day("2021-04-31"), day("2021-04-30"));
        assert_eq!(day("2021-02-29"), day("2021-02-28"));
        assert!(day("2021-02-32").is_err());
        assert!(day("2021-13-01").is_err());
        assert_eq!(parse("yyyy-MM-dd HH:mm", "1970-01-01 24:00"), Ok(MILLIS_PER_DAY));
        assert!(parse("yyyy-MM-dd HH:mm", "1970-01-01 24:01").is_err());
        assert_eq!(parse("HH:mm", "01:30"), Ok(5_400_000), "the date is 1970-01-01");
        assert_eq!(parse("yyyy-MM", "1970-02"), Ok(31 * MILLIS_PER_DAY));
        assert_eq!(parse("hh:mm a", "12:15 am"), Ok(15 * 60_000));
        assert_eq!(parse("hh:mm a", "12:15 PM"), Ok(12 * 3_600_000 + 15 * 60_000));
        assert_eq!(parse("dd MMM yyyy", "02 jan 1970"), Ok(MILLIS_PER_DAY));
        assert!(parse("EEE, dd MMMM yyyy", "Friday, 02 January 1970").is_err(), "EEE is short");
        assert_eq!(parse("EEE, dd MMMM yyyy", "Fri, 02 January 1970"), Ok(MILLIS_PER_DAY));
        assert!(parse("EEE, dd MMMM yyyy", "Sat, 02 January 1970").is_err(), "the day of the week disagrees");
        assert_eq!(parse("yyyy-MM-dd[ HH:mm]", "1970-01-01"), Ok(0));
        assert_eq!(parse("yyyy-MM-dd[ HH:mm]", "1970-01-01 00:01"), Ok(60_000));
        assert_eq!(parse("yyyy-DDD", "1970-032"), Ok(31 * MILLIS_PER_DAY));
        assert!(parse("DDD", "366").is_err());
    }

    #[test]
    fn zones_and_offsets_are_javas() {
        assert_eq!(parse("yyyy-MM-dd'T'HH:mmXXX", "1970-01-01T01:00+01:00"), Ok(0));
        assert_eq!(parse("yyyy-MM-dd'T'HH:mmXXX", "1970-01-01T00:00Z"), Ok(0));
        assert_eq!(parse("yyyy-MM-dd'T'HH:mmXXX", "1970-01-01T00:00z"), Ok(0));
        assert!(parse("yyyy-MM-dd'T'HH:mmXXX", "1970-01-01T00:00+0100").is_err());
        assert_eq!(parse("yyyy-MM-dd HH:mm Z", "1970-01-01 00:00 -0130"), Ok(5_400_000));
        assert_eq!(parse("yyyy-MM-dd HH:mm VV", "1970-01-01 00:00 America/Los_Angeles"), Ok(8 * 3_600_000));
        assert_eq!(parse("yyyy-MM-dd HH:mm z", "1970-01-01 00:00 PST"), Ok(8 * 3_600_000));
        assert_eq!(parse("yyyy-MM-dd HH:mm O", "1970-01-01 00:00 GMT-8"), Ok(8 * 3_600_000));
        let la = JavaZone::parse("America/Los_Angeles").unwrap();
        let f = TimeFormat::try_new("yyyy-MM-dd HH:mm").unwrap();
        // 02:30 on 14 March 2021 does not exist there: it is 03:30 PDT.
        assert_eq!(f.parse_timestamp("2021-03-14 02:30", &la), f.parse_timestamp("2021-03-14 10:30", &JavaZone::UTC));
        // 01:30 on 7 November 2021 is twice: the earlier (PDT).
        assert_eq!(f.parse_timestamp("2021-11-07 01:30", &la), f.parse_timestamp("2021-11-07 08:30", &JavaZone::UTC));
    }

    #[test]
    fn writes_as_java() {
        let t = 1_615_811_400_123; // 2021-03-15T12:30:00.123Z, a Monday
        assert_eq!(format("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", t, "UTC"), "2021-03-15T12:30:00.123Z");
        assert_eq!(format("yyyy-MM-dd'T'HH:mm:ssXXX", t, "America/Los_Angeles"), "2021-03-15T05:30:00-07:00");
        assert_eq!(format("X x xx Z ZZZZ ZZZZZ O", t, "+05:30"), "+0530 +0530 +0530 +0530 GMT+05:30 +05:30 GMT+5:30");
        assert_eq!(format("X xx ZZZZZ O", t, "UTC"), "Z +0000 Z GMT");
        assert_eq!(format("EEE EEEE MMM MMMM a G QQQ D", t, "UTC"), "Mon Monday Mar March PM AD Q1 74");
        assert_eq!(format("h K k H y yyy S n", t, "UTC"), "12 0 12 12 2021 2021 1 123000000");
        assert_eq!(format("z VV", t, "America/Los_Angeles"), "PDT America/Los_Angeles");
        assert_eq!(format("z VV", t, "UTC"), "UTC UTC");
        assert_eq!(format("z VV", t, "GMT+2"), "GMT+02:00 GMT+02:00");
        assert_eq!(format("z VV", t, "+02:00"), "+02:00 +02:00");
        assert_eq!(format("''yy'' [HH]", t, "UTC"), "'21' 12");
        let date = TimeFormat::try_new("yyyy-MM-dd[ HH:mm]").unwrap();
        assert_eq!(date.format_date(18_701).as_deref(), Ok("2021-03-15"));
        assert!(TimeFormat::try_new("yyyy HH").unwrap().format_date(0).is_err());
        assert!(TimeFormat::try_new("HH:mm yyyy").unwrap().format_time(0).is_err());
        assert_eq!(TimeFormat::try_new("hh:mm a").unwrap().format_time(45_005_000).as_deref(), Ok("12:30 PM"));
        assert!(TimeFormat::try_new("nn").unwrap().format_time(1).is_err(), "1000000 is wider than two digits");
        // Year 0 is 1 BC.
        assert_eq!(format("yyyy G", -62_167_219_200_000, "UTC"), "0001 BC");
        assert_eq!(format("uuuu", -62_167_219_200_000, "UTC"), "0000");
        assert_eq!(format("uuuu", -62_198_755_200_000, "UTC"), "-0001");
    }

    #[test]
    fn times_and_dates_alone() {
        let time = |p: &str, t: &str| TimeFormat::try_new(p).unwrap().parse_time(t);
        assert_eq!(time("HH:mm:ss", "12:30:05"), Ok(45_005_000));
        assert_eq!(time("HH", "12"), Ok(43_200_000));
        assert!(time("yyyy HH", "2021 12").is_err());
        assert!(time("mm:ss", "30:05").is_err(), "no hour");
        let date = |p: &str, t: &str| TimeFormat::try_new(p).unwrap().parse_date(t);
        assert_eq!(date("yyyy-MM-dd", "2021-03-15"), Ok(18_701));
        assert_eq!(date("yyyy-MM-dd HH:mm", "2021-03-15 24:00"), Ok(18_702));
        assert!(date("yyyy-MM", "2021-03").is_err());
    }

    #[test]
    fn java_zone_ids() {
        assert_eq!(JavaZone::parse("Z"), Ok(JavaZone::Offset(0)));
        assert_eq!(JavaZone::parse("+2"), Ok(JavaZone::Offset(7200)));
        assert_eq!(JavaZone::parse("-05:30"), Ok(JavaZone::Offset(-19_800)));
        assert_eq!(JavaZone::parse("UTC+01:00"), Ok(JavaZone::Prefixed("UTC", 3600)));
        assert_eq!(JavaZone::parse("GMT"), Ok(JavaZone::Prefixed("GMT", 0)));
        assert!(JavaZone::parse("PST").is_err());
        assert!(JavaZone::parse("+19:00").is_err());
        assert!(JavaZone::parse("america/los_angeles").is_err());
        assert_eq!(JavaZone::parse("UTC+01:00").unwrap().time_zone_offset_at(0), 0);
        assert_eq!(JavaZone::parse("GMT+01:00").unwrap().time_zone_offset_at(0), 3600);
    }

    #[test]
    fn simple_date_format_is_lenient() {
        let date = |p: &str, t: &str| SimpleDateFormat::try_new(p).unwrap().parse_date(t);
        assert_eq!(date("yyyy-MM-dd", "2021-03-15"), Ok(18_701));
        assert_eq!(date("yyyy-MM-dd", "2021-3-15"), Ok(18_701));
        assert_eq!(date("yyyy-MM-dd", "2021-02-30"), date("yyyy-MM-dd", "2021-03-02"));
        assert_eq!(date("yyyy-MM-dd", "2021-03-15 and more"), Ok(18_701));
        assert_eq!(date("yyyyMMdd", "20210315"), Ok(18_701));
        assert_eq!(date("dd MMM yyyy", "15 march 2021"), Ok(18_701));
        assert_eq!(date("yyyy-MM-dd HH", "2021-03-15 00"), Ok(18_701));
        assert!(date("yyyy-MM-dd HH", "2021-03-15 01").is_err());
        assert!(date("yyyy-MM-dd", "2021/03/15").is_err());
        // Julian before the Gregorian reform: 4 October 1582 is the day before 15 October.
        assert_eq!(date("yyyy-MM-dd", "1582-10-04").map(|d| d + 1), date("yyyy-MM-dd", "1582-10-15"));
    }
}
