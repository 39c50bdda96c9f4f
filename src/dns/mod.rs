//! DNS data in presentation and wire form: names, record types, RDATA, bitmaps.
//! Nothing here knows about zones, signing or hardware.

pub mod algorithm;
pub mod bitmap;
pub mod keydata;
pub mod name;
pub mod rdata;
pub mod rtype;
pub mod svcb;
pub mod text;
