//! Writing results: atomic files, progress bars, JSON.

use super::{CliError, Exit};
use std::io::Write;
use std::path::Path;

/// Writes a signed zone through the project's one atomic-write helper: an
/// existing file keeps its mode and group, a new one is 0644 (less the umask)
/// so that a name server running as another user can read it. On any failure
/// the old file stays as it was.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), CliError> {
    hwsigner::atomic_file::write(path, hwsigner::atomic_file::Kind::Public, fill).map_err(|e| CliError::new(Exit::Output, e.to_string()))
}

/// Whether log lines on standard error get ANSI colours: only on a terminal
/// (never in a file, a pipe or journald), and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    /// A bar if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        use std::io::IsTerminal;
        if enabled && std::io::stderr().is_terminal() {
            let pb = indicatif::ProgressBar::new(0);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} signing [{bar:40}] {pos}/{len} signatures ({per_sec}, {eta} left)")
            {
                pb.set_style(style.progress_chars("=> "));
            }
            Bar(Some(pb))
        } else {
            Bar(None)
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl hwsigner::dnssec::Progress for Bar {
    fn start(&self, total: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(total);
        }
    }
    fn advance(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(n);
        }
    }
}

/// Prints a value as JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::new(Exit::Internal, e.to_string()))?;
    println!("{s}");
    Ok(())
}
