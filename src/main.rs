//! `hwsigner`: DNSSEC signing with keys that stay in hardware.

#![forbid(unsafe_code)]

mod cli;

use clap::{CommandFactory, Parser, Subcommand};
use cli::{CliError, Exit};

/// DNSSEC zone signer whose private keys stay in hardware (SmartCard-HSM,
/// PKCS#11 HSMs, TPM 2.0) or, by default, in a local software key store.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, after_help = "Exit status: 0 ok, 2 usage or configuration, 3 bad zone input, 4 key problem, 5 signing failed, 6 output not written; verify: 10 bad signatures, 11 broken chain, 12 signatures expiring within the window.")]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a zone file: zone file in, signed zone file out (written atomically; nothing on failure).
    Sign(Box<cli::sign::SignArgs>),
    /// Manage keys in the software key store.
    #[command(subcommand)]
    Keys(Box<cli::keys::KeysCommand>),
    /// Check a signed zone: signatures, NSEC/NSEC3 chain, expiry window.
    Verify(cli::verify::VerifyArgs),
    /// SmartCard-HSM key ceremonies: cards, DKEK shares, keys on cards, clones, scripts and transcripts.
    #[cfg(feature = "smartcard")]
    #[command(subcommand)]
    Ceremony(cli::ceremony::CeremonyCommand),
    /// TPM 2.0: what the TPM is, and persisting the storage key for tpm2-tools.
    #[cfg(feature = "tpm")]
    #[command(subcommand)]
    Tpm(cli::tpm::TpmCommand),
    /// PKCS#11 tokens: list slots, tokens, mechanisms and keys.
    #[cfg(feature = "pkcs11")]
    #[command(subcommand)]
    Tokens(cli::tokens::TokensCommand),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page on standard output (roff), or write one page per command with --dir.
    Man(cli::completions::ManArgs),
    /// Measure the zone's keys (signatures per second and latency per device, through the signing pool) and estimate a zone's signing time.
    Bench(Box<cli::bench::BenchArgs>),
    /// Internal: a device worker started by the signing pool (talks on its pipes).
    #[command(hide = true)]
    Worker {
        /// The backend: pkcs11.
        backend: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // cryptoki logs every vendor mechanism it does not know as an error, and
    // tss-esapi logs the TPM errors we report ourselves: noise for operators.
    let default = || tracing_subscriber::EnvFilter::new(format!("{level},cryptoki=off,tss_esapi=off"));
    // An unset RUST_LOG means the default; a malformed one is said, not silently replaced.
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("hwsigner: RUST_LOG is not a log filter ({e}); using the default");
            default()
        }),
        _ => default(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(cli::output::colour_on_stderr())
        .with_target(false)
        .init();
    let result: Result<(), CliError> = match cli.command {
        Command::Sign(a) => cli::sign::run(*a),
        Command::Keys(c) => cli::keys::run(*c),
        Command::Verify(a) => cli::verify::run(a),
        #[cfg(feature = "pkcs11")]
        Command::Tokens(c) => cli::tokens::run(c),
        #[cfg(feature = "tpm")]
        Command::Tpm(c) => cli::tpm::run(c),
        #[cfg(feature = "smartcard")]
        Command::Ceremony(c) => cli::ceremony::run(c),
        Command::Completions { shell } => cli::completions::completions(Cli::command(), shell),
        Command::Man(a) => cli::completions::man(Cli::command(), a),
        Command::Bench(a) => cli::bench::run(*a),
        Command::Worker { backend } => match backend.as_str() {
            #[cfg(feature = "pkcs11")]
            "pkcs11-probe" => {
                hwsigner::keys::pkcs11::probe::probe_main().map_err(|e| CliError::new(Exit::Internal, format!("worker: {e}")))
            }
            #[cfg(feature = "pkcs11")]
            "pkcs11" => hwsigner::keys::pkcs11::worker_main().map_err(|e| CliError::new(Exit::Internal, format!("worker: {e}"))),
            #[cfg(feature = "tpm")]
            "tpm" => hwsigner::keys::tpm::worker_main().map_err(|e| CliError::new(Exit::Internal, format!("worker: {e}"))),
            other => Err(CliError::new(Exit::Usage, format!("unknown worker backend '{other}'"))),
        },
    };
    let status = match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("hwsigner: {}", e.message);
            e.exit
        }
    };
    std::process::exit(status as i32);
}
