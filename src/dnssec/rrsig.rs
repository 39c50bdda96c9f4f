//! RRSIG RDATA and the data a signature covers (RFC 4034 sections 3.1 and 3.1.8.1,
//! canonical RR order of section 6.3).

use crate::zone::Rrset;

/// The fields of an RRSIG before the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsigFields {
    /// Type covered.
    pub type_covered: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// Labels of the owner, not counting a leading `*` (RFC 4035 section 2.2 / RFC 4034 3.1.3).
    pub labels: u8,
    /// The RRset's TTL.
    pub original_ttl: u32,
    /// Expiration time (serial arithmetic, RFC 4034 section 3.1.5).
    pub expiration: u32,
    /// Inception time.
    pub inception: u32,
    /// Key tag of the signing DNSKEY.
    pub key_tag: u16,
    /// Signer's name (the apex), lowercase wire form.
    pub signer: Vec<u8>,
}

impl RrsigFields {
    /// RRSIG RDATA without the signature field.
    pub fn prefix(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(18 + self.signer.len() + 256);
        v.extend_from_slice(&self.type_covered.to_be_bytes());
        v.push(self.algorithm);
        v.push(self.labels);
        v.extend_from_slice(&self.original_ttl.to_be_bytes());
        v.extend_from_slice(&self.expiration.to_be_bytes());
        v.extend_from_slice(&self.inception.to_be_bytes());
        v.extend_from_slice(&self.key_tag.to_be_bytes());
        v.extend_from_slice(&self.signer);
        v
    }

    /// Splits RRSIG RDATA into its fields and the signature.
    pub fn parse(rdata: &[u8]) -> Option<(Self, &[u8])> {
        if rdata.len() < 19 {
            return None;
        }
        let u16at = |i: usize| u16::from_be_bytes([rdata[i], rdata[i + 1]]);
        let u32at = |i: usize| u32::from_be_bytes([rdata[i], rdata[i + 1], rdata[i + 2], rdata[i + 3]]);
        let nlen = crate::dns::name::wire_name_len(&rdata[18..])?;
        let fields = RrsigFields {
            type_covered: u16at(0),
            algorithm: rdata[2],
            labels: rdata[3],
            original_ttl: u32at(4),
            expiration: u32at(8),
            inception: u32at(12),
            key_tag: u16at(16),
            signer: rdata[18..18 + nlen].to_vec(),
        };
        Some((fields, &rdata[18 + nlen..]))
    }
}

/// Appends the signed data for an RRset (RFC 4034 section 3.1.8.1) to `out`,
/// starting from the RRSIG prefix. RDATA must already be canonical and
/// sorted (the zone model guarantees both); the TTL is the original TTL.
pub fn signed_data(prefix: &[u8], owner_wire: &[u8], rrset: &Rrset, original_ttl: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    for rd in &rrset.rdatas {
        out.extend_from_slice(owner_wire);
        out.extend_from_slice(&rrset.rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&original_ttl.to_be_bytes());
        out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        out.extend_from_slice(rd);
    }
}
