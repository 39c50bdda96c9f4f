//! hwsigner: a DNSSEC zone signer whose private keys stay in hardware.
//!
//! Layers, from the edge inwards:
//! * [`keys`]: key stores, the only code that knows where private keys live;
//! * [`crypto`]: host-side hashing and signature verification;
//! * [`dnssec`]: the signing engine (chains, signatures, apex records);
//! * [`zone`]: reading, checking and writing zones;
//! * [`dns`]: names, types and RDATA.
//!
//! [`verify`] checks a signed zone independently of how it was made.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod dns;
pub mod dnssec;
pub mod keys;
pub mod verify;
pub mod zone;
