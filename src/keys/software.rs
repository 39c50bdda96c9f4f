//! The built-in software key store: keys generated and held on the host, in a
//! directory, in BIND's `K<zone>+<alg>+<tag>.key/.private` format so that keys
//! move freely between hwsigner, `dnssec-signzone` and `ldns-signzone`.
//!
//! It is the default when no hardware is configured, and the reference the
//! hardware stores are tested against. Private files are created mode 0600.

use super::bind_format;
use crate::crypto::dnskey::{dnskey_rdata, key_tag};
use crate::crypto::{SignInput, digest_info};
use crate::dns::algorithm::Algorithm;
use crate::sign::{KeyError, KeyInfo, Role, SigningKey};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Private key material, held in OpenSSL types (freed with clearing).
pub enum PrivateKey {
    /// RSA.
    Rsa(Rsa<Private>),
    /// ECDSA, with coordinate length in octets.
    Ec(EcKey<Private>, usize),
    /// Ed25519.
    Ed25519(PKey<Private>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

fn ossl<'a>(id: &'a str, op: &'static str) -> impl Fn(openssl::error::ErrorStack) -> KeyError + 'a {
    move |e| KeyError::Crypto { id: id.to_owned(), op, detail: e.to_string() }
}

impl PrivateKey {
    /// Generates a new key. `bits` applies to RSA only.
    ///
    /// # Errors
    /// OpenSSL failures.
    pub fn generate(alg: Algorithm, bits: u32) -> Result<Self, KeyError> {
        let e = ossl("new key", "key generation");
        Ok(match alg {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                if !(1024..=4096).contains(&bits) {
                    return Err(KeyError::Unsupported(format!("{alg} with {bits} bits (1024-4096)")));
                }
                PrivateKey::Rsa(Rsa::generate(bits).map_err(&e)?)
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                let (nid, len) = ec_params(alg);
                let group = EcGroup::from_curve_name(nid).map_err(&e)?;
                PrivateKey::Ec(EcKey::generate(&group).map_err(&e)?, len)
            }
            Algorithm::Ed25519 => PrivateKey::Ed25519(PKey::generate_ed25519().map_err(&e)?),
        })
    }

    /// The DNSKEY public key field (RFC 3110, RFC 6605, RFC 8080).
    ///
    /// # Errors
    /// OpenSSL failures.
    pub fn public_key_field(&self) -> Result<Vec<u8>, KeyError> {
        let e = ossl("key", "public key export");
        Ok(match self {
            PrivateKey::Rsa(rsa) => crate::crypto::dnskey::rsa_public_field(&rsa.e().to_vec(), &rsa.n().to_vec()),
            PrivateKey::Ec(key, _) => {
                let mut ctx = BigNumContext::new().map_err(&e)?;
                let bytes = key.public_key().to_bytes(key.group(), PointConversionForm::UNCOMPRESSED, &mut ctx).map_err(&e)?;
                bytes[1..].to_vec()
            }
            PrivateKey::Ed25519(k) => k.raw_public_key().map_err(&e)?,
        })
    }

    /// Signs one prepared input; returns the DNSSEC wire-form signature.
    ///
    /// # Errors
    /// OpenSSL failures or an input of the wrong kind for the key.
    pub fn sign(&self, alg: Algorithm, input: &SignInput, id: &str) -> Result<Vec<u8>, KeyError> {
        let e = ossl(id, "signing");
        match (self, input) {
            (PrivateKey::Rsa(rsa), SignInput::Digest(d)) => {
                let di = digest_info(alg.hash(), d);
                let mut sig = vec![0u8; rsa.size() as usize];
                let n = rsa.private_encrypt(&di, &mut sig, Padding::PKCS1).map_err(&e)?;
                sig.truncate(n);
                Ok(sig)
            }
            (PrivateKey::Ec(key, len), SignInput::Digest(d)) => {
                let s = EcdsaSig::sign(d, key).map_err(&e)?;
                let mut out = s.r().to_vec_padded(*len as i32).map_err(&e)?;
                out.extend_from_slice(&s.s().to_vec_padded(*len as i32).map_err(&e)?);
                Ok(out)
            }
            (PrivateKey::Ed25519(k), SignInput::Message(m)) => {
                let mut signer = Signer::new_without_digest(k).map_err(&e)?;
                signer.sign_oneshot_to_vec(m).map_err(&e)
            }
            _ => Err(KeyError::Crypto { id: id.to_owned(), op: "signing", detail: "input kind does not match the key".into() }),
        }
    }

    /// Builds an Ed25519 key from its 32-octet seed.
    ///
    /// # Errors
    /// A seed of the wrong length.
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, openssl::error::ErrorStack> {
        Ok(PrivateKey::Ed25519(PKey::private_key_from_raw_bytes(seed, Id::ED25519)?))
    }
}

/// Curve and coordinate length for the ECDSA algorithms.
pub fn ec_params(alg: Algorithm) -> (Nid, usize) {
    if alg == Algorithm::EcdsaP384Sha384 { (Nid::SECP384R1, 48) } else { (Nid::X9_62_PRIME256V1, 32) }
}

/// A software key ready to sign.
#[derive(Debug)]
pub struct SoftwareKey {
    info: KeyInfo,
    private: PrivateKey,
}

impl SoftwareKey {
    /// Wraps a private key; checks that it matches `dnskey` when given.
    ///
    /// # Errors
    /// [`KeyError::Mismatch`] when the private key does not belong to `dnskey`.
    pub fn new(info: KeyInfo, private: PrivateKey) -> Result<Self, KeyError> {
        let field = private.public_key_field()?;
        if info.dnskey.get(4..) != Some(field.as_slice()) {
            return Err(KeyError::Mismatch { id: info.id });
        }
        Ok(SoftwareKey { info, private })
    }

    /// The private key, for export.
    pub fn private(&self) -> &PrivateKey {
        &self.private
    }
}

impl SigningKey for SoftwareKey {
    fn info(&self) -> &KeyInfo {
        &self.info
    }

    fn is_device(&self) -> bool {
        false
    }

    fn sign_batch(&self, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, KeyError> {
        inputs.par_iter().map(|i| self.private.sign(self.info.algorithm, i, &self.info.id)).collect()
    }
}

/// A directory of BIND-format key files.
#[derive(Debug, Clone)]
pub struct SoftwareStore {
    dir: PathBuf,
}

impl SoftwareStore {
    /// A store in `dir` (created on first key generation).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SoftwareStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists the keys in the store, for `zone` if given (presentation form, any case).
    ///
    /// # Errors
    /// Unreadable directory or malformed public key files.
    pub fn list(&self, zone: Option<&str>) -> Result<Vec<KeyInfo>, KeyError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeyError::Io { path: self.dir.clone(), source });
            }
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| KeyError::Io { path: self.dir.clone(), source })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('K') && name.ends_with(".key")) {
                continue;
            }
            let info = bind_format::read_public(&entry.path())?;
            if zone.is_none_or(|z| same_zone(z, &info.zone)) {
                out.push(info);
            }
        }
        out.sort_by(|a, b| (&a.zone, a.role.as_str(), a.key_tag).cmp(&(&b.zone, b.role.as_str(), b.key_tag)));
        Ok(out)
    }

    /// Opens a key by id (BIND base name) or key tag.
    ///
    /// # Errors
    /// [`KeyError::NotFound`] listing the keys present, or file errors.
    pub fn open(&self, zone: Option<&str>, wanted: &str) -> Result<SoftwareKey, KeyError> {
        let keys = self.list(zone)?;
        let found = keys.iter().find(|k| k.id == wanted || k.key_tag.to_string() == wanted);
        match found {
            Some(info) => self.open_info(info.clone()),
            None => Err(KeyError::NotFound {
                wanted: wanted.to_owned(),
                store: self.dir.display().to_string(),
                available: keys
                    .iter()
                    .map(|k| format!("{} ({} {} tag {})", k.id, k.role.as_str(), k.algorithm.mnemonic(), k.key_tag))
                    .collect(),
            }),
        }
    }

    /// Opens every key of `zone`.
    ///
    /// # Errors
    /// File errors or a private key that does not match its public key.
    pub fn open_zone(&self, zone: &str) -> Result<Vec<SoftwareKey>, KeyError> {
        self.list(Some(zone))?.into_iter().map(|i| self.open_info(i)).collect()
    }

    fn open_info(&self, info: KeyInfo) -> Result<SoftwareKey, KeyError> {
        let path = self.dir.join(format!("{}.private", info.id));
        let (alg, private) = bind_format::read_private(&path)?;
        if alg != info.algorithm {
            return Err(KeyError::Format { path, reason: format!("algorithm {alg} does not match the .key file's {}", info.algorithm) });
        }
        SoftwareKey::new(info, private)
    }

    /// Generates a key for `zone` and writes its files.
    ///
    /// # Errors
    /// Key generation or file errors.
    pub fn generate(&self, zone_wire: &[u8], alg: Algorithm, role: Role, bits: u32) -> Result<KeyInfo, KeyError> {
        let private = PrivateKey::generate(alg, bits)?;
        self.store(zone_wire, alg, role, private)
    }

    /// Writes a key into the store (generation and BIND import both end here).
    ///
    /// # Errors
    /// File errors.
    pub fn store(&self, zone_wire: &[u8], alg: Algorithm, role: Role, private: PrivateKey) -> Result<KeyInfo, KeyError> {
        let dnskey = dnskey_rdata(role.flags(), alg, &private.public_key_field()?);
        let zone = crate::dns::name::WireName(zone_wire).to_string().to_ascii_lowercase();
        let tag = key_tag(&dnskey);
        let id = format!("K{zone}+{:03}+{tag:05}", alg.number());
        let info = KeyInfo { id, backend: "software", zone, algorithm: alg, role, dnskey, key_tag: tag };
        std::fs::create_dir_all(&self.dir).map_err(|source| KeyError::Io { path: self.dir.clone(), source })?;
        bind_format::write_key_files(&self.dir, &info, &private)?;
        Ok(info)
    }
}

/// Compares zone names in presentation form, ignoring case and a missing final dot.
pub fn same_zone(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        if s.ends_with('.') { s } else { format!("{s}.") }
    };
    norm(a) == norm(b)
}
