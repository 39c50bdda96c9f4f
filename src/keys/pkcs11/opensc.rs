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

/// True for OpenSC's PKCS#11 module (by file name, e.g. `opensc-pkcs11.so`).
pub fn is_opensc(module: &Path) -> bool {
    module.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("opensc-pkcs11"))
}

/// The configuration OpenSC would read: `$OPENSC_CONF`, else the system file.
fn base_config() -> (PathBuf, String) {
    let path = std::env::var_os("OPENSC_CONF").map_or_else(|| PathBuf::from("/etc/opensc/opensc.conf"), PathBuf::from);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (path, text)
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

/// The configuration text for a worker: the `ignored_readers` block, then the
/// operator's configuration. `None` when nothing needs hiding or when the
/// operator's configuration has its own `app opensc-pkcs11` block.
pub fn worker_config(own: &str, all: &[String]) -> Option<String> {
    let (path, base) = base_config();
    compose(own, all, &path, &base)
}

fn compose(own: &str, all: &[String], path: &Path, base: &str) -> Option<String> {
    if has_module_block(base) {
        tracing::warn!(config = %path.display(), "opensc.conf has its own 'app opensc-pkcs11' block: workers are not limited to their own reader");
        return None;
    }
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
        assert!(compose("R 00 00", &all, conf, "app opensc-pkcs11 {\n}\n").is_none(), "the operator's block is not shadowed");
    }

    #[test]
    fn recognises_the_module() {
        assert!(is_opensc(Path::new("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")));
        assert!(!is_opensc(Path::new("/usr/lib/softhsm/libsofthsm2.so")));
    }
}
