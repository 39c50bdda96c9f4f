//! ZONEMD (RFC 8976): a digest over the whole signed zone, SIMPLE scheme, SHA-384.

use super::apex::ZONEMD_SHA384_LEN;
use crate::dns::name::wire_of_key;
use crate::dns::rtype::code;
use crate::zone::{Node, Zone};
use openssl::sha::Sha384;

/// Computes the digest over the zone and stores it in the apex ZONEMD record.
///
/// # Errors
/// None today; the signature keeps the pass's error type for uniformity.
pub fn update_digest(zone: &mut Zone) -> Result<(), openssl::error::ErrorStack> {
    let digest = digest(zone);
    if let Some(rr) = zone.apex_node_mut().rrset_mut(code::ZONEMD) {
        if let Some(rd) = rr.rdatas.first_mut() {
            let n = rd.len();
            rd[n - ZONEMD_SHA384_LEN..].copy_from_slice(&digest);
        }
        rr.sigs.clear();
    }
    Ok(())
}

/// The SIMPLE/SHA-384 digest of the zone (RFC 8976 section 3.3).
pub fn digest(zone: &Zone) -> [u8; 48] {
    let mut h = Sha384::new();
    // Zone nodes and NSEC3 nodes are each in canonical order; merge them.
    let (mut a, mut b) = (zone.nodes.iter().peekable(), zone.nsec3.iter().peekable());
    let mut first = true;
    loop {
        let node = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x.owner <= y.owner {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        let Some(node) = node else { break };
        digest_node(&mut h, node, first);
        first = false;
    }
    h.finish()
}

fn digest_node(h: &mut Sha384, node: &Node, apex: bool) {
    let owner = wire_of_key(&node.owner);
    let mut put = |rtype: u16, ttl: u32, rd: &[u8]| {
        h.update(&owner);
        h.update(&rtype.to_be_bytes());
        h.update(&1u16.to_be_bytes());
        h.update(&ttl.to_be_bytes());
        h.update(&(rd.len() as u16).to_be_bytes());
        h.update(rd);
    };
    // All RRSIGs at the node form one RRset of type RRSIG, sorted by RDATA.
    let mut sigs: Vec<(&[u8], u32)> =
        node.rrsets.iter().filter(|r| !(apex && r.rtype == code::ZONEMD)).flat_map(|r| r.sigs.iter().map(move |s| (&**s, r.ttl))).collect();
    sigs.sort_unstable();
    let mut sigs_done = false;
    for rr in &node.rrsets {
        if !sigs_done && rr.rtype > code::RRSIG {
            for (s, ttl) in &sigs {
                put(code::RRSIG, *ttl, s);
            }
            sigs_done = true;
        }
        if apex && rr.rtype == code::ZONEMD {
            continue;
        }
        for rd in &rr.rdatas {
            put(rr.rtype, rr.ttl, rd);
        }
    }
    if !sigs_done {
        for (s, ttl) in &sigs {
            put(code::RRSIG, *ttl, s);
        }
    }
}
