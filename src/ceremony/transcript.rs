//! The tamper-evident ceremony transcript: one JSON object per line.
//!
//! Format version 1 ([`FORMAT_VERSION`]):
//! * every line is a JSON object ending in `,"hash":"<64 hex digits>"}`, where
//!   the hash is SHA-256 over the line's bytes exactly as written before that
//!   field (`{"seq":...,"prev":"..."`). The bytes on disk are hashed, never a
//!   re-serialisation, so whitespace, key order, number spelling or an added
//!   field cannot change without breaking the hash;
//! * `prev` is the hash of the line before, and for the first line SHA-256 of
//!   the script that was run, so removing, reordering or editing a line breaks
//!   the chain from that line on;
//! * the first entry carries `"version": 1`;
//! * the last entry is a closing entry (`"end": "complete"` or `"end":
//!   "aborted"`), written when the ceremony finishes or fails. A transcript
//!   without one (killed run, cut-off file, removed lines) is incomplete, not
//!   intact.
//!
//! The final hash is also given as pronounceable words (proquints) that a
//! witness reads aloud and writes down on paper; `verify` compares them
//! (`--expect`), so the paper record pins the electronic one, including its
//! last line.

use openssl::sha::sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The transcript format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What separates an entry's hashed bytes from its hash.
const HASH_FIELD: &[u8] = b",\"hash\":\"";

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
    /// Every line chains, but the ceremony's closing entry is missing: the run
    /// was killed, or lines were cut off the end.
    #[error("{path}: incomplete: no closing entry after line {lines} (the ceremony was interrupted, or its last lines were removed)")]
    Incomplete {
        /// The file.
        path: PathBuf,
        /// Lines present.
        lines: usize,
    },
    /// The transcript has no entries at all.
    #[error("{path}: incomplete: the transcript is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The first entry names a format version this code does not read, or none.
    #[error("{path}: {reason}")]
    Version {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An entry could not be encoded (a bug: outputs are plain JSON values).
    #[error("{path}: cannot encode a transcript entry: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// How a ceremony ended, as its closing entry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// Every step ran.
    Complete,
    /// A step failed and the ceremony stopped there.
    Aborted,
}

/// One entry of the transcript.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The transcript format version; in the first entry only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
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
    /// How the ceremony ended; in the closing entry only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
    /// Hash of the previous line (or of the script for the first).
    pub prev: String,
    /// SHA-256 over this line's bytes before the hash field. Written after
    /// the other fields by [`Transcript::append`], never serialised with them.
    #[serde(default, skip_serializing)]
    pub hash: String,
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// An open transcript being appended to (each line is flushed and synced as written).
pub struct Transcript {
    path: PathBuf,
    file: std::fs::File,
    last: String,
    seq: u64,
    closed: bool,
}

fn now_rfc3339() -> String {
    // A clock before 1970 is a broken machine; the entry then says 1970 rather
    // than stopping a ceremony half-way, and the witness sees the date.
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
        let io = |source| TranscriptError::Io { path: path.to_path_buf(), source };
        let file = std::fs::OpenOptions::new().create_new(true).append(true).open(path).map_err(io)?;
        // The directory entry must survive a crash as well as the lines do.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(Transcript { path: path.to_path_buf(), file, last: hex(&sha256(anchor)), seq: 0, closed: false })
    }

    /// Appends an entry and returns its hash.
    ///
    /// # Errors
    /// The write fails.
    pub fn append(&mut self, step: &str, actor: &str, output: serde_json::Value) -> Result<String, TranscriptError> {
        self.write(step, actor, output, None)
    }

    /// Writes the closing entry; nothing can be appended after it.
    ///
    /// # Errors
    /// The write fails.
    pub fn close(&mut self, end: End, output: serde_json::Value) -> Result<String, TranscriptError> {
        let step = match end {
            End::Complete => "ceremony complete",
            End::Aborted => "ceremony aborted",
        };
        let h = self.write(step, "operator", output, Some(end))?;
        self.closed = true;
        Ok(h)
    }

    fn write(&mut self, step: &str, actor: &str, output: serde_json::Value, end: Option<End>) -> Result<String, TranscriptError> {
        let io = |source| TranscriptError::Io { path: self.path.clone(), source };
        if self.closed {
            return Err(io(std::io::Error::other("the transcript is closed")));
        }
        let e = Entry {
            version: (self.seq == 0).then_some(FORMAT_VERSION),
            seq: self.seq + 1,
            time: now_rfc3339(),
            step: step.to_owned(),
            actor: actor.to_owned(),
            output,
            end,
            prev: self.last.clone(),
            hash: String::new(),
        };
        let mut line = serde_json::to_vec(&e).map_err(|source| TranscriptError::Encode { path: self.path.clone(), source })?;
        // `{...}` without its closing brace is what the hash covers.
        if line.pop() != Some(b'}') {
            return Err(io(std::io::Error::other("an entry did not encode as a JSON object")));
        }
        let h = hex(&sha256(&line));
        line.extend_from_slice(HASH_FIELD);
        line.extend_from_slice(h.as_bytes());
        line.extend_from_slice(b"\"}\n");
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.seq += 1;
        self.last = h.clone();
        Ok(h)
    }

    /// The hash of the last entry.
    pub fn last_hash(&self) -> &str {
        &self.last
    }
}

/// A transcript that verified: chained from the script, closed.
#[derive(Debug)]
pub struct Verified {
    /// Every entry, the closing one last.
    pub entries: Vec<Entry>,
    /// The hash of the closing entry.
    pub final_hash: String,
    /// How the ceremony ended.
    pub end: End,
}

/// The hashed bytes and the hash of one line, if it has the shape `{...,"hash":"<hex>"}`.
fn split_line(line: &[u8]) -> Option<(&[u8], &str)> {
    let at = line.windows(HASH_FIELD.len()).rposition(|w| w == HASH_FIELD)?;
    let tail = &line[at + HASH_FIELD.len()..];
    let digest = tail.strip_suffix(b"\"}")?;
    if digest.len() != 64 || !digest.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    // Checked as ASCII hex digits just above, so this is valid UTF-8.
    Some((&line[..at], std::str::from_utf8(digest).ok()?))
}

/// Checks a transcript against the script it claims to record.
///
/// # Errors
/// [`TranscriptError::Broken`] at the first line that does not chain or parse;
/// [`TranscriptError::Empty`] / [`TranscriptError::Incomplete`] without a
/// closing entry; [`TranscriptError::Version`] for an unknown or missing format version.
pub fn verify(path: &Path, anchor: &[u8]) -> Result<Verified, TranscriptError> {
    let bytes = std::fs::read(path).map_err(|source| TranscriptError::Io { path: path.to_path_buf(), source })?;
    if bytes.is_empty() {
        return Err(TranscriptError::Empty { path: path.to_path_buf() });
    }
    let mut last = hex(&sha256(anchor));
    let mut entries: Vec<Entry> = Vec::new();
    let complete_lines = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes.strip_suffix(b"\n").unwrap_or(&bytes).split(|b| *b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let broken = |reason: String| TranscriptError::Broken { path: path.to_path_buf(), line: n, reason };
        if n == lines.len() && !complete_lines {
            return Err(broken("the last line is incomplete (the file was cut off)".into()));
        }
        if entries.last().is_some_and(|e| e.end.is_some()) {
            return Err(broken("a line follows the closing entry".into()));
        }
        let e: Entry = serde_json::from_slice(line).map_err(|err| broken(format!("not a transcript entry ({err})")))?;
        if i == 0 {
            match e.version {
                Some(FORMAT_VERSION) => {}
                Some(v) => {
                    return Err(TranscriptError::Version {
                        path: path.to_path_buf(),
                        reason: format!("transcript format version {v} is not known to this hwsigner (it reads version {FORMAT_VERSION})"),
                    });
                }
                None => {
                    return Err(TranscriptError::Version {
                        path: path.to_path_buf(),
                        reason: "the transcript has no format version: it was written before version 1, whose hashes \
                                 cover the bytes on disk and which ends in a closing entry; such a transcript cannot be \
                                 shown to be intact"
                            .into(),
                    });
                }
            }
        } else if e.version.is_some() {
            return Err(broken("a format version outside the first entry".into()));
        }
        let (body, digest) = split_line(line).ok_or_else(|| broken("the line does not end in its hash".into()))?;
        if e.prev != last {
            return Err(broken("it does not follow the line before it (or the script differs)".into()));
        }
        if e.seq != n as u64 {
            return Err(broken(format!("sequence number {} where {n} was expected", e.seq)));
        }
        if hex(&sha256(body)) != digest {
            return Err(broken("its content does not match its hash".into()));
        }
        last = digest.to_owned();
        entries.push(e);
    }
    match entries.last().and_then(|e| e.end) {
        Some(end) => Ok(Verified { entries, final_hash: last, end }),
        None => Err(TranscriptError::Incomplete { path: path.to_path_buf(), lines: entries.len() }),
    }
}

/// A hash as proquints (pronounceable five-letter words, 16 bits each), in groups of four.
/// `hash` is the lower-case hex this module writes; anything else gives no words.
pub fn words(hash: &str) -> String {
    const C: &[u8; 16] = b"bdfghjklmnprstvz";
    const V: &[u8; 4] = b"aiou";
    // Only hashes made here reach this function; a malformed one shows as no words,
    // which can never match a paper record.
    let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(hash.as_bytes()).unwrap_or_default();
    let quints: Vec<String> = bytes
        .chunks(2)
        .map(|c| {
            // An odd final byte is padded with zero bits, as the proquint specification does.
            let n = (u16::from(c[0]) << 8) | u16::from(c.get(1).copied().unwrap_or(0));
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

/// Whether `expected` (words as written on the paper record, in any grouping
/// and case, or the hex hash) names `hash`.
pub fn matches_words(hash: &str, expected: &str) -> bool {
    let norm = |s: &str| -> Vec<String> {
        s.split(|c: char| c.is_whitespace() || c == '-').filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect()
    };
    let given = norm(expected);
    given == norm(&words(hash)) || given == [hash.to_ascii_lowercase()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(dir: &Path) -> (PathBuf, String) {
        let p = dir.join("t.jsonl");
        let mut t = Transcript::create(&p, b"script").unwrap();
        t.append("init card", "alice", serde_json::json!({"serial": "DEEM1"})).unwrap();
        t.append("keygen", "bob", serde_json::json!({"key_tag": 12345})).unwrap();
        let last = t.close(End::Complete, serde_json::json!({})).unwrap();
        (p, last)
    }

    fn broken_at(r: Result<Verified, TranscriptError>) -> (usize, String) {
        match r {
            Err(TranscriptError::Broken { line, reason, .. }) => (line, reason),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn chain_verifies_and_any_change_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let (p, last) = closed(dir.path());
        let v = verify(&p, b"script").unwrap();
        assert_eq!(v.entries.len(), 3);
        assert_eq!(v.final_hash, last);
        assert_eq!(v.end, End::Complete);
        assert_eq!(v.entries[0].version, Some(FORMAT_VERSION));
        assert!(matches!(verify(&p, b"other script"), Err(TranscriptError::Broken { line: 1, .. })));
        let good = std::fs::read(&p).unwrap();
        let mut bytes = good.clone();
        let at = bytes.windows(5).position(|w| w == b"12345").unwrap();
        bytes[at] = b'9';
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(broken_at(verify(&p, b"script")).0, 2);
        assert!(Transcript::create(&p, b"x").is_err(), "never overwrites");
    }

    #[test]
    fn the_bytes_on_disk_are_hashed() {
        // Each of these parses to the same entry as before, so a hash over
        // re-serialised JSON would not see them.
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = closed(dir.path());
        let good = String::from_utf8(std::fs::read(&p).unwrap()).unwrap();
        for edited in [
            good.replacen("\"key_tag\":12345", "\"key_tag\": 12345", 1),
            good.replacen("\"key_tag\":12345", "\"key_tag\":12345.0", 1),
            good.replacen("{\"key_tag\":12345}", "{\"key_tag\":12345,\"key_tag\":12345}", 1),
            good.replacen("\"serial\":\"DEEM1\"", "\"serial\":\"\\u0044EEM1\"", 1),
        ] {
            assert_ne!(edited, good);
            std::fs::write(&p, &edited).unwrap();
            let (line, reason) = broken_at(verify(&p, b"script"));
            assert!(line <= 2, "{edited}: line {line}: {reason}");
        }
    }

    #[test]
    fn truncated_empty_and_unclosed_transcripts_are_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = closed(dir.path());
        let good = std::fs::read(&p).unwrap();

        // The last line cut short.
        std::fs::write(&p, &good[..good.len() - 10]).unwrap();
        let (line, reason) = broken_at(verify(&p, b"script"));
        assert_eq!(line, 3);
        assert!(reason.contains("incomplete"), "{reason}");

        // The last entry (the closing one) removed.
        let without_last = good[..good.len() - 1].rsplitn(2, |b| *b == b'\n').nth(1).unwrap();
        let mut cut = without_last.to_vec();
        cut.push(b'\n');
        std::fs::write(&p, &cut).unwrap();
        let e = verify(&p, b"script").unwrap_err();
        assert!(matches!(e, TranscriptError::Incomplete { lines: 2, .. }), "{e}");
        assert!(e.to_string().contains("incomplete: no closing entry"), "{e}");

        // Empty.
        std::fs::write(&p, b"").unwrap();
        let e = verify(&p, b"script").unwrap_err();
        assert!(matches!(e, TranscriptError::Empty { .. }) && e.to_string().contains("empty"), "{e}");

        // Never closed (a killed run).
        let q = dir.path().join("killed.jsonl");
        let mut t = Transcript::create(&q, b"script").unwrap();
        t.append("ceremony started", "operator", serde_json::json!({})).unwrap();
        assert!(matches!(verify(&q, b"script"), Err(TranscriptError::Incomplete { lines: 1, .. })));

        // A line after the closing entry.
        let mut more = good.clone();
        more.extend_from_slice(&good[..good.iter().position(|b| *b == b'\n').unwrap() + 1]);
        std::fs::write(&p, &more).unwrap();
        let (line, reason) = broken_at(verify(&p, b"script"));
        assert_eq!(line, 4, "{reason}");
    }

    #[test]
    fn an_aborted_ceremony_is_closed_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let mut t = Transcript::create(&p, b"script").unwrap();
        t.append("FAILED: init", "operator", serde_json::json!({"error": "no card"})).unwrap();
        t.close(End::Aborted, serde_json::json!({"failed_step": 1})).unwrap();
        assert!(t.append("more", "operator", serde_json::json!(null)).is_err(), "closed");
        assert_eq!(verify(&p, b"script").unwrap().end, End::Aborted);
    }

    #[test]
    fn versions() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = closed(dir.path());
        let good = String::from_utf8(std::fs::read(&p).unwrap()).unwrap();
        std::fs::write(&p, good.replacen("{\"version\":1,", "{\"version\":2,", 1)).unwrap();
        let e = verify(&p, b"script").unwrap_err();
        assert!(e.to_string().contains("format version 2 is not known"), "{e}");
        std::fs::write(&p, good.replacen("{\"version\":1,", "{", 1)).unwrap();
        let e = verify(&p, b"script").unwrap_err();
        assert!(e.to_string().contains("no format version"), "{e}");
    }

    #[test]
    fn proquints() {
        // The proquint specification's examples: 127.0.0.1 is lusab-babad.
        assert_eq!(words("7f000001"), "lusab-babad");
        assert_eq!(words("3f54dcc1"), "gutih-tugad");
        let h = "7f0000013f54dcc1";
        assert!(matches_words(h, "lusab-babad-gutih-tugad"));
        assert!(matches_words(h, "  LUSAB babad\ngutih-tugad "));
        assert!(matches_words(h, h));
        assert!(!matches_words(h, "lusab-babad-gutih-tugaf"));
        assert!(!matches_words(h, "lusab-babad-gutih"));
        assert!(!matches_words(h, ""));
    }
}
