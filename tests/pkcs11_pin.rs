//! Pinning PKCS#11 keys to their public key, on SoftHSM2: a key swapped on a
//! token under the configured label is refused and nothing is published; of
//! two keys under one label the pinned one signs, and without a pin the run is
//! refused; the digest pin and the full key pin act alike; a malformed pin is
//! a configuration error naming its line.

mod common;
use common::{hwsigner, require, run};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::softhsm::SOFTHSM;
const ORIGIN: &str = "awkward.test.";

struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new(tokens: usize) -> Hsm {
        require("pkcs11-tool", "opensc");
        let dir = tempfile::tempdir().expect("tempdir");
        let labels: Vec<String> = (1..=tokens).map(|i| format!("tok{i}")).collect();
        common::softhsm::init_tokens(dir.path(), &labels.iter().map(String::as_str).collect::<Vec<_>>());
        Hsm { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("SOFTHSM2_CONF", self.path("softhsm2.conf")).env("TEST_PIN", "1234")
    }

    /// Makes a P-256 key with OpenSSL and imports it into the given tokens.
    fn import(&self, tokens: &[&str], label: &str, id: &str) {
        let pem = self.path(&format!("{label}-{id}.pem"));
        let (ok, out) =
            run(Command::new("openssl").args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"]).arg(&pem));
        assert!(ok, "openssl genpkey: {out}");
        for t in tokens {
            let mut c = Command::new("softhsm2-util");
            c.arg("--import").arg(&pem).args(["--token", t, "--label", label, "--id", id, "--pin", "1234"]);
            let (ok, out) = run(self.env(&mut c));
            assert!(ok, "softhsm2-util --import: {out}");
        }
        std::fs::remove_file(&pem).expect("remove the software copy");
    }

    /// Replaces the key pair `label`/`id` on `token` by a new one under the same label and id.
    fn swap(&self, token: &str, label: &str, id: &str) {
        for kind in ["privkey", "pubkey"] {
            let mut c = Command::new("pkcs11-tool");
            c.args(["--module", SOFTHSM, "--token-label", token, "--login", "--pin", "1234", "--delete-object", "--type", kind]);
            c.args(["--label", label, "--id", id]);
            let (ok, out) = run(self.env(&mut c));
            assert!(ok, "pkcs11-tool --delete-object {kind}: {out}");
        }
        let mut c = Command::new("pkcs11-tool");
        c.args(["--module", SOFTHSM, "--token-label", token, "--login", "--pin", "1234", "--keypairgen", "--key-type", "EC:prime256v1"]);
        c.args(["--label", label, "--id", id]);
        let (ok, out) = run(self.env(&mut c));
        assert!(ok, "pkcs11-tool --keypairgen: {out}");
    }

    /// `tokens list --json`: the keys of `token` with `label`, as (id, JSON).
    fn keys(&self, token: &str, label: &str) -> Vec<(String, serde_json::Value)> {
        let o = self.env(&mut hwsigner(&["tokens", "list", "--json", "--module", SOFTHSM])).output().expect("tokens list");
        assert!(o.status.success(), "tokens list: {}", String::from_utf8_lossy(&o.stderr));
        let tokens: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let t = tokens.as_array().expect("tokens").iter().find(|t| t["label"] == token).expect("token listed");
        t["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter(|k| k["label"] == label)
            .map(|k| (k["id"].as_str().expect("id").to_owned(), k.clone()))
            .collect()
    }

    /// The serial of `token`, from `tokens list --json`.
    fn serial(&self, token: &str) -> String {
        let o = self.env(&mut hwsigner(&["tokens", "list", "--json", "--module", SOFTHSM])).output().expect("tokens list");
        let tokens: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let t = tokens.as_array().expect("tokens").iter().find(|t| t["label"] == token).expect("token listed");
        t["serial"].as_str().expect("serial").to_owned()
    }

    /// A configuration with one CSK under `label` and the given pin lines.
    fn config(&self, name: &str, label: &str, pin: &str) -> PathBuf {
        let text = format!(
            "version = 1\n\n[[pkcs11]]\nname = \"hsm\"\nmodule = \"{SOFTHSM}\"\npin_env = \"TEST_PIN\"\n\n[[key]]\nzone = \"{ORIGIN}\"\nrole = \"csk\"\nstore = \"hsm\"\nlabel = \"{label}\"\n{pin}\n"
        );
        let p = self.path(name);
        std::fs::write(&p, text).expect("config");
        p
    }

    fn sign(&self, config: &Path, output: &Path) -> (Option<i32>, String) {
        let mut c = hwsigner(&["sign", "--zone", ORIGIN, "--config"]);
        c.arg(config).arg("--output").arg(output).arg(awkward_zone());
        let out = self.env(&mut c).output().expect("run hwsigner");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn awkward_zone() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/awkward.zone")
}

fn sha256_line(key: &serde_json::Value) -> String {
    format!("public_key_sha256 = \"{}\"", key["public_key_sha256"].as_str().expect("digest listed"))
}

fn full_line(key: &serde_json::Value) -> String {
    format!("public_key = \"{}\"", key["public_key"].as_str().expect("public key listed"))
}

/// The DNSKEY public key fields and the RRSIG key tags of a signed zone.
fn keys_and_tags(signed: &Path) -> (Vec<String>, Vec<u64>) {
    let text = std::fs::read_to_string(signed).expect("signed zone");
    let mut dnskeys = Vec::new();
    let mut tags = Vec::new();
    for line in text.lines() {
        // owner, TTL, class, type, then the RDATA fields.
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.get(3) {
            Some(&"DNSKEY") => dnskeys.push(f[7..].concat()),
            Some(&"RRSIG") => tags.push(f[10].parse().expect("key tag")),
            _ => {}
        }
    }
    tags.sort_unstable();
    tags.dedup();
    (dnskeys, tags)
}

#[test]
fn a_key_swapped_under_the_pinned_label_is_refused_and_nothing_is_published() {
    let hsm = Hsm::new(2);
    hsm.import(&["tok1", "tok2"], "zsk", "01");
    let listed = hsm.keys("tok1", "zsk");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let key = &listed[0].1;
    let text =
        String::from_utf8(hsm.env(&mut hwsigner(&["tokens", "list", "--module", SOFTHSM])).output().expect("list").stdout).expect("utf-8");
    assert!(text.contains(&format!("pin: {}", sha256_line(key))), "tokens list prints the line to paste: {text}");
    let out = hsm.path("signed.zone");
    let pins = [("digest", sha256_line(key)), ("full key", full_line(key))];
    for (what, pin) in &pins {
        let config = hsm.config(&format!("{what}.toml"), "zsk", pin);
        let (code, text) = hsm.sign(&config, &out);
        assert_eq!(code, Some(0), "{what}: {text}");
        assert!(!text.contains("not pinned"), "{what}: a pinned key is not warned about: {text}");
        common::validate_with(&out, ORIGIN, &format!("{what} pin"), true);
    }
    let published = std::fs::read_to_string(&out).expect("signed zone");
    let tok2_serial = hsm.serial("tok2");
    hsm.swap("tok2", "zsk", "01");
    let swapped = &hsm.keys("tok2", "zsk")[0].1;
    assert_ne!(swapped["public_key"], key["public_key"], "the key was swapped");
    // Unpinned, the tokens disagree: refused, each key listed with its pin line.
    let (code, text) = hsm.sign(&hsm.config("unpinned.toml", "zsk", ""), &out);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("tokens hold different keys") && text.contains(&sha256_line(key)) && text.contains(&sha256_line(swapped)),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&out).expect("output"), published, "unpinned: the published zone stays");
    // Both tokens, and the swapped token alone (where, unpinned, nothing else would disagree with it).
    let runs = pins.iter().flat_map(|(what, pin)| [(*what, pin.clone(), false), (*what, pin.clone(), true)]);
    for (what, pin, alone) in runs {
        let config = hsm.config(&format!("{what}.toml"), "zsk", &pin);
        if alone {
            let text = std::fs::read_to_string(&config).expect("config");
            let only = format!("pin_env = \"TEST_PIN\"\ntokens = [\"serial:{tok2_serial}\"]\n");
            std::fs::write(&config, text.replacen("pin_env = \"TEST_PIN\"\n", &only, 1)).expect("config");
        }
        let what = if alone { format!("{what}, tok2 alone") } else { what.to_owned() };
        let (code, text) = hsm.sign(&config, &out);
        assert_eq!(code, Some(4), "{what}: a key error: {text}");
        let found = format!("found id 01 key tag {}", swapped["key_tag_ksk"]);
        assert!(
            text.contains(&format!("serial {tok2_serial}"))
                && text.contains("'tok2'")
                && text.contains("label 'zsk'")
                && text.contains("expected ")
                && text.contains(&found),
            "{what}: the message names the token, the label and the key tags: {text}"
        );
        if what.starts_with("full key") {
            assert!(text.contains(&format!("expected key tag {}", key["key_tag_ksk"])), "{what}: {text}");
        }
        assert_eq!(std::fs::read_to_string(&out).expect("output"), published, "{what}: the published zone stays");
    }
}

#[test]
fn of_two_keys_under_one_label_the_pinned_one_signs_and_without_a_pin_none() {
    let hsm = Hsm::new(1);
    // Key A is made by hwsigner, which prints its [[key]] block with the pin line.
    let mut c = hwsigner(&["keys", "generate", "--backend", "pkcs11", "--module", SOFTHSM, "--token", "label:tok1"]);
    c.args(["--zone", ORIGIN, "--role", "csk", "--algorithm", "13", "--label", "twin", "--id", "0a", "--pin-env", "TEST_PIN"]);
    let (ok, generated) = run(hsm.env(&mut c));
    assert!(ok, "keys generate: {generated}");
    let pin_a = generated.lines().find(|l| l.starts_with("public_key_sha256 = \"")).expect("pin line in the [[key]] block").to_owned();
    // Key B lands under the same label, as a careless import or an attacker would put it.
    hsm.import(&["tok1"], "twin", "0b");
    let listed = hsm.keys("tok1", "twin");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let a = &listed.iter().find(|k| k.0 == "0a").expect("key A").1;
    let b = &listed.iter().find(|k| k.0 == "0b").expect("key B").1;
    assert_eq!(pin_a, sha256_line(a), "keys generate and tokens list print the same pin");

    let out = hsm.path("signed.zone");
    std::fs::write(&out, "last good zone\n").expect("old output");
    let (code, text) = hsm.sign(&hsm.config("unpinned.toml", "twin", ""), &out);
    assert_eq!(code, Some(4), "{text}");
    for k in [a, b] {
        let listed = format!("id {} key tag {}: {}", k["id"].as_str().expect("id"), k["key_tag_ksk"], sha256_line(k));
        assert!(text.contains(&listed), "both keys listed: {text}");
    }
    assert!(text.contains("several different keys with label 'twin'") && text.contains("pin the one"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).expect("output"), "last good zone\n");

    // Pinned (by digest, as generated; by the full key, as listed), each key signs.
    for (name, pin, key) in [("a", pin_a.clone(), a), ("b", full_line(b), b), ("b-digest", sha256_line(b), b)] {
        let (code, text) = hsm.sign(&hsm.config(&format!("{name}.toml"), "twin", &pin), &out);
        assert_eq!(code, Some(0), "{name}: {text}");
        common::validate_with(&out, ORIGIN, &format!("pinned key {name}"), true);
        let (dnskeys, tags) = keys_and_tags(&out);
        assert_eq!(dnskeys, vec![key["public_key"].as_str().expect("base64").to_owned()], "{name}: only the pinned DNSKEY");
        assert_eq!(tags, vec![key["key_tag_ksk"].as_u64().expect("tag")], "{name}: every RRSIG by the pinned key");
    }
}

#[test]
fn a_malformed_pin_is_a_configuration_error_naming_its_line() {
    let hsm = Hsm::new(1);
    hsm.import(&["tok1"], "zsk", "01");
    let out = hsm.path("signed.zone");
    for (pin, message) in [
        ("public_key_sha256 = \"12ab\"", "public_key_sha256 must be 64 hex digits"),
        ("public_key = \"no base64 here!\"", "public_key must be the base64 public key field"),
    ] {
        let config = hsm.config("bad.toml", "zsk", pin);
        let line = std::fs::read_to_string(&config).expect("config").lines().position(|l| l == pin).expect("pin line") + 1;
        let (code, text) = hsm.sign(&config, &out);
        assert_eq!(code, Some(2), "{pin}: a configuration error: {text}");
        assert!(text.contains(&format!("{}:{line}: {message}", config.display())), "{pin}: names the file and line: {text}");
        assert!(!out.exists(), "nothing written");
    }
    // A key left unpinned still signs, with one warning giving the line to add.
    let (code, text) = hsm.sign(&hsm.config("unpinned.toml", "zsk", ""), &out);
    assert_eq!(code, Some(0), "{text}");
    let key = &hsm.keys("tok1", "zsk")[0].1;
    assert_eq!(text.matches("not pinned").count(), 1, "warned once: {text}");
    assert!(text.contains(&sha256_line(key)), "the warning gives the pin: {text}");
}

#[test]
fn configuration_versions() {
    let hsm = Hsm::new(1);
    hsm.import(&["tok1"], "zsk", "01");
    let out = hsm.path("signed.zone");
    let v1 = hsm.config("v1.toml", "zsk", "");
    let text = std::fs::read_to_string(&v1).expect("config");
    // Without a version line, the file is read as version 1, with a warning.
    let old = hsm.path("old.toml");
    std::fs::write(&old, text.replacen("version = 1\n", "", 1)).expect("config");
    let (code, log) = hsm.sign(&old, &out);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("no version") && log.contains("version = 1"), "{log}");
    let (code, log) = hsm.sign(&v1, &out);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("no version"), "{log}");
    let v2 = hsm.path("v2.toml");
    std::fs::write(&v2, text.replacen("version = 1\n", "version = 2\n", 1)).expect("config");
    std::fs::write(&out, "last good zone\n").expect("old output");
    let (code, log) = hsm.sign(&v2, &out);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains(&format!("{}:1: configuration version 2 is not supported", v2.display())), "{log}");
    assert_eq!(std::fs::read_to_string(&out).expect("output"), "last good zone\n");
}
