//! Presentation-format building blocks shared by the reader and the writer:
//! tokens, `<character-string>`s, periods with units and RRSIG times.

/// One token of an entry in a master file: a word or a quoted string,
/// with escapes still in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The raw text, without the surrounding quotes.
    pub text: &'a [u8],
    /// True when the token was written in double quotes.
    pub quoted: bool,
    /// True when the token follows the previous one with no space between
    /// (`key="value"` in SVCB parameters).
    pub joined: bool,
}

/// Decodes the escapes of a `<character-string>` (RFC 1035 section 5.1).
pub fn decode_string(raw: &[u8]) -> Option<Vec<u8>> {
    if !raw.contains(&b'\\') {
        return Some(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let (b, used) = crate::dns::name::decode_escape(&raw[i..])?;
            out.push(b);
            i += used;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Writes bytes as a quoted `<character-string>`, escaping what must be.
pub fn write_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7E => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
}

/// Parses a TTL or SOA period: decimal seconds or BIND-style units (`1w2d3h4m5s`).
pub fn parse_period(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if s.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(s).ok()?.parse::<u32>().ok();
    }
    let mut total: u64 = 0;
    let mut cur: Option<u64> = None;
    for &c in s {
        if c.is_ascii_digit() {
            cur = Some(cur.unwrap_or(0).checked_mul(10)?.checked_add((c - b'0') as u64)?);
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            b'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(cur.take()?.checked_mul(mult)?)?;
    }
    if let Some(rest) = cur {
        total = total.checked_add(rest)?;
    }
    u32::try_from(total).ok()
}

/// Parses an RRSIG time: `YYYYMMDDHHmmSS` (UTC) or seconds since the epoch.
pub fn parse_time(s: &[u8]) -> Option<u32> {
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    if s.len() == 14 {
        let n = |a: usize, b: usize| text[a..b].parse::<i64>().ok();
        let secs = civil_to_epoch(n(0, 4)?, n(4, 6)?, n(6, 8)?)? + n(8, 10)? * 3600 + n(10, 12)? * 60 + n(12, 14)?;
        // RFC 4034 section 3.1.5: serial number arithmetic, so wrap modulo 2^32.
        return Some(secs.rem_euclid(1 << 32) as u32);
    }
    text.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// Formats an RRSIG time as `YYYYMMDDHHmmSS`.
pub fn format_time(t: u32) -> String {
    let secs = t as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = epoch_days_to_civil(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn civil_to_epoch(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

fn epoch_days_to_civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period(b"3600"), Some(3600));
        assert_eq!(parse_period(b"1h30m"), Some(5400));
        assert_eq!(parse_period(b"1W"), Some(604_800));
        assert_eq!(parse_period(b"5w*10s"), None);
        assert_eq!(parse_period(b"h"), None);
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time(b"20040509183619"), Some(1_084_127_779));
        assert_eq!(format_time(1_084_127_779), "20040509183619");
        assert_eq!(parse_time(b"1084127779"), Some(1_084_127_779));
        assert_eq!(format_time(0), "19700101000000");
    }

    #[test]
    fn strings() {
        assert_eq!(decode_string(b"a\\034b\\\\").unwrap(), b"a\"b\\");
        let mut s = String::new();
        write_quoted(&mut s, b"a\"b\x00");
        assert_eq!(s, "\"a\\\"b\\000\"");
    }
}
