//! `hwsigner keys`: generate, list, show DS, export DNSKEY, import BIND keys.

use super::output::print_json;
use super::{CliError, Exit, zone_wire};
use clap::{Args, Subcommand};
use hwsigner::crypto::dnskey::{DigestType, ds_rdata};
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::dns::rdata::format;
use hwsigner::dns::rtype::code;
use hwsigner::keys::software::SoftwareStore;
use hwsigner::sign::{KeyInfo, Role};
use std::path::PathBuf;

/// `hwsigner keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key in the software store and print its DNSKEY and DS.
    Generate(GenerateArgs),
    /// List keys.
    List(ListArgs),
    /// Print DS records for the zone's key-signing keys (to hand to the parent).
    Ds(DsArgs),
    /// Print the DNSKEY records of the zone's keys.
    Export(ListArgs),
    /// Import a BIND key pair (K*.private with its K*.key beside it).
    Import(ImportArgs),
    /// Import a key made with tpm2-tools (tpm2_create -C <persistent parent> -u pub -r priv).
    ImportTpm(ImportTpmArgs),
}

/// Options of `keys import-tpm`.
#[derive(Debug, Args)]
pub struct ImportTpmArgs {
    /// The public blob (tpm2_create -u).
    #[arg(long)]
    pub public: PathBuf,
    /// The private blob (tpm2_create -r).
    #[arg(long)]
    pub private: PathBuf,
    /// Zone the key is for.
    #[arg(short, long)]
    pub zone: String,
    /// ksk, zsk or csk.
    #[arg(short, long, default_value = "csk", value_parser = |s: &str| Role::parse(s).ok_or("ksk, zsk or csk"))]
    pub role: Role,
    /// The persistent parent the key was created under (tpm2_create -C).
    #[arg(long)]
    pub srk_handle: String,
    /// For RSA keys: 8 (RSASHA256, default) or 10 (RSASHA512).
    #[arg(short, long)]
    pub algorithm: Option<String>,
    /// The key has an authorisation value (tpm2_create -p).
    #[arg(long)]
    pub with_auth: bool,
    /// TCTI recorded as the key's TPM.
    #[arg(long)]
    pub tcti: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Common store options.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Configuration file: list, show DS or export the PKCS#11 keys it names instead.
    #[arg(short, long, env = "HWSIGNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Software key directory.
    #[arg(short = 'K', long, env = "HWSIGNER_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Options of `keys generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Zone the key is for.
    #[arg(short, long)]
    pub zone: String,
    /// Algorithm: 8 (RSASHA256), 10 (RSASHA512), 13 (ECDSAP256SHA256), 14 (ECDSAP384SHA384), 15 (ED25519).
    #[arg(short, long, default_value = "13")]
    pub algorithm: String,
    /// ksk, zsk or csk.
    #[arg(short, long, default_value = "csk", value_parser = |s: &str| Role::parse(s).ok_or("ksk, zsk or csk"))]
    pub role: Role,
    /// RSA modulus size in bits.
    #[arg(short, long, default_value_t = 2048)]
    pub bits: u32,
    /// Where to make the key: software (a BIND key file), pkcs11 (on a token,
    /// never extractable) or tpm (inside this machine's TPM, never extractable).
    #[arg(long, default_value = "software", value_parser = ["software", "pkcs11", "tpm"])]
    pub backend: String,
    /// TPM (with --backend tpm; default: $TPM2TOOLS_TCTI, $TCTI, device:/dev/tpmrm0).
    #[arg(long)]
    pub tcti: Option<String>,
    /// Make the TPM key under the storage key persisted at this handle (see `hwsigner tpm persist-srk`).
    #[arg(long)]
    pub srk_handle: Option<String>,
    /// Give the TPM key an authorisation value, read from this file.
    #[arg(long)]
    pub auth_file: Option<PathBuf>,
    /// Give the TPM key an authorisation value, read from this variable.
    #[arg(long)]
    pub auth_env: Option<String>,
    /// PKCS#11 module (with --backend pkcs11).
    #[arg(long, env = "HWSIGNER_PKCS11_MODULE")]
    pub module: Option<PathBuf>,
    /// Token: serial:S, label:L or slot:N (with --backend pkcs11; `hwsigner tokens list` shows them).
    #[arg(long)]
    pub token: Option<String>,
    /// CKA_LABEL of the new key (default: <zone>-<role>-<algorithm>).
    #[arg(long)]
    pub label: Option<String>,
    /// CKA_ID of the new key in hex (default: random).
    #[arg(long)]
    pub id: Option<String>,
    /// File holding the user PIN (else --pin-env, else a prompt).
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    #[arg(long)]
    pub pin_env: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Options of `keys list` and `keys export`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys of this zone.
    #[arg(short, long)]
    pub zone: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Options of `keys ds`.
#[derive(Debug, Args)]
pub struct DsArgs {
    /// The zone.
    #[arg(short, long)]
    pub zone: String,
    /// Digest types (sha256, sha384).
    #[arg(short, long, default_value = "sha256", value_delimiter = ',', value_parser = |s: &str| DigestType::parse(s).ok_or("sha256 or sha384"))]
    pub digest: Vec<DigestType>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Options of `keys import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The BIND `.private` file; the `.key` file of the same name must be beside it.
    pub private: PathBuf,
    /// Role to record (default: from the SEP flag).
    #[arg(short, long, value_parser = |s: &str| Role::parse(s).ok_or("ksk, zsk or csk"))]
    pub role: Option<Role>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(serde::Serialize)]
struct KeyOut<'a> {
    #[serde(flatten)]
    info: &'a KeyInfo,
    dnskey: String,
    ds: Vec<String>,
}

fn dnskey_line(k: &KeyInfo) -> String {
    let mut s = format!("{} IN DNSKEY ", k.zone);
    format(code::DNSKEY, &k.dnskey, &mut s);
    s
}

fn ds_lines(k: &KeyInfo, digests: &[DigestType]) -> Result<Vec<String>, CliError> {
    let wire = zone_wire(&k.zone)?;
    digests
        .iter()
        .map(|d| {
            let rd = ds_rdata(&wire, &k.dnskey, *d).map_err(|e| CliError::new(Exit::Internal, e.to_string()))?;
            let mut s = format!("{} IN DS ", k.zone);
            format(code::DS, &rd, &mut s);
            Ok(s)
        })
        .collect()
}

fn show(keys: &[KeyInfo], json: bool, digests: &[DigestType], with_dnskey: bool) -> Result<(), CliError> {
    if json {
        let out: Vec<KeyOut<'_>> = keys
            .iter()
            .map(|k| {
                Ok(KeyOut { info: k, dnskey: dnskey_line(k), ds: if k.role.signs_keys() { ds_lines(k, digests)? } else { Vec::new() } })
            })
            .collect::<Result<_, CliError>>()?;
        return print_json(&out);
    }
    for k in keys {
        if with_dnskey {
            println!("{}", dnskey_line(k));
        }
        if k.role.signs_keys() {
            for l in ds_lines(k, digests)? {
                println!("{l}");
            }
        }
    }
    Ok(())
}

/// Runs a `keys` subcommand.
pub fn run(cmd: KeysCommand) -> Result<(), CliError> {
    match cmd {
        KeysCommand::Generate(a) if a.backend == "pkcs11" => generate_pkcs11(&a),
        KeysCommand::Generate(a) if a.backend == "tpm" => generate_tpm(&a),
        KeysCommand::ImportTpm(a) => import_tpm(&a),
        KeysCommand::Generate(a) => {
            let alg = Algorithm::parse(&a.algorithm)
                .ok_or_else(|| CliError::new(Exit::Usage, format!("unknown or unsupported algorithm '{}'", a.algorithm)))?;
            let store = SoftwareStore::new(&a.store.keys);
            let info = store.generate(&zone_wire(&a.zone)?, alg, a.role, a.bits)?;
            if !a.store.json {
                eprintln!(
                    "generated {} key {} (algorithm {}, key tag {}) in {}",
                    info.role.as_str(),
                    info.id,
                    info.algorithm,
                    info.key_tag,
                    a.store.keys.display()
                );
            }
            show(std::slice::from_ref(&info), a.store.json, &[DigestType::Sha256], true)
        }
        KeysCommand::List(a) => {
            let keys = keys_of(&a.store, a.zone.as_deref())?;
            if a.store.json {
                return print_json(&keys);
            }
            if keys.is_empty() {
                eprintln!("no keys in {}", a.store.keys.display());
            }
            for k in keys {
                println!("{}\t{}\t{}\t{}\ttag {}\t{}", k.zone, k.role.as_str(), k.algorithm.mnemonic(), k.backend, k.key_tag, k.id);
            }
            Ok(())
        }
        KeysCommand::Ds(a) => {
            let keys = keys_of(&a.store, Some(&a.zone))?;
            if !keys.iter().any(|k| k.role.signs_keys()) {
                return Err(CliError::new(Exit::Key, format!("no key-signing key for {} in {}", a.zone, a.store.keys.display())));
            }
            show(&keys, a.store.json, &a.digest, false)
        }
        KeysCommand::Export(a) => {
            let keys = keys_of(&a.store, a.zone.as_deref())?;
            if a.store.json {
                return show(&keys, true, &[DigestType::Sha256], true);
            }
            for k in &keys {
                println!("{}", dnskey_line(k));
            }
            Ok(())
        }
        KeysCommand::Import(a) => {
            let key_path = a.private.with_extension("key");
            let public = hwsigner::keys::bind_format::read_public(&key_path)?;
            let (alg, private) = hwsigner::keys::bind_format::read_private(&a.private)?;
            if alg != public.algorithm {
                return Err(CliError::new(Exit::Key, format!("{}: algorithm does not match {}", a.private.display(), key_path.display())));
            }
            let role = a.role.unwrap_or(public.role);
            let store = SoftwareStore::new(&a.store.keys);
            let info = store.store(&zone_wire(&public.zone)?, alg, role, private)?;
            if info.dnskey[4..] != public.dnskey[4..] {
                return Err(CliError::new(
                    Exit::Key,
                    format!("{}: private key does not match the public key in {}", a.private.display(), key_path.display()),
                ));
            }
            if !a.store.json {
                eprintln!("imported {} as {} ({} key tag {})", a.private.display(), info.id, info.role.as_str(), info.key_tag);
            }
            show(std::slice::from_ref(&info), a.store.json, &[DigestType::Sha256], true)
        }
    }
}

/// `keys import-tpm`: a key made by tpm2_create joins the store.
#[cfg(feature = "tpm")]
fn import_tpm(a: &ImportTpmArgs) -> Result<(), CliError> {
    use hwsigner::keys::tpm;
    let tcti = tpm::tcti(a.tcti.as_deref());
    let parent = tpm::Parent::from_handle(Some(&a.srk_handle)).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let alg = a
        .algorithm
        .as_deref()
        .map(|s| Algorithm::parse(s).ok_or_else(|| CliError::new(Exit::Usage, format!("unknown algorithm '{s}'"))))
        .transpose()?;
    let zone = if a.zone.ends_with('.') { a.zone.clone() } else { format!("{}.", a.zone) };
    let (id, f) = tpm::import(&a.store.keys, &tcti, &parent, &zone, a.role, alg, &a.public, &a.private, a.with_auth)
        .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    let info = f.info(&id).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    if !a.store.json {
        eprintln!("imported TPM key {id} ({} key tag {})", info.role.as_str(), info.key_tag);
    }
    show(std::slice::from_ref(&info), a.store.json, &[DigestType::Sha256], true)
}

/// The keys of the software store, or those the configuration names.
fn keys_of(store: &StoreArgs, zone: Option<&str>) -> Result<Vec<KeyInfo>, CliError> {
    let Some(path) = &store.config else {
        let mut keys = SoftwareStore::new(&store.keys).list(zone)?;
        keys.extend(tpm_keys(&store.keys, zone)?);
        return Ok(keys);
    };
    let config = hwsigner::config::Config::load(path).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let mut out = pkcs11_keys_of(&config, path, zone)?;
    if let Some(sw) = &config.software {
        out.extend(SoftwareStore::new(&sw.dir).list(zone)?);
    }
    Ok(out)
}

/// The PKCS#11 keys the configuration names (for `zone`, or all), found on their tokens.
#[cfg(feature = "pkcs11")]
fn pkcs11_keys_of(config: &hwsigner::config::Config, path: &std::path::Path, zone: Option<&str>) -> Result<Vec<KeyInfo>, CliError> {
    let mut zones: Vec<String> = config.keys.iter().map(|k| k.zone.clone()).collect();
    zones.dedup();
    let mut out = Vec::new();
    for z in zones.iter().filter(|z| zone.is_none_or(|w| w.trim_end_matches('.').eq_ignore_ascii_case(z.trim_end_matches('.')))) {
        for r in config.pkcs11_keys(path, z).map_err(|e| CliError::new(Exit::Usage, e.to_string()))? {
            let (info, _) = hwsigner::keys::pkcs11::resolve_key(&r.spec, &super::worker_program()?, r.pool.discovery_timeout)
                .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
            if !out.iter().any(|k: &KeyInfo| k.dnskey == info.dnskey && k.zone == info.zone) {
                out.push(info);
            }
        }
    }
    Ok(out)
}

/// Without the `pkcs11` feature a configuration that names keys is an error, not an empty list.
#[cfg(not(feature = "pkcs11"))]
fn pkcs11_keys_of(config: &hwsigner::config::Config, path: &std::path::Path, _zone: Option<&str>) -> Result<Vec<KeyInfo>, CliError> {
    if config.keys.is_empty() { Ok(Vec::new()) } else { Err(super::missing_feature("pkcs11", &path.display().to_string())) }
}

/// `keys generate --backend pkcs11`: the key is made on the token and never leaves it.
#[cfg(feature = "pkcs11")]
fn generate_pkcs11(a: &GenerateArgs) -> Result<(), CliError> {
    let usage = |m: &str| CliError::new(Exit::Usage, m.to_owned());
    let module = a.module.as_ref().ok_or_else(|| usage("--backend pkcs11 needs --module"))?;
    let token = a
        .token
        .as_ref()
        .ok_or_else(|| usage("--backend pkcs11 needs --token (serial:S, label:L or slot:N; see `hwsigner tokens list`)"))?;
    let alg = Algorithm::parse(&a.algorithm).ok_or_else(|| usage(&format!("unknown or unsupported algorithm '{}'", a.algorithm)))?;
    let zone = if a.zone.ends_with('.') { a.zone.clone() } else { format!("{}.", a.zone) };
    let label = a.label.clone().unwrap_or_else(|| format!("{}-{}-{}", zone.trim_end_matches('.'), a.role.as_str(), alg.number()));
    let id = match &a.id {
        Some(h) => data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()).map_err(|_| usage(&format!("--id '{h}' is not hex")))?,
        None => {
            let mut b = [0u8; 8];
            openssl::rand::rand_bytes(&mut b).map_err(|e| CliError::new(Exit::Internal, e.to_string()))?;
            b.to_vec()
        }
    };
    let pin = hwsigner::secret::SecretSource::choose(a.pin_file.clone(), a.pin_env.clone(), "User PIN")
        .read()
        .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    let sel = hwsigner::keys::pkcs11::TokenSelector::parse(token);
    let (alg, public, token_name) = hwsigner::keys::pkcs11::token::generate(module, &sel, &pin, alg, a.bits, &label, &id)
        .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    let dnskey = hwsigner::crypto::dnskey::dnskey_rdata(a.role.flags(), alg, &public);
    let key_tag = hwsigner::crypto::dnskey::key_tag(&dnskey);
    let info =
        KeyInfo { id: format!("pkcs11:{label}"), backend: "pkcs11", zone: zone.clone(), algorithm: alg, role: a.role, dnskey, key_tag };
    if !a.store.json {
        eprintln!(
            "generated {} key '{label}' id {} on token {token_name} (algorithm {alg}, key tag {key_tag}); the private key is sensitive and not extractable",
            a.role.as_str(),
            data_encoding::HEXLOWER.encode(&id),
        );
        eprintln!(
            "add to the configuration:\n[[key]]\nzone = \"{zone}\"\nrole = \"{}\"\nstore = \"<name of the [[pkcs11]] entry>\"\nlabel = \"{label}\"\nkey_tag = {key_tag}{}",
            a.role.as_str(),
            if alg == Algorithm::RsaSha512 { "\nalgorithm = \"10\"" } else { "" }
        );
    }
    show(std::slice::from_ref(&info), a.store.json, &[DigestType::Sha256], true)
}

/// The TPM keys in a key directory.
#[cfg(feature = "tpm")]
fn tpm_keys(dir: &std::path::Path, zone: Option<&str>) -> Result<Vec<KeyInfo>, CliError> {
    let list = hwsigner::keys::tpm::list(dir, zone).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    list.iter().map(|(id, f)| f.info(id).map_err(|e| CliError::new(Exit::Key, e.to_string()))).collect()
}

/// `keys generate --backend tpm`: the key is made inside the TPM and can never leave it.
#[cfg(feature = "tpm")]
fn generate_tpm(a: &GenerateArgs) -> Result<(), CliError> {
    use hwsigner::keys::tpm;
    let alg = Algorithm::parse(&a.algorithm)
        .ok_or_else(|| CliError::new(Exit::Usage, format!("unknown or unsupported algorithm '{}'", a.algorithm)))?;
    let tcti = tpm::tcti(a.tcti.as_deref());
    let parent = tpm::Parent::from_handle(a.srk_handle.as_deref()).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let auth = if a.auth_file.is_some() || a.auth_env.is_some() {
        Some(
            hwsigner::secret::SecretSource::choose(a.auth_file.clone(), a.auth_env.clone(), "authorisation value")
                .read()
                .map_err(|e| CliError::new(Exit::Key, e.to_string()))?,
        )
    } else {
        None
    };
    let zone = if a.zone.ends_with('.') { a.zone.clone() } else { format!("{}.", a.zone) };
    let (id, f) = tpm::generate(&a.store.keys, &tcti, &parent, &zone, a.role, alg, auth.as_ref())
        .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    let info = f.info(&id).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    if !a.store.json {
        eprintln!(
            "generated {} key {id} (algorithm {}, key tag {}) inside the TPM at {tcti}; blobs in {}",
            info.role.as_str(),
            info.algorithm,
            info.key_tag,
            a.store.keys.display()
        );
        eprintln!(
            "WARNING: this key can never leave this TPM. A TPM clear, a firmware reset to factory state or a new motherboard destroys it for good, and the zone then cannot be signed until a new key is published. Keep a second key (on another TPM or device) published as a standby, or a rollover plan the parent can follow quickly."
        );
    }
    show(std::slice::from_ref(&info), a.store.json, &[DigestType::Sha256], true)
}

/// Without the `tpm` feature there are no TPM keys; key files made by a TPM build are refused, not skipped.
#[cfg(not(feature = "tpm"))]
fn tpm_keys(dir: &std::path::Path, _zone: Option<&str>) -> Result<Vec<KeyInfo>, CliError> {
    super::refuse_tpm_files(dir)?;
    Ok(Vec::new())
}

#[cfg(not(feature = "tpm"))]
fn generate_tpm(_a: &GenerateArgs) -> Result<(), CliError> {
    Err(super::missing_feature("tpm", "keys generate --backend tpm"))
}

#[cfg(not(feature = "tpm"))]
fn import_tpm(_a: &ImportTpmArgs) -> Result<(), CliError> {
    Err(super::missing_feature("tpm", "keys import-tpm"))
}

#[cfg(not(feature = "pkcs11"))]
fn generate_pkcs11(_a: &GenerateArgs) -> Result<(), CliError> {
    Err(super::missing_feature("pkcs11", "keys generate --backend pkcs11"))
}
