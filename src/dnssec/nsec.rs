//! NSEC chains (RFC 4034 section 4, RFC 4035 section 2.3).
//!
//! Every name that is not occluded gets an NSEC pointing to the next such
//! name in canonical order; the last points back to the apex.

use crate::dns::bitmap;
use crate::dns::name::wire_from_key;
use crate::dns::rtype::code;
use crate::zone::{NodeKind, Rrset, Zone};

/// Adds (or replaces) the NSEC RRset at every non-occluded node.
pub fn add_chain(zone: &mut Zone) {
    let ttl = zone.denial_ttl();
    let chain: Vec<usize> = zone.nodes.iter().enumerate().filter(|(_, n)| n.kind != NodeKind::Occluded).map(|(i, _)| i).collect();
    for (pos, &i) in chain.iter().enumerate() {
        let next = chain[(pos + 1) % chain.len()];
        let mut rdata = Vec::with_capacity(64);
        wire_from_key(&zone.nodes[next].owner, &mut rdata);
        let node = &mut zone.nodes[i];
        let mut types = node.authoritative_types();
        types.extend_from_slice(&[code::RRSIG, code::NSEC]);
        rdata.extend_from_slice(&bitmap::encode(&mut types));
        node.put_rrset(Rrset::single(code::NSEC, ttl, rdata));
    }
}
