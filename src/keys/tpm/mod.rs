//! TPM 2.0 key store (tss-esapi 7): keys created inside the TPM, never
//! exportable (`fixedTPM`, `fixedParent`, `sensitiveDataOrigin`), kept as
//! public/private blobs in the key directory beside the software keys:
//! `K<zone>+<alg>+<tag>.tpm` (JSON) plus `.tpm.pub`/`.tpm.priv` in tpm2-tools'
//! format, so `tpm2_load`/`tpm2_sign` can use them too. The JSON file carries
//! its format's `version` ([`KEY_FILE_VERSION`]); files written before it had
//! one are read as version 1, and any other version is refused, naming the file.
//!
//! A key is lost for good on a TPM clear or a factory reset: the blobs only
//! load under the TPM's storage seed. Plan a second key or a published
//! rollover, not a backup.

pub mod device;

use crate::crypto::dnskey::{dnskey_rdata, key_tag};
use crate::dns::algorithm::Algorithm;
use crate::pool::protocol::{Failure, FailureKind};
use crate::pool::{MemberSpec, Pool, PoolKey, PoolOptions};
use crate::secret::Secret;
use crate::sign::{KeyInfo, Role};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The version of the `.tpm` key file format this build writes and reads.
pub const KEY_FILE_VERSION: u32 = 1;

/// The default TCTI: the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// The TCTI: the given one, else `TPM2TOOLS_TCTI` or `TCTI`, else the kernel resource manager.
pub fn tcti(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        // Unset (or not UTF-8, which no TCTI string is): try the next source.
        .or_else(|| std::env::var("TPM2TOOLS_TCTI").ok())
        .or_else(|| std::env::var("TCTI").ok())
        .unwrap_or_else(|| DEFAULT_TCTI.to_owned())
}

/// Where the signing keys hang in the TPM's hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parent {
    /// An ECC P-256 storage key re-derived from hwsigner's template on each start.
    Template,
    /// A storage key persisted at this handle (e.g. 0x81000001).
    Persistent(u32),
}

impl Parent {
    /// `None` for the template, or a persistent handle like `0x81000001`.
    pub fn from_handle(h: Option<&str>) -> Result<Self, TpmError> {
        match h {
            None => Ok(Parent::Template),
            Some(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16)
                .map(Parent::Persistent)
                .map_err(|_| TpmError::Unsupported(format!("handle '{s}' (write it like 0x81000001)"))),
        }
    }
}

/// TPM errors; they never contain an authorisation value.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// The TCTI could not be opened.
    #[error("TPM at {tcti}: cannot connect: {detail}")]
    Tcti {
        /// The TCTI.
        tcti: String,
        /// Why.
        detail: String,
    },
    /// The key's authorisation value was rejected.
    #[error("TPM at {tcti}: the key's authorisation value was rejected; the TPM's dictionary-attack counter went up, so it is not retried")]
    AuthFail {
        /// The TCTI.
        tcti: String,
    },
    /// The TPM is in dictionary-attack lockout.
    #[error(
        "TPM at {tcti}: the TPM is in dictionary-attack lockout after too many wrong authorisation values; wait for the lockout interval (hwsigner tpm info shows it) or reset it with the lockout authorisation"
    )]
    Lockout {
        /// The TCTI.
        tcti: String,
    },
    /// The blobs do not load in this TPM.
    #[error(
        "TPM at {tcti}: the key blobs do not belong to this TPM (integrity check failed): they were made by another TPM, under another parent, or before a TPM clear"
    )]
    ForeignBlob {
        /// The TCTI.
        tcti: String,
    },
    /// A TPM command failed.
    #[error("TPM at {tcti}: {op} failed: {detail}")]
    Call {
        /// The TCTI.
        tcti: String,
        /// The command.
        op: &'static str,
        /// Why.
        detail: String,
        /// True when the TPM may answer later.
        transient: bool,
    },
    /// A key file problem.
    #[error("{0}")]
    Blob(String),
    /// A key file of a format version this build does not read.
    #[error("{path}: TPM key file version {found} is not supported; this hwsigner reads version {KEY_FILE_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version given, as written.
        found: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not supported.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The pool failed to start.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
}

impl TpmError {
    /// Classifies the error for the pool.
    pub fn into_failure(self) -> Failure {
        let kind = match &self {
            TpmError::AuthFail { .. } => FailureKind::PinIncorrect,
            TpmError::Lockout { .. } => FailureKind::PinLocked,
            TpmError::Tcti { .. } | TpmError::Call { transient: true, .. } => FailureKind::Transient,
            _ => FailureKind::Fatal,
        };
        Failure::new(kind, self.to_string())
    }
}

impl From<TpmError> for crate::sign::KeyError {
    fn from(e: TpmError) -> Self {
        crate::sign::KeyError::Device(Box::new(e))
    }
}

/// A TPM key file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TpmKeyFile {
    /// Format version ([`KEY_FILE_VERSION`]); absent in files older than it, which are version 1.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Zone, presentation form.
    pub zone: String,
    /// Role.
    pub role: Role,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub key_tag: u16,
    /// DNSKEY public key field, hex.
    pub public_key: String,
    /// TPMT_PUBLIC, hex.
    pub public_blob: String,
    /// TPM2B_PRIVATE contents, hex.
    pub private_blob: String,
    /// The parent.
    pub parent: Parent,
    /// True when the key has an authorisation value.
    pub auth: bool,
    /// The TCTI the key was made on (a hint; the run's TCTI wins).
    pub tcti: String,
}

fn first_version() -> u32 {
    1
}

impl TpmKeyFile {
    /// Parses the JSON key file `path`.
    ///
    /// The version is read first: a file of another version is refused
    /// before its fields are judged by this version's rules.
    ///
    /// # Errors
    /// [`TpmError::Version`] for another version, [`TpmError::Blob`] for a malformed file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, TpmError> {
        let malformed = |err: serde_json::Error| TpmError::Blob(format!("{}: {err}", path.display()));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
        if let Some(v) = value.get("version").filter(|v| v.as_u64() != Some(KEY_FILE_VERSION.into())) {
            return Err(TpmError::Version { path: path.to_path_buf(), found: v.to_string() });
        }
        serde_json::from_value(value).map_err(malformed)
    }

    /// The key as the engine sees it.
    ///
    /// # Errors
    /// A malformed file.
    pub fn info(&self, id: &str) -> Result<KeyInfo, TpmError> {
        let alg = Algorithm::from_number(self.algorithm).ok_or_else(|| TpmError::Blob(format!("{id}: algorithm {}", self.algorithm)))?;
        let field = data_encoding::HEXLOWER_PERMISSIVE
            .decode(self.public_key.as_bytes())
            .map_err(|_| TpmError::Blob(format!("{id}: public key is not hex")))?;
        let dnskey = dnskey_rdata(self.role.flags(), alg, &field);
        Ok(KeyInfo {
            id: id.to_owned(),
            backend: "tpm",
            zone: self.zone.clone(),
            algorithm: alg,
            role: self.role,
            key_tag: key_tag(&dnskey),
            dnskey,
        })
    }
}

/// One key in a worker's Hello.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct HelloKey {
    /// Name for messages.
    pub name: String,
    /// TPMT_PUBLIC, hex.
    pub public: String,
    /// TPM2B_PRIVATE contents, hex.
    pub private: String,
    /// DNSSEC algorithm.
    pub algorithm: u8,
    /// Authorisation value.
    pub auth: Option<Zeroizing<String>>,
}

/// The start-up message of a TPM worker.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct WorkerHello {
    /// TCTI.
    pub tcti: String,
    /// Parent of the keys.
    pub parent: Parent,
    /// Keys to load.
    pub keys: Vec<HelloKey>,
}

fn zone_text(zone: &str) -> String {
    let z = zone.trim_end_matches('.').to_ascii_lowercase();
    format!("{z}.")
}

fn base_name(zone: &str, alg: Algorithm, tag: u16) -> String {
    format!("K{}+{:03}+{:05}", zone_text(zone), alg.number(), tag)
}

/// Key files and blobs are secrets to the TPM's owner (0600), fsync'd.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TpmError> {
    crate::atomic_file::write_bytes(path, crate::atomic_file::Kind::Secret, bytes)
        .map_err(|e| TpmError::Io { path: path.to_path_buf(), source: e.into_io() })
}

fn tpm2b(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

/// Writes a key file and its tpm2-tools blobs; returns the key's id.
///
/// # Errors
/// I/O errors.
pub fn store(dir: &Path, f: &TpmKeyFile, public: &[u8], private: &[u8]) -> Result<String, TpmError> {
    std::fs::create_dir_all(dir).map_err(|source| TpmError::Io { path: dir.to_path_buf(), source })?;
    let alg = Algorithm::from_number(f.algorithm).ok_or_else(|| TpmError::Blob("algorithm".into()))?;
    let base = base_name(&f.zone, alg, f.key_tag);
    write_file(&dir.join(format!("{base}.tpm.pub")), &tpm2b(public))?;
    write_file(&dir.join(format!("{base}.tpm.priv")), &tpm2b(private))?;
    let json = serde_json::to_vec_pretty(f).map_err(|e| TpmError::Blob(e.to_string()))?;
    write_file(&dir.join(format!("{base}.tpm")), &json)?;
    Ok(format!("tpm:{base}"))
}

/// Generates a key in the TPM and stores its blobs in `dir`.
///
/// # Errors
/// TPM and I/O errors.
pub fn generate(
    dir: &Path,
    tcti: &str,
    parent: &Parent,
    zone: &str,
    role: Role,
    alg: Algorithm,
    auth: Option<&Secret>,
) -> Result<(String, TpmKeyFile), TpmError> {
    let made = device::create_key(tcti, parent, alg, auth.map(|a| a.expose().as_bytes()))?;
    let dnskey = dnskey_rdata(role.flags(), made.algorithm, &made.field);
    let f = TpmKeyFile {
        version: KEY_FILE_VERSION,
        zone: zone_text(zone),
        role,
        algorithm: made.algorithm.number(),
        key_tag: key_tag(&dnskey),
        public_key: data_encoding::HEXLOWER.encode(&made.field),
        public_blob: data_encoding::HEXLOWER.encode(&made.public),
        private_blob: data_encoding::HEXLOWER.encode(&made.private),
        parent: parent.clone(),
        auth: auth.is_some(),
        tcti: tcti.to_owned(),
    };
    let id = store(dir, &f, &made.public, &made.private)?;
    Ok((id, f))
}

/// Imports a key made with tpm2-tools (`tpm2_create -C <persistent parent>`):
/// TPM2B public and private files.
///
/// # Errors
/// Malformed files, unsupported key types.
#[allow(clippy::too_many_arguments)]
pub fn import(
    dir: &Path,
    tcti: &str,
    parent: &Parent,
    zone: &str,
    role: Role,
    algorithm: Option<Algorithm>,
    public_file: &Path,
    private_file: &Path,
    auth: bool,
) -> Result<(String, TpmKeyFile), TpmError> {
    use tss_esapi::traits::UnMarshall;
    let read = |p: &Path| std::fs::read(p).map_err(|source| TpmError::Io { path: p.to_path_buf(), source });
    let strip = |b: Vec<u8>, p: &Path| -> Result<Vec<u8>, TpmError> {
        if b.len() >= 2 && usize::from(u16::from_be_bytes([b[0], b[1]])) == b.len() - 2 {
            Ok(b[2..].to_vec())
        } else {
            Err(TpmError::Blob(format!("{}: not a TPM2B blob (tpm2_create -u/-r output)", p.display())))
        }
    };
    let public = strip(read(public_file)?, public_file)?;
    let private = strip(read(private_file)?, private_file)?;
    let p = tss_esapi::structures::Public::unmarshall(&public)
        .map_err(|_| TpmError::Blob(format!("{}: does not parse as a TPM public area", public_file.display())))?;
    let (family, field) = device::public_field(&p)?;
    let alg = match (family, algorithm) {
        (Algorithm::RsaSha256, Some(a @ (Algorithm::RsaSha256 | Algorithm::RsaSha512))) => a,
        (f, _) => f,
    };
    let dnskey = dnskey_rdata(role.flags(), alg, &field);
    let f = TpmKeyFile {
        version: KEY_FILE_VERSION,
        zone: zone_text(zone),
        role,
        algorithm: alg.number(),
        key_tag: key_tag(&dnskey),
        public_key: data_encoding::HEXLOWER.encode(&field),
        public_blob: data_encoding::HEXLOWER.encode(&public),
        private_blob: data_encoding::HEXLOWER.encode(&private),
        parent: parent.clone(),
        auth,
        tcti: tcti.to_owned(),
    };
    let id = store(dir, &f, &public, &private)?;
    Ok((id, f))
}

/// The TPM keys in `dir`, for `zone` when given.
///
/// # Errors
/// Unreadable directory or malformed key files.
pub fn list(dir: &Path, zone: Option<&str>) -> Result<Vec<(String, TpmKeyFile)>, TpmError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(TpmError::Io { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "tpm") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|source| TpmError::Io { path: path.clone(), source })?;
        let f = TpmKeyFile::parse(&path, &text)?;
        if zone.is_none_or(|z| zone_text(z) == f.zone) {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((format!("tpm:{stem}"), f));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Starts one signing worker for the TPM holding `keys` (all TPM commands
/// go through it) and returns the keys as the engine sees them.
///
/// # Errors
/// A wrong authorisation value (tried once), blobs from another TPM, a TPM that does not answer.
pub fn pool_for_keys(
    tcti: &str,
    keys: &[(String, TpmKeyFile)],
    auth: Option<&Secret>,
    worker: &Path,
    opts: PoolOptions,
) -> Result<Vec<PoolKey>, TpmError> {
    let Some(first) = keys.first() else { return Ok(Vec::new()) };
    let mut infos = Vec::new();
    let mut hello_keys = Vec::new();
    for (id, f) in keys {
        if f.parent != first.1.parent {
            return Err(TpmError::Unsupported("TPM keys under different parents in one run".into()));
        }
        if f.auth && auth.is_none() {
            return Err(TpmError::Blob(format!(
                "{id}: the key has an authorisation value; give it with --tpm-auth-file or --tpm-auth-env"
            )));
        }
        infos.push(f.info(id)?);
        hello_keys.push(HelloKey {
            name: id.clone(),
            public: f.public_blob.clone(),
            private: f.private_blob.clone(),
            algorithm: f.algorithm,
            auth: if f.auth { auth.map(|a| Zeroizing::new(a.expose().to_owned())) } else { None },
        });
    }
    let hello = WorkerHello { tcti: tcti.to_owned(), parent: first.1.parent.clone(), keys: hello_keys };
    let bytes = crate::pool::protocol::secret_json(&hello).map_err(TpmError::Blob)?;
    let member = MemberSpec {
        name: format!("TPM at {tcti}"),
        program: worker.to_path_buf(),
        args: vec!["worker".into(), "tpm".into()],
        hello: bytes,
        env: Vec::new(),
        scratch: None,
    };
    let n = infos.len();
    let pool = std::sync::Arc::new(Pool::start(infos, vec![member], opts)?);
    Ok((0..n).map(|i| pool.key(i)).collect())
}

/// Entry point of a TPM worker process (`hwsigner worker tpm`).
///
/// # Errors
/// Pipe failures.
pub fn worker_main() -> std::io::Result<()> {
    crate::pool::worker::serve(|hello| {
        let hello: WorkerHello = serde_json::from_slice(hello)
            .map_err(|e| Failure::new(FailureKind::Fatal, format!("bad hello: {}", crate::pool::protocol::json_error(&e))))?;
        device::TpmDevice::open(&hello).map(|d| Box::new(d) as Box<dyn crate::pool::worker::DeviceSigner>).map_err(TpmError::into_failure)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_text(version: Option<&str>) -> String {
        let v = version.map(|v| format!("\"version\": {v}, ")).unwrap_or_default();
        format!(
            "{{{v}\"zone\": \"example.\", \"role\": \"csk\", \"algorithm\": 13, \"key_tag\": 1, \"public_key\": \"00\", \"public_blob\": \"00\", \"private_blob\": \"00\", \"parent\": \"template\", \"auth\": false, \"tcti\": \"device:/dev/tpmrm0\"}}"
        )
    }

    #[test]
    fn key_files_without_a_version_are_version_one_and_others_are_refused() {
        let path = Path::new("/keys/Kexample.+013+00001.tpm");
        assert_eq!(TpmKeyFile::parse(path, file_text(None).as_bytes()).expect("old file").version, 1);
        assert_eq!(TpmKeyFile::parse(path, file_text(Some("1")).as_bytes()).expect("version 1").version, 1);
        for v in ["2", "0", "\"1\"", "null"] {
            let e = TpmKeyFile::parse(path, file_text(Some(v)).as_bytes()).expect_err(v).to_string();
            assert_eq!(e, format!("{}: TPM key file version {v} is not supported; this hwsigner reads version 1", path.display()));
        }
        // What is written says its version, first.
        let f = TpmKeyFile::parse(path, file_text(None).as_bytes()).expect("old file");
        let written = serde_json::to_string(&f).expect("json");
        assert!(written.starts_with("{\"version\":1,"), "{written}");
    }
}
