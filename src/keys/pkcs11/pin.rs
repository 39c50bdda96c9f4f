//! Pinning a PKCS#11 key to its public key.
//!
//! A label (`CKA_LABEL`), an id (`CKA_ID`) and a 16-bit key tag do not
//! identify a key: anyone who can write to a token can put another key under
//! the same label, and two keys under one label look alike to a search. A pin
//! names the key itself, by its DNSKEY public key field (RFC 4034 section 2.1.4,
//! the base64 text at the end of a DNSKEY record) or by the SHA-256 digest of
//! that field. Both leave out the flags, so one pin serves whatever role the
//! key is given, and `hwsigner tokens list` can print it without knowing the
//! role. In the configuration:
//!
//! ```toml
//! [[key]]
//! public_key_sha256 = "<64 hex digits>"       # as `hwsigner tokens list` prints it
//! # or: public_key = "<base64 of the field>"  # as in the DNSKEY record
//! ```

use super::{KeySpec, Pkcs11Error};
use crate::crypto::dnskey::{dnskey_rdata, key_tag};
use crate::dns::algorithm::Algorithm;

/// Configuration key for the full public key.
pub const PUBLIC_KEY: &str = "public_key";
/// Configuration key for the digest of the public key.
pub const PUBLIC_KEY_SHA256: &str = "public_key_sha256";

/// The public key a configured key must have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyPin {
    /// The DNSKEY public key field itself.
    PublicKey(Vec<u8>),
    /// SHA-256 of the DNSKEY public key field.
    Sha256([u8; 32]),
}

impl KeyPin {
    /// Parses the value of `public_key`: base64 of the DNSKEY public key
    /// field; spaces and line breaks are allowed, as in a DNSKEY record.
    ///
    /// # Errors
    /// A message saying what the value should look like.
    pub fn parse_public_key(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        match data_encoding::BASE64.decode(compact.as_bytes()) {
            Ok(field) if !field.is_empty() => Ok(KeyPin::PublicKey(field)),
            _ => Err(format!(
                "{PUBLIC_KEY} must be the base64 public key field of the DNSKEY record (the text after `DNSKEY 257 3 13`), as `hwsigner tokens list --json` prints it"
            )),
        }
    }

    /// Parses the value of `public_key_sha256`: 64 hex digits (colons allowed
    /// between bytes).
    ///
    /// # Errors
    /// A message saying what the value should look like.
    pub fn parse_sha256(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| *c != ':' && !c.is_ascii_whitespace()).collect();
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(compact.as_bytes())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(KeyPin::Sha256)
            .ok_or_else(|| {
                format!(
                    "{PUBLIC_KEY_SHA256} must be 64 hex digits, the SHA-256 of the DNSKEY public key field, as `hwsigner tokens list` and `hwsigner keys generate` print it"
                )
            })
    }

    /// True when `field` (a DNSKEY public key field) is the pinned key.
    pub fn matches(&self, field: &[u8]) -> bool {
        match self {
            KeyPin::PublicKey(p) => p.as_slice() == field,
            KeyPin::Sha256(d) => *d == openssl::sha::sha256(field),
        }
    }

    /// The pinned key for messages: its key tag when it can be computed
    /// (a full key, given the flags and algorithm), and its digest.
    pub fn describe(&self, flags: u16, alg: Option<Algorithm>) -> String {
        match (self, alg) {
            (KeyPin::PublicKey(p), Some(a)) => format!("key tag {} (sha256 {})", key_tag(&dnskey_rdata(flags, a, p)), sha256_hex(p)),
            (KeyPin::PublicKey(p), None) => format!("sha256 {}", sha256_hex(p)),
            (KeyPin::Sha256(d), _) => format!("sha256 {}", data_encoding::HEXLOWER.encode(d)),
        }
    }
}

/// SHA-256 of a DNSKEY public key field, in lower-case hex: the value of `public_key_sha256`.
pub fn sha256_hex(field: &[u8]) -> String {
    crate::crypto::dnskey::public_key_sha256_hex(field)
}

/// The line to paste into a `[[key]]` entry to pin the key with this public key field.
pub fn config_line(field: &[u8]) -> String {
    format!("{PUBLIC_KEY_SHA256} = \"{}\"", sha256_hex(field))
}

/// A key found on a token, for messages: key tag under `flags` and digest.
pub fn describe_found(flags: u16, alg: Algorithm, field: &[u8]) -> String {
    format!("key tag {} (sha256 {})", key_tag(&dnskey_rdata(flags, alg, field)), sha256_hex(field))
}

/// A key on a token under the configured label or id.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// `CKA_ID` in hex, to tell keys under one label apart in messages.
    pub id: &'a str,
    /// Algorithm family.
    pub algorithm: Algorithm,
    /// DNSKEY public key field.
    pub public_key: &'a [u8],
}

/// Picks, among the keys with the configured label or id on one token, the
/// one to sign with: the pinned key (and the one with the configured key tag,
/// when one is given). Several objects of one key pair count once.
///
/// Returns `None` when the token holds no such key.
///
/// # Errors
/// [`Pkcs11Error::PinMismatch`] when keys are there but none is the
/// configured one; [`Pkcs11Error::AmbiguousOnToken`] when several different
/// keys qualify (no pin, or a key tag shared by two keys).
pub fn choose(spec: &KeySpec, token: &str, candidates: &[Candidate<'_>]) -> Result<Option<usize>, Pkcs11Error> {
    let Some(first) = candidates.first() else { return Ok(None) };
    let flags = spec.role.flags();
    let tag_of = |c: &Candidate<'_>| key_tag(&dnskey_rdata(flags, spec.algorithm_of(c.algorithm), c.public_key));
    let fitting: Vec<usize> = (0..candidates.len())
        .filter(|&i| spec.pin.as_ref().is_none_or(|p| p.matches(candidates[i].public_key)))
        .filter(|&i| spec.key_tag.is_none_or(|t| t == tag_of(&candidates[i])))
        .collect();
    let mut distinct: Vec<usize> = Vec::new();
    for &i in &fitting {
        if !distinct.iter().any(|&d| candidates[d].public_key == candidates[i].public_key) {
            distinct.push(i);
        }
    }
    match distinct.as_slice() {
        [] => {
            let mut expected: Vec<String> = Vec::new();
            if let Some(p) = &spec.pin {
                expected.push(p.describe(flags, Some(spec.algorithm_of(first.algorithm))));
            }
            if let Some(t) = spec.key_tag {
                expected.push(format!("key tag {t}"));
            }
            let found = candidates
                .iter()
                .map(|c| format!("id {} {}", c.id, describe_found(flags, spec.algorithm_of(c.algorithm), c.public_key)))
                .collect();
            Err(Pkcs11Error::PinMismatch { token: token.to_owned(), wanted: spec.key.to_string(), expected: expected.join(" and "), found })
        }
        [one] => Ok(Some(*one)),
        several => Err(Pkcs11Error::AmbiguousOnToken {
            token: token.to_owned(),
            wanted: spec.key.to_string(),
            keys: several
                .iter()
                .map(|&i| format!("id {} key tag {}: {}", candidates[i].id, tag_of(&candidates[i]), config_line(candidates[i].public_key)))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_match_the_same_key_and_nothing_else() {
        let field: Vec<u8> = (0u8..64).collect();
        let b64 = data_encoding::BASE64.encode(&field);
        let spaced = format!("{} {}", &b64[..20], &b64[20..]);
        let full = KeyPin::parse_public_key(&spaced).expect("base64 with a space");
        let digest = KeyPin::parse_sha256(&sha256_hex(&field).to_ascii_uppercase()).expect("upper-case hex");
        let mut other = field.clone();
        other[63] ^= 1;
        for pin in [&full, &digest] {
            assert!(pin.matches(&field), "{pin:?}");
            assert!(!pin.matches(&other), "{pin:?}");
            assert!(!pin.matches(&field[..63]), "{pin:?}");
        }
        assert_eq!(config_line(&field), format!("public_key_sha256 = \"{}\"", sha256_hex(&field)));
    }

    #[test]
    fn malformed_pins_are_refused() {
        for bad in ["", "not base64!", "===="] {
            assert!(KeyPin::parse_public_key(bad).is_err(), "public_key {bad:?}");
        }
        let good = "ab".repeat(32);
        for bad in ["", "abcd", &good[..62], &format!("{good}ab"), &good.replace('a', "g")] {
            assert!(KeyPin::parse_sha256(bad).is_err(), "public_key_sha256 {bad:?}");
        }
        let colons = good.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).expect("ascii")).collect::<Vec<_>>().join(":");
        assert!(KeyPin::parse_sha256(&colons).is_ok());
    }

    fn spec(pin: Option<KeyPin>, key_tag: Option<u16>) -> KeySpec {
        KeySpec {
            module: "/m.so".into(),
            tokens: Vec::new(),
            key: super::super::KeySelector { label: Some("zsk".into()), id: None },
            zone: "example.".into(),
            role: crate::sign::Role::Zsk,
            algorithm: None,
            key_tag,
            pin,
        }
    }

    #[test]
    fn choose_takes_the_pinned_key_or_refuses_the_token() {
        let (a, b): (Vec<u8>, Vec<u8>) = ((0u8..64).collect(), (1u8..65).collect());
        let alg = Algorithm::EcdsaP256Sha256;
        let c = |id, public_key| Candidate { id, algorithm: alg, public_key };
        let both = [c("01", &a), c("02", &b)];
        let token = "'tok1' serial 42 (slot 0)";
        let pin_b = KeyPin::parse_sha256(&sha256_hex(&b)).expect("digest");
        assert_eq!(choose(&spec(Some(pin_b.clone()), None), token, &both).expect("pinned"), Some(1));
        assert_eq!(choose(&spec(Some(KeyPin::PublicKey(a.clone())), None), token, &both).expect("pinned"), Some(0));
        assert_eq!(choose(&spec(Some(pin_b.clone()), None), token, &[]).expect("no key there"), None);
        // Unpinned: one key (even as several objects) is taken, two are refused, listed with their pins.
        assert_eq!(choose(&spec(None, None), token, &[c("01", &a), c("01", &a)]).expect("one key"), Some(0));
        let e = choose(&spec(None, None), token, &both).expect_err("two keys").to_string();
        assert!(e.contains(token) && e.contains(&config_line(&a)) && e.contains(&config_line(&b)) && e.contains("pin"), "{e}");
        // A key tag narrows; a key tag that fits nothing refuses, as a pin does.
        let tag_b = key_tag(&dnskey_rdata(256, alg, &b));
        assert_eq!(choose(&spec(None, Some(tag_b)), token, &both).expect("by tag"), Some(1));
        let e = choose(&spec(Some(pin_b), None), token, &[c("01", &a)]).expect_err("swapped").to_string();
        let tag_a = key_tag(&dnskey_rdata(256, alg, &a));
        assert!(
            e.contains(token)
                && e.contains("label 'zsk'")
                && e.contains(&format!("expected sha256 {}", sha256_hex(&b)))
                && e.contains(&format!("found id 01 key tag {tag_a}")),
            "{e}"
        );
        let e = choose(&spec(Some(KeyPin::PublicKey(b.clone())), None), token, &[c("01", &a)]).expect_err("swapped").to_string();
        assert!(e.contains(&format!("expected key tag {tag_b}")) && e.contains(&format!("found id 01 key tag {tag_a}")), "{e}");
    }
}
