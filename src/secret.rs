//! PINs and passwords: where they come from and how they are held.
//!
//! A secret is never taken from the command line (it would show in `ps` and in
//! shell history), never logged, and never part of an error message. It is read
//! from a file, an environment variable or a prompt on the terminal, and held in
//! a [`Zeroizing`] buffer so that it is wiped when dropped.

use std::path::PathBuf;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Names of the environment variables secrets were read from in this process.
/// Child processes must not inherit them (`/proc/PID/environ` and `execve`
/// traces show a child's environment): every place that starts a child
/// removes these names, see [`secret_env_vars`].
static SECRET_ENV_VARS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_secret_env(var: &str) {
    let mut vars = SECRET_ENV_VARS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !vars.iter().any(|v| v == var) {
        vars.push(var.to_owned());
    }
}

/// The environment variables a secret has been read from so far in this
/// process (by [`SecretSource::read`]), for removal from children's environments.
pub fn secret_env_vars() -> Vec<String> {
    SECRET_ENV_VARS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// A secret held in memory that is wiped on drop. Its `Debug` form is redacted.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret (trailing newlines are removed: files and prompts add them).
    pub fn new(mut s: String) -> Self {
        while s.ends_with('\n') || s.ends_with('\r') {
            s.pop();
        }
        Secret(Zeroizing::new(s))
    }

    /// The secret text, for handing to a device.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secret bytes (a DKEK share, the data of an APDU that carries a PIN, a line
/// of a private key file): wiped on drop, and `Debug` shows only the length.
/// `Zeroizing<Vec<u8>>` alone would print the bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes (no copy is left behind).
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(v))
    }

    /// A copy of `b` in wiped memory.
    pub fn copy_from(b: &[u8]) -> Self {
        SecretBytes(Zeroizing::new(b.to_vec()))
    }

    /// The bytes, for handing to a device or a cipher.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as a slice (as `Vec::as_slice`).
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Appends bytes. Growing moves the bytes to a new wiped buffer and wipes
    /// the old one (a plain `Vec` would free it with the secret in it).
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        if self.0.capacity() - self.0.len() < b.len() {
            let mut grown = Zeroizing::new(Vec::with_capacity((self.0.len() + b.len()).max(2 * self.0.capacity())));
            grown.extend_from_slice(&self.0);
            self.0 = grown;
        }
        self.0.extend_from_slice(b);
    }

    /// An empty buffer that can take `n` bytes without moving them.
    pub fn with_capacity(n: usize) -> Self {
        SecretBytes(Zeroizing::new(Vec::with_capacity(n)))
    }

    /// Shortens the buffer (the bytes cut off are wiped on drop with the rest).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.0.len());
        zeroize::Zeroize::zeroize(&mut self.0[n..]);
        self.0.truncate(n);
    }
}

impl std::ops::Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Formatting into wiped memory (`write!(bytes, ..)`): the text of a private
/// key file is built this way, with no temporary `String` left unwiped.
impl std::fmt::Write for SecretBytes {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl zeroize::Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// The first line of a file (keep it mode 0600).
    File(PathBuf),
    /// An environment variable (for systemd `LoadCredential`/`Environment` and tests).
    Env(String),
    /// A prompt on the controlling terminal, without echo.
    Prompt(String),
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read the secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The variable is not set or not UTF-8.
    #[error("environment variable {0} is not set")]
    Env(String),
    /// No terminal to prompt on, or reading failed.
    #[error("cannot prompt for {what} (no terminal? use a file or an environment variable): {source}")]
    Prompt {
        /// What was asked for.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is empty.
    #[error("the {0} is empty")]
    Empty(String),
    /// Two entries of a new secret differ.
    #[error("the two entries of the {0} differ")]
    Mismatch(String),
}

impl SecretSource {
    /// Reads the secret.
    ///
    /// # Errors
    /// See [`SecretError`].
    pub fn read(&self) -> Result<Secret, SecretError> {
        let (secret, what) = match self {
            SecretSource::File(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|source| SecretError::File { path: path.clone(), source })?);
                let first = text.lines().next().unwrap_or("").to_owned();
                (Secret::new(first), format!("secret in {}", path.display()))
            }
            SecretSource::Env(var) => {
                // Recorded before reading: even a variable that turns out
                // empty or unreadable was meant to hold a secret.
                record_secret_env(var);
                let v = std::env::var(var).map_err(|_| SecretError::Env(var.clone()))?;
                (Secret::new(v), format!("secret in ${var}"))
            }
            SecretSource::Prompt(what) => {
                let v =
                    rpassword::prompt_password(format!("{what}: ")).map_err(|source| SecretError::Prompt { what: what.clone(), source })?;
                (Secret::new(v), what.clone())
            }
        };
        if secret.expose().is_empty() {
            return Err(SecretError::Empty(what));
        }
        Ok(secret)
    }

    /// The source chosen from the usual options: a file, else a variable, else a prompt.
    pub fn choose(file: Option<PathBuf>, env: Option<String>, prompt: &str) -> Self {
        match (file, env) {
            (Some(f), _) => SecretSource::File(f),
            (None, Some(e)) => SecretSource::Env(e),
            (None, None) => SecretSource::Prompt(prompt.to_owned()),
        }
    }
}

/// Asks people for secrets and answers during a ceremony.
///
/// On a terminal it prompts without echo. When standard input is not a
/// terminal (a test harness, an expect script), answers are read from it one
/// per line in the order asked, so they never appear on a command line.
pub struct Prompter {
    lines: Option<std::io::Lines<std::io::StdinLock<'static>>>,
}

impl Default for Prompter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompter {
    /// A prompter on the terminal, or on standard input when that is not a terminal.
    pub fn new() -> Self {
        use std::io::{BufRead, IsTerminal};
        let stdin = std::io::stdin();
        let lines = if stdin.is_terminal() { None } else { Some(stdin.lock().lines()) };
        Prompter { lines }
    }

    fn line(&mut self, prompt: &str, secret: bool) -> Result<String, SecretError> {
        let what = prompt.to_owned();
        match &mut self.lines {
            Some(lines) => {
                eprint!("{prompt}: ");
                let l = lines
                    .next()
                    .unwrap_or_else(|| Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no more answers on standard input")))
                    .map_err(|source| SecretError::Prompt { what, source })?;
                eprintln!("{}", if secret { "(given)" } else { l.as_str() });
                Ok(l)
            }
            None if secret => rpassword::prompt_password(format!("{prompt}: ")).map_err(|source| SecretError::Prompt { what, source }),
            None => {
                eprint!("{prompt}: ");
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map_err(|source| SecretError::Prompt { what, source })?;
                Ok(s)
            }
        }
    }

    /// Asks for a secret (no echo).
    ///
    /// # Errors
    /// No terminal and no more input; an empty answer.
    pub fn secret(&mut self, prompt: &str) -> Result<Secret, SecretError> {
        let s = Secret::new(self.line(prompt, true)?);
        if s.expose().is_empty() {
            return Err(SecretError::Empty(prompt.to_owned()));
        }
        Ok(s)
    }

    /// Asks for a new secret twice; both must match.
    ///
    /// # Errors
    /// The two answers differ, or as [`Prompter::secret`].
    pub fn new_secret(&mut self, prompt: &str) -> Result<Secret, SecretError> {
        let a = self.secret(prompt)?;
        let b = self.secret(&format!("{prompt} (again)"))?;
        if a.expose() != b.expose() {
            return Err(SecretError::Mismatch(prompt.to_owned()));
        }
        Ok(a)
    }

    /// Asks for a visible answer (a share value, a confirmation).
    ///
    /// # Errors
    /// No more input.
    pub fn answer(&mut self, prompt: &str) -> Result<String, SecretError> {
        Ok(self.line(prompt, false)?.trim().to_owned())
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let pin = Secret::new("731904\n".into());
        let bytes = SecretBytes::copy_from(b"731904");
        let shown = format!("{pin:?} {pin:#?} {bytes:?} {bytes:#?}");
        assert!(!shown.contains("731904") && !shown.contains("55, 51"), "{shown}");
        assert!(shown.contains("6 bytes redacted"), "{shown}");
    }

    #[test]
    fn growing_and_formatting_keep_the_content() {
        use std::fmt::Write;
        let mut b = SecretBytes::with_capacity(2);
        b.extend_from_slice(b"ab");
        b.extend_from_slice(b"cdef");
        write!(b, "-{}", 7).unwrap();
        assert_eq!(b.expose(), b"abcdef-7");
        b.truncate(3);
        assert_eq!(b.as_slice(), b"abc");
    }
}
