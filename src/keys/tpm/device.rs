//! Talking to a TPM 2.0 through tss-esapi: the storage primary key, signing
//! keys made inside the TPM, signing host digests, and what the TPM is.
//!
//! All TPM commands of a run go through one worker process per TPM (the
//! signing pool's worker): a TPM without a resource manager fails when two
//! clients use it at once, and a hung TPM is then handled like a hung token.

use super::{Parent, TpmError, WorkerHello};
use crate::crypto::SignInput;
use crate::dns::algorithm::Algorithm;
use crate::pool::protocol::{Failure, FailureKind};
use crate::pool::worker::DeviceSigner;
use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::{KeyHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::structures::{
    Auth, Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    RsaExponent, RsaScheme, Signature, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::utils::{create_unrestricted_signing_ecc_public, create_unrestricted_signing_rsa_public};

/// Classifies a TPM error: wrong authorisation and lockout are never retried;
/// integrity failures mean the blobs belong to another TPM.
pub fn classify(tcti: &str, op: &'static str, e: tss_esapi::Error) -> TpmError {
    match e {
        tss_esapi::Error::Tss2Error(rc) => match rc.kind() {
            Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => TpmError::AuthFail { tcti: tcti.to_owned() },
            Some(Tss2ResponseCodeKind::Lockout) => TpmError::Lockout { tcti: tcti.to_owned() },
            Some(Tss2ResponseCodeKind::Integrity) => TpmError::ForeignBlob { tcti: tcti.to_owned() },
            Some(kind) => TpmError::Call {
                tcti: tcti.to_owned(),
                op,
                detail: rc.to_string(),
                transient: matches!(
                    kind,
                    Tss2ResponseCodeKind::ObjectMemory
                        | Tss2ResponseCodeKind::Retry
                        | Tss2ResponseCodeKind::Yielded
                        | Tss2ResponseCodeKind::Canceled
                ),
            },
            // Codes from the TCTI or the ESYS layer: the TPM or its connection went away.
            None => TpmError::Call { tcti: tcti.to_owned(), op, detail: format!("{e}"), transient: true },
        },
        tss_esapi::Error::WrapperError(w) => TpmError::Call { tcti: tcti.to_owned(), op, detail: w.to_string(), transient: false },
    }
}

/// Opens a TPM by TCTI string.
///
/// # Errors
/// A TCTI that does not parse or cannot connect.
pub fn connect(tcti: &str) -> Result<Context, TpmError> {
    let conf = TctiNameConf::from_str(tcti).map_err(|e| TpmError::Tcti { tcti: tcti.to_owned(), detail: e.to_string() })?;
    Context::new(conf).map_err(|e| TpmError::Tcti { tcti: tcti.to_owned(), detail: e.to_string() })
}

/// The storage primary key template: ECC P-256, restricted decryption, no
/// dictionary-attack protection. The TPM derives the same key from the same
/// template every time, so blobs made under it load again after a restart.
fn srk_template() -> Result<Public, tss_esapi::Error> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(SymmetricDefinitionObject::AES_128_CFB, EccCurve::NistP256)
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The parent of the signing keys: re-created from the template, or the persistent handle.
///
/// # Errors
/// TPM errors.
pub fn parent(ctx: &mut Context, tcti: &str, p: &Parent) -> Result<(KeyHandle, bool), TpmError> {
    match p {
        Parent::Template => {
            let tmpl = srk_template().map_err(|e| classify(tcti, "building the primary key template", e))?;
            let r = ctx
                .execute_with_nullauth_session(|c| c.create_primary(Hierarchy::Owner, tmpl, None, None, None, None))
                .map_err(|e| classify(tcti, "TPM2_CreatePrimary", e))?;
            Ok((r.key_handle, true))
        }
        Parent::Persistent(h) => {
            let handle = PersistentTpmHandle::new(*h).map_err(|e| classify(tcti, "persistent handle", e))?;
            let obj = ctx
                .tr_from_tpm_public(TpmHandle::Persistent(handle))
                .map_err(|e| classify(tcti, "reading the persistent primary key", e))?;
            Ok((obj.into(), false))
        }
    }
}

/// Persists the storage primary key at `handle` (for tpm2-tools and faster start-up).
///
/// # Errors
/// The handle is taken, owner authorisation is set, TPM errors.
pub fn persist_srk(tcti: &str, handle: u32) -> Result<(), TpmError> {
    let mut ctx = connect(tcti)?;
    let (srk, _) = parent(&mut ctx, tcti, &Parent::Template)?;
    let ph = PersistentTpmHandle::new(handle).map_err(|e| classify(tcti, "persistent handle", e))?;
    ctx.execute_with_nullauth_session(|c| c.evict_control(Provision::Owner, srk.into(), Persistent::Persistent(ph)))
        .map_err(|e| classify(tcti, "TPM2_EvictControl", e))?;
    let _ = ctx.flush_context(srk.into());
    Ok(())
}

/// The DNSKEY public key field of a TPM public area.
///
/// # Errors
/// A key that is neither RSA nor ECC P-256/P-384.
pub fn public_field(p: &Public) -> Result<(Algorithm, Vec<u8>), TpmError> {
    match p {
        Public::Ecc { unique, parameters, .. } => {
            let (alg, len) = match parameters.ecc_curve() {
                EccCurve::NistP256 => (Algorithm::EcdsaP256Sha256, 32),
                EccCurve::NistP384 => (Algorithm::EcdsaP384Sha384, 48),
                c => return Err(TpmError::Unsupported(format!("curve {c:?}"))),
            };
            let mut out = pad(unique.x().value(), len);
            out.extend(pad(unique.y().value(), len));
            Ok((alg, out))
        }
        Public::Rsa { unique, parameters, .. } => {
            let e = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let exp: Vec<u8> = e.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
            Ok((Algorithm::RsaSha256, crate::crypto::dnskey::rsa_public_field(&exp, unique.value())))
        }
        _ => Err(TpmError::Unsupported("a key that is neither RSA nor ECC".into())),
    }
}

fn pad(v: &[u8], len: usize) -> Vec<u8> {
    let v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
    let mut out = vec![0u8; len.saturating_sub(v.len())];
    out.extend(v);
    out
}

/// A key made in the TPM: its public and private blobs and DNSKEY public key field.
pub struct CreatedKey {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// TPMT_PUBLIC.
    pub public: Vec<u8>,
    /// TPM2B_PRIVATE contents.
    pub private: Vec<u8>,
    /// DNSKEY public key field.
    pub field: Vec<u8>,
}

/// Creates a signing key inside the TPM: unrestricted, fixedTPM, fixedParent,
/// sensitiveDataOrigin; ECDSA P-256 or RSA-2048 RSASSA-SHA256.
///
/// # Errors
/// Unsupported algorithm, TPM errors.
pub fn create_key(tcti: &str, p: &Parent, alg: Algorithm, auth: Option<&[u8]>) -> Result<CreatedKey, TpmError> {
    let tmpl = match alg {
        Algorithm::EcdsaP256Sha256 => {
            create_unrestricted_signing_ecc_public(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)), EccCurve::NistP256)
        }
        Algorithm::RsaSha256 => create_unrestricted_signing_rsa_public(
            RsaScheme::RsaSsa(HashScheme::new(HashingAlgorithm::Sha256)),
            RsaKeyBits::Rsa2048,
            RsaExponent::default(),
        ),
        other => return Err(TpmError::Unsupported(format!("{other} (the TPM store makes ECDSAP256SHA256 (13) and RSASHA256 (8) keys)"))),
    }
    .map_err(|e| classify(tcti, "building the key template", e))?;
    let mut ctx = connect(tcti)?;
    let (srk, transient) = parent(&mut ctx, tcti, p)?;
    let auth = match auth {
        Some(a) => Some(Auth::try_from(a.to_vec()).map_err(|e| classify(tcti, "authorisation value", e))?),
        None => None,
    };
    let r =
        ctx.execute_with_nullauth_session(|c| c.create(srk, tmpl, auth, None, None, None)).map_err(|e| classify(tcti, "TPM2_Create", e))?;
    if transient {
        let _ = ctx.flush_context(srk.into());
    }
    let (algorithm, field) = public_field(&r.out_public)?;
    let public = r.out_public.marshall().map_err(|e| classify(tcti, "encoding the public area", e))?;
    Ok(CreatedKey {
        algorithm: if algorithm == Algorithm::RsaSha256 { alg } else { algorithm },
        public,
        private: r.out_private.value().to_vec(),
        field,
    })
}

/// What a TPM says about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TpmInfo {
    /// TCTI used.
    pub tcti: String,
    /// Manufacturer id (four characters).
    pub manufacturer: String,
    /// Vendor string.
    pub vendor: String,
    /// Firmware version.
    pub firmware: String,
    /// Free persistent object slots.
    pub persistent_free: Option<u32>,
    /// Dictionary-attack failures counted, the maximum, and the recovery interval in seconds.
    pub lockout: (Option<u32>, Option<u32>, Option<u32>),
    /// Whether the algorithms hwsigner uses are there.
    pub algorithms: Vec<(String, bool)>,
}

/// Reads the TPM's properties.
///
/// # Errors
/// TPM errors.
pub fn info(tcti: &str) -> Result<TpmInfo, TpmError> {
    use tss_esapi::constants::PropertyTag;
    let mut ctx = connect(tcti)?;
    let mut prop = |t: PropertyTag| ctx.get_tpm_property(t).map_err(|e| classify(tcti, "TPM2_GetCapability", e));
    let chars = |v: Option<u32>| {
        v.map(|n| n.to_be_bytes().iter().filter(|&&b| b != 0).map(|&b| char::from(b)).collect::<String>()).unwrap_or_default()
    };
    let manufacturer = chars(prop(PropertyTag::Manufacturer)?);
    let fw1 = prop(PropertyTag::FirmwareVersion1)?.unwrap_or(0);
    let fw2 = prop(PropertyTag::FirmwareVersion2)?.unwrap_or(0);
    let persistent_free = prop(PropertyTag::HrPersistentAvail)?;
    let lockout = (prop(PropertyTag::LockoutCounter)?, prop(PropertyTag::MaxAuthFail)?, prop(PropertyTag::LockoutInterval)?);
    let vendor = tss_esapi::utils::get_tpm_vendor(&mut ctx).map_err(|e| classify(tcti, "TPM2_GetCapability", e))?;
    let (caps, _) = ctx
        .get_capability(tss_esapi::constants::CapabilityType::Algorithms, 0, 128)
        .map_err(|e| classify(tcti, "TPM2_GetCapability", e))?;
    let have: Vec<String> = match caps {
        tss_esapi::structures::CapabilityData::Algorithms(list) => list.iter().map(|a| format!("{:?}", a.algorithm_identifier())).collect(),
        _ => Vec::new(),
    };
    let algorithms = ["Rsa", "Ecc", "RsaSsa", "EcDsa", "Sha256"].iter().map(|n| ((*n).to_owned(), have.iter().any(|h| h == n))).collect();
    Ok(TpmInfo {
        tcti: tcti.to_owned(),
        manufacturer,
        vendor,
        firmware: format!("{}.{}.{}.{}", fw1 >> 16, fw1 & 0xffff, fw2 >> 16, fw2 & 0xffff),
        persistent_free,
        lockout,
        algorithms,
    })
}

/// A worker's open TPM with its keys loaded.
pub struct TpmDevice {
    ctx: Context,
    tcti: String,
    keys: Vec<(KeyHandle, Algorithm, Vec<u8>)>,
}

impl TpmDevice {
    /// Connects, derives or finds the parent, and loads every key of the Hello.
    ///
    /// # Errors
    /// [`TpmError`]; blobs from another TPM are reported as such.
    pub fn open(h: &WorkerHello) -> Result<Self, TpmError> {
        let mut ctx = connect(&h.tcti)?;
        let (srk, transient) = parent(&mut ctx, &h.tcti, &h.parent)?;
        let mut keys = Vec::new();
        for k in &h.keys {
            let bad = |what: &str| TpmError::Blob(format!("{}: {what}", k.name));
            let public_bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(k.public.as_bytes()).map_err(|_| bad("public blob is not hex"))?;
            let private_bytes =
                data_encoding::HEXLOWER_PERMISSIVE.decode(k.private.as_bytes()).map_err(|_| bad("private blob is not hex"))?;
            let public = Public::unmarshall(&public_bytes).map_err(|_| bad("public blob does not parse"))?;
            let private = Private::try_from(private_bytes).map_err(|_| bad("private blob too long"))?;
            let handle = ctx
                .execute_with_nullauth_session(|c| c.load(srk, private, public.clone()))
                .map_err(|e| classify(&h.tcti, "TPM2_Load", e))?;
            if let Some(a) = &k.auth {
                let auth = Auth::try_from(a.as_bytes().to_vec()).map_err(|e| classify(&h.tcti, "authorisation value", e))?;
                ctx.tr_set_auth(handle.into(), auth).map_err(|e| classify(&h.tcti, "setting the authorisation", e))?;
            }
            let (family, field) = public_field(&public)?;
            let alg = Algorithm::from_number(k.algorithm).unwrap_or(family);
            keys.push((handle, alg, field));
        }
        // Loaded keys stay usable without their parent; freeing its slot
        // matters on TPMs with three transient slots.
        if transient {
            let _ = ctx.flush_context(srk.into());
        }
        let mut dev = TpmDevice { ctx, tcti: h.tcti.clone(), keys };
        // A wrong authorisation value shows only when the key is used: one
        // probe signature per key with a value makes it fail at start (one
        // dictionary-attack count, as any first signature would) rather than
        // in the middle of a run.
        for (i, k) in h.keys.iter().enumerate() {
            if k.auth.is_some() {
                let alg = dev.keys[i].1;
                let len = match alg.hash() {
                    crate::dns::algorithm::HashKind::Sha384 => 48,
                    crate::dns::algorithm::HashKind::Sha512 => 64,
                    _ => 32,
                };
                dev.sign_digest(i, &vec![0u8; len])?;
            }
        }
        Ok(dev)
    }

    fn sign_digest(&mut self, key: usize, digest: &[u8]) -> Result<Vec<u8>, TpmError> {
        let (handle, alg, _) = self.keys.get(key).ok_or_else(|| TpmError::Blob(format!("no key {key}")))?.clone();
        let ticket =
            HashcheckTicket::try_from(TPMT_TK_HASHCHECK { tag: TPM2_ST_HASHCHECK, hierarchy: TPM2_RH_NULL, digest: Default::default() })
                .map_err(|e| classify(&self.tcti, "hashcheck ticket", e))?;
        let d = Digest::try_from(digest.to_vec()).map_err(|e| classify(&self.tcti, "digest", e))?;
        let scheme = match alg {
            Algorithm::EcdsaP256Sha256 => SignatureScheme::EcDsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha256) },
            Algorithm::EcdsaP384Sha384 => SignatureScheme::EcDsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha384) },
            Algorithm::RsaSha256 => SignatureScheme::RsaSsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha256) },
            Algorithm::RsaSha512 => SignatureScheme::RsaSsa { hash_scheme: HashScheme::new(HashingAlgorithm::Sha512) },
            Algorithm::Ed25519 => return Err(TpmError::Unsupported("Ed25519".into())),
        };
        let tcti = self.tcti.clone();
        let sig =
            self.ctx.execute_with_nullauth_session(|c| c.sign(handle, d, scheme, ticket)).map_err(|e| classify(&tcti, "TPM2_Sign", e))?;
        match sig {
            Signature::EcDsa(s) => {
                let len = if alg == Algorithm::EcdsaP384Sha384 { 48 } else { 32 };
                let mut out = pad(s.signature_r().value(), len);
                out.extend(pad(s.signature_s().value(), len));
                Ok(out)
            }
            Signature::RsaSsa(s) => Ok(s.signature().value().to_vec()),
            _ => Err(TpmError::Unsupported("an unexpected signature scheme".into())),
        }
    }
}

impl DeviceSigner for TpmDevice {
    fn public_keys(&self) -> Vec<Vec<u8>> {
        self.keys.iter().map(|k| k.2.clone()).collect()
    }

    fn describe(&self) -> String {
        format!("TPM at {}", self.tcti)
    }

    fn needs_message(&self) -> bool {
        false
    }

    fn sign(&mut self, key: usize, input: &SignInput) -> Result<Vec<u8>, Failure> {
        match input {
            SignInput::Digest(d) => self.sign_digest(key, d).map_err(TpmError::into_failure),
            SignInput::Message(_) => Err(Failure::new(FailureKind::Fatal, "the TPM signs digests only")),
        }
    }
}

impl Drop for TpmDevice {
    fn drop(&mut self) {
        for (h, _, _) in &self.keys {
            let _ = self.ctx.flush_context((*h).into());
        }
    }
}
