//! The records the signer itself publishes at the apex: DNSKEY, CDS and
//! CDNSKEY (RFC 7344, RFC 8078), NSEC3PARAM, and a ZONEMD placeholder.
//!
//! The DNSKEY RRset comes from the signing keys, not from the input: an input
//! DNSKEY that is not among the keys in use is dropped (and reported) unless
//! the policy names it ([`super::policy::KeepDnskeys`]), so that removing a key from the
//! store withdraws it. Input CDS and CDNSKEY are always dropped and made
//! again only when the policy asks for them, so switching them off works.

use super::nsec3;
use super::policy::{Denial, Policy};
use super::signer::SignError;
use crate::crypto::dnskey::{FLAG_SEP, ds_rdata, key_tag};
use crate::crypto::public::PublicKey;
use crate::dns::algorithm::Algorithm;
use crate::dns::name::KeyName;
use crate::dns::rtype::code;
use crate::sign::SigningKey;
use crate::zone::{Rrset, Zone};

/// Length of a SHA-384 digest, the ZONEMD digest the signer makes.
pub const ZONEMD_SHA384_LEN: usize = 48;

/// An input DNSKEY that is not one of the signing keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForeignKey {
    /// Key tag (RFC 4034 Appendix B).
    pub key_tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// DNSKEY flags.
    pub flags: u16,
}

impl ForeignKey {
    fn of(rdata: &[u8]) -> Self {
        ForeignKey { key_tag: key_tag(rdata), algorithm: rdata.get(3).copied().unwrap_or(0), flags: crate::crypto::dnskey::flags(rdata) }
    }
}

/// What [`prepare`] did with the apex records of the input.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApexReport {
    /// Input DNSKEYs not among the signing keys, dropped.
    pub dnskeys_dropped: Vec<ForeignKey>,
    /// Input DNSKEYs not among the signing keys, kept as the policy asked.
    pub dnskeys_kept: Vec<ForeignKey>,
    /// Input CDS and CDNSKEY records dropped (made again if the policy asks).
    pub cds_dropped: usize,
}

/// Adds the signer's apex records and sets the serial.
///
/// # Errors
/// [`SignError::ForeignKey`] for a kept foreign DNSKEY whose key material is
/// not a valid key of its algorithm (checked for the algorithms the signer
/// knows; others are kept as opaque data); an OpenSSL failure while making
/// CDS digests.
pub fn prepare(zone: &mut Zone, keys: &[&dyn SigningKey], policy: &Policy) -> Result<ApexReport, SignError> {
    let serial = policy.serial.next(zone.soa_serial(), policy.now);
    zone.set_soa_serial(serial);
    let apex_wire = zone.apex_wire();
    let zone_name = KeyName(&zone.apex).to_string();
    let mut report = ApexReport::default();
    let dnskey_ttl = zone.apex_node().rrset(code::DNSKEY).map_or(policy.dnskey_ttl, |r| r.ttl);
    let ours: Vec<&[u8]> = keys.iter().map(|k| k.info().dnskey.as_slice()).collect();
    let mut rdatas: Vec<Box<[u8]>> = ours.iter().map(|d| Box::from(*d)).collect();
    for rd in zone.apex_node().rrset(code::DNSKEY).map(|r| r.rdatas.as_slice()).unwrap_or_default() {
        if ours.contains(&&**rd) {
            continue;
        }
        let foreign = ForeignKey::of(rd);
        if !policy.keep_dnskeys.keeps(foreign.key_tag, foreign.algorithm) {
            tracing::warn!(
                zone = %zone_name,
                key_tag = foreign.key_tag,
                algorithm = foreign.algorithm,
                flags = foreign.flags,
                "input DNSKEY is not among the signing keys: dropped (keep it with --keep-dnskey {}/{})",
                foreign.key_tag,
                foreign.algorithm
            );
            report.dnskeys_dropped.push(foreign);
            continue;
        }
        if let Some(alg) = Algorithm::from_number(foreign.algorithm) {
            PublicKey::from_parts(alg, rd.get(4..).unwrap_or_default()).map_err(|error| SignError::ForeignKey {
                key_tag: foreign.key_tag,
                algorithm: foreign.algorithm,
                error,
            })?;
        }
        tracing::info!(zone = %zone_name, key_tag = foreign.key_tag, algorithm = foreign.algorithm, "foreign DNSKEY kept published");
        report.dnskeys_kept.push(foreign);
        rdatas.push(rd.clone());
    }
    rdatas.sort_unstable();
    rdatas.dedup();
    let apex = zone.apex_node_mut();
    apex.put_rrset(Rrset { rtype: code::DNSKEY, ttl: dnskey_ttl, rdatas, sigs: Vec::new() });

    // What the input had is gone either way: CDS/CDNSKEY follow the keys in use
    // and the policy, never an earlier run.
    let old_cds = apex.remove_rrset(code::CDS);
    let old_cdnskey = apex.remove_rrset(code::CDNSKEY);
    let not_asked = old_cds
        .as_ref()
        .filter(|_| policy.cds.is_empty())
        .iter()
        .chain(old_cdnskey.as_ref().filter(|_| !policy.cdnskey).iter())
        .map(|r| r.rdatas.len())
        .sum::<usize>();
    if not_asked > 0 {
        tracing::warn!(zone = %zone_name, records = not_asked, "input CDS/CDNSKEY records dropped (not asked for)");
    }
    report.cds_dropped = old_cds.iter().chain(&old_cdnskey).map(|r| r.rdatas.len()).sum();
    let ksks: Vec<&[u8]> = ours.iter().copied().filter(|d| crate::crypto::dnskey::flags(d) & FLAG_SEP != 0).collect();
    if !policy.cds.is_empty() {
        let mut cds: Vec<Box<[u8]>> = Vec::new();
        for d in &ksks {
            for dt in &policy.cds {
                cds.push(ds_rdata(&apex_wire, d, *dt)?.into_boxed_slice());
            }
        }
        cds.sort_unstable();
        cds.dedup();
        apex.put_rrset(keep_sigs_if_same(old_cds, Rrset { rtype: code::CDS, ttl: dnskey_ttl, rdatas: cds, sigs: Vec::new() }));
    }
    if policy.cdnskey {
        let mut c: Vec<Box<[u8]>> = ksks.iter().map(|d| Box::from(*d)).collect();
        c.sort_unstable();
        apex.put_rrset(keep_sigs_if_same(old_cdnskey, Rrset { rtype: code::CDNSKEY, ttl: dnskey_ttl, rdatas: c, sigs: Vec::new() }));
    }
    match &policy.denial {
        Denial::Nsec3(p) => apex.put_rrset(Rrset::single(code::NSEC3PARAM, 0, nsec3::param_rdata(p))),
        Denial::Nsec => {
            apex.remove_rrset(code::NSEC3PARAM);
        }
    }
    // A ZONEMD from the input cannot be right once the zone is signed.
    apex.remove_rrset(code::ZONEMD);
    if policy.zonemd {
        let ttl = zone.soa_ttl();
        let mut rd = serial.to_be_bytes().to_vec();
        rd.extend_from_slice(&[1, 1]); // scheme 1 SIMPLE, hash algorithm 1 SHA-384 (RFC 8976 sections 5.2, 5.3)
        rd.extend_from_slice(&[0; ZONEMD_SHA384_LEN]);
        zone.apex_node_mut().put_rrset(Rrset::single(code::ZONEMD, ttl, rd));
    }
    Ok(report)
}

/// The new RRset, with the old one's signatures when nothing changed (so a
/// re-signing pass can reuse them).
fn keep_sigs_if_same(old: Option<Rrset>, mut new: Rrset) -> Rrset {
    if let Some(old) = old.filter(|o| o.ttl == new.ttl && o.rdatas == new.rdatas) {
        new.sigs = old.sigs;
    }
    new
}
