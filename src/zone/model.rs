//! The in-memory zone the engine signs.
//!
//! Nodes are kept in canonical order (RFC 4034 section 6.1) and each RRset
//! carries its own signatures. That is the shape incremental re-signing needs:
//! a signing pass looks at every RRset's existing RRSIGs and makes only the
//! ones that are missing or due, so a full signing is simply the case where
//! nothing can be reused.

use crate::dns::name::wire_of_key;
use crate::dns::rtype::code;

/// One RRset: same owner, class IN, same type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrset {
    /// Record type.
    pub rtype: u16,
    /// TTL of every record of the set.
    pub ttl: u32,
    /// RDATA in canonical wire form, sorted, without duplicates.
    pub rdatas: Vec<Box<[u8]>>,
    /// RRSIG RDATA covering this set (one per signing key).
    pub sigs: Vec<Box<[u8]>>,
}

impl Rrset {
    /// A new RRset with one record and no signatures.
    pub fn single(rtype: u16, ttl: u32, rdata: Vec<u8>) -> Self {
        Rrset { rtype, ttl, rdatas: vec![rdata.into_boxed_slice()], sigs: Vec::new() }
    }
}

/// What a node is, for signing and for denial of existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NodeKind {
    /// The zone apex.
    Apex,
    /// Authoritative data: every RRset is signed.
    Authoritative,
    /// A zone cut (NS below the apex): only DS (and the denial record) is signed.
    Delegation,
    /// Below a zone cut (glue) or below a DNAME: not signed, not in the chain.
    Occluded,
}

/// All RRsets at one owner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Owner, canonical key (see `dns::name`); shared with the reader's records.
    pub owner: std::sync::Arc<[u8]>,
    /// What the node is.
    pub kind: NodeKind,
    /// RRsets, sorted by type.
    pub rrsets: Vec<Rrset>,
}

impl Node {
    /// The RRset of a type, if present.
    pub fn rrset(&self, rtype: u16) -> Option<&Rrset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }

    /// The RRset of a type, mutable.
    pub fn rrset_mut(&mut self, rtype: u16) -> Option<&mut Rrset> {
        self.rrsets.iter_mut().find(|r| r.rtype == rtype)
    }

    /// Adds or replaces an RRset, keeping type order. An RRset that is
    /// already there with the same TTL and data is left alone, signatures
    /// and all: unchanged data keeps its valid signatures.
    pub fn put_rrset(&mut self, rrset: Rrset) {
        match self.rrsets.binary_search_by_key(&rrset.rtype, |r| r.rtype) {
            Ok(i) => {
                let old = &mut self.rrsets[i];
                if old.ttl != rrset.ttl || old.rdatas != rrset.rdatas {
                    *old = rrset;
                }
            }
            Err(i) => self.rrsets.insert(i, rrset),
        }
    }

    /// Removes the RRset of a type.
    pub fn remove_rrset(&mut self, rtype: u16) -> Option<Rrset> {
        let i = self.rrsets.iter().position(|r| r.rtype == rtype)?;
        Some(self.rrsets.remove(i))
    }

    /// True when this RRset must carry signatures (RFC 4035 section 2.2).
    pub fn signs(&self, rtype: u16) -> bool {
        match self.kind {
            NodeKind::Apex | NodeKind::Authoritative => rtype != code::RRSIG,
            NodeKind::Delegation => matches!(rtype, code::DS | code::NSEC),
            NodeKind::Occluded => false,
        }
    }

    /// Types that the denial-of-existence record at this node lists (besides RRSIG and NSEC/NSEC3 itself).
    pub fn authoritative_types(&self) -> Vec<u16> {
        self.rrsets
            .iter()
            .map(|r| r.rtype)
            .filter(|&t| match self.kind {
                NodeKind::Delegation => matches!(t, code::NS | code::DS),
                NodeKind::Occluded => false,
                _ => t != code::RRSIG && t != code::NSEC,
            })
            .collect()
    }
}

/// A zone: apex, nodes in canonical order, and the NSEC3 nodes if any.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// Apex name, canonical key.
    pub apex: Vec<u8>,
    /// All nodes holding data, canonical order; `nodes[0]` is the apex.
    pub nodes: Vec<Node>,
    /// NSEC3 nodes (hashed owner names), in hash order.
    pub nsec3: Vec<Node>,
}

impl Zone {
    /// Apex name in wire form.
    pub fn apex_wire(&self) -> Vec<u8> {
        wire_of_key(&self.apex)
    }

    /// The apex node.
    pub fn apex_node(&self) -> &Node {
        &self.nodes[0]
    }

    /// The apex node, mutable.
    pub fn apex_node_mut(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    /// The SOA RDATA (the zone builder guarantees exactly one).
    pub fn soa(&self) -> &[u8] {
        self.apex_node().rrset(code::SOA).and_then(|r| r.rdatas.first()).map_or(&[], |r| r)
    }

    /// SOA TTL.
    pub fn soa_ttl(&self) -> u32 {
        self.apex_node().rrset(code::SOA).map_or(0, |r| r.ttl)
    }

    /// SOA MINIMUM field.
    pub fn soa_minimum(&self) -> u32 {
        let s = self.soa();
        let n = s.len();
        if n < 20 {
            return 0;
        }
        u32::from_be_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]])
    }

    /// SOA serial.
    pub fn soa_serial(&self) -> u32 {
        let s = self.soa();
        let n = s.len();
        if n < 20 {
            return 0;
        }
        u32::from_be_bytes([s[n - 20], s[n - 19], s[n - 18], s[n - 17]])
    }

    /// Replaces the SOA serial.
    pub fn set_soa_serial(&mut self, serial: u32) {
        let Some(rr) = self.apex_node_mut().rrset_mut(code::SOA) else { return };
        let Some(rd) = rr.rdatas.first_mut() else { return };
        let n = rd.len();
        if n >= 20 && rd[n - 20..n - 16] != serial.to_be_bytes() {
            rd[n - 20..n - 16].copy_from_slice(&serial.to_be_bytes());
            rr.sigs.clear();
        }
    }

    /// TTL for NSEC/NSEC3 records: min(SOA MINIMUM, SOA TTL) (RFC 9077).
    pub fn denial_ttl(&self) -> u32 {
        self.soa_minimum().min(self.soa_ttl())
    }

    /// Number of records (without signatures and denial records).
    pub fn record_count(&self) -> usize {
        self.nodes.iter().flat_map(|n| &n.rrsets).map(|r| r.rdatas.len()).sum::<usize>()
            + self.nsec3.iter().flat_map(|n| &n.rrsets).map(|r| r.rdatas.len()).sum::<usize>()
    }
}
