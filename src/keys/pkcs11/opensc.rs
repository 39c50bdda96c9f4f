//! A private OpenSC configuration per signing worker.
//!
//! OpenSC's PKCS#11 module binds the card in every reader when it starts
//! (reading each card's PKCS#15 files under a PC/SC transaction). A card that
//! is busy signing holds its transaction almost all the time, and pcsc-lite
//! lets a waiting client retry only every 100 ms, so a worker started while
//! the other cards sign (a card re-inserted, a worker replaced after a hang)
//! could wait indefinitely for cards it will never use, and one hung card
//! stalled every worker's start. Each worker therefore gets the operator's
//! own `opensc.conf` with every other reader listed in `ignored_readers`, so
//! it only ever touches its own card.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// True for OpenSC's PKCS#11 module (by file name, e.g. `opensc-pkcs11.so`).
pub fn is_opensc(module: &Path) -> bool {
    module.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("opensc-pkcs11"))
}

/// The configuration OpenSC would read: `$OPENSC_CONF`, else the system file.
fn base_config() -> std::io::Result<(PathBuf, String)> {
    let path = std::env::var_os("OPENSC_CONF").map_or_else(|| PathBuf::from("/etc/opensc/opensc.conf"), PathBuf::from);
    let text = read_base(&path)?;
    Ok((path, text))
}

/// The operator's configuration text. A missing file is an empty one (OpenSC
/// then runs on its built-in defaults too); any other failure is an error
/// naming the file, since workers without the operator's settings would
/// behave differently from every other OpenSC client on the machine.
fn read_base(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(std::io::Error::new(e.kind(), format!("cannot read the OpenSC configuration {}: {e}", path.display()))),
    }
}

/// True when the configuration has an `app opensc-pkcs11` block of its own.
/// Ours would come first and shadow it (OpenSC uses the first block of a
/// name), so such a configuration is left alone.
fn has_module_block(text: &str) -> bool {
    text.lines().map(|l| l.split('#').next().unwrap_or("")).any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("app") && words.next().is_some_and(|w| w.trim_end_matches('{').trim_matches('"') == "opensc-pkcs11")
    })
}

/// The readers to hide from the worker whose card is in `own`. OpenSC ignores
/// a reader whose name *contains* a listed name, so a name that is part of
/// `own` must not be listed; names that cannot be quoted are left out.
fn readers_to_ignore<'a>(own: &str, all: &'a [String]) -> Vec<&'a str> {
    all.iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty() && !own.contains(r) && !r.contains(['"', '\\']))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Per-worker configuration files of one pool, in a directory removed when
/// the last worker that may need it is gone.
pub struct WorkerConfigs {
    /// The directory holding the files.
    pub dir: Arc<tempfile::TempDir>,
    /// For each worker, in the order of the readers given, its file (`None`
    /// when it has nothing to hide).
    pub files: Vec<Option<PathBuf>>,
}

/// Writes one configuration per worker, the worker of `own[i]` seeing only
/// that reader of `all`. `None` when the operator's configuration has its own
/// `app opensc-pkcs11` block, which ours would shadow (a warning says so).
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write_worker_configs(own: &[&str], all: &[String]) -> std::io::Result<Option<WorkerConfigs>> {
    let (path, base) = base_config()?;
    write_configs(own, all, &path, &base)
}

fn write_configs(own: &[&str], all: &[String], path: &Path, base: &str) -> std::io::Result<Option<WorkerConfigs>> {
    if has_module_block(base) {
        tracing::warn!(config = %path.display(), "opensc.conf has its own 'app opensc-pkcs11' block: workers are not limited to their own reader");
        return Ok(None);
    }
    let dir = tempfile::Builder::new().prefix("hwsigner-opensc-").tempdir()?;
    let mut files = Vec::new();
    for (n, reader) in own.iter().enumerate() {
        files.push(match compose(reader, all, path, base) {
            Some(text) => {
                let file = dir.path().join(format!("worker-{n}.conf"));
                // Not through atomic_file: a fresh private directory of this
                // process, read only by workers started after it is written.
                std::fs::write(&file, text)?;
                Some(file)
            }
            None => None,
        });
    }
    Ok(Some(WorkerConfigs { dir: Arc::new(dir), files }))
}

/// The configuration text for the worker of the card in `own`: the
/// `ignored_readers` block, then the operator's configuration. `None` when
/// nothing needs hiding.
fn compose(own: &str, all: &[String], path: &Path, base: &str) -> Option<String> {
    let ignore = readers_to_ignore(own, all);
    if ignore.is_empty() {
        return None;
    }
    let list = ignore.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "# Written by hwsigner for the signing worker of the card in \"{own}\":\n\
         # the other readers are hidden, then {} follows unchanged.\n\
         app opensc-pkcs11 {{\n\tignored_readers = {list};\n}}\n\n{base}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_configuration_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_base(&d.path().join("absent.conf")).unwrap(), "", "a missing file means OpenSC's defaults");
        let bad = d.path().join("opensc.conf");
        std::fs::write(&bad, [0xff, 0xfe, b'\n']).unwrap();
        let e = read_base(&bad).unwrap_err();
        assert!(e.to_string().contains(&*bad.to_string_lossy()), "{e}");
        let e = read_base(d.path()).unwrap_err();
        assert!(e.to_string().contains("cannot read the OpenSC configuration"), "{e}");
    }

    #[test]
    fn own_reader_and_names_inside_it_are_never_hidden() {
        let all: Vec<String> =
            ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD B 00 00", "PCD 00 00", "bad \"name\""].map(String::from).to_vec();
        assert_eq!(readers_to_ignore("Virtual PCD 00 00", &all), vec!["Virtual PCD 00 01", "Virtual PCD B 00 00"]);
    }

    #[test]
    fn finds_the_modules_own_block_but_not_in_a_comment() {
        assert!(has_module_block("app opensc-pkcs11 {\n  framework pkcs15 { }\n}\n"));
        assert!(has_module_block("app \"opensc-pkcs11\"{\n}\n"));
        assert!(!has_module_block("# app opensc-pkcs11 {\napp default {\n  pkcs11 { }\n}\n"));
    }

    #[test]
    fn the_other_readers_are_hidden_in_the_modules_block() {
        let all: Vec<String> = ["R 00 00", "R 00 01"].map(String::from).to_vec();
        let base = "app default {\n\tframework pkcs15 {\n\t}\n}\n";
        let conf = Path::new("/etc/opensc/opensc.conf");
        let text = compose("R 00 00", &all, conf, base).unwrap();
        assert!(text.contains("app opensc-pkcs11 {\n\tignored_readers = \"R 00 01\";\n}") && text.ends_with(base), "{text}");
        assert!(compose("R 00 00", &all[..1], conf, base).is_none(), "nothing to hide");
        assert!(
            write_configs(&["R 00 00"], &all, conf, "app opensc-pkcs11 {\n}\n").unwrap().is_none(),
            "the operator's block is not shadowed"
        );
        let written = write_configs(&["R 00 00", "R 00 01"], &all, conf, base).unwrap().unwrap();
        let first = std::fs::read_to_string(written.files[0].as_ref().unwrap()).unwrap();
        assert!(first.contains("ignored_readers = \"R 00 01\";"), "{first}");
    }

    #[test]
    fn recognises_the_module() {
        assert!(is_opensc(Path::new("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")));
        assert!(!is_opensc(Path::new("/usr/lib/softhsm/libsofthsm2.so")));
    }
}
