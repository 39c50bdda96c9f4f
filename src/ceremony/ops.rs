//! The ceremony's operations on SmartCard-HSM cards. Each returns a report
//! that is printed, written to the transcript, and (with `--json`) parsed by
//! scripts. Secrets come in as [`Secret`]s and never appear in reports.

use crate::crypto::dnskey::{DigestType, dnskey_rdata, ds_rdata, key_tag};
use crate::crypto::public::PublicKey;
use crate::crypto::{SignInput, digest_info};

use crate::dns::algorithm::Algorithm;
use crate::secret::Secret;
use crate::sign::Role;
use crate::smartcard::card::{CardError, CardKey, DkekStatus, ScHsm, readers};
use crate::smartcard::{apdu, dkek, pbe};
use std::path::Path;

/// Ceremony errors. None contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// A card operation failed.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A DKEK share file problem.
    #[error("{path}: {source}")]
    Share {
        /// The file.
        path: String,
        /// Why.
        source: pbe::PbeError,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The operation is refused to protect the cards.
    #[error("{0}")]
    Refused(String),
    /// A clone does not sign like its original.
    #[error("{0}")]
    CloneMismatch(String),
}

/// What a card looks like to the officers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CardReport {
    /// Reader.
    pub reader: String,
    /// Card serial.
    pub serial: String,
    /// Initialised.
    pub initialized: bool,
    /// User PIN tries left (`None`: verified in this session or not initialised).
    pub pin_tries: Option<u8>,
    /// SO-PIN tries left.
    pub so_pin_tries: Option<u8>,
    /// DKEK state.
    pub dkek: DkekStatus,
    /// Keys.
    pub keys: Vec<KeyReport>,
}

/// A key as published.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyReport {
    /// Card serial.
    pub serial: String,
    /// Key id on the card.
    pub id: u8,
    /// Label.
    pub label: String,
    /// DNSSEC algorithm number.
    pub algorithm: Option<u8>,
    /// Key tag as KSK/CSK (flags 257).
    pub key_tag_ksk: Option<u16>,
    /// Key tag as ZSK (flags 256).
    pub key_tag_zsk: Option<u16>,
}

/// A key just made or cloned, with what goes into the zone and to the parent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishedKey {
    /// Card serial.
    pub serial: String,
    /// Key id on the card.
    pub id: u8,
    /// Label.
    pub label: String,
    /// Key tag.
    pub key_tag: u16,
    /// DNSKEY record.
    pub dnskey: String,
    /// DS records (SHA-256), for KSKs and CSKs.
    pub ds: Vec<String>,
}

fn key_report(serial: &str, k: &CardKey) -> KeyReport {
    let tag = |flags| k.algorithm.map(|a| key_tag(&dnskey_rdata(flags, a, &k.public_key)));
    KeyReport {
        serial: serial.to_owned(),
        id: k.id,
        label: k.label.clone(),
        algorithm: k.algorithm.map(Algorithm::number),
        key_tag_ksk: tag(257),
        key_tag_zsk: tag(256),
    }
}

/// Describes the card in `reader` (no PIN needed).
///
/// # Errors
/// Card errors.
pub fn describe(reader: &str) -> Result<CardReport, CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    describe_card(&hsm)
}

fn describe_card(hsm: &ScHsm) -> Result<CardReport, CeremonyError> {
    let serial = hsm.serial()?;
    let so = hsm.so_pin_tries()?;
    let initialized = so.is_some();
    let pin_tries = if initialized { hsm.pin_status().ok().flatten() } else { None };
    let dkek = hsm.dkek_status()?;
    let keys = if initialized { hsm.keys()?.iter().map(|k| key_report(&serial, k)).collect() } else { Vec::new() };
    Ok(CardReport { reader: hsm.reader().to_owned(), serial, initialized, pin_tries, so_pin_tries: so, dkek, keys })
}

/// A reader and what is in it.
pub type ReaderReport = (String, Result<CardReport, CeremonyError>);

/// Every reader, and the card in it when there is a SmartCard-HSM.
///
/// # Errors
/// pcscd unreachable.
pub fn list() -> Result<Vec<ReaderReport>, CeremonyError> {
    Ok(readers()?
        .into_iter()
        .map(|r| {
            let rep = if r.card { describe(&r.name) } else { Err(CeremonyError::Refused("no card".into())) };
            (r.name, rep)
        })
        .collect())
}

/// Parses an SO-PIN: 16 hexadecimal digits.
///
/// # Errors
/// Anything else.
pub fn so_pin_bytes(so: &Secret) -> Result<zeroize::Zeroizing<[u8; 8]>, CeremonyError> {
    let s = so.expose();
    let mut out = zeroize::Zeroizing::new([0u8; 8]);
    if s.len() != 16 || data_encoding::HEXLOWER_PERMISSIVE.decode_mut(s.as_bytes(), &mut out[..]).is_err() {
        return Err(CeremonyError::Refused("the SO-PIN must be 16 hexadecimal digits".into()));
    }
    Ok(out)
}

/// Initialises a card. An initialised card is wiped only with `wipe`.
///
/// # Errors
/// Refused without `wipe`; wrong SO-PIN (tries left shown).
pub fn init(
    reader: &str,
    so: &Secret,
    pin: &Secret,
    retries: u8,
    dkek_shares: Option<u8>,
    wipe: bool,
) -> Result<CardReport, CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    if let Some(left) = hsm.so_pin_tries()?
        && !wipe
    {
        {
            return Err(CeremonyError::Refused(format!(
                "{reader}: card {} is initialised and holds {} key(s); initialising erases them all. Pass --wipe to confirm (SO-PIN tries left: {left})",
                hsm.serial()?,
                hsm.keys().map(|k| k.len()).unwrap_or(0)
            )));
        }
    }
    let pin_len = pin.expose().len();
    if !(6..=15).contains(&pin_len) {
        return Err(CeremonyError::Refused("the user PIN must have 6 to 15 characters".into()));
    }
    let so = so_pin_bytes(so)?;
    hsm.initialize(&so, pin, retries, dkek_shares)?;
    describe_card(&hsm)
}

/// Creates a DKEK share file compatible with sc-hsm-tool (`.pbe`): 32 random
/// bytes (from the card when a reader is given) sealed under `password`.
///
/// # Errors
/// The file exists; the card or the file fails.
pub fn create_share(out: &Path, password: &[u8], reader: Option<&str>) -> Result<(), CeremonyError> {
    let (share, salt) = match reader {
        Some(r) => {
            let hsm = ScHsm::connect(r)?;
            let bytes = zeroize::Zeroizing::new(hsm.challenge(40)?);
            let mut salt = [0u8; 8];
            salt.copy_from_slice(&bytes[32..40]);
            (zeroize::Zeroizing::new(bytes[..32].to_vec()), salt)
        }
        None => {
            let mut share = zeroize::Zeroizing::new(vec![0u8; 32]);
            openssl::rand::rand_bytes(&mut share).map_err(|e| CeremonyError::Refused(format!("random generator: {e}")))?;
            let salt = pbe::new_salt().map_err(|source| CeremonyError::Share { path: out.display().to_string(), source })?;
            (share, salt)
        }
    };
    let sealed =
        pbe::seal_share(&share, password, salt).map_err(|source| CeremonyError::Share { path: out.display().to_string(), source })?;
    write_new(out, &sealed)
}

fn write_new(out: &Path, bytes: &[u8]) -> Result<(), CeremonyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CeremonyError::Io { path: out.display().to_string(), source };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(out).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// The KCV a share file would give on a card with no other share: lets an
/// officer check a share before importing it, and compare across cards.
///
/// # Errors
/// Wrong password, malformed file.
pub fn open_share(file: &Path, password: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CeremonyError> {
    let bytes = std::fs::read(file).map_err(|source| CeremonyError::Io { path: file.display().to_string(), source })?;
    pbe::open_share(&bytes, password).map_err(|source| CeremonyError::Share { path: file.display().to_string(), source })
}

/// Imports a share into the card; returns the DKEK state (the KCV is final when nothing is outstanding).
///
/// # Errors
/// Wrong password (nothing imported), no share outstanding, card errors.
pub fn import_share(reader: &str, file: &Path, password: &[u8], expect_kcv: Option<&str>) -> Result<DkekStatus, CeremonyError> {
    let share = open_share(file, password)?;
    let hsm = ScHsm::connect(reader)?;
    let before = hsm.dkek_status()?;
    if before.total == 0 {
        return Err(CeremonyError::Refused(format!("{reader}: the card was initialised without DKEK shares; it cannot take one")));
    }
    if before.outstanding == 0 {
        return Err(CeremonyError::Refused(format!(
            "{reader}: every DKEK share has been imported already (KCV {}); importing another would change nothing",
            data_encoding::HEXUPPER.encode(&before.kcv)
        )));
    }
    // With a single-share DKEK the share alone decides the key check value, so
    // a share for another DKEK can be refused before anything is imported.
    if let Some(want) = expect_kcv
        && before.total == 1
    {
        let kcv = data_encoding::HEXUPPER.encode(&dkek::Dkek::from_bytes(&share).map_err(|e| CeremonyError::Refused(e.to_string()))?.kcv());
        if !kcv.eq_ignore_ascii_case(want) {
            return Err(CeremonyError::Refused(format!(
                "{}: this share gives DKEK check value {kcv}, {want} was expected: it belongs to another DKEK; nothing was imported",
                file.display()
            )));
        }
    }
    let after = hsm.import_dkek_share(&share)?;
    if let Some(want) = expect_kcv
        && after.outstanding == 0
        && !data_encoding::HEXUPPER.encode(&after.kcv).eq_ignore_ascii_case(want)
    {
        return Err(CeremonyError::Refused(format!(
            "{reader}: the DKEK check value is now {}, {want} was expected: a share belongs to another DKEK; re-initialise this card before using it",
            data_encoding::HEXUPPER.encode(&after.kcv)
        )));
    }
    Ok(after)
}

/// Generates a key on the card and returns what to publish.
///
/// # Errors
/// Wrong PIN (one attempt), card errors.
#[allow(clippy::too_many_arguments)]
pub fn keygen(
    reader: &str,
    pin: &Secret,
    zone: &[u8],
    zone_text: &str,
    role: Role,
    alg: Algorithm,
    bits: u32,
    label: &str,
) -> Result<PublishedKey, CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    hsm.login(pin)?;
    if hsm.keys()?.iter().any(|k| k.label == label) {
        return Err(CeremonyError::Refused(format!("{reader}: a key labelled '{label}' exists already")));
    }
    let id = hsm.free_key_id()?;
    let (alg, public) = hsm.generate(id, alg, bits, label)?;
    publish(&hsm.serial()?, id, label, zone, zone_text, role, alg, &public)
}

/// The DNSKEY, key tag and DS of a key.
///
/// # Errors
/// Hashing failures.
#[allow(clippy::too_many_arguments)]
pub fn publish(
    serial: &str,
    id: u8,
    label: &str,
    zone: &[u8],
    zone_text: &str,
    role: Role,
    alg: Algorithm,
    public: &[u8],
) -> Result<PublishedKey, CeremonyError> {
    let rdata = dnskey_rdata(role.flags(), alg, public);
    let mut dnskey = format!("{zone_text} IN DNSKEY ");
    crate::dns::rdata::format(crate::dns::rtype::code::DNSKEY, &rdata, &mut dnskey);
    let mut ds = Vec::new();
    if role.signs_keys() {
        let d = ds_rdata(zone, &rdata, DigestType::Sha256).map_err(|e| CeremonyError::Refused(format!("DS: {e}")))?;
        let mut line = format!("{zone_text} IN DS ");
        crate::dns::rdata::format(crate::dns::rtype::code::DS, &d, &mut line);
        ds.push(line);
    }
    Ok(PublishedKey { serial: serial.to_owned(), id, label: label.to_owned(), key_tag: key_tag(&rdata), dnskey, ds })
}

/// The result of cloning a key onto other cards.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloneReport {
    /// Source card serial.
    pub source: String,
    /// Key id and label.
    pub id: u8,
    /// Label.
    pub label: String,
    /// The DKEK check value shared by all cards.
    pub kcv: String,
    /// Target card serials and the id the key got there.
    pub targets: Vec<(String, u8)>,
}

fn require_dkek(hsm: &ScHsm) -> Result<[u8; 8], CeremonyError> {
    let s = hsm.dkek_status()?;
    if s.total == 0 || s.outstanding != 0 {
        return Err(CeremonyError::Refused(format!(
            "{}: the DKEK is not complete ({} of {} shares imported)",
            hsm.reader(),
            s.total.saturating_sub(s.outstanding),
            s.total
        )));
    }
    Ok(s.kcv)
}

/// Signs a fresh challenge with the key on `hsm` and checks it against the
/// public key field `public`: proof that the card holds its private half.
fn prove(hsm: &ScHsm, id: u8, alg: Algorithm, public: &[u8]) -> Result<bool, CeremonyError> {
    let challenge = hsm.challenge(32)?;
    let digest = openssl::sha::sha256(&challenge).to_vec();
    let rsa = matches!(alg, Algorithm::RsaSha256 | Algorithm::RsaSha512);
    // The check uses SHA-256 whatever the key will sign with in the zone.
    let check_alg = if rsa { Algorithm::RsaSha256 } else { alg };
    let pk = PublicKey::from_parts(check_alg, public).map_err(|e| CeremonyError::Refused(format!("key {id}: {e}")))?;
    let sig = if rsa {
        hsm.sign_digest(id, true, &digest_info(crate::dns::algorithm::HashKind::Sha256, &digest))?
    } else {
        let der = hsm.sign_digest(id, false, &digest)?;
        let s = openssl::ecdsa::EcdsaSig::from_der(&der)
            .map_err(|_| CeremonyError::CloneMismatch(format!("{}: malformed ECDSA signature", hsm.reader())))?;
        let len = if alg == Algorithm::EcdsaP384Sha384 { 48 } else { 32 };
        let mut out = s.r().to_vec_padded(len).map_err(|e| CeremonyError::Refused(e.to_string()))?;
        out.extend(s.s().to_vec_padded(len).map_err(|e| CeremonyError::Refused(e.to_string()))?);
        out
    };
    Ok(pk.verify(&SignInput::Digest(digest), &sig))
}

/// Wraps key `id` on `from` and unwraps it onto every card in `to` (all with
/// the same DKEK), then proves each clone by signing a challenge and checking
/// it against the original's public key.
///
/// # Errors
/// DKEK incomplete or different (KCV shown), wrong PIN, card errors, a clone that does not sign like the original.
pub fn clone_key(
    from: &str,
    pins: &mut dyn FnMut(&str) -> Result<Secret, CeremonyError>,
    to: &[String],
    id: u8,
) -> Result<CloneReport, CeremonyError> {
    let src = ScHsm::connect(from)?;
    let kcv = require_dkek(&src)?;
    src.login(&pins(from)?)?;
    let key = src.keys()?.into_iter().find(|k| k.id == id).ok_or_else(|| CeremonyError::Refused(format!("{from}: no key with id {id}")))?;
    let alg = key.algorithm.ok_or_else(|| CeremonyError::Refused(format!("{from}: key {id} has no readable public key")))?;
    let blob = src.wrap(id)?;
    let request = src.read_file(0xCE00 | u16::from(id))?;
    let mut targets = Vec::new();
    for t in to {
        let dst = ScHsm::connect(t)?;
        let tkcv = require_dkek(&dst)?;
        if tkcv != kcv {
            return Err(CeremonyError::Refused(format!(
                "{t}: card {} has DKEK check value {}, the source has {}: it was initialised with other shares; nothing was unwrapped",
                dst.serial()?,
                data_encoding::HEXUPPER.encode(&tkcv),
                data_encoding::HEXUPPER.encode(&kcv)
            )));
        }
        dst.login(&pins(t)?)?;
        let existing = dst.keys()?;
        if let Some(k) = existing.iter().find(|k| k.public_key == key.public_key) {
            targets.push((dst.serial()?, k.id));
            continue;
        }
        let tid = if existing.iter().any(|k| k.id == id) { dst.free_key_id()? } else { id };
        dst.unwrap(tid, &blob, request.as_deref(), Some(&crate::smartcard::card::prkd(tid, &key.label, alg, &key.public_key)))?;
        if !prove(&dst, tid, alg, &key.public_key)? {
            return Err(CeremonyError::CloneMismatch(format!(
                "{t}: the unwrapped key does not sign like the original; delete it (key id {tid})"
            )));
        }
        targets.push((dst.serial()?, tid));
    }
    if !prove(&src, id, alg, &key.public_key)? {
        return Err(CeremonyError::CloneMismatch(format!("{from}: the source key does not match its own public key")));
    }
    Ok(CloneReport { source: src.serial()?, id, label: key.label, kcv: data_encoding::HEXUPPER.encode(&kcv), targets })
}

/// Writes key `id` wrapped under the DKEK to `out` in sc-hsm-tool's format
/// (`30 { 04 blob, PrKD, CV request }`), so `sc-hsm-tool --unwrap-key` takes it.
///
/// # Errors
/// DKEK incomplete, wrong PIN, card or file errors.
pub fn wrap_to_file(reader: &str, pin: &Secret, id: u8, out: &Path) -> Result<String, CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    let kcv = require_dkek(&hsm)?;
    hsm.login(pin)?;
    let blob = hsm.wrap(id)?;
    let mut body = apdu::tlv(0x04, &blob);
    if let Some(p) = hsm.read_file(0xC400 | u16::from(id))? {
        body.extend(p);
    }
    if let Some(c) = hsm.read_file(0xCE00 | u16::from(id))? {
        body.extend(c);
    }
    write_new(out, &apdu::tlv(0x30, &body))?;
    Ok(data_encoding::HEXUPPER.encode(&kcv))
}

/// Unwraps a key file made by [`wrap_to_file`] or `sc-hsm-tool --wrap-key` onto the card.
///
/// # Errors
/// Another DKEK (KCV shown), id in use, wrong PIN, card or file errors.
pub fn unwrap_from_file(reader: &str, pin: &Secret, file: &Path, id: Option<u8>) -> Result<u8, CeremonyError> {
    let bytes = std::fs::read(file).map_err(|source| CeremonyError::Io { path: file.display().to_string(), source })?;
    let malformed = || CeremonyError::Refused(format!("{}: not a SmartCard-HSM key file", file.display()));
    let top = apdu::parse_tlvs(&bytes).ok_or_else(malformed)?;
    let inner = apdu::find(&top, 0x30).ok_or_else(malformed)?;
    let parts = apdu::parse_tlvs(inner).ok_or_else(malformed)?;
    let blob = apdu::find(&parts, 0x04).ok_or_else(malformed)?;
    let hsm = ScHsm::connect(reader)?;
    let kcv = require_dkek(&hsm)?;
    if let Some(bk) = dkek::key_blob_kcv(blob)
        && bk != kcv
    {
        return Err(CeremonyError::Refused(format!(
            "{}: wrapped under DKEK {}, card {} has {}; nothing was unwrapped",
            file.display(),
            data_encoding::HEXUPPER.encode(&bk),
            hsm.serial()?,
            data_encoding::HEXUPPER.encode(&kcv)
        )));
    }
    hsm.login(pin)?;
    let id = match id {
        Some(i) => i,
        None => hsm.free_key_id()?,
    };
    if hsm.keys()?.iter().any(|k| k.id == id) {
        return Err(CeremonyError::Refused(format!("{reader}: key id {id} is in use; delete it first or choose another")));
    }
    // The PrKD and CV request travel in the file (tags A0/30 and 67/7F21).
    let prkd = parts.iter().find(|(t, _)| *t == 0xA0 || *t == 0x30).map(|(t, v)| apdu::tlv(*t, v));
    let request = parts.iter().find(|(t, _)| *t == 0x67 || *t == 0x7F21).map(|(t, v)| apdu::tlv(*t, v));
    hsm.unwrap(id, blob, request.as_deref(), prkd.as_deref())?;
    Ok(id)
}

/// Finds a reader: `serial:S` names the card by its serial; anything else is a reader name.
///
/// # Errors
/// No card with that serial (lists the cards present).
pub fn resolve_reader(spec: &str) -> Result<String, CeremonyError> {
    let Some(serial) = spec.strip_prefix("serial:") else { return Ok(spec.to_owned()) };
    let mut present = Vec::new();
    for r in readers()?.into_iter().filter(|r| r.card) {
        if let Ok(hsm) = ScHsm::connect(&r.name)
            && let Ok(s) = hsm.serial()
        {
            if s == serial {
                return Ok(r.name);
            }
            present.push(format!("{s} in {}", r.name));
        }
    }
    Err(CeremonyError::Refused(format!(
        "no SmartCard-HSM with serial {serial}; present: {}",
        if present.is_empty() { "none".to_owned() } else { present.join(", ") }
    )))
}

/// The id of the key labelled `label` (or given as a number) on the card.
///
/// # Errors
/// No such key (lists the keys there).
pub fn key_id(reader: &str, key: &str) -> Result<u8, CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    let keys = hsm.keys()?;
    if let Some(k) = keys.iter().find(|k| k.label == key) {
        return Ok(k.id);
    }
    if let Ok(n) = key.parse::<u8>()
        && keys.iter().any(|k| k.id == n)
    {
        return Ok(n);
    }
    Err(CeremonyError::Refused(format!(
        "{reader}: no key '{key}'; keys there: {}",
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.iter().map(|k| format!("{} '{}'", k.id, k.label)).collect::<Vec<_>>().join(", ")
        }
    )))
}

/// Deletes a key from a card.
///
/// # Errors
/// Wrong PIN, card errors.
pub fn delete(reader: &str, pin: &Secret, id: u8) -> Result<(), CeremonyError> {
    let hsm = ScHsm::connect(reader)?;
    hsm.login(pin)?;
    Ok(hsm.delete_key(id)?)
}

/// Changes the user PIN.
///
/// # Errors
/// Old PIN wrong (tries left), blocked.
pub fn change_pin(reader: &str, old: &Secret, new: &Secret) -> Result<(), CeremonyError> {
    Ok(ScHsm::connect(reader)?.change_pin(old, new)?)
}

/// Unblocks the user PIN with the SO-PIN and sets a new one.
///
/// # Errors
/// SO-PIN wrong (tries left), blocked.
pub fn unblock(reader: &str, so: &Secret, new: &Secret) -> Result<(), CeremonyError> {
    let so = so_pin_bytes(so)?;
    Ok(ScHsm::connect(reader)?.unblock(&so, new)?)
}
