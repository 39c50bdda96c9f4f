//! Opening a zone's device keys for the commands that sign with them (`sign`,
//! `bench`): one signing pool per PKCS#11 key the configuration names, one TPM
//! worker for the TPM key files in the key directory. Both commands open keys
//! this one way, so what `bench` measures is what `sign` will use.

use super::CliError;
#[cfg(any(feature = "pkcs11", feature = "tpm"))]
use super::Exit;
use hwsigner::config::{Config, TpmConfig};
use hwsigner::pool::{PoolKey, PoolOptions};
use std::path::{Path, PathBuf};

/// Where a TPM key's authorisation value and the TPM itself come from, as
/// given on the command line (the configuration's `[tpm]` fills the gaps).
// A build without the TPM store still parses the options, to refuse them clearly.
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
#[derive(Debug, Clone, Default)]
pub struct TpmArgs {
    /// `--tcti`.
    pub tcti: Option<String>,
    /// `--tpm-auth-file`.
    pub auth_file: Option<PathBuf>,
    /// `--tpm-auth-env`.
    pub auth_env: Option<String>,
}

/// Starts a signing pool for every PKCS#11 key the configuration names for
/// `zone`; each store's PIN is read once, however many keys it holds.
///
/// # Errors
/// A configuration entry that does not resolve (exit 2), a PIN that cannot be
/// read or a key that cannot be opened on its tokens (exit 4).
#[cfg(feature = "pkcs11")]
pub fn pkcs11_pools(zone: &str, config: Option<(&Path, &Config)>) -> Result<Vec<PoolKey>, CliError> {
    let Some((path, config)) = config else { return Ok(Vec::new()) };
    let resolved = config.pkcs11_keys(path, zone).map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let worker = super::worker_program()?;
    let mut pins: Vec<(String, hwsigner::secret::Secret)> = Vec::new();
    let mut pools = Vec::new();
    for r in resolved {
        let pin = match pins.iter().find(|(s, _)| *s == r.store) {
            Some((_, p)) => p.clone(),
            None => {
                let p = r.pin.read().map_err(|e| CliError::new(Exit::Key, format!("store '{}': {e}", r.store)))?;
                pins.push((r.store.clone(), p.clone()));
                p
            }
        };
        let pool = hwsigner::keys::pkcs11::pool_for_key(&r.spec, &pin, &worker, r.pool.clone())
            .map_err(|e| CliError::new(Exit::Key, format!("zone {zone} {} key: {e}", r.spec.role.as_str())))?;
        pools.push(pool);
    }
    Ok(pools)
}

/// Without the `pkcs11` feature a configuration naming keys is refused, not ignored.
///
/// # Errors
/// The configuration names keys (exit 2).
#[cfg(not(feature = "pkcs11"))]
pub fn pkcs11_pools(_zone: &str, config: Option<(&Path, &Config)>) -> Result<Vec<PoolKey>, CliError> {
    match config {
        Some((path, c)) if !c.keys.is_empty() => Err(super::missing_feature("pkcs11", &path.display().to_string())),
        _ => Ok(Vec::new()),
    }
}

/// Starts the signing worker for the TPM keys of `zone` in the key directory
/// (none: no worker); the authorisation value is read only when a key needs one.
///
/// # Errors
/// Unreadable key files, an authorisation value that cannot be read, or a TPM
/// that does not start (exit 4).
#[cfg(feature = "tpm")]
pub fn tpm_pools(zone: &str, dir: &Path, args: &TpmArgs, conf: Option<&TpmConfig>, opts: PoolOptions) -> Result<Vec<PoolKey>, CliError> {
    use hwsigner::keys::tpm;
    let keys = tpm::list(dir, Some(zone)).map_err(|e| CliError::new(Exit::Key, e.to_string()))?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let tcti = tpm::tcti(args.tcti.as_deref().or(conf.and_then(|c| c.tcti.as_deref())));
    let auth = if keys.iter().any(|(_, f)| f.auth) {
        let file = args.auth_file.clone().or_else(|| conf.and_then(|c| c.auth_file.clone()));
        let env = args.auth_env.clone().or_else(|| conf.and_then(|c| c.auth_env.clone()));
        let src = hwsigner::secret::SecretSource::choose(file, env, "TPM key authorisation value");
        Some(src.read().map_err(|e| CliError::new(Exit::Key, e.to_string()))?)
    } else {
        None
    };
    let worker = super::worker_program()?;
    tpm::pool_for_keys(&tcti, &keys, auth.as_ref(), &worker, opts).map_err(|e| CliError::new(Exit::Key, format!("zone {zone}: {e}")))
}

/// Without the `tpm` feature, TPM key files in the key directory are refused, not skipped.
///
/// # Errors
/// The directory holds TPM key files (exit 2).
#[cfg(not(feature = "tpm"))]
pub fn tpm_pools(
    _zone: &str,
    dir: &Path,
    _args: &TpmArgs,
    _conf: Option<&TpmConfig>,
    _opts: PoolOptions,
) -> Result<Vec<PoolKey>, CliError> {
    super::refuse_tpm_files(dir)?;
    Ok(Vec::new())
}
