//! PKCS#11 key store: SmartCard-HSM through OpenSC, AEP Keyper, YubiHSM 2,
//! network HSMs, SoftHSM2 — any module loaded by path.
//!
//! Tokens are best chosen by serial: every SmartCard-HSM reports the same
//! label, OpenSC appends " (UserPIN)" to it and AEP Keyper truncates labels to
//! seven characters. Keys are found by `CKA_LABEL` or `CKA_ID` and then matched
//! across tokens by their public key, never by label alone; the configuration
//! should pin that public key ([`pin`]), so that a key put on a token under
//! the same label is refused instead of signed with.
//!
//! The module is never loaded in the signer's own process: [`pool_for_key`]
//! finds the tokens that hold a key through a discovery child ([`probe`]) and
//! starts a [`crate::pool::Pool`] worker per token; each worker runs
//! [`worker_main`].

pub mod device;
pub mod opensc;
pub mod pin;
pub mod probe;
pub mod token;

use crate::crypto::dnskey::{dnskey_rdata, key_tag};
use crate::dns::algorithm::Algorithm;
use crate::pool::{MemberSpec, Pool, PoolError, PoolKey, PoolOptions};
use crate::secret::Secret;
use crate::sign::{KeyInfo, Role};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// Which token(s) to use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenSelector {
    /// The token with this serial number (preferred).
    Serial(String),
    /// Tokens with this label (OpenSC's " (UserPIN)" suffix is ignored).
    Label(String),
    /// The token in this slot (slot numbers can change when readers come and go).
    Slot(u64),
}

impl TokenSelector {
    /// Parses `serial:S`, `label:L` or `slot:N`; a bare word is a serial.
    pub fn parse(s: &str) -> Self {
        if let Some(v) = s.strip_prefix("serial:") {
            TokenSelector::Serial(v.to_owned())
        } else if let Some(v) = s.strip_prefix("label:") {
            TokenSelector::Label(v.to_owned())
        } else if let Some(n) = s.strip_prefix("slot:").and_then(|v| v.parse().ok()) {
            TokenSelector::Slot(n)
        } else {
            TokenSelector::Serial(s.to_owned())
        }
    }

    /// True when the token matches.
    pub fn matches(&self, slot: u64, label: &str, serial: &str) -> bool {
        match self {
            TokenSelector::Serial(s) => serial.trim() == s.trim(),
            TokenSelector::Label(l) => {
                let label = label.trim();
                label == l.trim() || label.strip_suffix(" (UserPIN)").is_some_and(|b| b.trim() == l.trim())
            }
            TokenSelector::Slot(n) => *n == slot,
        }
    }
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Serial(s) => write!(f, "serial:{s}"),
            TokenSelector::Label(l) => write!(f, "label:{l}"),
            TokenSelector::Slot(n) => write!(f, "slot:{n}"),
        }
    }
}

/// Which key on a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeySelector {
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID`, in hex.
    pub id: Option<String>,
}

impl KeySelector {
    /// `CKA_ID` bytes, if given.
    ///
    /// # Errors
    /// The id is not hex.
    pub fn id_bytes(&self) -> Result<Option<Vec<u8>>, Pkcs11Error> {
        self.id
            .as_ref()
            .map(|h| data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()).map_err(|_| Pkcs11Error::BadId(h.clone())))
            .transpose()
    }
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.label, &self.id) {
            (Some(l), Some(i)) => write!(f, "label '{l}' id {i}"),
            (Some(l), None) => write!(f, "label '{l}'"),
            (None, Some(i)) => write!(f, "id {i}"),
            (None, None) => f.write_str("any key"),
        }
    }
}

/// Errors of the PKCS#11 store. They name the module, token and key; they
/// never contain a PIN. They cross the pipe from the discovery process
/// ([`probe`]) whole, so the signer sees the same typed error either way.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {path}: {detail}")]
    Module {
        /// The module.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// No token matches; lists what is there.
    #[error("no token {wanted} in {module}; present: {}", if present.is_empty() { "none".to_owned() } else { present.join(", ") })]
    NoToken {
        /// The selector.
        wanted: String,
        /// The module.
        module: PathBuf,
        /// Tokens present.
        present: Vec<String>,
    },
    /// No key matches on a token; lists what is there.
    #[error("no key with {wanted} on token {token}; keys there: {}", if present.is_empty() { "none".to_owned() } else { present.join(", ") })]
    NoKey {
        /// The selector.
        wanted: String,
        /// The token.
        token: String,
        /// Keys present.
        present: Vec<String>,
    },
    /// The PIN was rejected.
    #[error("token {token}: the PIN was rejected (CKR_PIN_INCORRECT); not retried")]
    PinIncorrect {
        /// The token.
        token: String,
    },
    /// The PIN is locked.
    #[error("token {token}: the user PIN is locked (CKR_PIN_LOCKED); unblock it with the SO-PIN")]
    PinLocked {
        /// The token.
        token: String,
    },
    /// A PKCS#11 call failed.
    #[error("token {token}: {op} failed: {rv}")]
    Call {
        /// The token.
        token: String,
        /// The call.
        op: Cow<'static, str>,
        /// The return value, as its CKR_ name.
        rv: String,
        /// True when the device may come back (removed, not present, device error).
        transient: bool,
    },
    /// The key is of a kind DNSSEC cannot use, or the token lacks a mechanism.
    #[error("token {token}: {detail}")]
    Unsupported {
        /// The token.
        token: String,
        /// What.
        detail: String,
    },
    /// Tokens hold different keys under the same name.
    #[error("key {wanted}: tokens hold different keys under that name ({}); pin the one to use: add its public_key_sha256 line to its [[key]] entry", groups.join("; "))]
    Ambiguous {
        /// The selector.
        wanted: String,
        /// Tokens grouped by key.
        groups: Vec<String>,
    },
    /// One token holds several different keys under the same name.
    #[error("token {token}: several different keys with {wanted} ({}); pin the one to use: add its public_key_sha256 line to its [[key]] entry", keys.join("; "))]
    AmbiguousOnToken {
        /// The token.
        token: String,
        /// The selector.
        wanted: String,
        /// The keys found: key tag and digest of each.
        keys: Vec<String>,
    },
    /// No key under the name on a token is the configured one: the token is refused.
    #[error("token {token}: no key with {wanted} is the configured key: expected {expected}, found {}; the key on the token was replaced, or the configuration pins another key; refusing to sign with this token", found.join(", "))]
    PinMismatch {
        /// The token.
        token: String,
        /// The selector.
        wanted: String,
        /// The pin or key tag expected.
        expected: String,
        /// The keys found: key tag and digest of each.
        found: Vec<String>,
    },
    /// A `CKA_ID` that is not hex.
    #[error("key id '{0}' is not hex")]
    BadId(String),
    /// The module did not answer.
    #[error("PKCS#11 module {path} did not answer within {seconds} s while {what}")]
    Timeout {
        /// The module.
        path: PathBuf,
        /// Seconds waited.
        seconds: u64,
        /// What it was doing.
        what: Cow<'static, str>,
    },
    /// The module took down the process that had loaded it.
    #[error("PKCS#11 module {path} crashed while {what} ({status}); the signer itself is unaffected")]
    Crashed {
        /// The module.
        path: PathBuf,
        /// What it was doing.
        what: Cow<'static, str>,
        /// How the process ended.
        status: String,
    },
    /// The pool failed to start.
    #[error(transparent)]
    #[serde(skip)]
    Pool(#[from] PoolError),
}

impl From<Pkcs11Error> for crate::sign::KeyError {
    fn from(e: Pkcs11Error) -> Self {
        crate::sign::KeyError::Device(Box::new(e))
    }
}

/// The start-up message of a PKCS#11 worker (sent over the pipe, never argv).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct WorkerHello {
    /// Module path.
    pub module: PathBuf,
    /// Token serial (as discovered), or another selector.
    pub token: String,
    /// Which key.
    pub key: KeySelector,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// DNSKEY flags the key is published with (for key tags in messages).
    pub flags: u16,
    /// The DNSKEY public key field discovery chose: the worker signs only
    /// with the private key of this public key.
    pub public_key: Vec<u8>,
    /// The user PIN.
    pub pin: Zeroizing<String>,
}

/// One key of the configuration held in PKCS#11 tokens.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeySpec {
    /// The module.
    pub module: PathBuf,
    /// Tokens to use; empty for every token that holds the key.
    pub tokens: Vec<TokenSelector>,
    /// Which key.
    pub key: KeySelector,
    /// Zone, presentation form.
    pub zone: String,
    /// Role.
    pub role: Role,
    /// DNSSEC algorithm (for RSA keys: 8 or 10; otherwise implied by the key).
    pub algorithm: Option<Algorithm>,
    /// Key tag that the key must have (a 16-bit guard; [`KeySpec::pin`] is the real one).
    pub key_tag: Option<u16>,
    /// The public key the key must have; `None` leaves the key unpinned.
    pub pin: Option<pin::KeyPin>,
}

impl KeySpec {
    /// The DNSSEC algorithm of a key found with this algorithm family:
    /// RSA keys serve 8 or 10, as configured.
    pub fn algorithm_of(&self, found: Algorithm) -> Algorithm {
        match (found, self.algorithm) {
            (Algorithm::RsaSha256, Some(Algorithm::RsaSha512)) => Algorithm::RsaSha512,
            (a, _) => a,
        }
    }
}

/// Finds the tokens holding the key, checks they hold the same key, and
/// starts a signing pool with one worker per token.
///
/// Discovery runs in a child process under a deadline ([`probe`]): a module
/// or `pcscd` that hangs here fails the run instead of blocking it, and a
/// module that crashes takes down that child, not the signer.
///
/// # Errors
/// No token or key, tokens holding different keys, a rejected PIN, a module
/// that does not answer.
pub fn pool_for_key(spec: &KeySpec, pin: &Secret, worker: &Path, opts: PoolOptions) -> Result<PoolKey, Pkcs11Error> {
    let (info, discovery) = resolve_key(spec, worker, opts.discovery_timeout)?;
    let alg = info.algorithm;
    // OpenSC binds every reader's card at start: each worker is shown only its own.
    let configs = if opensc::is_opensc(&spec.module) {
        let own: Vec<&str> = discovery.found.iter().map(|h| h.reader.as_str()).collect();
        opensc::write_worker_configs(&own, &discovery.readers)
            .map_err(|e| Pkcs11Error::Module { path: spec.module.clone(), detail: format!("worker configuration: {e}") })?
    } else {
        None
    };
    let mut members = Vec::new();
    for (n, h) in discovery.found.into_iter().enumerate() {
        let file = configs.as_ref().and_then(|c| c.files.get(n).cloned().flatten());
        let env = file.map(|f| ("OPENSC_CONF".to_owned(), f)).into_iter().collect();
        let hello = WorkerHello {
            module: spec.module.clone(),
            token: h.selector.to_string(),
            key: spec.key.clone(),
            algorithm: alg.number(),
            flags: spec.role.flags(),
            public_key: info.dnskey[4..].to_vec(),
            pin: Zeroizing::new(pin.expose().to_owned()),
        };
        let bytes =
            crate::pool::protocol::secret_json(&hello).map_err(|detail| Pkcs11Error::Module { path: spec.module.clone(), detail })?;
        members.push(MemberSpec {
            name: h.token.clone(),
            program: worker.to_path_buf(),
            args: vec!["worker".into(), "pkcs11".into()],
            hello: bytes,
            env,
            scratch: configs.as_ref().map(|c| c.dir.clone()),
        });
    }
    tracing::info!(key = %info.id, key_tag = info.key_tag, tokens = members.len(), "starting the signing pool");
    Ok(std::sync::Arc::new(Pool::start(vec![info], members, opts)?).key(0))
}

/// Finds the key a [`KeySpec`] names on its tokens (public objects, no login)
/// and checks that every token holding it holds the same key. The module is
/// loaded in a child process (`program worker pkcs11-probe`), never in the
/// caller's.
///
/// # Errors
/// No token or key, tokens holding different keys, a module that does not
/// answer or crashes.
pub fn resolve_key(spec: &KeySpec, program: &Path, limit: Duration) -> Result<(KeyInfo, token::Discovery), Pkcs11Error> {
    // Discovery has already chosen one key per token (the pinned one, or the
    // only one under the name); here the tokens must agree.
    let token::Discovery { found, readers } = probe::find_key(program, spec, limit)?;
    let mut groups: Vec<(Vec<u8>, Algorithm, Vec<token::FoundKey>)> = Vec::new();
    for f in found {
        match groups.iter_mut().find(|g| g.0 == f.public_key) {
            Some(g) => g.2.push(f),
            None => groups.push((f.public_key.clone(), f.algorithm, vec![f])),
        }
    }
    if groups.len() > 1 {
        let desc = groups
            .iter()
            .map(|g| {
                format!(
                    "key tag {} on {}: {}",
                    key_tag(&dnskey_rdata(spec.role.flags(), spec.algorithm_of(g.1), &g.0)),
                    g.2.iter().map(|f| f.token.clone()).collect::<Vec<_>>().join(", "),
                    pin::config_line(&g.0)
                )
            })
            .collect();
        return Err(Pkcs11Error::Ambiguous { wanted: spec.key.to_string(), groups: desc });
    }
    let Some((public_key, alg, holders)) = groups.pop() else {
        return Err(Pkcs11Error::NoKey {
            wanted: spec.key.to_string(),
            token: if spec.tokens.is_empty() {
                "any".to_owned()
            } else {
                spec.tokens.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            },
            present: Vec::new(),
        });
    };
    let alg = spec.algorithm_of(alg);
    let dnskey = dnskey_rdata(spec.role.flags(), alg, &public_key);
    let tag = key_tag(&dnskey);
    if spec.pin.is_none() {
        tracing::warn!(
            zone = %spec.zone,
            key = %spec.key,
            key_tag = tag,
            "the key is not pinned: a different key put on a token under the same name would be used; add `{}` to its [[key]] entry",
            pin::config_line(&public_key)
        );
    }
    let info = KeyInfo {
        id: format!("pkcs11:{}", spec.key.label.clone().or_else(|| spec.key.id.clone()).unwrap_or_else(|| tag.to_string())),
        backend: "pkcs11",
        zone: spec.zone.clone(),
        algorithm: alg,
        role: spec.role,
        dnskey,
        key_tag: tag,
    };
    Ok((info, token::Discovery { found: holders, readers }))
}

/// Entry point of a PKCS#11 worker process (`hwsigner worker pkcs11`).
///
/// # Errors
/// Pipe failures.
pub fn worker_main() -> std::io::Result<()> {
    crate::pool::worker::serve(|hello| {
        let hello: WorkerHello = serde_json::from_slice(hello).map_err(|e| {
            crate::pool::protocol::Failure::new(
                crate::pool::protocol::FailureKind::Fatal,
                format!("bad hello: {}", crate::pool::protocol::json_error(&e)),
            )
        })?;
        device::Pkcs11Device::open(&hello).map(|d| Box::new(d) as Box<dyn crate::pool::worker::DeviceSigner>).map_err(|e| e.into_failure())
    })
}

impl Pkcs11Error {
    /// Classifies the error for the pool.
    pub fn into_failure(self) -> crate::pool::protocol::Failure {
        use crate::pool::protocol::{Failure, FailureKind};
        let kind = match &self {
            Pkcs11Error::PinIncorrect { .. } => FailureKind::PinIncorrect,
            Pkcs11Error::PinLocked { .. } => FailureKind::PinLocked,
            Pkcs11Error::Call { transient: true, .. } | Pkcs11Error::Timeout { .. } => FailureKind::Transient,
            // A token that vanished between discovery and opening may come back.
            Pkcs11Error::NoToken { .. } => FailureKind::Transient,
            _ => FailureKind::Fatal,
        };
        Failure::new(kind, self.to_string())
    }
}
