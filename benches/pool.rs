//! Signing-pool benchmark on SoftHSM2 (prints figures; asserts nothing).
//!
//! (a) the pool's signatures per second against a bare loop of `C_Sign` plus
//!     host verification on the same key with the same number of processes;
//! (b) through the fault-injecting module modelling cards at 50 ms a
//!     signature: 1, 2, 4 and 8 tokens against N times the one-token rate;
//! (c) four such tokens, one hanging mid-run;
//! (d) two such tokens, one hanging on every signature, against the healthy
//!     token alone (a hung token may cost at most one watchdog period);
//! (e) optionally, `hwsigner sign` of a zone through the pool
//!     (`POOL_BENCH_ZONE=file POOL_BENCH_ORIGIN=name`), P-256 and RSA-2048.
//!
//! `POOL_BENCH_CASES=bd` runs only the cases named (default: all).
//!
//! Needs softhsm2-util and openssl; the fault module and the `hwsigner` binary
//! from `cargo build --release --workspace`.

use hwsigner::crypto::SignInput;
use hwsigner::crypto::public::PublicKey;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::keys::pkcs11::token::{find_private, find_slot, keys_on, login, open_module};
use hwsigner::keys::pkcs11::{KeySelector, KeySpec, TokenSelector, pool_for_key};
use hwsigner::pool::PoolOptions;
use hwsigner::secret::Secret;
use hwsigner::sign::Role;
use hwsigner::sign::SigningKey;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

struct Hsm {
    dir: tempfile::TempDir,
    serials: Vec<String>,
}

fn setup(tokens: usize, keys: &[(&str, &[&str])]) -> Hsm {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("t")).expect("dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.path().join("t").display()),
    )
    .expect("conf");
    // SAFETY of the environment: the benchmark is single-threaded here.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    for i in 1..=tokens {
        sh(Command::new("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            &format!("tok{i}"),
            "--so-pin",
            "12345678",
            "--pin",
            PIN,
        ]));
    }
    for (n, (label, genargs)) in keys.iter().enumerate() {
        let pem = dir.path().join(format!("{label}.pem"));
        sh(Command::new("openssl").arg("genpkey").args(*genargs).arg("-out").arg(&pem));
        for i in 1..=tokens {
            sh(Command::new("softhsm2-util").arg("--import").arg(&pem).args([
                "--token",
                &format!("tok{i}"),
                "--label",
                label,
                "--id",
                &format!("{:02x}", n + 1),
                "--pin",
                PIN,
            ]));
        }
    }
    let ctx = open_module(Path::new(SOFTHSM)).expect("softhsm");
    let mut serials = Vec::new();
    for i in 1..=tokens {
        let (slot, _) = find_slot(&ctx, Path::new(SOFTHSM), &TokenSelector::Label(format!("tok{i}"))).expect("token");
        serials.push(ctx.get_token_info(slot).expect("info").serial_number().trim().to_owned());
    }
    Hsm { dir, serials }
}

fn digests(n: usize) -> Vec<SignInput> {
    (0..n).map(|i| SignInput::Digest(openssl::sha::sha256(&i.to_be_bytes()).to_vec())).collect()
}

/// Child of the bare loop: one process, one session, C_Sign and host verification.
fn bare_child(module: &str, serial: &str, label: &str, count: usize) {
    let module = Path::new(module);
    let ctx = open_module(module).expect("module");
    let (slot, name) = find_slot(&ctx, module, &TokenSelector::Serial(serial.into())).expect("slot");
    let session = ctx.open_ro_session(slot).expect("session");
    login(&session, &Secret::new(PIN.into()), &name).expect("login");
    let found = keys_on(&session, &name).into_iter().find(|k| k.label == label && !k.public_key.is_empty()).expect("key");
    let alg = found.algorithm.and_then(Algorithm::from_number).expect("DNSSEC algorithm");
    let public = found.public_key;
    let sel = KeySelector { label: Some(label.into()), id: None };
    let (key, _) = find_private(&session, &sel, &name, &public, Role::Csk.flags(), alg).expect("key");
    let pk = PublicKey::from_parts(alg, &public).expect("public key");
    let inputs = digests(count);
    let t = Instant::now();
    for i in &inputs {
        let data = match alg {
            Algorithm::RsaSha256 => hwsigner::crypto::digest_info(alg.hash(), i.bytes()),
            _ => i.bytes().to_vec(),
        };
        let mech =
            if alg == Algorithm::RsaSha256 { cryptoki::mechanism::Mechanism::RsaPkcs } else { cryptoki::mechanism::Mechanism::Ecdsa };
        let sig = session.sign(&mech, key, &data).expect("C_Sign");
        assert!(pk.verify(i, &sig), "bad signature");
    }
    println!("{}", t.elapsed().as_secs_f64());
}

fn bare(hsm: &Hsm, label: &str, procs: usize, count: usize) -> f64 {
    let t = Instant::now();
    let children: Vec<_> = (0..procs)
        .map(|p| {
            Command::new(std::env::current_exe().expect("exe"))
                .args(["--bare-child", SOFTHSM, &hsm.serials[p % hsm.serials.len()], label, &(count / procs).to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("child")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("child");
        assert!(out.status.success(), "bare child failed");
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn spec(module: &Path, label: &str, tokens: &[String], alg: Algorithm) -> KeySpec {
    KeySpec {
        module: module.to_path_buf(),
        tokens: tokens.iter().map(|s| TokenSelector::Serial(s.clone())).collect(),
        key: KeySelector { label: Some(label.into()), id: None },
        zone: "bench.".into(),
        role: Role::Csk,
        algorithm: Some(alg),
        key_tag: None,
        pin: None,
    }
}

fn pool_rate(
    module: &Path,
    label: &str,
    tokens: &[String],
    alg: Algorithm,
    count: usize,
    opts: PoolOptions,
) -> (f64, Vec<hwsigner::pool::DeviceStats>) {
    let worker = target_dir().join("hwsigner");
    assert!(worker.exists(), "{} missing: cargo build --release", worker.display());
    let pool = pool_for_key(&spec(module, label, tokens, alg), &Secret::new(PIN.into()), &worker, opts).expect("pool");
    let inputs = digests(count);
    let t = Instant::now();
    for chunk in inputs.chunks(pool.preferred_batch()) {
        let sigs = pool.sign_batch(chunk).expect("pool signs");
        assert_eq!(sigs.len(), chunk.len());
    }
    (count as f64 / t.elapsed().as_secs_f64(), pool.pool().stats())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-child") {
        bare_child(&args[2], &args[3], &args[4], args[5].parse().expect("count"));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let ec: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let rsa: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let fault = target_dir().join("libfault_pkcs11.so");
    let hsm = setup(8, &[("p256", ec), ("rsa", rsa)]);
    let cases = std::env::var("POOL_BENCH_CASES").unwrap_or_else(|_| "abcde".into());
    let want = |c: char| cases.contains(c);

    if want('a') {
        println!("== (a) SoftHSM2, pool against a bare C_Sign + host-verify loop, 2 processes");
    }
    for (label, alg, count) in
        [("p256", Algorithm::EcdsaP256Sha256, 200_000usize), ("rsa", Algorithm::RsaSha256, 20_000)].into_iter().filter(|_| want('a'))
    {
        let bare1 = bare(&hsm, label, 1, count / 2);
        let bare2 = bare(&hsm, label, 2, count);
        let (pool2, _) = pool_rate(Path::new(SOFTHSM), label, &hsm.serials[..2], alg, count, PoolOptions::default());
        println!(
            "  {label:5} bare 1 process {bare1:8.0}/s, bare 2 processes {bare2:8.0}/s, pool over 2 tokens (2 workers) {pool2:8.0}/s = {:.0}% of bare",
            100.0 * pool2 / bare2
        );
    }

    // SAFETY of the environment: no other thread reads it now.
    unsafe {
        std::env::set_var("FAULT_PKCS11_MODULE", SOFTHSM);
        std::env::set_var("FAULT_PKCS11_CONTROL", hsm.dir.path().join("control"));
    }
    let control = hsm.dir.path().join("control");
    // The one-token rate of the 50 ms model, measured in (b).
    let mut one = 20.0;
    if want('b') {
        println!("== (b) cards modelled at 50 ms a signature (fault module), P-256");
    }
    std::fs::write(&control, "* latency ms=50\n").expect("control");
    for n in [1usize, 2, 4, 8].into_iter().filter(|_| want('b')) {
        let count = 60 * n;
        let (rate, _) = pool_rate(&fault, "p256", &hsm.serials[..n], Algorithm::EcdsaP256Sha256, count, PoolOptions::default());
        if n == 1 {
            one = rate;
        }
        println!("  {n} token(s): {rate:6.1} signatures/s = {:.0}% of {n} x the one-token rate", 100.0 * rate / (one * n as f64));
    }
    if want('c') {
        println!("== (c) four such tokens, one hanging after 20 signatures (watchdog 2 s)");
        std::fs::write(&control, "* latency ms=50\ntok2 hang after=20\n").expect("control");
        let opts = PoolOptions { watchdog: Duration::from_secs(2), max_backoff: Duration::from_secs(30), ..PoolOptions::default() };
        let (rate, stats) = pool_rate(&fault, "p256", &hsm.serials[..4], Algorithm::EcdsaP256Sha256, 400, opts);
        println!("  {rate:6.1} signatures/s = {:.0}% of the four-token rate (three healthy tokens: 75%)", 100.0 * rate / (one * 4.0));
        for s in stats {
            println!("    {}: {} signatures, {} errors, {:?}", s.device, s.signatures, s.errors, s.state);
        }
    }

    if want('d') {
        println!("== (d) two such tokens, one hanging on every signature (default watchdog 10 s), against the healthy token alone");
        let count = 260;
        std::fs::write(&control, "* latency ms=50\n").expect("control");
        let t = Instant::now();
        pool_rate(&fault, "p256", &hsm.serials[..1], Algorithm::EcdsaP256Sha256, count, PoolOptions::default());
        let alone = t.elapsed().as_secs_f64();
        std::fs::write(&control, "* latency ms=50\ntok2 hang\n").expect("control");
        let t = Instant::now();
        let (_, stats) = pool_rate(&fault, "p256", &hsm.serials[..2], Algorithm::EcdsaP256Sha256, count, PoolOptions::default());
        let hung = t.elapsed().as_secs_f64();
        println!(
            "  {count} signatures: healthy token alone {alone:.1} s, with the hung token {hung:.1} s (bound: alone + one watchdog period = {:.1} s)",
            alone + PoolOptions::default().watchdog.as_secs_f64()
        );
        for s in stats {
            println!("    {}: {} signatures, {} errors, {} restarts, {:?}", s.device, s.signatures, s.errors, s.restarts, s.state);
        }
    }

    if let (true, Ok(zone), Ok(origin)) = (want('e'), std::env::var("POOL_BENCH_ZONE"), std::env::var("POOL_BENCH_ORIGIN")) {
        println!("== (e) hwsigner sign {zone} through the pool, two SoftHSM2 tokens, NSEC3 opt-out");
        for label in ["p256", "rsa"] {
            let config = hsm.dir.path().join(format!("{label}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[[pkcs11]]\nname = \"hsm\"\nmodule = \"{SOFTHSM}\"\ntokens = [\"serial:{}\", \"serial:{}\"]\npin_env = \"BENCH_PIN\"\n\n[[key]]\nzone = \"{origin}\"\nrole = \"csk\"\nstore = \"hsm\"\nlabel = \"{label}\"\n",
                    hsm.serials[0], hsm.serials[1]
                ),
            )
            .expect("config");
            let out = hsm.dir.path().join("signed.zone");
            let t = Instant::now();
            let status = Command::new("/usr/bin/time")
                .args(["-f", "%e s wall, %M KB peak"])
                .arg(target_dir().join("hwsigner"))
                .args(["sign", "--quiet", "--opt-out", "--zone", &origin, "--config"])
                .arg(&config)
                .arg("--output")
                .arg(&out)
                .arg(&zone)
                .env("BENCH_PIN", PIN)
                .status()
                .expect("hwsigner");
            println!("  {label}: {} in {:.2} s", if status.success() { "signed" } else { "FAILED" }, t.elapsed().as_secs_f64());
            let _ = std::fs::remove_file(&out);
        }
    }
}
