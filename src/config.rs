//! The TOML configuration: key stores and which keys sign which zone.
//!
//! ```toml
//! [software]
//! dir = "/var/lib/hwsigner/keys"
//!
//! [[pkcs11]]
//! name = "cards"
//! module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
//! tokens = ["serial:DENK0100001", "serial:DENK0100002"]  # default: every token holding the key
//! pin_file = "/etc/hwsigner/cards.pin"                   # or pin_env = "HWSIGNER_PIN"; else a prompt
//! watchdog = "10s"
//!
//! [tpm]                     # for TPM keys in the [software] directory
//! tcti = "device:/dev/tpmrm0"
//!
//! [[key]]
//! zone = "example."
//! role = "ksk"
//! store = "cards"
//! label = "example-ksk"   # or id = "01"
//! key_tag = 12345         # optional guard
//! ```

// Without the PKCS#11 store only the file format remains: the resolving code and its imports go.
#![cfg_attr(not(feature = "pkcs11"), allow(unused_imports, dead_code))]

use crate::dns::algorithm::Algorithm;
#[cfg(feature = "pkcs11")]
use crate::keys::pkcs11::{KeySelector, KeySpec, TokenSelector};
use crate::pool::PoolOptions;
use crate::secret::SecretSource;
use crate::sign::Role;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration is unusable; names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown or mistyped field.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A semantic problem in one entry.
    #[error("{path}: {entry}: {message}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// Which entry.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

/// The software key store.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareConfig {
    /// Key directory.
    pub dir: PathBuf,
}

/// A PKCS#11 module and the tokens in it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Name the `[[key]]` entries refer to.
    pub name: String,
    /// Path of the module.
    pub module: PathBuf,
    /// Token selectors (`serial:`, `label:`, `slot:`); empty for every token holding the key.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// File holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// Watchdog beyond a request's expected time (e.g. "10s").
    pub watchdog: Option<String>,
    /// How long a worker may take to open its token and log in.
    pub start_timeout: Option<String>,
    /// How long discovery may take to list the tokens and keys.
    pub discovery_timeout: Option<String>,
    /// Fail when nothing was signed for this long.
    pub stall_timeout: Option<String>,
    /// Longest wait between probes of a failed token.
    pub max_backoff: Option<String>,
}

/// The TPM holding the TPM keys of the key directory.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmConfig {
    /// TCTI, e.g. `device:/dev/tpmrm0`, `tabrmd:`, `swtpm:host=127.0.0.1,port=2321`.
    pub tcti: Option<String>,
    /// File holding the keys' authorisation value.
    pub auth_file: Option<PathBuf>,
    /// Environment variable holding the keys' authorisation value.
    pub auth_env: Option<String>,
}

/// A key and what it signs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Zone, e.g. `example.`.
    pub zone: String,
    /// `ksk`, `zsk` or `csk`.
    pub role: String,
    /// Name of a `[[pkcs11]]` entry.
    pub store: String,
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID` in hex.
    pub id: Option<String>,
    /// DNSSEC algorithm (needed only to choose 10 over 8 for RSA keys).
    pub algorithm: Option<String>,
    /// Expected key tag.
    pub key_tag: Option<u16>,
}

/// The whole file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The software store, if used.
    pub software: Option<SoftwareConfig>,
    /// PKCS#11 modules.
    #[serde(default)]
    pub pkcs11: Vec<Pkcs11Config>,
    /// The TPM (for TPM keys in the software key directory).
    pub tpm: Option<TpmConfig>,
    /// Keys.
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyConfig>,
}

/// A key resolved against its store.
#[cfg(feature = "pkcs11")]
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    /// Where and which key.
    pub spec: KeySpec,
    /// The store's name.
    pub store: String,
    /// Where the store's PIN comes from.
    pub pin: SecretSource,
    /// How the pool drives the tokens.
    pub pool: PoolOptions,
}

fn duration(path: &Path, entry: &str, v: Option<&String>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => match s.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
            Some(ms) => Ok(Duration::from_millis(ms)),
            None => crate::dns::text::parse_period(s.as_bytes()).map(|n| Duration::from_secs(n.into())).ok_or_else(|| ConfigError::Entry {
                path: path.to_path_buf(),
                entry: entry.to_owned(),
                message: format!("'{s}' is not a duration (e.g. 500ms, 10s, 2m)"),
            }),
        },
    }
}

impl Config {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() })
    }

    /// The PKCS#11 keys configured for `zone` (any case, trailing dot optional).
    #[cfg(feature = "pkcs11")]
    ///
    /// # Errors
    /// A key naming an unknown store, role or algorithm.
    pub fn pkcs11_keys(&self, path: &Path, zone: &str) -> Result<Vec<ResolvedKey>, ConfigError> {
        let norm = |z: &str| z.trim_end_matches('.').to_ascii_lowercase();
        let mut out = Vec::new();
        for (n, k) in self.keys.iter().enumerate().filter(|(_, k)| norm(&k.zone) == norm(zone)) {
            let entry = format!("key #{} ({} {})", n + 1, k.zone, k.role);
            let err = |message: String| ConfigError::Entry { path: path.to_path_buf(), entry: entry.clone(), message };
            let role = Role::parse(&k.role).ok_or_else(|| err(format!("role '{}' is not ksk, zsk or csk", k.role)))?;
            let algorithm = match &k.algorithm {
                Some(a) => Some(Algorithm::parse(a).ok_or_else(|| err(format!("unknown algorithm '{a}'")))?),
                None => None,
            };
            if k.label.is_none() && k.id.is_none() {
                return Err(err("give the key's label or id".into()));
            }
            let store = self.pkcs11.iter().find(|s| s.name == k.store).ok_or_else(|| {
                err(format!(
                    "no [[pkcs11]] store named '{}' (stores: {})",
                    k.store,
                    self.pkcs11.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let sentry = format!("pkcs11 '{}'", store.name);
            let defaults = PoolOptions::default();
            let pool = PoolOptions {
                watchdog: duration(path, &sentry, store.watchdog.as_ref(), defaults.watchdog)?,
                start_timeout: duration(path, &sentry, store.start_timeout.as_ref(), defaults.start_timeout)?,
                discovery_timeout: duration(path, &sentry, store.discovery_timeout.as_ref(), defaults.discovery_timeout)?,
                stall_timeout: duration(path, &sentry, store.stall_timeout.as_ref(), defaults.stall_timeout)?,
                max_backoff: duration(path, &sentry, store.max_backoff.as_ref(), defaults.max_backoff)?,
                ..defaults
            };
            let pin = SecretSource::choose(
                store.pin_file.clone(),
                store.pin_env.clone(),
                &format!("User PIN for PKCS#11 store '{}'", store.name),
            );
            out.push(ResolvedKey {
                spec: KeySpec {
                    module: store.module.clone(),
                    tokens: store.tokens.iter().map(|t| TokenSelector::parse(t)).collect(),
                    key: KeySelector { label: k.label.clone(), id: k.id.clone() },
                    zone: if k.zone.ends_with('.') { k.zone.clone() } else { format!("{}.", k.zone) },
                    role,
                    algorithm,
                    key_tag: k.key_tag,
                },
                store: store.name.clone(),
                pin,
                pool,
            });
        }
        Ok(out)
    }
}
