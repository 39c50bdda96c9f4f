//! The signing seam: what the engine, the signing pool and every key store share.
//!
//! The engine sees a [`SigningKey`]: what the key is ([`KeyInfo`]) and one
//! operation, signing a *batch* of host-prepared inputs. Batches let slow
//! hardware be driven efficiently (a store decides how to spread a batch over
//! its devices); host-side preparation means a card receives a digest, not an
//! RRset. The engine verifies what comes back. Stores are synchronous on
//! purpose: concurrency and fail-over live above them, in the signing pool.
//!
//! This module knows nothing of devices; it sits below the pool and the key
//! stores and above the DNS types, so that each of them can use it without
//! importing the others.

use crate::crypto::SignInput;
use crate::dns::algorithm::{Algorithm, HashKind};
use std::path::PathBuf;

/// What a key is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Key-signing key: signs the DNSKEY RRset (and CDS/CDNSKEY).
    Ksk,
    /// Zone-signing key: signs everything else.
    Zsk,
    /// Combined signing key: does both.
    Csk,
}

impl Role {
    /// DNSKEY flags for the role (SEP bit for KSK and CSK).
    pub fn flags(self) -> u16 {
        match self {
            Role::Ksk | Role::Csk => crate::crypto::dnskey::FLAG_ZONE | crate::crypto::dnskey::FLAG_SEP,
            Role::Zsk => crate::crypto::dnskey::FLAG_ZONE,
        }
    }

    /// Parses `ksk`, `zsk` or `csk`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ksk" => Some(Role::Ksk),
            "zsk" => Some(Role::Zsk),
            "csk" => Some(Role::Csk),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ksk => "ksk",
            Role::Zsk => "zsk",
            Role::Csk => "csk",
        }
    }

    /// True if the role signs the DNSKEY RRset.
    pub fn signs_keys(self) -> bool {
        matches!(self, Role::Ksk | Role::Csk)
    }

    /// True if the role signs zone data.
    pub fn signs_zone(self) -> bool {
        matches!(self, Role::Zsk | Role::Csk)
    }
}

/// What the engine and the operator need to know about a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Identifier within its store (for the software store, the BIND base name).
    pub id: String,
    /// Store kind: `software`, later `pkcs11`, `tpm`.
    pub backend: &'static str,
    /// Zone the key belongs to, presentation form.
    pub zone: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Role.
    pub role: Role,
    /// DNSKEY RDATA.
    #[serde(skip)]
    pub dnskey: Vec<u8>,
    /// Key tag of the DNSKEY.
    pub key_tag: u16,
}

/// Errors of key stores, named after the key or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file is malformed.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No such key; lists what there is.
    #[error("no key {wanted} in {store}; available: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NotFound {
        /// What was asked for.
        wanted: String,
        /// The store searched.
        store: String,
        /// Keys that are there.
        available: Vec<String>,
    },
    /// The private key does not match the public key it was stored with.
    #[error("key {id}: private key does not match its DNSKEY")]
    Mismatch {
        /// The key.
        id: String,
    },
    /// A cryptographic operation failed.
    #[error("key {id}: {op} failed: {detail}")]
    Crypto {
        /// The key.
        id: String,
        /// The operation.
        op: &'static str,
        /// Library detail.
        detail: String,
    },
    /// An algorithm the store cannot handle.
    #[error("algorithm {0} is not supported")]
    Unsupported(String),
    /// A device or the pool of devices failed (PKCS#11, TPM or pool error).
    #[error(transparent)]
    Device(Box<dyn std::error::Error + Send + Sync>),
}

/// A key that can sign: the engine's whole view of a key store.
pub trait SigningKey: Send + Sync {
    /// What the key is.
    fn info(&self) -> &KeyInfo;

    /// True when the key lives in a device whose signatures must always be
    /// verified on the host, whatever the operator configured.
    fn is_device(&self) -> bool {
        true
    }

    /// True when the store has already verified every signature it returns
    /// against this key's DNSKEY on the host (the signing pool does), so the
    /// engine need not verify again.
    fn verifies_on_host(&self) -> bool {
        false
    }

    /// True when the store wants the whole message to be signed rather than
    /// its digest (Ed25519, or a device that only has hash-and-sign mechanisms).
    fn wants_message(&self) -> bool {
        self.info().algorithm.hash() == HashKind::None
    }

    /// How many signatures the engine should hand over at once.
    fn preferred_batch(&self) -> usize {
        4096
    }

    /// Signs a batch of inputs, returning one DNSSEC wire-form signature per input, in order.
    ///
    /// A store may sign in parallel or spread the batch over several devices.
    ///
    /// # Errors
    /// A failure that makes the whole batch unusable.
    fn sign_batch(&self, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, KeyError>;
}
