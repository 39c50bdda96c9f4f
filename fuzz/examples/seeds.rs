//! Writes the seed corpus of every fuzz target: `seeds OUT_DIR ZONE_CORPUS`.
//!
//! Zone files come from the shared corpus (cut at line boundaries into pieces a fuzzer runs
//! quickly); RDATA presentation strings are taken from those zones' records, and wire-form
//! RDATA is what hwsigner's own parser makes of them; APDUs, TLVs, pipe frames, key blobs
//! and `.pbe` files are made by hwsigner's own encoders (the card structures as the host
//! writes them, the blobs by `wrap_ec`/`wrap_rsa`). Each seed is one file named after the
//! hash of its content, in `OUT_DIR/TARGET/`.

use hwsigner::crypto::SignInput;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::dns::name::parse_name;
use hwsigner::dns::text::Token;
use hwsigner::dns::{rdata, rtype};
use hwsigner::pool::protocol::{Failure, FailureKind, Reply, Request};
use hwsigner::smartcard::apdu::{Apdu, tlv};
use hwsigner::smartcard::card::prkd;
use hwsigner::smartcard::dkek::{self, ALG_ECDSA_SHA256, ALG_RSA_V15_SHA256};
use hwsigner::zone::lexer::Lexer;
use hwsigner_fuzz::{ORIGIN, PBE_FUZZ_ITERATIONS, fuzz_dkek, unseal_blob};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::rsa::{Rsa, RsaPrivateKeyBuilder};
use openssl::symm::{Cipher, Crypter, Mode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest zone seed: big zones are cut so that one run stays around a millisecond.
const ZONE_PIECE: usize = 2 << 10;
/// Presentation strings kept per record type, so that common types do not crowd out the rest.
const PER_TYPE: usize = 24;

struct Seeds {
    out: PathBuf,
    counts: BTreeMap<&'static str, usize>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, data: &[u8]) {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let digest = openssl::sha::sha1(data);
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            *self.counts.entry(target).or_default() += 1;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, corpus] = args.as_slice() else {
        eprintln!("usage: seeds OUT_DIR ZONE_CORPUS");
        std::process::exit(2);
    };
    let mut seeds = Seeds { out: PathBuf::from(out), counts: BTreeMap::new() };
    zones(&mut seeds, Path::new(corpus));
    tlvs(&mut seeds);
    apdus(&mut seeds);
    frames(&mut seeds);
    blobs(&mut seeds);
    pbe_files(&mut seeds);
    for (target, n) in &seeds.counts {
        println!("{target}: {n} seeds");
    }
}

fn zone_files(corpus: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["good", "bad"] {
        let dir = corpus.join(sub);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        files.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

fn zones(seeds: &mut Seeds, corpus: &Path) {
    let origin = parse_name(ORIGIN.as_bytes(), None).expect("the fuzz origin is a name");
    let mut per_type: BTreeMap<u16, usize> = BTreeMap::new();
    for path in zone_files(corpus) {
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for piece in pieces(&text) {
            seeds.add("zone_lexer", piece);
            seeds.add("zone_reader", piece);
        }
        let mut lexer = Lexer::new(&text);
        let mut tokens = Vec::new();
        while let Ok(Some(entry)) = lexer.next_entry(&mut tokens) {
            let skip = usize::from(!entry.blank_owner);
            if tokens.first().is_some_and(|t| !t.quoted && t.text.starts_with(b"$")) && !entry.blank_owner {
                continue;
            }
            let Some(at) = tokens.iter().skip(skip).position(|t| !t.quoted && rtype::from_mnemonic(t.text).is_some()) else { continue };
            let at = at + skip;
            let Some(code) = rtype::from_mnemonic(tokens[at].text) else { continue };
            let n = per_type.entry(code).or_default();
            if *n >= PER_TYPE {
                continue;
            }
            *n += 1;
            let line = entry_text(&tokens[at..]);
            seeds.add("rdata_text", line.as_bytes());
            if let Ok(wire) = rdata::parse(code, &tokens[at + 1..], &origin) {
                let mut seed = code.to_be_bytes().to_vec();
                seed.extend_from_slice(&wire);
                seeds.add("rdata_wire", &seed);
            }
        }
    }
}

/// `text` cut at line boundaries into pieces of at most [`ZONE_PIECE`] octets.
fn pieces(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > ZONE_PIECE {
        let cut = rest[..ZONE_PIECE].iter().rposition(|&b| b == b'\n').map_or(ZONE_PIECE, |i| i + 1);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Tokens written back as one master-file line, escapes and quotes as they were.
fn entry_text(tokens: &[Token<'_>]) -> String {
    let mut line = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && !t.joined {
            line.push(' ');
        }
        let text = String::from_utf8_lossy(t.text);
        if t.quoted {
            line.push('"');
            line.push_str(&text);
            line.push('"');
        } else {
            line.push_str(&text);
        }
    }
    line.push('\n');
    line
}

/// CV requests and PrKDs as the host and the card write them.
fn tlvs(seeds: &mut Seeds) {
    let p256 = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256")).expect("a P-256 key");
    let mut ctx = openssl::bn::BigNumContext::new().expect("a BN context");
    let point =
        p256.public_key().to_bytes(p256.group(), openssl::ec::PointConversionForm::UNCOMPRESSED, &mut ctx).expect("an encoded point");
    let oid_ecdsa = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];
    let oid_rsa = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
    let rsa = Rsa::generate(1024).expect("an RSA key");
    for (oid, fields) in
        [(&oid_ecdsa, [(0x86u16, point.clone())].to_vec()), (&oid_rsa, [(0x81u16, rsa.n().to_vec()), (0x82, rsa.e().to_vec())].to_vec())]
    {
        let mut pk = tlv(0x06, oid);
        for (tag, value) in &fields {
            pk.extend(tlv(*tag, value));
        }
        let mut body = tlv(0x5F29, &[0]);
        body.extend(tlv(0x42, b"UTCA00001"));
        body.extend(tlv(0x7F49, &pk));
        body.extend(tlv(0x5F20, b"UTTM0000100001"));
        let mut cert = tlv(0x7F4E, &body);
        cert.extend(tlv(0x5F37, &[0x5A; 64]));
        let request = tlv(0x7F21, &cert);
        seeds.add("tlv", &request);
        let mut outer = request.clone();
        outer.extend(tlv(0x42, b"DECA00001"));
        outer.extend(tlv(0x5F37, &[0xA5; 64]));
        seeds.add("tlv", &tlv(0x67, &outer));
    }
    seeds.add("tlv", &prkd(1, "ksk", Algorithm::EcdsaP256Sha256, &point[1..]));
    let rsa_field = hwsigner::crypto::dnskey::rsa_public_field(&rsa.e().to_vec(), &rsa.n().to_vec());
    seeds.add("tlv", &prkd(2, "zsk", Algorithm::RsaSha256, &rsa_field));
    let mut padded = vec![0x00, 0xFF];
    padded.extend(tlv(0x54, &[0, 0]));
    padded.extend(tlv(0x53, &[7; 300]));
    seeds.add("tlv", &padded);
}

/// APDUs as the host sends them, and the encoder layout `CLA INS P1 P2 Le(2) data`.
fn apdus(seeds: &mut Seeds) {
    let commands = [
        (Apdu::new(0x00, 0xA4, 0x04, 0x04).data(&[0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01]), None),
        (Apdu::new(0x00, 0x20, 0x00, 0x81).data(b"648219"), None),
        (Apdu::new(0x80, 0x52, 0x00, 0x00), Some(256)),
        (Apdu::new(0x00, 0x84, 0x00, 0x00), Some(8)),
        (Apdu::new(0x80, 0x58, 0x00, 0x00), Some(0)),
        (Apdu::new(0x00, 0xB1, 0x2F, 0x02).data(&tlv(0x54, &[0, 0])), Some(0)),
        (Apdu::new(0x80, 0x74, 0x01, 0x93).data(&[7; 300]), None),
        (Apdu::new(0x80, 0x68, 0x01, 0x00).data(&[9; 32]), Some(0)),
    ];
    for (apdu, le) in commands {
        let apdu = match le {
            Some(n) => apdu.le(n),
            None => apdu,
        };
        seeds.add("apdu", &apdu.encode());
        let le = apdu.le.map_or(0xFFFF, |n| u16::try_from(n).unwrap_or(0));
        let mut layout = vec![apdu.cla, apdu.ins, apdu.p1, apdu.p2];
        layout.extend_from_slice(&le.to_be_bytes());
        layout.extend_from_slice(&apdu.data);
        seeds.add("apdu", &layout);
    }
}

/// Every request and reply the pipe carries, alone and as one stream.
fn frames(seeds: &mut Seeds) {
    let mut stream = Vec::new();
    let requests = [
        Request::Hello(zeroize::Zeroizing::new(b"{\"module\":\"/usr/lib/softhsm/libsofthsm2.so\",\"pin\":\"1234\"}".to_vec())),
        Request::Sign { seq: 1, key: 0, inputs: vec![SignInput::Digest(vec![0x11; 32]), SignInput::Message(vec![0x22; 90])] },
    ];
    for r in &requests {
        let f = r.encode();
        seeds.add("pool_frames", &f);
        stream.extend_from_slice(&f);
    }
    let replies = [
        Reply::Ready { public_keys: vec![vec![1; 64], vec![2; 32]], device: "SoftHSM slot 0 serial 1234".into(), needs_message: false },
        Reply::Failed(Failure::new(FailureKind::PinIncorrect, "token 1234: the PIN is incorrect")),
        Reply::Signed { seq: 1, sigs: vec![vec![3; 64], vec![4; 64]] },
        Reply::SignFailed { seq: 2, failure: Failure::new(FailureKind::Transient, "token removed") },
    ];
    for r in &replies {
        let f = r.encode();
        seeds.add("pool_frames", &f);
        stream.extend_from_slice(&f);
    }
    seeds.add("pool_frames", &stream);
}

/// Key blobs from `wrap_ec` and `wrap_rsa`, as files (layout 0) and unsealed (layout 1).
fn blobs(seeds: &mut Seeds) {
    let dkek = fuzz_dkek();
    let mut add = |blob: Vec<u8>, allowed: usize| {
        let mut raw = vec![0];
        raw.extend_from_slice(&blob);
        seeds.add("dkek_blob", &raw);
        let mut sealed = vec![1];
        sealed.extend(unseal_blob(&dkek, &blob, 19 + allowed));
        seeds.add("dkek_blob", &sealed);
    };
    for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1] {
        let key = EcKey::generate(&EcGroup::from_curve_name(nid).expect("a named curve")).expect("an EC key");
        add(dkek::wrap_ec(&dkek, &key, &[]).expect("wrapping an EC key"), 0);
        add(dkek::wrap_ec(&dkek, &key, &ALG_ECDSA_SHA256).expect("wrapping an EC key"), ALG_ECDSA_SHA256.len());
    }
    let rsa = Rsa::generate(1024).expect("an RSA key");
    add(dkek::wrap_rsa(&dkek, &rsa, &[]).expect("wrapping an RSA key"), 0);
    let plain = RsaPrivateKeyBuilder::new(
        rsa.n().to_owned().expect("a copy of n"),
        rsa.e().to_owned().expect("a copy of e"),
        rsa.d().to_owned().expect("a copy of d"),
    )
    .expect("an RSA builder")
    .build();
    add(dkek::wrap_rsa(&dkek, &plain, &ALG_RSA_V15_SHA256).expect("wrapping an RSA key"), ALG_RSA_V15_SHA256.len());
}

/// `.pbe` files sealed at the fuzz iteration count, and sc-hsm-tool's own test vector.
fn pbe_files(seeds: &mut Seeds) {
    let share: Vec<u8> = (0x08u8..=0x27).collect();
    for (password, salt) in [(&b"testpassword123"[..], [0u8, 1, 2, 3, 4, 5, 6, 7]), (b"", [9; 8]), (&[0xA5; 40], [0xFF; 8])] {
        let pair = openssl::pkcs5::bytes_to_key(Cipher::aes_256_cbc(), MessageDigest::md5(), password, Some(&salt), PBE_FUZZ_ITERATIONS)
            .expect("EVP_BytesToKey");
        let iv = pair.iv.expect("AES-CBC has an IV");
        let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, &pair.key, Some(&iv)).expect("AES-256-CBC");
        let mut ct = vec![0u8; 64];
        let mut n = c.update(&share, &mut ct).expect("encrypting the share");
        n += c.finalize(&mut ct[n..]).expect("encrypting the share");
        ct.truncate(n);
        let mut seed = vec![u8::try_from(password.len()).expect("short password")];
        seed.extend_from_slice(password);
        seed.extend_from_slice(b"Salted__");
        seed.extend_from_slice(&salt);
        seed.extend_from_slice(&ct);
        seeds.add("pbe", &seed);
    }
    let vector = "53616c7465645f5f0001020304050607caedb5554f1aa1d619907c422cfbcd96\
                  374eb97ff889e44a9ebb75ca6f49e74db118954a38a797be84bffd676a2055ba";
    let mut seed = vec![15];
    seed.extend_from_slice(b"testpassword123");
    seed.extend(data_encoding::HEXLOWER.decode(vector.as_bytes()).expect("the vector is hex"));
    seeds.add("pbe", &seed);
}
