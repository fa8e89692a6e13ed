//! The `Date` response header (RFC 9110 §6.6.1: an origin server with a clock must send
//! it), formatted as IMF-fixdate once per second per thread and reused in between, so the
//! hot path does no formatting and takes no lock.
//!
//! References: RFC 9110 §5.6.7 (IMF-fixdate), §6.6.1 (Date).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

thread_local! {
    static CACHE: RefCell<(u64, [u8; DATE_LEN])> = const { RefCell::new((u64::MAX, [0; DATE_LEN])) };
}

/// Appends the current time as IMF-fixdate.
pub fn push_now(out: &mut Vec<u8>) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, format_imf(secs));
        }
        out.extend_from_slice(&c.1);
    });
}

/// Formats Unix seconds as IMF-fixdate (proleptic Gregorian calendar, UTC).
pub fn format_imf(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut o = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    o[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two(&mut o[5..7], day);
    o[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year % 10_000;
    two(&mut o[12..14], y / 100);
    two(&mut o[14..16], y % 100);
    two(&mut o[17..19], sod / 3600);
    two(&mut o[20..22], sod / 60 % 60);
    two(&mut o[23..25], sod % 60);
    o
}

fn two(o: &mut [u8], v: u64) {
    o[0] = b'0' + (v / 10 % 10) as u8;
    o[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31); Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let table: &[(u64, &[u8])] = &[
            (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, b"Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, b"Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_642_628_041, b"Wed, 19 Jan 2022 21:34:01 GMT"),
            (4_102_444_799, b"Thu, 31 Dec 2099 23:59:59 GMT"),
        ];
        for (secs, want) in table {
            assert_eq!(&format_imf(*secs)[..], *want, "{secs}");
        }
    }
}
