//! Helpers shared by the integration tests: running programs, requiring the
//! validators, and validating a signed zone with all of them.
#![allow(dead_code)]

pub mod softhsm;
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

/// The processes whose parent is `parent` and whose command line ends with `word`.
pub fn children(parent: u32, word: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The second field is the command name in parentheses and may hold spaces.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().ends_with(word) {
            out.push(pid);
        }
    }
    out
}

/// Waits until `parent` has at least `n` children whose command line ends with `word`.
pub fn wait_children(parent: &mut std::process::Child, word: &str, n: usize) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = children(parent.id(), word);
        if found.len() >= n {
            return found;
        }
        assert!(parent.try_wait().expect("wait").is_none(), "hwsigner ended before {n} '{word}' children were seen");
        assert!(std::time::Instant::now() < deadline, "no {n} '{word}' children of hwsigner within 30 s: {found:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a child's environment and limits show, read while it runs.
pub struct ChildView {
    /// Its environment, one `NAME=value` a line.
    pub environ: Vec<String>,
    /// The `Max core file size` line of its limits.
    pub core_limit: String,
    /// Owner of its /proc files (root when it is not dumpable).
    pub owner: u32,
}

pub fn view(pid: u32) -> ChildView {
    use std::os::unix::fs::MetadataExt;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let environ = String::from_utf8_lossy(&environ).split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core_limit = limits.lines().find(|l| l.starts_with("Max core file size")).expect("core limit line").to_owned();
    let owner = std::fs::metadata(format!("/proc/{pid}/environ")).expect("environ metadata").uid();
    ChildView { environ, core_limit, owner }
}
