//! hwsigner: a DNSSEC zone signer whose private keys stay in hardware.
//!
//! Layers, from the top down; a module imports only modules below it:
//! * [`config`]: the TOML configuration, naming stores and keys;
//! * [`ceremony`]: key ceremonies (scripts, transcripts) on top of [`smartcard`];
//! * [`keys`]: key stores, the only code that knows where private keys live
//!   (software files, PKCS#11, TPM); device stores run their devices through [`pool`];
//! * [`smartcard`]: SmartCard-HSM over PC/SC (APDUs, DKEK, wrapped keys);
//! * [`pool`]: spreads signing over several devices, each in its own worker
//!   process; it knows keys only through [`sign`];
//! * [`verify`]: checks a signed zone independently of how it was made;
//! * [`dnssec`]: the signing engine (chains, signatures, apex records);
//! * [`sign`]: the key trait and its types, the seam between the engine and the stores;
//! * [`zone`]: reading, checking and writing zones;
//! * [`crypto`]: host-side hashing and signature verification;
//! * [`dns`]: names, types, RDATA and the DNSSEC algorithm registry;
//! * [`secret`]: PINs and passwords in memory that is wiped after use.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "smartcard")]
pub mod ceremony;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod dnssec;
pub mod keys;
pub mod pool;
pub mod secret;
pub mod sign;
#[cfg(feature = "smartcard")]
pub mod smartcard;
pub mod verify;
pub mod zone;

/// Peak resident memory of this process in KiB (Linux), for progress logs and benchmarks.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}
