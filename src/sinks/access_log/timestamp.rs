//! RFC 3339 timestamps with microseconds for log lines, formatted with the
//! date and time of day cached per second: every line needs one, and only
//! the fraction changes between most of them.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-26T09:40:25.123456Z`
pub const LEN: usize = 27;

struct Cached {
    secs: u64,
    /// `2026-11-26T09:40:25`, the part shared by every line of a second.
    prefix: [u8; 19],
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Writes `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` into `out`.
pub fn rfc3339_micros(at: SystemTime, out: &mut [u8; LEN]) -> &str {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    CACHE.with_borrow_mut(|cache| {
        let cached = match cache {
            Some(c) if c.secs == secs => c,
            _ => cache.insert(Cached {
                secs,
                prefix: prefix_of(secs),
            }),
        };
        out[..19].copy_from_slice(&cached.prefix);
    });
    out[19] = b'.';
    let mut micros = since.subsec_micros();
    for digit in out[20..26].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    out[26] = b'Z';
    std::str::from_utf8(out).unwrap_or_default()
}

fn prefix_of(secs: u64) -> [u8; 19] {
    let whole = UNIX_EPOCH + Duration::from_secs(secs);
    let text = humantime::format_rfc3339_seconds(whole).to_string();
    let mut prefix = [b'0'; 19];
    let bytes = text.as_bytes();
    let n = bytes.len().min(19);
    prefix[..n].copy_from_slice(&bytes[..n]);
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_humantime_across_seconds_and_fractions() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for step in [
            0u64,
            1,
            999_999,
            1_000_000,
            1_000_001,
            59_999_999,
            86_399_999_999,
        ] {
            for offset in [0u64, 7, 123_456] {
                let at = base + Duration::from_micros(step + offset);
                let mut buf = [0u8; LEN];
                let ours = rfc3339_micros(at, &mut buf).to_owned();
                assert_eq!(ours, humantime::format_rfc3339_micros(at).to_string());
            }
        }
    }

    #[test]
    fn the_epoch_and_times_before_it_do_not_panic() {
        let mut buf = [0u8; LEN];
        assert_eq!(
            rfc3339_micros(UNIX_EPOCH, &mut buf),
            "1970-01-01T00:00:00.000000Z"
        );
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            rfc3339_micros(before, &mut buf),
            "1970-01-01T00:00:00.000000Z"
        );
    }
}
