//! The tamper-evident ceremony transcript: one JSON object per line, each
//! carrying the hash of the line before it, the first chained to the hash of
//! the script that was run. Changing, removing or reordering any byte breaks
//! the chain from that line on. The final hash is also given as pronounceable
//! words (proquints) that a witness reads aloud and writes down on paper, so
//! the paper record pins the electronic one.

use openssl::sha::sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Transcript errors, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not chain to the one before it (or does not parse).
    #[error("{path}:{line}: {reason}; the transcript was altered at or before this line")]
    Broken {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One entry of the transcript.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Sequence number from 1.
    pub seq: u64,
    /// UTC time, RFC 3339.
    pub time: String,
    /// The step's title.
    pub step: String,
    /// Who acted (officer, witness, operator).
    pub actor: String,
    /// What the step printed: DNSKEY, key tags, DS, serials, KCVs.
    pub output: serde_json::Value,
    /// Hash of the previous line (or of the script for the first).
    pub prev: String,
    /// SHA-256 over `prev` and this entry without `hash`.
    #[serde(default)]
    pub hash: String,
}

fn entry_hash(e: &Entry) -> Result<String, serde_json::Error> {
    let mut copy = e.clone();
    copy.hash = String::new();
    let body = serde_json::to_vec(&copy)?;
    let mut data = e.prev.as_bytes().to_vec();
    data.extend_from_slice(&body);
    Ok(data_encoding::HEXLOWER.encode(&sha256(&data)))
}

/// An open transcript being appended to (each line is flushed and synced as written).
pub struct Transcript {
    path: PathBuf,
    file: std::fs::File,
    last: String,
    seq: u64,
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

impl Transcript {
    /// Starts a new transcript chained to `anchor` (the script's bytes). Refuses to overwrite.
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub fn create(path: &Path, anchor: &[u8]) -> Result<Self, TranscriptError> {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|source| TranscriptError::Io { path: path.to_path_buf(), source })?;
        Ok(Transcript { path: path.to_path_buf(), file, last: data_encoding::HEXLOWER.encode(&sha256(anchor)), seq: 0 })
    }

    /// Appends an entry and returns its hash.
    ///
    /// # Errors
    /// The write fails.
    pub fn append(&mut self, step: &str, actor: &str, output: serde_json::Value) -> Result<String, TranscriptError> {
        let io = |source| TranscriptError::Io { path: self.path.clone(), source };
        self.seq += 1;
        let mut e = Entry {
            seq: self.seq,
            time: now_rfc3339(),
            step: step.to_owned(),
            actor: actor.to_owned(),
            output,
            prev: self.last.clone(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e).map_err(|err| io(std::io::Error::other(err)))?;
        let mut line = serde_json::to_vec(&e).map_err(|err| io(std::io::Error::other(err)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last = e.hash.clone();
        Ok(e.hash)
    }

    /// The hash of the last entry.
    pub fn last_hash(&self) -> &str {
        &self.last
    }
}

/// Checks a transcript against the script it claims to record; returns the entries and the final hash.
///
/// # Errors
/// [`TranscriptError::Broken`] at the first line that does not chain.
pub fn verify(path: &Path, anchor: &[u8]) -> Result<(Vec<Entry>, String), TranscriptError> {
    let text = std::fs::read_to_string(path).map_err(|source| TranscriptError::Io { path: path.to_path_buf(), source })?;
    let mut last = data_encoding::HEXLOWER.encode(&sha256(anchor));
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let broken = |reason: String| TranscriptError::Broken { path: path.to_path_buf(), line: i + 1, reason };
        let e: Entry = serde_json::from_str(line).map_err(|err| broken(format!("not a transcript entry ({err})")))?;
        if e.prev != last {
            return Err(broken("it does not follow the line before it (or the script differs)".into()));
        }
        if e.seq != i as u64 + 1 {
            return Err(broken(format!("sequence number {} where {} was expected", e.seq, i + 1)));
        }
        let h = entry_hash(&e).map_err(|err| broken(err.to_string()))?;
        if h != e.hash {
            return Err(broken("its content does not match its hash".into()));
        }
        last = e.hash.clone();
        entries.push(e);
    }
    if !text.ends_with('\n') && !text.is_empty() {
        return Err(TranscriptError::Broken {
            path: path.to_path_buf(),
            line: entries.len(),
            reason: "the last line is incomplete".into(),
        });
    }
    Ok((entries, last))
}

/// A hash as proquints (pronounceable five-letter words, 16 bits each), in groups of four.
pub fn words(hex: &str) -> String {
    const C: &[u8; 16] = b"bdfghjklmnprstvz";
    const V: &[u8; 4] = b"aiou";
    // The hashes given here are ours (hex of SHA-256); should anything else
    // come in, its words are "(not a hash)", never the words of nothing.
    let Ok(bytes) = data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()) else { return "(not a hash)".to_owned() };
    let quints: Vec<String> = bytes
        .chunks(2)
        .map(|c| {
            let n = (u16::from(c[0]) << 8) | u16::from(*c.get(1).unwrap_or(&0));
            let q = [
                C[(n >> 12) as usize & 15],
                V[(n >> 10) as usize & 3],
                C[(n >> 6) as usize & 15],
                V[(n >> 4) as usize & 3],
                C[n as usize & 15],
            ];
            String::from_utf8_lossy(&q).into_owned()
        })
        .collect();
    quints.chunks(4).map(|g| g.join("-")).collect::<Vec<_>>().join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_verifies_and_any_change_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut t = Transcript::create(&p, b"script").unwrap();
        t.append("init card", "alice", serde_json::json!({"serial": "DEEM1"})).unwrap();
        let last = t.append("keygen", "bob", serde_json::json!({"key_tag": 12345})).unwrap();
        let (entries, fin) = verify(&p, b"script").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(fin, last);
        assert!(verify(&p, b"other script").is_err());
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(5).position(|w| w == b"12345").unwrap();
        bytes[at] = b'9';
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(verify(&p, b"script"), Err(TranscriptError::Broken { line: 2, .. })));
        assert!(Transcript::create(&p, b"x").is_err(), "never overwrites");
    }

    #[test]
    fn proquints() {
        // The proquint specification's examples: 127.0.0.1 is lusab-babad.
        assert_eq!(words("7f000001"), "lusab-babad");
        assert_eq!(words("3f54dcc1"), "gutih-tugad");
    }
}
