//! Host-side cryptography: hashing the data to be signed, reading public keys
//! out of DNSKEY records, and verifying every signature before it is used.
//!
//! Devices receive a digest where the algorithm allows it (RSA PKCS#1 v1.5
//! over a DigestInfo, ECDSA over the hash); Ed25519 needs the whole message.

pub mod dnskey;
pub mod public;

use crate::dns::algorithm::{Algorithm, HashKind};
use openssl::hash::{MessageDigest, hash};

/// What a key is asked to sign: the host-made digest, or the message itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInput {
    /// The hash of the data to be signed (RSA, ECDSA).
    Digest(Vec<u8>),
    /// The data to be signed itself (Ed25519).
    Message(Vec<u8>),
}

impl SignInput {
    /// Prepares the input for `alg` from the RFC 4034 section 3.1.8.1 data.
    ///
    /// # Errors
    /// An OpenSSL failure while hashing.
    pub fn prepare(alg: Algorithm, data: Vec<u8>) -> Result<Self, openssl::error::ErrorStack> {
        Ok(match digest_of(alg.hash()) {
            Some(md) => SignInput::Digest(hash(md, &data)?.to_vec()),
            None => SignInput::Message(data),
        })
    }

    /// The bytes handed to the key.
    pub fn bytes(&self) -> &[u8] {
        match self {
            SignInput::Digest(d) | SignInput::Message(d) => d,
        }
    }
}

/// The OpenSSL digest for a hash kind (`None` for Ed25519).
pub fn digest_of(kind: HashKind) -> Option<MessageDigest> {
    match kind {
        HashKind::Sha256 => Some(MessageDigest::sha256()),
        HashKind::Sha384 => Some(MessageDigest::sha384()),
        HashKind::Sha512 => Some(MessageDigest::sha512()),
        HashKind::None => None,
    }
}

/// The DER DigestInfo prefix (RFC 8017 section 9.2, note 1) for RSA signing.
pub fn digest_info_prefix(kind: HashKind) -> &'static [u8] {
    match kind {
        HashKind::Sha256 => {
            &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20]
        }
        HashKind::Sha384 => {
            &[0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30]
        }
        HashKind::Sha512 => {
            &[0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40]
        }
        HashKind::None => &[],
    }
}

/// DigestInfo (prefix and digest) for RSA PKCS#1 v1.5 signing of a digest.
pub fn digest_info(kind: HashKind, digest: &[u8]) -> Vec<u8> {
    let mut v = digest_info_prefix(kind).to_vec();
    v.extend_from_slice(digest);
    v
}
