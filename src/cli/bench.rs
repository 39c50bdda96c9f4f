//! `hwsigner bench`: how fast are these devices, and how long will this zone take?
//!
//! Opens a zone's keys exactly as `sign` does (PKCS#11 tokens and the TPM
//! through the signing pool, software keys in process) and signs random data
//! with each: signatures per second per key and per device, and each device's
//! latency percentiles (device time per signature, from the pool's figures).
//! With `--estimate ZONEFILE` it also counts the signatures signing that zone
//! would make, by running the signing engine itself over the zone with keys
//! that only count (so the count is the engine's, for the same denial
//! options), and divides by the measured speeds: the number an operator asks
//! for ("how long will my zone take on these cards?") and the one a signing
//! schedule needs. OpenDNSSEC's `ods-hsmspeed` is the model.

use super::device_keys;
use super::{CliError, Exit, load_zone, parse_duration};
use clap::Args;
use hwsigner::crypto::SignInput;
use hwsigner::dnssec::nsec3::Nsec3Params;
use hwsigner::dnssec::{Denial, Policy, sign_zone};
use hwsigner::keys::software::{SoftwareKey, SoftwareStore};
use hwsigner::pool::PoolKey;
use hwsigner::sign::{KeyError, KeyInfo, SigningKey};
use hwsigner::zone::BuildOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of `hwsigner bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Zone whose keys are measured, e.g. example.com.
    #[arg(short, long)]
    pub zone: String,
    /// Configuration file (TOML) naming the zone's PKCS#11 keys, the software directory and the TPM.
    #[arg(short, long, env = "HWSIGNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Software key directory (also holds TPM key files).
    #[arg(short = 'K', long, env = "HWSIGNER_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// Measure only these keys: a role (ksk, zsk, csk), a key tag or a key id; default every key of the zone.
    #[arg(long = "key")]
    pub key_ids: Vec<String>,
    /// Signatures per key.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub count: usize,
    /// Sign for this long per key instead of a fixed count (e.g. 30, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u32>,
    /// Also estimate how long signing this zone file would take on these keys.
    #[arg(long, value_name = "ZONEFILE")]
    pub estimate: Option<PathBuf>,
    /// For the estimate: NSEC3 instead of NSEC.
    #[arg(long)]
    pub nsec3: bool,
    /// For the estimate: NSEC3 opt-out (implies --nsec3).
    #[arg(long)]
    pub opt_out: bool,
    /// TPM to use for TPM keys (as for `sign`).
    #[arg(long)]
    pub tcti: Option<String>,
    /// File holding the TPM keys' authorisation value.
    #[arg(long)]
    pub tpm_auth_file: Option<PathBuf>,
    /// Environment variable holding the TPM keys' authorisation value.
    #[arg(long)]
    pub tpm_auth_env: Option<String>,
    /// Print the figures as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

/// One device's figures.
#[derive(serde::Serialize)]
struct DeviceFigures {
    device: String,
    signatures: u64,
    per_second: f64,
    errors: u64,
    state: hwsigner::pool::DeviceState,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// One key's figures.
#[derive(serde::Serialize)]
struct KeyFigures {
    key: String,
    key_tag: u16,
    algorithm: u8,
    role: &'static str,
    backend: &'static str,
    signatures: usize,
    seconds: f64,
    per_second: f64,
    /// Latency of one signature through the whole path (software keys only;
    /// device keys give theirs per device).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<Percentiles>,
    devices: Vec<DeviceFigures>,
}

#[derive(serde::Serialize, Clone, Copy)]
struct Percentiles {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// The estimate for a zone file.
#[derive(serde::Serialize)]
struct Estimate {
    file: String,
    denial: &'static str,
    signatures: usize,
    keys: Vec<KeyEstimate>,
    /// Host work of the signing engine over the zone (reading excluded).
    host_seconds: f64,
    /// Device time of every key plus the host work.
    seconds: f64,
}

#[derive(serde::Serialize)]
struct KeyEstimate {
    key: String,
    key_tag: u16,
    signatures: usize,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct Report {
    zone: String,
    keys: Vec<KeyFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate: Option<Estimate>,
}

/// Runs `hwsigner bench`.
pub fn run(a: BenchArgs) -> Result<(), CliError> {
    if a.count == 0 && a.duration.is_none() {
        return Err(CliError::new(Exit::Usage, "--count must be at least 1"));
    }
    let config = match &a.config {
        Some(path) => Some((path.clone(), hwsigner::config::Config::load(path).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?)),
        None => None,
    };
    let software_dir = config.as_ref().and_then(|(_, c)| c.software.as_ref()).map(|s| s.dir.clone());
    let dir = software_dir.clone().unwrap_or_else(|| a.keys.clone());
    let mut pools = device_keys::pkcs11_pools(&a.zone, config.as_ref().map(|(p, c)| (p.as_path(), c)))?;
    let tpm = device_keys::TpmArgs { tcti: a.tcti.clone(), auth_file: a.tpm_auth_file.clone(), auth_env: a.tpm_auth_env.clone() };
    let tpm_conf = config.as_ref().and_then(|(_, c)| c.tpm.as_ref());
    pools.extend(device_keys::tpm_pools(&a.zone, &dir, &tpm, tpm_conf, hwsigner::pool::PoolOptions::default())?);
    let software = if pools.is_empty() || software_dir.is_some() { SoftwareStore::new(&dir).open_zone(&a.zone)? } else { Vec::new() };
    let mut keys: Vec<Bench<'_>> = pools.iter().map(Bench::Pool).chain(software.iter().map(Bench::Software)).collect();
    if !a.key_ids.is_empty() {
        keys.retain(|k| {
            let i = k.key().info();
            a.key_ids.iter().any(|w| *w == i.id || *w == i.key_tag.to_string() || w.eq_ignore_ascii_case(i.role.as_str()))
        });
    }
    if keys.is_empty() {
        return Err(CliError::new(Exit::Key, format!("no keys to measure for zone {} (see --config, -K and --key)", a.zone)));
    }
    let mut figures = Vec::new();
    for k in &keys {
        let f = measure(k, a.count, a.duration.map(|s| Duration::from_secs(s.into())))?;
        if !a.json {
            print_key(&f);
        }
        figures.push(f);
    }
    let estimate = match &a.estimate {
        Some(file) => {
            let e = estimate(&a, file, &keys, &figures)?;
            if !a.json {
                print_estimate(&e);
            }
            Some(e)
        }
        None => None,
    };
    if a.json {
        super::output::print_json(&Report { zone: a.zone.clone(), keys: figures, estimate })?;
    }
    Ok(())
}

/// A key being measured.
enum Bench<'a> {
    Pool(&'a PoolKey),
    Software(&'a SoftwareKey),
}

impl Bench<'_> {
    fn key(&self) -> &dyn SigningKey {
        match self {
            Bench::Pool(k) => *k,
            Bench::Software(k) => *k,
        }
    }
}

/// Distinct random-looking inputs in the form the engine would hand over.
fn inputs(key: &dyn SigningKey, from: usize, n: usize) -> Result<Vec<SignInput>, CliError> {
    let alg = key.info().algorithm;
    (from..from + n)
        .map(|i| {
            let mut data = b"hwsigner bench ".to_vec();
            data.extend_from_slice(&(i as u64).to_be_bytes());
            data.extend_from_slice(&[0x5a; 100]);
            if key.wants_message() {
                Ok(SignInput::Message(data))
            } else {
                SignInput::prepare(alg, data).map_err(|e| CliError::new(Exit::Internal, format!("hashing: {e}")))
            }
        })
        .collect()
}

fn percentiles(mut v: Vec<f64>) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] * 1000.0;
    Some(Percentiles { p50_ms: at(0.50), p90_ms: at(0.90), p99_ms: at(0.99), max_ms: at(1.0) })
}

/// Signs `count` inputs (or for `duration`) with one key and collects the figures.
fn measure(k: &Bench<'_>, count: usize, duration: Option<Duration>) -> Result<KeyFigures, CliError> {
    let key = k.key();
    let info = key.info().clone();
    let sign_err = |e: KeyError| CliError::new(Exit::Sign, format!("key {} (tag {}): {e}", info.id, info.key_tag));
    let before = match k {
        Bench::Pool(p) => Some((p.pool().stats(), p.pool().latency_samples())),
        Bench::Software(_) => None,
    };
    let t = Instant::now();
    let mut done = 0usize;
    match duration {
        None => {
            for chunk in inputs(key, 0, count)?.chunks(key.preferred_batch().max(1)) {
                key.sign_batch(chunk).map_err(sign_err)?;
                done += chunk.len();
            }
        }
        Some(limit) => {
            // Batches of about half a second of work, so the limit is kept on slow cards too.
            let mut batch = 8usize;
            while t.elapsed() < limit {
                let b = Instant::now();
                key.sign_batch(&inputs(key, done, batch)?).map_err(sign_err)?;
                done += batch;
                let rate = batch as f64 / b.elapsed().as_secs_f64().max(1e-6);
                batch = ((rate * 0.5) as usize).clamp(1, key.preferred_batch().max(1));
            }
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let mut latency = None;
    let mut devices = Vec::new();
    match (k, before) {
        (Bench::Pool(p), Some((stats0, samples0))) => {
            let stats = p.pool().stats();
            let samples = p.pool().latency_samples();
            for (n, s) in stats.into_iter().enumerate() {
                let s0 = stats0.get(n);
                let signatures = s.signatures - s0.map_or(0, |x| x.signatures);
                let all = samples.get(n).cloned().unwrap_or_default();
                let old = samples0.get(n).map_or(0, Vec::len);
                // The ring keeps the latest requests: after it wrapped, all of them are this key's.
                let new = if all.len() > old { all[old..].to_vec() } else { all };
                let pc = percentiles(new);
                devices.push(DeviceFigures {
                    device: s.device,
                    signatures,
                    per_second: signatures as f64 / seconds.max(1e-9),
                    errors: s.errors - s0.map_or(0, |x| x.errors),
                    state: s.state,
                    p50_ms: pc.map_or(0.0, |p| p.p50_ms),
                    p90_ms: pc.map_or(0.0, |p| p.p90_ms),
                    p99_ms: pc.map_or(0.0, |p| p.p99_ms),
                    max_ms: pc.map_or(0.0, |p| p.max_ms),
                });
            }
        }
        _ => {
            // In process: time single signatures, the whole path of one RRset's signature.
            let n = done.clamp(1, 200);
            let one = inputs(key, done, n)?;
            let mut v = Vec::with_capacity(n);
            for i in one.chunks(1) {
                let s = Instant::now();
                key.sign_batch(i).map_err(sign_err)?;
                v.push(s.elapsed().as_secs_f64());
            }
            latency = percentiles(v);
        }
    }
    Ok(KeyFigures {
        key: info.id.clone(),
        key_tag: info.key_tag,
        algorithm: info.algorithm.number(),
        role: info.role.as_str(),
        backend: info.backend,
        signatures: done,
        seconds,
        per_second: done as f64 / seconds.max(1e-9),
        latency,
        devices,
    })
}

fn print_key(f: &KeyFigures) {
    println!(
        "key {} (tag {}, algorithm {}, {}, {}): {} signatures in {:.2} s = {:.1}/s",
        f.key, f.key_tag, f.algorithm, f.role, f.backend, f.signatures, f.seconds, f.per_second
    );
    if let Some(l) = f.latency {
        println!("  latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms);
    }
    for d in &f.devices {
        println!(
            "  device {}: {} signatures, {:.1}/s, {} errors, {:?}; per signature p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            d.device, d.signatures, d.per_second, d.errors, d.state, d.p50_ms, d.p90_ms, d.p99_ms, d.max_ms
        );
    }
}

fn print_estimate(e: &Estimate) {
    println!("estimate for {} ({}): {} signatures, {:.2} s", e.file, e.denial.to_uppercase(), e.signatures, e.seconds);
    for k in &e.keys {
        println!("  key {} (tag {}): {} signatures, {:.2} s", k.key, k.key_tag, k.signatures, k.seconds);
    }
    println!("  host work (hashing, chains, records): {:.2} s", e.host_seconds);
}

/// A key that signs nothing: it counts what the engine asks of it.
struct CountingKey {
    info: KeyInfo,
    wants_message: bool,
}

impl SigningKey for CountingKey {
    fn info(&self) -> &KeyInfo {
        &self.info
    }
    fn is_device(&self) -> bool {
        false
    }
    fn verifies_on_host(&self) -> bool {
        true
    }
    fn wants_message(&self) -> bool {
        self.wants_message
    }
    fn sign_batch(&self, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, KeyError> {
        Ok(vec![vec![0u8; 64]; inputs.len()])
    }
}

/// Counts the signatures the engine makes over `file` with the keys measured
/// and turns them into time at the measured speeds.
fn estimate(a: &BenchArgs, file: &Path, keys: &[Bench<'_>], figures: &[KeyFigures]) -> Result<Estimate, CliError> {
    let built = load_zone(file, &a.zone, &BuildOptions { allow_occluded: false, keep_dnssec: false })?;
    let mut zone = built.zone;
    let counting: Vec<CountingKey> =
        keys.iter().map(|k| CountingKey { info: k.key().info().clone(), wants_message: k.key().wants_message() }).collect();
    let refs: Vec<&dyn SigningKey> = counting.iter().map(|k| k as &dyn SigningKey).collect();
    let mut policy = Policy::new(super::now());
    if a.nsec3 || a.opt_out {
        policy.denial = Denial::Nsec3(Nsec3Params { iterations: 0, salt: Vec::new(), opt_out: a.opt_out });
    }
    policy.verify = false;
    let t = Instant::now();
    let stats = sign_zone(&mut zone, &refs, &policy, &hwsigner::dnssec::signer::NoProgress)
        .map_err(|e| CliError::new(Exit::Sign, format!("zone {} in {}: {e}", a.zone, file.display())))?;
    let host_seconds = t.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for k in &stats.keys {
        let f = figures.iter().find(|f| f.key == k.key && f.key_tag == k.key_tag).ok_or_else(|| {
            CliError::new(Exit::Internal, format!("the engine signed with key {} (tag {}), which was not measured", k.key, k.key_tag))
        })?;
        out.push(KeyEstimate {
            key: k.key.clone(),
            key_tag: k.key_tag,
            signatures: k.signatures,
            seconds: k.signatures as f64 / f.per_second.max(1e-9),
        });
    }
    let seconds = host_seconds + out.iter().map(|k| k.seconds).sum::<f64>();
    Ok(Estimate {
        file: file.display().to_string(),
        denial: if matches!(policy.denial, Denial::Nsec) { "nsec" } else { "nsec3" },
        signatures: stats.signatures_made,
        keys: out,
        host_seconds,
        seconds,
    })
}
