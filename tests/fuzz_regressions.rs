//! Inputs that crashed a fuzz target (scripts/fuzz.sh), kept as tests: each holds the
//! input as the fuzzer wrote it and checks the behaviour that the fix gives.

use hwsigner::dns::name::parse_name;
use hwsigner::dns::rdata;
use hwsigner::dns::text::Token;
use hwsigner::smartcard::dkek::{self, Dkek, DkekError};
use hwsigner::zone::lexer::Lexer;
use hwsigner::zone::reader::read_str;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{Cipher, Crypter, Mode};

fn origin() -> Vec<u8> {
    parse_name(b"example.", None).expect("a name")
}

/// Every entry of `text`, as token lists.
fn entries(text: &[u8]) -> Vec<Vec<Token<'_>>> {
    let mut lexer = Lexer::new(text);
    let mut tokens = Vec::new();
    let mut out = Vec::new();
    while let Some(_entry) = lexer.next_entry(&mut tokens).expect("the text lexes") {
        out.push(tokens.clone());
    }
    out
}

// zone_lexer crash-332fb5bd, rdata_text crash-f9065fa7: parentheses around nothing made an
// entry without tokens, and the reader indexed its first token.
#[test]
fn parentheses_around_nothing_are_a_blank_line() {
    assert!(entries(b"(\t)").is_empty());
    assert!(entries(b"()").is_empty());
    let e = entries(b"( )\nwww A 192.0.2.1\n(\n)\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0][0].text, b"www");
    let zone = read_str("z", b"$TTL 60\n@ SOA ns h 1 2 3 4 5\n()\nwww A 192.0.2.1\n( )", &origin()).expect("the zone reads");
    assert_eq!(zone.records.len(), 2);
    assert!(read_str("z", b"()\n", &origin()).expect("an empty zone reads").records.is_empty());
}

// rdata_wire crash-c0833ecc: a CAA tag that is not letters and digits was accepted in
// wire form and written bare, as text no reader accepts.
#[test]
fn caa_tag_must_be_alphanumeric_in_wire_form() {
    const CAA: u16 = 257;
    let input: &[u8] = b"\x01\x01\x80\x03?tbs";
    let wire = &input[2..];
    assert!(matches!(rdata::canonicalize(CAA, wire), Err(rdata::RdataError::Malformed(_))));
    let mut text = String::new();
    rdata::format(CAA, wire, &mut text);
    assert_eq!(text, "\\# 6 80033F746273");
    assert!(rdata::canonicalize(CAA, b"\x00\x05issueca.example").is_ok());
    assert!(rdata::canonicalize(CAA, b"\x00\x00").is_err());
}

/// Seals `header` and `plaintext` under `dkek` as a SmartCard-HSM exports a key (what the
/// dkek_blob target does with its odd layout).
fn seal(dkek: &Dkek, header: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut pt = plaintext.to_vec();
    pt.resize(pt.len().div_ceil(16).max(1) * 16, 0);
    let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, &dkek.kenc()[..], Some(&[0u8; 16])).expect("AES");
    c.pad(false);
    let mut ct = vec![0u8; pt.len() + 16];
    let mut n = c.update(&pt, &mut ct).expect("AES");
    n += c.finalize(&mut ct[n..]).expect("AES");
    ct.truncate(n);
    let mut blob = dkek.kcv().to_vec();
    blob.extend_from_slice(header);
    blob.extend_from_slice(&ct);
    let key = PKey::cmac(&Cipher::aes_256_cbc(), &dkek.kmac()[..]).expect("CMAC key");
    let mut signer = Signer::new_without_digest(&key).expect("CMAC");
    signer.update(&blob).expect("CMAC");
    blob.extend(signer.sign_to_vec().expect("CMAC"));
    blob
}

// dkek_blob crash-7da569a4: a type 5 RSA blob with an empty modulus unwrapped to a key
// without a modulus.
#[test]
fn rsa_blob_with_an_empty_modulus_is_refused() {
    let input: &[u8] = &[
        0x01, 0x1d, 0x05, 0x00, 0x0a, 0x04, 0x00, 0x7f, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02, 0x00, 0x0a, 0x04, 0x00, 0x7f, 0x00, 0x07,
        0x02, 0x02, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xe2, 0xc3, 0x75, 0xee, 0x4b, 0xd6, 0x6a, 0x33, 0x04, 0x00, 0x00, 0x80, 0x6b,
        0x65, 0x47, 0xb1, 0xa6, 0x8c, 0x3f, 0x2b, 0x48, 0xc4, 0xea, 0x5e, 0x27, 0x6b, 0xd9, 0x64, 0xc2, 0x49, 0x60, 0x16, 0x97, 0xe8, 0xf1,
        0x46, 0x45, 0xf8, 0xbf, 0x54, 0x8e, 0xd4, 0x8b, 0x74, 0x1f, 0x8d, 0x2d, 0x09, 0x12, 0xbf, 0xa0, 0x06, 0x1b, 0x89, 0x88, 0xa8, 0x85,
        0x32, 0x61, 0xbb, 0x88, 0xe6, 0x54, 0x16, 0x48, 0xe4, 0xa9, 0xed, 0x2b, 0x86, 0x6e, 0x62, 0x89, 0xe4, 0x5b, 0x06, 0x1e, 0x86, 0x88,
        0x5d, 0xa7, 0x4e, 0x74, 0x25, 0x4b, 0x20, 0x61, 0xb4, 0x67, 0xdb, 0x3d, 0x48, 0x9b, 0x73, 0x3c, 0xef, 0x50, 0x56, 0x47, 0x7f, 0x76,
        0x69, 0x4d, 0x33, 0x56, 0x14, 0xdb, 0xb5, 0x1c, 0xd0, 0x0f, 0x0d, 0x00, 0x03, 0x01, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let dkek = Dkek::from_bytes(&(0x08u8..=0x27).collect::<Vec<u8>>()).expect("a DKEK");
    let header_len = usize::from(input[1]);
    let blob = seal(&dkek, &input[2..2 + header_len], &input[2 + header_len..]);
    match dkek::unwrap(&dkek, &blob) {
        Err(DkekError::Malformed(why)) => assert!(why.contains("zero"), "{why}"),
        other => panic!("expected a malformed blob, got {other:?}"),
    }
}

// rdata_text crash-09dad2af: an altitude of 1e114 m overflowed the centimetre sum.
#[test]
fn loc_altitude_far_out_of_range_is_refused() {
    let input: &[u8] = b"LOC 52 1 N 00 08 E 100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000m";
    let e = &entries(input)[0];
    const LOC: u16 = 29;
    assert!(matches!(rdata::parse(LOC, &e[1..], &origin()), Err(rdata::RdataError::Bad { what: "LOC altitude", .. })));
    let e = &entries(b"LOC 52 1 N 00 08 E -1e300m")[0];
    assert!(rdata::parse(LOC, &e[1..], &origin()).is_err());
    let e = &entries(b"LOC 52 1 N 00 08 E 42849672.95m")[0];
    assert!(rdata::parse(LOC, &e[1..], &origin()).is_ok());
}

// rdata_wire crash-31678091: a CSYNC type bitmap with trailing zero octets was accepted and
// came back shorter through the presentation form.
#[test]
fn type_bitmap_with_trailing_zero_octets_is_malformed() {
    let input: &[u8] = b"\x00\x3e\x00\x00\xcf\x00\x07\x00\x02\x04\x61\x00\x00\x00";
    const CSYNC: u16 = 62;
    assert!(matches!(rdata::canonicalize(CSYNC, &input[2..]), Err(rdata::RdataError::Malformed(_))));
    assert!(rdata::canonicalize(CSYNC, b"\x00\x00\xcf\x00\x07\x00\x02\x01\x61").is_ok());
    assert_eq!(hwsigner::dns::bitmap::decode(b"\x00\x01\x40"), Some(vec![1]));
    assert_eq!(hwsigner::dns::bitmap::decode(b"\x00\x02\x40\x00"), None);
}
