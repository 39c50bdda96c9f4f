//! RDATA in presentation form and in canonical wire form.
//!
//! [`parse`] turns the RDATA tokens of one master-file entry into wire form,
//! [`canonicalize`] checks wire RDATA against its type's layout and lowercases
//! the names RFC 4034 section 6.2 (as amended by RFC 6840 section 5.1) says to
//! lowercase, and [`format`] writes wire RDATA back in presentation form (or in
//! RFC 3597 generic form for types without a textual layout here).

use super::name::{lowercase_wire, parse_name, parse_name_into, wire_name_len, write_wire_name};
use super::rtype::{self, Field, Layout};
use super::text::{Token, decode_string, format_time, parse_period, parse_time, write_quoted};
use std::fmt::Write as _;

/// What is wrong with some RDATA. Shown to the operator with file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdataError {
    /// A field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field could not be read.
    #[error("bad {what}: '{text}'")]
    Bad {
        /// Which field.
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// Tokens left after the last field.
    #[error("unexpected trailing data '{0}'")]
    Trailing(String),
    /// RFC 3597 generic data whose length field does not match the data.
    #[error("generic RDATA length {declared} does not match {actual} octets of data")]
    GenericLength {
        /// The length given after `\#`.
        declared: usize,
        /// The octets actually present.
        actual: usize,
    },
    /// Wire RDATA that does not fit its type's layout.
    #[error("RDATA is not a valid {0} record")]
    Malformed(String),
    /// SVCB/HTTPS RDATA that breaks a rule of RFC 9460.
    #[error("RFC 9460: {0}")]
    Svcb(String),
    /// Key material or a digest that does not fit its algorithm or digest type.
    #[error("{0}")]
    KeyData(#[from] super::keydata::KeyDataError),
    /// A presentation form this reader does not implement.
    #[error("{0}")]
    Unsupported(String),
}

fn bad(what: &'static str, text: &[u8]) -> RdataError {
    RdataError::Bad { what, text: String::from_utf8_lossy(text).into_owned() }
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::U8 | Field::U16 | Field::U32 => "integer",
        Field::Period => "period",
        Field::Name(_) => "domain name",
        Field::Ipv4 => "IPv4 address",
        Field::Ipv6 => "IPv6 address",
        Field::Str | Field::Strs => "character string",
        Field::Base64 => "base64 data",
        Field::Hex => "hexadecimal data",
        Field::SaltHex => "salt",
        Field::Base32Len => "base32hex hash",
        Field::Bitmap => "type list",
        Field::TypeCode => "record type",
        Field::Algorithm => "algorithm",
        Field::Time => "time",
        Field::Eui48 => "EUI-48 address",
        Field::Eui64 => "EUI-64 address",
        Field::Ilnp64 => "ILNP locator",
        Field::RawText => "text",
        Field::CaaTag => "CAA tag",
        Field::CertType => "certificate type",
    }
}

/// Parses the RDATA tokens of a record of type `rtype`.
///
/// `origin` completes relative names. The result is in wire form with the
/// names lowercased where the canonical form requires it.
///
/// # Errors
/// Any field that cannot be read, missing or trailing fields, and RFC 3597
/// data that does not fit a known type.
pub fn parse(rtype: u16, tokens: &[Token<'_>], origin: &[u8]) -> Result<Vec<u8>, RdataError> {
    let mut out = Vec::with_capacity(64);
    parse_into(rtype, tokens, origin, &mut out)?;
    Ok(out)
}

/// As [`parse`], into a reusable buffer (cleared first): the reader's hot path.
///
/// # Errors
/// As for [`parse`].
pub fn parse_into(rtype: u16, tokens: &[Token<'_>], origin: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    out.clear();
    if let Some(first) = tokens.first() {
        // `TXT \# text` is text: generic syntax needs a length after the marker.
        let text_first = matches!(rtype::layout(rtype), Layout::Fields([Field::Str | Field::Strs, ..]));
        let length_follows = tokens.get(1).is_some_and(|t| t.text.iter().all(u8::is_ascii_digit));
        if !first.quoted && first.text == b"\\#" && (length_follows || !text_first) {
            let wire = parse_generic(&tokens[1..])?;
            *out = canonicalize(rtype, &wire)?;
            return check_key_data(rtype, out);
        }
    }
    match rtype::layout(rtype) {
        Layout::Fields(fields) => parse_fields(fields, tokens, origin, out)?,
        Layout::Loc => parse_loc(tokens, out)?,
        Layout::Apl => parse_apl(tokens, out)?,
        Layout::Ipseckey => parse_ipseckey(tokens, origin, out)?,
        Layout::Svcb => *out = super::svcb::parse(tokens, origin)?,
        Layout::Generic => {
            return Err(RdataError::Unsupported(format!(
                "type {} must be written in RFC 3597 generic form (\\# length hex)",
                rtype::mnemonic(rtype)
            )));
        }
    }
    if out.len() > 65_535 {
        return Err(RdataError::Malformed(format!("{} (longer than 65535 octets)", rtype::mnemonic(rtype))));
    }
    check_key_data(rtype, out)
}

/// The key-material and digest checks of `dns::keydata` for the types they apply to.
fn check_key_data(rtype: u16, wire: &[u8]) -> Result<(), RdataError> {
    use rtype::code;
    match rtype {
        code::DNSKEY | code::CDNSKEY => super::keydata::check_dnskey(wire, rtype == code::CDNSKEY)?,
        code::DS | code::CDS => super::keydata::check_ds(wire, rtype == code::CDS)?,
        // RFC 5155 section 3.2: SHA-1 (hash algorithm 1) hashes are 20 octets.
        code::NSEC3 if wire.first() == Some(&1) => {
            let salt = *wire.get(4).unwrap_or(&0) as usize;
            let hash = wire.get(5 + salt).copied().unwrap_or(0);
            if hash != 20 {
                return Err(RdataError::Bad {
                    what: "NSEC3 next hashed owner (SHA-1 hashes are 20 octets)",
                    text: format!("{hash} octets"),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse_generic(tokens: &[Token<'_>]) -> Result<Vec<u8>, RdataError> {
    let len_tok = tokens.first().ok_or(RdataError::Missing("generic RDATA length"))?;
    let declared: usize = std::str::from_utf8(len_tok.text)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n <= 65_535)
        .ok_or_else(|| bad("generic RDATA length", len_tok.text))?;
    let hex: Vec<u8> = tokens[1..].iter().flat_map(|t| t.text.iter().copied()).collect();
    let data = data_encoding::HEXUPPER_PERMISSIVE.decode(&hex).map_err(|_| bad("generic RDATA hex", &hex))?;
    if data.len() != declared {
        return Err(RdataError::GenericLength { declared, actual: data.len() });
    }
    Ok(data)
}

fn num<T: std::str::FromStr>(t: &Token<'_>, what: &'static str) -> Result<T, RdataError> {
    std::str::from_utf8(t.text).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad(what, t.text))
}

fn parse_fields(fields: &[Field], tokens: &[Token<'_>], origin: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let mut i = 0;
    for &f in fields {
        let rest = &tokens[i.min(tokens.len())..];
        let tok = rest.first();
        let need = || tok.ok_or(RdataError::Missing(field_name(f)));
        match f {
            Field::U8 => out.push(num::<u8>(need()?, "8-bit integer")?),
            Field::U16 => out.extend_from_slice(&num::<u16>(need()?, "16-bit integer")?.to_be_bytes()),
            Field::U32 => out.extend_from_slice(&num::<u32>(need()?, "32-bit integer")?.to_be_bytes()),
            Field::Period => {
                let t = need()?;
                out.extend_from_slice(&parse_period(t.text).ok_or_else(|| bad("period", t.text))?.to_be_bytes())
            }
            Field::Name(lower) => {
                let t = need()?;
                let start = out.len();
                parse_name_into(t.text, Some(origin), out)
                    .map_err(|e| RdataError::Bad { what: "domain name", text: format!("{} ({e})", String::from_utf8_lossy(t.text)) })?;
                if lower {
                    lowercase_wire(&mut out[start..]);
                }
            }
            Field::Ipv4 => {
                let t = need()?;
                let a: std::net::Ipv4Addr = num(t, "IPv4 address")?;
                out.extend_from_slice(&a.octets());
            }
            Field::Ipv6 => {
                let t = need()?;
                let a: std::net::Ipv6Addr = num(t, "IPv6 address")?;
                out.extend_from_slice(&a.octets());
            }
            Field::Str => push_string(out, need()?)?,
            Field::Strs => {
                need()?;
                for t in rest {
                    push_string(out, t)?;
                }
                i = tokens.len();
                continue;
            }
            Field::Base64 => {
                need()?;
                let text: Vec<u8> = rest.iter().flat_map(|t| t.text.iter().copied()).collect();
                let data = data_encoding::BASE64.decode(&text).map_err(|_| bad("base64 data", &text))?;
                out.extend_from_slice(&data);
                i = tokens.len();
                continue;
            }
            Field::Hex => {
                need()?;
                let text: Vec<u8> = rest.iter().flat_map(|t| t.text.iter().copied()).collect();
                let data = data_encoding::HEXUPPER_PERMISSIVE.decode(&text).map_err(|_| bad("hexadecimal data", &text))?;
                out.extend_from_slice(&data);
                i = tokens.len();
                continue;
            }
            Field::SaltHex => {
                let t = need()?;
                if t.text == b"-" {
                    out.push(0);
                } else {
                    let data = data_encoding::HEXUPPER_PERMISSIVE.decode(t.text).map_err(|_| bad("salt", t.text))?;
                    if data.len() > 255 {
                        return Err(bad("salt", t.text));
                    }
                    out.push(data.len() as u8);
                    out.extend_from_slice(&data);
                }
            }
            Field::Base32Len => {
                let t = need()?;
                let upper = t.text.to_ascii_uppercase();
                let data = data_encoding::BASE32HEX_NOPAD.decode(&upper).map_err(|_| bad("base32hex hash", t.text))?;
                if data.is_empty() || data.len() > 255 {
                    return Err(bad("base32hex hash", t.text));
                }
                out.push(data.len() as u8);
                out.extend_from_slice(&data);
            }
            Field::Bitmap => {
                let mut types = Vec::with_capacity(rest.len());
                for t in rest {
                    types.push(rtype::from_mnemonic(t.text).ok_or_else(|| bad("record type", t.text))?);
                }
                out.extend_from_slice(&crate::dns::bitmap::encode(&mut types));
                i = tokens.len();
                continue;
            }
            Field::TypeCode => {
                let t = need()?;
                let code = rtype::from_mnemonic(t.text).ok_or_else(|| bad("record type", t.text))?;
                out.extend_from_slice(&code.to_be_bytes());
            }
            Field::Algorithm => {
                let t = need()?;
                let a = crate::dns::algorithm::Algorithm::parse_number_or_mnemonic(t.text).ok_or_else(|| bad("algorithm", t.text))?;
                out.push(a);
            }
            Field::Time => {
                let t = need()?;
                out.extend_from_slice(&parse_time(t.text).ok_or_else(|| bad("time", t.text))?.to_be_bytes());
            }
            Field::Eui48 => parse_eui(need()?, 6, out)?,
            Field::Eui64 => parse_eui(need()?, 8, out)?,
            Field::Ilnp64 => {
                let t = need()?;
                let groups: Vec<&[u8]> = t.text.split(|&c| c == b':').collect();
                if groups.len() != 4 {
                    return Err(bad("ILNP locator", t.text));
                }
                for g in groups {
                    let v = std::str::from_utf8(g)
                        .ok()
                        .filter(|s| (1..=4).contains(&s.len()))
                        .and_then(|s| u16::from_str_radix(s, 16).ok())
                        .ok_or_else(|| bad("ILNP locator", t.text))?;
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            Field::RawText => {
                let t = need()?;
                out.extend_from_slice(&decode_string(t.text).ok_or_else(|| bad("text", t.text))?);
            }
            Field::CaaTag => {
                let t = need()?;
                if t.text.is_empty() || t.text.len() > 255 || !t.text.iter().all(u8::is_ascii_alphanumeric) {
                    return Err(bad("CAA tag", t.text));
                }
                out.push(t.text.len() as u8);
                out.extend_from_slice(t.text);
            }
            Field::CertType => {
                let t = need()?;
                let v = cert_type(t.text).ok_or_else(|| bad("certificate type", t.text))?;
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        i += 1;
    }
    if i < tokens.len() {
        let rest: Vec<String> = tokens[i..].iter().map(|t| String::from_utf8_lossy(t.text).into_owned()).collect();
        return Err(RdataError::Trailing(rest.join(" ")));
    }
    Ok(())
}

const CERT_TYPES: &[(u16, &str)] = &[
    (1, "PKIX"),
    (2, "SPKI"),
    (3, "PGP"),
    (4, "IPKIX"),
    (5, "ISPKI"),
    (6, "IPGP"),
    (7, "ACPKIX"),
    (8, "IACPKIX"),
    (253, "URI"),
    (254, "OID"),
];

fn cert_type(s: &[u8]) -> Option<u16> {
    CERT_TYPES
        .iter()
        .find(|(_, m)| m.as_bytes().eq_ignore_ascii_case(s))
        .map(|(v, _)| *v)
        .or_else(|| std::str::from_utf8(s).ok()?.parse().ok())
}

fn push_string(out: &mut Vec<u8>, t: &Token<'_>) -> Result<(), RdataError> {
    let s = decode_string(t.text).ok_or_else(|| bad("character string", t.text))?;
    if s.len() > 255 {
        return Err(RdataError::Bad { what: "character string", text: format!("{} octets, more than 255", s.len()) });
    }
    out.push(s.len() as u8);
    out.extend_from_slice(&s);
    Ok(())
}

fn parse_eui(t: &Token<'_>, n: usize, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let parts: Vec<&[u8]> = t.text.split(|&c| c == b'-').collect();
    if parts.len() != n || parts.iter().any(|p| p.len() != 2) {
        return Err(bad("EUI address", t.text));
    }
    for p in parts {
        let v = std::str::from_utf8(p).ok().and_then(|s| u8::from_str_radix(s, 16).ok()).ok_or_else(|| bad("EUI address", t.text))?;
        out.push(v);
    }
    Ok(())
}

/// RFC 1876 precision/size encoding: mantissa and power of ten, in centimetres.
fn loc_precsize(cm: u64) -> u8 {
    let mut exp = 0u8;
    let mut v = cm;
    while v >= 10 && exp < 9 {
        v /= 10;
        exp += 1;
    }
    ((v.min(9) as u8) << 4) | exp
}

fn loc_metres(t: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(t).ok()?;
    let s = s.strip_suffix(['m', 'M']).unwrap_or(s);
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_loc(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let mut i = 0;
    let mut coord = |pos: &[u8], neg: &[u8], max_deg: f64| -> Result<u32, RdataError> {
        let mut parts = [0f64; 3];
        let mut n = 0;
        loop {
            let t = tokens.get(i).ok_or(RdataError::Missing("LOC coordinate"))?;
            let up = t.text.to_ascii_uppercase();
            if up == pos || up == neg {
                i += 1;
                let ms = (parts[0] * 3_600_000.0 + parts[1] * 60_000.0 + parts[2] * 1000.0).round();
                if parts[0] > max_deg || ms > max_deg * 3_600_000.0 {
                    return Err(bad("LOC coordinate", t.text));
                }
                let off = ms as i64 * if up == neg { -1 } else { 1 };
                return Ok(((1i64 << 31) + off) as u32);
            }
            if n == 3 {
                return Err(bad("LOC coordinate", t.text));
            }
            parts[n] = std::str::from_utf8(t.text).ok().and_then(|s| s.parse().ok()).ok_or_else(|| bad("LOC coordinate", t.text))?;
            n += 1;
            i += 1;
        }
    };
    let lat = coord(b"N", b"S", 90.0)?;
    let lon = coord(b"E", b"W", 180.0)?;
    let alt_t = tokens.get(i).ok_or(RdataError::Missing("LOC altitude"))?;
    let alt = loc_metres(alt_t.text).ok_or_else(|| bad("LOC altitude", alt_t.text))?;
    i += 1;
    let mut prec = [100.0f64, 1_000_000.0, 1000.0]; // size 1 m, horizontal 10 km, vertical 10 m, in cm
    for p in prec.iter_mut() {
        if let Some(t) = tokens.get(i) {
            *p = loc_metres(t.text).ok_or_else(|| bad("LOC precision", t.text))? * 100.0;
            i += 1;
        }
    }
    if i < tokens.len() {
        return Err(RdataError::Trailing(String::from_utf8_lossy(tokens[i].text).into_owned()));
    }
    out.push(0);
    for p in prec {
        out.push(loc_precsize(p.max(0.0) as u64));
    }
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    // The cast saturates for huge altitudes; the sum must not overflow before the range check.
    let alt_cm = ((alt * 100.0).round() as i64).saturating_add(10_000_000);
    let alt_cm = u32::try_from(alt_cm).map_err(|_| bad("LOC altitude", alt_t.text))?;
    out.extend_from_slice(&alt_cm.to_be_bytes());
    Ok(())
}

fn parse_apl(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    for t in tokens {
        let (neg, body) = match t.text.strip_prefix(b"!") {
            Some(b) => (true, b),
            None => (false, t.text),
        };
        let s = std::str::from_utf8(body).map_err(|_| bad("APL item", t.text))?;
        let (afi, rest) = s.split_once(':').ok_or_else(|| bad("APL item", t.text))?;
        let (addr, prefix) = rest.split_once('/').ok_or_else(|| bad("APL item", t.text))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("APL prefix", t.text))?;
        let (afi, mut bytes) = match afi {
            "1" if prefix <= 32 => (1u16, addr.parse::<std::net::Ipv4Addr>().map_err(|_| bad("APL address", t.text))?.octets().to_vec()),
            "2" if prefix <= 128 => (2u16, addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad("APL address", t.text))?.octets().to_vec()),
            _ => return Err(bad("APL item", t.text)),
        };
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        out.extend_from_slice(&afi.to_be_bytes());
        out.push(prefix);
        out.push(bytes.len() as u8 | if neg { 0x80 } else { 0 });
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

fn parse_ipseckey(tokens: &[Token<'_>], origin: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    if tokens.len() < 4 {
        return Err(RdataError::Missing("IPSECKEY field"));
    }
    let prec: u8 = num(&tokens[0], "IPSECKEY precedence")?;
    let gw_type: u8 = num(&tokens[1], "IPSECKEY gateway type")?;
    let alg: u8 = num(&tokens[2], "IPSECKEY algorithm")?;
    out.extend_from_slice(&[prec, gw_type, alg]);
    let gw = &tokens[3];
    match gw_type {
        0 if gw.text == b"." => {}
        1 => out.extend_from_slice(&num::<std::net::Ipv4Addr>(gw, "IPSECKEY gateway")?.octets()),
        2 => out.extend_from_slice(&num::<std::net::Ipv6Addr>(gw, "IPSECKEY gateway")?.octets()),
        3 => out.extend_from_slice(&parse_name(gw.text, Some(origin)).map_err(|_| bad("IPSECKEY gateway", gw.text))?),
        _ => return Err(bad("IPSECKEY gateway", gw.text)),
    }
    let text: Vec<u8> = tokens[4..].iter().flat_map(|t| t.text.iter().copied()).collect();
    out.extend_from_slice(&data_encoding::BASE64.decode(&text).map_err(|_| bad("IPSECKEY public key", &text))?);
    Ok(())
}

/// Length of one field at the start of `w`, or `None` when it does not fit.
fn field_len(f: Field, w: &[u8]) -> Option<usize> {
    let fixed = |n: usize| (w.len() >= n).then_some(n);
    match f {
        Field::U8 | Field::Algorithm => fixed(1),
        Field::U16 | Field::TypeCode | Field::CertType => fixed(2),
        Field::U32 | Field::Period | Field::Time | Field::Ipv4 => fixed(4),
        Field::Ipv6 => fixed(16),
        Field::Eui48 => fixed(6),
        Field::Eui64 | Field::Ilnp64 => fixed(8),
        Field::Name(_) => wire_name_len(w),
        Field::Str | Field::SaltHex => {
            let n = *w.first()? as usize + 1;
            (w.len() >= n).then_some(n)
        }
        // RFC 8659 section 4.1: a tag is one or more letters and digits, in wire form too
        // (BIND refuses others); the formatter writes it bare, so it must be one.
        Field::CaaTag => {
            let n = *w.first()? as usize + 1;
            (n > 1 && w.get(1..n)?.iter().all(u8::is_ascii_alphanumeric)).then_some(n)
        }
        Field::Base32Len => {
            let n = *w.first()? as usize + 1;
            (w.len() >= n && n > 1).then_some(n)
        }
        Field::Strs => {
            let mut p = 0;
            while p < w.len() {
                p += w[p] as usize + 1;
            }
            (p == w.len() && !w.is_empty()).then_some(p)
        }
        Field::Bitmap => crate::dns::bitmap::decode(w).map(|_| w.len()),
        Field::Base64 | Field::Hex | Field::RawText => Some(w.len()),
    }
}

/// Checks wire RDATA against the layout of `rtype` and returns its canonical form.
///
/// # Errors
/// [`RdataError::Malformed`] when the data does not fit the type.
pub fn canonicalize(rtype: u16, wire: &[u8]) -> Result<Vec<u8>, RdataError> {
    let malformed = || RdataError::Malformed(rtype::mnemonic(rtype).into_owned());
    match rtype::layout(rtype) {
        Layout::Fields(fields) => {
            let mut out = wire.to_vec();
            let mut p = 0;
            for &f in fields {
                let n = field_len(f, &wire[p..]).ok_or_else(malformed)?;
                if f == Field::Name(true) {
                    lowercase_wire(&mut out[p..p + n]);
                }
                p += n;
            }
            if p != wire.len() {
                return Err(malformed());
            }
            Ok(out)
        }
        Layout::Loc if wire.len() != 16 || wire[0] != 0 => Err(malformed()),
        Layout::Svcb => {
            super::svcb::check(wire)?;
            Ok(wire.to_vec())
        }
        _ => Ok(wire.to_vec()),
    }
}

/// Writes wire RDATA in presentation form.
///
/// Types without a textual layout here, and any RDATA that does not fit its
/// layout, are written in RFC 3597 generic form, which every reader accepts.
pub fn format(rtype: u16, wire: &[u8], out: &mut String) {
    if let Layout::Fields(fields) = rtype::layout(rtype) {
        let start = out.len();
        if format_fields(fields, wire, out).is_some() {
            return;
        }
        out.truncate(start);
    }
    format_generic(wire, out);
}

/// Writes RDATA in RFC 3597 generic form: `\# <length> <hex>`.
pub fn format_generic(wire: &[u8], out: &mut String) {
    let _ = write!(out, "\\# {}", wire.len());
    if !wire.is_empty() {
        out.push(' ');
        out.push_str(&data_encoding::HEXUPPER.encode(wire));
    }
}

fn format_fields(fields: &[Field], w: &[u8], out: &mut String) -> Option<()> {
    let mut p = 0;
    for (idx, &f) in fields.iter().enumerate() {
        let n = field_len(f, &w[p..])?;
        let d = &w[p..p + n];
        if idx > 0 && !(matches!(f, Field::Bitmap) && d.is_empty()) {
            out.push(' ');
        }
        match f {
            Field::U8 | Field::Algorithm => {
                let _ = write!(out, "{}", d[0]);
            }
            Field::U16 | Field::CertType => {
                let _ = write!(out, "{}", u16::from_be_bytes([d[0], d[1]]));
            }
            Field::U32 | Field::Period => {
                let _ = write!(out, "{}", u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            }
            Field::Time => out.push_str(&format_time(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))),
            Field::TypeCode => out.push_str(&rtype::mnemonic(u16::from_be_bytes([d[0], d[1]]))),
            Field::Name(_) => write_wire_name(out, d),
            Field::Ipv4 => {
                let _ = write!(out, "{}", std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3]));
            }
            Field::Ipv6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(d);
                let _ = write!(out, "{}", std::net::Ipv6Addr::from(a));
            }
            Field::Str => write_quoted(out, &d[1..]),
            Field::Strs => {
                let mut q = 0;
                let mut first = true;
                while q < d.len() {
                    let l = d[q] as usize;
                    if !first {
                        out.push(' ');
                    }
                    write_quoted(out, &d[q + 1..q + 1 + l]);
                    q += l + 1;
                    first = false;
                }
            }
            Field::Base64 => {
                if d.is_empty() {
                    return None;
                }
                out.push_str(&data_encoding::BASE64.encode(d));
            }
            Field::Hex => {
                if d.is_empty() {
                    return None;
                }
                out.push_str(&data_encoding::HEXUPPER.encode(d));
            }
            Field::SaltHex => {
                if d.len() == 1 {
                    out.push('-');
                } else {
                    out.push_str(&data_encoding::HEXUPPER.encode(&d[1..]));
                }
            }
            Field::Base32Len => out.push_str(&data_encoding::BASE32HEX_NOPAD.encode(&d[1..]).to_ascii_lowercase()),
            Field::Bitmap => {
                let types = crate::dns::bitmap::decode(d)?;
                let names: Vec<_> = types.iter().map(|&t| rtype::mnemonic(t)).collect();
                out.push_str(&names.join(" "));
            }
            Field::Eui48 | Field::Eui64 => {
                let parts: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&parts.join("-"));
            }
            Field::Ilnp64 => {
                let parts: Vec<String> = d.chunks(2).map(|c| format!("{:04x}", u16::from_be_bytes([c[0], c[1]]))).collect();
                out.push_str(&parts.join(":"));
            }
            Field::RawText => write_quoted(out, d),
            Field::CaaTag => out.push_str(std::str::from_utf8(&d[1..]).ok()?),
        }
        p += n;
    }
    (p == w.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token<'_>> {
        let mut lx = crate::zone::lexer::Lexer::new(s.as_bytes());
        let mut t = Vec::new();
        lx.next_entry(&mut t).unwrap();
        t
    }

    fn round(rtype: &str, text: &str) -> String {
        let t = rtype::from_mnemonic(rtype.as_bytes()).unwrap();
        let origin = parse_name(b"example.", None).unwrap();
        let w = parse(t, &toks(text), &origin).unwrap();
        let mut s = String::new();
        format(t, &w, &mut s);
        s
    }

    #[test]
    fn common_types_round_trip() {
        assert_eq!(round("A", "192.0.2.1"), "192.0.2.1");
        assert_eq!(round("MX", "10 MAIL"), "10 mail.example.");
        assert_eq!(round("SOA", "ns hostmaster 1 1h 15m 1w 300"), "ns.example. hostmaster.example. 1 3600 900 604800 300");
        assert_eq!(round("TXT", "\"a b\" c"), "\"a b\" \"c\"");
        assert_eq!(round("NSEC3PARAM", "1 0 0 -"), "1 0 0 -");
        assert_eq!(round("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"), "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118");
        assert_eq!(round("NSEC", "host.example. A MX RRSIG NSEC TYPE1234"), "host.example. A MX RRSIG NSEC TYPE1234");
        assert_eq!(round("CAA", "0 issue \"ca.example.net\""), "0 issue \"ca.example.net\"");
        assert_eq!(round("EUI48", "00-00-5e-00-53-2a"), "00-00-5e-00-53-2a");
        assert_eq!(
            round("NSEC3", "1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG"),
            "1 1 12 AABBCCDD 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG"
        );
    }

    #[test]
    fn generic_syntax() {
        assert_eq!(round("TYPE65280", "\\# 4 0A000001"), "\\# 4 0A000001");
        assert_eq!(round("A", "\\# 4 0A000001"), "10.0.0.1");
        let origin = parse_name(b"example.", None).unwrap();
        assert!(matches!(parse(1, &toks("\\# 5 0A00000102"), &origin), Err(RdataError::Malformed(_))));
        assert!(matches!(parse(1, &toks("\\# 3 0A000001"), &origin), Err(RdataError::GenericLength { .. })));
        assert!(parse(1, &toks("\\# cat 0A000001"), &origin).is_err());
        // Generic data for a type whose names are canonicalised gets lowercased.
        let w = parse(15, &toks("\\# 7 000A014D034E4554"), &origin);
        assert!(w.is_err(), "truncated name must be refused");
        let w = parse(15, &toks("\\# 9 000A014D034E455400"), &origin).unwrap();
        assert_eq!(w, b"\x00\x0a\x01m\x03net\x00");
    }

    #[test]
    fn nsec3_sha1_hash_is_20_octets() {
        let ok = toks("1 0 10 76931F 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG");
        assert!(parse(50, &ok, &[0]).is_ok());
        let short = toks("1 0 10 76931F IMQ912BREQP1POLAH3RMONG");
        assert!(parse(50, &short, &[0]).unwrap_err().to_string().contains("SHA-1 hashes are 20 octets"));
    }

    #[test]
    fn bad_input() {
        let origin = parse_name(b"example.", None).unwrap();
        assert!(parse(1, &toks("192.0.2.300"), &origin).is_err());
        assert!(parse(1, &toks("192.0.2.1 extra"), &origin).is_err());
        assert!(parse(15, &toks("10"), &origin).is_err());
        assert!(parse(50, &toks("1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22boj= A"), &origin).is_err());
    }

    #[test]
    fn loc_and_apl() {
        let origin = parse_name(b"example.", None).unwrap();
        let w = parse(29, &toks("52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"), &origin).unwrap();
        assert_eq!(w.len(), 16);
        assert_eq!(&w[..4], &[0, 0x00, 0x16, 0x13]);
        let w = parse(42, &toks("1:192.168.32.0/21 !1:192.168.38.0/28"), &origin).unwrap();
        assert_eq!(w, [0, 1, 21, 3, 192, 168, 32, 0, 1, 28, 0x83, 192, 168, 38]);
    }
}
