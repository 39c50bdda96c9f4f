//! SVCB and HTTPS RDATA in presentation form (RFC 9460 section 2.1, with the
//! `dohpath` key of RFC 9461 and `ohttp` of RFC 9540).
//!
//! Wire form: priority, target name, then parameters sorted by key, each a
//! key, a length and a value.
//!
//! [`check`] applies the rules of RFC 9460 section 2.2 and section 8 to wire
//! RDATA, however it was written (presentation form or RFC 3597 generic
//! form): keys in strictly increasing order, no reserved key 65535,
//! `mandatory` sorted, without key 0 and naming only keys that are present,
//! `no-default-alpn` only beside `alpn`, and the value lengths of `alpn`,
//! `port`, `ipv4hint`, `ipv6hint`, `no-default-alpn` and `ohttp`. AliasMode
//! records with parameters are legal but pointless (section 2.4.2: "SHOULD
//! NOT"); the zone builder warns about them.

use super::name::{parse_name, wire_name_len};
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
    check(&out)?;
    Ok(out)
}

/// The name of a key for messages.
fn key_name(k: u16) -> String {
    KEYS.iter().find(|(n, _)| *n == k).map_or_else(|| format!("key{k}"), |(_, name)| (*name).to_owned())
}

/// SvcParams as (key, value) in wire order.
pub type Params<'a> = Vec<(u16, &'a [u8])>;

/// The priority and the parameters of wire RDATA.
///
/// # Errors
/// RDATA that does not hold a priority, a name and whole parameters.
pub fn params(wire: &[u8]) -> Result<(u16, Params<'_>), RdataError> {
    let malformed = || RdataError::Malformed("SVCB".into());
    let prio = u16::from_be_bytes([*wire.first().ok_or_else(malformed)?, *wire.get(1).ok_or_else(malformed)?]);
    let mut p = 2 + wire.get(2..).and_then(wire_name_len).ok_or_else(malformed)?;
    let mut out = Vec::new();
    while p < wire.len() {
        let head = wire.get(p..p + 4).ok_or_else(malformed)?;
        let key = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let value = wire.get(p + 4..p + 4 + len).ok_or_else(malformed)?;
        out.push((key, value));
        p += 4 + len;
    }
    Ok((prio, out))
}

/// Checks SVCB/HTTPS wire RDATA against RFC 9460 sections 2.2, 7 and 8.
///
/// # Errors
/// [`RdataError::Svcb`] naming the rule broken.
pub fn check(wire: &[u8]) -> Result<(), RdataError> {
    let (_, params) = params(wire)?;
    let rule = |msg: String| Err(RdataError::Svcb(msg));
    for w in params.windows(2) {
        if w[0].0 >= w[1].0 {
            return rule(format!("keys not in strictly increasing order ({} after {})", key_name(w[1].0), key_name(w[0].0)));
        }
    }
    let present = |k: u16| params.iter().any(|(p, _)| *p == k);
    for &(key, v) in &params {
        match key {
            0 => {
                if v.is_empty() || v.len() % 2 != 0 {
                    return rule(format!("mandatory value of {} octets (a non-empty list of 2-octet keys)", v.len()));
                }
                let keys: Vec<u16> = v.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                if keys.windows(2).any(|w| w[0] >= w[1]) {
                    return rule("mandatory keys not in strictly increasing order".into());
                }
                if keys.contains(&0) {
                    return rule("mandatory lists mandatory itself (key 0)".into());
                }
                if let Some(&missing) = keys.iter().find(|&&k| !present(k)) {
                    return rule(format!("mandatory lists {}, which the record does not have", key_name(missing)));
                }
            }
            1 => {
                let mut p = 0;
                while p < v.len() {
                    let n = v[p] as usize;
                    if n == 0 || p + 1 + n > v.len() {
                        return rule("alpn value is not a list of non-empty alpn-ids".into());
                    }
                    p += 1 + n;
                }
                if v.is_empty() {
                    return rule("alpn value is empty".into());
                }
            }
            2 | 8 if !v.is_empty() => return rule(format!("{} takes no value", key_name(key))),
            2 if !present(1) => return rule("no-default-alpn without alpn (section 7.1.1)".into()),
            3 if v.len() != 2 => return rule(format!("port value of {} octets (must be 2)", v.len())),
            4 if v.is_empty() || v.len() % 4 != 0 => {
                return rule(format!("ipv4hint value of {} octets (a non-empty multiple of 4)", v.len()));
            }
            6 if v.is_empty() || v.len() % 16 != 0 => {
                return rule(format!("ipv6hint value of {} octets (a non-empty multiple of 16)", v.len()));
            }
            65535 => return rule("key65535 is reserved".into()),
            _ => {}
        }
    }
    Ok(())
}
