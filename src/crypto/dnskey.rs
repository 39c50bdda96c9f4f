//! DNSKEY RDATA, key tags and DS digests (RFC 4034 sections 2, 5 and Appendix B;
//! RFC 4509 and RFC 6605 for the digest types).

use crate::dns::algorithm::Algorithm;
use openssl::hash::{MessageDigest, hash};

/// DNSKEY flags: Zone Key.
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flags: Secure Entry Point (a KSK).
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY flags: REVOKE (RFC 5011).
pub const FLAG_REVOKE: u16 = 0x0080;

/// Builds DNSKEY RDATA from flags, algorithm and public key field.
pub fn dnskey_rdata(flags: u16, alg: Algorithm, public_key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + public_key.len());
    v.extend_from_slice(&flags.to_be_bytes());
    v.push(3);
    v.push(alg.number());
    v.extend_from_slice(public_key);
    v
}

/// The RFC 3110 public key field of an RSA key: exponent length, exponent, modulus
/// (leading zero octets of both removed, as DNSKEY wants).
pub fn rsa_public_field(exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let strip = |b: &[u8]| -> Vec<u8> { b.iter().skip_while(|&&x| x == 0).copied().collect() };
    let (e, n) = (strip(exponent), strip(modulus));
    let mut v = Vec::with_capacity(3 + e.len() + n.len());
    if e.len() < 256 {
        v.push(e.len() as u8);
    } else {
        v.push(0);
        v.extend_from_slice(&(e.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(&e);
    v.extend_from_slice(&n);
    v
}

/// The key tag of DNSKEY RDATA (RFC 4034 Appendix B).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 { b as u32 } else { (b as u32) << 8 };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

/// DNSKEY RDATA flags field.
pub fn flags(rdata: &[u8]) -> u16 {
    if rdata.len() < 2 {
        return 0;
    }
    u16::from_be_bytes([rdata[0], rdata[1]])
}

/// DS digest types the signer makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DigestType {
    /// SHA-256, type 2 (RFC 4509).
    Sha256,
    /// SHA-384, type 4 (RFC 6605).
    Sha384,
}

impl DigestType {
    /// The IANA number.
    pub fn number(self) -> u8 {
        match self {
            DigestType::Sha256 => 2,
            DigestType::Sha384 => 4,
        }
    }

    /// From the IANA number or name (`2`, `sha256`, `4`, `sha384`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "2" | "sha256" | "sha-256" => Some(DigestType::Sha256),
            "4" | "sha384" | "sha-384" => Some(DigestType::Sha384),
            _ => None,
        }
    }
}

/// DS RDATA for a DNSKEY at `owner_wire` (lowercased here).
///
/// # Errors
/// An OpenSSL hashing failure.
pub fn ds_rdata(owner_wire: &[u8], dnskey: &[u8], digest: DigestType) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut data = owner_wire.to_vec();
    crate::dns::name::lowercase_wire(&mut data);
    data.extend_from_slice(dnskey);
    let md = match digest {
        DigestType::Sha256 => MessageDigest::sha256(),
        DigestType::Sha384 => MessageDigest::sha384(),
    };
    let d = hash(md, &data)?;
    let mut v = Vec::with_capacity(4 + d.len());
    v.extend_from_slice(&key_tag(dnskey).to_be_bytes());
    v.push(dnskey.get(3).copied().unwrap_or(0));
    v.push(digest.number());
    v.extend_from_slice(&d);
    Ok(v)
}

/// SHA-256 of a DNSKEY public key field in lower-case hex: how a configuration
/// pins a key to its public key, and how listings show it.
pub fn public_key_sha256_hex(field: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&openssl::sha::sha256(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4034_ds_example() {
        // RFC 4034 section 5.4: dskey.example.com. DNSKEY 256 3 5 ... key tag 60485,
        // SHA-1 digest there; check the key tag (digest type 1 is not made here).
        let key = data_encoding::BASE64
            .decode(b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==")
            .unwrap();
        let rd = [&[0x01, 0x00, 3, 5][..], &key].concat();
        assert_eq!(key_tag(&rd), 60485);
    }
}
