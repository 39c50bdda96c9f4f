//! Zones signed by `hwsigner sign` are accepted by three independent
//! validators, `ldns-verify-zone` (ldnsutils), `dnssec-verify` (bind9-utils) and
//! `kzonecheck` (knot-dnssecutils), and by `hwsigner verify`: every algorithm,
//! NSEC, NSEC3 and NSEC3 opt-out, on a zone full of awkward cases; re-signing a
//! signed zone; CDS/CDNSKEY and ZONEMD; two algorithms at once.

use std::path::{Path, PathBuf};
use std::process::Command;

const ORIGIN: &str = "awkward.test.";

fn zone_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/awkward.zone")
}

mod common;
use common::{hwsigner, run};

/// Runs the three validators and `hwsigner verify` on a signed zone of the test origin.
fn validate(signed: &Path, what: &str) {
    common::validate(signed, ORIGIN, what);
}

fn generate(keys: &Path, alg: &str, role: &str) {
    let (ok, out) =
        run(hwsigner(&["keys", "generate", "--zone", ORIGIN, "--algorithm", alg, "--role", role, "--bits", "2048", "-K"]).arg(keys));
    assert!(ok, "key generation failed: {out}");
}

fn sign(keys: &Path, input: &Path, output: &Path, extra: &[&str]) {
    let mut c = hwsigner(&["sign", "--quiet", "--zone", ORIGIN, "-K"]);
    c.arg(keys).args(extra).arg("--output").arg(output).arg(input);
    let (ok, out) = run(&mut c);
    assert!(ok, "signing failed ({extra:?}): {out}");
}

fn count(path: &Path, rtype: &str) -> usize {
    let text = std::fs::read_to_string(path).expect("signed zone");
    text.lines().filter(|l| l.split('\t').nth(3) == Some(rtype)).count()
}

#[test]
fn every_algorithm_and_denial_mode_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    for alg in ["8", "10", "13", "14", "15"] {
        let keys = dir.path().join(format!("keys{alg}"));
        generate(&keys, alg, "ksk");
        generate(&keys, alg, "zsk");
        for (mode, extra) in [("nsec", &[][..]), ("nsec3", &["--nsec3"][..]), ("nsec3-optout", &["--opt-out"][..])] {
            let out = dir.path().join(format!("{alg}-{mode}.zone"));
            sign(&keys, &zone_file(), &out, extra);
            validate(&out, &format!("algorithm {alg}, {mode}"));
        }
    }
}

#[test]
fn csk_salt_iterations_and_zsk_signed_dnskey_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    generate(&keys, "13", "csk");
    let out = dir.path().join("csk.zone");
    sign(&keys, &zone_file(), &out, &["--nsec3", "--salt", "aabbccdd", "--iterations", "5"]);
    // dnssec-verify wants a non-SEP key unless told the zone uses a CSK (-z).
    let (ok, log) = run(Command::new("dnssec-verify").args(["-z", "-o", ORIGIN]).arg(&out));
    assert!(ok, "dnssec-verify -z rejected the CSK zone: {log}");
    let (ok, log) = run(Command::new("ldns-verify-zone").arg(&out));
    assert!(ok, "{log}");
    let (ok, log) = run(Command::new("kzonecheck").args(["-o", ORIGIN, "-d", "on"]).arg(&out));
    assert!(ok, "{log}");

    let keys2 = dir.path().join("keys2");
    generate(&keys2, "15", "ksk");
    generate(&keys2, "15", "zsk");
    let out2 = dir.path().join("zskdnskey.zone");
    sign(&keys2, &zone_file(), &out2, &["--zsk-signs-dnskey"]);
    validate(&out2, "ZSK signs DNSKEY");
    let text = std::fs::read_to_string(&out2).expect("zone");
    let dnskey_sigs = text.lines().filter(|l| l.contains("\tRRSIG\tDNSKEY ")).count();
    assert_eq!(dnskey_sigs, 2, "KSK and ZSK both sign the DNSKEY RRset");
}

#[test]
fn resigning_a_signed_zone_does_not_double_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    generate(&keys, "13", "ksk");
    generate(&keys, "13", "zsk");
    let first = dir.path().join("first.zone");
    sign(&keys, &zone_file(), &first, &["--opt-out"]);
    let second = dir.path().join("second.zone");
    sign(&keys, &first, &second, &["--opt-out", "--serial", "increment"]);
    validate(&second, "re-signed");
    for t in ["RRSIG", "NSEC3", "DNSKEY", "NSEC3PARAM"] {
        assert_eq!(count(&first, t), count(&second, t), "{t} records doubled or lost on re-signing");
    }
    // Switching from NSEC3 to NSEC leaves no NSEC3 behind.
    let third = dir.path().join("third.zone");
    sign(&keys, &second, &third, &[]);
    validate(&third, "NSEC3 -> NSEC");
    assert_eq!(count(&third, "NSEC3") + count(&third, "NSEC3PARAM"), 0);
}

#[test]
fn cds_cdnskey_and_zonemd_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    generate(&keys, "13", "ksk");
    generate(&keys, "13", "zsk");
    let out = dir.path().join("cds.zone");
    sign(&keys, &zone_file(), &out, &["--cds", "sha256,sha384", "--cdnskey", "--zonemd", "--nsec3"]);
    validate(&out, "CDS, CDNSKEY, ZONEMD");
    assert_eq!(count(&out, "CDS"), 2);
    assert_eq!(count(&out, "CDNSKEY"), 1);
    assert_eq!(count(&out, "ZONEMD"), 1);
    // ldns-verify-zone checks the ZONEMD digest: a changed record must break it.
    let text = std::fs::read_to_string(&out).expect("zone");
    let broken = text.replacen("192.0.2.25", "192.0.2.26", 1);
    let broken_path = dir.path().join("broken.zone");
    std::fs::write(&broken_path, broken).expect("write");
    let (ok, _) = run(Command::new("ldns-verify-zone").arg(&broken_path));
    assert!(!ok, "a changed record must fail validation");
}

#[test]
fn two_algorithms_at_once_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    for alg in ["8", "13"] {
        generate(&keys, alg, "ksk");
        generate(&keys, alg, "zsk");
    }
    let out = dir.path().join("two.zone");
    sign(&keys, &zone_file(), &out, &["--nsec3"]);
    validate(&out, "algorithms 8 and 13 together");
    let text = std::fs::read_to_string(&out).expect("zone");
    let soa_sigs: Vec<&str> = text.lines().filter(|l| l.contains("\tRRSIG\tSOA ")).collect();
    assert_eq!(soa_sigs.len(), 2, "each algorithm signs the SOA: {soa_sigs:?}");
}
