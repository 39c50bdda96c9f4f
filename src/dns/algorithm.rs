//! DNSSEC algorithm numbers (RFC 8624) and what the signer needs to know of each.

use std::fmt;

/// A DNSSEC signing algorithm the signer can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// RSA/SHA-256, algorithm 8 (RFC 5702).
    RsaSha256,
    /// RSA/SHA-512, algorithm 10 (RFC 5702).
    RsaSha512,
    /// ECDSA P-256 with SHA-256, algorithm 13 (RFC 6605).
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, algorithm 14 (RFC 6605).
    EcdsaP384Sha384,
    /// Ed25519, algorithm 15 (RFC 8080).
    Ed25519,
}

/// The hash an algorithm signs over, computed on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// No separate hash: the key signs the whole message (Ed25519).
    None,
}

const MNEMONICS: &[(u8, &str)] = &[
    (1, "RSAMD5"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA-NSEC3-SHA1"),
    (7, "RSASHA1-NSEC3-SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC-GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
    (252, "INDIRECT"),
    (253, "PRIVATEDNS"),
    (254, "PRIVATEOID"),
];

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 5] =
        [Algorithm::RsaSha256, Algorithm::RsaSha512, Algorithm::EcdsaP256Sha256, Algorithm::EcdsaP384Sha384, Algorithm::Ed25519];

    /// The IANA number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::RsaSha256 => 8,
            Algorithm::RsaSha512 => 10,
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::EcdsaP384Sha384 => 14,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The algorithm with this IANA number, if supported.
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.number() == n)
    }

    /// The IANA mnemonic (`ECDSAP256SHA256`).
    pub fn mnemonic(self) -> &'static str {
        MNEMONICS.iter().find(|(n, _)| *n == self.number()).map_or("?", |(_, m)| m)
    }

    /// The hash signed by this algorithm.
    pub fn hash(self) -> HashKind {
        match self {
            Algorithm::RsaSha256 | Algorithm::EcdsaP256Sha256 => HashKind::Sha256,
            Algorithm::RsaSha512 => HashKind::Sha512,
            Algorithm::EcdsaP384Sha384 => HashKind::Sha384,
            Algorithm::Ed25519 => HashKind::None,
        }
    }

    /// True for the RSA algorithms.
    pub fn is_rsa(self) -> bool {
        matches!(self, Algorithm::RsaSha256 | Algorithm::RsaSha512)
    }

    /// Reads an algorithm number or mnemonic as written in zone files and on
    /// the command line; returns the number, supported or not.
    pub fn parse_number_or_mnemonic(s: &[u8]) -> Option<u8> {
        if let Ok(n) = std::str::from_utf8(s).ok()?.parse::<u8>() {
            return Some(n);
        }
        MNEMONICS.iter().find(|(_, m)| m.as_bytes().eq_ignore_ascii_case(s)).map(|(n, _)| *n)
    }

    /// Reads a supported algorithm from a number, mnemonic or short name
    /// (`ecdsa256`, `rsa2048`-style names are not accepted: a size is a separate option).
    pub fn parse(s: &str) -> Option<Self> {
        let short = match s.to_ascii_lowercase().as_str() {
            "rsa" | "rsasha256" => Some(Algorithm::RsaSha256),
            "rsasha512" => Some(Algorithm::RsaSha512),
            "ecdsa" | "p256" | "ecdsap256" | "ecdsap256sha256" => Some(Algorithm::EcdsaP256Sha256),
            "p384" | "ecdsap384" | "ecdsap384sha384" => Some(Algorithm::EcdsaP384Sha384),
            "ed25519" => Some(Algorithm::Ed25519),
            _ => None,
        };
        short.or_else(|| Self::from_number(Self::parse_number_or_mnemonic(s.as_bytes())?))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.mnemonic())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(Algorithm::parse("13"), Some(Algorithm::EcdsaP256Sha256));
        assert_eq!(Algorithm::parse("ED25519"), Some(Algorithm::Ed25519));
        assert_eq!(Algorithm::parse("rsasha512"), Some(Algorithm::RsaSha512));
        assert_eq!(Algorithm::parse("5"), None);
        assert_eq!(Algorithm::parse_number_or_mnemonic(b"RSASHA1"), Some(5));
    }
}
