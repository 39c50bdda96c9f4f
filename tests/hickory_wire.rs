//! hickory-proto as an independent referee of our wire encoding: every record
//! of the awkward test zone and the example zone, as our reader encodes it, is
//! decoded by hickory-proto's RDATA parser and emitted again in canonical form
//! (RFC 4034 section 6.2); the bytes must be the same. Our reader and writer
//! are our own for speed and for the types hickory's zone parser rejects (see
//! the README), so this keeps them honest against a second implementation.

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};
use hwsigner::dns::name::parse_name;
use hwsigner::dns::rtype::mnemonic;
use std::path::Path;

/// Returns (records checked, records hickory decoded into a typed RDATA rather than opaque bytes).
fn check(file: &str, origin: &str) -> (usize, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let wire = parse_name(origin.as_bytes(), None).expect("origin");
    let zone = hwsigner::zone::reader::read_file(&path, &wire).expect("zone reads");
    let mut checked = 0;
    let mut typed = 0;
    for r in &zone.records {
        let rtype = RecordType::from(r.rtype);
        let mut dec = BinDecoder::new(&r.rdata);
        let rdata = RData::read(&mut dec, rtype, Restrict::new(r.rdata.len() as u16))
            .unwrap_or_else(|e| panic!("{:?}: hickory-proto cannot decode our {} RDATA: {e}", r.pos, mnemonic(r.rtype)));
        if !matches!(rdata, RData::Unknown { .. }) {
            typed += 1;
        }
        let mut out = Vec::new();
        let mut enc = BinEncoder::new(&mut out);
        enc.set_canonical_form(true);
        rdata.emit(&mut enc).expect("hickory emits");
        assert_eq!(out, r.rdata.to_vec(), "{:?}: {} RDATA differs from hickory-proto's encoding", r.pos, mnemonic(r.rtype));
        checked += 1;
    }
    (checked, typed)
}

#[test]
fn our_rdata_encoding_matches_hickory_proto() {
    let (a, at) = check("tests/zones/awkward.zone", "awkward.test.");
    let (b, bt) = check("examples/example.com.zone", "example.com.");
    assert!(a + b > 40, "records checked: {}", a + b);
    // Opaque RDATA would round-trip trivially: most records must be decoded field by field.
    assert!((at + bt) * 2 > a + b, "hickory decoded only {} of {} records into typed RDATA", at + bt, a + b);
}
