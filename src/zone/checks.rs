//! Checks between records of a classified zone: name servers, mail and
//! service targets, DNAME beside NS, wildcard NS, AliasMode parameters.
//!
//! # The checks of `named-checkzone` and `kzonecheck`, and what hwsigner does
//!
//! hwsigner refuses (exit 3, `file:line: owner TYPE: reason`) what either
//! checker refuses by default and can never be served correctly, and warns
//! where `named-checkzone` only warns. Checked with BIND 9.18's
//! `named-checkzone -i full` and Knot 3.x's `kzonecheck`; the fixtures are in
//! `tests/refused_zones.rs`.
//!
//! | Check (who makes it) | hwsigner |
//! |---|---|
//! | SOA missing at the apex (both) | refused |
//! | more than one SOA (named; knot keeps one) | refused |
//! | SOA not at the apex, also below a cut (named) | refused |
//! | NS missing at the apex (both) | refused |
//! | CNAME beside other data, also at the apex and beside DNAME (both) | refused |
//! | more than one CNAME (both) / more than one DNAME (knot) | refused |
//! | data below a DNAME, also below an apex DNAME (knot) | refused, or kept unsigned with `--allow-occluded` |
//! | NS beside DNAME below the apex (knot) | refused |
//! | NS at a wildcard name (named) | refused |
//! | in-zone name server (apex or delegation) without A/AAAA, a CNAME, or an address written as a name; wildcards answer for names that do not exist (named: fails at the apex, warns below; knot: "missing glue record") | refused |
//! | name server below a DNAME (named warns, knot refuses as missing glue) | refused |
//! | name server below a sibling delegation without glue (named warns, knot accepts) | warning |
//! | MX/SRV target that is a CNAME, has no address in the zone, or looks like an address (named warns) | warning |
//! | names outside the zone (named and knot drop them with a warning) | refused: a wrong `$ORIGIN` or zone name is the likelier cause, and silently dropping data is worse |
//! | RRset members with different TTLs (named warns) | warning, first TTL used |
//! | duplicate records (named `check-dup-records` warns) | dropped, counted in the summary |
//! | DS where there is no delegation, also at the apex (neither checker) | refused: RFC 4035 section 2.4 puts DS only at delegations, and a DS elsewhere is never used |
//! | DS digest length for digest types 1-6, digest type 0 (knot "invalid digest length in DS") | refused (`dns::keydata`) |
//! | DS digest types knot does not implement (3, 5, 6, unassigned; knot "invalid algorithm in DS") | kept: IANA-assigned or unknown digests are ignored by validators (RFC 4035 section 5.2), and named accepts them |
//! | DNSKEY key material for its algorithm, protocol 3 (knot "invalid DNSKEY" with `-d on`) | refused (`dns::keydata`); kept foreign ECDSA/RSA/Ed25519 keys are also parsed by the engine before signing |
//! | meta-types and query types 0, 41, 128-255; obsolete MD/MF (named "invalid use of a meta type", "obsolete"; knot only refuses the mnemonics it does not know) | refused (`dns::rtype::not_zone_data`) |
//! | SVCB/HTTPS: key order, `mandatory` rules, `no-default-alpn` without `alpn`, value lengths (named all; knot the `mandatory` rules) | refused (`dns::svcb::check`) |
//! | SVCB/HTTPS AliasMode with SvcParams (neither; RFC 9460 "SHOULD NOT") | warning |
//! | CDS/CDNSKEY consistency with DNSKEY (named; knot with `-d on`) | input CDS/CDNSKEY are dropped; the signer makes them from its KSKs when asked |
//! | RRSIG/NSEC/NSEC3/NSEC3PARAM checks (knot `-d on`, named `-D`) | input DNSSEC records are dropped everywhere and made again; the output is checked by `hwsigner verify` and the validators in the tests |
//! | NSEC3 next hashed owner of the wrong length for SHA-1 (both) | refused (`dns::rdata`), though input NSEC3 records are dropped |
//! | NSEC3PARAM flags/algorithm (knot) | input NSEC3PARAM dropped; the signer writes flags 0, algorithm 1 |
//! | check-names (host names in NS/MX/SOA, named) | not applied: a naming policy, not zone validity (the brief leaves it off) |
//! | check-spf, check-wildcard (named warnings about SPF and wildcards in non-terminals) | not applied: advice on content, not validity |
//! | check-sibling, check-mx/MX as address (named) | warning (see above) |
//! | `$GENERATE` (named) | refused: expand it before signing |

use super::error::{Problem, Warning, ZoneError};
use super::model::{Node, NodeKind};
use crate::dns::name::{KeyName, key_from_wire, key_is_at_or_below, key_is_wildcard, key_parent, wire_name_len};
use crate::dns::rtype::code;

/// Where `name` is, as seen from the zone's data.
enum Place<'a> {
    /// Not in the zone (another zone's server: nothing to check here).
    Outside,
    /// At or below the DNAME at this node.
    BelowDname(&'a Node),
    /// At or below the delegation at this node.
    BelowCut(&'a Node, Option<&'a Node>),
    /// Authoritative data (or a name without data).
    Inside(Option<&'a Node>),
}

fn find<'a>(nodes: &'a [Node], key: &[u8]) -> Option<&'a Node> {
    nodes.binary_search_by(|n| (*n.owner).cmp(key)).ok().map(|i| &nodes[i])
}

/// Where `key` lies: the closest enclosing DNAME or zone cut decides.
fn place<'a>(nodes: &'a [Node], apex: &[u8], key: &[u8]) -> Place<'a> {
    if !key_is_at_or_below(key, apex) {
        return Place::Outside;
    }
    let target = answering(nodes, apex, key);
    // Walk from the apex down: the highest cut or DNAME above the name wins.
    let mut ancestors = Vec::new();
    let mut k = key;
    while let Some(p) = key_parent(k) {
        if !key_is_at_or_below(p, apex) {
            break;
        }
        ancestors.push(p);
        k = p;
    }
    for a in ancestors.iter().rev() {
        let Some(node) = find(nodes, a) else { continue };
        if node.rrset(code::DNAME).is_some() && node.kind != NodeKind::Delegation {
            return Place::BelowDname(node);
        }
        if node.kind == NodeKind::Delegation {
            return Place::BelowCut(node, target);
        }
    }
    match target {
        Some(n) if n.kind == NodeKind::Delegation => Place::BelowCut(n, Some(n)),
        _ => Place::Inside(target),
    }
}

/// True when some name at or below `key` holds data (the name exists, if
/// only as an empty non-terminal).
fn exists(nodes: &[Node], key: &[u8]) -> bool {
    let i = nodes.partition_point(|n| *n.owner < *key);
    nodes.get(i).is_some_and(|n| key_is_at_or_below(&n.owner, key))
}

/// The node an address query for `key` is answered from: the name itself,
/// or, when it does not exist, the wildcard at its closest encloser (RFC 4592
/// section 3.3.1; knot and named follow wildcards for glue checks too).
fn answering<'a>(nodes: &'a [Node], apex: &[u8], key: &[u8]) -> Option<&'a Node> {
    if exists(nodes, key) {
        return find(nodes, key);
    }
    let mut k = key;
    while let Some(p) = key_parent(k) {
        if !key_is_at_or_below(p, apex) {
            return None;
        }
        if exists(nodes, p) {
            let mut wildcard = p.to_vec();
            wildcard.extend_from_slice(&[b'*', 0, 0]);
            return find(nodes, &wildcard);
        }
        k = p;
    }
    None
}

fn has_address(node: Option<&Node>) -> bool {
    node.is_some_and(|n| n.rrset(code::A).is_some() || n.rrset(code::AAAA).is_some())
}

/// True when the first label of a name is a decimal octet, as in `192.0.2.1`
/// written where a name belongs (it becomes `192.0.2.1.example.`).
fn looks_like_address(key: &[u8], apex: &[u8]) -> bool {
    let text = KeyName(key).to_string();
    let zone = KeyName(apex).to_string();
    let rel = text.strip_suffix(&zone).unwrap_or(&text).trim_end_matches('.');
    rel.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The target name of MX (preference, name) and SRV (priority, weight, port, name) RDATA.
fn target_of(rtype: u16, rdata: &[u8]) -> Option<Vec<u8>> {
    let off = if rtype == code::MX { 2 } else { 6 };
    let name = rdata.get(off..)?;
    let n = wire_name_len(name)?;
    (n > 1).then(|| key_from_wire(&name[..n]))
}

/// Checks the zone's references between names; `at(i, rtype)` gives the
/// `file:line` of the RRset of type `rtype` at node `i`.
///
/// # Errors
/// The first refusal (see the module table).
pub fn check_references(
    nodes: &[Node],
    apex: &[u8],
    at: &dyn Fn(usize, u16) -> String,
    warnings: &mut Vec<Warning>,
) -> Result<(), ZoneError> {
    // Missing sibling glue is common and harmless (resolvers look the name up
    // in the sibling zone): one warning with the first case and a count.
    let mut sibling: Option<Warning> = None;
    let mut siblings = 0usize;
    for (i, node) in nodes.iter().enumerate() {
        if node.kind == NodeKind::Occluded {
            continue;
        }
        let owner = || KeyName(&node.owner).to_string();
        if i > 0 && node.rrset(code::NS).is_some() {
            if node.rrset(code::DNAME).is_some() {
                return Err(ZoneError::At { at: at(i, code::DNAME), problem: Problem::DnameAndNs(owner()) });
            }
            if key_is_wildcard(&node.owner) {
                return Err(ZoneError::At { at: at(i, code::NS), problem: Problem::WildcardNs(owner()) });
            }
        }
        if let Some(ns) = node.rrset(code::NS) {
            for rd in &ns.rdatas {
                let target = key_from_wire(rd);
                let refuse = |why: String| ZoneError::At {
                    at: at(i, code::NS),
                    problem: Problem::NsTarget { owner: owner(), target: KeyName(&target).to_string(), why },
                };
                match place(nodes, apex, &target) {
                    Place::Outside => {}
                    Place::BelowDname(d) => {
                        return Err(refuse(format!("the name server is below the DNAME at {}", KeyName(&d.owner))));
                    }
                    Place::BelowCut(cut, t) => {
                        if !has_address(t) {
                            if *cut.owner == *node.owner {
                                return Err(refuse("no glue: the name server is below this zone cut and has no A or AAAA record".into()));
                            }
                            if sibling.is_none() {
                                sibling = Some(Warning {
                                    at: at(i, code::NS),
                                    message: format!(
                                        "{} NS {}: no sibling glue (the name server is below the zone cut at {} and has no A or AAAA record here)",
                                        owner(),
                                        KeyName(&target),
                                        KeyName(&cut.owner)
                                    ),
                                });
                            }
                            siblings += 1;
                        }
                    }
                    Place::Inside(t) => {
                        if t.is_some_and(|t| t.rrset(code::CNAME).is_some()) {
                            return Err(refuse("the name server is a CNAME (RFC 2181 section 10.3)".into()));
                        }
                        if !has_address(t) {
                            let hint = if looks_like_address(&target, apex) { " (an address written where a name belongs?)" } else { "" };
                            return Err(refuse(format!("the name server is in the zone and has no A or AAAA record{hint}")));
                        }
                    }
                }
            }
        }
        if !node.signs(code::MX) {
            continue;
        }
        for rtype in [code::MX, code::SRV] {
            let Some(rr) = node.rrset(rtype) else { continue };
            for rd in &rr.rdatas {
                let Some(target) = target_of(rtype, rd) else { continue };
                let name = crate::dns::rtype::mnemonic(rtype);
                let warn = |what: &str| Warning { at: at(i, rtype), message: format!("{} {name} {}: {what}", owner(), KeyName(&target)) };
                if let Place::Inside(t) = place(nodes, apex, &target) {
                    if t.is_some_and(|t| t.rrset(code::CNAME).is_some()) {
                        warnings.push(warn("the target is a CNAME (RFC 2181 section 10.3)"));
                    } else if !has_address(t) {
                        let hint = if looks_like_address(&target, apex) { " (an address written where a name belongs?)" } else { "" };
                        warnings.push(warn(&format!("the target has no A or AAAA record in the zone{hint}")));
                    }
                }
            }
        }
        for rtype in [code::SVCB, code::HTTPS] {
            let Some(rr) = node.rrset(rtype) else { continue };
            if rr.rdatas.iter().any(|rd| crate::dns::svcb::params(rd).is_ok_and(|(prio, p)| prio == 0 && !p.is_empty())) {
                warnings.push(Warning {
                    at: at(i, rtype),
                    message: format!(
                        "{} {}: AliasMode (priority 0) record with SvcParams, which clients ignore (RFC 9460 section 2.4.2)",
                        owner(),
                        crate::dns::rtype::mnemonic(rtype)
                    ),
                });
            }
        }
    }
    if let Some(mut w) = sibling {
        if siblings > 1 {
            w.message.push_str(&format!(" and {} more name servers like it", siblings - 1));
        }
        warnings.push(w);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::dns::name::{key_from_wire, parse_name};
    use crate::zone::reader::read_str;
    use crate::zone::{BuildOptions, build};

    fn build_str(z: &str) -> Result<crate::zone::Built, crate::zone::ZoneError> {
        let origin = parse_name(b"example.", None).unwrap();
        let text = format!("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n{z}");
        build(read_str("t", text.as_bytes(), &origin).unwrap(), &key_from_wire(&origin), &BuildOptions::default())
    }

    #[test]
    fn name_servers_answered_by_a_wildcard_have_addresses() {
        assert!(build_str("sub NS ns0.name\n*.name A 192.0.2.9\n").is_ok());
        // A name that exists (here as an empty non-terminal) is not synthesised.
        let e = build_str("sub NS name\n*.name A 192.0.2.9\n").unwrap_err().to_string();
        assert!(e.contains("sub.example. NS name.example.: the name server is in the zone and has no A or AAAA"), "{e}");
        let e = build_str("sub NS ent\nx.ent A 192.0.2.9\n").unwrap_err().to_string();
        assert!(e.contains("NS ent.example.: the name server is in the zone"), "{e}");
        // Glue below the cut itself, an address at the cut, out-of-zone servers.
        assert!(build_str("sub NS ns.sub\nns.sub AAAA 2001:db8::1\n").is_ok());
        assert!(build_str("sub NS sub\nsub A 192.0.2.7\n").is_ok());
        assert!(build_str("sub NS ns.example.net.\n").is_ok());
    }

    #[test]
    fn sibling_glue_is_one_warning() {
        let b = build_str("a NS ns.c\nb NS ns.c\nc NS ns.elsewhere.\n").unwrap();
        let w: Vec<_> = b.warnings.iter().filter(|w| w.message.contains("no sibling glue")).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.ends_with("and 1 more name servers like it"), "{}", w[0].message);
    }
}
