//! Container output as JSON lines, in Docker's `json-file` shape:
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-24T05:16:38.123456789Z"}`,
//! one object per line of output, in size-rotated files (`container.log`,
//! `container.log.1`, ... oldest last) that a CloudWatch Logs reader can
//! page through.

use berth_clock::civil::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default size of one log file before rotation.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Default number of files kept (the live one included).
pub const DEFAULT_MAX_FILES: u32 = 3;
/// Longer lines are cut into records of at most this many bytes (Docker's 16 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The line as written, newline included (absent on a cut or final partial line).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339, UTC, nanoseconds.
    pub time: String,
}

impl LogRecord {
    /// Milliseconds since the epoch (CloudWatch Logs' timestamps), if `time` parses.
    pub fn epoch_millis(&self) -> Option<i64> {
        parse_rfc3339_nanos(&self.time).map(|ns| (ns / 1_000_000) as i64)
    }
}


/// `2026-11-24T05:16:38.123456789Z`.
pub fn format_rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_nanos()
    )
}

/// Nanoseconds since the epoch from the format [`format_rfc3339_nanos`] writes
/// (any number of fractional digits, `Z` only).
pub fn parse_rfc3339_nanos(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let rest = s.get(19..)?.strip_suffix('Z')?;
    let nanos = match rest.strip_prefix('.') {
        None if rest.is_empty() => 0,
        Some(frac)
            if !frac.is_empty() && frac.len() <= 9 && frac.bytes().all(|c| c.is_ascii_digit()) =>
        {
            frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    Some(u128::try_from(secs).ok()? * 1_000_000_000 + u128::from(nanos))
}

/// Where rotated file number `n` lives (`0` is the live file).
pub fn rotated_path(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        base.to_path_buf()
    } else {
        let mut s = base.as_os_str().to_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }
}

/// An append-only JSON-lines file rotated by size.
pub struct RotatingLog {
    base: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: File,
    size: u64,
}

impl RotatingLog {
    pub fn open(base: &Path, max_bytes: u64, max_files: u32) -> io::Result<RotatingLog> {
        let file = OpenOptions::new().create(true).append(true).open(base)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            base: base.to_path_buf(),
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file,
            size,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            let from = rotated_path(&self.base, n);
            if from.exists() {
                std::fs::rename(&from, rotated_path(&self.base, n + 1))?;
            }
        }
        std::fs::rename(&self.base, rotated_path(&self.base, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .open(&self.base)?;
        self.size = 0;
        Ok(())
    }

    pub fn write(&mut self, record: &LogRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// Read `source` to its end, cutting it into lines (and over-long lines into
/// [`MAX_LINE_BYTES`] pieces), handing each to `emit` with its arrival time.
pub fn split_lines(mut source: impl Read, mut emit: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if !pending.is_empty() {
                    emit(&pending);
                }
                return Err(e);
            }
        };
        let mut chunk = &buf[..n];
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            pending.extend_from_slice(&chunk[..=pos]);
            for piece in pending.chunks(MAX_LINE_BYTES) {
                emit(piece);
            }
            pending.clear();
            chunk = &chunk[pos + 1..];
        }
        pending.extend_from_slice(chunk);
        while pending.len() >= MAX_LINE_BYTES {
            let rest = pending.split_off(MAX_LINE_BYTES);
            emit(&pending);
            pending = rest;
        }
    }
    if !pending.is_empty() {
        emit(&pending);
    }
    Ok(())
}

/// A record for `bytes` read from `stream` now.
pub fn record(stream: &str, bytes: &[u8]) -> LogRecord {
    LogRecord {
        log: String::from_utf8_lossy(bytes).into_owned(),
        stream: stream.to_string(),
        time: format_rfc3339_nanos(SystemTime::now()),
    }
}

/// Every record in the rotated set at `base`, oldest first. Lines that do
/// not parse (a torn write at a crash) are skipped.
pub fn read_all(base: &Path, max_files: u32) -> io::Result<Vec<LogRecord>> {
    let mut out = Vec::new();
    for n in (0..max_files.max(1)).rev() {
        let path = rotated_path(base, n);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            if let Ok(rec) = serde_json::from_str::<LogRecord>(&line?) {
                out.push(rec);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_795_497_398, 123_456_789);
        let s = format_rfc3339_nanos(t);
        assert_eq!(s, "2026-11-24T05:16:38.123456789Z");
        assert_eq!(parse_rfc3339_nanos(&s), Some(1_795_497_398_123_456_789));
        assert_eq!(
            format_rfc3339_nanos(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            format_rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            parse_rfc3339_nanos("2000-02-29T00:00:00.5Z"),
            Some(951_782_400_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos("2000-02-29T00:00:00+01:00"), None);
        let rec = LogRecord {
            log: "x".into(),
            stream: "stdout".into(),
            time: s,
        };
        assert_eq!(rec.epoch_millis(), Some(1_795_497_398_123));
    }

    #[test]
    fn splits_lines_and_cuts_long_ones() {
        let mut input = b"one\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend(b"\ntail");
        let mut got: Vec<Vec<u8>> = Vec::new();
        split_lines(&input[..], |l| got.push(l.to_vec())).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], b"one\n");
        assert_eq!(got[1], b"two\n");
        assert_eq!(got[2].len(), MAX_LINE_BYTES);
        assert_eq!(got[3].len(), 11);
        assert_eq!(got[4], b"tail");
    }

    #[test]
    fn rotates_by_size_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("container.log");
        let mut log = RotatingLog::open(&base, 200, 3).unwrap();
        for i in 0..20 {
            log.write(&LogRecord {
                log: format!("line {i}\n"),
                stream: "stdout".into(),
                time: "t".into(),
            })
            .unwrap();
        }
        assert!(rotated_path(&base, 1).exists());
        assert!(rotated_path(&base, 2).exists());
        assert!(!rotated_path(&base, 3).exists());
        for n in 0..3 {
            assert!(std::fs::metadata(rotated_path(&base, n)).unwrap().len() <= 200);
        }
        let recs = read_all(&base, 3).unwrap();
        let nums: Vec<u32> = recs
            .iter()
            .map(|r| r.log.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), 19);
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums.len() < 20, "oldest records were rotated away");
    }
}
