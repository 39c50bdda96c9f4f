//! The TOML configuration: key stores and which keys sign which zone.
//!
//! The file carries its format's version on its first line. A file without
//! one is read as version 1 (with a warning), as the files written before the
//! version existed are; any other version is refused, naming the file, rather
//! than half understood.
//!
//! ```toml
//! version = 1
//!
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
//! public_key_sha256 = "<64 hex digits>"   # the key itself; or public_key = "<base64>"
//! key_tag = 12345         # optional 16-bit guard
//! ```
//!
//! The pin (`public_key_sha256`, or the full `public_key` field in base64) is
//! what makes a PKCS#11 key the configured one: see [`crate::keys::pkcs11::pin`].

// Without the PKCS#11 store only the file format remains: the resolving code and its imports go.
#![cfg_attr(not(feature = "pkcs11"), allow(unused_imports, dead_code))]

use crate::dns::algorithm::Algorithm;
#[cfg(feature = "pkcs11")]
use crate::keys::pkcs11::pin::{self, KeyPin};
#[cfg(feature = "pkcs11")]
use crate::keys::pkcs11::{KeySelector, KeySpec, TokenSelector};
use crate::pool::PoolOptions;
use crate::secret::SecretSource;
use crate::sign::Role;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The configuration format this build reads and documents.
pub const VERSION: i64 = 1;

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
    /// A value that is wrong where it stands.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// Line of the value, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A configuration format this build does not read.
    #[error("{path}:{line}: configuration version {found} is not supported; this hwsigner reads version {VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Line of the `version` key.
        line: usize,
        /// The version given, as written.
        found: String,
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
    /// Expected key tag (a 16-bit guard; the pin is the real one).
    pub key_tag: Option<u16>,
    /// Pin: the DNSKEY public key field, base64.
    pub public_key: Option<Spanned<String>>,
    /// Pin: SHA-256 of the DNSKEY public key field, hex.
    pub public_key_sha256: Option<Spanned<String>>,
}

#[cfg(feature = "pkcs11")]
impl KeyConfig {
    /// The key's pin, if one is given.
    ///
    /// # Errors
    /// A malformed value, or both forms given: the message, with the byte
    /// range of the value in the file.
    pub fn pin(&self) -> Result<Option<KeyPin>, (Range<usize>, String)> {
        match (&self.public_key, &self.public_key_sha256) {
            (Some(_), Some(d)) => Err((d.span(), format!("give {} or {}, not both", pin::PUBLIC_KEY, pin::PUBLIC_KEY_SHA256))),
            (Some(v), None) => KeyPin::parse_public_key(v.get_ref()).map(Some).map_err(|m| (v.span(), m)),
            (None, Some(v)) => KeyPin::parse_sha256(v.get_ref()).map(Some).map_err(|m| (v.span(), m)),
            (None, None) => Ok(None),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version ([`VERSION`]); checked by [`Config::load`] before anything else.
    pub version: Option<i64>,
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
        Self::parse(path, &text)
    }

    /// Parses the text of the configuration file `path`.
    ///
    /// The version comes first: a file of another version is refused before
    /// its fields are judged by this version's rules.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() };
        let line_of = |span: Range<usize>| text.get(..span.start).map_or(1, |t| t.matches('\n').count() + 1);
        #[derive(serde::Deserialize)]
        struct Head {
            version: Option<Spanned<toml::Value>>,
        }
        let head: Head = toml::from_str(text).map_err(syntax)?;
        match head.version {
            None => tracing::warn!(
                file = %path.display(),
                "the configuration has no version; it is read as version {VERSION} (add `version = {VERSION}` as its first line)"
            ),
            Some(v) if v.get_ref().as_integer() == Some(VERSION) => {}
            Some(v) => {
                return Err(ConfigError::Version { path: path.to_path_buf(), line: line_of(v.span()), found: v.get_ref().to_string() });
            }
        }
        let config: Config = toml::from_str(text).map_err(syntax)?;
        #[cfg(feature = "pkcs11")]
        for k in &config.keys {
            k.pin().map_err(|(span, message)| ConfigError::Line { path: path.to_path_buf(), line: line_of(span), message })?;
        }
        Ok(config)
    }

    /// The PKCS#11 keys configured for `zone` (any case, trailing dot optional).
    ///
    /// # Errors
    /// A key naming an unknown store, role or algorithm.
    #[cfg(feature = "pkcs11")]
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
            let key_pin = k.pin().map_err(|(_, m)| err(m))?;
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
                    pin: key_pin,
                },
                store: store.name.clone(),
                pin,
                pool,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str =
        "[[pkcs11]]\nname = \"hsm\"\nmodule = \"/m.so\"\n\n[[key]]\nzone = \"example.\"\nrole = \"csk\"\nstore = \"hsm\"\nlabel = \"k\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/hwsigner.toml"), text)
    }

    #[test]
    fn version_one_or_none_is_read_and_others_are_refused_naming_the_file() {
        assert_eq!(parse(&format!("version = 1\n{STORE}")).expect("version 1").version, Some(1));
        assert_eq!(parse(STORE).expect("no version").version, None);
        for (v, shown) in [("2", "2"), ("0", "0"), ("\"1\"", "\"1\""), ("1.0", "1.0")] {
            let e = parse(&format!("# comment\nversion = {v}\n{STORE}")).expect_err(v).to_string();
            assert_eq!(e, format!("/etc/hwsigner.toml:2: configuration version {shown} is not supported; this hwsigner reads version 1"));
        }
        // A version-2 file is refused for its version, not for a field version 1 lacks.
        let e = parse(&format!("version = 2\nnew_field = true\n{STORE}")).expect_err("v2").to_string();
        assert!(e.contains("version 2 is not supported"), "{e}");
    }

    #[test]
    fn pins_reach_the_key_spec() {
        let field: Vec<u8> = (1u8..=64).collect();
        let b64 = data_encoding::BASE64.encode(&field);
        let path = Path::new("/etc/hwsigner.toml");
        for line in [format!("public_key = \"{b64}\""), pin::config_line(&field)] {
            let config = parse(&format!("version = 1\n{STORE}{line}\n")).expect(&line);
            let keys = config.pkcs11_keys(path, "example").expect("resolved");
            let pin = keys[0].spec.pin.as_ref().expect("pinned");
            assert!(pin.matches(&field) && !pin.matches(&field[1..]), "{line}");
        }
        let config = parse(STORE).expect("unpinned");
        assert!(config.pkcs11_keys(path, "example.").expect("resolved")[0].spec.pin.is_none());
    }

    #[test]
    fn a_malformed_pin_is_refused_naming_its_line() {
        let cases = [
            ("public_key_sha256 = \"abcd\"", "public_key_sha256 must be 64 hex digits"),
            ("public_key_sha256 = \"{}\"", "public_key_sha256 must be 64 hex digits"),
            ("public_key = \"not base64!\"", "public_key must be the base64 public key field"),
            ("public_key = \"AAAA\"\npublic_key_sha256 = \"{}\"", "give public_key or public_key_sha256, not both"),
        ];
        let digest = "0".repeat(64);
        for (n, (line, message)) in cases.iter().enumerate() {
            let line = line.replace("{}", if n == 1 { "zz" } else { &digest });
            let e = parse(&format!("version = 1\n{STORE}{line}\n")).expect_err(&line).to_string();
            let at = STORE.lines().count() + 2 + line.lines().count() - 1;
            assert!(e.starts_with(&format!("/etc/hwsigner.toml:{at}: {message}")), "{line}: {e}");
        }
        let e = parse(&format!("{STORE}public_key_sha256 = 5\n")).expect_err("not a string").to_string();
        assert!(e.contains("/etc/hwsigner.toml") && e.contains("line 10"), "{e}");
    }
}
