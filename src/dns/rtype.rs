//! Record type numbers, their mnemonics and the layout of their RDATA.
//!
//! One table describes every type the signer reads and writes in presentation
//! form: its number, its mnemonic and its fields. The same description drives
//! the parser and the writer (`dns::rdata`), so the two cannot drift apart.
//! Types not in the table are read and written in RFC 3597 generic syntax.

/// One field of an RDATA layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// 32-bit period that may be written with units (`1h30m`), as in SOA.
    Period,
    /// A domain name; `true` when RFC 4034 section 6.2 lowercases it.
    Name(bool),
    /// IPv4 address.
    Ipv4,
    /// IPv6 address.
    Ipv6,
    /// One `<character-string>`.
    Str,
    /// One or more `<character-string>`s up to the end.
    Strs,
    /// Base64 up to the end (may be split over several tokens).
    Base64,
    /// Hexadecimal up to the end (may be split over several tokens).
    Hex,
    /// Hexadecimal with a one-octet length prefix; `-` is empty (NSEC3 salt).
    SaltHex,
    /// Base32hex with a one-octet length prefix (NSEC3 next hashed owner).
    Base32Len,
    /// NSEC/NSEC3/CSYNC type bitmap up to the end.
    Bitmap,
    /// A record type mnemonic written as a 16-bit number (RRSIG type covered).
    TypeCode,
    /// DNSSEC algorithm, number or mnemonic.
    Algorithm,
    /// RRSIG time: `YYYYMMDDHHmmSS` or seconds since the epoch.
    Time,
    /// EUI-48 address `xx-xx-xx-xx-xx-xx`.
    Eui48,
    /// EUI-64 address.
    Eui64,
    /// 64-bit ILNP locator `xxxx:xxxx:xxxx:xxxx`.
    Ilnp64,
    /// Raw text to the end without a length octet (CAA value, URI target).
    RawText,
    /// CAA tag: a length octet and the tag text, unquoted.
    CaaTag,
    /// CERT type: number or mnemonic (`PKIX`, `PGP`, ...).
    CertType,
}

/// How a type's RDATA is read and written in presentation form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A fixed list of fields.
    Fields(&'static [Field]),
    /// LOC (RFC 1876).
    Loc,
    /// APL (RFC 3123).
    Apl,
    /// IPSECKEY (RFC 4025).
    Ipseckey,
    /// SVCB and HTTPS (RFC 9460), see `dns::svcb`.
    Svcb,
    /// Only RFC 3597 generic syntax.
    Generic,
}

use Field::*;

/// Record types with special meaning to the signer.
#[allow(missing_docs)]
pub mod code {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
    pub const ZONEMD: u16 = 63;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
}

const NAME_LC: &[Field] = &[Name(true)];
const DS_LIKE: &[Field] = &[U16, Algorithm, U8, Hex];
const DNSKEY_LIKE: &[Field] = &[U16, U8, Algorithm, Base64];
const TXT_LIKE: &[Field] = &[Strs];
const PREF_NAME: &[Field] = &[U16, Name(true)];

/// The table: number, mnemonic, layout.
static TABLE: &[(u16, &str, Layout)] = &[
    (1, "A", Layout::Fields(&[Ipv4])),
    (2, "NS", Layout::Fields(NAME_LC)),
    (3, "MD", Layout::Fields(NAME_LC)),
    (4, "MF", Layout::Fields(NAME_LC)),
    (5, "CNAME", Layout::Fields(NAME_LC)),
    (6, "SOA", Layout::Fields(&[Name(true), Name(true), U32, Period, Period, Period, Period])),
    (7, "MB", Layout::Fields(NAME_LC)),
    (8, "MG", Layout::Fields(NAME_LC)),
    (9, "MR", Layout::Fields(NAME_LC)),
    (10, "NULL", Layout::Generic),
    (11, "WKS", Layout::Generic),
    (12, "PTR", Layout::Fields(NAME_LC)),
    (13, "HINFO", Layout::Fields(&[Str, Str])),
    (14, "MINFO", Layout::Fields(&[Name(true), Name(true)])),
    (15, "MX", Layout::Fields(PREF_NAME)),
    (16, "TXT", Layout::Fields(TXT_LIKE)),
    (17, "RP", Layout::Fields(&[Name(true), Name(true)])),
    (18, "AFSDB", Layout::Fields(PREF_NAME)),
    (19, "X25", Layout::Fields(&[Str])),
    (21, "RT", Layout::Fields(PREF_NAME)),
    (22, "NSAP", Layout::Generic),
    (24, "SIG", Layout::Generic),
    (25, "KEY", Layout::Fields(DNSKEY_LIKE)),
    (26, "PX", Layout::Fields(&[U16, Name(true), Name(true)])),
    (27, "GPOS", Layout::Fields(&[Str, Str, Str])),
    (28, "AAAA", Layout::Fields(&[Ipv6])),
    (29, "LOC", Layout::Loc),
    (30, "NXT", Layout::Generic),
    (33, "SRV", Layout::Fields(&[U16, U16, U16, Name(true)])),
    (35, "NAPTR", Layout::Fields(&[U16, U16, Str, Str, Str, Name(true)])),
    (36, "KX", Layout::Fields(PREF_NAME)),
    (37, "CERT", Layout::Fields(&[CertType, U16, Algorithm, Base64])),
    (38, "A6", Layout::Generic),
    (39, "DNAME", Layout::Fields(NAME_LC)),
    (41, "OPT", Layout::Generic),
    (42, "APL", Layout::Apl),
    (43, "DS", Layout::Fields(DS_LIKE)),
    (44, "SSHFP", Layout::Fields(&[U8, U8, Hex])),
    (45, "IPSECKEY", Layout::Ipseckey),
    (46, "RRSIG", Layout::Fields(&[TypeCode, Algorithm, U8, U32, Time, Time, U16, Name(true), Base64])),
    (47, "NSEC", Layout::Fields(&[Name(false), Bitmap])),
    (48, "DNSKEY", Layout::Fields(DNSKEY_LIKE)),
    (49, "DHCID", Layout::Fields(&[Base64])),
    (50, "NSEC3", Layout::Fields(&[U8, U8, U16, SaltHex, Base32Len, Bitmap])),
    (51, "NSEC3PARAM", Layout::Fields(&[U8, U8, U16, SaltHex])),
    (52, "TLSA", Layout::Fields(&[U8, U8, U8, Hex])),
    (53, "SMIMEA", Layout::Fields(&[U8, U8, U8, Hex])),
    (55, "HIP", Layout::Generic),
    (59, "CDS", Layout::Fields(DS_LIKE)),
    (60, "CDNSKEY", Layout::Fields(DNSKEY_LIKE)),
    (61, "OPENPGPKEY", Layout::Fields(&[Base64])),
    (62, "CSYNC", Layout::Fields(&[U32, U16, Bitmap])),
    (63, "ZONEMD", Layout::Fields(&[U32, U8, U8, Hex])),
    (64, "SVCB", Layout::Svcb),
    (65, "HTTPS", Layout::Svcb),
    (99, "SPF", Layout::Fields(TXT_LIKE)),
    (104, "NID", Layout::Fields(&[U16, Ilnp64])),
    (105, "L32", Layout::Fields(&[U16, Ipv4])),
    (106, "L64", Layout::Fields(&[U16, Ilnp64])),
    (107, "LP", Layout::Fields(&[U16, Name(false)])),
    (108, "EUI48", Layout::Fields(&[Eui48])),
    (109, "EUI64", Layout::Fields(&[Eui64])),
    // Meta-types and query types: named only so that the reader can say why
    // it refuses them (`not_zone_data`).
    (249, "TKEY", Layout::Generic),
    (250, "TSIG", Layout::Generic),
    (251, "IXFR", Layout::Generic),
    (252, "AXFR", Layout::Generic),
    (253, "MAILB", Layout::Generic),
    (254, "MAILA", Layout::Generic),
    (255, "ANY", Layout::Generic),
    (256, "URI", Layout::Fields(&[U16, U16, RawText])),
    (257, "CAA", Layout::Fields(&[U8, CaaTag, RawText])),
    (258, "AVC", Layout::Fields(TXT_LIKE)),
    (32768, "TA", Layout::Fields(DS_LIKE)),
    (32769, "DLV", Layout::Fields(DS_LIKE)),
];

/// Looks a type up by mnemonic (case-insensitive) or `TYPEnnn`.
pub fn from_mnemonic(s: &[u8]) -> Option<u16> {
    // The types that make up nearly every large zone, without a table scan.
    let mut up = [0u8; 5];
    if s.len() <= up.len() {
        for (u, c) in up.iter_mut().zip(s) {
            *u = c.to_ascii_uppercase();
        }
        match &up[..s.len()] {
            b"A" => return Some(code::A),
            b"NS" => return Some(code::NS),
            b"DS" => return Some(code::DS),
            b"AAAA" => return Some(code::AAAA),
            b"CNAME" => return Some(code::CNAME),
            b"MX" => return Some(code::MX),
            b"TXT" => return Some(code::TXT),
            b"RRSIG" => return Some(code::RRSIG),
            b"NSEC" => return Some(code::NSEC),
            _ => {}
        }
    }
    if let Some(entry) = TABLE.iter().find(|(_, m, _)| m.as_bytes().eq_ignore_ascii_case(s)) {
        return Some(entry.0);
    }
    if s.len() > 4 && s[..4].eq_ignore_ascii_case(b"TYPE") {
        return std::str::from_utf8(&s[4..]).ok()?.parse().ok();
    }
    None
}

/// The mnemonic of a type, or `TYPEnnn` (RFC 3597 section 5).
pub fn mnemonic(code: u16) -> std::borrow::Cow<'static, str> {
    match TABLE.iter().find(|(c, _, _)| *c == code) {
        Some((_, m, _)) => std::borrow::Cow::Borrowed(m),
        None => std::borrow::Cow::Owned(format!("TYPE{code}")),
    }
}

/// The RDATA layout of a type; unknown types are generic.
pub fn layout(code: u16) -> Layout {
    TABLE.iter().find(|(c, _, _)| *c == code).map_or(Layout::Generic, |e| e.2)
}

/// Why a type can never be zone data, or `None` when it can be.
///
/// RFC 6895 section 3.1: 0 is reserved, 41 (OPT) and 128-255 are meta-types
/// and query types (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY among them),
/// which live only in messages. MD and MF were obsoleted by MX (RFC 973,
/// RFC 1035 section 3.3.4); BIND refuses them too.
pub fn not_zone_data(code: u16) -> Option<&'static str> {
    match code {
        0 => Some("type 0 is reserved (RFC 6895 section 3.1)"),
        41 => Some("OPT is a pseudo-record of messages, never zone data (RFC 6891)"),
        128..=255 => Some("a meta-type or query type, never zone data (RFC 6895 section 3.1)"),
        3 | 4 => Some("obsolete mail type, replaced by MX (RFC 973); write MX records"),
        _ => None,
    }
}

/// True for types whose presence in an input zone the signer replaces with its own.
pub fn is_dnssec_generated(code: u16) -> bool {
    matches!(code, code::RRSIG | code::NSEC | code::NSEC3 | code::NSEC3PARAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_round_trip() {
        assert_eq!(from_mnemonic(b"nsec3param"), Some(51));
        assert_eq!(from_mnemonic(b"TYPE65280"), Some(65280));
        assert_eq!(mnemonic(65280), "TYPE65280");
        assert_eq!(from_mnemonic(b"BOGUS"), None);
        for (c, m, _) in TABLE {
            assert_eq!(from_mnemonic(m.as_bytes()), Some(*c));
        }
    }
}
