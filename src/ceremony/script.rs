//! Ceremony scripts: TOML files in `ceremony/` that list the steps of a real
//! ceremony, who performs each, and what they type. `hwsigner ceremony run`
//! walks the people through them and records every step in the transcript.
//!
//! Values in braces (`{card1}`) are variables: from the script's `[vars]`,
//! from `--set name=value`, or asked for when first needed. Variables are
//! never secrets (PINs and passwords are asked for without echo by the steps
//! that need them), so the transcript records them; a `--set` name that looks
//! like a secret is refused.
//!
//! Scripts carry `version = 1` ([`SCRIPT_VERSION`]); a script without one is
//! read as version 1 (the format had no other version before), with a notice.

use super::ops::{self, CeremonyError};
use super::transcript::{End, Transcript, TranscriptError, words};
use crate::dns::algorithm::Algorithm;
use crate::secret::{Prompter, Secret, SecretError};
use crate::sign::Role;
use crate::smartcard::shamir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The ceremony script format this code reads.
pub const SCRIPT_VERSION: u32 = 1;

/// Script errors, naming the script and step.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script could not be read or parsed.
    #[error("{path}: {message}")]
    Parse {
        /// The script.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A step failed; the steps before it are in the transcript.
    #[error("step {step} ({title}): {source}")]
    Step {
        /// Step number from 1.
        step: usize,
        /// Its title.
        title: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The transcript could not be written.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// A `--set` variable is refused.
    #[error("--set {name}: {reason}")]
    Set {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
}

/// One step.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Show the cards present.
    List,
    /// Ask the actor to confirm something (type "yes").
    Confirm {
        /// What to confirm.
        text: String,
    },
    /// Initialise a card.
    Init {
        /// Reader or `serial:S`.
        reader: String,
        /// DKEK shares.
        dkek_shares: Option<u8>,
        /// User PIN retries.
        #[serde(default = "three")]
        retries: u8,
        /// Wipe an initialised card.
        #[serde(default)]
        wipe: bool,
    },
    /// Create a DKEK share file protected by the actor's password.
    DkekShareCreate {
        /// The file.
        file: String,
        /// Card whose random generator makes the share.
        reader: Option<String>,
        /// Split the password "t/n" among officers instead of one password.
        password_shares: Option<String>,
    },
    /// Import a DKEK share; the actor types its password.
    DkekShareImport {
        /// Reader or `serial:S`.
        reader: String,
        /// The file.
        file: String,
        /// Number of password shares to enter (n-of-m), instead of a password.
        password_shares: Option<u32>,
        /// KCV the card must show afterwards (when the DKEK is complete).
        expect_kcv: Option<String>,
    },
    /// Generate a key on a card.
    Keygen {
        /// Reader or `serial:S`.
        reader: String,
        /// Zone.
        zone: String,
        /// ksk, zsk or csk.
        role: String,
        /// Algorithm (8, 10, 13, 14).
        algorithm: String,
        /// RSA bits.
        #[serde(default = "bits")]
        bits: u32,
        /// Label.
        label: String,
    },
    /// Clone a key onto other cards with the same DKEK and prove each clone.
    Clone {
        /// Source reader.
        from: String,
        /// Target readers.
        to: Vec<String>,
        /// Key label or id.
        key: String,
    },
    /// Delete a key (retiring it, or a failed clone).
    Delete {
        /// Reader.
        reader: String,
        /// Key label or id.
        key: String,
    },
}

fn three() -> u8 {
    3
}

fn bits() -> u32 {
    2048
}

/// A step with its title and actor.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Step {
    /// What the people are told.
    pub title: String,
    /// Who acts: an officer, the witness, or the operator.
    pub actor: String,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// A ceremony script.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Format version ([`SCRIPT_VERSION`]); absent in scripts written before versions.
    pub version: Option<u32>,
    /// Title.
    pub title: String,
    /// What the ceremony achieves.
    #[serde(default)]
    pub description: String,
    /// Officers by name.
    #[serde(default)]
    pub officers: Vec<String>,
    /// The witness.
    pub witness: Option<String>,
    /// Variables and their defaults.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The steps.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

impl Script {
    /// Reads a script.
    ///
    /// # Errors
    /// Unreadable file, TOML error, an actor who is not listed.
    pub fn load(path: &Path) -> Result<(Self, Vec<u8>), ScriptError> {
        let parse = |message: String| ScriptError::Parse { path: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|e| parse(e.to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| parse(format!("not UTF-8 text ({e})")))?;
        // The version is read first, so that a newer script is refused for
        // its version rather than for the keys this code does not know.
        let raw: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        match raw.get("version") {
            None => {}
            Some(toml::Value::Integer(v)) if *v == i64::from(SCRIPT_VERSION) => {}
            Some(v) => {
                return Err(parse(format!(
                    "script format version {v} is not known to this hwsigner (it reads version {SCRIPT_VERSION}); use the hwsigner the script was written for"
                )));
            }
        }
        let script: Script = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        // serde cannot refuse unknown keys through a flattened, tagged enum, so
        // a misspelt key (which would silently fall back to a default) is caught here.
        let steps = match raw.get("step") {
            Some(toml::Value::Array(a)) => a.as_slice(),
            // The typed parse above requires `step`, so this is not reached; no steps then.
            _ => &[],
        };
        for (i, st) in steps.iter().enumerate() {
            let Some(t) = st.as_table() else { continue };
            // The typed parse above refused a step without a known action.
            let action = t.get("action").and_then(toml::Value::as_str).unwrap_or_default();
            let allowed: &[&str] = match action {
                "list" => &[],
                "confirm" => &["text"],
                "init" => &["reader", "dkek_shares", "retries", "wipe"],
                "dkek-share-create" => &["file", "reader", "password_shares"],
                "dkek-share-import" => &["reader", "file", "password_shares", "expect_kcv"],
                "keygen" => &["reader", "zone", "role", "algorithm", "bits", "label"],
                "clone" => &["from", "to", "key"],
                "delete" => &["reader", "key"],
                _ => &[],
            };
            if let Some(k) = t.keys().find(|k| !["title", "actor", "action"].contains(&k.as_str()) && !allowed.contains(&k.as_str())) {
                return Err(ScriptError::Parse {
                    path: path.to_path_buf(),
                    message: format!("step {}: unknown key '{k}' for action '{action}'", i + 1),
                });
            }
        }
        for (i, s) in script.steps.iter().enumerate() {
            let known = s.actor == "operator" || script.officers.contains(&s.actor) || script.witness.as_deref() == Some(s.actor.as_str());
            if !known {
                return Err(ScriptError::Parse {
                    path: path.to_path_buf(),
                    message: format!(
                        "step {} ({}): actor '{}' is neither an officer, the witness nor the operator",
                        i + 1,
                        s.title,
                        s.actor
                    ),
                });
            }
        }
        Ok((script, bytes))
    }
}

struct Runner<'a> {
    vars: BTreeMap<String, String>,
    /// Variables asked for during the current step, recorded with its output.
    asked: BTreeMap<String, String>,
    /// KCVs of the DKEK shares imported into each card (by reader) in this ceremony.
    shares: BTreeMap<String, Vec<[u8; 8]>>,
    prompter: &'a mut Prompter,
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

impl Runner<'_> {
    fn expand(&mut self, s: &str) -> Result<String, SecretError> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else { break };
            let name = &rest[start + 1..start + end];
            let value = match self.vars.get(name) {
                Some(v) => v.clone(),
                None => {
                    let v = self.prompter.answer(&format!("value for {name}"))?;
                    self.vars.insert(name.to_owned(), v.clone());
                    self.asked.insert(name.to_owned(), v.clone());
                    v
                }
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn reader(&mut self, spec: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let s = self.expand(spec).map_err(boxed)?;
        ops::resolve_reader(&s).map_err(boxed)
    }

    fn secret(&mut self, actor: &str, what: &str) -> Result<Secret, Box<dyn std::error::Error + Send + Sync>> {
        self.prompter.secret(&format!("[{actor}] {what}")).map_err(boxed)
    }

    fn run(&mut self, step: &Step) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let actor = step.actor.as_str();
        Ok(match &step.action {
            Action::List => {
                let mut cards = Vec::new();
                for (r, c) in ops::list().map_err(boxed)? {
                    cards.push(match c {
                        Ok(c) => json(&c)?,
                        Err(e) => serde_json::json!({ "reader": r, "card": e.to_string() }),
                    });
                }
                serde_json::Value::Array(cards)
            }
            Action::Confirm { text } => {
                let text = self.expand(text).map_err(boxed)?;
                eprintln!("{text}");
                let a = self.prompter.answer(&format!("[{actor}] type yes to confirm")).map_err(boxed)?;
                if a != "yes" {
                    return Err(boxed(CeremonyError::Refused(format!("{actor} did not confirm"))));
                }
                serde_json::json!({ "confirmed": text })
            }
            Action::Init { reader, dkek_shares, retries, wipe } => {
                let reader = self.reader(reader)?;
                let so = self.secret(actor, &format!("SO-PIN for the card in {reader} (16 hex digits)"))?;
                let pin = self.prompter.new_secret(&format!("[{actor}] new user PIN for the card in {reader}")).map_err(boxed)?;
                let report = ops::init(&reader, &so, &pin, *retries, *dkek_shares, *wipe).map_err(boxed)?;
                // A new DKEK begins: shares imported before are no longer in this card.
                self.shares.remove(&reader);
                json(&report)?
            }
            Action::DkekShareCreate { file, reader, password_shares } => {
                let file = PathBuf::from(self.expand(file).map_err(boxed)?);
                let reader = match reader {
                    Some(r) => Some(self.reader(r)?),
                    None => None,
                };
                match password_shares {
                    None => {
                        let pw =
                            self.prompter.new_secret(&format!("[{actor}] password for DKEK share {}", file.display())).map_err(boxed)?;
                        let kcv = ops::create_share(&file, pw.expose().as_bytes(), reader.as_deref()).map_err(boxed)?;
                        serde_json::json!({ "file": file.display().to_string(), "protection": "password", "share_kcv": data_encoding::HEXUPPER.encode(&kcv), "random": random_source(reader.as_deref()) })
                    }
                    Some(tn) => {
                        let (t, n) = parse_tn(tn).map_err(boxed)?;
                        let pw = shamir::new_password().map_err(boxed)?;
                        let shares = shamir::split(&pw, t, n).map_err(boxed)?;
                        let kcv = ops::create_share(&file, &pw, reader.as_deref()).map_err(boxed)?;
                        for s in &shares {
                            eprintln!(
                                "--- password share {} of {n} (threshold {t}): hand to its officer, then clear the screen ---\n{s}",
                                s.id
                            );
                            self.prompter.answer("press enter when the share has been written down").map_err(boxed)?;
                        }
                        serde_json::json!({ "file": file.display().to_string(), "protection": format!("{t} of {n} password shares"), "prime": shares.first().map(shamir::PasswordShare::prime_hex), "share_kcv": data_encoding::HEXUPPER.encode(&kcv), "random": random_source(reader.as_deref()) })
                    }
                }
            }
            Action::DkekShareImport { reader, file, password_shares, expect_kcv } => {
                let reader = self.reader(reader)?;
                let file = PathBuf::from(self.expand(file).map_err(boxed)?);
                let want = match expect_kcv {
                    Some(w) => Some(self.expand(w).map_err(boxed)?),
                    None => None,
                };
                // No entry: no share has gone into this card during this ceremony.
                let known = self.shares.get(&reader).cloned().unwrap_or_default();
                let imported = match password_shares {
                    None => {
                        let pw = self.secret(actor, &format!("password of DKEK share {}", file.display()))?;
                        ops::import_share(&reader, &file, pw.expose().as_bytes(), want.as_deref(), &known).map_err(boxed)?
                    }
                    Some(k) => {
                        let mut shares = Vec::new();
                        for i in 1..=*k {
                            let prime = self.prompter.answer(&format!("[{actor}] share {i}: prime")).map_err(boxed)?;
                            let id = self.prompter.answer(&format!("[{actor}] share {i}: share ID")).map_err(boxed)?;
                            let value = self.secret(actor, &format!("share {i}: share value"))?;
                            shares.push(shamir::PasswordShare::parse(&prime, &id, value.expose()).map_err(boxed)?);
                        }
                        let pw = shamir::combine(&shares).map_err(boxed)?;
                        ops::import_share(&reader, &file, &pw, want.as_deref(), &known).map_err(boxed)?
                    }
                };
                self.shares.entry(reader.clone()).or_default().push(imported.share_kcv);
                let status = imported.status;
                let kcv = data_encoding::HEXUPPER.encode(&status.kcv);
                if status.outstanding == 0 {
                    self.vars.entry("kcv".into()).or_insert_with(|| kcv.clone());
                }
                serde_json::json!({ "reader": reader, "share_kcv": data_encoding::HEXUPPER.encode(&imported.share_kcv), "dkek_total": status.total, "dkek_outstanding": status.outstanding, "kcv": if status.outstanding == 0 { kcv } else { String::new() } })
            }
            Action::Keygen { reader, zone, role, algorithm, bits, label } => {
                let reader = self.reader(reader)?;
                let zone = self.expand(zone).map_err(boxed)?;
                let zone = if zone.ends_with('.') { zone } else { format!("{zone}.") };
                let wire = crate::dns::name::parse_name(zone.as_bytes(), None).map_err(boxed)?;
                let role =
                    Role::parse(role).ok_or_else(|| boxed(CeremonyError::Refused(format!("role '{role}' is not ksk, zsk or csk"))))?;
                let alg = Algorithm::parse(&self.expand(algorithm).map_err(boxed)?)
                    .ok_or_else(|| boxed(CeremonyError::Refused(format!("unknown algorithm '{algorithm}'"))))?;
                let label = self.expand(label).map_err(boxed)?;
                let pin = self.secret(actor, &format!("user PIN of the card in {reader}"))?;
                let k = ops::keygen(&reader, &pin, &wire, &zone, role, alg, *bits, &label).map_err(boxed)?;
                self.vars.insert("key_tag".into(), k.key_tag.to_string());
                json(&k)?
            }
            Action::Clone { from, to, key } => {
                let from = self.reader(from)?;
                let mut targets = Vec::new();
                for t in to {
                    targets.push(self.reader(t)?);
                }
                let key = self.expand(key).map_err(boxed)?;
                let id = ops::key_id(&from, &key).map_err(boxed)?;
                let mut pins = Vec::new();
                for r in std::iter::once(&from).chain(&targets) {
                    pins.push((r.clone(), self.secret(actor, &format!("user PIN of the card in {r}"))?));
                }
                let mut lookup = |r: &str| -> Result<Secret, CeremonyError> {
                    pins.iter()
                        .find(|(n, _)| n == r)
                        .map(|(_, p)| p.clone())
                        .ok_or_else(|| CeremonyError::Refused(format!("no PIN for {r}")))
                };
                json(&ops::clone_key(&from, &mut lookup, &targets, id).map_err(boxed)?)?
            }
            Action::Delete { reader, key } => {
                let reader = self.reader(reader)?;
                let key = self.expand(key).map_err(boxed)?;
                let id = ops::key_id(&reader, &key).map_err(boxed)?;
                let pin = self.secret(actor, &format!("user PIN of the card in {reader}"))?;
                ops::delete(&reader, &pin, id).map_err(boxed)?;
                serde_json::json!({ "reader": reader, "deleted": key, "id": id })
            }
        })
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    serde_json::to_value(v).map_err(boxed)
}

fn random_source(reader: Option<&str>) -> String {
    match reader {
        Some(r) => format!("the card in {r} mixed with the host's"),
        None => "the host's".into(),
    }
}

/// Parts of names that mark a secret; such values belong at a prompt without echo.
const SECRET_WORDS: &[&str] = &["pin", "password", "passwd", "passphrase", "pwd", "secret", "share_value", "sharevalue"];

/// Refuses a `--set` name that looks like a secret: its value would be on the
/// command line (visible to every user in the process list, kept in shell
/// history) and in the transcript.
///
/// # Errors
/// [`ScriptError::Set`].
pub fn check_set_name(name: &str) -> Result<(), ScriptError> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(ScriptError::Set { name: name.to_owned(), reason: "a variable name is letters, digits, '_' and '-'".into() });
    }
    if let Some(w) = SECRET_WORDS.iter().find(|w| lower.contains(*w)) {
        return Err(ScriptError::Set {
            name: name.to_owned(),
            reason: format!(
                "the name looks like a secret (it contains '{w}'); PINs, passwords and shares are typed at the prompt without echo, never given on the command line, and --set values are recorded in the transcript"
            ),
        });
    }
    Ok(())
}

/// A step's output as indented `name: value` lines, for the people in the room.
pub fn human(v: &serde_json::Value) -> String {
    fn go(v: &serde_json::Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        serde_json::Value::Object(_) | serde_json::Value::Array(_) if !is_empty(x) => {
                            out.push_str(&format!("{pad}{}:\n", k.replace('_', " ")));
                            go(x, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{pad}{}: {}\n", k.replace('_', " "), scalar(x))),
                    }
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    match x {
                        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                            out.push_str(&format!("{pad}-\n"));
                            go(x, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(x))),
                    }
                }
            }
            x => out.push_str(&format!("{pad}{}\n", scalar(x))),
        }
    }
    fn is_empty(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    fn scalar(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) if s.is_empty() => "-".into(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => "none".into(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    go(v, 2, &mut out);
    out
}

/// Parses "t/n".
///
/// # Errors
/// Anything else.
pub fn parse_tn(s: &str) -> Result<(u32, u32), CeremonyError> {
    let bad = || CeremonyError::Refused(format!("'{s}' is not THRESHOLD/TOTAL, e.g. 2/3"));
    let (t, n) = s.split_once('/').ok_or_else(bad)?;
    Ok((t.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?))
}

/// Runs a script, writing the transcript; returns the final hash.
///
/// # Errors
/// The first step that fails (earlier steps stay recorded), transcript errors.
pub fn run(path: &Path, transcript: &Path, sets: &[(String, String)], prompter: &mut Prompter) -> Result<String, ScriptError> {
    let (script, bytes) = Script::load(path)?;
    let mut vars = script.vars.clone();
    let mut set = BTreeMap::new();
    for (k, v) in sets {
        check_set_name(k)?;
        vars.insert(k.clone(), v.clone());
        set.insert(k.clone(), v.clone());
    }
    let mut t = Transcript::create(transcript, &bytes)?;
    eprintln!("== {}\n{}", script.title, script.description);
    if script.version.is_none() {
        eprintln!("note: {} has no `version`; read as version {SCRIPT_VERSION}, the only version there has been", path.display());
    }
    t.append(
        "ceremony started",
        "operator",
        serde_json::json!({
            "script": path.display().to_string(),
            // A version-less script is read as version 1 (see the module docs); recorded as such.
            "script_version": script.version.unwrap_or(SCRIPT_VERSION),
            "script_version_given": script.version.is_some(),
            "title": script.title,
            "officers": script.officers,
            "witness": script.witness,
            "set": set,
        }),
    )?;
    let mut runner = Runner { vars, asked: BTreeMap::new(), shares: BTreeMap::new(), prompter };
    let total = script.steps.len();
    for (i, step) in script.steps.iter().enumerate() {
        eprintln!("\n== step {}/{total}: {} ({})", i + 1, step.title, step.actor);
        let result = runner.run(step);
        let asked = std::mem::take(&mut runner.asked);
        let with_asked = |v: serde_json::Value| {
            if asked.is_empty() {
                return v;
            }
            match v {
                serde_json::Value::Object(mut m) => {
                    m.insert("variables_asked".into(), serde_json::json!(asked));
                    serde_json::Value::Object(m)
                }
                other => serde_json::json!({ "result": other, "variables_asked": asked }),
            }
        };
        match result {
            Ok(output) => {
                let output = with_asked(output);
                eprint!("{}", human(&output));
                let h = t.append(&step.title, &step.actor, output)?;
                eprintln!("   recorded, transcript hash {}", &h[..16]);
            }
            Err(source) => {
                let error = source.to_string();
                t.append(&format!("FAILED: {}", step.title), &step.actor, with_asked(serde_json::json!({ "error": error })))?;
                t.close(End::Aborted, serde_json::json!({ "failed_step": i + 1, "title": step.title, "error": error }))?;
                eprintln!("\n== ceremony aborted at step {}; the transcript records it and is closed", i + 1);
                return Err(ScriptError::Step { step: i + 1, title: step.title.clone(), source });
            }
        }
    }
    let last = t.close(End::Complete, serde_json::json!({ "steps": total }))?;
    eprintln!("\n== ceremony complete. Final transcript hash:\n{last}\nwitness, read aloud and write down:\n{}", words(&last));
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Script, ScriptError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, text).unwrap();
        Script::load(&p).map(|(s, _)| s)
    }

    const BODY: &str = "title = \"t\"\n[[step]]\ntitle = \"list\"\nactor = \"operator\"\naction = \"list\"\n";

    #[test]
    fn script_versions() {
        assert_eq!(load(&format!("version = 1\n{BODY}")).unwrap().version, Some(1));
        assert_eq!(load(BODY).unwrap().version, None, "a version-less script is read as version 1");
        let e = load(&format!("version = 2\nnew_key = 1\n{BODY}")).unwrap_err().to_string();
        assert!(e.contains("script format version 2 is not known"), "{e}");
        let e = load(&format!("version = \"1\"\n{BODY}")).unwrap_err().to_string();
        assert!(e.contains("version \"1\" is not known"), "{e}");
    }

    #[test]
    fn every_shipped_script_loads_with_a_version() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremony");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let (s, _) = Script::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(s.version, Some(SCRIPT_VERSION), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 4);
    }

    #[test]
    fn secret_looking_set_names_are_refused() {
        for ok in ["primary", "sharedir", "zone", "kcv", "new-card", "card_2"] {
            assert!(check_set_name(ok).is_ok(), "{ok}");
        }
        for bad in ["pin", "user_PIN", "so-pin", "password", "alice_passwd", "SECRET", "pwd", "share_value", "", "a b"] {
            assert!(check_set_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outputs_are_shown_as_text() {
        let v = serde_json::json!({"serial": "DEEM1", "dkek": {"total": 2, "kcv": "AB"}, "keys": [], "ds": ["a", "b"]});
        let t = human(&v);
        assert!(
            t.contains("  serial: DEEM1\n") && t.contains("  dkek:\n    kcv: AB\n    total: 2\n") && t.contains("  keys: none\n"),
            "{t}"
        );
        assert!(t.contains("  ds:\n    - a\n    - b\n") && !t.contains('{'), "{t}");
    }
}
