//! `cargo bench`: figures for the engine's own work, printed, not asserted.
//!
//! * zone reader throughput (records/s) on a TLD-like zone,
//! * zone build (sort, group, checks),
//! * NSEC3 hashing,
//! * signing with the software store (P-256, Ed25519, RSA-2048) on all cores,
//!   with and without host verification.

use hwsigner::crypto::SignInput;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::dns::name::{key_from_wire, parse_name};
use hwsigner::keys::software::PrivateKey;
use hwsigner::zone::{BuildOptions, build, reader::read_str};
use rayon::prelude::*;
use std::time::Instant;

fn tld_zone(delegations: usize) -> String {
    let mut z = String::from(
        "$ORIGIN tld.\n$TTL 86400\n@ SOA ns1.nic.tld. hostmaster.nic.tld. 1 1800 900 604800 3600\n@ NS ns1.nic.tld.\n@ NS ns2.nic.tld.\nns1.nic A 192.0.2.1\nns2.nic A 192.0.2.2\n",
    );
    for i in 0..delegations {
        z.push_str(&format!("d{i} NS ns1.dnsprov{}.net.\nd{i} NS ns2.dnsprov{}.net.\n", i % 97, i % 97));
        if i % 20 == 0 {
            z.push_str(&format!("d{i} DS {} 13 2 {:064X}\n", i % 65536, i));
        }
    }
    z
}

fn rate(what: &str, n: usize, secs: f64, unit: &str) {
    println!("{what:<48} {:>12.0} {unit}/s   ({n} in {secs:.3} s)", n as f64 / secs);
}

fn main() {
    let origin = parse_name(b"tld.", None).expect("static name");
    let text = tld_zone(200_000);
    let t = Instant::now();
    let read = read_str("bench", text.as_bytes(), &origin).expect("generated zone parses");
    let n = read.records.len();
    rate("reader (parse to canonical records)", n, t.elapsed().as_secs_f64(), "records");
    let t = Instant::now();
    let built = build(read, &key_from_wire(&origin), &BuildOptions::default()).expect("generated zone is valid");
    rate("build (sort, group, check)", n, t.elapsed().as_secs_f64(), "records");

    let names: Vec<Vec<u8>> = built.zone.nodes.iter().map(|n| hwsigner::dns::name::wire_of_key(&n.owner)).collect();
    let t = Instant::now();
    let hashes: Vec<[u8; 20]> = names.par_iter().map(|w| hwsigner::dnssec::nsec3::hash_name(w, &[], 0)).collect();
    rate("NSEC3 hashing, 0 iterations, all cores", hashes.len(), t.elapsed().as_secs_f64(), "names");

    for (alg, count) in [(Algorithm::EcdsaP256Sha256, 100_000), (Algorithm::Ed25519, 100_000), (Algorithm::RsaSha256, 10_000)] {
        let key = PrivateKey::generate(alg, 2048).expect("key generation");
        let public =
            hwsigner::crypto::public::PublicKey::from_parts(alg, &key.public_key_field().expect("public key")).expect("public key");
        let inputs: Vec<SignInput> =
            (0..count).map(|i| SignInput::prepare(alg, format!("rrset {i}").into_bytes()).expect("hash")).collect();
        let t = Instant::now();
        let sigs: Vec<Vec<u8>> = inputs.par_iter().map(|i| key.sign(alg, i, "bench").expect("sign")).collect();
        rate(&format!("{} sign, all cores", alg.mnemonic()), count, t.elapsed().as_secs_f64(), "sigs");
        let t = Instant::now();
        let ok = inputs.par_iter().zip(&sigs).filter(|(i, s)| public.verify(i, s)).count();
        assert_eq!(ok, count);
        rate(&format!("{} host verification, all cores", alg.mnemonic()), count, t.elapsed().as_secs_f64(), "sigs");
    }
}
