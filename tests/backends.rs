//! One set of signing tests, run against every key store: the software store,
//! PKCS#11 on SoftHSM2, the TPM on swtpm, and a SmartCard-HSM (the emulator
//! behind pcscd + vpcd, through OpenSC's opensc-pkcs11.so). Each store gets a
//! KSK and a ZSK made by that store, then the same scenario: a first signing
//! with NSEC, CDS/CDNSKEY and ZONEMD; re-signing that output with NSEC3
//! opt-out and without CDS or ZONEMD; re-signing once more with NSEC. Every
//! output passes the three validators, carries exactly the store's DNSKEYs,
//! and has exactly the records that were asked for, so a store cannot drift
//! from the others.

mod common;
use common::swtpm::Tpm;
use common::{AWKWARD_ORIGIN as ORIGIN, awkward_zone, hwsigner, require, run};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::softhsm::SOFTHSM;
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// How one store is asked to sign: the `sign` arguments naming its keys, and
/// the environment its keys need.
struct Store {
    name: &'static str,
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Store {
    fn new(name: &'static str) -> Store {
        Store { name, dir: tempfile::tempdir().expect("tempdir"), args: Vec::new(), env: Vec::new() }
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = hwsigner(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn sign(&self, input: &Path, output: &Path, extra: &[&str]) -> String {
        let mut c = self.command(&["sign", "--zone", ORIGIN]);
        c.args(&self.args).args(extra).arg("--output").arg(output).arg(input);
        let (ok, out) = run(&mut c);
        assert!(ok, "{}: sign {extra:?} of {}: {out}", self.name, input.display());
        out
    }
}

/// The record types at the apex and in the whole zone, and the DNSKEY RDATA.
struct Contents {
    types: BTreeSet<String>,
    apex: BTreeSet<String>,
    dnskeys: BTreeSet<String>,
    signers: BTreeSet<String>,
}

fn contents(signed: &Path) -> Contents {
    let text = std::fs::read_to_string(signed).expect("signed zone");
    let mut c = Contents { types: BTreeSet::new(), apex: BTreeSet::new(), dnskeys: BTreeSet::new(), signers: BTreeSet::new() };
    for line in text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 5 && f[2] == "IN", "unexpected line in {}: {line}", signed.display());
        c.types.insert(f[3].to_owned());
        if f[0].eq_ignore_ascii_case(ORIGIN) {
            c.apex.insert(f[3].to_owned());
        }
        match f[3] {
            "DNSKEY" => {
                c.dnskeys.insert(f[4..].join(" "));
            }
            "RRSIG" => {
                c.signers.insert(f[10].to_owned());
            }
            _ => {}
        }
    }
    c
}

/// The scenario every store runs.
fn suite(store: &Store) {
    let name = store.name;
    let first = store.path("first.zone");
    store.sign(&awkward_zone(), &first, &["--cds", "sha256", "--cdnskey", "--zonemd", "--serial", "increment"]);
    common::validate(&first, ORIGIN, &format!("{name}: NSEC with CDS, CDNSKEY and ZONEMD"));
    let c1 = contents(&first);
    assert_eq!(c1.dnskeys.len(), 2, "{name}: the store's KSK and ZSK are published: {:?}", c1.dnskeys);
    assert_eq!(c1.signers.len(), 2, "{name}: both keys sign (KSK the keys, ZSK the data): {:?}", c1.signers);
    for t in ["CDS", "CDNSKEY", "ZONEMD", "NSEC"] {
        assert!(c1.apex.contains(t), "{name}: {t} at the apex of the first signing: {:?}", c1.apex);
    }
    assert!(!c1.types.contains("NSEC3"), "{name}: no NSEC3 when NSEC was asked for");

    // Re-signing the signed zone: everything DNSSEC in the input is made
    // again, and what was not asked for this time is gone.
    let second = store.path("second.zone");
    store.sign(&first, &second, &["--nsec3", "--opt-out", "--serial", "increment"]);
    common::validate(&second, ORIGIN, &format!("{name}: re-signed with NSEC3 opt-out"));
    let c2 = contents(&second);
    assert_eq!(c2.dnskeys, c1.dnskeys, "{name}: the same DNSKEY set after re-signing");
    for t in ["CDS", "CDNSKEY", "ZONEMD", "NSEC"] {
        assert!(!c2.types.contains(t), "{name}: {t} left over from the first signing: {:?}", c2.types);
    }
    assert!(c2.types.contains("NSEC3") && c2.apex.contains("NSEC3PARAM"), "{name}: NSEC3 chain: {:?}", c2.types);

    let third = store.path("third.zone");
    store.sign(&second, &third, &["--zonemd", "--serial", "increment"]);
    common::validate(&third, ORIGIN, &format!("{name}: re-signed back to NSEC with ZONEMD"));
    let c3 = contents(&third);
    assert!(!c3.types.contains("NSEC3") && !c3.apex.contains("NSEC3PARAM"), "{name}: the NSEC3 chain is gone: {:?}", c3.types);
    assert!(c3.apex.contains("ZONEMD") && c3.types.contains("NSEC"), "{name}: {:?}", c3.types);
    assert_eq!(c3.dnskeys, c1.dnskeys, "{name}: the same DNSKEY set");
}

#[test]
fn software_store() {
    let mut s = Store::new("software");
    let keys = s.path("keys");
    for role in ["ksk", "zsk"] {
        let mut c = hwsigner(&["keys", "generate", "--zone", ORIGIN, "-a", "13", "--role", role, "-K"]);
        let (ok, out) = run(c.arg(&keys));
        assert!(ok, "software key generation: {out}");
    }
    s.args = vec!["-K".into(), keys.display().to_string()];
    suite(&s);
}

#[test]
fn softhsm2_store() {
    let mut s = Store::new("SoftHSM2");
    let conf = common::softhsm::init_tokens(s.dir.path(), &["backends"]);
    s.env = vec![("SOFTHSM2_CONF".into(), conf.display().to_string()), ("TEST_PIN".into(), common::softhsm::USER_PIN.into())];
    let mut config = format!("[[pkcs11]]\nname = \"hsm\"\nmodule = \"{SOFTHSM}\"\npin_env = \"TEST_PIN\"\n");
    for role in ["ksk", "zsk"] {
        let label = format!("backends-{role}");
        let mut c = s.command(&["keys", "generate", "--backend", "pkcs11", "--module", SOFTHSM, "--token", "label:backends"]);
        c.args(["--zone", ORIGIN, "--role", role, "--algorithm", "13", "--label", &label, "--pin-env", "TEST_PIN"]);
        let (ok, out) = run(&mut c);
        assert!(ok, "keys generate --backend pkcs11: {out}");
        config.push_str(&format!("\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"{role}\"\nstore = \"hsm\"\nlabel = \"{label}\"\n"));
    }
    let path = s.path("hw.toml");
    std::fs::write(&path, config).expect("config");
    s.args = vec!["--config".into(), path.display().to_string()];
    suite(&s);
}

#[test]
fn swtpm_store() {
    let tpm = Tpm::new();
    let mut s = Store::new("TPM");
    let keys = s.path("keys");
    tpm.keygen(&keys, "13", "ksk", &[]);
    tpm.keygen(&keys, "13", "zsk", &[]);
    s.env = vec![("TCTI".into(), tpm.tcti()), ("TSS2_LOG".into(), "all+none".into())];
    s.args = vec!["-K".into(), keys.display().to_string()];
    suite(&s);
}

/// One emulated SmartCard-HSM in the first vpcd reader, for as long as it lives.
/// Tests in other binaries use the same readers: the lock file keeps two
/// binaries (or two engineers' runs) from starting cards at once.
struct Card {
    child: Child,
    _lock: std::fs::File,
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs hwsigner with answers on standard input (never on the command line).
fn answered(store: &Store, args: &[&str], answers: &[&str]) -> String {
    let mut c = store.command(args);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("hwsigner");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for a in answers {
            writeln!(stdin, "{a}").expect("answer");
        }
    }
    let out = child.wait_with_output().expect("hwsigner");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

#[test]
fn smartcard_hsm_store() {
    require("pcscd", "pcscd");
    assert!(Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists(), "install vsmartcard-vpcd (scripts/test.sh does)");
    assert!(Path::new(OPENSC).exists(), "{OPENSC} is missing: install the Debian package opensc (scripts/test.sh does)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::File::create("/tmp/hwsigner-vpcd.lock").expect("vpcd lock file");
    lock.lock().expect("lock the vpcd readers");
    let (ok, out) = run(Command::new(root.join("scripts/pcscd-vpcd.sh")).arg("start"));
    assert!(ok, "pcscd with vpcd could not be started: {out}");
    let mut s = Store::new("SmartCard-HSM");
    let exe = std::env::current_exe().expect("test path");
    let emu = exe.parent().and_then(Path::parent).expect("target dir").join("sc-hsm-emu");
    assert!(emu.exists(), "{} is missing: build it with `cargo build --release --workspace` (scripts/test.sh does)", emu.display());
    let serial = "DEBK00001";
    let child = Command::new(&emu)
        .args(["--port", "35963", "--serial", serial, "--ec-sign-ms", "5", "--state"])
        .arg(s.path("card.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the emulator");
    let _card = Card { child, _lock: lock };
    let mut listed = String::new();
    for _ in 0..100 {
        let (ok, out) = run(&mut hwsigner(&["ceremony", "list", "--json"]));
        if ok && out.contains(serial) {
            listed = out;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listed.contains(serial), "the emulated card did not answer through pcscd");
    let (so, pin) = ("3537363231383830", "648219");
    let reader = format!("serial:{serial}");
    answered(&s, &["ceremony", "init", "--reader", &reader, "--dkek-shares", "0"], &[so, pin, pin]);
    let mut config = format!("[[pkcs11]]\nname = \"card\"\nmodule = \"{OPENSC}\"\npin_env = \"CARD_PIN\"\n");
    for role in ["ksk", "zsk"] {
        let label = format!("bk-{role}");
        answered(&s, &["ceremony", "keygen", "--reader", &reader, "--zone", ORIGIN, "--role", role, "--label", &label], &[pin]);
        config.push_str(&format!("\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"{role}\"\nstore = \"card\"\nlabel = \"{label}\"\n"));
    }
    let path = s.path("hw.toml");
    std::fs::write(&path, config).expect("config");
    s.env = vec![("CARD_PIN".into(), pin.into())];
    s.args = vec!["--config".into(), path.display().to_string()];
    suite(&s);
}
