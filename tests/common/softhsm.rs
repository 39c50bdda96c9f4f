//! SoftHSM2 tokens in a temporary directory: a private `softhsm2.conf`, tokens
//! initialised with SO-PIN 12345678 and user PIN 1234.

use super::{require, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The user PIN of every token made here.
pub const USER_PIN: &str = "1234";

/// Writes `dir/softhsm2.conf` with its token directory `dir/tokens`, and
/// initialises one token per label; returns the configuration's path (for
/// `SOFTHSM2_CONF`). Fails naming the package when SoftHSM2 is missing.
pub fn init_tokens(dir: &Path, labels: &[&str]) -> PathBuf {
    require("softhsm2-util", "softhsm2");
    assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package softhsm2 (scripts/test.sh does)");
    std::fs::create_dir(dir.join("tokens")).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.join("tokens").display()),
    )
    .expect("softhsm2.conf");
    for label in labels {
        let mut c = Command::new("softhsm2-util");
        c.args(["--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", USER_PIN]).env("SOFTHSM2_CONF", &conf);
        let (ok, out) = run(&mut c);
        assert!(ok, "softhsm2-util --init-token {label}: {out}");
    }
    conf
}
