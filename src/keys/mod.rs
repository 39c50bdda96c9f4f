//! Key stores: the only part of the signer that knows where private keys live.
//!
//! Each store hands the engine [`crate::sign::SigningKey`]s: the software store
//! (BIND key files), PKCS#11 tokens and TPM 2.0 keys (each device in its own
//! worker process, through [`crate::pool`]). The PKCS#11 and TPM stores are
//! cargo features (`pkcs11`, `tpm`, on by default) so that a gateway build can
//! leave them out.

pub mod bind_format;

#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod software;

#[cfg(feature = "tpm")]
pub mod tpm;
