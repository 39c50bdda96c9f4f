//! Discovery in a child process.
//!
//! Listing tokens and finding keys means loading the vendor's module, and a
//! module can hang (a stuck `pcscd`, a card that stopped answering) or crash.
//! In the signer's own process a hung call cannot be cancelled and keeps the
//! module's global lock; a crash would end the signer. So the module is only
//! ever loaded in a short-lived child (`hwsigner worker pkcs11-probe`), which
//! is killed when it overruns its deadline. The question and the answer
//! travel as JSON frames over the child's pipes; the PIN, when a listing needs
//! one, goes the same way and never on the command line.

use super::token::{self, Discovery, TokenDesc};
use super::{KeySpec, Pkcs11Error};
use crate::pool::child_env;
use crate::pool::protocol::{json_error, read_frame, secret_json, write_body};
use crate::pool::worker::{harden, unbuffered_stdin};
use crate::secret::Secret;
use std::borrow::Cow;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use zeroize::Zeroizing;

/// What the child is asked.
#[derive(serde::Serialize, serde::Deserialize)]
enum Query {
    /// Find the tokens holding a key (public objects, no login).
    FindKey(KeySpec),
    /// Describe every token, logging in first when a PIN is given.
    ListTokens {
        /// The module.
        module: PathBuf,
        /// The user PIN.
        pin: Option<Zeroizing<String>>,
    },
}

/// What the child answers.
#[derive(serde::Serialize, serde::Deserialize)]
enum Answer {
    /// Tokens holding the key, and every reader.
    Found(Discovery),
    /// Every token.
    Tokens(Vec<TokenDesc>),
}

/// Finds the tokens that hold `spec`'s key, in a child process of `program`.
///
/// # Errors
/// What discovery found wrong, or [`Pkcs11Error::Timeout`] / [`Pkcs11Error::Crashed`].
pub fn find_key(program: &Path, spec: &KeySpec, limit: Duration) -> Result<Discovery, Pkcs11Error> {
    match ask(program, &spec.module, &Query::FindKey(spec.clone()), limit, "listing tokens and keys")? {
        Answer::Found(found) => Ok(found),
        Answer::Tokens(_) => Err(protocol_error(&spec.module, "an answer to another question")),
    }
}

/// Describes every token of `module`, in a child process of `program`.
///
/// # Errors
/// What listing found wrong, or [`Pkcs11Error::Timeout`] / [`Pkcs11Error::Crashed`].
pub fn list_tokens(program: &Path, module: &Path, pin: Option<&Secret>, limit: Duration) -> Result<Vec<TokenDesc>, Pkcs11Error> {
    let query = Query::ListTokens { module: module.to_path_buf(), pin: pin.map(|p| Zeroizing::new(p.expose().to_owned())) };
    match ask(program, module, &query, limit, "listing tokens")? {
        Answer::Tokens(tokens) => Ok(tokens),
        Answer::Found(_) => Err(protocol_error(module, "an answer to another question")),
    }
}

fn protocol_error(module: &Path, detail: &str) -> Pkcs11Error {
    Pkcs11Error::Module { path: module.to_path_buf(), detail: format!("discovery process: {detail}") }
}

fn ask(program: &Path, module: &Path, query: &Query, limit: Duration, what: &'static str) -> Result<Answer, Pkcs11Error> {
    let frame = secret_json(query).map_err(|e| protocol_error(module, &e))?;
    let mut child = child_env::clean(&mut Command::new(program))
        .args(["worker", "pkcs11-probe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| protocol_error(module, &format!("cannot start {}: {e}", program.display())))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        reap(&mut child, true);
        return Err(protocol_error(module, "pipes missing"));
    };
    let (tx, rx) = std::sync::mpsc::channel();
    // The exchange runs on a thread so that this one can keep the deadline;
    // killing the child ends the thread's blocked read.
    std::thread::spawn(move || {
        let result = (|| -> io::Result<Option<Zeroizing<Vec<u8>>>> {
            // Unbuffered: a buffer would keep a copy of the PIN.
            let mut w = stdin;
            write_body(&mut w, &frame)?;
            drop(w);
            read_frame(&mut BufReader::new(stdout))
        })();
        let _ = tx.send(result);
    });
    let reply = match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(_) => {
            reap(&mut child, true);
            tracing::warn!(module = %module.display(), seconds = limit.as_secs(), what, "PKCS#11 module did not answer; discovery process killed");
            return Err(Pkcs11Error::Timeout { path: module.to_path_buf(), seconds: limit.as_secs(), what: Cow::Borrowed(what) });
        }
    };
    let status = reap(&mut child, false);
    match reply {
        Ok(Some(body)) => {
            serde_json::from_slice::<Result<Answer, Pkcs11Error>>(&body).map_err(|e| protocol_error(module, &json_error(&e)))?
        }
        Ok(None) | Err(_) => Err(Pkcs11Error::Crashed { path: module.to_path_buf(), what: Cow::Borrowed(what), status }),
    }
}

/// Waits for the child (killing it first if asked) and describes how it ended.
fn reap(child: &mut Child, kill: bool) -> String {
    if kill {
        let _ = child.kill();
    }
    match child.wait() {
        Ok(s) => describe_exit(s),
        Err(e) => format!("exit status unknown: {e}"),
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(6)) => "aborted, signal 6".to_owned(),
        (None, Some(11)) => "segmentation fault, signal 11".to_owned(),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "ended".to_owned(),
    }
}

/// Entry point of the discovery process (`hwsigner worker pkcs11-probe`):
/// one question on standard input, one answer on standard output.
///
/// # Errors
/// Pipe failures or an unreadable question.
pub fn probe_main() -> io::Result<()> {
    // The question may carry the PIN: no core dump, no copy in a buffer.
    harden()?;
    let Some(frame) = read_frame(&mut unbuffered_stdin()?)? else { return Ok(()) };
    let query: Query = serde_json::from_slice(&frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, json_error(&e)))?;
    drop(frame);
    let answer = match query {
        Query::FindKey(spec) => token::find_key_on_tokens(&spec).map(Answer::Found),
        Query::ListTokens { module, pin } => {
            let pin = pin.map(|mut p| Secret::new(std::mem::take(&mut *p)));
            token::open_module(&module).and_then(|ctx| token::list_tokens(&ctx, pin.as_ref())).map(Answer::Tokens)
        }
    };
    let body = serde_json::to_vec(&answer).map_err(io::Error::other)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write_body(&mut out, &body)
}
