//! Writing numbers, times and JSON strings into a byte buffer without `core::fmt`,
//! for what every request writes: the API's timestamps and the access-log line. The
//! formatting machinery (`write!`, `format!` with padding) cost more instructions than
//! the rest of a line; these are plain digit loops.

use std::fmt;
use std::net::IpAddr;

use crate::domain::validate::LATEST_EXPIRY as LAST_FOUR_DIGIT_YEAR;

/// Text of at most `N` bytes, kept in an array: for the short strings a request writes
/// (an address, a token's scopes) without allocating them.
#[derive(Clone, Copy)]
pub struct ShortText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> ShortText<N> {
    pub fn new() -> Self {
        ShortText {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends `piece`; false, and nothing appended, when it does not fit.
    pub fn push_str(&mut self, piece: &str) -> bool {
        let end = self.len + piece.len();
        let Some(slot) = self.bytes.get_mut(self.len..end) else {
            return false;
        };
        slot.copy_from_slice(piece.as_bytes());
        self.len = end;
        true
    }

    pub fn as_str(&self) -> &str {
        // Only whole `str`s are ever appended.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for ShortText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for ShortText<N> {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        if self.push_str(piece) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// The longest text an `IpAddr` prints as (an IPv6 address with an IPv4 tail).
const LONGEST_ADDRESS: usize = 45;

/// `addr` as `IpAddr` prints it. An IPv4 address, as almost every client's is, is
/// written digit by digit: `core::fmt` took over a thousand instructions for one, and
/// every request writes its client's address.
pub fn address(addr: IpAddr) -> ShortText<LONGEST_ADDRESS> {
    let mut text = ShortText::new();
    match addr {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push_str(".");
                }
                let mut digits = [0u8; 3];
                let mut start = digits.len();
                let mut n = octet;
                loop {
                    start -= 1;
                    digits[start] = b'0' + n % 10;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                text.push_str(std::str::from_utf8(&digits[start..]).unwrap_or(""));
            }
        }
        IpAddr::V6(v6) => {
            // Always fits: LONGEST_ADDRESS is the longest an IPv6 address prints as.
            let _ = fmt::Write::write_fmt(&mut text, format_args!("{v6}"));
        }
    }
    text
}

/// Appends `n` in decimal, padded with zeros to `width` digits.
pub fn push_uint(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// The civil date of a day counted from 1970-01-01 (days ≥ 0): (year, month, day).
/// Howard Hinnant's `civil_from_days`, for the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-05-01T12:00:00Z`, in UTC, in an array (an answer writes it into its JSON
/// without a `String`). None for a time before 1970 or after 9999.
pub fn rfc3339_seconds(unix: i64) -> Option<[u8; 20]> {
    if !(0..=LAST_FOUR_DIGIT_YEAR).contains(&unix) {
        return None;
    }
    let (year, month, day) = civil_from_days(unix / 86_400);
    let second = (unix % 86_400) as u64;
    let mut out = *b"0000-00-00T00:00:00Z";
    put_digits(&mut out[0..4], year as u64);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], second / 3600);
    put_digits(&mut out[14..16], second / 60 % 60);
    put_digits(&mut out[17..19], second % 60);
    Some(out)
}

/// Writes the last `slot.len()` decimal digits of `n` into `slot`.
fn put_digits(slot: &mut [u8], mut n: u64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `2024-05-01T12:00:00Z` (with `.123456` before the `Z` when `micros` is
/// given), in UTC. False, and nothing appended, for a time before 1970 or after 9999.
pub fn push_rfc3339(out: &mut Vec<u8>, unix: i64, micros: Option<u32>) -> bool {
    let Some(seconds) = rfc3339_seconds(unix) else {
        return false;
    };
    match micros {
        None => out.extend_from_slice(&seconds),
        Some(micros) => {
            out.extend_from_slice(&seconds[..19]);
            out.push(b'.');
            push_uint(out, u64::from(micros.min(999_999)), 6);
            out.push(b'Z');
        }
    }
    true
}

/// Appends `s` as a JSON string, quotes included.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Rare (ids, addresses and route templates never need it): serde_json escapes.
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(unix: i64, micros: Option<u32>) -> String {
        let mut out = Vec::new();
        push_rfc3339(&mut out, unix, micros);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_are_padded_to_their_width() {
        let mut out = Vec::new();
        push_uint(&mut out, 7, 2);
        out.push(b' ');
        push_uint(&mut out, 0, 1);
        out.push(b' ');
        push_uint(&mut out, 12345, 2);
        out.push(b' ');
        push_uint(&mut out, u64::MAX, 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "07 0 12345 18446744073709551615"
        );
    }

    #[test]
    fn times_read_as_the_time_crate_writes_them() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        // Every day boundary, leap days and century years included, and odd seconds.
        let mut unix = 0;
        while unix <= LAST_FOUR_DIGIT_YEAR {
            let expected = time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap()
                .format(&format)
                .unwrap();
            assert_eq!(rfc3339(unix, None), expected, "{unix}");
            unix += 86_400 * 13 + 3_599;
        }
        assert_eq!(rfc3339(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(LAST_FOUR_DIGIT_YEAR, None), "9999-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(1_767_323_045, Some(678)),
            "2026-01-02T03:04:05.000678Z"
        );
        assert_eq!(rfc3339(-1, None), "");
        assert_eq!(rfc3339(LAST_FOUR_DIGIT_YEAR + 1, None), "");
    }

    #[test]
    fn addresses_read_as_ip_addr_prints_them() {
        let mut addresses: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "192.168.100.9",
            "::",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "1:2:3:4:5:6:7:8",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for octet in 0..=255u8 {
            addresses.push(IpAddr::from([octet, 255 - octet, octet / 10, 100]));
        }
        for addr in addresses {
            assert_eq!(address(addr).as_str(), addr.to_string());
        }
    }

    #[test]
    fn short_text_refuses_what_does_not_fit() {
        let mut text = ShortText::<4>::new();
        assert!(text.push_str("ab"));
        assert!(!text.push_str("cde"));
        assert!(text.push_str("cd"));
        assert_eq!(text.as_str(), "abcd");
    }

    #[test]
    fn json_strings_are_escaped_when_they_need_it() {
        let mut out = Vec::new();
        push_json_str(&mut out, "plain/{id}");
        out.push(b' ');
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""plain/{id}" "a\"b\\c\nd\u0001é""#
        );
    }
}
