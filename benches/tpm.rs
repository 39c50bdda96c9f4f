//! TPM benchmark on swtpm (prints figures; asserts nothing): signatures per
//! second through the signing pool (one worker process per TPM, host
//! verification) against a bare tss-esapi sign loop on the same key in one
//! process, for ECDSA P-256 and RSA-2048. Needs swtpm.

use hwsigner::crypto::SignInput;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::keys::tpm::{self, Parent, WorkerHello};
use hwsigner::pool::PoolOptions;
use hwsigner::pool::worker::DeviceSigner;
use hwsigner::sign::{Role, SigningKey};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state");
    let port = 23321;
    let ok = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate", &format!("dir={}", state.display())])
        .args([
            "--server",
            &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
            "--ctrl",
            &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
        ])
        .args(["--flags", "not-need-init,startup-clear", "--pid", &format!("file={}/pid", state.display()), "-d"])
        .status()
        .expect("swtpm (install swtpm)");
    assert!(ok.success(), "swtpm did not start");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let keys = dir.path().join("keys");
    let worker = std::env::current_exe().expect("exe").parent().and_then(Path::parent).expect("target").join("hwsigner");
    println!("== TPM (swtpm): pool (worker process, host verification) against a bare tss-esapi sign loop");
    for (alg, n) in [(Algorithm::EcdsaP256Sha256, 3000usize), (Algorithm::RsaSha256, 1000)] {
        let (id, f) = tpm::generate(&keys, &tcti, &Parent::Template, "bench.", Role::Csk, alg, None).expect("key");
        let digests: Vec<SignInput> = (0..n).map(|i| SignInput::Digest(openssl::sha::sha256(&i.to_be_bytes()).to_vec())).collect();
        // Bare: one process, the key loaded once, TPM2_Sign in a loop.
        let hello = WorkerHello {
            tcti: tcti.clone(),
            parent: Parent::Template,
            keys: vec![tpm::HelloKey {
                name: id.clone(),
                public: f.public_blob.clone(),
                private: f.private_blob.clone(),
                algorithm: f.algorithm,
                auth: None,
            }],
        };
        let rate_bare = {
            let mut dev = tpm::device::TpmDevice::open(&hello).expect("open");
            let t = Instant::now();
            for d in &digests {
                dev.sign(0, d).expect("sign");
            }
            n as f64 / t.elapsed().as_secs_f64()
        };
        let pool = tpm::pool_for_keys(&tcti, &[(id, f)], None, &worker, PoolOptions::default()).expect("pool");
        let t = Instant::now();
        let sigs = pool[0].sign_batch(&digests).expect("pool signs");
        assert_eq!(sigs.len(), n);
        let rate_pool = n as f64 / t.elapsed().as_secs_f64();
        println!("  {alg}: bare {rate_bare:7.0} sig/s, pool {rate_pool:7.0} sig/s = {:.0}% of bare", 100.0 * rate_pool / rate_bare);
    }
    if let Ok(pid) = std::fs::read_to_string(state.join("pid")) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}
