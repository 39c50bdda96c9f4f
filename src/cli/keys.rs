//! `hwsigner keys`: generate, list, show DS, export DNSKEY, import BIND keys.

use super::output::print_json;
use super::{CliError, Exit, zone_wire};
use clap::{Args, Subcommand};
use hwsigner::crypto::dnskey::{DigestType, ds_rdata};
use hwsigner::dns::rdata::format;
use hwsigner::dns::rtype::code;
use hwsigner::keys::algorithm::Algorithm;
use hwsigner::keys::software::SoftwareStore;
use hwsigner::keys::{KeyInfo, Role};
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
}

/// Common store options.
#[derive(Debug, Args)]
pub struct StoreArgs {
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
            let keys = SoftwareStore::new(&a.store.keys).list(a.zone.as_deref())?;
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
            let keys = SoftwareStore::new(&a.store.keys).list(Some(&a.zone))?;
            if !keys.iter().any(|k| k.role.signs_keys()) {
                return Err(CliError::new(Exit::Key, format!("no key-signing key for {} in {}", a.zone, a.store.keys.display())));
            }
            show(&keys, a.store.json, &a.digest, false)
        }
        KeysCommand::Export(a) => {
            let keys = SoftwareStore::new(&a.store.keys).list(a.zone.as_deref())?;
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
