//! `hwsigner completions SHELL` and `hwsigner man`: shell completions and man
//! pages generated from the clap definitions, so they never drift from the
//! options the program takes. A package build runs them after `cargo build`
//! (e.g. `hwsigner completions bash > debian/hwsigner.bash-completion`,
//! `hwsigner man --dir debian/man`), with no build script and no extra tool.

use super::{CliError, Exit};
use std::path::{Path, PathBuf};

/// Arguments of `hwsigner man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (hwsigner.1, hwsigner-sign.1, ...) into this
    /// directory instead of printing the main page on standard output.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `shell` on standard output.
///
/// # Errors
/// Standard output cannot be written.
pub fn completions(cmd: clap::Command, shell: clap_complete::Shell) -> Result<(), CliError> {
    let name = "hwsigner";
    // Some generators (bash, zsh) offer hidden commands too: the internal
    // worker is left out by rebuilding the top level without it.
    let mut cmd = clap::Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
        .subcommand_required(true);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    print_stdout(&out)
}

/// Prints the man page, or writes every command's page into `--dir`.
///
/// # Errors
/// Standard output or a page cannot be written.
pub fn man(cmd: clap::Command, a: ManArgs) -> Result<(), CliError> {
    match a.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| CliError::new(Exit::Output, format!("man page: {e}")))?;
            print_stdout(&out)
        }
        Some(dir) => write_pages(cmd, &dir),
    }
}

/// One page per command and subcommand, named as `man` looks them up
/// (`hwsigner-keys-generate.1`); hidden commands (the internal worker) get none.
fn write_pages(cmd: clap::Command, dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::new(Exit::Output, format!("{}: {e}", dir.display())))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building gives each subcommand its display name, `hwsigner-sign`.
    cmd.build();
    write_page(&cmd, dir)
}

fn write_page(cmd: &clap::Command, dir: &Path) -> Result<(), CliError> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    hwsigner::atomic_file::write(&path, hwsigner::atomic_file::Kind::Public, |w| man.render(w))
        .map_err(|e| CliError::new(Exit::Output, e.to_string()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub, dir)?;
    }
    Ok(())
}

fn print_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| CliError::new(Exit::Output, format!("standard output: {e}")))
}
