//! Files hwsigner writes, from outside: the signed zone keeps the mode, owner
//! and group of the file it replaces (a name server running as another user
//! reads it), new files get their documented defaults, and a signer killed
//! while writing leaves a temporary file that the next run removes, with the
//! old output intact.

mod common;
use common::{hwsigner, run};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const ORIGIN: &str = "files.test.";

fn zone_text(names: usize) -> String {
    let mut z = String::from("$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    for i in 0..names {
        z.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250 + 1));
    }
    z
}

/// A directory with a CSK and a zone of `names` extra names.
fn setup(names: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let keys = d.path().join("keys");
    let (ok, out) = run(hwsigner(&["keys", "generate", "--zone", ORIGIN, "-a", "15", "--role", "csk", "-K"]).arg(&keys));
    assert!(ok, "key generation: {out}");
    let zone = d.path().join("files.zone");
    std::fs::write(&zone, zone_text(names)).expect("zone");
    (d, keys, zone)
}

/// `hwsigner sign` under umask 022, the usual one for a daemon.
fn sign(keys: &Path, zone: &Path, out: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg("umask 022; exec \"$@\"").arg("sh").arg(env!("CARGO_BIN_EXE_hwsigner"));
    c.args(["sign", "--zone", ORIGIN, "-K"]).arg(keys).arg("--output").arg(out).arg(zone);
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").mode() & 0o7777
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".hwsigner-tmp."))
        .collect()
}

#[test]
fn signing_over_an_existing_file_keeps_its_mode_owner_and_group() {
    let (d, keys, zone) = setup(3);
    let out = d.path().join("files.signed");
    for m in [0o644, 0o640] {
        std::fs::write(&out, "old\n").expect("old output");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(m)).expect("chmod");
        // nobody:nogroup stands for the name server's user; giving a file away needs root, as CI runs.
        std::os::unix::fs::chown(&out, Some(65534), Some(65534)).expect("chown to nobody:nogroup (run the tests as root)");
        let (ok, text) = run(&mut sign(&keys, &zone, &out));
        assert!(ok, "{text}");
        let md = std::fs::metadata(&out).expect("metadata");
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (m, 65534, 65534), "mode {m:o}: the rewritten file changed hands");
        assert!(std::fs::read_to_string(&out).expect("signed").contains("RRSIG"));
    }
    assert!(temps(d.path()).is_empty());
}

#[test]
fn new_files_get_their_documented_modes() {
    let (d, keys, zone) = setup(3);
    let out = d.path().join("new.signed");
    let (ok, text) = run(&mut sign(&keys, &zone, &out));
    assert!(ok, "{text}");
    assert_eq!(mode(&out), 0o644, "a new signed zone is readable by a name server running as another user");
    let mut seen = 0;
    for e in std::fs::read_dir(&keys).expect("keys") {
        let p = e.expect("entry").path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("private") => assert_eq!(mode(&p), 0o600, "{}", p.display()),
            Some("key") => assert_eq!(mode(&p) & !0o644, 0, "{}", p.display()),
            _ => continue,
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "one .key and one .private file");
}

#[test]
fn a_signer_killed_while_writing_leaves_the_old_output_and_the_next_run_removes_its_temporary() {
    let (d, keys, zone) = setup(30_000);
    let out = d.path().join("big.signed");
    std::fs::write(&out, "the previous signed zone\n").expect("old output");
    let mut child =
        sign(&keys, &zone, &out).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let killed_while_writing = loop {
        if !temps(d.path()).is_empty() {
            child.kill().expect("kill -9");
            break true;
        }
        if child.try_wait().expect("wait").is_some() || std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let _ = child.wait();
    assert!(killed_while_writing, "the signer never wrote a temporary file beside {}", out.display());
    assert_eq!(temps(d.path()).len(), 1, "the killed run's temporary file is there");
    assert_eq!(std::fs::read_to_string(&out).expect("old output"), "the previous signed zone\n", "the old output is intact");

    // The next run (a small zone into the same output) cleans up after the killed one.
    std::fs::write(&zone, zone_text(3)).expect("zone");
    let (ok, text) = run(&mut sign(&keys, &zone, &out));
    assert!(ok, "{text}");
    assert!(temps(d.path()).is_empty(), "stale temporary files left: {:?}", temps(d.path()));
    assert!(std::fs::read_to_string(&out).expect("signed").contains("RRSIG"));
}
