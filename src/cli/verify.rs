//! `hwsigner verify`: checks a signed zone; the exit status says what is wrong.

use super::output::print_json;
use super::{CliError, Exit, load_zone, parse_duration, parse_time};
use clap::Args;
use hwsigner::zone::BuildOptions;
use std::path::PathBuf;

/// Options of `hwsigner verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Signed zone file.
    pub input: PathBuf,
    /// Zone name.
    #[arg(short, long)]
    pub zone: String,
    /// Fail (exit 12) if any signature expires within this time.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub expire_within: u32,
    /// Check as if the time were this (YYYYMMDDHHmmSS or epoch seconds).
    #[arg(long, value_parser = parse_time)]
    pub now: Option<u64>,
    /// Keep data below a DNAME as occluded instead of refusing the zone.
    #[arg(long)]
    pub allow_occluded: bool,
    /// JSON report on standard output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hwsigner verify`.
pub fn run(a: VerifyArgs) -> Result<(), CliError> {
    let built = load_zone(&a.input, &a.zone, &BuildOptions { allow_occluded: a.allow_occluded, keep_dnssec: true })?;
    let now = a.now.unwrap_or_else(super::now) as u32;
    let rep = hwsigner::verify::verify_zone(&built.zone, now, a.expire_within);
    if a.json {
        print_json(&rep)?;
    } else {
        for e in rep.signature_errors.iter().chain(&rep.chain_errors) {
            eprintln!("{}: {e}", a.zone);
        }
        for e in &rep.expiring {
            eprintln!("{}: {e}", a.zone);
        }
        if rep.ok() {
            eprintln!(
                "{}: {} signatures valid, {} chain complete{}",
                a.zone,
                rep.signatures,
                rep.chain.to_uppercase(),
                rep.earliest_expiration
                    .map(|e| format!(", earliest expiration {}", hwsigner::dns::text::format_time(e)))
                    .unwrap_or_default()
            );
        }
    }
    if !rep.signature_errors.is_empty() {
        return Err(CliError::new(Exit::BadSignatures, format!("{}: {} signature problems", a.zone, rep.signature_errors.len())));
    }
    if !rep.chain_errors.is_empty() {
        return Err(CliError::new(Exit::BadChain, format!("{}: {} chain problems", a.zone, rep.chain_errors.len())));
    }
    if !rep.expiring.is_empty() {
        return Err(CliError::new(Exit::Expiring, format!("{}: {} signatures expire within the window", a.zone, rep.expiring.len())));
    }
    Ok(())
}
