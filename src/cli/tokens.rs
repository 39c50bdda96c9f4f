//! `hwsigner tokens list`: every slot and token of a PKCS#11 module, with its
//! keys, which other tokens hold the same key, and the line that pins each key
//! in the configuration (`public_key_sha256`; `--json` also gives the full
//! `public_key`), so that no one has to guess token labels again.

use super::output::print_json;
use super::{CliError, Exit};
use clap::{Args, Subcommand};
use hwsigner::keys::pkcs11::token::TokenDesc;
use hwsigner::keys::pkcs11::{pin, probe};
use hwsigner::secret::SecretSource;
use std::path::PathBuf;

/// `hwsigner tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List slots, tokens (label, serial, model, free memory, mechanisms) and keys.
    List(ListArgs),
}

/// Options of `tokens list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so or /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so.
    #[arg(short, long, env = "HWSIGNER_PKCS11_MODULE")]
    pub module: PathBuf,
    /// Log in to see private keys too (the PIN is read from --pin-file, --pin-env or a prompt).
    #[arg(long)]
    pub login: bool,
    /// File holding the user PIN.
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    #[arg(long)]
    pub pin_env: Option<String>,
    /// Seconds the module may take to list the tokens before it is declared
    /// hung (a stuck pcscd never answers; the listing runs in a child process
    /// that is then killed).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `tokens` subcommand.
pub fn run(cmd: TokensCommand) -> Result<(), CliError> {
    let TokensCommand::List(a) = cmd;
    let pin = if a.login || a.pin_file.is_some() || a.pin_env.is_some() {
        Some(
            SecretSource::choose(a.pin_file.clone(), a.pin_env.clone(), "User PIN")
                .read()
                .map_err(|e| CliError::new(Exit::Key, e.to_string()))?,
        )
    } else {
        None
    };
    let tokens = probe::list_tokens(&super::worker_program()?, &a.module, pin.as_ref(), std::time::Duration::from_secs(a.timeout))
        .map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    if a.json {
        return print_json(&tokens);
    }
    if tokens.is_empty() {
        eprintln!("no tokens in {}", a.module.display());
    }
    for t in &tokens {
        println!("slot {}: token '{}' serial {} ({} {})", t.slot, t.label, t.serial, t.manufacturer, t.model);
        let mem = |m: Option<usize>| m.map_or("unknown".to_owned(), |b| format!("{} KiB", b / 1024));
        println!("  free memory: public {}, private {}; user PIN {}", mem(t.free_public), mem(t.free_private), t.pin_state);
        println!("  mechanisms: {}", if t.mechanisms.is_empty() { "none for DNSSEC".to_owned() } else { t.mechanisms.join(" ") });
        if t.keys.is_empty() {
            println!("  keys: none visible{}", if a.login { "" } else { " (without login)" });
        }
        for k in &t.keys {
            let others: Vec<String> = tokens
                .iter()
                .filter(|o| o.slot != t.slot && o.keys.iter().any(|ok| !k.public_key.is_empty() && ok.public_key == k.public_key))
                .map(TokenDesc::name)
                .collect();
            let tags = match (k.key_tag_ksk, k.key_tag_zsk) {
                (Some(ksk), Some(zsk)) => format!("key tag {ksk} as KSK/CSK, {zsk} as ZSK"),
                _ => "no DNSKEY".to_owned(),
            };
            println!(
                "  key label '{}' id {}: {} algorithm {}, {}{}{}{}",
                k.label,
                if k.id.is_empty() { "-" } else { &k.id },
                k.kind,
                k.algorithm.map_or("-".to_owned(), |n| n.to_string()),
                tags,
                if k.private { ", private key present" } else { "" },
                if others.is_empty() { String::new() } else { format!("; same key on {}", others.join(", ")) },
                // The line that pins this key in its [[key]] entry.
                if k.public_key.is_empty() { String::new() } else { format!("\n    pin: {}", pin::config_line(&k.public_key)) }
            );
        }
    }
    Ok(())
}
