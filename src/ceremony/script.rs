//! Ceremony scripts: TOML files in `ceremony/` that list the steps of a real
//! ceremony, who performs each, and what they type. `hwsigner ceremony run`
//! walks the people through them and records every step in the transcript.
//!
//! Values in braces (`{card1}`) are variables: from the script's `[vars]`,
//! from `--set name=value`, or asked for when first needed.

use super::ops::{self, CeremonyError};
use super::transcript::{Transcript, TranscriptError, words};
use crate::dns::algorithm::Algorithm;
use crate::secret::{Prompter, Secret, SecretError};
use crate::sign::Role;
use crate::smartcard::shamir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        let bytes = std::fs::read(path).map_err(|e| ScriptError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let text = String::from_utf8_lossy(&bytes);
        let script: Script = toml::from_str(&text).map_err(|e| ScriptError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        // serde cannot refuse unknown keys through a flattened, tagged enum, so
        // a misspelt key (which would silently fall back to a default) is caught here.
        let raw: toml::Table =
            toml::from_str(&text).map_err(|e| ScriptError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let steps = raw.get("step").and_then(toml::Value::as_array).cloned().unwrap_or_default();
        for (i, st) in steps.iter().enumerate() {
            let Some(t) = st.as_table() else { continue };
            let action = t.get("action").and_then(toml::Value::as_str).unwrap_or("");
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
                let cards: Vec<serde_json::Value> = ops::list()
                    .map_err(boxed)?
                    .into_iter()
                    .map(|(r, c)| match c {
                        Ok(c) => serde_json::to_value(c).unwrap_or_default(),
                        Err(e) => serde_json::json!({ "reader": r, "card": e.to_string() }),
                    })
                    .collect();
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
                json(&ops::init(&reader, &so, &pin, *retries, *dkek_shares, *wipe).map_err(boxed)?)
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
                        ops::create_share(&file, pw.expose().as_bytes(), reader.as_deref()).map_err(boxed)?;
                        serde_json::json!({ "file": file.display().to_string(), "protection": "password" })
                    }
                    Some(tn) => {
                        let (t, n) = parse_tn(tn).map_err(boxed)?;
                        let pw = shamir::new_password().map_err(boxed)?;
                        let shares = shamir::split(&pw, t, n).map_err(boxed)?;
                        ops::create_share(&file, &pw, reader.as_deref()).map_err(boxed)?;
                        for s in &shares {
                            eprintln!(
                                "--- password share {} of {n} (threshold {t}): hand to its officer, then clear the screen ---\n{s}",
                                s.id
                            );
                            self.prompter.answer("press enter when the share has been written down").map_err(boxed)?;
                        }
                        serde_json::json!({ "file": file.display().to_string(), "protection": format!("{t} of {n} password shares"), "prime": shares.first().map(shamir::PasswordShare::prime_hex) })
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
                let status = match password_shares {
                    None => {
                        let pw = self.secret(actor, &format!("password of DKEK share {}", file.display()))?;
                        ops::import_share(&reader, &file, pw.expose().as_bytes(), want.as_deref()).map_err(boxed)?
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
                        ops::import_share(&reader, &file, &pw, want.as_deref()).map_err(boxed)?
                    }
                };
                let kcv = data_encoding::HEXUPPER.encode(&status.kcv);
                if status.outstanding == 0 {
                    self.vars.entry("kcv".into()).or_insert_with(|| kcv.clone());
                }
                serde_json::json!({ "reader": reader, "dkek_total": status.total, "dkek_outstanding": status.outstanding, "kcv": if status.outstanding == 0 { kcv } else { String::new() } })
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
                json(&k)
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
                json(&ops::clone_key(&from, &mut lookup, &targets, id).map_err(boxed)?)
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

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
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
    for (k, v) in sets {
        vars.insert(k.clone(), v.clone());
    }
    let mut t = Transcript::create(transcript, &bytes)?;
    eprintln!("== {}\n{}", script.title, script.description);
    t.append("ceremony started", "operator", serde_json::json!({ "script": path.display().to_string(), "title": script.title, "officers": script.officers, "witness": script.witness }))?;
    let mut runner = Runner { vars, prompter };
    let total = script.steps.len();
    for (i, step) in script.steps.iter().enumerate() {
        eprintln!("\n== step {}/{total}: {} ({})", i + 1, step.title, step.actor);
        match runner.run(step) {
            Ok(output) => {
                eprintln!("{}", serde_json::to_string_pretty(&output).unwrap_or_default());
                let h = t.append(&step.title, &step.actor, output)?;
                eprintln!("   recorded, transcript hash {}", &h[..16]);
            }
            Err(source) => {
                t.append(&format!("FAILED: {}", step.title), &step.actor, serde_json::json!({ "error": source.to_string() }))?;
                return Err(ScriptError::Step { step: i + 1, title: step.title.clone(), source });
            }
        }
    }
    let last = t.last_hash().to_owned();
    eprintln!("\n== ceremony complete. Final transcript hash:\n{last}\nwitness, read aloud and write down:\n{}", words(&last));
    Ok(last)
}
