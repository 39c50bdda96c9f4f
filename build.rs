//! Makes the build id that the signer and its workers exchange in the worker
//! protocol's hello (`src/pool/protocol.rs`), so that a worker from another
//! build (a package upgraded under a running signer) is refused clearly.
//!
//! The id is a 64-bit FNV-1a hash of what decides the code: every file under
//! `src/`, `Cargo.toml`, `Cargo.lock`, this script, the profile, the target
//! and the enabled features. It is reproducible (same sources, same id; no
//! timestamp) and costs nothing at run time. Hashing the running executable
//! instead (about 10 ms for the 8 MB binary) was rejected: the library is also
//! linked into other programs (the pool benchmark, the tests) that start the
//! `hwsigner` binary as their worker, and they must agree with it.

use std::path::{Path, PathBuf};

fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts"));
    let mut list = Vec::new();
    files(&root.join("src"), &mut list);
    list.extend(["Cargo.toml", "Cargo.lock", "build.rs"].iter().map(|f| root.join(f)));
    list.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for p in &list {
        fnv(&mut hash, p.strip_prefix(&root).unwrap_or(p).to_string_lossy().as_bytes());
        fnv(&mut hash, &std::fs::read(p).unwrap_or_default());
    }
    let mut config: Vec<String> = std::env::vars().filter(|(k, _)| k.starts_with("CARGO_FEATURE_")).map(|(k, _)| k).collect();
    config.sort();
    config.extend(["PROFILE", "TARGET"].iter().map(|k| std::env::var(k).unwrap_or_default()));
    for c in &config {
        fnv(&mut hash, c.as_bytes());
    }
    println!("cargo:rustc-env=HWSIGNER_BUILD_ID={hash:016x}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
}
