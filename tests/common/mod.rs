//! Helpers shared by the integration tests: running programs, requiring the
//! validators, and validating a signed zone with all of them.
#![allow(dead_code)]

pub mod swtpm;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The origin of `tests/zones/awkward.zone`.
pub const AWKWARD_ORIGIN: &str = "awkward.test.";

/// The zone of awkward cases that most signing tests use.
pub fn awkward_zone() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/awkward.zone")
}

/// Fails the test, naming the Debian package, when a tool is missing.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is missing: install the Debian package {package} (scripts/test.sh does)");
}

/// Runs a command; returns success and its combined output.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Per-device figures from the `--json` summary that `sign` prints (the
/// summary is the first JSON object in the output; log lines may follow).
pub fn summary_devices(out: &str) -> Vec<serde_json::Value> {
    let start = out.find('{').expect("JSON summary");
    let v: serde_json::Value = serde_json::Deserializer::from_str(&out[start..]).into_iter().next().expect("summary").expect("JSON");
    v["devices"].as_array().expect("devices").clone()
}

/// The `hwsigner` binary under test with arguments.
pub fn hwsigner(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hwsigner"));
    c.args(args);
    c
}

/// Runs the three validators and `hwsigner verify` on a signed zone.
pub fn validate(signed: &Path, origin: &str, what: &str) {
    validate_with(signed, origin, what, false);
}

/// As [`validate`]; `csk` tells `dnssec-verify` (`-z`) that one key signs everything.
pub fn validate_with(signed: &Path, origin: &str, what: &str, csk: bool) {
    require("ldns-verify-zone", "ldnsutils");
    require("dnssec-verify", "bind9-utils");
    require("kzonecheck", "knot-dnssecutils");
    let checks: [(&str, Command); 4] = [
        ("ldns-verify-zone", {
            let mut c = Command::new("ldns-verify-zone");
            c.arg(signed);
            c
        }),
        ("dnssec-verify", {
            let mut c = Command::new("dnssec-verify");
            c.args(["-o", origin]);
            if csk {
                c.arg("-z");
            }
            c.arg(signed);
            c
        }),
        ("kzonecheck", {
            let mut c = Command::new("kzonecheck");
            c.args(["-o", origin, "-d", "on"]).arg(signed);
            c
        }),
        ("hwsigner verify", {
            let mut c = hwsigner(&["verify", "--zone", origin]);
            c.arg(signed);
            c
        }),
    ];
    for (name, mut cmd) in checks {
        let (ok, out) = run(&mut cmd);
        assert!(ok, "{what}: {name} rejected {}:\n{out}", signed.display());
    }
}
