//! SmartCard-HSM: the card's key-wrapping mathematics and file formats, and
//! (in later modules) the PC/SC command layer used by the key ceremony.

pub mod apdu;
pub mod card;
pub mod dkek;
pub mod pbe;
pub mod shamir;
