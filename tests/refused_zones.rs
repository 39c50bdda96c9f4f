//! Malformed zones are refused by `hwsigner sign` with exit status 3, a message
//! naming the file, the line and what is wrong, and no output written: an
//! existing signed zone at the output path stays exactly as it was.

use std::path::Path;
use std::process::Command;

mod common;

const HEAD: &str = "$TTL 300\n@ SOA ns h 1 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\n";

/// Which reference checker refuses a zone too (`named-checkzone -i full`,
/// `kzonecheck`), so that every refusal is backed by one of them or by a
/// written reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Referee {
    /// Both refuse it.
    Both,
    /// BIND refuses it (Knot accepts).
    Named,
    /// Knot refuses it (BIND accepts).
    Knot,
    /// Neither checker: refused for the reason given in the case's name.
    Rfc,
}
use Referee::*;

/// (name, zone text, text the error must contain, referee). `{f}` stands for the zone file's path.
fn cases() -> Vec<(&'static str, String, &'static str, Referee)> {
    vec![
        ("missing SOA", "$TTL 1\n@ NS ns\nns A 192.0.2.1\n".into(), "zone example.: no SOA record at the apex", Both),
        ("two SOAs", format!("{HEAD}@ SOA ns2 h 2 3600 900 604800 300\n"), "more than one SOA", Named),
        (
            "out of zone (named and knot drop it with a warning; a wrong $ORIGIN is likelier)",
            format!("{HEAD}www.example.org. A 192.0.2.1\n"),
            "{f}:5: www.example.org. is outside the zone example.",
            Rfc,
        ),
        (
            "CNAME and other data",
            format!("{HEAD}www A 192.0.2.1\nwww CNAME ns\n"),
            "{f}:6: CNAME at www.example. beside other data (A)",
            Both,
        ),
        ("CNAME at the apex", format!("{HEAD}@ CNAME ns\n"), "CNAME at example. beside other data", Both),
        ("CNAME beside DNAME", format!("{HEAD}d DNAME x.\nd CNAME ns\n"), "CNAME at d.example. beside other data (DNAME)", Both),
        ("two CNAMEs", format!("{HEAD}www CNAME ns\nwww CNAME ns2\n"), "{f}:5: more than one CNAME record at www.example.", Both),
        (
            "data below DNAME",
            format!("{HEAD}d DNAME x.example.net.\na.d A 192.0.2.1\n"),
            "{f}:6: a.d.example. is below the DNAME at d.example.",
            Knot,
        ),
        ("name server below an apex DNAME", format!("{HEAD}@ DNAME x.\n"), "{f}:4: ns.example. is below the DNAME at example.", Both),
        ("NS beside DNAME", format!("{HEAD}d DNAME x.\nd NS ns\n"), "{f}:5: DNAME at d.example. beside NS", Knot),
        ("wildcard NS", format!("{HEAD}* NS ns\n"), "{f}:5: NS at the wildcard *.example.", Named),
        (
            "SOA below the apex",
            format!("{HEAD}x SOA ns h 1 2 3 4 5\n"),
            "{f}:5: SOA record at x.example., which is not the zone apex",
            Named,
        ),
        (
            "SOA below a zone cut",
            format!("{HEAD}sub NS ns.elsewhere.\nx.sub SOA ns h 1 2 3 4 5\n"),
            "{f}:6: SOA record at x.sub.example., which is not the zone apex",
            Named,
        ),
        ("bad IPv4", format!("{HEAD}www A 192.0.2.300\n"), "{f}:5: www.example. A record: bad IPv4 address: '192.0.2.300'", Both),
        (
            "RFC 3597 A of 5 octets",
            format!("{HEAD}www A \\# 5 0A00000102\n"),
            "{f}:5: www.example. A record: RDATA is not a valid A record",
            Named,
        ),
        (
            "generic length not a number",
            format!("{HEAD}www TYPE65280 \\# cat 0A000001\n"),
            "{f}:5: www.example. TYPE65280 record: bad generic RDATA length: 'cat'",
            Both,
        ),
        (
            "generic length mismatch",
            format!("{HEAD}www TYPE65280 \\# 3 0A000001\n"),
            "{f}:5: www.example. TYPE65280 record: generic RDATA length 3 does not match 4 octets",
            Both,
        ),
        ("class CLASS312", format!("{HEAD}www CLASS312 A 192.0.2.1\n"), "{f}:5: class CLASS312 is not supported (only IN)", Both),
        ("bad $TTL", "$TTL 5w*10s\n@ SOA ns h 1 2 3 4 5\n".into(), "{f}:1: bad TTL '5w*10s'", Both),
        // Reported where the parenthesis or quote was opened (line 5), not past the end (line 8).
        (
            "unbalanced parentheses",
            format!("{HEAD}www TXT ( \"a\"\n\nx A 192.0.2.9\n"),
            "{f}:5: unbalanced parentheses: '(' opened here",
            Both,
        ),
        ("stray closing parenthesis", format!("{HEAD}www TXT \"a\" )\n"), "{f}:5: unbalanced parentheses: ')' without '('", Both),
        (
            "unterminated quote",
            format!("{HEAD}www TXT \"abc\n\nx A 192.0.2.9\n"),
            "{f}:5: unterminated quoted string: the quote opened here",
            Both,
        ),
        ("NUL byte", format!("{HEAD}www A 192.0.2.1\0extra\n"), "{f}:5: control character 0x00", Both),
        ("unknown type", format!("{HEAD}www FOOBAR 1\n"), "{f}:5: unknown record type or bad TTL/class 'FOOBAR'", Both),
        (
            "padded base32 in NSEC3",
            format!("{HEAD}x NSEC3 1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22boj= A\n"),
            "{f}:5: x.example. NSEC3 record: bad base32hex hash",
            Named,
        ),
        ("label longer than 63", format!("{HEAD}{} A 192.0.2.1\n", "a".repeat(64)), "{f}:5: bad name", Both),
        (
            "missing $INCLUDE file",
            format!("{HEAD}$INCLUDE no-such-file.db\n"),
            "{f}:5: $INCLUDE no-such-file.db: No such file or directory",
            Both,
        ),
        (
            "DS not at a delegation (RFC 4035 section 2.4: DS only at delegations)",
            format!("{HEAD}x DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n"),
            "{f}:5: DS record at x.example., which is not a delegation point",
            Rfc,
        ),
        ("no NS at apex", "$TTL 1\n@ SOA ns h 1 2 3 4 5\n".into(), "zone example.: no NS records at the apex", Both),
        (
            "generic syntax for a type without text form",
            format!("{HEAD}x NULL abc\n"),
            "{f}:5: x.example. NULL record: type NULL must be written in RFC 3597 generic form",
            Both,
        ),
        // RFC 6895 section 3.1: meta-types and query types are never zone data.
        ("OPT", format!("{HEAD}x TYPE41 \\# 0\n"), "{f}:5: x.example. OPT: OPT is a pseudo-record of messages", Named),
        ("TKEY", format!("{HEAD}x TKEY \\# 0\n"), "{f}:5: x.example. TKEY: a meta-type or query type", Both),
        ("TSIG", format!("{HEAD}x TYPE250 \\# 0\n"), "{f}:5: x.example. TSIG: a meta-type or query type", Named),
        ("IXFR", format!("{HEAD}x TYPE251 \\# 0\n"), "{f}:5: x.example. IXFR: a meta-type or query type", Named),
        ("AXFR", format!("{HEAD}x TYPE252 \\# 0\n"), "{f}:5: x.example. AXFR: a meta-type or query type", Named),
        ("MAILB", format!("{HEAD}x TYPE253 \\# 0\n"), "{f}:5: x.example. MAILB: a meta-type or query type", Named),
        ("MAILA", format!("{HEAD}x MAILA \\# 0\n"), "{f}:5: x.example. MAILA: a meta-type or query type", Both),
        ("ANY", format!("{HEAD}x TYPE255 \\# 0\n"), "{f}:5: x.example. ANY: a meta-type or query type", Named),
        ("meta range 128", format!("{HEAD}x TYPE128 \\# 0\n"), "{f}:5: x.example. TYPE128: a meta-type or query type", Named),
        ("meta range 200", format!("{HEAD}x TYPE200 \\# 0\n"), "{f}:5: x.example. TYPE200: a meta-type or query type", Named),
        ("type 0", format!("{HEAD}x TYPE0 \\# 0\n"), "{f}:5: x.example. TYPE0: type 0 is reserved", Named),
        ("obsolete MD", format!("{HEAD}x MD ns\n"), "{f}:5: x.example. MD: obsolete mail type", Both),
        ("obsolete MF", format!("{HEAD}x MF ns\n"), "{f}:5: x.example. MF: obsolete mail type", Both),
        // Name servers of the zone need addresses (glue below a cut).
        (
            "apex NS without address",
            format!("{HEAD}@ NS ns2\n"),
            "{f}:3: example. NS ns2.example.: the name server is in the zone and has no A or AAAA",
            Both,
        ),
        (
            "apex NS is a CNAME",
            format!("{HEAD}www CNAME ns\n@ NS www\n"),
            "{f}:3: example. NS www.example.: the name server is a CNAME",
            Both,
        ),
        (
            "missing glue",
            format!("{HEAD}sub NS ns.sub\n"),
            "{f}:5: sub.example. NS ns.sub.example.: no glue: the name server is below this zone cut",
            Knot,
        ),
        (
            "delegation to an in-zone name without address",
            format!("{HEAD}sub NS ns3\nns3 TXT \"no address\"\n"),
            "{f}:5: sub.example. NS ns3.example.: the name server is in the zone and has no A or AAAA",
            Knot,
        ),
        (
            "delegation to an address written as a name",
            format!("{HEAD}sub NS 192.0.2.7\n"),
            "{f}:5: sub.example. NS 192.0.2.7.example.: the name server is in the zone and has no A or AAAA record (an address",
            Knot,
        ),
        (
            "delegation to a CNAME",
            format!("{HEAD}www CNAME ns.elsewhere.\nsub NS www\n"),
            "{f}:6: sub.example. NS www.example.: the name server is a CNAME",
            Knot,
        ),
        (
            "name server below a DNAME",
            format!("{HEAD}d DNAME x.\nsub NS ns.d\n"),
            "{f}:6: sub.example. NS ns.d.example.: the name server is below the DNAME at d.example.",
            Knot,
        ),
        (
            "NSEC3 hash of 14 octets (BIND's bad-nsec3-length)",
            format!("{HEAD}I7A7A184GGMI35K1E3IR650LKO7NOB5R 7200 IN NSEC3 1 0 10 76931F IMQ912BREQP1POLAH3RMONG;UED541AS A RRSIG\n"),
            "{f}:5: i7a7a184ggmi35k1e3ir650lko7nob5r.example. NSEC3 record: bad NSEC3 next hashed owner (SHA-1 hashes are 20 octets): '14 octets'",
            Both,
        ),
        // Key material and digests (kzonecheck refuses malformed DNSKEYs in a signed zone: tests/engine_resign.rs).
        (
            "DNSKEY of 10 octets for P-256 (kzonecheck -d on refuses it once signed)",
            format!("{HEAD}@ DNSKEY 256 3 13 AAECAwQFBgcICQ==\n"),
            "{f}:5: example. DNSKEY record: algorithm 13 public key is 10 octets, not 64",
            Rfc,
        ),
        (
            "Ed25519 DNSKEY of 31 octets (as above)",
            format!("{HEAD}@ DNSKEY 256 3 15 AAECAwQFBgcICQABAgMEBQYHCAkAAQIDBAUGBwgJAA==\n"),
            "{f}:5: example. DNSKEY record: algorithm 15 public key is 31 octets, not 32",
            Rfc,
        ),
        (
            "RSA DNSKEY without modulus (as above)",
            format!("{HEAD}@ DNSKEY 256 3 8 AwEAAQ==\n"),
            "{f}:5: example. DNSKEY record: algorithm 8 RSA public key: no modulus",
            Rfc,
        ),
        (
            "DNSKEY protocol 2 (RFC 4034 section 2.1.2)",
            format!("{HEAD}@ DNSKEY 256 2 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n"),
            "{f}:5: example. DNSKEY record: protocol 2 (must be 3)",
            Rfc,
        ),
        (
            "CDNSKEY of 10 octets",
            format!("{HEAD}@ CDNSKEY 257 3 13 AAECAwQFBgcICQ==\n"),
            "{f}:5: example. CDNSKEY record: algorithm 13 public key is 10 octets, not 64",
            Named,
        ),
        (
            "DS digest too short",
            format!("{HEAD}sub NS ns.elsewhere.\nsub DS 1 13 2 AABB\n"),
            "{f}:6: sub.example. DS record: digest type 2 needs 32 octets of digest, found 2",
            Both,
        ),
        (
            "DS digest type 0",
            format!("{HEAD}sub NS ns.elsewhere.\nsub DS 1 13 0 00\n"),
            "{f}:6: sub.example. DS record: digest type 0 is reserved",
            Knot,
        ),
        (
            "CDS digest too long",
            format!("{HEAD}@ CDS 1 13 1 0000000000000000000000000000000000000000000000000000000000000000\n"),
            "{f}:5: example. CDS record: digest type 1 needs 20 octets of digest, found 32",
            Named,
        ),
        // RFC 9460 section 8 and 2.2, in presentation and in generic form.
        (
            "SVCB mandatory lists itself",
            format!("{HEAD}x SVCB 1 foo.example. mandatory=mandatory\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: mandatory lists mandatory itself",
            Both,
        ),
        (
            "SVCB mandatory key missing",
            format!("{HEAD}x SVCB 1 foo.example. mandatory=alpn port=53\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: mandatory lists alpn, which the record does not have",
            Both,
        ),
        (
            "SVCB no-default-alpn alone",
            format!("{HEAD}x SVCB 1 foo.example. no-default-alpn\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: no-default-alpn without alpn",
            Named,
        ),
        (
            "HTTPS no-default-alpn alone",
            format!("{HEAD}x HTTPS 1 foo.example. no-default-alpn port=8443\n"),
            "{f}:5: x.example. HTTPS record: RFC 9460: no-default-alpn without alpn",
            Named,
        ),
        (
            "SVCB keys out of order (generic)",
            format!("{HEAD}x SVCB \\# 28 0001 03666f6f076578616d706c6500 0003 0002 0035 0001 0003 026832\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: keys not in strictly increasing order (alpn after port)",
            Named,
        ),
        (
            "SVCB key repeated (generic)",
            format!("{HEAD}x SVCB \\# 27 0001 03666f6f076578616d706c6500 0003 0002 0035 0003 0002 0036\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: keys not in strictly increasing order (port after port)",
            Named,
        ),
        (
            "SVCB port of 3 octets (generic)",
            format!("{HEAD}x SVCB \\# 22 0001 03666f6f076578616d706c6500 0003 0003 000035\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: port value of 3 octets",
            Named,
        ),
        (
            "SVCB ipv4hint of 3 octets (generic)",
            format!("{HEAD}x SVCB \\# 22 0001 03666f6f076578616d706c6500 0004 0003 c00002\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: ipv4hint value of 3 octets",
            Named,
        ),
        (
            "SVCB ipv6hint of 4 octets (generic)",
            format!("{HEAD}x SVCB \\# 23 0001 03666f6f076578616d706c6500 0006 0004 20010db8\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: ipv6hint value of 4 octets",
            Named,
        ),
        (
            "SVCB empty alpn (generic)",
            format!("{HEAD}x SVCB \\# 19 0001 03666f6f076578616d706c6500 0001 0000\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: alpn value is empty",
            Named,
        ),
        (
            "SVCB mandatory out of order (generic)",
            format!("{HEAD}x SVCB \\# 36 0001 03666f6f076578616d706c6500 0000 0004 00030001 0001 0003 026832 0003 0002 0035\n"),
            "{f}:5: x.example. SVCB record: RFC 9460: mandatory keys not in strictly increasing order",
            Named,
        ),
    ]
}

/// Zones that are signed, with a warning, as `named-checkzone` signs them
/// with a warning: (name, zone text, warning text).
fn warned() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("MX target is a CNAME", format!("{HEAD}www CNAME ns\n@ MX 10 www\n"), "example. MX www.example.: the target is a CNAME"),
        (
            "SRV target is a CNAME",
            format!("{HEAD}www CNAME ns\n_s._tcp SRV 0 0 80 www\n"),
            "_s._tcp.example. SRV www.example.: the target is a CNAME",
        ),
        (
            "MX target without address",
            format!("{HEAD}@ MX 10 mail\n"),
            "example. MX mail.example.: the target has no A or AAAA record in the zone",
        ),
        ("MX target is an address", format!("{HEAD}@ MX 10 192.0.2.1\n"), "(an address written where a name belongs?)"),
        ("no sibling glue", format!("{HEAD}sub NS ns.sub2\nsub2 NS ns.elsewhere.\n"), "sub.example. NS ns.sub2.example.: no sibling glue"),
        (
            "differing TTLs",
            format!("{HEAD}www 300 A 192.0.2.1\nwww 600 A 192.0.2.2\n"),
            "RRset has differing TTLs (300 and 600); using 300",
        ),
        (
            "SVCB AliasMode with parameters",
            format!("{HEAD}x SVCB 0 foo.example. alpn=h2\n"),
            "x.example. SVCB: AliasMode (priority 0) record with SvcParams",
        ),
    ]
}

fn hwsigner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hwsigner"))
}

#[test]
fn malformed_zones_are_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let mut failures = Vec::new();
    for (name, text, want, _) in cases() {
        let zone = dir.path().join(format!("{}.zone", name.replace(' ', "-")));
        std::fs::write(&zone, text).expect("write zone");
        let out = dir.path().join("out.zone");
        std::fs::write(&out, "previous signed zone\n").expect("write old output");
        let res = hwsigner()
            .args(["sign", "--quiet", "--zone", "example.", "-K"])
            .arg(&keys)
            .args(["--create-keys", "13", "--output"])
            .arg(&out)
            .arg(&zone)
            .output()
            .expect("run hwsigner");
        let stderr = String::from_utf8_lossy(&res.stderr);
        let want = want.replace("{f}", &zone.display().to_string());
        if res.status.code() != Some(3) {
            failures.push(format!("{name}: exit {:?}, stderr: {stderr}", res.status.code()));
        } else if !stderr.contains(&want) {
            failures.push(format!("{name}: stderr does not contain '{want}': {stderr}"));
        }
        if std::fs::read_to_string(&out).ok().as_deref() != Some("previous signed zone\n") {
            failures.push(format!("{name}: the existing output file was changed"));
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".hwsigner"))
            .collect();
        if !leftovers.is_empty() {
            failures.push(format!("{name}: temporary files left behind"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn corpus() -> std::path::PathBuf {
    let dir = std::env::var_os("HWSIGNER_CORPUS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
            [beside, std::path::PathBuf::from("/work/shared/corpus")].into_iter().find(|d| d.join("manifest.tsv").exists())
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(dir.join("manifest.tsv").exists(), "zone corpus not found at {} (set HWSIGNER_CORPUS)", dir.display());
    dir
}

#[test]
fn corpus_bad_zones_are_refused_and_nothing_is_written() {
    let corpus = corpus();
    let manifest = std::fs::read_to_string(corpus.join("manifest.tsv")).expect("manifest");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !cols[0].starts_with("bad/") {
            continue;
        }
        seen += 1;
        let out = dir.path().join("out.zone");
        let res = hwsigner()
            .args(["sign", "--quiet", "--zone", cols[1], "-K"])
            .arg(dir.path().join("keys"))
            .args(["--create-keys", "13", "--output"])
            .arg(&out)
            .arg(corpus.join(cols[0]))
            .output()
            .expect("run hwsigner");
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(3), "{} not refused as bad input: {stderr}", cols[0]);
        assert!(
            stderr.contains(cols[0].trim_start_matches("bad/")) || stderr.contains("zone "),
            "{}: message names neither file nor zone: {stderr}",
            cols[0]
        );
        assert!(!out.exists(), "{}: output written", cols[0]);
    }
    assert!(seen >= 10, "expected the corpus's bad zones, found {seen}");
}

/// Every refusal is also a refusal of `named-checkzone` or `kzonecheck` (or
/// of neither, for a reason the case names): run both on every case.
#[test]
fn refusals_match_the_reference_checkers() {
    common::require("named-checkzone", "bind9-utils");
    common::require("kzonecheck", "knot-dnssecutils");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (name, text, _, referee) in cases() {
        let zone = dir.path().join(format!("{}.zone", name.replace(' ', "-")));
        std::fs::write(&zone, text).expect("write zone");
        let named = Command::new("named-checkzone")
            .current_dir(dir.path())
            .args(["-i", "full", "example."])
            .arg(&zone)
            .output()
            .expect("named-checkzone");
        let knot = Command::new("kzonecheck").current_dir(dir.path()).args(["-o", "example."]).arg(&zone).output().expect("kzonecheck");
        let got = (!named.status.success(), !knot.status.success());
        let want = match referee {
            Both => (true, true),
            Named => (true, false),
            Knot => (false, true),
            Rfc => (false, false),
        };
        if got != want {
            failures.push(format!("{name}: named-checkzone refuses: {}, kzonecheck refuses: {}; expected {referee:?}", got.0, got.1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn questionable_zones_are_signed_with_a_warning_as_named_checkzone_does() {
    common::require("named-checkzone", "bind9-utils");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let mut failures = Vec::new();
    for (name, text, want) in warned() {
        let zone = dir.path().join(format!("{}.zone", name.replace(' ', "-")));
        std::fs::write(&zone, text).expect("write zone");
        let out = dir.path().join("out.zone");
        let res = hwsigner()
            .args(["sign", "--zone", "example.", "-K"])
            .arg(&keys)
            .args(["--create-keys", "13", "--output"])
            .arg(&out)
            .arg(&zone)
            .env("NO_COLOR", "1")
            .output()
            .expect("run hwsigner");
        let stderr = String::from_utf8_lossy(&res.stderr);
        if !res.status.success() {
            failures.push(format!("{name}: refused: {stderr}"));
        } else if !stderr.contains(want) {
            failures.push(format!("{name}: no warning '{want}': {stderr}"));
        }
        let named = Command::new("named-checkzone").args(["-i", "full", "example."]).arg(&zone).output().expect("named-checkzone");
        if !named.status.success() {
            failures.push(format!("{name}: named-checkzone refuses it: {}", String::from_utf8_lossy(&named.stdout)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
