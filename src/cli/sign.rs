//! `hwsigner sign`: zone file in, signed zone file out, a clear exit status.

use super::device_keys;
use super::output::{Bar, print_json, write_atomic};
use super::{CliError, Exit, load_zone, parse_duration, parse_time, zone_wire};
use clap::Args;
use hwsigner::crypto::dnskey::DigestType;
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::dnssec::nsec3::Nsec3Params;
use hwsigner::dnssec::{Denial, ForeignKey, KeepDnskeys, Policy, SerialPolicy, sign_zone};
use hwsigner::keys::software::SoftwareStore;
use hwsigner::sign::{Role, SigningKey};
use hwsigner::zone::BuildOptions;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `hwsigner sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Unsigned zone file (RFC 1035 master file). A signed zone is re-signed cleanly.
    pub input: PathBuf,
    /// Zone name (origin), e.g. example.com.
    #[arg(short, long)]
    pub zone: String,
    /// Where to write the signed zone (atomically); `-` for standard output.
    #[arg(short, long, default_value = "-")]
    pub output: PathBuf,
    /// Software key directory (BIND K*.key/K*.private files).
    #[arg(short = 'K', long, env = "HWSIGNER_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// Configuration file (TOML): PKCS#11 stores and keys (see the README).
    #[arg(short, long, env = "HWSIGNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// TPM to use for TPM keys in the key directory (default: the configuration's [tpm] tcti, $TPM2TOOLS_TCTI, $TCTI, device:/dev/tpmrm0).
    #[arg(long)]
    pub tcti: Option<String>,
    /// File holding the TPM keys' authorisation value.
    #[arg(long)]
    pub tpm_auth_file: Option<PathBuf>,
    /// Environment variable holding the TPM keys' authorisation value.
    #[arg(long)]
    pub tpm_auth_env: Option<String>,
    /// A TPM that does not answer this many seconds beyond its expected time is declared hung.
    #[arg(long, value_parser = parse_duration)]
    pub device_watchdog: Option<u32>,
    /// Fail when no device has signed for this many seconds.
    #[arg(long, value_parser = parse_duration)]
    pub device_stall_timeout: Option<u32>,
    /// Use only these keys (id or key tag); default: every key of the zone in the store.
    #[arg(long = "key")]
    pub key_ids: Vec<String>,
    /// If the store has no key for the zone, generate a KSK and a ZSK with this algorithm (e.g. 13, ed25519, 8).
    #[arg(long, value_name = "ALGORITHM")]
    pub create_keys: Option<String>,
    /// Use NSEC3 instead of NSEC (RFC 5155; RFC 9276 defaults: no extra iterations, no salt).
    #[arg(long)]
    pub nsec3: bool,
    /// NSEC3 opt-out: insecure delegations get no NSEC3 record (implies --nsec3).
    #[arg(long)]
    pub opt_out: bool,
    /// NSEC3 additional iterations (RFC 9276 recommends 0).
    #[arg(long, default_value_t = 0)]
    pub iterations: u16,
    /// NSEC3 salt in hex, or `-` for none (RFC 9276 recommends none).
    #[arg(long, default_value = "-")]
    pub salt: String,
    /// Signature validity from now (e.g. 14d).
    #[arg(long, default_value = "14d", value_parser = parse_duration)]
    pub validity: u32,
    /// Inception set this far in the past, for validators whose clocks lag.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub inception_offset: u32,
    /// Up to this much is taken off each expiration, so re-signing spreads out.
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    pub jitter: u32,
    /// SOA serial: keep, increment, unixtime or date (YYYYMMDDnn).
    #[arg(long, default_value = "keep", value_parser = |s: &str| SerialPolicy::parse(s).ok_or("one of keep, increment, unixtime, date"))]
    pub serial: SerialPolicy,
    /// Sign as if the time were this (YYYYMMDDHHmmSS or epoch seconds): reproducible output.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<u64>,
    /// TTL of the DNSKEY RRset when the zone has none.
    #[arg(long, default_value = "3600", value_parser = parse_duration)]
    pub dnskey_ttl: u32,
    /// Let the ZSKs sign the DNSKEY RRset too.
    #[arg(long)]
    pub zsk_signs_dnskey: bool,
    /// Publish CDS for the KSKs with these digests (sha256, sha384), RFC 7344.
    #[arg(long, value_delimiter = ',', value_parser = |s: &str| DigestType::parse(s).ok_or("sha256 or sha384"))]
    pub cds: Vec<DigestType>,
    /// Publish CDNSKEY for the KSKs (RFC 7344).
    #[arg(long)]
    pub cdnskey: bool,
    /// Keep this input DNSKEY published though it is not a signing key: key tag or TAG/ALGORITHM (repeatable).
    /// Input DNSKEYs that are not signing keys are otherwise dropped.
    #[arg(long = "keep-dnskey", value_name = "TAG[/ALG]", value_parser = |s: &str| KeepDnskeys::parse_key(s).ok_or("a key tag, or TAG/ALGORITHM"))]
    pub keep_dnskey: Vec<(u16, Option<u8>)>,
    /// Keep every input DNSKEY published (multi-signer set-ups, RFC 8901).
    #[arg(long, conflicts_with = "keep_dnskey")]
    pub keep_input_dnskeys: bool,
    /// Add a ZONEMD record (RFC 8976, SIMPLE, SHA-384).
    #[arg(long)]
    pub zonemd: bool,
    /// Do not verify software-key signatures on the host (device signatures are always verified).
    #[arg(long)]
    pub no_verify: bool,
    /// Keep data below a DNAME (warn, leave unsigned) instead of refusing the zone.
    #[arg(long)]
    pub allow_occluded: bool,
    /// Print a JSON summary on standard output (needs --output to a file).
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Summary printed with `--json`.
#[derive(serde::Serialize)]
struct Summary<'a> {
    zone: &'a str,
    output: String,
    records: usize,
    rrsets_signed: usize,
    signatures_made: usize,
    signatures_reused: usize,
    denial: &'static str,
    denial_records: usize,
    serial: u32,
    warnings: Vec<hwsigner::zone::Warning>,
    dnskeys_dropped: Vec<ForeignKey>,
    dnskeys_kept: Vec<ForeignKey>,
    keys: Vec<hwsigner::dnssec::signer::KeyStats>,
    devices: Vec<hwsigner::pool::DeviceStats>,
    seconds_read: f64,
    seconds_sign: f64,
    seconds_write: f64,
    seconds_total: f64,
}

/// Runs `hwsigner sign`.
pub fn run(a: SignArgs) -> Result<(), CliError> {
    let t0 = Instant::now();
    let to_stdout = a.output.as_os_str() == "-";
    if a.json && to_stdout {
        return Err(CliError::new(Exit::Usage, "--json prints the summary on standard output; write the zone with --output FILE"));
    }
    let built = load_zone(&a.input, &a.zone, &BuildOptions { allow_occluded: a.allow_occluded, keep_dnssec: false })?;
    for w in &built.warnings {
        tracing::warn!(at = %w.at, "{}", w.message);
    }
    let mut zone = built.zone;
    let t_read = t0.elapsed().as_secs_f64();

    let config = match &a.config {
        Some(path) => Some((path, hwsigner::config::Config::load(path).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?)),
        None => None,
    };
    let mut pools = device_keys::pkcs11_pools(&a.zone, config.as_ref().map(|(p, c)| (p.as_path(), c)))?;
    let mut keys = Vec::new();
    let software_dir = config.as_ref().and_then(|(_, c)| c.software.as_ref()).map(|s| s.dir.clone());
    let dir = software_dir.clone().unwrap_or_else(|| a.keys.clone());
    let tpm = device_keys::TpmArgs { tcti: a.tcti.clone(), auth_file: a.tpm_auth_file.clone(), auth_env: a.tpm_auth_env.clone() };
    let defaults = hwsigner::pool::PoolOptions::default();
    let opts = hwsigner::pool::PoolOptions {
        watchdog: a.device_watchdog.map_or(defaults.watchdog, |s| std::time::Duration::from_secs(s.into())),
        stall_timeout: a.device_stall_timeout.map_or(defaults.stall_timeout, |s| std::time::Duration::from_secs(s.into())),
        ..defaults
    };
    pools.extend(device_keys::tpm_pools(&a.zone, &dir, &tpm, config.as_ref().and_then(|(_, c)| c.tpm.as_ref()), opts)?);
    if pools.is_empty() || software_dir.is_some() {
        keys = software_keys(&a, &dir, pools.is_empty())?;
    }
    let mut key_refs: Vec<&dyn SigningKey> = keys.iter().map(|k| k as &dyn SigningKey).collect();
    key_refs.extend(pools.iter().map(|p| p as &dyn SigningKey));
    if !a.key_ids.is_empty() {
        key_refs.retain(|k| a.key_ids.iter().any(|id| *id == k.info().id || *id == k.info().key_tag.to_string()));
        if key_refs.is_empty() {
            return Err(CliError::new(Exit::Key, format!("none of the keys {} is configured for {}", a.key_ids.join(", "), a.zone)));
        }
    }

    let mut policy = Policy::new(a.now.unwrap_or_else(super::now));
    if a.nsec3 || a.opt_out {
        let salt = if a.salt == "-" {
            Vec::new()
        } else {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(a.salt.as_bytes())
                .map_err(|_| CliError::new(Exit::Usage, format!("salt '{}' is not hex", a.salt)))?
        };
        policy.denial = Denial::Nsec3(Nsec3Params { iterations: a.iterations, salt, opt_out: a.opt_out });
    }
    policy.validity = a.validity;
    policy.inception_offset = a.inception_offset;
    policy.jitter = a.jitter.min(a.validity / 2);
    policy.refresh = (a.validity / 3).min(policy.refresh);
    policy.serial = a.serial;
    policy.dnskey_ttl = a.dnskey_ttl;
    policy.zsk_signs_dnskey = a.zsk_signs_dnskey;
    policy.cds = a.cds.clone();
    policy.cdnskey = a.cdnskey;
    policy.zonemd = a.zonemd;
    policy.keep_dnskeys = if a.keep_input_dnskeys {
        KeepDnskeys::All
    } else if a.keep_dnskey.is_empty() {
        KeepDnskeys::None
    } else {
        KeepDnskeys::Listed(a.keep_dnskey.clone())
    };
    policy.verify = !a.no_verify;

    let bar = Bar::new(!a.quiet && !a.json);
    let t1 = Instant::now();
    let signed = sign_zone(&mut zone, &key_refs, &policy, &bar);
    bar.finish();
    let mut seen: Vec<&std::sync::Arc<hwsigner::pool::Pool>> = Vec::new();
    for k in &pools {
        if !seen.iter().any(|p| std::sync::Arc::ptr_eq(p, k.pool())) {
            seen.push(k.pool());
        }
    }
    let devices: Vec<hwsigner::pool::DeviceStats> = seen.iter().flat_map(|p| p.stats()).collect();
    if !a.quiet && !a.json {
        print_devices(&devices);
    }
    let stats = signed.map_err(|e| CliError::new(Exit::Sign, format!("zone {}: {e}; nothing was written", a.zone)))?;
    let t_sign = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    if to_stdout {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        hwsigner::zone::writer::write_zone(&zone, &mut w)
            .and_then(|()| std::io::Write::flush(&mut w))
            .map_err(|e| CliError::new(Exit::Output, format!("standard output: {e}")))?;
    } else {
        write_atomic(&a.output, |w| hwsigner::zone::writer::write_zone(&zone, w))?;
    }
    let t_write = t2.elapsed().as_secs_f64();
    let denial = if matches!(policy.denial, Denial::Nsec) { "nsec" } else { "nsec3" };
    if a.json {
        print_json(&Summary {
            zone: &a.zone,
            output: a.output.display().to_string(),
            records: stats.records,
            rrsets_signed: stats.rrsets_signed,
            signatures_made: stats.signatures_made,
            signatures_reused: stats.signatures_reused,
            denial,
            denial_records: stats.denial_records,
            serial: stats.serial,
            warnings: built.warnings,
            dnskeys_dropped: stats.apex.dnskeys_dropped,
            dnskeys_kept: stats.apex.dnskeys_kept,
            keys: stats.keys,
            devices,
            seconds_read: t_read,
            seconds_sign: t_sign,
            seconds_write: t_write,
            seconds_total: t0.elapsed().as_secs_f64(),
        })?;
    } else if !a.quiet {
        let rate = stats.signatures_made as f64 / t_sign.max(1e-9);
        eprintln!(
            "signed {}: {} records, {} RRsets signed, {} signatures ({:.0}/s), {} {} records, serial {}, {:.2}s",
            a.zone,
            stats.records,
            stats.rrsets_signed,
            stats.signatures_made,
            rate,
            stats.denial_records,
            denial.to_uppercase(),
            stats.serial,
            t0.elapsed().as_secs_f64()
        );
        for k in &stats.keys {
            eprintln!(
                "  key {} (tag {}, algorithm {}): {} signatures in {:.2}s",
                k.key, k.key_tag, k.algorithm, k.signatures, k.sign_seconds
            );
        }
    }
    Ok(())
}

fn print_devices(devices: &[hwsigner::pool::DeviceStats]) {
    for d in devices {
        eprintln!(
            "  device {}: {} signatures, {} errors, {} restarts, {:.1} ms/signature, {:?}{}",
            d.device,
            d.signatures,
            d.errors,
            d.restarts,
            d.mean_ms,
            d.state,
            d.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
}

fn software_keys(a: &SignArgs, dir: &std::path::Path, required: bool) -> Result<Vec<hwsigner::keys::software::SoftwareKey>, CliError> {
    let store = SoftwareStore::new(dir);
    let mut keys = store.open_zone(&a.zone)?;
    if let Some(alg) = a.create_keys.as_ref().filter(|_| keys.is_empty()) {
        let alg = Algorithm::parse(alg).ok_or_else(|| CliError::new(Exit::Usage, format!("unknown algorithm '{alg}'")))?;
        let wire = zone_wire(&a.zone)?;
        for role in [Role::Ksk, Role::Zsk] {
            let info = store.generate(&wire, alg, role, 2048)?;
            tracing::info!(key = %info.id, key_tag = info.key_tag, "generated a {} in {}", role.as_str(), dir.display());
        }
        keys = store.open_zone(&a.zone)?;
    }
    if keys.is_empty() && required {
        let have = store.list(None)?;
        let listing: Vec<String> = have.iter().map(|k| format!("{} ({})", k.id, k.zone)).collect();
        return Err(CliError::new(
            Exit::Key,
            format!(
                "no keys for zone {} in {}{}; create them with `hwsigner keys generate --zone {}`, pass --create-keys ALGORITHM, or name hardware keys with --config",
                a.zone,
                dir.display(),
                if listing.is_empty() { String::new() } else { format!(" (present: {})", listing.join(", ")) },
                a.zone
            ),
        ));
    }
    Ok(keys)
}
