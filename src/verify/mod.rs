//! `hwsigner verify`: checks a signed zone without trusting how it was made.
//!
//! * every RRSIG verifies against a DNSKEY at the apex and is within its
//!   validity period; every RRset that must be signed is signed by every
//!   algorithm of the DNSKEY RRset (RFC 4035 section 2.2); occluded data is not;
//! * the NSEC or NSEC3 chain covers exactly the names it must, in order,
//!   closed, with the right type bitmaps (the chain is rebuilt from the
//!   zone's own data with the zone's own NSEC3 parameters and compared);
//! * no signature expires within the given window.

use crate::crypto::public::PublicKey;
use crate::dns::name::{KeyName, key_is_wildcard, key_label_count, wire_of_key};
use crate::dns::rtype::{self, code};
use crate::dnssec::nsec3::Nsec3Params;
use crate::dnssec::rrsig::{RrsigFields, signed_data};
use crate::zone::{Node, Zone};
use std::collections::BTreeSet;

/// What the check found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// RRSIGs checked.
    pub signatures: usize,
    /// Signature problems (invalid, missing, from unknown keys, out of period).
    pub signature_errors: Vec<String>,
    /// Chain problems.
    pub chain_errors: Vec<String>,
    /// Signatures expiring within the window: (owner type, expiration).
    pub expiring: Vec<String>,
    /// `nsec`, `nsec3`, or `none`.
    pub chain: String,
    /// Earliest signature expiration, seconds since the epoch.
    pub earliest_expiration: Option<u32>,
}

impl Report {
    /// True when nothing is wrong and nothing expires within the window.
    pub fn ok(&self) -> bool {
        self.signature_errors.is_empty() && self.chain_errors.is_empty() && self.expiring.is_empty()
    }
}

const MAX_LISTED: usize = 50;

fn push_limited(v: &mut Vec<String>, s: impl FnOnce() -> String) {
    if v.len() < MAX_LISTED {
        v.push(s());
    } else if v.len() == MAX_LISTED {
        v.push("(more not listed)".into());
    }
}

/// Checks a signed zone (built with `keep_dnssec`) at time `now`, flagging
/// signatures that expire within `window` seconds.
pub fn verify_zone(zone: &Zone, now: u32, window: u32) -> Report {
    let mut rep = Report::default();
    let apex_wire = zone.apex_wire();
    let dnskeys: Vec<(&[u8], Option<PublicKey>)> = zone
        .apex_node()
        .rrset(code::DNSKEY)
        // A DNSKEY whose key does not parse verifies nothing: the signatures
        // made with it are reported as not verifying, which is the finding.
        .map(|r| r.rdatas.iter().map(|d| (&**d, PublicKey::from_dnskey(d).ok())).collect())
        .unwrap_or_default();
    if dnskeys.is_empty() {
        rep.signature_errors.push("no DNSKEY RRset at the apex".into());
    }
    let algorithms: BTreeSet<u8> = dnskeys
        .iter()
        .filter(|(d, _)| crate::crypto::dnskey::flags(d) & crate::crypto::dnskey::FLAG_ZONE != 0)
        .map(|(d, _)| d[3])
        .collect();
    for node in zone.nodes.iter().chain(&zone.nsec3) {
        let owner_wire = wire_of_key(&node.owner);
        let labels = key_label_count(&node.owner) - usize::from(key_is_wildcard(&node.owner));
        for rr in &node.rrsets {
            let name = || format!("{} {}", KeyName(&node.owner), rtype::mnemonic(rr.rtype));
            if rr.rtype == code::RRSIG {
                push_limited(&mut rep.signature_errors, || format!("{}: RRSIG covering a type not present", KeyName(&node.owner)));
                continue;
            }
            if !node.signs(rr.rtype) {
                if !rr.sigs.is_empty() {
                    push_limited(&mut rep.signature_errors, || format!("{}: signed, but it is not authoritative data", name()));
                }
                continue;
            }
            let mut good_algs = BTreeSet::new();
            for sig in &rr.sigs {
                rep.signatures += 1;
                let Some((f, sigbytes)) = RrsigFields::parse(sig) else {
                    push_limited(&mut rep.signature_errors, || format!("{}: malformed RRSIG", name()));
                    continue;
                };
                let problem = check_sig(&f, sigbytes, rr, &owner_wire, labels, &apex_wire, &dnskeys, now);
                match problem {
                    Some(p) => push_limited(&mut rep.signature_errors, || {
                        format!("{}: RRSIG key tag {} alg {}: {p}", name(), f.key_tag, f.algorithm)
                    }),
                    None => {
                        good_algs.insert(f.algorithm);
                        rep.earliest_expiration = Some(rep.earliest_expiration.map_or(f.expiration, |e| e.min(f.expiration)));
                        if f.expiration.wrapping_sub(now) < window {
                            push_limited(&mut rep.expiring, || {
                                format!("{} expires {}", name(), crate::dns::text::format_time(f.expiration))
                            });
                        }
                    }
                }
            }
            for a in algorithms.difference(&good_algs) {
                push_limited(&mut rep.signature_errors, || format!("{}: no valid signature by algorithm {a}", name()));
            }
        }
    }
    check_chain(zone, &mut rep);
    check_zonemd(zone, &mut rep);
    rep
}

/// RFC 8976: a SIMPLE/SHA-384 ZONEMD at the apex must match the zone's digest.
fn check_zonemd(zone: &Zone, rep: &mut Report) {
    let Some(rr) = zone.apex_node().rrset(code::ZONEMD) else { return };
    let serial = zone.soa_serial().to_be_bytes();
    let supported: Vec<&[u8]> = rr.rdatas.iter().map(|d| &**d).filter(|d| d.len() == 6 + 48 && d[4] == 1 && d[5] == 1).collect();
    if supported.is_empty() {
        return;
    }
    let digest = crate::dnssec::zonemd::digest(zone);
    if !supported.iter().any(|d| d[..4] == serial && d[6..] == digest) {
        rep.signature_errors.push("ZONEMD does not match the zone's data (RFC 8976 SIMPLE/SHA-384)".into());
    }
}

#[allow(clippy::too_many_arguments)]
fn check_sig(
    f: &RrsigFields,
    sig: &[u8],
    rr: &crate::zone::Rrset,
    owner_wire: &[u8],
    labels: usize,
    apex_wire: &[u8],
    dnskeys: &[(&[u8], Option<PublicKey>)],
    now: u32,
) -> Option<String> {
    let mut signer = f.signer.clone();
    crate::dns::name::lowercase_wire(&mut signer);
    if signer != apex_wire {
        return Some("signer is not the zone apex".into());
    }
    if f.labels as usize != labels {
        return Some(format!("labels field {} should be {labels}", f.labels));
    }
    if f.original_ttl != rr.ttl {
        return Some(format!("original TTL {} differs from the RRset TTL {}", f.original_ttl, rr.ttl));
    }
    if now.wrapping_sub(f.inception) >= 0x8000_0000 {
        return Some(format!("not valid before {}", crate::dns::text::format_time(f.inception)));
    }
    if f.expiration.wrapping_sub(now) >= 0x8000_0000 {
        return Some(format!("expired at {}", crate::dns::text::format_time(f.expiration)));
    }
    let mut data = Vec::with_capacity(512);
    signed_data(&f.prefix(), owner_wire, rr, f.original_ttl, &mut data);
    let candidates: Vec<&PublicKey> = dnskeys
        .iter()
        .filter(|(d, _)| crate::crypto::dnskey::key_tag(d) == f.key_tag && d[3] == f.algorithm)
        .filter_map(|(_, k)| k.as_ref())
        .collect();
    if candidates.is_empty() {
        return Some("no matching DNSKEY".into());
    }
    if candidates.iter().any(|k| k.verify_data(&data, sig)) { None } else { Some("signature does not verify".into()) }
}

fn check_chain(zone: &Zone, rep: &mut Report) {
    let has_nsec = zone.nodes.iter().any(|n| n.rrset(code::NSEC).is_some());
    let param = zone.apex_node().rrset(code::NSEC3PARAM).and_then(|r| r.rdatas.first().cloned());
    match (has_nsec, param, zone.nsec3.is_empty()) {
        (true, None, true) => {
            rep.chain = "nsec".into();
            check_nsec(zone, rep);
        }
        (false, Some(p), false) => {
            rep.chain = "nsec3".into();
            check_nsec3(zone, &p, rep);
        }
        (false, None, true) => {
            rep.chain = "none".into();
            rep.chain_errors.push("no NSEC or NSEC3 chain".into());
        }
        _ => {
            rep.chain = "mixed".into();
            rep.chain_errors.push("both NSEC and NSEC3 records, or NSEC3 without NSEC3PARAM".into());
        }
    }
}

/// A copy of the zone's data without denial records, to rebuild the chain from.
fn stripped(zone: &Zone) -> Zone {
    let mut z = zone.clone();
    z.nsec3.clear();
    for n in &mut z.nodes {
        n.remove_rrset(code::NSEC);
        for r in &mut n.rrsets {
            r.sigs.clear();
        }
    }
    z
}

fn check_nsec(zone: &Zone, rep: &mut Report) {
    let mut expected = stripped(zone);
    crate::dnssec::nsec::add_chain(&mut expected);
    // The next name keeps its case (RFC 6840 section 5.1): compare without it.
    let folded = |rr: Option<&crate::zone::Rrset>| {
        rr.map(|r| {
            r.rdatas
                .iter()
                .map(|d| {
                    let mut v = d.to_vec();
                    crate::dns::name::lowercase_wire(&mut v);
                    v
                })
                .collect::<Vec<_>>()
        })
    };
    for (have, want) in zone.nodes.iter().zip(&expected.nodes) {
        let h = folded(have.rrset(code::NSEC));
        let w = folded(want.rrset(code::NSEC));
        if h != w {
            push_limited(&mut rep.chain_errors, || describe(have, h.is_some(), w.is_some(), "NSEC"));
        }
    }
}

fn describe(node: &Node, have: bool, want: bool, what: &str) -> String {
    match (have, want) {
        (false, true) => format!("{}: {what} missing", KeyName(&node.owner)),
        (true, false) => format!("{}: {what} present at a name that must not have one", KeyName(&node.owner)),
        _ => format!("{}: {what} next name or type bitmap wrong", KeyName(&node.owner)),
    }
}

/// Offset of the next-hashed-owner field in NSEC3 RDATA, and its length.
fn next_hash_field(rd: &[u8]) -> Option<(usize, usize)> {
    let salt_len = *rd.get(4)? as usize;
    let at = 5 + salt_len;
    let len = *rd.get(at)? as usize;
    (rd.len() >= at + 1 + len).then_some((at + 1, len))
}

/// Checks the NSEC3 chain: every name that must be covered is, nothing else
/// is, each record's flags, parameters and bitmap are right, and the next
/// hashes link the records in order into a closed ring. Empty non-terminals
/// that lead only to opt-out delegations may be present or not (RFC 5155 section 7.1).
fn check_nsec3(zone: &Zone, param: &[u8], rep: &mut Report) {
    if param.len() < 5 || param[0] != 1 {
        rep.chain_errors.push("NSEC3PARAM unsupported or malformed".into());
        return;
    }
    let salt_len = param[4] as usize;
    let iterations = u16::from_be_bytes([param[2], param[3]]);
    let salt = param.get(5..5 + salt_len).unwrap_or_default().to_vec();
    let opt_out = zone
        .nsec3
        .iter()
        .any(|n| n.rrset(code::NSEC3).and_then(|r| r.rdatas.first()).is_some_and(|d| d.get(1).is_some_and(|f| f & 1 == 1)));
    let base = stripped(zone);
    let p = Nsec3Params { iterations, salt, opt_out };
    let (max, min) = match (crate::dnssec::nsec3::chain(&base, &p, true), crate::dnssec::nsec3::chain(&base, &p, false)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            rep.chain_errors.push(e.to_string());
            return;
        }
    };
    let have: Vec<(&[u8], &[u8])> =
        zone.nsec3.iter().filter_map(|n| n.rrset(code::NSEC3).and_then(|r| r.rdatas.first()).map(|d| (&*n.owner, &**d))).collect();
    let expected: std::collections::BTreeMap<&[u8], &[u8]> =
        max.iter().filter_map(|n| n.rrsets.first().and_then(|r| r.rdatas.first()).map(|d| (&*n.owner, &**d))).collect();
    let present: BTreeSet<&[u8]> = have.iter().map(|(o, _)| *o).collect();
    for n in &min {
        if !present.contains(&*n.owner) {
            push_limited(&mut rep.chain_errors, || format!("NSEC3 {} missing", KeyName(&n.owner)));
        }
    }
    for (i, (owner, rd)) in have.iter().enumerate() {
        let Some(want) = expected.get(owner) else {
            push_limited(&mut rep.chain_errors, || format!("NSEC3 {} matches no name of the zone", KeyName(owner)));
            continue;
        };
        let (Some((at, len)), Some((wat, wlen))) = (next_hash_field(rd), next_hash_field(want)) else {
            push_limited(&mut rep.chain_errors, || format!("NSEC3 {}: malformed", KeyName(owner)));
            continue;
        };
        if rd[..at] != want[..wat] || rd[at + len..] != want[wat + wlen..] {
            push_limited(&mut rep.chain_errors, || format!("NSEC3 {}: flags, parameters or type bitmap wrong", KeyName(owner)));
        }
        let next_owner = have[(i + 1) % have.len()].0;
        let next_label = crate::dns::name::key_labels(next_owner).pop().unwrap_or_default();
        // An owner that is not a hash matches no next-hash field: reported below.
        let next_hash = data_encoding::BASE32HEX_NOPAD.decode(&next_label.to_ascii_uppercase()).unwrap_or_default();
        if rd[at..at + len] != next_hash[..] {
            push_limited(&mut rep.chain_errors, || {
                format!("NSEC3 {}: next hashed owner does not point to the next record", KeyName(owner))
            });
        }
    }
}
