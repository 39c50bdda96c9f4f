//! BER-TLV as the host reads card responses (`smartcard::apdu::parse_tlvs`) and the CV
//! request parser built on it (`smartcard::card::public_from_request`). What parses must
//! re-encode (with `tlv`) to TLVs that parse to the same list.
#![no_main]

use hwsigner::smartcard::apdu::{parse_tlvs, tlv};
use hwsigner::smartcard::card::public_from_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(tlvs) = parse_tlvs(data) {
        let encoded: Vec<u8> = tlvs.iter().flat_map(|(tag, value)| tlv(*tag, value)).collect();
        let again = parse_tlvs(&encoded).unwrap_or_else(|| panic!("re-encoded TLVs do not parse: {encoded:02x?}"));
        assert_eq!(again, tlvs, "TLVs change when re-encoded");
        // Nested structures as the card's certificates and PrKDs hold them.
        for (_, value) in &tlvs {
            let _ = parse_tlvs(value);
        }
    }
    if let Some((_, public)) = public_from_request(data) {
        assert!(!public.is_empty(), "a CV request gave an empty public key");
    }
});
