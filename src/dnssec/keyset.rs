//! Which key signs what.
//!
//! For each algorithm in use, the keys with a key-signing role sign the
//! DNSKEY, CDS and CDNSKEY RRsets and the keys with a zone-signing role sign
//! everything else. An algorithm with only KSKs (or only ZSKs) signs
//! everything with what it has: that is CSK operation, as in BIND. Every
//! algorithm therefore signs every RRset (RFC 4035 section 2.2, RFC 6840
//! section 5.11), which makes algorithm rollovers safe.

use crate::dns::algorithm::Algorithm;
use crate::dns::rtype::code;
use crate::sign::SigningKey;

/// Indices into the key list for each kind of RRset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRoles {
    /// Keys that sign DNSKEY, CDS and CDNSKEY.
    pub key_signers: Vec<usize>,
    /// Keys that sign every other RRset.
    pub zone_signers: Vec<usize>,
}

impl KeyRoles {
    /// Works out the roles for a set of keys.
    pub fn new(keys: &[&dyn SigningKey], zsk_signs_dnskey: bool) -> Self {
        let mut roles = KeyRoles::default();
        let mut algs: Vec<Algorithm> = keys.iter().map(|k| k.info().algorithm).collect();
        algs.sort();
        algs.dedup();
        for alg in algs {
            let of_alg: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].info().algorithm == alg).collect();
            let ksk: Vec<usize> = of_alg.iter().copied().filter(|&i| keys[i].info().role.signs_keys()).collect();
            let zsk: Vec<usize> = of_alg.iter().copied().filter(|&i| keys[i].info().role.signs_zone()).collect();
            let zone = if zsk.is_empty() { ksk.clone() } else { zsk.clone() };
            let mut key = if ksk.is_empty() { zsk.clone() } else { ksk };
            if zsk_signs_dnskey {
                key.extend(zsk);
                key.sort_unstable();
                key.dedup();
            }
            roles.key_signers.extend(key);
            roles.zone_signers.extend(zone);
        }
        roles
    }

    /// The keys that sign an RRset of type `rtype`.
    pub fn for_type(&self, rtype: u16) -> &[usize] {
        if matches!(rtype, code::DNSKEY | code::CDS | code::CDNSKEY) { &self.key_signers } else { &self.zone_signers }
    }
}
