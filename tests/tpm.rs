//! The TPM 2.0 key store against swtpm (one instance per test, state in a
//! temporary directory, loopback ports), refereed by the validators and by
//! tpm2-tools: keys signing zones (ECDSA and RSA, KSK/ZSK and CSK), keys
//! surviving restarts of the signer and of the TPM, a key made by tpm2_create
//! imported, a key made by hwsigner used by tpm2_sign, and the faults: a TPM
//! killed mid-run, a wrong authorisation value (one attempt, counted by the
//! TPM), blobs from another TPM. Also the tpm2-pkcs11 path through the PKCS#11
//! store (tpm2-abrmd on a session bus).

mod common;
use common::{hwsigner, require, run};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::swtpm::Tpm;

const ORIGIN: &str = common::AWKWARD_ORIGIN;
/// The `.tpm` key file in a key directory that holds one key.
fn key_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("key directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tpm"))
        .expect("a .tpm key file")
}

fn zone() -> PathBuf {
    common::awkward_zone()
}

#[test]
fn ecdsa_and_rsa_ksk_zsk_and_csk_validate_and_survive_restarts() {
    let tpm = Tpm::new();
    assert_ne!(tpm.uid(), 0, "swtpm runs as an unprivileged user");
    let (ok, info) = run(&mut tpm.hw(&["tpm", "info"]));
    assert!(ok && info.contains("manufacturer IBM") && info.contains("EcDsa yes"), "{info}");

    // KSK ECDSA + ZSK ECDSA.
    let keys = tpm.path("keys-ec");
    tpm.keygen(&keys, "13", "ksk", &[]);
    tpm.keygen(&keys, "13", "zsk", &[]);
    // Key files and blobs are the owner's only (the one atomic-write helper's secret kind).
    let mut blobs = 0;
    for e in std::fs::read_dir(&keys).expect("keys") {
        use std::os::unix::fs::MetadataExt;
        let p = e.expect("entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.ends_with(".tpm") || name.ends_with(".tpm.pub") || name.ends_with(".tpm.priv") {
            assert_eq!(std::fs::metadata(&p).expect("metadata").mode() & 0o7777, 0o600, "{name}");
            blobs += 1;
        }
    }
    assert_eq!(blobs, 6, "three files per TPM key");
    let out = tpm.path("ec.zone");
    let (ok, text) = tpm.sign(&keys, &out, &["--nsec3"]);
    assert!(ok, "{text}");
    common::validate(&out, ORIGIN, "TPM ECDSA KSK+ZSK");

    // RSA CSK (the homenet draft's recommendation: one key).
    let rsa = tpm.path("keys-rsa");
    tpm.keygen(&rsa, "8", "csk", &[]);
    let out = tpm.path("rsa.zone");
    let (ok, text) = tpm.sign(&rsa, &out, &[]);
    assert!(ok, "{text}");
    common::validate_with(&out, ORIGIN, "TPM RSA CSK", true);

    // The blobs reload in a new signer process, and after the TPM restarts (state kept).
    tpm.kill();
    tpm.start();
    let again = tpm.path("ec-again.zone");
    let (ok, text) = tpm.sign(&keys, &again, &[]);
    assert!(ok, "after a TPM restart: {text}");
    common::validate(&again, ORIGIN, "TPM keys after restart");
    let (ok, list) = run(&mut tpm.hw(&["keys", "list", "-K", keys.to_str().expect("path")]));
    assert!(ok && list.matches("tpm").count() >= 2, "keys list shows TPM keys: {list}");
    let (ok, ds) = run(&mut tpm.hw(&["keys", "ds", "--zone", ORIGIN, "-K", keys.to_str().expect("path")]));
    assert!(ok && ds.lines().count() == 1 && ds.contains(" IN DS "), "DS of the KSK: {ds}");

    // The TPM named in the configuration file, with no TCTI in the environment.
    let config = tpm.path("hw.toml");
    std::fs::write(&config, format!("[software]\ndir = \"{}\"\n\n[tpm]\ntcti = \"{}\"\n", keys.display(), tpm.tcti())).expect("config");
    let out = tpm.path("configured.zone");
    let mut c = hwsigner(&["sign", "--zone", ORIGIN, "--config"]);
    c.arg(&config).arg("--output").arg(&out).arg(zone()).env_remove("TCTI").env_remove("TPM2TOOLS_TCTI");
    let (ok, text) = run(&mut c);
    assert!(ok, "TPM from the configuration: {text}");
    common::validate(&out, ORIGIN, "TPM from the configuration");
}

#[test]
fn tpm2_tools_referee_both_ways() {
    require("tpm2_create", "tpm2-tools");
    let tpm = Tpm::new();
    let (ok, out) = run(&mut tpm.hw(&["tpm", "persist-srk", "--handle", "0x81000001"]));
    assert!(ok, "{out}");

    // A key made by tpm2_create under the persisted parent signs through hwsigner.
    let (kp, kr) = (tpm.path("k.pub"), tpm.path("k.priv"));
    tpm.tool(
        "tpm2_create",
        &[
            "-C",
            "0x81000001",
            "-G",
            "ecc256:ecdsa-sha256",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
            "-u",
            kp.to_str().expect("p"),
            "-r",
            kr.to_str().expect("p"),
        ],
    );
    let keys = tpm.path("keys");
    let mut c = tpm.hw(&["keys", "import-tpm", "--zone", ORIGIN, "--role", "csk", "--srk-handle", "0x81000001", "--public"]);
    c.arg(&kp).arg("--private").arg(&kr).arg("-K").arg(&keys);
    let (ok, out) = run(&mut c);
    assert!(ok, "{out}");
    let signed = tpm.path("imported.zone");
    let (ok, text) = tpm.sign(&keys, &signed, &[]);
    assert!(ok, "{text}");
    common::validate_with(&signed, ORIGIN, "key made by tpm2_create", true);

    // A key made by hwsigner is used by tpm2_load and tpm2_sign; OpenSSL checks the signature.
    let mine = tpm.path("mine");
    tpm.keygen(&mine, "8", "csk", &["--srk-handle", "0x81000001"]);
    let base = key_file(&mine);
    let ctx = tpm.path("key.ctx");
    tpm.tool(
        "tpm2_load",
        &[
            "-C",
            "0x81000001",
            "-u",
            &format!("{}.pub", base.display()),
            "-r",
            &format!("{}.priv", base.display()),
            "-c",
            ctx.to_str().expect("p"),
        ],
    );
    let msg = tpm.path("msg");
    std::fs::write(&msg, b"signed by hwsigner's TPM key").expect("msg");
    let sig = tpm.path("sig");
    tpm.tool(
        "tpm2_sign",
        &["-c", ctx.to_str().expect("p"), "-g", "sha256", "-f", "plain", "-o", sig.to_str().expect("p"), msg.to_str().expect("p")],
    );
    let pem = tpm.path("pub.pem");
    tpm.tool("tpm2_readpublic", &["-c", ctx.to_str().expect("p"), "-f", "pem", "-o", pem.to_str().expect("p")]);
    let (ok, out) = run(Command::new("openssl").args(["dgst", "-sha256", "-verify"]).arg(&pem).arg("-signature").arg(&sig).arg(&msg));
    assert!(ok && out.contains("Verified OK"), "tpm2_sign with hwsigner's key: {out}");
}

#[test]
fn faults_killed_tpm_wrong_authorisation_foreign_blobs() {
    let tpm = Tpm::new();
    let keys = tpm.path("keys");
    tpm.keygen(&keys, "13", "csk", &[]);

    // The TPM dies mid-run: a clear error, the previous output stays.
    let big = tpm.path("big.zone");
    let generated =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/genzone.sh")).args(["4000", ORIGIN]).output().expect("genzone");
    std::fs::write(&big, generated.stdout).expect("zone");
    let out = tpm.path("out.zone");
    std::fs::write(&out, "last good zone\n").expect("old");
    let mut c = tpm.hw(&["sign", "--quiet", "--zone", ORIGIN, "--device-stall-timeout", "3", "-K"]);
    c.arg(&keys).arg("--output").arg(&out).arg(&big).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child: Child = c.spawn().expect("sign");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    tpm.kill();
    let o = child.wait_with_output().expect("sign");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "signing failed: {text}");
    assert!(text.contains("TPM at") && text.contains("nothing was written"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).expect("old"), "last good zone\n");
    tpm.start();

    // A key with an authorisation value: a wrong one is tried once, and the TPM counted it.
    let authed = tpm.path("authed");
    let mut c =
        tpm.hw(&["keys", "generate", "--backend", "tpm", "--zone", ORIGIN, "-a", "13", "--role", "csk", "--auth-env", "KEY_AUTH", "-K"]);
    c.arg(&authed).env("KEY_AUTH", "right-auth");
    let (ok, text) = run(&mut c);
    assert!(ok, "{text}");
    let lockout_count = || -> u64 {
        let (ok, info) = run(&mut tpm.hw(&["tpm", "info", "--json"]));
        assert!(ok, "{info}");
        let v: serde_json::Value = serde_json::from_str(info.trim()).expect("json");
        v["lockout"][0].as_u64().expect("lockout counter")
    };
    // (The unorderly stop above may itself have counted one failure.)
    let before = lockout_count();
    let mut c = tpm.hw(&["sign", "--zone", ORIGIN, "--tpm-auth-env", "KEY_AUTH", "-K"]);
    c.arg(&authed).arg("--output").arg(tpm.path("a.zone")).arg(zone()).env("KEY_AUTH", "wrong-auth");
    let o = c.output().expect("sign");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "a key problem, found at start: {text}");
    assert!(text.contains("authorisation value was rejected") && text.contains("not retried") && !text.contains("wrong-auth"), "{text}");
    assert_eq!(lockout_count(), before + 1, "exactly one failed authorisation counted by the TPM");
    let mut c = tpm.hw(&["sign", "--zone", ORIGIN, "--tpm-auth-env", "KEY_AUTH", "-K"]);
    c.arg(&authed).arg("--output").arg(tpm.path("a.zone")).arg(zone()).env("KEY_AUTH", "right-auth");
    let (ok, text) = run(&mut c);
    assert!(ok, "the right value works: {text}");

    // Blobs from another TPM.
    let other = Tpm::new();
    let mut c = other.hw(&["sign", "--zone", ORIGIN, "-K"]);
    c.arg(&keys).arg("--output").arg(other.path("x.zone")).arg(zone());
    let o = c.output().expect("sign");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(text.contains("do not belong to this TPM"), "{text}");
}

#[test]
fn tpm2_pkcs11_through_the_pkcs11_store() {
    require("tpm2_ptool", "libtpm2-pkcs11-tools");
    require("tpm2-abrmd", "tpm2-abrmd");
    require("dbus-daemon", "dbus");
    let module = "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so";
    assert!(Path::new(module).exists(), "{module} is missing: install libtpm2-pkcs11-1");
    let tpm = Tpm::new();
    // tpm2-pkcs11 needs a resource manager: tpm2-abrmd on a private session bus.
    let bus =
        Command::new("dbus-daemon").args(["--session", "--fork", "--print-address=1", "--print-pid=1"]).output().expect("dbus-daemon");
    let text = String::from_utf8_lossy(&bus.stdout).into_owned();
    let mut lines = text.lines();
    let address = lines.next().expect("bus address").to_owned();
    let bus_pid = lines.next().expect("bus pid").trim().to_owned();
    let mut abrmd = Command::new("tpm2-abrmd")
        .args(["--session", "--allow-root", &format!("--tcti=swtpm:host=127.0.0.1,port={}", tpm.port.get())])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tpm2-abrmd");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let store = tpm.path("p11store");
    std::fs::create_dir(&store).expect("store");
    let env = |c: &mut Command| {
        c.env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("TPM2_PKCS11_STORE", &store)
            .env("TPM2_PKCS11_TCTI", "tabrmd:bus_type=session")
            .env("TPM2TOOLS_TCTI", "tabrmd:bus_type=session")
            .env("TSS2_LOG", "all+none");
    };
    let ptool = |args: &[&str]| {
        let mut c = Command::new("tpm2_ptool");
        c.args(args);
        env(&mut c);
        let (ok, out) = run(&mut c);
        assert!(ok, "tpm2_ptool {args:?}: {out}");
    };
    let s = store.to_str().expect("path");
    ptool(&["init", "--path", s]);
    ptool(&["addtoken", "--pid=1", "--label=dnssec", "--userpin=1234", "--sopin=5678", "--path", s]);
    ptool(&["addkey", "--label=dnssec", "--userpin=1234", "--algorithm=ecc256", "--key-label=zsk", "--path", s]);
    let config = tpm.path("p11.toml");
    std::fs::write(
        &config,
        format!("[[pkcs11]]\nname = \"tpm\"\nmodule = \"{module}\"\ntokens = [\"label:dnssec\"]\npin_env = \"P11_PIN\"\n\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"csk\"\nstore = \"tpm\"\nlabel = \"zsk\"\n"),
    )
    .expect("config");
    let out = tpm.path("p11.zone");
    let mut c = hwsigner(&["sign", "--zone", ORIGIN, "--config"]);
    c.arg(&config).arg("--output").arg(&out).arg(zone()).env("P11_PIN", "1234");
    env(&mut c);
    let (ok, text) = run(&mut c);
    let _ = abrmd.kill();
    let _ = abrmd.wait();
    let _ = Command::new("kill").arg(&bus_pid).status();
    assert!(ok, "signing through tpm2-pkcs11: {text}");
    common::validate_with(&out, ORIGIN, "TPM through tpm2-pkcs11", true);
}

#[test]
fn key_files_carry_their_version_and_other_versions_are_refused() {
    let tpm = Tpm::new();
    let keys = tpm.path("keys");
    tpm.keygen(&keys, "13", "csk", &[]);
    let file = key_file(&keys);
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("key file")).expect("JSON");
    assert_eq!(json["version"], 1, "the key file says its version: {json}");
    // A file written before the version existed is version 1.
    json.as_object_mut().expect("object").remove("version");
    std::fs::write(&file, serde_json::to_vec_pretty(&json).expect("JSON")).expect("old key file");
    let out = tpm.path("signed.zone");
    let (ok, text) = tpm.sign(&keys, &out, &[]);
    assert!(ok, "an old key file still signs: {text}");
    common::validate_with(&out, ORIGIN, "TPM key file without a version", true);
    // A later format is refused, naming the file, and nothing is written.
    json["version"] = 2.into();
    std::fs::write(&file, serde_json::to_vec_pretty(&json).expect("JSON")).expect("new key file");
    std::fs::write(&out, "last good zone\n").expect("old output");
    let expected = format!("{}: TPM key file version 2 is not supported", file.display());
    let (ok, text) = tpm.sign(&keys, &out, &[]);
    assert!(!ok && text.contains(&expected), "{text}");
    assert_eq!(std::fs::read_to_string(&out).expect("output"), "last good zone\n", "the last good zone stays");
    let (ok, list) = run(&mut tpm.hw(&["keys", "list", "-K", keys.to_str().expect("path")]));
    assert!(!ok && list.contains(&expected), "keys list: {list}");
}

#[test]
fn the_tpm_worker_gets_no_authorisation_value_and_cannot_dump_core() {
    let tpm = Tpm::new();
    let authed = tpm.path("authed");
    let mut c =
        tpm.hw(&["keys", "generate", "--backend", "tpm", "--zone", ORIGIN, "-a", "13", "--role", "csk", "--auth-env", "KEY_AUTH", "-K"]);
    c.arg(&authed).env("KEY_AUTH", "right-auth");
    let (ok, text) = run(&mut c);
    assert!(ok, "{text}");
    let big = tpm.path("big.zone");
    let generated =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/genzone.sh")).args(["800", ORIGIN]).output().expect("genzone");
    std::fs::write(&big, generated.stdout).expect("zone");
    let mut c = tpm.hw(&["sign", "--quiet", "--zone", ORIGIN, "--tpm-auth-env", "KEY_AUTH", "-K"]);
    c.arg(&authed).arg("--output").arg(tpm.path("a.zone")).arg(&big).env("KEY_AUTH", "right-auth").stdout(Stdio::null());
    let mut child: Child = c.spawn().expect("sign");
    let worker = common::wait_children(&mut child, "worker tpm", 1)[0];
    std::thread::sleep(std::time::Duration::from_millis(300));
    let v = common::view(worker);
    assert!(child.wait().expect("sign").success(), "signing through the watched worker");
    assert!(v.environ.iter().any(|e| e.starts_with("TSS2_LOG=")), "the environment was read and keeps the TSS2 settings: {:?}", v.environ);
    assert!(
        !v.environ.iter().any(|e| e.starts_with("KEY_AUTH=") || e.ends_with("=right-auth")),
        "the authorisation value reached the worker: {:?}",
        v.environ
    );
    assert!(v.core_limit.split_whitespace().filter(|w| *w == "0").count() >= 2, "core size 0, soft and hard: {}", v.core_limit);
}
