//! DNSSEC: turning a checked zone into a signed one (RFC 4033-4035, 5155,
//! 6840, 9276, 9077, 7344, 8078, 8976). Takes keys as [`crate::sign::SigningKey`]
//! trait objects and never knows what hardware is behind them.

pub mod apex;
pub mod keyset;
pub mod nsec;
pub mod nsec3;
pub mod policy;
pub mod rrsig;
pub mod signer;
pub mod zonemd;

pub use apex::{ApexReport, ForeignKey};
pub use policy::{Denial, KeepDnskeys, Policy, SerialPolicy};
pub use signer::{NoProgress, Progress, SignError, SignStats, sign_zone};
