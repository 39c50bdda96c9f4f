//! One token's signing session, inside a worker process.
//!
//! Mechanisms are chosen cheapest first so that the token receives a digest,
//! not an RRset: RSA as `CKM_RSA_PKCS` over a host-built DigestInfo (falling
//! back to `CKM_SHA256/512_RSA_PKCS` over the message, or `CKM_RSA_X_509` over
//! a block padded on the host for tokens without PKCS#1 padding), ECDSA as
//! `CKM_ECDSA` over the host digest, Ed25519 as `CKM_EDDSA` over the message.

use super::token::{call_error, find_private, find_slot, login, open_module};
use super::{Pkcs11Error, TokenSelector, WorkerHello};
use crate::crypto::{SignInput, digest_info};
use crate::dns::algorithm::{Algorithm, HashKind};
use crate::pool::protocol::Failure;
use crate::pool::worker::DeviceSigner;
use crate::secret::Secret;
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    RsaPkcs,
    RsaX509(usize),
    RsaHash,
    Ecdsa(usize),
    Eddsa,
}

/// A logged-in session on one token with the key found.
pub struct Pkcs11Device {
    // Field order matters: the session must close before the module finalises.
    session: Session,
    _ctx: Pkcs11,
    key: ObjectHandle,
    alg: Algorithm,
    mech: Mech,
    public: Vec<u8>,
    name: String,
}

impl Pkcs11Device {
    /// Opens the token, logs in once, finds the key and picks the mechanism.
    ///
    /// # Errors
    /// Any [`Pkcs11Error`]; a rejected PIN is returned at once.
    pub fn open(hello: &WorkerHello) -> Result<Self, Pkcs11Error> {
        let ctx = open_module(&hello.module)?;
        let sel = TokenSelector::parse(&hello.token);
        let (slot, name) = find_slot(&ctx, &hello.module, &sel)?;
        let session = ctx.open_ro_session(slot).map_err(|e| call_error(&name, "C_OpenSession", &e))?;
        let pin = Secret::new(hello.pin.to_string());
        login(&session, &pin, &name)?;
        let configured = Algorithm::from_number(hello.algorithm).ok_or_else(|| Pkcs11Error::Unsupported {
            token: name.clone(),
            detail: format!("algorithm {} is not a DNSSEC signing algorithm", hello.algorithm),
        })?;
        let (key, _) = find_private(&session, &hello.key, &name, &hello.public_key, hello.flags, configured)?;
        let public = hello.public_key.clone();
        let alg = configured;
        let mechs = ctx.get_mechanism_list(slot).map_err(|e| call_error(&name, "C_GetMechanismList", &e))?;
        let has = |m: MechanismType| mechs.contains(&m);
        let mech = match alg {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                let hash_mech = if alg == Algorithm::RsaSha256 { MechanismType::SHA256_RSA_PKCS } else { MechanismType::SHA512_RSA_PKCS };
                let modulus_len = public.len() - 1 - public[0] as usize;
                if has(MechanismType::RSA_PKCS) {
                    Mech::RsaPkcs
                } else if has(hash_mech) {
                    Mech::RsaHash
                } else if has(MechanismType::RSA_X_509) {
                    Mech::RsaX509(modulus_len)
                } else {
                    return Err(Pkcs11Error::Unsupported {
                        token: name,
                        detail: "no RSA signing mechanism (RSA-PKCS, SHA*-RSA-PKCS, RSA-X-509)".into(),
                    });
                }
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 if has(MechanismType::ECDSA) => {
                Mech::Ecdsa(if alg == Algorithm::EcdsaP256Sha256 { 32 } else { 48 })
            }
            Algorithm::Ed25519 if has(MechanismType::EDDSA) => Mech::Eddsa,
            _ => return Err(Pkcs11Error::Unsupported { token: name, detail: format!("no mechanism for {alg}") }),
        };
        tracing::debug!(token = %name, ?mech, "token opened");
        Ok(Pkcs11Device { session, _ctx: ctx, key, alg, mech, public, name })
    }

    fn sign_one(&self, input: &SignInput) -> Result<Vec<u8>, Pkcs11Error> {
        let err = |e: cryptoki::error::Error| call_error(&self.name, "C_Sign", &e);
        let wrong = || Pkcs11Error::Unsupported { token: self.name.clone(), detail: "input kind does not suit the mechanism".into() };
        match (self.mech, input) {
            (Mech::RsaPkcs, SignInput::Digest(d)) => {
                self.session.sign(&Mechanism::RsaPkcs, self.key, &digest_info(self.alg.hash(), d)).map_err(err)
            }
            (Mech::RsaX509(k), SignInput::Digest(d)) => {
                let di = digest_info(self.alg.hash(), d);
                if di.len() + 11 > k {
                    return Err(wrong());
                }
                let mut block = vec![0xffu8; k];
                block[0] = 0;
                block[1] = 1;
                block[k - di.len() - 1] = 0;
                block[k - di.len()..].copy_from_slice(&di);
                self.session.sign(&Mechanism::RsaX509, self.key, &block).map_err(err)
            }
            (Mech::RsaHash, SignInput::Message(m)) => {
                let mech = if self.alg.hash() == HashKind::Sha512 { Mechanism::Sha512RsaPkcs } else { Mechanism::Sha256RsaPkcs };
                self.session.sign(&mech, self.key, m).map_err(err)
            }
            (Mech::Ecdsa(len), SignInput::Digest(d)) => {
                let sig = self.session.sign(&Mechanism::Ecdsa, self.key, d).map_err(err)?;
                if sig.len() == 2 * len {
                    return Ok(sig);
                }
                // Some tokens answer in DER; DNSSEC wants r||s.
                let der = openssl::ecdsa::EcdsaSig::from_der(&sig).map_err(|_| wrong())?;
                let mut out = der.r().to_vec_padded(len as i32).map_err(|_| wrong())?;
                out.extend_from_slice(&der.s().to_vec_padded(len as i32).map_err(|_| wrong())?);
                Ok(out)
            }
            (Mech::Eddsa, SignInput::Message(m)) => {
                let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                self.session.sign(&mech, self.key, m).map_err(err)
            }
            _ => Err(wrong()),
        }
    }
}

impl DeviceSigner for Pkcs11Device {
    fn public_keys(&self) -> Vec<Vec<u8>> {
        vec![self.public.clone()]
    }

    fn describe(&self) -> String {
        format!("{} mechanism {:?}", self.name, self.mech)
    }

    fn needs_message(&self) -> bool {
        matches!(self.mech, Mech::RsaHash | Mech::Eddsa)
    }

    fn sign(&mut self, _key: usize, input: &SignInput) -> Result<Vec<u8>, Failure> {
        self.sign_one(input).map_err(Pkcs11Error::into_failure)
    }
}
