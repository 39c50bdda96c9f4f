//! `hwsigner tpm`: what the TPM is (manufacturer, firmware, algorithms, free
//! persistent handles, dictionary-attack state), and persisting hwsigner's
//! storage key at a handle so tpm2-tools can use the same parent.

use super::output::print_json;
use super::{CliError, Exit};
use clap::{Args, Subcommand};
use hwsigner::keys::tpm;

/// `hwsigner tpm` subcommands.
#[derive(Debug, Subcommand)]
pub enum TpmCommand {
    /// Manufacturer, firmware, algorithms, free persistent handles, lockout state.
    Info(InfoArgs),
    /// Persist hwsigner's storage primary key at a handle (e.g. 0x81000001).
    PersistSrk(PersistArgs),
}

/// Options of `tpm info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// TCTI (default: $TPM2TOOLS_TCTI, $TCTI, device:/dev/tpmrm0).
    #[arg(long)]
    tcti: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Options of `tpm persist-srk`.
#[derive(Debug, Args)]
pub struct PersistArgs {
    /// TCTI.
    #[arg(long)]
    tcti: Option<String>,
    /// Persistent handle.
    #[arg(long, default_value = "0x81000001")]
    handle: String,
}

/// Runs a `tpm` subcommand.
pub fn run(cmd: TpmCommand) -> Result<(), CliError> {
    match cmd {
        TpmCommand::Info(a) => {
            let i = tpm::device::info(&tpm::tcti(a.tcti.as_deref())).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
            if a.json {
                return print_json(&i);
            }
            println!("TPM at {}: manufacturer {} ({}), firmware {}", i.tcti, i.manufacturer, i.vendor, i.firmware);
            println!("  free persistent handles: {}", i.persistent_free.map_or("unknown".into(), |n| n.to_string()));
            let (count, max, interval) = i.lockout;
            println!(
                "  dictionary attack: {} failures counted of {} allowed; one forgiven every {} s",
                count.map_or("?".into(), |n| n.to_string()),
                max.map_or("?".into(), |n| n.to_string()),
                interval.map_or("?".into(), |n| n.to_string())
            );
            let algs: Vec<String> = i.algorithms.iter().map(|(n, ok)| format!("{n} {}", if *ok { "yes" } else { "NO" })).collect();
            println!("  algorithms: {}", algs.join(", "));
            Ok(())
        }
        TpmCommand::PersistSrk(a) => {
            let tcti = tpm::tcti(a.tcti.as_deref());
            let parent = tpm::Parent::from_handle(Some(&a.handle)).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
            let tpm::Parent::Persistent(h) = parent else { return Err(CliError::new(Exit::Usage, "a persistent handle is needed")) };
            tpm::device::persist_srk(&tcti, h).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
            eprintln!(
                "storage key persisted at {:#010x} on {tcti}; keys made with --srk-handle {:#010x} can be used by tpm2_load -C {:#010x}",
                h, h, h
            );
            Ok(())
        }
    }
}
