//! Dates and datetimes as pydantic reads them: speedate's grammar and error
//! wording (RFC 3339 datetimes with pydantic's relaxations, `YYYY-MM-DD`
//! dates, unix timestamps in seconds or milliseconds), and pydantic's lax
//! `date` (a datetime at midnight is a date).

use serde_json::Number;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    microsecond: u32,
    pub(super) tz: Option<i32>,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        if self.microsecond != 0 {
            write!(f, ".{:06}", self.microsecond)?;
        }
        match self.tz {
            Some(0) => f.write_str("Z"),
            Some(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                let abs = offset.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
            }
            None => Ok(()),
        }
    }
}

const TOO_SHORT: &str = "input is too short";
const EXTRA: &str = "unexpected extra characters at the end of the input";

fn digit(b: &[u8], i: usize, err: &'static str) -> Result<u8, &'static str> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Ok(c - b'0'),
        _ => Err(err),
    }
}

fn parse_date_partial(b: &[u8]) -> Result<Date, &'static str> {
    if b.len() < 10 {
        return Err(TOO_SHORT);
    }
    let mut year: u16 = 0;
    for i in 0..4 {
        year = year * 10 + u16::from(digit(b, i, "invalid character in year")?);
    }
    if b[4] != b'-' {
        return Err("invalid date separator, expected `-`");
    }
    let month = digit(b, 5, "invalid character in month")? * 10
        + digit(b, 6, "invalid character in month")?;
    if b[7] != b'-' {
        return Err("invalid date separator, expected `-`");
    }
    let day =
        digit(b, 8, "invalid character in day")? * 10 + digit(b, 9, "invalid character in day")?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let max_day = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("month value is outside expected range of 1-12"),
    };
    if day < 1 || day > max_day {
        return Err("day value is outside expected range");
    }
    Ok(Date { year, month, day })
}

fn parse_datetime_rfc3339(b: &[u8]) -> Result<DateTime, &'static str> {
    let date = parse_date_partial(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ' | b'_')) {
        return Err("invalid datetime separator, expected `T`, `t`, `_` or space");
    }
    let o = 11;
    if b.len() < o + 5 {
        return Err(TOO_SHORT);
    }
    let hour = digit(b, o, "invalid character in hour")? * 10
        + digit(b, o + 1, "invalid character in hour")?;
    if b[o + 2] != b':' {
        return Err("invalid time separator, expected `:`");
    }
    let minute = digit(b, o + 3, "invalid character in minute")? * 10
        + digit(b, o + 4, "invalid character in minute")?;
    if hour > 23 {
        return Err("hour value is outside expected range of 0-23");
    }
    if minute > 59 {
        return Err("minute value is outside expected range of 0-59");
    }
    let mut pos = o + 5;
    let (mut second, mut microsecond) = (0u8, 0u32);
    if b.get(pos) == Some(&b':') {
        second = digit(b, pos + 1, "invalid character in second")? * 10
            + digit(b, pos + 2, "invalid character in second")?;
        if second > 59 {
            return Err("second value is outside expected range of 0-59");
        }
        pos += 3;
        if matches!(b.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let mut n = 0usize;
            while let Some(c) = b.get(pos + n).filter(|c| c.is_ascii_digit()) {
                if n < 6 {
                    microsecond = microsecond * 10 + u32::from(c - b'0');
                }
                n += 1;
            }
            if n == 0 {
                return Err("second fraction digits missing after `.`");
            }
            if n < 6 {
                microsecond *= 10u32.pow((6 - n) as u32);
            }
            pos += n;
        }
    }
    let mut tz = None;
    if let Some(&c) = b.get(pos) {
        pos += 1;
        if c == b'Z' || c == b'z' {
            tz = Some(0);
        } else {
            let sign = match c {
                b'+' => 1,
                b'-' => -1,
                0xE2 if b.get(pos) == Some(&0x88) && b.get(pos + 1) == Some(&0x92) => {
                    pos += 2;
                    -1
                }
                _ => return Err("invalid timezone sign"),
            };
            let h1 = i32::from(digit(b, pos, "invalid timezone hour")?);
            let h2 = i32::from(digit(b, pos + 1, "invalid timezone hour")?);
            let m1 = match b.get(pos + 2) {
                Some(b':') => {
                    pos += 3;
                    i32::from(digit(b, pos, "invalid timezone minute")?)
                }
                Some(c) if c.is_ascii_digit() => {
                    pos += 2;
                    i32::from(c - b'0')
                }
                _ => return Err("invalid timezone minute"),
            };
            let m2 = i32::from(digit(b, pos + 1, "invalid timezone minute")?);
            let minute_seconds = m1 * 600 + m2 * 60;
            if minute_seconds >= 3600 {
                return Err("timezone minute value is outside expected range of 0-59");
            }
            let offset = sign * (h1 * 36000 + h2 * 3600 + minute_seconds);
            if offset.abs() >= 24 * 3600 {
                return Err("timezone offset must be less than 24 hours");
            }
            tz = Some(offset);
            pos += 2;
        }
    }
    if b.len() > pos {
        return Err(EXTRA);
    }
    Ok(DateTime {
        date,
        hour,
        minute,
        second,
        microsecond,
        tz,
    })
}

/// speedate's `DateTime::parse_bytes`: RFC 3339, else a numeric string
/// read as a unix timestamp.
pub(super) fn parse_datetime(b: &[u8]) -> Result<DateTime, &'static str> {
    match parse_datetime_rfc3339(b) {
        Ok(dt) => Ok(dt),
        Err(e) => match numeric(b) {
            Some(ts) => from_timestamp(ts),
            None => Err(e),
        },
    }
}

/// A string of the form `-?[0-9]+(\.[0-9]+)?`, as a float.
fn numeric(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    if all_digits(int) && all_digits(frac) {
        s.parse().ok()
    } else {
        None
    }
}

pub(super) fn datetime_from_number(n: &Number) -> Result<DateTime, &'static str> {
    match n.as_i64() {
        Some(i) => from_timestamp(i as f64),
        None => from_timestamp(n.as_f64().unwrap_or(f64::NAN)),
    }
}

const MS_WATERSHED: f64 = 20_000_000_000.0;
const UNIX_1600: i64 = -11_676_096_000;
const UNIX_9999: i64 = 253_402_300_799;

/// A unix timestamp in seconds, or milliseconds beyond 2e10, as UTC.
fn from_timestamp(ts: f64) -> Result<DateTime, &'static str> {
    if !ts.is_finite() {
        return Err("dates after 9999 are not supported as unix timestamps");
    }
    let seconds_f = if ts.abs() > MS_WATERSHED {
        ts / 1000.0
    } else {
        ts
    };
    let seconds = seconds_f.floor();
    if seconds < UNIX_1600 as f64 {
        return Err("dates before 1600 are not supported as unix timestamps");
    }
    if seconds > UNIX_9999 as f64 {
        return Err("dates after 9999 are not supported as unix timestamps");
    }
    let seconds = seconds as i64;
    let mut microsecond = ((seconds_f - seconds as f64) * 1_000_000.0).round() as u32;
    let mut seconds = seconds;
    if microsecond >= 1_000_000 {
        seconds += 1;
        microsecond -= 1_000_000;
    }
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    Ok(DateTime {
        date: civil_from_days(days),
        hour: (secs / 3600) as u8,
        minute: (secs % 3600 / 60) as u8,
        second: (secs % 60) as u8,
        microsecond,
        tz: Some(0),
    })
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    Date { year, month, day }
}

pub(super) enum DateError {
    Parsing(&'static str),
    Inexact,
}

fn date_from_datetime(dt: DateTime) -> Result<Date, DateError> {
    if dt.hour == 0 && dt.minute == 0 && dt.second == 0 && dt.microsecond == 0 {
        Ok(dt.date)
    } else {
        Err(DateError::Inexact)
    }
}

/// speedate's `Date::parse_bytes`: `YYYY-MM-DD`, else an integer string
/// read as a unix timestamp that must fall on midnight.
pub(super) fn parse_date(b: &[u8]) -> Result<Date, &'static str> {
    let parsed = parse_date_partial(b).and_then(|d| if b.len() > 10 { Err(EXTRA) } else { Ok(d) });
    match parsed {
        Ok(d) => Ok(d),
        Err(e) => match numeric(b) {
            Some(ts) if !b.contains(&b'.') => match from_timestamp(ts) {
                Ok(dt)
                    if dt.hour == 0 && dt.minute == 0 && dt.second == 0 && dt.microsecond == 0 =>
                {
                    Ok(dt.date)
                }
                Ok(_) => Err("Timestamp is not an exact date"),
                Err(e) => Err(e),
            },
            _ => Err(e),
        },
    }
}

impl DateTime {
    /// A date at 00:00:00, without timezone.
    pub(super) fn midnight(date: Date) -> DateTime {
        DateTime {
            date,
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
            tz: None,
        }
    }
}

/// pydantic's lax `date` from a string: a date, else a datetime with a
/// zero time (whose parse error is the one reported).
pub(super) fn parse_date_lax(b: &[u8]) -> Result<Date, DateError> {
    if let Ok(d) = parse_date(b) {
        return Ok(d);
    }
    match parse_datetime(b) {
        Ok(dt) => date_from_datetime(dt),
        Err(e) => Err(DateError::Parsing(e)),
    }
}

pub(super) fn date_from_number(n: &Number) -> Result<Date, DateError> {
    datetime_from_number(n)
        .map_err(DateError::Parsing)
        .and_then(date_from_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        let ok = |s: &str| parse_datetime(s.as_bytes()).map(|d| d.to_string());
        assert_eq!(
            ok("2024-01-02T03:04:05Z"),
            Ok("2024-01-02T03:04:05Z".into())
        );
        assert_eq!(
            ok("2024-01-02 03:04:05.5+0130"),
            Ok("2024-01-02T03:04:05.500000+01:30".into())
        );
        assert_eq!(ok("2024-01-02T03:04"), Ok("2024-01-02T03:04:00".into()));
        assert_eq!(ok("1700000000"), Ok("2023-11-14T22:13:20Z".into()));
        assert_eq!(ok("2024-01-0"), Err(TOO_SHORT));
        assert_eq!(
            ok("2024-13-01T00:00:00"),
            Err("month value is outside expected range of 1-12")
        );
        assert_eq!(
            ok("2024-01-01x"),
            Err("invalid datetime separator, expected `T`, `t`, `_` or space")
        );
        assert_eq!(
            ok("2012-04-23T00:00:60"),
            Err("second value is outside expected range of 0-59")
        );
        assert_eq!(ok("2012-04-23T00:00X00"), Err("invalid timezone sign"));
        assert_eq!(
            ok("2012-04-23T00:00:00+24:00"),
            Err("timezone offset must be less than 24 hours")
        );
        assert_eq!(
            ok("2012-04-23T00:00:00."),
            Err("second fraction digits missing after `.`")
        );
        assert_eq!(ok("2012-04-23T00:00:00Zx"), Err(EXTRA));
    }
}
