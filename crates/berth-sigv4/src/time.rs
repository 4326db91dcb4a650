//! Hand-rolled civil-calendar arithmetic (no date crate): ISO-8601 basic
//! timestamps (`20261124T044052Z`), IMF-fixdate (`Tue, 24 Nov 2026 04:40:52 GMT`)
//! and conversions to and from whole Unix seconds.

use berth_clock::civil::{civil_from_days, days_from_civil};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')))
}

fn to_secs(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * SECS_PER_DAY + i64::from(h * 3600 + mi * 60 + s))
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` into Unix seconds.
pub(crate) fn parse_iso_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let y = digits(&b[0..4])?;
    let mo = digits(&b[4..6])?;
    let d = digits(&b[6..8])?;
    let h = digits(&b[9..11])?;
    let mi = digits(&b[11..13])?;
    let sec = digits(&b[13..15])?;
    to_secs(i64::from(y), mo, d, h, mi, sec)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110) into Unix seconds.
/// The weekday name is checked for shape only.
pub(crate) fn parse_imf_fixdate(s: &str) -> Option<i64> {
    const WEEKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || !WEEKDAYS.contains(&&b[0..3])
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..29] != b" GMT"
    {
        return None;
    }
    let d = digits(&b[5..7])?;
    let mo = MONTHS.iter().position(|m| *m == &b[8..11])?;
    let y = digits(&b[12..16])?;
    let h = digits(&b[17..19])?;
    let mi = digits(&b[20..22])?;
    let sec = digits(&b[23..25])?;
    // `mo` is an index into a 12-element array.
    to_secs(i64::from(y), mo as u32 + 1, d, h, mi, sec)
}

/// Formats Unix seconds as `YYYYMMDD'T'HHMMSS'Z'`.
pub(crate) fn format_iso_basic(secs: i64) -> String {
    let days = secs.div_euclid(SECS_PER_DAY);
    let rem = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Whole Unix seconds of `t`, rounded towards negative infinity, saturating.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let floor_adjust = i64::from(d.subsec_nanos() > 0);
            whole.saturating_neg().saturating_sub(floor_adjust)
        }
    }
}

/// The `SystemTime` for whole Unix seconds, if the platform can represent it.
pub(crate) fn system_time(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_basic() {
        assert_eq!(parse_iso_basic("19700101T000000Z"), Some(0));
        assert_eq!(parse_iso_basic("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_iso_basic("20261124T044052Z"), Some(1_795_495_252));
        assert_eq!(format_iso_basic(1_795_495_252), "20261124T044052Z");
        assert_eq!(
            parse_iso_basic("20240229T235959Z")
                .map(format_iso_basic)
                .as_deref(),
            Some("20240229T235959Z")
        );
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015-08-30T12:36:00Z",
            "20150230T123600Z",
            "20230229T000000Z",
            "20151301T000000Z",
            "20150800T000000Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "2015083aT123600Z",
            "+0150830T123600Z",
            "20150830t123600z",
        ] {
            assert_eq!(parse_iso_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn imf_fixdate() {
        assert_eq!(
            parse_imf_fixdate("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        assert_eq!(parse_imf_fixdate("Sun, 30 Aug 2015 12:36:00 UTC"), None);
        assert_eq!(parse_imf_fixdate("Sun, 31 Sep 2015 12:36:00 GMT"), None);
        assert_eq!(parse_imf_fixdate("Sunday, 30-Aug-15 12:36:00 GMT"), None);
    }

    #[test]
    fn system_time_conversions() {
        assert_eq!(unix_secs(UNIX_EPOCH), 0);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_millis(1500)), -2);
        assert_eq!(system_time(-5).map(unix_secs), Some(-5));
        assert_eq!(
            system_time(1_795_495_252).map(unix_secs),
            Some(1_795_495_252)
        );
        assert_eq!(format_iso_basic(-1), "19691231T235959Z");
    }
}
