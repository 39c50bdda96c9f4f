//! Malformed zones are refused by `hwsigner sign` with exit status 3, a message
//! naming the file, the line and what is wrong, and no output written: an
//! existing signed zone at the output path stays exactly as it was.

use std::path::Path;
use std::process::Command;

const HEAD: &str = "$TTL 300\n@ SOA ns h 1 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\n";

/// (name, zone text, text the error must contain). `{f}` stands for the zone file's path.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("missing SOA", "$TTL 1\n@ NS ns\nns A 192.0.2.1\n".into(), "zone example.: no SOA record at the apex"),
        ("two SOAs", format!("{HEAD}@ SOA ns2 h 2 3600 900 604800 300\n"), "more than one SOA"),
        ("out of zone", format!("{HEAD}www.example.org. A 192.0.2.1\n"), "{f}:5: www.example.org. is outside the zone example."),
        ("CNAME and other data", format!("{HEAD}www A 192.0.2.1\nwww CNAME ns\n"), "{f}:6: CNAME at www.example. beside other data (A)"),
        ("two CNAMEs", format!("{HEAD}www CNAME ns\nwww CNAME ns2\n"), "{f}:5: more than one CNAME record at www.example."),
        (
            "data below DNAME",
            format!("{HEAD}d DNAME x.example.net.\na.d A 192.0.2.1\n"),
            "{f}:6: a.d.example. is below the DNAME at d.example.",
        ),
        ("bad IPv4", format!("{HEAD}www A 192.0.2.300\n"), "{f}:5: A record: bad IPv4 address: '192.0.2.300'"),
        ("RFC 3597 A of 5 octets", format!("{HEAD}www A \\# 5 0A00000102\n"), "{f}:5: A record: RDATA is not a valid A record"),
        (
            "generic length not a number",
            format!("{HEAD}www TYPE65280 \\# cat 0A000001\n"),
            "{f}:5: TYPE65280 record: bad generic RDATA length: 'cat'",
        ),
        (
            "generic length mismatch",
            format!("{HEAD}www TYPE65280 \\# 3 0A000001\n"),
            "{f}:5: TYPE65280 record: generic RDATA length 3 does not match 4 octets",
        ),
        ("class CLASS312", format!("{HEAD}www CLASS312 A 192.0.2.1\n"), "{f}:5: class CLASS312 is not supported (only IN)"),
        ("bad $TTL", "$TTL 5w*10s\n@ SOA ns h 1 2 3 4 5\n".into(), "{f}:1: bad TTL '5w*10s'"),
        ("unbalanced parentheses", format!("{HEAD}www TXT ( \"a\"\n"), "unbalanced parentheses"),
        ("unterminated quote", format!("{HEAD}www TXT \"abc\n"), "unterminated quoted string"),
        ("NUL byte", format!("{HEAD}www A 192.0.2.1\0extra\n"), "{f}:5: control character 0x00"),
        ("unknown type", format!("{HEAD}www FOOBAR 1\n"), "{f}:5: unknown record type or bad TTL/class 'FOOBAR'"),
        (
            "padded base32 in NSEC3",
            format!("{HEAD}x NSEC3 1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22boj= A\n"),
            "{f}:5: NSEC3 record: bad base32hex hash",
        ),
        ("label longer than 63", format!("{HEAD}{} A 192.0.2.1\n", "a".repeat(64)), "{f}:5: bad name"),
        ("missing $INCLUDE file", format!("{HEAD}$INCLUDE no-such-file.db\n"), "no-such-file.db: No such file or directory"),
        ("DS not at a delegation", format!("{HEAD}x DS 1 13 2 AABB\n"), "{f}:5: DS record at x.example., which is not a delegation point"),
        ("no NS at apex", "$TTL 1\n@ SOA ns h 1 2 3 4 5\n".into(), "zone example.: no NS records at the apex"),
        (
            "generic syntax for a type without text form",
            format!("{HEAD}x NULL abc\n"),
            "{f}:5: NULL record: type NULL must be written in RFC 3597 generic form",
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
    for (name, text, want) in cases() {
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
