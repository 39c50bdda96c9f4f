//! hwsigner: a DNSSEC zone signer whose private keys stay in hardware.
//!
//! Layers, from the edge inwards:
//! * [`keys`]: key stores, the only code that knows where private keys live;
//! * [`pool`]: spreads signing over several devices, each in its own worker process;
//! * [`crypto`]: host-side hashing and signature verification;
//! * [`dnssec`]: the signing engine (chains, signatures, apex records);
//! * [`zone`]: reading, checking and writing zones;
//! * [`dns`]: names, types and RDATA.
//!
//! [`verify`] checks a signed zone independently of how it was made.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ceremony;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod dnssec;
pub mod keys;
pub mod pool;
pub mod secret;
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
