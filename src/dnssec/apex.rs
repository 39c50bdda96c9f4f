//! The records the signer itself publishes at the apex: DNSKEY, CDS and
//! CDNSKEY (RFC 7344, RFC 8078), NSEC3PARAM, and a ZONEMD placeholder.

use super::nsec3;
use super::policy::{Denial, Policy};
use crate::crypto::dnskey::{FLAG_SEP, ds_rdata};
use crate::dns::rtype::code;
use crate::sign::SigningKey;
use crate::zone::{Rrset, Zone};

/// Length of a SHA-384 digest, the ZONEMD digest the signer makes.
pub const ZONEMD_SHA384_LEN: usize = 48;

/// Adds the signer's apex records and sets the serial.
///
/// Input DNSKEYs that are not ours stay published (a pre-published or
/// retiring key during a rollover); ours are not doubled.
///
/// # Errors
/// An OpenSSL failure while making CDS digests.
pub fn prepare(zone: &mut Zone, keys: &[&dyn SigningKey], policy: &Policy) -> Result<(), openssl::error::ErrorStack> {
    let serial = policy.serial.next(zone.soa_serial(), policy.now);
    zone.set_soa_serial(serial);
    let apex_wire = zone.apex_wire();
    let dnskey_ttl = zone.apex_node().rrset(code::DNSKEY).map_or(policy.dnskey_ttl, |r| r.ttl);
    let mut rdatas: Vec<Box<[u8]>> = zone.apex_node().rrset(code::DNSKEY).map(|r| r.rdatas.clone()).unwrap_or_default();
    rdatas.extend(keys.iter().map(|k| k.info().dnskey.clone().into_boxed_slice()));
    rdatas.sort_unstable();
    rdatas.dedup();
    let apex = zone.apex_node_mut();
    apex.put_rrset(Rrset { rtype: code::DNSKEY, ttl: dnskey_ttl, rdatas, sigs: Vec::new() });

    let ksks: Vec<&[u8]> =
        keys.iter().map(|k| k.info().dnskey.as_slice()).filter(|d| crate::crypto::dnskey::flags(d) & FLAG_SEP != 0).collect();
    if !policy.cds.is_empty() {
        let mut cds: Vec<Box<[u8]>> = Vec::new();
        for d in &ksks {
            for dt in &policy.cds {
                cds.push(ds_rdata(&apex_wire, d, *dt)?.into_boxed_slice());
            }
        }
        cds.sort_unstable();
        cds.dedup();
        apex.put_rrset(Rrset { rtype: code::CDS, ttl: dnskey_ttl, rdatas: cds, sigs: Vec::new() });
    }
    if policy.cdnskey {
        let mut c: Vec<Box<[u8]>> = ksks.iter().map(|d| Box::from(*d)).collect();
        c.sort_unstable();
        apex.put_rrset(Rrset { rtype: code::CDNSKEY, ttl: dnskey_ttl, rdatas: c, sigs: Vec::new() });
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
    Ok(())
}
