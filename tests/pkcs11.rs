//! The PKCS#11 key store and the signing pool on SoftHSM2, refereed by the
//! validators; faults injected per token through `tests/fault-pkcs11` (built by
//! `cargo build --release --workspace`, which `scripts/test.sh` runs).
//!
//! Several tokens hold the same key (imported into each, as a cloned card
//! would); zones signed through the pool must validate whatever the tokens do:
//! hang, disappear and come back, return corrupt signatures; or the run must
//! fail with a clear message and write nothing.

mod common;
use common::{hwsigner, require, run};
use std::path::{Path, PathBuf};
use std::process::Command;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const ORIGIN: &str = "awkward.test.";

struct Hsm {
    dir: tempfile::TempDir,
    tokens: usize,
}

impl Hsm {
    fn new(tokens: usize) -> Hsm {
        require("softhsm2-util", "softhsm2");
        assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package softhsm2 (scripts/test.sh does)");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tokens")).expect("token dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.path().join("tokens").display()),
        )
        .expect("conf");
        let hsm = Hsm { dir, tokens };
        for i in 1..=tokens {
            let (ok, out) = run(hsm.env(&mut Command::new("softhsm2-util")).args([
                "--init-token",
                "--free",
                "--label",
                &format!("tok{i}"),
                "--so-pin",
                "12345678",
                "--pin",
                "1234",
            ]));
            assert!(ok, "softhsm2-util --init-token: {out}");
        }
        hsm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("SOFTHSM2_CONF", self.path("softhsm2.conf"))
            .env("TEST_PIN", "1234")
            .env("FAULT_PKCS11_MODULE", SOFTHSM)
            .env("FAULT_PKCS11_CONTROL", self.path("control"))
            .env("FAULT_PKCS11_LOG", self.path("fault.log"))
    }

    /// Makes a key with OpenSSL and imports it into every token, as cloning would.
    fn import_everywhere(&self, openssl_args: &[&str], label: &str, id: &str) {
        let pem = self.path(&format!("{label}.pem"));
        let (ok, out) = run(Command::new("openssl").arg("genpkey").args(openssl_args).arg("-out").arg(&pem));
        assert!(ok, "openssl genpkey: {out}");
        for i in 1..=self.tokens {
            let (ok, out) = run(self.env(&mut Command::new("softhsm2-util")).arg("--import").arg(&pem).args([
                "--token",
                &format!("tok{i}"),
                "--label",
                label,
                "--id",
                id,
                "--pin",
                "1234",
            ]));
            assert!(ok, "softhsm2-util --import: {out}");
        }
        std::fs::remove_file(&pem).expect("remove the software copy");
    }

    /// A configuration with one store over `module` and the given keys (label, role).
    fn config(&self, module: &Path, keys: &[(&str, &str)], extra: &str) -> PathBuf {
        let mut text = format!("[[pkcs11]]\nname = \"hsm\"\nmodule = \"{}\"\npin_env = \"TEST_PIN\"\n{extra}\n", module.display());
        for (label, role) in keys {
            text.push_str(&format!("\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"{role}\"\nstore = \"hsm\"\nlabel = \"{label}\"\n"));
        }
        let p = self.path(&format!("hw-{}.toml", keys.iter().map(|k| k.0).collect::<Vec<_>>().join("-")));
        std::fs::write(&p, text).expect("config");
        p
    }

    fn control(&self, text: &str) {
        std::fs::write(self.path("control"), text).expect("control file");
    }

    fn sign(&self, config: &Path, zone: &Path, output: &Path, extra: &[&str]) -> (bool, String) {
        let mut c = hwsigner(&["sign", "--json", "--zone", ORIGIN, "--config"]);
        c.arg(config).args(extra).arg("--output").arg(output).arg(zone);
        let out = self.env(&mut c).output().expect("run hwsigner");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

fn fault_module() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let so = dir.join("libfault_pkcs11.so");
    assert!(so.exists(), "{} is missing: build it with `cargo build --release --workspace` (scripts/test.sh does)", so.display());
    so
}

fn awkward_zone() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/awkward.zone")
}

/// A TLD-like zone with `n` delegations (the benchmark's generator).
fn tld_zone(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join(format!("tld-{n}.zone"));
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/genzone.sh"))
        .args([&n.to_string(), ORIGIN])
        .output()
        .expect("scripts/genzone.sh");
    assert!(out.status.success(), "genzone.sh failed");
    std::fs::write(&p, out.stdout).expect("zone");
    p
}

fn device<'a>(devs: &'a [serde_json::Value], label: &str) -> &'a serde_json::Value {
    devs.iter().find(|d| d["device"].as_str().is_some_and(|n| n.starts_with(&format!("'{label}'")))).expect("device in summary")
}

#[test]
fn three_tokens_every_algorithm_validates() {
    let hsm = Hsm::new(3);
    let algs: [(&str, &[&str], &[&str]); 5] = [
        ("8", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], &[]),
        ("10", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], &["--nsec3"]),
        ("13", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], &["--opt-out"]),
        ("14", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], &[]),
        ("15", &["-algorithm", "ED25519"], &["--nsec3"]),
    ];
    for (n, (alg, gen_args, extra)) in algs.iter().enumerate() {
        let label = format!("csk{alg}");
        hsm.import_everywhere(gen_args, &label, &format!("0{n}"));
        let config = hsm.config(Path::new(SOFTHSM), &[(&label, "csk")], "");
        if *alg == "10" {
            let text = std::fs::read_to_string(&config).expect("config") + "algorithm = \"10\"\n";
            std::fs::write(&config, text).expect("config");
        }
        let out = hsm.path(&format!("signed-{alg}.zone"));
        let (ok, text) = hsm.sign(&config, &awkward_zone(), &out, extra);
        assert!(ok, "algorithm {alg}: {text}");
        common::validate_with(&out, ORIGIN, &format!("PKCS#11 algorithm {alg}"), true);
        let devs = common::summary_devices(&text);
        assert_eq!(devs.len(), 3, "three tokens hold the key: {text}");
        for d in &devs {
            assert!(d["signatures"].as_u64().unwrap_or(0) > 0, "every token signs: {d}");
        }
        let signed = std::fs::read_to_string(&out).expect("signed zone");
        assert!(signed.contains(&format!("\tRRSIG\tSOA {alg} ")), "algorithm {alg} RRSIGs present");
    }
}

#[test]
fn separate_ksk_and_zsk_and_keys_made_on_the_token() {
    let hsm = Hsm::new(2);
    // The KSK is generated on tok1 by hwsigner itself: sensitive, never extractable.
    let mut c = hwsigner(&["keys", "generate", "--backend", "pkcs11", "--module", SOFTHSM, "--token", "label:tok1"]);
    c.args(["--zone", ORIGIN, "--role", "ksk", "--algorithm", "13", "--label", "ksk", "--pin-env", "TEST_PIN"]);
    let (ok, out) = run(hsm.env(&mut c));
    assert!(ok, "keys generate --backend pkcs11: {out}");
    assert!(out.contains("IN DNSKEY 257 3 13") && out.contains("IN DS "), "DNSKEY and DS printed: {out}");
    require("pkcs11-tool", "opensc");
    let mut c = Command::new("pkcs11-tool");
    c.args(["--module", SOFTHSM, "--token-label", "tok1", "--login", "--pin", "1234", "--list-objects", "--type", "privkey"]);
    let (ok, objects) = run(hsm.env(&mut c));
    assert!(ok, "pkcs11-tool: {objects}");
    assert!(
        objects.contains("never extractable") && objects.contains("sensitive"),
        "OpenSC sees a sensitive, non-extractable key: {objects}"
    );
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "zsk", "22");
    let config = hsm.config(Path::new(SOFTHSM), &[("ksk", "ksk"), ("zsk", "zsk")], "");
    let out = hsm.path("signed.zone");
    let (ok, text) = hsm.sign(&config, &awkward_zone(), &out, &["--nsec3"]);
    assert!(ok, "{text}");
    common::validate(&out, ORIGIN, "PKCS#11 KSK + ZSK");
    let mut c = hwsigner(&["keys", "ds", "--zone", ORIGIN, "--config"]);
    c.arg(&config);
    let (ok, ds) = run(hsm.env(&mut c));
    // Warnings (such as an unpinned key) go to standard error beside the DS.
    assert!(ok && ds.lines().filter(|l| l.contains(" IN DS ")).count() == 1, "one DS, for the KSK: {ds}");
}

#[test]
fn tokens_list_shows_serials_and_shared_keys() {
    let hsm = Hsm::new(2);
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "shared", "01");
    let (ok, out) = run(hsm.env(&mut hwsigner(&["tokens", "list", "--module", SOFTHSM])));
    assert!(ok, "{out}");
    assert!(out.contains("token 'tok1' serial ") && out.contains("token 'tok2' serial "), "{out}");
    assert!(out.contains("label 'shared' id 01: P-256 algorithm 13") && out.contains("same key on 'tok2'"), "{out}");
    // A token named in the configuration that is not there: the error lists what is.
    let config = hsm.path("missing.toml");
    std::fs::write(
        &config,
        format!(
            "[[pkcs11]]\nname = \"hsm\"\nmodule = \"{SOFTHSM}\"\ntokens = [\"serial:nosuch\"]\npin_env = \"TEST_PIN\"\n\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"csk\"\nstore = \"hsm\"\nlabel = \"shared\"\n"
        ),
    )
    .expect("config");
    let (ok, text) = hsm.sign(&config, &awkward_zone(), &hsm.path("x.zone"), &[]);
    assert!(!ok && text.contains("no token serial:nosuch") && text.contains("'tok1' serial"), "{text}");
    // A key that is not there: the error lists the keys that are.
    let config = hsm.config(Path::new(SOFTHSM), &[("nokey", "csk")], "");
    let (ok, text) = hsm.sign(&config, &awkward_zone(), &hsm.path("x.zone"), &[]);
    assert!(!ok && text.contains("no key with label 'nokey'") && text.contains("label 'shared' id 01"), "{text}");
}

/// Three tokens behind the fault-injecting module, each modelling a card at 3 ms a signature.
fn fault_setup(faults: &str) -> (Hsm, PathBuf, PathBuf) {
    let hsm = Hsm::new(3);
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "zsk", "01");
    let config = hsm.config(&fault_module(), &[("zsk", "csk")], "watchdog = \"500ms\"\nstall_timeout = \"4s\"\nmax_backoff = \"1s\"");
    hsm.control(&format!("* latency ms=3\n{faults}"));
    let zone = tld_zone(hsm.dir.path(), 1500);
    (hsm, config, zone)
}

#[test]
fn a_token_hanging_mid_run_is_killed_and_the_zone_completes() {
    let (hsm, config, zone) = fault_setup("tok2 hang after=25 once\n");
    let out = hsm.path("signed.zone");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "one token hung", true);
    let devs = common::summary_devices(&text);
    let tok2 = device(&devs, "tok2");
    assert!(tok2["errors"].as_u64().unwrap_or(0) >= 1 && tok2["restarts"].as_u64().unwrap_or(0) >= 1, "hung token killed: {tok2}");
    assert!(tok2["current_worker_signatures"].as_u64().unwrap_or(0) > 0 && tok2["state"] == "healthy", "and back once it answers: {tok2}");
    assert!(text.contains("watchdog"), "the watchdog is named: {text}");
}

#[test]
fn a_token_removed_mid_run_rejoins_after_reinsertion() {
    // The token vanishes after 15 signatures and is back for the next worker.
    let (hsm, config, zone) = fault_setup("tok3 removed after=15 once\n");
    let out = hsm.path("signed.zone");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "one token removed and re-inserted", true);
    let devs = common::summary_devices(&text);
    let tok3 = device(&devs, "tok3");
    assert!(tok3["restarts"].as_u64().unwrap_or(0) >= 1, "re-opened after removal: {tok3}");
    assert!(
        tok3["current_worker_signatures"].as_u64().unwrap_or(0) > 0 && tok3["state"] == "healthy",
        "signed again after re-insertion: {tok3}"
    );
    let logins = std::fs::read_to_string(hsm.path("fault.log")).unwrap_or_default();
    assert!(logins.lines().filter(|l| *l == "login tok3").count() >= 2, "logged in again after re-insertion: {logins}");
}

#[test]
fn a_crash_inside_the_vendor_library_takes_down_one_worker_only() {
    let (hsm, config, zone) = fault_setup("tok1 crash after=10 once\n");
    let out = hsm.path("signed.zone");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "one worker crashed", true);
    let devs = common::summary_devices(&text);
    let tok1 = device(&devs, "tok1");
    assert!(tok1["restarts"].as_u64().unwrap_or(0) >= 1 && tok1["state"] == "healthy", "crashed worker replaced: {tok1}");
}

#[test]
fn rsa_through_tokens_lacking_rsa_pkcs_or_every_hash_mechanism() {
    // tok1 has CKM_RSA_PKCS; tok2 lacks it (hash-and-sign, whole message);
    // tok3 lacks it and the hash-and-sign mechanisms (raw RSA, host padding),
    // as some AEP Keyper set-ups do. One pool mixes all three.
    let hsm = Hsm::new(3);
    hsm.import_everywhere(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "rsa", "07");
    hsm.control("tok2 hide hide=1\ntok3 hide hide=1,40,41,42\n");
    for alg in ["8", "10"] {
        let config = hsm.config(&fault_module(), &[("rsa", "csk")], "");
        let text = std::fs::read_to_string(&config).expect("config") + &format!("algorithm = \"{alg}\"\n");
        std::fs::write(&config, text).expect("config");
        let out = hsm.path(&format!("rsa-{alg}.zone"));
        let (ok, text) = hsm.sign(&config, &awkward_zone(), &out, &[]);
        assert!(ok, "{text}");
        common::validate_with(&out, ORIGIN, &format!("RSA algorithm {alg} over three mechanisms"), true);
        for d in common::summary_devices(&text) {
            assert!(d["signatures"].as_u64().unwrap_or(0) > 0, "every token signs: {d}");
        }
    }
    let mut c = hwsigner(&["tokens", "list", "--module"]);
    c.arg(fault_module());
    let (ok, out) = run(hsm.env(&mut c));
    assert!(ok, "{out}");
    assert!(out.contains("mechanisms: RSA-X-509 ECDSA"), "tok3 offers raw RSA only: {out}");
}

#[test]
fn a_token_returning_corrupt_signatures_is_taken_out() {
    let (hsm, config, zone) = fault_setup("tok1 corrupt after=5\n");
    let out = hsm.path("signed.zone");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "one token corrupting signatures", true);
    let devs = common::summary_devices(&text);
    let tok1 = device(&devs, "tok1");
    assert_eq!(tok1["state"], "out", "corrupting token taken out: {tok1}");
    assert!(tok1["reason"].as_str().is_some_and(|r| r.contains("does not verify")), "{tok1}");
}

#[test]
fn all_tokens_failing_fails_the_run_and_writes_nothing() {
    let (hsm, config, zone) = fault_setup("* error after=10\n");
    let out = hsm.path("signed.zone");
    std::fs::write(&out, "last good zone\n").expect("old output");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("no device signed for") && text.contains("CKR_DEVICE_ERROR") && text.contains("nothing was written"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).expect("old output"), "last good zone\n", "the last good zone stays");
}

#[test]
fn a_module_hanging_or_crashing_during_discovery_fails_cleanly() {
    // Discovery loads the module in a child process: a hang there is cut off
    // at discovery_timeout, a crash ends the child, and the signer reports either
    // and keeps the last good zone.
    let (hsm, _, zone) = fault_setup("");
    let config = hsm.config(&fault_module(), &[("zsk", "csk")], "discovery_timeout = \"3s\"");
    let out = hsm.path("signed.zone");
    std::fs::write(&out, "last good zone\n").expect("old output");
    for (fault, expect) in [("tok2 hang-listing\n", "did not answer within 3 s"), ("tok2 crash-listing\n", "crashed while listing")] {
        hsm.control(fault);
        let started = std::time::Instant::now();
        let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
        assert!(!ok, "{fault}: {text}");
        assert!(text.contains(expect) && text.contains("fault"), "{fault}: the module and what happened are named: {text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "{fault}: no waiting beyond the deadline");
        assert_eq!(std::fs::read_to_string(&out).expect("old output"), "last good zone\n", "{fault}: the last good zone stays");
        let mut c = hwsigner(&["tokens", "list", "--timeout", "3", "--module"]);
        c.arg(fault_module());
        let o = hsm.env(&mut c).output().expect("tokens list");
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && (text.contains("did not answer") || text.contains("crashed")), "{fault}: tokens list: {text}");
    }
    // The same zone signs once the module behaves.
    hsm.control("");
    let (ok, text) = hsm.sign(&config, &zone, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "after discovery faults", true);
}

#[test]
fn a_wrong_pin_is_tried_exactly_once() {
    let (hsm, config, zone) = fault_setup("");
    let out = hsm.path("signed.zone");
    let mut c = hwsigner(&["sign", "--zone", ORIGIN, "--config"]);
    c.arg(&config).arg("--output").arg(&out).arg(&zone);
    hsm.env(&mut c).env("TEST_PIN", "9999");
    let o = c.output().expect("run");
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(4), "key error exit status: {text}");
    assert!(text.contains("PIN was rejected") && !text.contains("9999"), "clear message without the PIN: {text}");
    let logins = std::fs::read_to_string(hsm.path("fault.log")).unwrap_or_default();
    assert_eq!(logins.lines().filter(|l| l.starts_with("login")).count(), 1, "exactly one login attempt: {logins}");
    assert!(!out.exists(), "nothing written");
}
