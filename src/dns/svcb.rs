//! SVCB and HTTPS RDATA in presentation form (RFC 9460 section 2.1, with the
//! `dohpath` key of RFC 9461 and `ohttp` of RFC 9540).
//!
//! Wire form: priority, target name, then parameters sorted by key, each a
//! key, a length and a value.

use super::name::parse_name;
use super::rdata::RdataError;
use super::text::{Token, decode_string};

const KEYS: &[(u16, &str)] = &[
    (0, "mandatory"),
    (1, "alpn"),
    (2, "no-default-alpn"),
    (3, "port"),
    (4, "ipv4hint"),
    (5, "ech"),
    (6, "ipv6hint"),
    (7, "dohpath"),
    (8, "ohttp"),
];

fn bad(what: &'static str, text: &[u8]) -> RdataError {
    RdataError::Bad { what, text: String::from_utf8_lossy(text).into_owned() }
}

fn key_number(name: &[u8]) -> Option<u16> {
    if let Some((n, _)) = KEYS.iter().find(|(_, k)| k.as_bytes().eq_ignore_ascii_case(name)) {
        return Some(*n);
    }
    let digits = name.strip_prefix(b"key")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().filter(|&n| n != 65535)
}

/// Splits a raw value on commas that are not escaped (`\,`).
fn split_commas(raw: &[u8]) -> Vec<&[u8]> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\\' => i += 2,
            b',' => {
                items.push(&raw[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    items.push(&raw[start.min(raw.len())..]);
    items
}

fn value_wire(key: u16, raw: Option<&[u8]>) -> Result<Vec<u8>, RdataError> {
    let need = || raw.ok_or(RdataError::Missing("SVCB parameter value"));
    let mut out = Vec::new();
    match key {
        0 => {
            let mut keys = Vec::new();
            for item in split_commas(need()?) {
                keys.push(key_number(item).ok_or_else(|| bad("SVCB mandatory key", item))?);
            }
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(bad("SVCB mandatory list", need()?));
            }
            for k in keys {
                out.extend_from_slice(&k.to_be_bytes());
            }
        }
        1 => {
            for item in split_commas(need()?) {
                let v = decode_string(item).filter(|v| !v.is_empty() && v.len() < 256).ok_or_else(|| bad("SVCB alpn", item))?;
                out.push(v.len() as u8);
                out.extend_from_slice(&v);
            }
        }
        2 | 8 => {
            if raw.is_some_and(|r| !r.is_empty()) {
                return Err(bad("SVCB parameter without value", raw.unwrap_or_default()));
            }
        }
        3 => {
            let v = need()?;
            let port: u16 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("SVCB port", v))?;
            out.extend_from_slice(&port.to_be_bytes());
        }
        4 => {
            for item in split_commas(need()?) {
                let a: std::net::Ipv4Addr =
                    std::str::from_utf8(item).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("SVCB ipv4hint", item))?;
                out.extend_from_slice(&a.octets());
            }
        }
        6 => {
            for item in split_commas(need()?) {
                let a: std::net::Ipv6Addr =
                    std::str::from_utf8(item).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("SVCB ipv6hint", item))?;
                out.extend_from_slice(&a.octets());
            }
        }
        5 => {
            let v = need()?;
            out = data_encoding::BASE64.decode(v).map_err(|_| bad("SVCB ech", v))?;
        }
        _ => {
            if let Some(v) = raw {
                out = decode_string(v).ok_or_else(|| bad("SVCB parameter value", v))?;
            }
        }
    }
    if out.len() > 65_535 {
        return Err(bad("SVCB parameter value", b"(too long)"));
    }
    Ok(out)
}

/// Parses SVCB/HTTPS RDATA tokens into wire form.
///
/// # Errors
/// Bad priority, target, key, value, or a key given twice.
pub fn parse(tokens: &[Token<'_>], origin: &[u8]) -> Result<Vec<u8>, RdataError> {
    let prio_t = tokens.first().ok_or(RdataError::Missing("SVCB priority"))?;
    let prio: u16 = std::str::from_utf8(prio_t.text).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("SVCB priority", prio_t.text))?;
    let target_t = tokens.get(1).ok_or(RdataError::Missing("SVCB target"))?;
    let target = parse_name(target_t.text, Some(origin)).map_err(|_| bad("SVCB target", target_t.text))?;
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut i = 2;
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        let (key, raw): (&[u8], Option<&[u8]>) = match t.text.iter().position(|&c| c == b'=') {
            Some(eq) if eq + 1 == t.text.len() && tokens.get(i).is_some_and(|n| n.joined && n.quoted) => {
                i += 1;
                (&t.text[..eq], Some(tokens[i - 1].text))
            }
            Some(eq) => (&t.text[..eq], Some(&t.text[eq + 1..])),
            None => (t.text, None),
        };
        let k = key_number(key).ok_or_else(|| bad("SVCB parameter key", key))?;
        if params.iter().any(|(p, _)| *p == k) {
            return Err(bad("SVCB parameter given twice", key));
        }
        params.push((k, value_wire(k, raw)?));
    }
    params.sort_by_key(|(k, _)| *k);
    let mut out = prio.to_be_bytes().to_vec();
    out.extend_from_slice(&target);
    for (k, v) in params {
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(out)
}
