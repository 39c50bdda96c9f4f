//! The signing pass.
//!
//! 1. apex records (DNSKEY, CDS/CDNSKEY, NSEC3PARAM, ZONEMD placeholder) and serial;
//! 2. the NSEC or NSEC3 chain;
//! 3. a *plan*: for every RRset that must be signed and every key that must
//!    sign it, keep the existing signature if it is still good for longer
//!    than the refresh period, otherwise schedule a new one;
//! 4. the plan is carried out key by key in batches: the host builds and
//!    hashes the signed data on all cores, the key store signs the batch, the
//!    host verifies every signature, and only then is it attached;
//! 5. ZONEMD, if asked for, is computed over the signed zone and signed last.
//!
//! A full signing is the case where the plan reuses nothing; the daemon's
//! incremental re-signing runs the same pass over a zone that still carries
//! its signatures (clearing those of RRsets whose data changed).

use super::apex;
use super::keyset::KeyRoles;
use super::nsec;
use super::nsec3::{self, Nsec3Error};
use super::policy::{Denial, Policy};
use super::rrsig::{RrsigFields, signed_data};
use super::zonemd;
use crate::crypto::SignInput;
use crate::crypto::public::{PublicKey, PublicKeyError};
use crate::dns::name::{KeyName, key_is_wildcard, key_label_count, wire_of_key};
use crate::dns::rtype::{self, code};
use crate::sign::{KeyError, SigningKey};
use crate::zone::{Node, Zone};
use rayon::prelude::*;
use std::time::Instant;

/// Why a signing pass failed. Nothing is written when it does.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No keys for the zone.
    #[error("no signing keys for zone {0}")]
    NoKeys(String),
    /// A key store failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A key's DNSKEY is unusable.
    #[error("key {key}: {error}")]
    PublicKey {
        /// The key.
        key: String,
        /// What is wrong.
        error: PublicKeyError,
    },
    /// A signature did not verify on the host.
    #[error("key {key} returned a signature over {owner} {rtype} that does not verify; nothing was written")]
    BadSignature {
        /// The key.
        key: String,
        /// The owner of the RRset.
        owner: String,
        /// The RRset type.
        rtype: String,
    },
    /// A key store returned the wrong number of signatures.
    #[error("key {key} returned {got} signatures for {want} requests")]
    Count {
        /// The key.
        key: String,
        /// Signatures received.
        got: usize,
        /// Requests sent.
        want: usize,
    },
    /// NSEC3 chain problem.
    #[error(transparent)]
    Nsec3(#[from] Nsec3Error),
    /// Hashing failed.
    #[error("hashing failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// Signatures made by one key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyStats {
    /// Key id.
    pub key: String,
    /// Key tag.
    pub key_tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// Signatures made.
    pub signatures: usize,
    /// Seconds spent waiting for the key store.
    pub sign_seconds: f64,
}

/// What a signing pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SignStats {
    /// Records in the zone before signing (without denial records).
    pub records: usize,
    /// RRsets that carry signatures.
    pub rrsets_signed: usize,
    /// Signatures made.
    pub signatures_made: usize,
    /// Signatures kept from before.
    pub signatures_reused: usize,
    /// NSEC or NSEC3 records.
    pub denial_records: usize,
    /// The SOA serial of the signed zone.
    pub serial: u32,
    /// Per-key figures.
    pub keys: Vec<KeyStats>,
    /// Seconds for the whole pass.
    pub seconds: f64,
}

/// Reports progress: called with the number of signatures just finished.
pub trait Progress: Sync {
    /// The plan is known: this many signatures will be made.
    fn start(&self, total: u64);
    /// This many more are done.
    fn advance(&self, n: u64);
}

/// A progress reporter that reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

#[derive(Debug, Clone, Copy)]
struct Job {
    nsec3: bool,
    node: u32,
    rrset: u16,
    key: u16,
}

/// Signs `zone` in place with `keys` according to `policy`.
///
/// # Errors
/// [`SignError`]; the zone is then in an undefined state and must not be written.
pub fn sign_zone(zone: &mut Zone, keys: &[&dyn SigningKey], policy: &Policy, progress: &dyn Progress) -> Result<SignStats, SignError> {
    let started = Instant::now();
    if keys.is_empty() {
        return Err(SignError::NoKeys(KeyName(&zone.apex).to_string()));
    }
    let publics: Vec<PublicKey> = keys
        .iter()
        .map(|k| PublicKey::from_dnskey(&k.info().dnskey).map_err(|error| SignError::PublicKey { key: k.info().id.clone(), error }))
        .collect::<Result<_, _>>()?;
    let mut stats = SignStats { records: zone.record_count(), ..SignStats::default() };
    apex::prepare(zone, keys, policy)?;
    let phase =
        |name: &str| tracing::debug!(phase = name, elapsed = ?started.elapsed(), peak_rss_kb = crate::peak_rss_kb(), "signing phase done");
    phase("apex");
    stats.serial = zone.soa_serial();
    match &policy.denial {
        Denial::Nsec => {
            zone.nsec3.clear();
            nsec::add_chain(zone);
            stats.denial_records = zone.nodes.iter().filter(|n| n.rrset(code::NSEC).is_some()).count();
        }
        Denial::Nsec3(p) => {
            for n in &mut zone.nodes {
                n.remove_rrset(code::NSEC);
            }
            nsec3::add_chain(zone, p)?;
            stats.denial_records = zone.nsec3.len();
        }
    }
    phase("denial chain");
    let roles = KeyRoles::new(keys, policy.zsk_signs_dnskey);
    let mut key_stats: Vec<KeyStats> = keys
        .iter()
        .map(|k| KeyStats {
            key: k.info().id.clone(),
            key_tag: k.info().key_tag,
            algorithm: k.info().algorithm.number(),
            signatures: 0,
            sign_seconds: 0.0,
        })
        .collect();

    let (jobs, reused) = plan(zone, keys, &roles, policy, |apex, t| !(apex && t == code::ZONEMD));
    stats.signatures_reused += reused;
    phase("plan");
    progress.start(jobs.len() as u64);
    run(zone, keys, &publics, policy, &jobs, &mut key_stats, progress)?;
    stats.signatures_made += jobs.len();
    phase("signatures");
    if policy.zonemd {
        zonemd::update_digest(zone)?;
        let (jobs, _) = plan(zone, keys, &roles, policy, |apex, t| apex && t == code::ZONEMD);
        run(zone, keys, &publics, policy, &jobs, &mut key_stats, progress)?;
        stats.signatures_made += jobs.len();
    }
    stats.rrsets_signed = zone.nodes.iter().chain(&zone.nsec3).flat_map(|n| &n.rrsets).filter(|r| !r.sigs.is_empty()).count();
    stats.keys = key_stats;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Decides which signatures to make; drops signatures of keys no longer in use
/// and those due for refresh. Returns the jobs and the number of signatures kept.
fn plan(
    zone: &mut Zone,
    keys: &[&dyn SigningKey],
    roles: &KeyRoles,
    policy: &Policy,
    select: impl Fn(bool, u16) -> bool + Sync,
) -> (Vec<Job>, usize) {
    let now = policy.now as u32;
    let plan_nodes = |nodes: &mut [Node], is_nsec3: bool| -> (Vec<Job>, usize) {
        let mut jobs = Vec::new();
        let mut reused = 0;
        for (ni, node) in nodes.iter_mut().enumerate() {
            let kind_signs: Vec<bool> = node.rrsets.iter().map(|r| node.signs(r.rtype)).collect();
            for (ri, rr) in node.rrsets.iter_mut().enumerate() {
                if !kind_signs[ri] {
                    rr.sigs.clear();
                    continue;
                }
                if !select(!is_nsec3 && ni == 0, rr.rtype) {
                    continue;
                }
                let signers = roles.for_type(rr.rtype);
                rr.sigs.retain(|sig| {
                    let Some((f, _)) = RrsigFields::parse(sig) else {
                        return false;
                    };
                    let by_active =
                        signers.iter().any(|&k| keys[k].info().key_tag == f.key_tag && keys[k].info().algorithm.number() == f.algorithm);
                    let left = f.expiration.wrapping_sub(now);
                    by_active && f.original_ttl == rr.ttl && left < 0x8000_0000 && left > policy.refresh
                });
                for &k in signers {
                    let info = keys[k].info();
                    let has = rr.sigs.iter().any(|s| {
                        RrsigFields::parse(s).is_some_and(|(f, _)| f.key_tag == info.key_tag && f.algorithm == info.algorithm.number())
                    });
                    if has {
                        reused += 1;
                    } else {
                        jobs.push(Job { nsec3: is_nsec3, node: ni as u32, rrset: ri as u16, key: k as u16 });
                    }
                }
            }
        }
        (jobs, reused)
    };
    let (mut jobs, r1) = plan_nodes(&mut zone.nodes, false);
    let (j2, r2) = plan_nodes(&mut zone.nsec3, true);
    jobs.extend(j2);
    jobs.sort_by_key(|j| j.key);
    (jobs, r1 + r2)
}

/// Spreads expirations over the jitter window, the same way for the same
/// RRset and key every time (so a re-run of the same input gives the same zone).
fn jitter_for(owner: &[u8], rtype: u16, key_tag: u16, jitter: u32) -> u32 {
    if jitter == 0 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in owner.iter().chain(&rtype.to_be_bytes()).chain(&key_tag.to_be_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % jitter as u64) as u32
}

fn run(
    zone: &mut Zone,
    keys: &[&dyn SigningKey],
    publics: &[PublicKey],
    policy: &Policy,
    jobs: &[Job],
    key_stats: &mut [KeyStats],
    progress: &dyn Progress,
) -> Result<(), SignError> {
    let signer = zone.apex_wire();
    let inception = (policy.now as u32).wrapping_sub(policy.inception_offset);
    let mut start = 0;
    while start < jobs.len() {
        let k = jobs[start].key;
        let batch = policy.batch_size.max(keys[k as usize].preferred_batch()).max(1);
        let wants_message = keys[k as usize].wants_message();
        let mut end = start;
        while end < jobs.len() && jobs[end].key == k && end - start < batch {
            end += 1;
        }
        let chunk = &jobs[start..end];
        let key = keys[k as usize];
        let info = key.info();
        let zone_ref: &Zone = zone;
        let prepared: Vec<(RrsigFields, SignInput)> = chunk
            .par_iter()
            .map(|j| {
                let node = if j.nsec3 { &zone_ref.nsec3[j.node as usize] } else { &zone_ref.nodes[j.node as usize] };
                let rr = &node.rrsets[j.rrset as usize];
                let owner = wire_of_key(&node.owner);
                let labels = key_label_count(&node.owner) - usize::from(key_is_wildcard(&node.owner));
                let expiration = (policy.now as u32).wrapping_add(policy.validity).wrapping_sub(jitter_for(
                    &node.owner,
                    rr.rtype,
                    info.key_tag,
                    policy.jitter,
                ));
                let fields = RrsigFields {
                    type_covered: rr.rtype,
                    algorithm: info.algorithm.number(),
                    labels: labels as u8,
                    original_ttl: rr.ttl,
                    expiration,
                    inception,
                    key_tag: info.key_tag,
                    signer: signer.clone(),
                };
                let mut data = Vec::with_capacity(256);
                signed_data(&fields.prefix(), &owner, rr, rr.ttl, &mut data);
                let input = if wants_message { SignInput::Message(data) } else { SignInput::prepare(info.algorithm, data)? };
                Ok((fields, input))
            })
            .collect::<Result<_, openssl::error::ErrorStack>>()?;
        let inputs: Vec<SignInput> = prepared.iter().map(|(_, i)| i.clone()).collect();
        let t = Instant::now();
        let sigs = key.sign_batch(&inputs)?;
        key_stats[k as usize].sign_seconds += t.elapsed().as_secs_f64();
        if sigs.len() != inputs.len() {
            return Err(SignError::Count { key: info.id.clone(), got: sigs.len(), want: inputs.len() });
        }
        if (policy.verify || key.is_device()) && !key.verifies_on_host() {
            let public = &publics[k as usize];
            if let Some(bad) = (0..sigs.len()).into_par_iter().find_any(|&i| !public.verify(&inputs[i], &sigs[i])) {
                let j = chunk[bad];
                let node = if j.nsec3 { &zone.nsec3[j.node as usize] } else { &zone.nodes[j.node as usize] };
                return Err(SignError::BadSignature {
                    key: info.id.clone(),
                    owner: KeyName(&node.owner).to_string(),
                    rtype: rtype::mnemonic(node.rrsets[j.rrset as usize].rtype).into_owned(),
                });
            }
        }
        for ((j, (fields, _)), sig) in chunk.iter().zip(prepared).zip(sigs) {
            let mut rd = fields.prefix();
            rd.extend_from_slice(&sig);
            let node = if j.nsec3 { &mut zone.nsec3[j.node as usize] } else { &mut zone.nodes[j.node as usize] };
            let rr = &mut node.rrsets[j.rrset as usize];
            rr.sigs.push(rd.into_boxed_slice());
            rr.sigs.sort_unstable();
        }
        key_stats[k as usize].signatures += chunk.len();
        progress.advance(chunk.len() as u64);
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::algorithm::Algorithm;
    use crate::dns::name::{key_from_wire, parse_name};
    use crate::keys::software::{PrivateKey, SoftwareKey};
    use crate::sign::{KeyInfo, Role};
    use crate::zone::{BuildOptions, build, reader::read_str};

    /// A "device" whose signatures come back corrupted.
    struct Corrupting(SoftwareKey);

    impl SigningKey for Corrupting {
        fn info(&self) -> &KeyInfo {
            self.0.info()
        }
        fn sign_batch(&self, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, KeyError> {
            let mut sigs = self.0.sign_batch(inputs)?;
            if let Some(s) = sigs.last_mut() {
                s[5] ^= 0x40;
            }
            Ok(sigs)
        }
    }

    fn key(alg: Algorithm, role: Role) -> SoftwareKey {
        let private = PrivateKey::generate(alg, 1024).unwrap();
        let dnskey = crate::crypto::dnskey::dnskey_rdata(role.flags(), alg, &private.public_key_field().unwrap());
        let info = KeyInfo {
            id: "test".into(),
            backend: "software",
            zone: "example.".into(),
            algorithm: alg,
            role,
            key_tag: crate::crypto::dnskey::key_tag(&dnskey),
            dnskey,
        };
        SoftwareKey::new(info, private).unwrap()
    }

    fn zone() -> Zone {
        let origin = parse_name(b"example.", None).unwrap();
        let z = b"$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n";
        build(read_str("t", z, &origin).unwrap(), &key_from_wire(&origin), &BuildOptions::default()).unwrap().zone
    }

    #[test]
    fn corrupt_device_signature_fails_the_pass_even_without_verification() {
        let k = Corrupting(key(Algorithm::EcdsaP256Sha256, Role::Csk));
        let mut policy = Policy::new(1_800_000_000);
        policy.verify = false;
        let mut z = zone();
        let err = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn resigning_reuses_fresh_signatures_and_replaces_due_ones() {
        let k = key(Algorithm::Ed25519, Role::Csk);
        let mut policy = Policy::new(1_800_000_000);
        policy.jitter = 0;
        let mut z = zone();
        let first = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap();
        assert!(first.signatures_made > 0);
        assert_eq!(first.signatures_reused, 0);
        // A day later nothing is due: everything is reused, nothing doubled.
        policy.now += 86_400;
        let second = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap();
        assert_eq!(second.signatures_made, 0);
        assert_eq!(second.signatures_reused, first.signatures_made);
        assert!(z.nodes.iter().flat_map(|n| &n.rrsets).all(|r| r.sigs.len() <= 1));
        // Past the refresh point, everything is signed again, once.
        policy.now += u64::from(policy.validity - policy.refresh);
        let third = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap();
        assert_eq!(third.signatures_made, first.signatures_made);
        assert!(z.nodes.iter().flat_map(|n| &n.rrsets).all(|r| r.sigs.len() <= 1));
    }

    #[test]
    fn nsec3_resigning_keeps_unchanged_chain_signatures() {
        let k = key(Algorithm::EcdsaP256Sha256, Role::Csk);
        let mut policy = Policy::new(1_800_000_000);
        policy.denial = Denial::Nsec3(crate::dnssec::nsec3::Nsec3Params::default());
        let mut z = zone();
        let first = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap();
        policy.now += 3600;
        let second = sign_zone(&mut z, &[&k], &policy, &NoProgress).unwrap();
        assert_eq!(second.signatures_made, 0, "nothing changed, nothing due");
        assert_eq!(second.signatures_reused, first.signatures_made);
        assert!(crate::verify::verify_zone(&z, policy.now as u32, 0).ok());
    }

    #[test]
    fn every_algorithm_signs_every_rrset_and_ksk_signs_dnskey() {
        let ksk = key(Algorithm::EcdsaP256Sha256, Role::Ksk);
        let zsk = key(Algorithm::EcdsaP256Sha256, Role::Zsk);
        let ed = key(Algorithm::Ed25519, Role::Csk);
        let mut z = zone();
        sign_zone(&mut z, &[&ksk, &zsk, &ed], &Policy::new(1_800_000_000), &NoProgress).unwrap();
        let report = crate::verify::verify_zone(&z, 1_800_000_000, 0);
        assert!(report.ok(), "{report:?}");
        let dnskey = z.apex_node().rrset(code::DNSKEY).unwrap();
        let tags: Vec<u16> = dnskey.sigs.iter().map(|s| RrsigFields::parse(s).unwrap().0.key_tag).collect();
        assert!(tags.contains(&ksk.info().key_tag) && tags.contains(&ed.info().key_tag) && !tags.contains(&zsk.info().key_tag));
        let soa = z.apex_node().rrset(code::SOA).unwrap();
        let tags: Vec<u16> = soa.sigs.iter().map(|s| RrsigFields::parse(s).unwrap().0.key_tag).collect();
        assert!(tags.contains(&zsk.info().key_tag) && tags.contains(&ed.info().key_tag) && !tags.contains(&ksk.info().key_tag));
    }
}
