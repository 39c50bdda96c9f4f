//! Public keys read from DNSKEY RDATA, and host-side signature verification.
//!
//! Every signature a device returns is checked here before it is written
//! (the cheapest insurance against a faulty card or driver).

use super::{SignInput, digest_info};
use crate::dns::algorithm::Algorithm;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Verifier;

/// Why a DNSKEY's public key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    /// Algorithm not supported by the signer.
    #[error("unsupported DNSKEY algorithm {0}")]
    Algorithm(u8),
    /// Key field malformed for its algorithm.
    #[error("malformed {0} public key in DNSKEY")]
    Malformed(&'static str),
    /// OpenSSL refused the key.
    #[error("public key rejected by OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A public key ready to verify signatures.
pub enum PublicKey {
    /// RSA (algorithms 8, 10).
    Rsa(Algorithm, Rsa<Public>),
    /// ECDSA (algorithms 13, 14), with the coordinate length.
    Ec(Algorithm, EcKey<Public>, usize),
    /// Ed25519.
    Ed25519(PKey<Public>),
}

impl PublicKey {
    /// Reads the key from DNSKEY RDATA.
    ///
    /// # Errors
    /// Unsupported algorithm or malformed key.
    pub fn from_dnskey(rdata: &[u8]) -> Result<Self, PublicKeyError> {
        let alg_num = *rdata.get(3).ok_or(PublicKeyError::Malformed("DNSKEY"))?;
        let alg = Algorithm::from_number(alg_num).ok_or(PublicKeyError::Algorithm(alg_num))?;
        Self::from_parts(alg, &rdata[4..])
    }

    /// Reads the key from an algorithm and a DNSKEY public key field.
    ///
    /// # Errors
    /// Malformed key.
    pub fn from_parts(alg: Algorithm, key: &[u8]) -> Result<Self, PublicKeyError> {
        match alg {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                // RFC 3110 section 2: exponent length, exponent, modulus.
                let (elen, off) = match key.first() {
                    Some(0) if key.len() > 3 => (u16::from_be_bytes([key[1], key[2]]) as usize, 3),
                    Some(&n) => (n as usize, 1),
                    None => return Err(PublicKeyError::Malformed("RSA")),
                };
                if key.len() <= off + elen {
                    return Err(PublicKeyError::Malformed("RSA"));
                }
                let e = BigNum::from_slice(&key[off..off + elen])?;
                let n = BigNum::from_slice(&key[off + elen..])?;
                Ok(PublicKey::Rsa(alg, Rsa::from_public_components(n, e)?))
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                let (nid, len) = if alg == Algorithm::EcdsaP256Sha256 { (Nid::X9_62_PRIME256V1, 32) } else { (Nid::SECP384R1, 48) };
                if key.len() != 2 * len {
                    return Err(PublicKeyError::Malformed("ECDSA"));
                }
                let group = EcGroup::from_curve_name(nid)?;
                let x = BigNum::from_slice(&key[..len])?;
                let y = BigNum::from_slice(&key[len..])?;
                Ok(PublicKey::Ec(alg, EcKey::from_public_key_affine_coordinates(&group, &x, &y)?, len))
            }
            Algorithm::Ed25519 => {
                if key.len() != 32 {
                    return Err(PublicKeyError::Malformed("Ed25519"));
                }
                Ok(PublicKey::Ed25519(PKey::public_key_from_raw_bytes(key, Id::ED25519)?))
            }
        }
    }

    /// The algorithm of the key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa(a, _) | PublicKey::Ec(a, _, _) => *a,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// True when `sig` (DNSSEC wire form) is a valid signature over `input`.
    pub fn verify(&self, input: &SignInput, sig: &[u8]) -> bool {
        if let SignInput::Message(m) = input
            && !matches!(self, PublicKey::Ed25519(_))
        {
            return self.verify_data(m, sig);
        }
        match (self, input) {
            (PublicKey::Rsa(alg, rsa), SignInput::Digest(d)) => {
                if sig.len() != rsa.size() as usize {
                    return false;
                }
                let mut buf = vec![0u8; rsa.size() as usize];
                match rsa.public_decrypt(sig, &mut buf, Padding::PKCS1) {
                    Ok(n) => buf[..n] == digest_info(alg.hash(), d)[..],
                    Err(_) => false,
                }
            }
            (PublicKey::Ec(_, key, len), SignInput::Digest(d)) => {
                if sig.len() != 2 * len {
                    return false;
                }
                let parts = BigNum::from_slice(&sig[..*len]).and_then(|r| Ok((r, BigNum::from_slice(&sig[*len..])?)));
                let Ok((r, s)) = parts else { return false };
                EcdsaSig::from_private_components(r, s).and_then(|es| es.verify(d, key)).unwrap_or(false)
            }
            (PublicKey::Ed25519(key), SignInput::Message(m)) => {
                Verifier::new_without_digest(key).and_then(|mut v| v.verify_oneshot(sig, m)).unwrap_or(false)
            }
            _ => false,
        }
    }

    /// The data (RFC 4034 section 3.1.8.1) verified directly, hashing it here.
    pub fn verify_data(&self, data: &[u8], sig: &[u8]) -> bool {
        match SignInput::prepare(self.algorithm(), data.to_vec()) {
            Ok(input) => self.verify(&input, sig),
            Err(_) => false,
        }
    }
}
