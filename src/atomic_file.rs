//! Writing a file so that readers see either the old content or the new, never
//! a part, and so that the new content survives a crash once the call returns.
//!
//! Every file hwsigner writes goes through [`write`] (replace) or
//! [`write_new`] (refuse to replace): signed zones, key files, TPM key blobs,
//! DKEK shares and wrapped keys. The steps:
//!
//! 1. remove this target's stale temporary files left by an earlier run that
//!    was killed while writing (see [`temp_name`]);
//! 2. write a temporary file `.NAME.hwsigner-tmp.PID.N` in the target's
//!    directory (so the rename below never crosses file systems);
//! 3. give it the target's owner, group and mode when the target exists
//!    (a name server running as another user keeps reading the signed zone),
//!    else the default of its [`Kind`];
//! 4. fsync the file, rename it over the target (or link it, for
//!    [`write_new`]), fsync the directory so the rename itself is durable.
//!
//! On any failure the temporary file is removed and the target is untouched.
//! A target that is a symbolic link is replaced by a file with the mode of the
//! link's target (rename(2) replaces the link, not what it points to).
//!
//! Transcripts are not written here: they are append-only logs, synced line by
//! line, and hold no secrets (they are shown to witnesses), so they keep the
//! umask's mode.
//!
//! Ownership: only root can give a file to another user, and only a member of
//! the group can give it to that group. When that is not permitted, the mode is
//! still kept and a warning says which group could not be kept and why.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// What a file holds, which decides the mode of a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Readable by everyone: signed zones (a name server running as another
    /// user must read them) and `.key` files (public keys). New files get
    /// 0644, less the process umask.
    Public,
    /// Readable by the owner only: private key files, TPM key blobs, DKEK
    /// shares and wrapped key blobs. New files get 0600.
    Secret,
}

impl Kind {
    /// The mode a new file of this kind is created with (before the umask).
    pub fn default_mode(self) -> u32 {
        match self {
            Kind::Public => 0o644,
            Kind::Secret => 0o600,
        }
    }
}

/// A temporary file is stale when its process is gone or, whatever its process
/// id says (ids are reused), when nobody has written to it for this long.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Marks hwsigner's temporary files; see [`temp_name`].
const TEMP_MARK: &str = ".hwsigner-tmp.";

/// Why a file could not be written. The target is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {step}: {source}", path.display())]
pub struct WriteError {
    /// The target file.
    pub path: PathBuf,
    /// The step that failed ("creating the temporary file", "renaming", ...).
    pub step: &'static str,
    /// Why.
    pub source: std::io::Error,
}

impl WriteError {
    /// The error as an `io::Error` that names the step but not the path, for
    /// error types that already carry the path.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.source.kind(), format!("{}: {}", self.step, self.source))
    }
}

/// The temporary file's name for `target` written by process `pid`, the
/// `seq`-th in this process: `.NAME.hwsigner-tmp.PID.SEQ`, hidden, beside the
/// target, and recognisable as ours so a later run can remove it.
pub fn temp_name(target: &Path, pid: u32, seq: u64) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir_of(target).join(format!(".{name}{TEMP_MARK}{pid}.{seq}"))
}

/// Replaces `path` atomically with what `fill` writes.
///
/// # Errors
/// `fill` fails, or a file system step does (see [`WriteError`]); the target
/// stays as it was.
pub fn write(path: &Path, kind: Kind, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), WriteError> {
    write_with(
        path,
        kind,
        |f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            fill(&mut w)?;
            w.flush()
        },
        Commit::Replace,
    )
}

/// Replaces `path` atomically with `bytes` (written without a buffer, so a
/// secret is never copied into memory that is not wiped).
///
/// # Errors
/// As [`write`].
pub fn write_bytes(path: &Path, kind: Kind, bytes: &[u8]) -> Result<(), WriteError> {
    write(path, kind, |w| w.write_all(bytes))
}

/// Creates `path` with `bytes`, atomically, refusing to replace an existing
/// file (the error's kind is then `AlreadyExists`): key files and DKEK shares
/// are never overwritten.
///
/// # Errors
/// As [`write`], and when `path` exists.
pub fn write_new(path: &Path, kind: Kind, bytes: &[u8]) -> Result<(), WriteError> {
    write_with(path, kind, |w| w.write_all(bytes), Commit::NoClobber)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    Replace,
    NoClobber,
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Removes the temporary file unless the write was committed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Best effort: the write has already failed and reports why; a
            // temporary file left here is removed by the next write.
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_with(path: &Path, kind: Kind, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>, commit: Commit) -> Result<(), WriteError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let err = |step: &'static str| move |source: std::io::Error| WriteError { path: path.to_path_buf(), step, source };
    let dir = dir_of(path);
    remove_stale_temps(path);
    let existing = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err("reading the existing file's mode")(e)),
    };
    if commit == Commit::NoClobber && existing.is_some() {
        return Err(err("creating")(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists (not replaced)")));
    }
    let tmp = temp_name(path, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    // A temporary for an existing file starts as 0600 and gets the old mode
    // only once it has the old group, so it is never readable by more people
    // than the file it replaces.
    let create_mode = if existing.is_some() { 0o600 } else { kind.default_mode() };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(create_mode)
        .open(&tmp)
        .map_err(err("creating the temporary file"))?;
    let mut guard = TempGuard(Some(tmp.clone()));
    fill(&mut &file).map_err(err("writing"))?;
    if let Some(old) = &existing {
        keep_owner(&file, old, path);
        file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777)).map_err(err("setting the mode"))?;
    }
    file.sync_all().map_err(err("syncing the file"))?;
    drop(file);
    match commit {
        Commit::Replace => std::fs::rename(&tmp, path).map_err(err("renaming the temporary file over it"))?,
        Commit::NoClobber => {
            // link(2) fails when the target exists, where rename(2) would replace it.
            std::fs::hard_link(&tmp, path).map_err(err("creating"))?;
            std::fs::remove_file(&tmp).map_err(err("removing the temporary file"))?;
        }
    }
    guard.0 = None;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err("syncing the directory"))
}

/// Gives the temporary file the old file's owner and group where permitted;
/// otherwise warns (the mode is kept either way).
fn keep_owner(file: &std::fs::File, old: &std::fs::Metadata, path: &Path) {
    let Ok(now) = file.metadata() else { return };
    if now.uid() == old.uid() && now.gid() == old.gid() {
        return;
    }
    if std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_ok() {
        return;
    }
    // Not root: a member of the old group may still keep the group.
    if now.gid() == old.gid() {
        return;
    }
    if let Err(e) = std::os::unix::fs::fchown(file, None, Some(old.gid())) {
        tracing::warn!(
            file = %path.display(),
            group = old.gid(),
            "the rewritten file keeps its mode {:o} but not its group {} ({e}): users of that group may lose access",
            old.mode() & 0o7777,
            old.gid()
        );
    }
}

/// Removes temporary files of `target` left by runs that are gone (killed
/// while writing); see [`STALE_AFTER`]. Files that are not ours are never
/// touched. Failures are logged, not returned: they do not stop this write.
pub fn remove_stale_temps(target: &Path) {
    let dir = dir_of(target);
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let prefix = format!(".{name}{TEMP_MARK}");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let fname = entry.file_name();
        let Some(rest) = fname.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split_once('.').and_then(|(p, seq)| seq.parse::<u64>().ok().and(p.parse::<u32>().ok())) else {
            continue;
        };
        let gone = proc_fs && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
        let idle =
            entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|d| d > STALE_AFTER));
        if gone || idle {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %entry.path().display(), "removed a stale temporary file of an interrupted write"),
                Err(e) => tracing::warn!(file = %entry.path().display(), "cannot remove a stale temporary file: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    fn temps(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(TEMP_MARK))
            .collect()
    }

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn new_files_get_the_default_of_their_kind() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("k.private");
        write_bytes(&secret, Kind::Secret, b"s").unwrap();
        assert_eq!(mode(&secret), 0o600);
        let public = d.path().join("zone.signed");
        write_bytes(&public, Kind::Public, b"p").unwrap();
        // 0644 less the umask: never more than 0644, always readable by its owner.
        assert_eq!(mode(&public) & !0o644, 0);
        assert_eq!(std::fs::read(&public).unwrap(), b"p");
        assert!(temps(d.path()).is_empty());
    }

    #[test]
    fn an_existing_file_keeps_its_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zone.signed");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_bytes(&p, Kind::Secret, b"new").unwrap();
        assert_eq!(mode(&p), 0o640);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_bytes(&p, Kind::Secret, b"newer").unwrap();
        assert_eq!(mode(&p), 0o644);
        assert_eq!(std::fs::read(&p).unwrap(), b"newer");
    }

    #[test]
    fn an_existing_file_keeps_its_owner_and_group() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zone.signed");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        // nobody:nogroup, as a name server's own user would be.
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).expect("giving a file to nobody:nogroup needs root (as CI runs)");
        write_bytes(&p, Kind::Secret, b"new").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o644));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zone.signed");
        std::fs::write(&p, "old").unwrap();
        let e = write(&p, Kind::Public, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.step, "writing");
        assert!(e.to_string().contains("zone.signed"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert!(temps(d.path()).is_empty());
    }

    #[test]
    fn write_new_refuses_an_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("share.pbe");
        write_new(&p, Kind::Secret, b"one").unwrap();
        assert_eq!(mode(&p), 0o600);
        let e = write_new(&p, Kind::Secret, b"two").unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(temps(d.path()).is_empty());
    }

    #[test]
    fn stale_temporaries_of_dead_runs_are_removed_and_others_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zone.signed");
        let dead = temp_name(&p, dead_pid(), 0);
        std::fs::write(&dead, "partial output of a killed run").unwrap();
        // A live process (this one's parent) writing the same target: not stale.
        let live = temp_name(&p, std::os::unix::process::parent_id(), 7);
        std::fs::write(&live, "in progress").unwrap();
        // Another file's temporary and an unrelated file are not ours to remove.
        let other = temp_name(&d.path().join("other.zone"), dead_pid(), 0);
        std::fs::write(&other, "x").unwrap();
        let unrelated = d.path().join(".zone.signed.hwsigner-tmp.notapid");
        std::fs::write(&unrelated, "x").unwrap();
        write_bytes(&p, Kind::Public, b"signed").unwrap();
        assert!(!dead.exists(), "the dead run's temporary file is still there");
        assert!(live.exists() && other.exists() && unrelated.exists());
    }

    #[test]
    fn idle_temporaries_are_removed_whatever_their_pid() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zone.signed");
        let old = temp_name(&p, std::os::unix::process::parent_id(), 1);
        let f = std::fs::File::create(&old).unwrap();
        f.set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(60)).unwrap();
        drop(f);
        write_bytes(&p, Kind::Public, b"signed").unwrap();
        assert!(!old.exists());
    }
}
