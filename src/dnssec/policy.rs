//! What a signing pass should produce: denial of existence, validity, serial,
//! which keys sign what, and the optional records (CDS/CDNSKEY, ZONEMD).

use super::nsec3::Nsec3Params;
use crate::crypto::dnskey::DigestType;

/// Denial of existence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Denial {
    /// NSEC (RFC 4034).
    Nsec,
    /// NSEC3 (RFC 5155).
    Nsec3(Nsec3Params),
}

/// How the SOA serial changes when a zone is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SerialPolicy {
    /// As in the input.
    Keep,
    /// Input serial plus one.
    Increment,
    /// Seconds since the epoch (at least input plus one).
    UnixTime,
    /// `YYYYMMDDnn` (at least input plus one).
    DateCounter,
}

impl SerialPolicy {
    /// Parses `keep`, `increment`, `unixtime`, `date`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(SerialPolicy::Keep),
            "increment" => Some(SerialPolicy::Increment),
            "unixtime" => Some(SerialPolicy::UnixTime),
            "date" | "dateserial" | "yyyymmddnn" => Some(SerialPolicy::DateCounter),
            _ => None,
        }
    }

    /// The new serial for `current` at time `now` (seconds since the epoch),
    /// always moving forward in serial arithmetic (RFC 1982) unless `Keep`.
    pub fn next(self, current: u32, now: u64) -> u32 {
        let bump = |candidate: u32| {
            // Newer in RFC 1982 terms: 0 < candidate - current < 2^31.
            let d = candidate.wrapping_sub(current);
            if d != 0 && d < 0x8000_0000 { candidate } else { current.wrapping_add(1) }
        };
        match self {
            SerialPolicy::Keep => current,
            SerialPolicy::Increment => current.wrapping_add(1),
            SerialPolicy::UnixTime => bump(now as u32),
            SerialPolicy::DateCounter => {
                let date = crate::dns::text::format_time(now as u32);
                let ymd: u32 = date[..8].parse().expect("format_time starts with eight digits YYYYMMDD");
                bump(ymd.saturating_mul(100))
            }
        }
    }
}

/// Which input DNSKEYs that are not among the signing keys stay published.
///
/// By default none: the DNSKEY RRset is the keys in use, so a key removed
/// from the store is withdrawn. Multi-signer set-ups (RFC 8901) and keys
/// pre-published by another party name them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub enum KeepDnskeys {
    /// None of them.
    #[default]
    None,
    /// The listed keys: key tag and, when given, algorithm.
    Listed(Vec<(u16, Option<u8>)>),
    /// Every input DNSKEY.
    All,
}

impl KeepDnskeys {
    /// True when a foreign key with this tag and algorithm is kept.
    pub fn keeps(&self, key_tag: u16, algorithm: u8) -> bool {
        match self {
            KeepDnskeys::None => false,
            KeepDnskeys::Listed(l) => l.iter().any(|&(t, a)| t == key_tag && a.is_none_or(|a| a == algorithm)),
            KeepDnskeys::All => true,
        }
    }

    /// Parses `TAG` or `TAG/ALG` (algorithm number or mnemonic).
    pub fn parse_key(s: &str) -> Option<(u16, Option<u8>)> {
        let (tag, alg) = match s.split_once('/') {
            Some((t, a)) => (t, Some(a)),
            None => (s, None),
        };
        let tag = tag.parse().ok()?;
        let alg = match alg {
            None => None,
            Some(a) => Some(crate::dns::algorithm::Algorithm::parse_number_or_mnemonic(a.as_bytes())?),
        };
        Some((tag, alg))
    }
}

/// Everything a signing pass needs to know besides the zone and the keys.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    /// NSEC or NSEC3.
    pub denial: Denial,
    /// "Now", seconds since the epoch (fixed in tests for reproducible output).
    pub now: u64,
    /// Inception is set this far in the past, for validators with slow clocks.
    pub inception_offset: u32,
    /// Signature lifetime from now.
    pub validity: u32,
    /// Up to this much is taken off each expiration, spread evenly, so that
    /// re-signing spreads out instead of coming due all at once.
    pub jitter: u32,
    /// A signature that expires sooner than this is made again.
    pub refresh: u32,
    /// SOA serial policy.
    pub serial: SerialPolicy,
    /// TTL for the DNSKEY RRset when the input has none.
    pub dnskey_ttl: u32,
    /// ZSKs sign the DNSKEY RRset too.
    pub zsk_signs_dnskey: bool,
    /// Publish CDS with these digests and CDNSKEY for the KSKs (RFC 7344, RFC 8078).
    pub cds: Vec<DigestType>,
    /// Publish CDNSKEY for the KSKs.
    pub cdnskey: bool,
    /// Input DNSKEYs that are not signing keys and stay published.
    pub keep_dnskeys: KeepDnskeys,
    /// Add a ZONEMD record (RFC 8976, SIMPLE, SHA-384).
    pub zonemd: bool,
    /// Verify every signature on the host (always on for device keys).
    pub verify: bool,
    /// Signatures per batch handed to a key store.
    pub batch_size: usize,
}

impl Policy {
    /// Defaults: NSEC, 14 days validity with up to 12 h jitter, inception an
    /// hour back, refresh when fewer than 5 days remain, serial kept,
    /// host verification on.
    pub fn new(now: u64) -> Self {
        Policy {
            denial: Denial::Nsec,
            now,
            inception_offset: 3600,
            validity: 14 * 86_400,
            jitter: 12 * 3600,
            refresh: 5 * 86_400,
            serial: SerialPolicy::Keep,
            dnskey_ttl: 3600,
            zsk_signs_dnskey: false,
            cds: Vec::new(),
            cdnskey: false,
            keep_dnskeys: KeepDnskeys::None,
            zonemd: false,
            verify: true,
            batch_size: 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_move_forward() {
        assert_eq!(SerialPolicy::Keep.next(5, 0), 5);
        assert_eq!(SerialPolicy::Increment.next(u32::MAX, 0), 0);
        assert_eq!(SerialPolicy::UnixTime.next(5, 1_700_000_000), 1_700_000_000);
        assert_eq!(SerialPolicy::UnixTime.next(1_800_000_000, 1_700_000_000), 1_800_000_001);
        // 2026-11-24 00:00:00 UTC
        assert_eq!(SerialPolicy::DateCounter.next(1, 1_795_478_400), 2_026_112_400);
        assert_eq!(SerialPolicy::DateCounter.next(2_026_112_400, 1_795_478_400), 2_026_112_401);
    }

    #[test]
    fn keep_dnskey_lists() {
        assert_eq!(KeepDnskeys::parse_key("12345"), Some((12345, None)));
        assert_eq!(KeepDnskeys::parse_key("12345/13"), Some((12345, Some(13))));
        assert_eq!(KeepDnskeys::parse_key("7/ecdsap256sha256"), Some((7, Some(13))));
        assert_eq!(KeepDnskeys::parse_key("70000"), None);
        assert_eq!(KeepDnskeys::parse_key("1/nope"), None);
        let l = KeepDnskeys::Listed(vec![(1, None), (2, Some(8))]);
        assert!(l.keeps(1, 13) && l.keeps(2, 8) && !l.keeps(2, 13) && !l.keeps(3, 8));
        assert!(!KeepDnskeys::None.keeps(1, 13) && KeepDnskeys::All.keeps(1, 13));
    }
}
