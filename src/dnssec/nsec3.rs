//! NSEC3 chains (RFC 5155), with the RFC 9276 defaults (no extra iterations,
//! empty salt) and opt-out.
//!
//! Hashed: every authoritative name, every delegation (unless opt-out and
//! insecure), and every empty non-terminal between the apex and those names.

use crate::dns::bitmap;
use crate::dns::name::{key_from_wire, key_is_at_or_below, key_parent, wire_of_key};
use crate::dns::rtype::code;
use crate::zone::{Node, NodeKind, Rrset, Zone};
use openssl::sha::Sha1;
use rayon::prelude::*;

/// NSEC3 parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Nsec3Params {
    /// Additional hash iterations (RFC 9276: 0).
    pub iterations: u16,
    /// Salt (RFC 9276: empty).
    pub salt: Vec<u8>,
    /// Opt-out: insecure delegations get no NSEC3 (RFC 5155 section 6).
    pub opt_out: bool,
}

/// Why a chain could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Nsec3Error {
    /// Two names hash to the same value (RFC 5155 section 7.1: choose another salt).
    #[error("NSEC3 hash collision between {0} and {1}; choose another salt")]
    Collision(String, String),
}

/// The iterated SHA-1 hash of RFC 5155 section 5 over a wire name (lowercased by the caller).
pub fn hash_name(wire: &[u8], salt: &[u8], iterations: u16) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(wire);
    h.update(salt);
    let mut d = h.finish();
    for _ in 0..iterations {
        let mut h = Sha1::new();
        h.update(&d);
        h.update(salt);
        d = h.finish();
    }
    d
}

/// NSEC3PARAM RDATA for the parameters (flags 0: opt-out is never set there).
pub fn param_rdata(p: &Nsec3Params) -> Vec<u8> {
    let mut v = vec![1, 0];
    v.extend_from_slice(&p.iterations.to_be_bytes());
    v.push(p.salt.len() as u8);
    v.extend_from_slice(&p.salt);
    v
}

/// Builds the NSEC3 chain into `zone.nsec3` (the NSEC3PARAM at the apex is added by the caller).
///
/// With opt-out, empty non-terminals that lead only to insecure delegations
/// get an NSEC3 record too: RFC 5155 section 7.1 allows leaving them out, and
/// keeping them keeps every validator content.
///
/// # Errors
/// [`Nsec3Error::Collision`].
pub fn add_chain(zone: &mut Zone, p: &Nsec3Params) -> Result<(), Nsec3Error> {
    let mut fresh = chain(zone, p, true)?;
    keep_unchanged_signatures(&zone.nsec3, &mut fresh);
    zone.nsec3 = fresh;
    Ok(())
}

/// The NSEC3 nodes of a zone, in hash order. `opt_out_ents` says whether
/// empty non-terminals that lead only to opt-out delegations are included.
///
/// # Errors
/// [`Nsec3Error::Collision`].
pub fn chain(zone: &Zone, p: &Nsec3Params, opt_out_ents: bool) -> Result<Vec<Node>, Nsec3Error> {
    let ttl = zone.denial_ttl();
    // (owner key, types) of every name to hash; empty types = empty non-terminal.
    let mut names: Vec<(Vec<u8>, Vec<u16>)> = Vec::new();
    let mut ents: Vec<Vec<u8>> = Vec::new();
    let nodes = &zone.nodes;
    for node in nodes.iter().filter(|n| n.kind != NodeKind::Occluded) {
        let insecure = node.kind == NodeKind::Delegation && node.rrset(code::DS).is_none();
        if !(insecure && p.opt_out) {
            names.push((node.owner.to_vec(), bitmap_types(node)));
        } else if !opt_out_ents {
            continue;
        }
        let mut cur: &[u8] = &node.owner;
        while let Some(parent) = key_parent(cur) {
            if !key_is_at_or_below(parent, &zone.apex) || parent.len() < zone.apex.len() {
                break;
            }
            if nodes.binary_search_by(|n| (*n.owner).cmp(parent)).is_ok() {
                break;
            }
            ents.push(parent.to_vec());
            cur = parent;
        }
    }
    ents.sort_unstable();
    ents.dedup();
    names.extend(ents.into_iter().map(|k| (k, Vec::new())));

    let mut hashed: Vec<([u8; 20], usize)> =
        names.par_iter().enumerate().map(|(i, (k, _))| (hash_name(&wire_of_key(k), &p.salt, p.iterations), i)).collect();
    hashed.par_sort_unstable();
    for w in hashed.windows(2) {
        if w[0].0 == w[1].0 {
            let n = |i: usize| crate::dns::name::KeyName(&names[i].0).to_string();
            return Err(Nsec3Error::Collision(n(w[0].1), n(w[1].1)));
        }
    }
    let apex = zone.apex.clone();
    let flags = u8::from(p.opt_out);
    let count = hashed.len();
    let fresh: Vec<Node> = (0..count)
        .into_par_iter()
        .map(|i| {
            let (hash, idx) = &hashed[i];
            let next = &hashed[(i + 1) % count].0;
            let mut rd = Vec::with_capacity(48 + p.salt.len());
            rd.extend_from_slice(&[1, flags]);
            rd.extend_from_slice(&p.iterations.to_be_bytes());
            rd.push(p.salt.len() as u8);
            rd.extend_from_slice(&p.salt);
            rd.push(20);
            rd.extend_from_slice(next);
            let mut types = names[*idx].1.clone();
            rd.extend_from_slice(&bitmap::encode(&mut types));
            let label = data_encoding::BASE32HEX_NOPAD.encode(hash).to_ascii_lowercase();
            let mut wire = vec![label.len() as u8];
            wire.extend_from_slice(label.as_bytes());
            wire.extend_from_slice(&wire_of_key(&apex));
            Node { owner: key_from_wire(&wire).into(), kind: NodeKind::Authoritative, rrsets: vec![Rrset::single(code::NSEC3, ttl, rd)] }
        })
        .collect();
    Ok(fresh)
}

/// Records that did not change keep their signatures (both lists are in owner order).
fn keep_unchanged_signatures(old: &[Node], fresh: &mut [Node]) {
    let mut o = old.iter().peekable();
    for n in fresh.iter_mut() {
        while o.peek().is_some_and(|p| p.owner < n.owner) {
            o.next();
        }
        if let Some(prev) = o.peek().filter(|p| p.owner == n.owner)
            && let (Some(a), Some(b)) = (prev.rrsets.first(), n.rrsets.first_mut())
            && a.ttl == b.ttl
            && a.rdatas == b.rdatas
        {
            b.sigs = a.sigs.clone();
        }
    }
}

/// Types listed in a name's NSEC3 bitmap: its authoritative types, plus
/// RRSIG where anything at the name is signed.
fn bitmap_types(node: &Node) -> Vec<u16> {
    let mut types = node.authoritative_types();
    let signed = match node.kind {
        NodeKind::Delegation => node.rrset(code::DS).is_some(),
        _ => !types.is_empty(),
    };
    if signed {
        types.push(code::RRSIG);
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::parse_name;

    #[test]
    fn rfc5155_appendix_a_hashes() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let cases = [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
        ];
        for (name, want) in cases {
            let h = hash_name(&parse_name(name.as_bytes(), None).unwrap(), &salt, 12);
            assert_eq!(data_encoding::BASE32HEX_NOPAD.encode(&h).to_ascii_lowercase(), want, "{name}");
        }
    }
}
