//! Timestamps (SPEC §4): strict RFC 3339 date-times, stored as microseconds
//! since the Unix epoch in UTC, truncating below a microsecond.

use chrono::{DateTime, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`: `T` and `Z` in either
/// case, 0 to 9 fraction digits, any offset. Returns `None` for anything else,
/// including impossible dates and leap seconds.
pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    // The shortest form is `2024-01-01T00:00:00Z` (20 bytes).
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros_of_second = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        // Keep the first six digits; further digits are truncated.
        let kept = &tail[..n.min(6)];
        for c in kept {
            micros_of_second = micros_of_second * 10 + i64::from(c - b'0');
        }
        micros_of_second *= 10i64.pow(6 - kept.len() as u32);
        rest = &tail[n..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_since_epoch(year, month, day)?;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Some(seconds * 1_000_000 + micros_of_second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, if
/// the date exists (Howard Hinnant's `days_from_civil`). chrono's checked
/// constructor and difference were a quarter of parsing a timestamp, and an
/// event has five or six to parse.
fn days_since_epoch(year: u32, month: u32, day: u32) -> Option<i64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        2 => 28 + u32::from(leap),
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Years start in March, so that February's leap day ends them.
    let (month, day) = (i64::from(month), i64::from(day));
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// The UTC calendar date of `micros` as `YYYY-MM-DD`.
pub fn utc_date(micros: Micros) -> String {
    to_datetime(micros).format("%Y-%m-%d").to_string()
}

pub fn to_datetime(micros: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The event time of SPEC §4: `timestamp` when given; else `receivedAt −
/// (sentAt − originalTimestamp)` when all three are given (client clock-skew
/// correction); else `originalTimestamp`; else `received_at`.
pub fn event_timestamp(
    timestamp: Option<Micros>,
    original_timestamp: Option<Micros>,
    sent_at: Option<Micros>,
    received_at_field: Option<Micros>,
    received_at: Micros,
) -> Micros {
    if let Some(t) = timestamp {
        return t;
    }
    match (received_at_field, sent_at, original_timestamp) {
        (Some(r), Some(s), Some(o)) => r - (s - o),
        (_, _, Some(o)) => o,
        _ => received_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Micros = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z

    #[test]
    fn utc_and_offsets() {
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(T0));
        assert_eq!(parse_rfc3339("2024-01-01t00:00:00z"), Some(T0));
        assert_eq!(parse_rfc3339("2024-01-01T02:30:00+02:30"), Some(T0));
        assert_eq!(parse_rfc3339("2023-12-31T19:00:00-05:00"), Some(T0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+00:00"), Some(T0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00-00:00"), Some(T0));
    }

    #[test]
    fn fraction_digits_zero_to_nine_truncate_to_micros() {
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.5Z"), Some(T0 + 500_000));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.123456Z"), Some(T0 + 123_456));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.1234567Z"), Some(T0 + 123_456));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.999999999Z"), Some(T0 + 999_999));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.1234567891Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn before_the_epoch_truncates_towards_the_past() {
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.9999999Z"), Some(-1));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    }

    #[test]
    fn not_rfc3339() {
        for s in [
            "",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T23:59:60Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Z ",
            " 2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "１２３４-01-01T00:00:00Z",
            "hello world, not a date",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn skew_correction_precedence() {
        let (ts, ot, sa, ra, fallback) = (Some(10), Some(100), Some(150), Some(1000), 7);
        assert_eq!(event_timestamp(ts, ot, sa, ra, fallback), 10);
        assert_eq!(event_timestamp(None, ot, sa, ra, fallback), 1000 - (150 - 100));
        assert_eq!(event_timestamp(None, ot, None, ra, fallback), 100);
        assert_eq!(event_timestamp(None, ot, sa, None, fallback), 100);
        assert_eq!(event_timestamp(None, None, sa, ra, fallback), fallback);
        assert_eq!(event_timestamp(None, None, None, None, fallback), fallback);
    }

    #[test]
    fn days_since_epoch_is_chronos_for_every_date_and_none_for_the_impossible() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in (0..=9999).step_by(7).chain([1600, 1700, 1900, 1969, 1970, 2000, 2024, 2100, 9999]) {
            for month in 0..=13 {
                for day in 0..=32 {
                    let chrono = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)
                        .map(|date| date.signed_duration_since(epoch).num_days());
                    assert_eq!(days_since_epoch(year, month, day), chrono, "{year}-{month}-{day}");
                }
            }
        }
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(T0), "2024-01-01");
        assert_eq!(utc_date(T0 - 1), "2023-12-31");
    }
}
