//! Writes a zone in presentation form: one record per line, absolute names,
//! every RRSIG right after the RRset it covers, NSEC3 records last.
//!
//! Formatting runs on all cores in chunks and is written in order.

use super::model::{Node, Zone};
use crate::dns::name::{wire_of_key, write_wire_name};
use crate::dns::rdata;
use crate::dns::rtype::{self, code};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::io::Write;

const CHUNK: usize = 2048;

/// Writes the whole zone to `out`.
///
/// # Errors
/// The I/O error of the underlying writer.
pub fn write_zone(zone: &Zone, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
    write_nodes(&zone.nodes, out)?;
    write_nodes(&zone.nsec3, out)
}

fn write_nodes(nodes: &[Node], out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
    for group in nodes.chunks(CHUNK * 32) {
        let texts: Vec<String> = group.par_chunks(CHUNK).map(format_nodes).collect();
        for t in texts {
            out.write_all(t.as_bytes())?;
        }
    }
    Ok(())
}

fn format_nodes(nodes: &[Node]) -> String {
    let mut s = String::with_capacity(nodes.len() * 96);
    for n in nodes {
        format_node(n, &mut s);
    }
    s
}

/// Appends the presentation form of every record of a node.
pub fn format_node(node: &Node, s: &mut String) {
    let mut owner = String::new();
    write_wire_name(&mut owner, &wire_of_key(&node.owner));
    // SOA first at the apex, as readers expect.
    let order = node.rrsets.iter().filter(|r| r.rtype == code::SOA).chain(node.rrsets.iter().filter(|r| r.rtype != code::SOA));
    for rr in order {
        let mnemonic = rtype::mnemonic(rr.rtype);
        for rd in &rr.rdatas {
            let _ = write!(s, "{owner}\t{}\tIN\t{mnemonic}\t", rr.ttl);
            rdata::format(rr.rtype, rd, s);
            s.push('\n');
        }
        for sig in &rr.sigs {
            let _ = write!(s, "{owner}\t{}\tIN\tRRSIG\t", rr.ttl);
            rdata::format(code::RRSIG, sig, s);
            s.push('\n');
        }
    }
}
