//! `hwsigner ceremony`: SmartCard-HSM key ceremonies over PC/SC (no OpenSC
//! needed on the ceremony laptop). Secrets are asked for on the terminal, or
//! read line by line from standard input when it is not a terminal; never
//! from the command line.

use super::output::print_json;
use super::{CliError, Exit, zone_wire};
use clap::{Args, Subcommand};
use hwsigner::ceremony::{ops, script, transcript};
use hwsigner::dns::algorithm::Algorithm;
use hwsigner::secret::Prompter;
use hwsigner::sign::Role;
use hwsigner::smartcard::shamir;
use std::path::PathBuf;

/// `hwsigner ceremony` subcommands.
#[derive(Debug, Subcommand)]
pub enum CeremonyCommand {
    /// List readers and cards: serial, state, PIN tries, DKEK status and KCV, keys.
    List(JsonArg),
    /// Initialise a card (SO-PIN, user PIN, retry counter, number of DKEK shares).
    Init(InitArgs),
    /// DKEK shares: create (sc-hsm-tool .pbe format) or import.
    #[command(subcommand)]
    DkekShare(ShareCommand),
    /// Generate a key on a card; prints DNSKEY, key tag and DS.
    Keygen(KeygenArgs),
    /// Wrap a key under the DKEK into a file (sc-hsm-tool --wrap-key format).
    Wrap(WrapArgs),
    /// Unwrap a key file onto a card initialised with the same DKEK.
    Unwrap(UnwrapArgs),
    /// Clone a key onto other cards with the same DKEK and prove each clone by signing.
    Clone(CloneArgs),
    /// Delete a key from a card.
    Delete(KeyArgs),
    /// Change the user PIN.
    ChangePin(ReaderArg),
    /// Unblock the user PIN with the SO-PIN and set a new one.
    Unblock(ReaderArg),
    /// Run a ceremony script from ceremony/, writing a hash-chained transcript.
    Run(RunArgs),
    /// Check a transcript against its script; prints the final hash and its words.
    VerifyTranscript(VerifyArgs),
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// JSON output for scripts.
    #[arg(long)]
    pub json: bool,
}

/// A reader.
#[derive(Debug, Args)]
pub struct ReaderArg {
    /// Reader name, or serial:S for the card with that serial.
    #[arg(short, long)]
    pub reader: String,
}

/// Options of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Number of DKEK shares (officers); 0 lets the card make a random DKEK (no cloning possible).
    #[arg(long)]
    dkek_shares: Option<u8>,
    /// User PIN retry counter (1-10).
    #[arg(long, default_value_t = 3)]
    retries: u8,
    /// Confirm wiping a card that is initialised (all its keys are erased).
    #[arg(long)]
    wipe: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// DKEK share subcommands.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Create a share file protected by a password (or a password split among officers).
    Create {
        /// The share file to write (refuses to overwrite).
        file: PathBuf,
        /// Use this card's random generator.
        #[arg(short, long)]
        reader: Option<String>,
        /// Split the password THRESHOLD/TOTAL among officers (sc-hsm-tool --pwd-shares-*).
        #[arg(long)]
        password_shares: Option<String>,
    },
    /// Import a share into a card; shows the key check value.
    Import {
        /// The share file.
        file: PathBuf,
        #[command(flatten)]
        reader: ReaderArg,
        /// Enter this many password shares instead of the password.
        #[arg(long)]
        password_shares: Option<u32>,
        /// The DKEK key check value the card must end with (hex); for a
        /// single-share DKEK a share for another DKEK is refused before import.
        #[arg(long)]
        expect_kcv: Option<String>,
    },
}

/// Options of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Zone.
    #[arg(short, long)]
    zone: String,
    /// ksk, zsk or csk.
    #[arg(long, default_value = "ksk", value_parser = |s: &str| Role::parse(s).ok_or("ksk, zsk or csk"))]
    role: Role,
    /// 8, 10 (RSA), 13, 14 (ECDSA).
    #[arg(short, long, default_value = "13")]
    algorithm: String,
    /// RSA modulus bits (2048, 3072, 4096).
    #[arg(long, default_value_t = 2048)]
    bits: u32,
    /// Label (what OpenSC and `hwsigner tokens list` show).
    #[arg(short, long)]
    label: String,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Options of `wrap`.
#[derive(Debug, Args)]
pub struct WrapArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Key label or id.
    #[arg(short, long)]
    key: String,
    /// Output file (refuses to overwrite).
    #[arg(short, long)]
    out: PathBuf,
}

/// Options of `unwrap`.
#[derive(Debug, Args)]
pub struct UnwrapArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// The wrapped key file.
    file: PathBuf,
    /// Key id to use (default: the first free one).
    #[arg(short, long)]
    id: Option<u8>,
}

/// Options of `clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Source card: reader or serial:S.
    #[arg(long)]
    from: String,
    /// Target cards (repeat).
    #[arg(long, required = true)]
    to: Vec<String>,
    /// Key label or id.
    #[arg(short, long)]
    key: String,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// A key on a card.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Key label or id.
    #[arg(short, long)]
    key: String,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script (TOML).
    script: PathBuf,
    /// Transcript to write (refuses to overwrite).
    #[arg(short, long)]
    transcript: PathBuf,
    /// Set a script variable: NAME=VALUE (repeat).
    #[arg(long = "set", value_parser = parse_set)]
    sets: Vec<(String, String)>,
}

/// Options of `verify-transcript`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The script the ceremony ran.
    script: PathBuf,
    /// The transcript.
    transcript: PathBuf,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

fn err(e: impl std::fmt::Display) -> CliError {
    CliError::new(Exit::Key, e.to_string())
}

fn show<T: serde::Serialize>(json: bool, v: &T) -> Result<(), CliError> {
    if json {
        print_json(v)
    } else {
        println!("{}", serde_json::to_string_pretty(v).map_err(|e| CliError::new(Exit::Internal, e.to_string()))?);
        Ok(())
    }
}

/// Runs a `ceremony` subcommand.
pub fn run(cmd: CeremonyCommand) -> Result<(), CliError> {
    let mut p = Prompter::new();
    match cmd {
        CeremonyCommand::List(a) => {
            let cards = ops::list().map_err(err)?;
            if a.json {
                let v: Vec<serde_json::Value> = cards
                    .into_iter()
                    .map(|(r, c)| match c {
                        Ok(c) => serde_json::to_value(c).unwrap_or_default(),
                        Err(e) => serde_json::json!({ "reader": r, "card": e.to_string() }),
                    })
                    .collect();
                return print_json(&v);
            }
            for (r, c) in cards {
                match c {
                    Err(e) => println!("{r}: {e}"),
                    Ok(c) => {
                        println!("{r}: SmartCard-HSM serial {}", c.serial);
                        if !c.initialized {
                            println!("  not initialised");
                            continue;
                        }
                        let dk = if c.dkek.total == 0 {
                            "none (no cloning possible)".to_owned()
                        } else if c.dkek.outstanding > 0 {
                            format!("{} of {} shares imported, import pending", c.dkek.total - c.dkek.outstanding, c.dkek.total)
                        } else {
                            format!("complete ({} shares), KCV {}", c.dkek.total, data_encoding::HEXUPPER.encode(&c.dkek.kcv))
                        };
                        println!(
                            "  user PIN tries left {}, SO-PIN tries left {}; DKEK {dk}",
                            c.pin_tries.map_or("-".into(), |n| n.to_string()),
                            c.so_pin_tries.unwrap_or(0)
                        );
                        for k in &c.keys {
                            println!(
                                "  key {} '{}': algorithm {}, key tag {} as KSK/CSK, {} as ZSK",
                                k.id,
                                k.label,
                                k.algorithm.map_or("-".into(), |a| a.to_string()),
                                k.key_tag_ksk.map_or("-".into(), |t| t.to_string()),
                                k.key_tag_zsk.map_or("-".into(), |t| t.to_string())
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        CeremonyCommand::Init(a) => {
            let reader = ops::resolve_reader(&a.reader.reader).map_err(err)?;
            let so = p.secret("SO-PIN (16 hex digits)").map_err(err)?;
            let pin = p.new_secret("new user PIN (6-15 characters)").map_err(err)?;
            let rep = ops::init(&reader, &so, &pin, a.retries, a.dkek_shares, a.wipe).map_err(err)?;
            eprintln!("initialised card {} in {reader}", rep.serial);
            show(a.json, &rep)
        }
        CeremonyCommand::DkekShare(ShareCommand::Create { file, reader, password_shares }) => {
            let reader = reader.map(|r| ops::resolve_reader(&r)).transpose().map_err(err)?;
            match password_shares {
                None => {
                    let pw = p.new_secret("password for the DKEK share").map_err(err)?;
                    eprintln!("enciphering the share (10 million key-derivation rounds, about 10 s)...");
                    ops::create_share(&file, pw.expose().as_bytes(), reader.as_deref()).map_err(err)?;
                }
                Some(tn) => {
                    let (t, n) = script::parse_tn(&tn).map_err(err)?;
                    let pw = shamir::new_password().map_err(err)?;
                    let shares = shamir::split(&pw, t, n).map_err(err)?;
                    ops::create_share(&file, &pw, reader.as_deref()).map_err(err)?;
                    for s in &shares {
                        eprintln!("--- password share {} of {n} (any {t} open the file) ---\n{s}", s.id);
                        p.answer("press enter when this officer has written it down").map_err(err)?;
                    }
                }
            }
            eprintln!("DKEK share written to {} (keep a paper copy: openssl base64 -in {})", file.display(), file.display());
            Ok(())
        }
        CeremonyCommand::DkekShare(ShareCommand::Import { file, reader, password_shares, expect_kcv }) => {
            let reader = ops::resolve_reader(&reader.reader).map_err(err)?;
            let pw = match password_shares {
                None => zeroize::Zeroizing::new(p.secret("password of the DKEK share").map_err(err)?.expose().as_bytes().to_vec()),
                Some(k) => {
                    let mut shares = Vec::new();
                    for i in 1..=k {
                        let prime = p.answer(&format!("share {i}: prime")).map_err(err)?;
                        let id = p.answer(&format!("share {i}: share ID")).map_err(err)?;
                        let value = p.secret(&format!("share {i}: share value")).map_err(err)?;
                        shares.push(shamir::PasswordShare::parse(&prime, &id, value.expose()).map_err(err)?);
                    }
                    shamir::combine(&shares).map_err(err)?
                }
            };
            eprintln!("deciphering the share (about 10 s)...");
            let s = ops::import_share(&reader, &file, &pw, expect_kcv.as_deref()).map_err(err)?;
            if s.outstanding == 0 {
                println!("DKEK complete ({} shares); key check value {}", s.total, data_encoding::HEXUPPER.encode(&s.kcv));
            } else {
                println!("DKEK share imported; {} of {} still missing", s.outstanding, s.total);
            }
            Ok(())
        }
        CeremonyCommand::Keygen(a) => {
            let reader = ops::resolve_reader(&a.reader.reader).map_err(err)?;
            let alg =
                Algorithm::parse(&a.algorithm).ok_or_else(|| CliError::new(Exit::Usage, format!("unknown algorithm '{}'", a.algorithm)))?;
            let zone = if a.zone.ends_with('.') { a.zone.clone() } else { format!("{}.", a.zone) };
            let pin = p.secret("user PIN").map_err(err)?;
            let k = ops::keygen(&reader, &pin, &zone_wire(&zone)?, &zone, a.role, alg, a.bits, &a.label).map_err(err)?;
            if a.json {
                return print_json(&k);
            }
            println!("{}", k.dnskey);
            for d in &k.ds {
                println!("{d}");
            }
            eprintln!("key '{}' (id {}, key tag {}) generated on card {}", k.label, k.id, k.key_tag, k.serial);
            Ok(())
        }
        CeremonyCommand::Wrap(a) => {
            let reader = ops::resolve_reader(&a.reader.reader).map_err(err)?;
            let id = ops::key_id(&reader, &a.key).map_err(err)?;
            let pin = p.secret("user PIN").map_err(err)?;
            let kcv = ops::wrap_to_file(&reader, &pin, id, &a.out).map_err(err)?;
            eprintln!("key {id} wrapped under DKEK {kcv} into {}", a.out.display());
            Ok(())
        }
        CeremonyCommand::Unwrap(a) => {
            let reader = ops::resolve_reader(&a.reader.reader).map_err(err)?;
            let pin = p.secret("user PIN").map_err(err)?;
            let id = ops::unwrap_from_file(&reader, &pin, &a.file, a.id).map_err(err)?;
            eprintln!("key unwrapped onto {reader} as key {id}");
            Ok(())
        }
        CeremonyCommand::Clone(a) => {
            let from = ops::resolve_reader(&a.from).map_err(err)?;
            let to: Vec<String> = a.to.iter().map(|t| ops::resolve_reader(t)).collect::<Result<_, _>>().map_err(err)?;
            let id = ops::key_id(&from, &a.key).map_err(err)?;
            let mut ask =
                |r: &str| p.secret(&format!("user PIN of the card in {r}")).map_err(|e| ops::CeremonyError::Refused(e.to_string()));
            let rep = ops::clone_key(&from, &mut ask, &to, id).map_err(err)?;
            show(a.json, &rep)
        }
        CeremonyCommand::Delete(a) => {
            let reader = ops::resolve_reader(&a.reader.reader).map_err(err)?;
            let id = ops::key_id(&reader, &a.key).map_err(err)?;
            let confirm = p.answer(&format!("type the key label or id '{}' to delete it from {reader}", a.key)).map_err(err)?;
            if confirm != a.key {
                return Err(CliError::new(Exit::Usage, "not confirmed; nothing deleted"));
            }
            let pin = p.secret("user PIN").map_err(err)?;
            ops::delete(&reader, &pin, id).map_err(err)?;
            eprintln!("key {id} deleted from {reader}");
            Ok(())
        }
        CeremonyCommand::ChangePin(a) => {
            let reader = ops::resolve_reader(&a.reader).map_err(err)?;
            let old = p.secret("current user PIN").map_err(err)?;
            let new = p.new_secret("new user PIN").map_err(err)?;
            ops::change_pin(&reader, &old, &new).map_err(err)?;
            eprintln!("user PIN changed");
            Ok(())
        }
        CeremonyCommand::Unblock(a) => {
            let reader = ops::resolve_reader(&a.reader).map_err(err)?;
            let so = p.secret("SO-PIN (16 hex digits)").map_err(err)?;
            let new = p.new_secret("new user PIN").map_err(err)?;
            ops::unblock(&reader, &so, &new).map_err(err)?;
            eprintln!("user PIN unblocked and set");
            Ok(())
        }
        CeremonyCommand::Run(a) => {
            script::run(&a.script, &a.transcript, &a.sets, &mut p).map_err(err)?;
            Ok(())
        }
        CeremonyCommand::VerifyTranscript(a) => {
            let bytes = std::fs::read(&a.script).map_err(|e| CliError::new(Exit::Usage, format!("{}: {e}", a.script.display())))?;
            let (entries, last) =
                transcript::verify(&a.transcript, &bytes).map_err(|e| CliError::new(Exit::BadSignatures, e.to_string()))?;
            println!("transcript intact: {} entries; final hash {last}\n{}", entries.len(), transcript::words(&last));
            Ok(())
        }
    }
}
