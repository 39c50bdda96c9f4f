//! The `hwsigner` command line. Each subcommand lives in its own module; this
//! one holds what they share: exit codes, durations, zone loading, output.

pub mod bench;
#[cfg(feature = "smartcard")]
pub mod ceremony;
pub mod completions;
pub mod device_keys;
pub mod keys;
pub mod output;
pub mod sign;
#[cfg(feature = "pkcs11")]
pub mod tokens;
#[cfg(feature = "tpm")]
pub mod tpm;
pub mod verify;

use std::path::Path;

/// Exit statuses, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Unexpected internal error.
    Internal = 1,
    /// Bad command-line usage (clap's own status).
    Usage = 2,
    /// The zone input is malformed or fails the zone checks.
    Zone = 3,
    /// A key is missing, unreadable or does not match.
    Key = 4,
    /// Signing failed (a signature did not verify, a device failed).
    Sign = 5,
    /// The output could not be written.
    Output = 6,
    /// `verify`: a signature is invalid or missing.
    BadSignatures = 10,
    /// `verify`: the NSEC/NSEC3 chain is incomplete or wrong.
    BadChain = 11,
    /// `verify`: signatures expire within the window.
    Expiring = 12,
}

/// An error on its way to the operator: message and exit status.
#[derive(Debug)]
pub struct CliError {
    /// The exit status.
    pub exit: Exit,
    /// The message (already names the file, line, zone or key).
    pub message: String,
}

impl CliError {
    /// A new error.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, message: message.into() }
    }
}

impl From<hwsigner::zone::ZoneError> for CliError {
    fn from(e: hwsigner::zone::ZoneError) -> Self {
        CliError::new(Exit::Zone, e.to_string())
    }
}

impl From<hwsigner::sign::KeyError> for CliError {
    fn from(e: hwsigner::sign::KeyError) -> Self {
        CliError::new(Exit::Key, e.to_string())
    }
}

/// Parses a duration: seconds or `1w2d3h4m5s`.
pub fn parse_duration(s: &str) -> Result<u32, String> {
    hwsigner::dns::text::parse_period(s.as_bytes()).ok_or_else(|| format!("'{s}' is not a duration (e.g. 3600, 12h, 14d)"))
}

/// Parses a point in time: `YYYYMMDDHHmmSS` or seconds since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    hwsigner::dns::text::parse_time(s.as_bytes())
        .map(u64::from)
        .ok_or_else(|| format!("'{s}' is not a time (YYYYMMDDHHmmSS or seconds since 1970)"))
}

/// This program's path, for the worker and discovery processes it starts.
///
/// # Errors
/// The path cannot be found (a deleted binary).
#[cfg(any(feature = "pkcs11", feature = "tpm"))]
pub fn worker_program() -> Result<std::path::PathBuf, CliError> {
    std::env::current_exe().map_err(|e| CliError::new(Exit::Internal, format!("cannot find this program's path for the workers: {e}")))
}

/// Seconds since the epoch now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Zone name in wire form from the command line.
pub fn zone_wire(zone: &str) -> Result<Vec<u8>, CliError> {
    let text = if zone.ends_with('.') { zone.to_owned() } else { format!("{zone}.") };
    hwsigner::dns::name::parse_name(text.as_bytes(), None).map_err(|e| CliError::new(Exit::Usage, format!("bad zone name '{zone}': {e}")))
}

/// Reads and checks a zone file.
pub fn load_zone(path: &Path, zone: &str, opts: &hwsigner::zone::BuildOptions) -> Result<hwsigner::zone::Built, CliError> {
    let wire = zone_wire(zone)?;
    let t = std::time::Instant::now();
    let read = hwsigner::zone::reader::read_file(path, &wire)?;
    tracing::debug!(records = read.records.len(), elapsed = ?t.elapsed(), peak_rss_kb = hwsigner::peak_rss_kb(), "zone read");
    let key = hwsigner::dns::name::key_from_wire(&wire);
    let built = hwsigner::zone::build(read, &key, opts)?;
    tracing::debug!(nodes = built.zone.nodes.len(), elapsed = ?t.elapsed(), peak_rss_kb = hwsigner::peak_rss_kb(), "zone built");
    Ok(built)
}

/// The error for something this build was made without (a cargo feature left out).
#[cfg(not(all(feature = "pkcs11", feature = "tpm")))]
pub fn missing_feature(feature: &str, what: &str) -> CliError {
    CliError::new(Exit::Usage, format!("{what}: this hwsigner was built without the '{feature}' feature"))
}

/// Refuses a key directory holding TPM key files in a build without the TPM
/// store: skipping them would sign with whatever else is there.
#[cfg(not(feature = "tpm"))]
pub fn refuse_tpm_files(dir: &Path) -> Result<(), CliError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        if e.path().extension().is_some_and(|x| x == "tpm") {
            return Err(missing_feature("tpm", &e.path().display().to_string()));
        }
    }
    Ok(())
}
