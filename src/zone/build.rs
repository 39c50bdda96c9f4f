//! Turns records as read into a checked [`Zone`].
//!
//! Sorts into canonical order (using both cores), groups RRsets, drops
//! duplicate records, makes each RRset's TTL one value, strips DNSSEC records
//! the signer will make again, and checks the zone: one SOA at the apex, NS at
//! the apex, no names outside the zone, no CNAME beside other data, nothing
//! below a DNAME, and the references between names (`super::checks`, which
//! also lists how these checks compare with BIND's and Knot's). Data below a zone cut is kept as glue or occluded data and
//! left unsigned.

use super::error::{Problem, SourcePos, Sources, Warning, ZoneError};
use super::model::{Node, NodeKind, Rrset, Zone};
use super::reader::{InputRecord, ReadZone};
use crate::dns::name::{KeyName, key_is_at_or_below};
use crate::dns::rtype::{self, code};
use rayon::prelude::*;

/// Options for building a zone.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Keep data below a DNAME as occluded (warn) instead of refusing the zone.
    pub allow_occluded: bool,
    /// Keep RRSIG, NSEC, NSEC3 and NSEC3PARAM records (for checking a signed
    /// zone): RRSIGs are attached to the RRsets they cover and NSEC3 records
    /// go to [`Zone::nsec3`].
    pub keep_dnssec: bool,
}

/// A checked zone and what was noticed while building it.
#[derive(Debug)]
pub struct Built {
    /// The zone.
    pub zone: Zone,
    /// Warnings (TTL mismatches, occluded data, removed DNSSEC records, ...).
    pub warnings: Vec<Warning>,
    /// RRSIG, NSEC, NSEC3 and NSEC3PARAM records removed from the input
    /// (DNSKEY, CDS and CDNSKEY stay for the engine, which decides).
    pub input_dnssec_removed: usize,
    /// Duplicate records dropped.
    pub duplicates_dropped: usize,
}

/// Builds a zone whose apex is `apex_key` from records read from `sources`.
///
/// # Errors
/// The first [`ZoneError`] found, naming file and line.
pub fn build(read: ReadZone, apex_key: &[u8], opts: &BuildOptions) -> Result<Built, ZoneError> {
    let ReadZone { mut records, sources } = read;
    let zone_name = KeyName(apex_key).to_string();
    let at = |pos: SourcePos, problem: Problem| ZoneError::At { at: sources.at(pos), problem };

    if let Some(r) = records.iter().find(|r| !key_is_at_or_below(&r.owner, apex_key)) {
        return Err(at(r.pos, Problem::OutOfZone { name: KeyName(&r.owner).to_string(), zone: zone_name }));
    }
    let before = records.len();
    let mut kept_sigs = Vec::new();
    if opts.keep_dnssec {
        let (sigs, rest): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| r.rtype == code::RRSIG);
        kept_sigs = sigs;
        records = rest;
    } else {
        records.retain(|r| !rtype::is_dnssec_generated(r.rtype));
    }
    let input_dnssec_removed = before - records.len() - kept_sigs.len();
    let mut warnings = Vec::new();
    if input_dnssec_removed > 0 {
        warnings.push(Warning {
            at: zone_name.clone(),
            message: format!(
                "removed {input_dnssec_removed} RRSIG/NSEC/NSEC3/NSEC3PARAM records from the input; the zone is signed afresh"
            ),
        });
    }

    // In place (no second copy of the records); `seq` keeps file order within an
    // RRset, so "the first TTL" is the file's first. Zones already in canonical
    // order (a signer's own output) skip the sort.
    let order = |a: &InputRecord, b: &InputRecord| a.owner.cmp(&b.owner).then(a.rtype.cmp(&b.rtype)).then(a.seq.cmp(&b.seq));
    if !records.par_windows(2).all(|w| order(&w[0], &w[1]) != std::cmp::Ordering::Greater) {
        records.par_sort_unstable_by(order);
    }

    let mut nodes: Vec<Node> = Vec::new();
    // Position of the first record of every RRset, and where each node's RRsets start, for errors.
    let mut positions: Vec<SourcePos> = Vec::new();
    let mut duplicates_dropped = 0;
    // Built from the end so that the record buffer can shrink as nodes grow:
    // the two never reach their full size together (this is the peak-memory
    // phase of a large zone).
    let node_count = 1 + records.par_windows(2).filter(|w| w[0].owner != w[1].owner).count();
    nodes.reserve_exact(node_count);
    while let Some(last) = records.last() {
        let mut start = records.len() - 1;
        while start > 0 && records[start - 1].owner == last.owner && records[start - 1].rtype == last.rtype {
            start -= 1;
        }
        let group: Vec<InputRecord> = records.drain(start..).collect();
        if records.capacity() > records.len() + records.len() / 4 + 4096 {
            records.shrink_to_fit();
        }
        let head_pos = group[0].pos;
        let ttl = group[0].ttl;
        if let Some(other) = group.iter().find(|r| r.ttl != ttl) {
            warnings.push(Warning {
                at: sources.at(other.pos),
                message: format!(
                    "{} {} RRset has differing TTLs ({} and {}); using {}",
                    KeyName(&group[0].owner),
                    rtype::mnemonic(group[0].rtype),
                    ttl,
                    other.ttl,
                    ttl
                ),
            });
        }
        let rtype = group[0].rtype;
        let owner = group[0].owner.clone();
        let mut rdatas: Vec<Box<[u8]>> = group.into_iter().map(|r| r.rdata).collect();
        rdatas.sort_unstable();
        let n = rdatas.len();
        rdatas.dedup();
        rdatas.shrink_to_fit();
        duplicates_dropped += n - rdatas.len();
        let rrset = Rrset { rtype, ttl, rdatas, sigs: Vec::new() };
        match nodes.last_mut() {
            Some(node) if node.owner == owner => node.rrsets.push(rrset),
            _ => nodes.push(Node { owner, kind: NodeKind::Authoritative, rrsets: vec![rrset] }),
        }
        positions.push(head_pos);
    }
    drop(records);
    nodes.reverse();
    positions.reverse();
    let mut node_starts = Vec::with_capacity(nodes.len());
    let mut offset = 0;
    for node in &mut nodes {
        node.rrsets.reverse();
        node_starts.push(offset);
        offset += node.rrsets.len();
    }
    warnings.reverse();

    let mut nsec3_nodes = Vec::new();
    if opts.keep_dnssec {
        attach_sigs(&mut nodes, kept_sigs);
        let mut kept = Vec::with_capacity(nodes.len());
        let mut kept_starts = Vec::with_capacity(nodes.len());
        for (n, s) in nodes.into_iter().zip(node_starts) {
            if n.rrsets.iter().all(|r| r.rtype == code::NSEC3) {
                nsec3_nodes.push(n);
            } else {
                kept.push(n);
                kept_starts.push(s);
            }
        }
        nodes = kept;
        node_starts = kept_starts;
    }
    if nodes.first().is_none_or(|n| &*n.owner != apex_key) || nodes[0].rrset(code::SOA).is_none() {
        return Err(ZoneError::Zone { zone: zone_name, problem: Problem::MissingSoa });
    }
    let pos = Positions { rrsets: &positions, node_starts: &node_starts };
    classify(&mut nodes, &pos, &sources, opts, &mut warnings)?;
    super::checks::check_references(&nodes, apex_key, &|i, rtype| sources.at(pos.of(i, &nodes[i], Some(rtype))), &mut warnings)?;
    if nodes[0].rrset(code::SOA).is_some_and(|r| r.rdatas.len() > 1) {
        return Err(ZoneError::Zone { zone: zone_name, problem: Problem::DuplicateSoa });
    }
    if nodes[0].rrset(code::NS).is_none() {
        return Err(ZoneError::Zone { zone: zone_name, problem: Problem::MissingApexNs });
    }
    Ok(Built { zone: Zone { apex: apex_key.to_vec(), nodes, nsec3: nsec3_nodes }, warnings, input_dnssec_removed, duplicates_dropped })
}

/// Attaches RRSIG records to the RRsets they cover (an RRSIG covering
/// nothing present is kept on an RRset of type RRSIG so checks can see it).
fn attach_sigs(nodes: &mut [Node], sigs: Vec<InputRecord>) {
    for s in sigs {
        let covered = if s.rdata.len() >= 2 { u16::from_be_bytes([s.rdata[0], s.rdata[1]]) } else { 0 };
        let Ok(i) = nodes.binary_search_by(|n| (*n.owner).cmp(&s.owner)) else {
            continue;
        };
        let node = &mut nodes[i];
        match node.rrset_mut(covered) {
            Some(rr) => rr.sigs.push(s.rdata),
            None => match node.rrset_mut(code::RRSIG) {
                Some(rr) => rr.rdatas.push(s.rdata),
                None => node.put_rrset(Rrset { rtype: code::RRSIG, ttl: s.ttl, rdatas: vec![s.rdata], sigs: Vec::new() }),
            },
        }
    }
}

/// Source positions of the RRsets of the nodes being built.
struct Positions<'a> {
    rrsets: &'a [SourcePos],
    node_starts: &'a [usize],
}

impl Positions<'_> {
    /// Position of the RRset of type `rtype` at node `i`, or of the node's first RRset.
    fn of(&self, i: usize, node: &Node, rtype: Option<u16>) -> SourcePos {
        let start = self.node_starts[i];
        let idx = rtype.and_then(|t| node.rrsets.iter().position(|r| r.rtype == t)).unwrap_or(0);
        self.rrsets.get(start + idx).copied().unwrap_or_default()
    }
}

/// Marks each node apex, authoritative, delegation or occluded, and checks
/// what depends on that. Relies on canonical order: everything below a name
/// follows it directly.
fn classify(
    nodes: &mut [Node],
    positions: &Positions<'_>,
    sources: &Sources,
    opts: &BuildOptions,
    warnings: &mut Vec<Warning>,
) -> Result<(), ZoneError> {
    let mut cut: Option<std::sync::Arc<[u8]>> = None;
    let mut dname: Option<std::sync::Arc<[u8]>> = None;
    for (i, node) in nodes.iter_mut().enumerate() {
        let pos = positions.of(i, node, None);
        let at_type =
            |node: &Node, rtype: u16, problem: Problem| ZoneError::At { at: sources.at(positions.of(i, node, Some(rtype))), problem };
        let at = |problem: Problem| ZoneError::At { at: sources.at(pos), problem };
        let name = || KeyName(&node.owner).to_string();
        if i == 0 {
            node.kind = NodeKind::Apex;
        } else {
            if cut.as_deref().is_some_and(|c| !key_is_at_or_below(&node.owner, c)) {
                cut = None;
            }
            if dname.as_deref().is_some_and(|d| !key_is_at_or_below(&node.owner, d)) {
                dname = None;
            }
            // Also below a cut or a DNAME: an SOA is only ever at the apex.
            if node.rrset(code::SOA).is_some() {
                return Err(at_type(node, code::SOA, Problem::SoaNotAtApex(name())));
            }
            if let Some(d) = dname.as_deref() {
                if !opts.allow_occluded {
                    return Err(at(Problem::BelowDname { name: name(), dname: KeyName(d).to_string() }));
                }
                warnings.push(Warning {
                    at: sources.at(pos),
                    message: format!("{} is below the DNAME at {}: occluded, left unsigned", name(), KeyName(d)),
                });
                node.kind = NodeKind::Occluded;
                continue;
            }
            if let Some(c) = cut.as_deref() {
                node.kind = NodeKind::Occluded;
                if node.rrsets.iter().any(|r| !matches!(r.rtype, code::A | code::AAAA)) {
                    warnings.push(Warning {
                        at: sources.at(pos),
                        message: format!("{} is below the zone cut at {}: occluded, left unsigned", name(), KeyName(c)),
                    });
                }
                continue;
            }
            if node.rrset(code::NS).is_some() {
                node.kind = NodeKind::Delegation;
                cut = Some(node.owner.clone());
            } else if node.rrset(code::DS).is_some() {
                return Err(at_type(node, code::DS, Problem::DsNotAtDelegation(name())));
            }
        }
        if let Some(c) = node.rrset(code::CNAME) {
            if c.rdatas.len() > 1 {
                return Err(at_type(node, code::CNAME, Problem::MultipleCname(name())));
            }
            if let Some(other) = node.rrsets.iter().find(|r| !matches!(r.rtype, code::CNAME | code::RRSIG | code::NSEC)) {
                return Err(at_type(
                    node,
                    code::CNAME,
                    Problem::CnameAndOther { name: name(), other: rtype::mnemonic(other.rtype).into_owned() },
                ));
            }
        }
        if let Some(d) = node.rrset(code::DNAME) {
            if d.rdatas.len() > 1 {
                return Err(at_type(node, code::DNAME, Problem::MultipleDname(name())));
            }
            if node.kind != NodeKind::Delegation {
                dname = Some(node.owner.clone());
            }
        }
        if node.kind == NodeKind::Apex && node.rrset(code::DS).is_some() {
            return Err(at(Problem::DsNotAtDelegation(name())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::{key_from_wire, parse_name};
    use crate::zone::reader::read_str;

    fn build_str(z: &str) -> Result<Built, ZoneError> {
        let origin = parse_name(b"example.", None).unwrap();
        let read = read_str("t.zone", z.as_bytes(), &origin)?;
        build(read, &key_from_wire(&origin), &BuildOptions::default())
    }

    const HEAD: &str = "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";

    #[test]
    fn classifies_and_dedups() {
        let z = format!(
            "{HEAD}sub NS ns.sub\nsub DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\nns.sub A 192.0.2.2\nWWW A 192.0.2.3\nwww A 192.0.2.3\nwww 60 A 192.0.2.4\n"
        );
        let b = build_str(&z).unwrap();
        let kinds: Vec<_> = b.zone.nodes.iter().map(|n| (KeyName(&n.owner).to_string(), n.kind)).collect();
        assert_eq!(kinds[0].1, NodeKind::Apex);
        assert!(kinds.contains(&("sub.example.".into(), NodeKind::Delegation)));
        assert!(kinds.contains(&("ns.sub.example.".into(), NodeKind::Occluded)));
        assert_eq!(b.duplicates_dropped, 1);
        let www = b.zone.nodes.iter().find(|n| KeyName(&n.owner).to_string() == "www.example.").unwrap();
        assert_eq!(www.rrsets[0].rdatas.len(), 2);
        assert_eq!(www.rrsets[0].ttl, 300);
        assert!(b.warnings.iter().any(|w| w.message.contains("differing TTLs") && w.at == "t.zone:10"));
    }

    #[test]
    fn refuses_bad_zones_with_position() {
        let cases = [
            ("$TTL 1\n@ NS ns\n", "no SOA"),
            (&format!("{HEAD}@ SOA ns2 h 1 2 3 4 5\n") as &str, "more than one SOA"),
            (&format!("{HEAD}www.other. A 192.0.2.1\n"), "t.zone:5: www.other. is outside the zone"),
            (&format!("{HEAD}www CNAME ns\nwww A 192.0.2.1\n"), "t.zone:5: CNAME at www.example. beside other data"),
            (&format!("{HEAD}www CNAME ns\nwww CNAME ns2\n"), "more than one CNAME"),
            (&format!("{HEAD}d DNAME x.\na.d A 192.0.2.1\n"), "t.zone:6: a.d.example. is below the DNAME"),
            (&format!("{HEAD}x DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n"), "not a delegation point"),
        ];
        for (z, want) in cases {
            let e = build_str(z).unwrap_err().to_string();
            assert!(e.contains(want), "{e} does not contain {want}");
        }
    }
}
