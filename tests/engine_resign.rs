//! Re-signing follows the signer's keys and options, not the input: a key
//! removed from the store is withdrawn, foreign DNSKEYs are dropped unless
//! named with `--keep-dnskey` (or `--keep-input-dnskeys`), CDS/CDNSKEY go
//! away when switched off, names that became occluded lose their NSEC and
//! RRSIG records, and a foreign DNSKEY whose key material is malformed is
//! refused (kzonecheck refuses such a zone once another signer has signed it).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{hwsigner, require, run, validate_with};

const ORIGIN: &str = "example.";
const ZONE: &str = "$TTL 300\n@ SOA ns h 1 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\na.sub A 192.0.2.5\n";

/// Generates a P-256 key; returns its key tag and its DNSKEY in presentation form.
fn generate_key(keys: &Path, role: &str) -> (u16, String) {
    let (ok, out) = run(hwsigner(&["keys", "generate", "--zone", ORIGIN, "--algorithm", "13", "--role", role, "--json", "-K"]).arg(keys));
    assert!(ok, "key generation failed: {out}");
    let start = out.find('[').expect("JSON");
    let v: serde_json::Value = serde_json::Deserializer::from_str(&out[start..]).into_iter().next().expect("JSON").expect("JSON");
    let tag = v[0]["key_tag"].as_u64().expect("key_tag") as u16;
    (tag, v[0]["dnskey"].as_str().expect("dnskey").to_owned())
}

fn generate(keys: &Path, role: &str) -> u16 {
    generate_key(keys, role).0
}

fn sign(keys: &Path, input: &Path, output: &Path, extra: &[&str]) -> String {
    let mut c = hwsigner(&["sign", "--zone", ORIGIN, "--json", "-K"]);
    c.arg(keys).args(extra).arg("--output").arg(output).arg(input);
    let (ok, out) = run(&mut c);
    assert!(ok, "signing failed ({extra:?}): {out}");
    out
}

fn summary(out: &str) -> serde_json::Value {
    let start = out.find('{').expect("JSON summary");
    serde_json::Deserializer::from_str(&out[start..]).into_iter().next().expect("summary").expect("JSON")
}

/// (owner, type, rdata) of the records of a type in a zone file written by hwsigner.
fn records(path: &Path, rtype: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("zone");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5 && f[3] == rtype).then(|| (f[0].to_owned(), f[4].to_owned()))
        })
        .collect()
}

fn dnskey_tags(path: &Path) -> Vec<u16> {
    // RFC 4034 Appendix B over the RDATA, computed here rather than by hwsigner.
    let mut tags: Vec<u16> = records(path, "DNSKEY").iter().map(|(_, rd)| tag_of(rd)).collect();
    tags.sort_unstable();
    tags
}

fn tag_of(presentation: &str) -> u16 {
    let f: Vec<&str> = presentation.split_whitespace().collect();
    let mut rd = f[0].parse::<u16>().expect("flags").to_be_bytes().to_vec();
    rd.push(f[1].parse().expect("protocol"));
    rd.push(f[2].parse().expect("algorithm"));
    rd.extend(data_encoding::BASE64.decode(f[3..].concat().as_bytes()).expect("base64"));
    let mut ac: u32 = 0;
    for (i, &b) in rd.iter().enumerate() {
        ac += if i & 1 == 1 { u32::from(b) } else { u32::from(b) << 8 };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

fn validate(path: &Path, what: &str) {
    validate_with(path, ORIGIN, what, false);
}

#[test]
fn a_key_removed_from_the_store_is_withdrawn_and_foreign_keys_need_naming() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let ksk = generate(&keys, "ksk");
    let zsk = generate(&keys, "zsk");
    let input = dir.path().join("z.zone");
    std::fs::write(&input, ZONE).expect("zone");
    let first = dir.path().join("first.zone");
    sign(&keys, &input, &first, &[]);
    let mut both = vec![ksk, zsk];
    both.sort_unstable();
    assert_eq!(dnskey_tags(&first), both);

    // The ZSK leaves the store; a new ZSK takes its place.
    let zsk_files: Vec<_> = std::fs::read_dir(&keys)
        .expect("keys")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&format!("+{zsk:05}.")))
        .map(|e| e.path())
        .collect();
    assert_eq!(zsk_files.len(), 2, "the ZSK's .key and .private files");
    let retired = dir.path().join("retired");
    std::fs::create_dir(&retired).expect("dir");
    for f in &zsk_files {
        std::fs::rename(f, retired.join(f.file_name().expect("name"))).expect("move");
    }
    let zsk2 = generate(&keys, "zsk");
    let second = dir.path().join("second.zone");
    let out = sign(&keys, &first, &second, &[]);
    let mut want = vec![ksk, zsk2];
    want.sort_unstable();
    assert_eq!(dnskey_tags(&second), want, "the removed ZSK {zsk} is withdrawn");
    let s = summary(&out);
    let dropped: Vec<u64> =
        s["dnskeys_dropped"].as_array().expect("dnskeys_dropped").iter().map(|k| k["key_tag"].as_u64().expect("tag")).collect();
    assert_eq!(dropped, [u64::from(zsk)], "{s}");
    assert!(out.contains("input DNSKEY is not among the signing keys: dropped"), "a warning names the key: {out}");
    validate(&second, "after withdrawing a key");

    // A foreign key (another signer's, RFC 8901) stays only when named.
    let (foreign, line) = generate_key(&retired, "zsk");
    let with_foreign = dir.path().join("foreign.zone");
    std::fs::write(&with_foreign, format!("{}{line}\n", std::fs::read_to_string(&second).expect("zone"))).expect("zone");
    let third = dir.path().join("third.zone");
    sign(&keys, &with_foreign, &third, &[]);
    assert_eq!(dnskey_tags(&third), want, "foreign key dropped by default");
    let fourth = dir.path().join("fourth.zone");
    let out = sign(&keys, &with_foreign, &fourth, &["--keep-dnskey", &format!("{foreign}/13")]);
    let mut kept = vec![ksk, zsk2, foreign];
    kept.sort_unstable();
    assert_eq!(dnskey_tags(&fourth), kept, "named foreign key kept");
    assert_eq!(summary(&out)["dnskeys_kept"][0]["key_tag"].as_u64(), Some(u64::from(foreign)));
    validate(&fourth, "with a kept foreign key");
    let fifth = dir.path().join("fifth.zone");
    sign(&keys, &with_foreign, &fifth, &["--keep-input-dnskeys"]);
    assert_eq!(dnskey_tags(&fifth), kept, "--keep-input-dnskeys keeps every input key");
    // A tag with the wrong algorithm does not match.
    let sixth = dir.path().join("sixth.zone");
    sign(&keys, &with_foreign, &sixth, &["--keep-dnskey", &format!("{foreign}/8")]);
    assert_eq!(dnskey_tags(&sixth), want);
}

/// A scratch directory with a KSK and a ZSK in `keys/` and the test zone in `z.zone`.
fn ksk_zsk_and_zone() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    generate(&keys, "ksk");
    generate(&keys, "zsk");
    let input = dir.path().join("z.zone");
    std::fs::write(&input, ZONE).expect("zone");
    (dir, keys, input)
}

#[test]
fn cds_and_cdnskey_go_away_when_switched_off() {
    let (dir, keys, input) = ksk_zsk_and_zone();
    let first = dir.path().join("first.zone");
    sign(&keys, &input, &first, &["--cds", "sha256", "--cdnskey"]);
    assert_eq!((records(&first, "CDS").len(), records(&first, "CDNSKEY").len()), (1, 1));
    let second = dir.path().join("second.zone");
    sign(&keys, &first, &second, &[]);
    assert_eq!((records(&second, "CDS").len(), records(&second, "CDNSKEY").len()), (0, 0), "switched off, gone");
    let rrsig_types: Vec<String> =
        records(&second, "RRSIG").into_iter().map(|(_, rd)| rd.split_whitespace().next().unwrap_or("").to_owned()).collect();
    assert!(!rrsig_types.iter().any(|t| t == "CDS" || t == "CDNSKEY"), "no signatures left over: {rrsig_types:?}");
    validate(&second, "CDS switched off");
    // Asked again: made again, once each.
    let third = dir.path().join("third.zone");
    sign(&keys, &second, &third, &["--cds", "sha256", "--cdnskey"]);
    assert_eq!(records(&third, "CDS"), records(&first, "CDS"));
    assert_eq!(records(&third, "CDNSKEY"), records(&first, "CDNSKEY"));
    validate(&third, "CDS switched on again");
}

#[test]
fn names_that_became_occluded_lose_their_nsec_and_signatures() {
    let (dir, keys, input) = ksk_zsk_and_zone();
    let first = dir.path().join("first.zone");
    sign(&keys, &input, &first, &[]);
    assert!(records(&first, "NSEC").iter().any(|(o, _)| o == "a.sub.example."), "a.sub has an NSEC before the cut");
    // `sub` becomes a delegation: a.sub is now glue-side, occluded data.
    let cut = dir.path().join("cut.zone");
    std::fs::write(&cut, format!("{}sub.example.\t300\tIN\tNS\tns.elsewhere.net.\n", std::fs::read_to_string(&first).expect("zone")))
        .expect("zone");
    for (mode, extra) in [("nsec", &[][..]), ("nsec3", &["--nsec3"][..])] {
        let second = dir.path().join(format!("second-{mode}.zone"));
        sign(&keys, &cut, &second, extra);
        for t in ["NSEC", "RRSIG", "NSEC3"] {
            assert!(!records(&second, t).iter().any(|(o, _)| o == "a.sub.example."), "{mode}: {t} left at the occluded a.sub");
        }
        assert!(records(&second, "A").iter().any(|(o, _)| o == "a.sub.example."), "the occluded data itself stays");
        validate(&second, &format!("{mode} after a new zone cut"));
    }
}

#[test]
fn malformed_foreign_dnskey_is_refused_as_kzonecheck_refuses_it_signed() {
    require("ldns-signzone", "ldnsutils");
    require("ldns-keygen", "ldnsutils");
    require("kzonecheck", "knot-dnssecutils");
    let dir = tempfile::tempdir().expect("tempdir");
    // 10 octets of public key for algorithm 13 (P-256 needs 64).
    let bad = "@ DNSKEY 256 3 13 AAECAwQFBgcICQ==\n";
    let input = dir.path().join("z.zone");
    std::fs::write(&input, format!("{ZONE}{bad}")).expect("zone");

    // The referee: another signer signs it as it is, and kzonecheck refuses the result.
    let (ok, out) = run(Command::new("ldns-keygen").current_dir(dir.path()).args(["-a", "ECDSAP256SHA256", "-k", ORIGIN]));
    assert!(ok, "{out}");
    let base = out.trim().to_owned();
    let ldns_in = dir.path().join("ldns.zone");
    std::fs::write(&ldns_in, format!("$ORIGIN {ORIGIN}\n{ZONE}{bad}")).expect("zone");
    let (ok, out) =
        run(Command::new("ldns-signzone").current_dir(dir.path()).args(["-f", "ldns.signed"]).arg(&ldns_in).arg(dir.path().join(&base)));
    assert!(ok, "ldns-signzone: {out}");
    let (ok, out) = run(Command::new("kzonecheck").args(["-o", ORIGIN, "-d", "on"]).arg(dir.path().join("ldns.signed")));
    assert!(!ok && out.contains("invalid DNSKEY"), "kzonecheck accepted a zone with a malformed DNSKEY: {out}");

    // hwsigner refuses the input, naming file, line, owner and type.
    let keys = dir.path().join("keys");
    generate(&keys, "ksk");
    let output = dir.path().join("out.zone");
    let res =
        hwsigner(&["sign", "--quiet", "--zone", ORIGIN, "-K"]).arg(&keys).arg("--output").arg(&output).arg(&input).output().expect("run");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    let want = format!("{}:7: example. DNSKEY record: algorithm 13 public key is 10 octets, not 64", input.display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(!output.exists());
}
