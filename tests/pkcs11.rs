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

use common::softhsm::SOFTHSM;
const ORIGIN: &str = "awkward.test.";

struct Hsm {
    dir: tempfile::TempDir,
    tokens: usize,
}

impl Hsm {
    fn new(tokens: usize) -> Hsm {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels: Vec<String> = (1..=tokens).map(|i| format!("tok{i}")).collect();
        common::softhsm::init_tokens(dir.path(), &labels.iter().map(String::as_str).collect::<Vec<_>>());
        Hsm { dir, tokens }
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

/// Runs a command as `nobody` when the tests run as root: a process that is
/// not dumpable has its /proc files owned by root, which shows only when the
/// process itself is not root.
fn as_unprivileged(hsm: &Hsm, c: Command) -> (Command, u32) {
    if std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0) != 0 {
        let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).expect("uid");
        return (c, uid);
    }
    require("setpriv", "util-linux");
    let (ok, out) = run(Command::new("chmod").arg("-R").arg("a+rwX").arg(hsm.dir.path()));
    assert!(ok, "chmod: {out}");
    let mut s = Command::new("setpriv");
    s.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            s.env(k, v);
        }
    }
    (s, 65534)
}

fn assert_clean(v: &common::ChildView, what: &str) {
    assert!(
        v.environ.iter().any(|e| e.starts_with("SOFTHSM2_CONF=")),
        "{what}: the environment was read and keeps what modules need: {:?}",
        v.environ
    );
    assert!(!v.environ.iter().any(|e| e.starts_with("TEST_PIN=")), "{what}: the PIN's variable reached the child: {:?}", v.environ);
    assert!(
        !v.environ.iter().any(|e| e.split_once('=').is_some_and(|(_, val)| val == "1234")),
        "{what}: the PIN reached the child: {:?}",
        v.environ
    );
    assert!(
        !v.environ.iter().any(|e| e.starts_with("UNRELATED_SECRET=")),
        "{what}: an unlisted variable reached the child: {:?}",
        v.environ
    );
}

#[test]
fn workers_and_discovery_children_get_no_pin_and_cannot_dump_core() {
    let hsm = Hsm::new(2);
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "zsk", "01");
    // Slow enough that the workers are alive while they are looked at.
    hsm.control("* latency ms=20\n");
    let config = hsm.config(&fault_module(), &[("zsk", "csk")], "discovery_timeout = \"4s\"");
    let zone = tld_zone(hsm.dir.path(), 400);
    let out = hsm.path("signed.zone");
    let mut c = hwsigner(&["sign", "--quiet", "--zone", ORIGIN, "--config"]);
    c.arg(&config).arg("--output").arg(&out).arg(&zone);
    hsm.env(&mut c).env("UNRELATED_SECRET", "x");
    let (mut c, uid) = as_unprivileged(&hsm, c);
    let mut child = c.stdout(std::process::Stdio::null()).spawn().expect("hwsigner sign");
    let workers = common::wait_children(&mut child, "worker pkcs11", 2);
    // Past their start-up (hardening comes first thing, the PIN after it).
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Read once the signer runs as itself (setpriv changes credentials, which
    // leaves a process undumpable until it executes the signer).
    let parent = common::view(child.id());
    let views: Vec<common::ChildView> = workers.iter().map(|&p| common::view(p)).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "signing through the watched workers failed");
    assert!(parent.environ.iter().any(|e| e == "TEST_PIN=1234"), "the signer itself was given the PIN variable: {:?}", parent.environ);
    assert_eq!(parent.owner, uid, "the signer is dumpable: its /proc files are its own");
    for (pid, v) in workers.iter().zip(&views) {
        assert_clean(v, &format!("worker {pid}"));
        assert!(
            v.core_limit.split_whitespace().filter(|w| *w == "0").count() >= 2,
            "worker {pid}: core size 0, soft and hard: {}",
            v.core_limit
        );
        assert_eq!(v.owner, 0, "worker {pid} is not dumpable: its /proc files belong to root, not to uid {uid}");
    }
    common::validate_with(&out, ORIGIN, "watched workers", true);

    // The discovery child, held in the module's token listing until its deadline.
    hsm.control("tok2 hang-listing\n");
    let mut c = hwsigner(&["sign", "--quiet", "--zone", ORIGIN, "--config"]);
    c.arg(&config).arg("--output").arg(hsm.path("x.zone")).arg(&zone);
    hsm.env(&mut c).env("UNRELATED_SECRET", "x");
    let (mut c, _) = as_unprivileged(&hsm, c);
    let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("hwsigner sign");
    let probes = common::wait_children(&mut child, "worker pkcs11-probe", 1);
    // Now stuck in the listing (for the 4 s discovery deadline), long past its start.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let v = common::view(probes[0]);
    assert!(!child.wait().expect("wait").success(), "the hung listing fails the run");
    assert_clean(&v, "discovery child");
    assert!(v.core_limit.split_whitespace().filter(|w| *w == "0").count() >= 2, "discovery child: core size 0: {}", v.core_limit);
    assert_eq!(v.owner, 0, "the discovery child is not dumpable");
}

/// A raw hello frame as a signer of build `version`/`id` speaking `protocol` would send it.
fn raw_hello(protocol: u32, version: &str, id: &str, body: &[u8]) -> Vec<u8> {
    let mut f = vec![1u8];
    f.extend_from_slice(&protocol.to_be_bytes());
    for s in [version.as_bytes(), id.as_bytes(), body] {
        f.extend_from_slice(&(s.len() as u32).to_be_bytes());
        f.extend_from_slice(s);
    }
    let mut out = (f.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&f);
    out
}

#[test]
fn a_worker_refuses_a_signer_of_another_build_and_names_both() {
    use std::io::{Read, Write};
    let ours = env!("CARGO_PKG_VERSION");
    for (protocol, version) in [(2u32, "0.0.1-old"), (1, "0.0.1-old"), (77, "9.0.0")] {
        let mut c = hwsigner(&["worker", "pkcs11"]);
        let mut child = c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("worker");
        let body = br#"{"module":"/nonexistent.so","token":"x","key":{"label":"k","id":null},"algorithm":13,"pin":"s3cret-pin"}"#;
        child.stdin.take().expect("stdin").write_all(&raw_hello(protocol, version, "0123456789abcdef", body)).expect("write hello");
        let mut reply = Vec::new();
        child.stdout.take().expect("stdout").read_to_end(&mut reply).expect("reply");
        child.wait().expect("worker ends");
        assert!(reply.len() > 10 && reply[4] == 2 && reply[5] == 4, "a fatal Failed reply, not a Ready: {reply:?}");
        let message = String::from_utf8_lossy(&reply[10..]).into_owned();
        assert!(
            message.contains("refused") && message.contains(version) && message.contains(ours),
            "protocol {protocol}: both versions named: {message}"
        );
        assert!(!message.contains("s3cret") && !message.contains("nonexistent"), "the hello's content is not echoed: {message}");
    }
    // A malformed hello of this build: the JSON error names no value.
    let mut c = hwsigner(&["worker", "pkcs11"]);
    let mut child = c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("worker");
    let hello = raw_hello_this_build(br#"{"module":"/x.so","token":"x","key":{"label":"k","id":null},"algorithm":"s3cret-pin"}"#);
    child.stdin.take().expect("stdin").write_all(&hello).expect("write hello");
    let mut reply = Vec::new();
    child.stdout.take().expect("stdout").read_to_end(&mut reply).expect("reply");
    child.wait().expect("worker ends");
    let message = String::from_utf8_lossy(reply.get(10..).unwrap_or_default()).into_owned();
    assert!(message.contains("bad hello") && !message.contains("s3cret"), "{message}");
}

/// A hello of this very build, taken from the library's own encoder.
fn raw_hello_this_build(body: &[u8]) -> Vec<u8> {
    use hwsigner::pool::protocol::{BuildId, Request};
    Request::Hello { build: BuildId::this(), body: zeroize::Zeroizing::new(body.to_vec()) }.encode().to_vec()
}

#[test]
fn a_token_hanging_on_every_signature_costs_at_most_one_watchdog_period() {
    let hsm = Hsm::new(2);
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "zsk", "01");
    let zone = tld_zone(hsm.dir.path(), 1500);
    let extra = "watchdog = \"1s\"\nstall_timeout = \"10s\"\nmax_backoff = \"1s\"";
    hsm.control("* latency ms=3\ntok2 hang\n");
    // The healthy token alone.
    let alone = hsm.config(&fault_module(), &[("zsk", "csk")], &format!("tokens = [\"label:tok1\"]\n{extra}"));
    let t = std::time::Instant::now();
    let (ok, text) = hsm.sign(&alone, &zone, &hsm.path("alone.zone"), &[]);
    let healthy = t.elapsed().as_secs_f64();
    assert!(ok, "{text}");
    // Both tokens, one hanging on every signature.
    let both = hsm.config(&fault_module(), &[("zsk", "csk")], extra);
    let t = std::time::Instant::now();
    let out = hsm.path("both.zone");
    let (ok, text) = hsm.sign(&both, &zone, &out, &[]);
    let hung = t.elapsed().as_secs_f64();
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "one of two tokens hanging", true);
    let devs = common::summary_devices(&text);
    let tok2 = device(&devs, "tok2");
    assert!(
        tok2["errors"].as_u64().unwrap_or(0) >= 1 && tok2["restarts"].as_u64().unwrap_or(0) >= 1 && tok2["signatures"] == 0,
        "the hung token was killed and started again: {tok2}"
    );
    assert!(tok2["state"] != "healthy", "a token that never signed never got back a share of the work: {tok2}");
    // One watchdog period (1 s) beyond the first requests' expected time at
    // an unknown speed (1 + 2 s), plus scheduling margin.
    let bound = healthy + 1.0 + 2.0 + 2.0;
    eprintln!("healthy token alone {healthy:.2} s, with a hung second token {hung:.2} s (bound {bound:.2} s)");
    assert!(healthy > 2.0, "the zone takes long enough to measure: {healthy:.2} s");
    assert!(hung <= bound, "with a hung token {hung:.2} s, healthy token alone {healthy:.2} s: more than one watchdog period lost");
}

#[test]
fn bench_measures_each_token_and_its_estimate_matches_the_signatures_sign_makes() {
    let hsm = Hsm::new(2);
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "zsk", "01");
    hsm.import_everywhere(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ksk", "02");
    hsm.control("* latency ms=2\n");
    let config = hsm.config(&fault_module(), &[("ksk", "ksk"), ("zsk", "zsk")], "");
    let zone = tld_zone(hsm.dir.path(), 300);
    for denial in [&[][..], &["--opt-out"][..]] {
        let mut c = hwsigner(&["bench", "--json", "--count", "300", "--zone", ORIGIN, "--config"]);
        c.arg(&config).arg("--estimate").arg(&zone).args(denial);
        let o = hsm.env(&mut c).output().expect("hwsigner bench");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "bench: {stdout}{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("bench --json prints JSON");
        let keys = v["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2, "both keys measured: {v}");
        for k in keys {
            assert_eq!(k["signatures"], 300, "{k}");
            assert!(k["per_second"].as_f64().unwrap_or(0.0) > 0.0, "{k}");
            let devs = k["devices"].as_array().expect("devices");
            assert_eq!(devs.len(), 2, "two tokens per key: {k}");
            for d in devs {
                let f = |n: &str| d[n].as_f64().unwrap_or(-1.0);
                assert!(f("signatures") > 0.0 && f("per_second") > 0.0, "every token signs: {d}");
                assert!(
                    f("p50_ms") >= 2.0 && f("p50_ms") <= f("p90_ms") && f("p90_ms") <= f("p99_ms") && f("p99_ms") <= f("max_ms"),
                    "percentiles ordered, at least the modelled 2 ms: {d}"
                );
            }
        }
        let est = &v["estimate"];
        assert!(est["seconds"].as_f64().unwrap_or(0.0) > 0.0, "{est}");
        let out = hsm.path("signed.zone");
        let (ok, text) = hsm.sign(&config, &zone, &out, denial);
        assert!(ok, "{text}");
        let start = text.find('{').expect("summary");
        let summary: serde_json::Value =
            serde_json::Deserializer::from_str(&text[start..]).into_iter().next().expect("summary").expect("JSON");
        let rrsigs = std::fs::read_to_string(&out).expect("signed").lines().filter(|l| l.contains("\tRRSIG\t")).count();
        assert_eq!(summary["signatures_made"].as_u64(), Some(rrsigs as u64), "sign's own count");
        assert_eq!(est["signatures"].as_u64(), Some(rrsigs as u64), "{denial:?}: the estimate counts the RRSIGs sign makes: {est}");
        let per_key: u64 = est["keys"].as_array().expect("keys").iter().map(|k| k["signatures"].as_u64().unwrap_or(0)).sum();
        assert_eq!(per_key, rrsigs as u64, "{est}");
    }
    // For people: text.
    let mut c = hwsigner(&["bench", "--count", "50", "--key", "zsk", "--zone", ORIGIN, "--config"]);
    c.arg(&config);
    let o = hsm.env(&mut c).output().expect("hwsigner bench");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("signatures in") && text.contains("p99"), "{text}");
    assert!(text.contains("key pkcs11:zsk") && !text.contains("key pkcs11:ksk"), "--key zsk measures the ZSK only: {text}");
}
