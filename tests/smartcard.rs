//! SmartCard-HSM: the emulator (tests/sc-hsm-emu) behind pcscd + vpcd, refereed
//! by OpenSC's own tools (sc-hsm-tool, pkcs11-tool, pkcs15-tool,
//! opensc-pkcs11.so); hwsigner's ceremony commands and scripts against it,
//! cross-checked with sc-hsm-tool both ways; bad input; and a zone signed by
//! the signing pool over four cards holding clones of one key, checked by the
//! three validators.
//!
//! Needs pcscd, vsmartcard-vpcd and opensc (scripts/test.sh installs them and
//! starts pcscd with four virtual readers via scripts/pcscd-vpcd.sh) and the
//! emulator binary (cargo build --release --workspace). The DKEK share files
//! use sc-hsm-tool's 10-million-round key derivation, so every share created
//! or imported costs about ten seconds: the steps are arranged to need few.

mod common;
use common::{hwsigner, require, run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const SO: &str = "3537363231383830";
const PIN: &str = "648219";
const PORTS: [u16; 4] = [35963, 35964, 35965, 35966];

struct Cards {
    dir: tempfile::TempDir,
    procs: Vec<Option<Child>>,
    extra: Vec<String>,
}

fn emulator() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("sc-hsm-emu");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release --workspace` (scripts/test.sh does)", bin.display());
    bin
}

impl Cards {
    /// Four fresh cards with serials DEEM1000{1..4}, signing with the given delays.
    fn new(ec_ms: u64) -> Cards {
        Cards::with(ec_ms, &[])
    }

    /// Four fresh cards, each emulator started with `extra` arguments as well.
    fn with(ec_ms: u64, extra: &[&str]) -> Cards {
        require("pcscd", "pcscd");
        require("sc-hsm-tool", "opensc");
        assert!(Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists(), "install vsmartcard-vpcd (scripts/test.sh does)");
        let (ok, out) = run(Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pcscd-vpcd.sh")).arg("start"));
        assert!(ok, "pcscd with vpcd could not be started: {out}");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cards = Cards { dir, procs: Vec::new(), extra: extra.iter().map(|s| (*s).to_owned()).collect() };
        for i in 0..4 {
            let child = cards.spawn(i, ec_ms);
            cards.procs.push(Some(child));
        }
        cards.wait_answering();
        cards
    }

    fn events(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("card{i}.events"))
    }

    /// How often each card has seen an event (`reset`, `sign`).
    fn count(&self, event: &str) -> Vec<usize> {
        (0..4).map(|i| std::fs::read_to_string(self.events(i)).map_or(0, |t| t.lines().filter(|l| *l == event).count())).collect()
    }

    /// Warm resets each card has seen (each one logs every client out).
    fn resets(&self) -> Vec<usize> {
        self.count("reset")
    }

    fn spawn(&self, i: usize, ec_ms: u64) -> Child {
        Command::new(emulator())
            .args(["--port", &PORTS[i].to_string(), "--serial", &format!("DEEM1000{}", i + 1), "--ec-sign-ms", &ec_ms.to_string()])
            .arg("--state")
            .arg(self.dir.path().join(format!("card{i}.json")))
            .arg("--events")
            .arg(self.events(i))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the emulator")
    }

    /// Waits until all four new cards answer with their serials. A reader
    /// can still show the previous test's card as present until vpcd notices
    /// that its emulator is gone, and an APDU sent then fails.
    fn wait_answering(&self) {
        let mut last = String::new();
        for _ in 0..100 {
            let (ok, out) = run(&mut hwsigner(&["ceremony", "list", "--json"]));
            if ok {
                let all: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap_or_default();
                if (1..=4).all(|i| all.iter().any(|c| c["serial"] == format!("DEEM1000{i}"))) {
                    return;
                }
            }
            last = out;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the emulated cards did not answer through pcscd: {last}");
    }

    fn remove(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A configuration signing example.com. with the cloned key `ksk-2026`
    /// through OpenSC; `extra` adds lines to the store.
    fn signing_config(&self, name: &str, extra: &str) -> PathBuf {
        let config = self.path(name);
        let text = format!(
            "[[pkcs11]]\nname = \"cards\"\nmodule = \"{OPENSC}\"\npin_env = \"CARD_PIN\"\n{extra}\n[[key]]\nzone = \"example.com.\"\nrole = \"csk\"\nstore = \"cards\"\nlabel = \"ksk-2026\"\n"
        );
        std::fs::write(&config, text).expect("config");
        config
    }
}

impl Drop for Cards {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.remove(i);
        }
    }
}

/// Runs hwsigner with answers on standard input (never on the command line).
fn answered(args: &[&str], answers: &[&str]) -> (bool, String) {
    let mut c = hwsigner(args);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("hwsigner");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for a in answers {
            writeln!(stdin, "{a}").expect("answer");
        }
    }
    let out = child.wait_with_output().expect("hwsigner");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let (ok, out) = run(Command::new(cmd).args(args));
    assert!(ok, "{cmd} {args:?} failed:\n{out}");
    out
}

fn card_json(serial: &str) -> serde_json::Value {
    let (ok, out) = run(&mut hwsigner(&["ceremony", "list", "--json"]));
    assert!(ok, "{out}");
    let all: Vec<serde_json::Value> = serde_json::from_str(out.trim()).expect("list --json");
    all.into_iter().find(|c| c["serial"] == serial).unwrap_or_else(|| panic!("card {serial} not listed: {out}"))
}

fn kcv(serial: &str) -> String {
    card_json(serial)["dkek"]["kcv"].as_str().expect("kcv").to_owned()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The first JSON value in a command's output (stdout comes before the prompts on stderr).
fn first_json(out: &str) -> serde_json::Value {
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in: {out}"));
    serde_json::Deserializer::from_str(&out[start..]).into_iter::<serde_json::Value>().next().expect("a JSON value").expect("valid JSON")
}

#[test]
fn opensc_referee_ceremony_commands_and_cross_checks() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut cards = Cards::new(0);
    let s1 = cards.path("s1.pbe");
    let s2 = cards.path("s2.pbe");
    let (s1t, s2t) = (s1.display().to_string(), s2.display().to_string());

    // OpenSC initialises card 1 and makes and imports a DKEK share.
    tool("sc-hsm-tool", &["-r", "0", "--initialize", "--so-pin", SO, "--pin", PIN, "--dkek-shares", "1"]);
    tool("sc-hsm-tool", &["-r", "0", "--create-dkek-share", &s1t, "--password", "officer-one"]);
    let out = tool("sc-hsm-tool", &["-r", "0", "--import-dkek-share", &s1t, "--password", "officer-one"]);
    let kcv1 = kcv("DEEM10001");
    assert!(out.contains(&kcv1), "sc-hsm-tool and hwsigner agree on the KCV {kcv1}: {out}");

    // hwsigner initialises card 2 and imports OpenSC's share: same DKEK.
    let (ok, out) = answered(&["ceremony", "init", "-r", "serial:DEEM10002", "--dkek-shares", "1"], &[SO, PIN, PIN]);
    assert!(
        ok && out.contains("initialised card DEEM10002") && out.contains("import pending") && !out.contains('{'),
        "text for people: {out}"
    );
    let (ok, out) = answered(&["ceremony", "dkek-share", "import", &s1t, "-r", "serial:DEEM10002"], &["wrong-password"]);
    assert!(
        !ok && out.contains("s1.pbe") && !out.contains("wrong-password"),
        "a wrong share password is refused, without echoing it: {out}"
    );
    assert_eq!(card_json("DEEM10002")["dkek"]["outstanding"], 1, "nothing imported");
    let (ok, out) = answered(&["ceremony", "dkek-share", "import", &s1t, "-r", "serial:DEEM10002"], &["officer-one"]);
    assert!(ok && out.contains(&kcv1), "share made by sc-hsm-tool imported by hwsigner: {out}");

    // hwsigner makes a share; sc-hsm-tool imports it into card 3.
    let (ok, out) = answered(&["ceremony", "dkek-share", "create", &s2t], &["officer-two", "officer-two"]);
    assert!(ok, "{out}");
    tool("sc-hsm-tool", &["-r", "2", "--initialize", "--so-pin", SO, "--pin", PIN, "--dkek-shares", "1"]);
    let out = tool("sc-hsm-tool", &["-r", "2", "--import-dkek-share", &s2t, "--password", "officer-two"]);
    let kcv3 = kcv("DEEM10003");
    assert!(out.contains(&kcv3) && kcv3 != kcv1, "share made by hwsigner imported by sc-hsm-tool: {out}");

    // A share for another DKEK is refused before anything is imported.
    let (ok, out) = answered(&["ceremony", "init", "-r", "serial:DEEM10004", "--dkek-shares", "1", "--json"], &[SO, PIN, PIN]);
    assert!(ok, "{out}");
    assert_eq!(first_json(&out)["serial"], "DEEM10004", "JSON when asked: {out}");
    let (ok, out) =
        answered(&["ceremony", "dkek-share", "import", &s2t, "-r", "serial:DEEM10004", "--expect-kcv", &kcv1], &["officer-two"]);
    assert!(!ok && out.contains("another DKEK") && out.contains("nothing was imported"), "{out}");
    assert_eq!(card_json("DEEM10004")["dkek"]["outstanding"], 1, "nothing imported");

    // OpenSC generates and signs on card 1; pkcs15-tool sees the card.
    let m = ["--module", OPENSC, "--slot-index", "0", "--login", "--pin", PIN];
    tool("pkcs11-tool", &[&m[..], &["--keypairgen", "--key-type", "EC:prime256v1", "--label", "oscgen", "--id", "10"]].concat());
    let data = cards.path("data");
    std::fs::write(&data, b"to be signed").expect("data");
    let sig = cards.path("sig");
    let (d, s) = (data.display().to_string(), sig.display().to_string());
    tool("pkcs11-tool", &[&m[..], &["--sign", "-m", "ECDSA-SHA256", "--label", "oscgen", "-i", &d, "-o", &s]].concat());
    assert_eq!(std::fs::metadata(&sig).expect("signature").len(), 64, "r||s from OpenSC");
    let p15 = tool("pkcs15-tool", &["--reader", "0", "-D"]);
    assert!(p15.contains("Serial number  : DEEM10001") && p15.contains("oscgen"), "{p15}");

    // hwsigner generates a key; OpenSC signs with it (RSA through the card's raw RSA).
    let (ok, out) = answered(
        &["ceremony", "keygen", "-r", "serial:DEEM10001", "--zone", "example.", "--role", "ksk", "-a", "8", "--label", "hwksk"],
        &[PIN],
    );
    assert!(ok && out.contains("IN DNSKEY 257 3 8") && out.contains("IN DS "), "{out}");
    tool("pkcs11-tool", &[&m[..], &["--sign", "-m", "SHA256-RSA-PKCS", "--label", "hwksk", "-i", &d, "-o", &s]].concat());
    let pubkey = cards.path("pub.der");
    tool(
        "pkcs11-tool",
        &[
            "--module",
            OPENSC,
            "--slot-index",
            "0",
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            "hwksk",
            "-o",
            &pubkey.display().to_string(),
        ],
    );
    let pem = cards.path("pub.pem");
    tool("openssl", &["pkey", "-pubin", "-inform", "DER", "-in", &pubkey.display().to_string(), "-out", &pem.display().to_string()]);
    let out = tool("openssl", &["dgst", "-sha256", "-verify", &pem.display().to_string(), "-signature", &s, &d]);
    assert!(out.contains("Verified OK"), "OpenSC's signature with hwsigner's key verifies: {out}");

    // Wrap by sc-hsm-tool, unwrap by hwsigner (card 1 -> card 2, same DKEK).
    let hwksk_id =
        card_json("DEEM10001")["keys"].as_array().expect("keys").iter().find(|k| k["label"] == "hwksk").expect("hwksk")["id"].to_string();
    let w1 = cards.path("w1.bin").display().to_string();
    tool("sc-hsm-tool", &["-r", "0", "--wrap-key", &w1, "--key-reference", &hwksk_id, "--pin", PIN]);
    let (ok, out) = answered(&["ceremony", "unwrap", "-r", "serial:DEEM10002", &w1], &[PIN]);
    assert!(ok, "sc-hsm-tool's wrapped key unwrapped by hwsigner: {out}");
    let c2 = card_json("DEEM10002");
    assert!(c2["keys"].as_array().expect("keys").iter().any(|k| k["label"] == "hwksk"), "{c2}");

    // Wrap by hwsigner, unwrap by sc-hsm-tool (card 1 -> card 2).
    let w2 = cards.path("w2.bin").display().to_string();
    let (ok, out) = answered(&["ceremony", "wrap", "-r", "serial:DEEM10001", "--key", "oscgen", "--out", &w2], &[PIN]);
    assert!(ok, "{out}");
    tool("sc-hsm-tool", &["-r", "1", "--unwrap-key", &w2, "--key-reference", "20", "--pin", PIN, "--force"]);
    let p15 = tool("pkcs15-tool", &["--reader", "1", "-D"]);
    assert!(p15.contains("oscgen"), "hwsigner's wrapped key unwrapped by sc-hsm-tool: {p15}");

    // Unwrap onto a card with another DKEK: refused with both KCVs, nothing unwrapped.
    let (ok, out) = answered(&["ceremony", "unwrap", "-r", "serial:DEEM10003", &w2], &[PIN]);
    assert!(!ok && out.contains(&kcv1) && out.contains(&kcv3) && out.contains("nothing was unwrapped"), "{out}");
    assert!(card_json("DEEM10003")["keys"].as_array().expect("keys").is_empty());

    // Clone with proof; a wrong SO-PIN shows the tries left; initialised cards are not wiped by accident.
    let clone = ["ceremony", "clone", "--from", "serial:DEEM10001", "--to", "serial:DEEM10002", "--key", "oscgen"];
    let (ok, out) = answered(&clone, &[PIN, PIN]);
    assert!(ok && out.contains("cloned under DKEK") && out.contains("card DEEM10002: key id") && !out.contains('{'), "{out}");
    // Again, with JSON: the clone is there already and is reported as such.
    let (ok, out) = answered(&[&clone[..], &["--json"]].concat(), &[PIN, PIN]);
    assert!(ok, "{out}");
    let rep = first_json(&out);
    assert!(rep["kcv"] == kcv1.as_str() && rep["targets"][0][0] == "DEEM10002", "JSON when asked: {out}");
    let (ok, out) = answered(&["ceremony", "init", "-r", "serial:DEEM10001", "--dkek-shares", "1"], &[SO, PIN, PIN]);
    assert!(!ok && out.contains("--wipe"), "no wipe without confirmation: {out}");
    let (ok, out) = answered(&["ceremony", "init", "-r", "serial:DEEM10001", "--wipe"], &["0000000000000000", PIN, PIN]);
    assert!(!ok && out.contains("SO-PIN was rejected; 14 tries left"), "{out}");
    assert!(!card_json("DEEM10001")["keys"].as_array().expect("keys").is_empty(), "keys untouched");
    let (ok, out) = answered(&["ceremony", "keygen", "-r", "serial:DEEM10001", "--zone", "example.", "--label", "x"], &["999999"]);
    assert!(!ok && out.contains("user PIN was rejected; 2 tries left"), "{out}");

    // PIN management: change, a wrong old PIN counts down, unblock with the SO-PIN.
    let (ok, out) = answered(&["ceremony", "change-pin", "-r", "serial:DEEM10003"], &[PIN, "123456", "123456"]);
    assert!(ok, "{out}");
    let (ok, out) = answered(&["ceremony", "change-pin", "-r", "serial:DEEM10003"], &[PIN, "654321", "654321"]);
    assert!(!ok && out.contains("tries left"), "{out}");
    let (ok, out) = answered(&["ceremony", "unblock", "-r", "serial:DEEM10003"], &[SO, PIN, PIN]);
    assert!(ok, "{out}");
    assert_eq!(card_json("DEEM10003")["pin_tries"], 3, "counter reset by the SO-PIN");

    // A share whose password is split 2-of-3 among officers; any two open it.
    let s3 = cards.path("s3.pbe").display().to_string();
    let (ok, out) = answered(&["ceremony", "dkek-share", "create", &s3, "--password-shares", "2/3"], &["", "", ""]);
    assert!(ok, "{out}");
    let field = |name: &str| -> Vec<String> {
        out.lines().filter_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches([' ', ':']).trim().to_owned())).collect()
    };
    let (primes, ids, values) = (field("Prime"), field("Share ID"), field("Share value"));
    assert_eq!((primes.len(), ids.len(), values.len()), (3, 3, 3), "three password shares shown: {out}");
    let answers = [primes[0].as_str(), ids[0].as_str(), values[0].as_str(), primes[2].as_str(), ids[2].as_str(), values[2].as_str()];
    let (ok, out) = answered(&["ceremony", "dkek-share", "import", &s3, "-r", "serial:DEEM10004", "--password-shares", "2"], &answers);
    assert!(ok && out.contains("DKEK complete"), "shares 1 and 3 of 3 open the share file: {out}");

    // A card pulled out: the step names it; the other cards are untouched.
    cards.remove(3);
    let (ok, out) =
        answered(&["ceremony", "clone", "--from", "serial:DEEM10001", "--to", "serial:DEEM10004", "--key", "oscgen"], &[PIN, PIN]);
    assert!(!ok && out.contains("no SmartCard-HSM with serial DEEM10004"), "{out}");
}

#[test]
fn scripted_ceremony_then_four_cloned_cards_sign_a_zone() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let cards = Cards::new(20);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("ceremony/first-ksk.toml");
    let transcript = cards.path("first-ksk.jsonl");
    let sharedir = cards.dir.path().display().to_string();
    let sets = [
        "--set",
        "primary=serial:DEEM10001",
        "--set",
        "backup=serial:DEEM10002",
        "--set",
        &format!("sharedir={sharedir}"),
        "--set",
        "zone=example.com.",
    ];
    let mut args = vec!["ceremony", "run", script.to_str().expect("path"), "--transcript", transcript.to_str().expect("path")];
    args.extend(sets);
    // Every answer in the order the script asks: the witness confirms, the
    // operator initialises both cards, each officer types their own password.
    let answers = [
        "yes",
        SO,
        PIN,
        PIN,
        SO,
        PIN,
        PIN,
        "alice-secret",
        "alice-secret",
        "bob-secret",
        "bob-secret",
        "alice-secret",
        "bob-secret",
        "alice-secret",
        "bob-secret",
        "yes",
        PIN,
        PIN,
        PIN,
        "yes",
    ];
    let (ok, out) = answered(&args, &answers);
    assert!(ok, "first-ksk ceremony: {out}");
    assert!(out.contains("ceremony complete") && out.contains("IN DS "), "{out}");
    let words = out.lines().skip_while(|l| !l.contains("read aloud")).nth(1).expect("words").trim().to_owned();
    let kcv = kcv("DEEM10001");
    assert_eq!(kcv, self::kcv("DEEM10002"));
    let text = std::fs::read_to_string(&transcript).expect("transcript");
    assert!(text.contains("\"primary\":\"serial:DEEM10001\"") && text.contains("\"end\":\"complete\""), "--set recorded, closed: {text}");
    assert_eq!(text.matches(&format!("\"kcv\":\"{kcv}\"")).count(), 3, "the KCV recorded for both cards and the clone: {text}");

    // The transcript verifies against the paper words, and one changed byte is found.
    let (ok, out) = run(&mut hwsigner(&[
        "ceremony",
        "verify-transcript",
        script.to_str().expect("path"),
        transcript.to_str().expect("path"),
        "--expect",
        &words,
    ]));
    assert!(ok && out.contains("transcript intact") && out.contains("matches the words on the paper record"), "{out}");
    let mut bytes = std::fs::read(&transcript).expect("transcript");
    let at = bytes.windows(9).position(|w| w == b"DEEM10001").expect("serial in transcript") + 8;
    bytes[at] = b'9';
    let tampered = cards.path("tampered.jsonl");
    std::fs::write(&tampered, &bytes).expect("write");
    let (ok, out) =
        run(&mut hwsigner(&["ceremony", "verify-transcript", script.to_str().expect("path"), tampered.to_str().expect("path")]));
    assert!(!ok && out.contains("altered"), "{out}");

    // Two more cards join through the add-backup-card script.
    let add = root.join("ceremony/add-backup-card.toml");
    for (n, serial) in ["DEEM10003", "DEEM10004"].iter().enumerate() {
        let t = cards.path(&format!("add-{n}.jsonl"));
        let newcard = format!("newcard=serial:{serial}");
        let kcvset = format!("kcv={kcv}");
        let share = format!("sharedir={sharedir}");
        let args = [
            "ceremony",
            "run",
            add.to_str().expect("path"),
            "--transcript",
            t.to_str().expect("path"),
            "--set",
            &newcard,
            "--set",
            "primary=serial:DEEM10001",
            "--set",
            &kcvset,
            "--set",
            &share,
        ];
        let (ok, out) = answered(&args, &[SO, PIN, PIN, "alice-secret", "bob-secret", PIN, PIN]);
        assert!(ok, "add-backup-card for {serial}: {out}");
    }

    // Ceremony commands leave the cards as they found them: a reset on
    // disconnect would log out every OpenSC session signing on the same card.
    let before = cards.resets();
    let (ok, out) = run(&mut hwsigner(&["ceremony", "list", "--json"]));
    assert!(ok, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(cards.resets(), before, "ceremony list reset a card");

    // The pool signs through OpenSC over all four cards.
    let config = cards.signing_config("cards.toml", "");
    let signed = cards.path("signed.zone");
    let mut c = hwsigner(&["sign", "--json", "--zone", "example.com.", "--config"]);
    c.arg(&config).arg("--output").arg(&signed).arg(root.join("examples/example.com.zone")).env("CARD_PIN", PIN);
    let (ok, out) = run(&mut c);
    assert!(ok, "{out}");
    common::validate_with(&signed, "example.com.", "four emulated SmartCard-HSMs", true);
    let devices = common::summary_devices(&out);
    assert_eq!(devices.len(), 4, "{out}");
    for d in devices {
        assert!(d["signatures"].as_u64().unwrap_or(0) > 0, "every card signs: {d}");
    }

    // pcscd stops answering mid-run (the failure that kept smartcard signing
    // out of production): the hung workers are killed, their replacements
    // wait out the stopped daemon with back-off, and the zone completes once
    // pcscd answers again, every signature checked on the host.
    let big = cards.path("big.zone");
    let generated = Command::new(root.join("scripts/genzone.sh")).args(["1500", "example.com."]).output().expect("genzone");
    std::fs::write(&big, generated.stdout).expect("zone");
    let config = cards.signing_config("cards-hang.toml", "watchdog = \"1s\"\nstart_timeout = \"3s\"\nmax_backoff = \"1s\"\n");
    let signed = cards.path("signed-big.zone");
    let signs = || cards.count("sign").iter().sum::<usize>();
    let before = signs();
    let mut c = hwsigner(&["sign", "--json", "--zone", "example.com.", "--config"]);
    c.arg(&config).arg("--output").arg(&signed).arg(&big).env("CARD_PIN", PIN).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("sign");
    let t = std::time::Instant::now();
    while signs() < before + 200 {
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "signing did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    {
        let _stopped = StoppedPcscd::stop();
        std::thread::sleep(std::time::Duration::from_secs(4));
    }
    let o = child.wait_with_output().expect("sign");
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "signing through a pcscd that stopped for 4 s: {out}");
    common::validate_with(&signed, "example.com.", "pcscd stopped mid-run", true);
    let devices = common::summary_devices(&out);
    let restarts: u64 = devices.iter().map(|d| d["restarts"].as_u64().unwrap_or(0)).sum();
    assert!(restarts >= 1, "hung workers were replaced: {out}");
    assert!(devices.iter().all(|d| d["state"] == "healthy"), "every card back after pcscd resumed: {out}");
}

/// pcscd frozen with SIGSTOP (it then neither answers nor drops its clients,
/// as when it hangs in the field) and resumed when dropped, even if the test
/// fails in between.
struct StoppedPcscd;

impl StoppedPcscd {
    fn stop() -> StoppedPcscd {
        let ok = Command::new("pkill").args(["-STOP", "-x", "pcscd"]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "pcscd could not be stopped");
        StoppedPcscd
    }
}

impl Drop for StoppedPcscd {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-CONT", "-x", "pcscd"]).status();
    }
}

/// KCVs as the CLI prints them.
fn hex_kcv(share: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&hwsigner::smartcard::dkek::share_kcv(share).expect("32-byte share"))
}

const ZERO_KCV: &str = "66687AADF862BD77";

#[test]
fn dkek_shares_that_repeat_or_cancel_are_refused() {
    use hwsigner::smartcard::pbe;
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Cards whose random generator answers 00 01 02 ...: fully predictable.
    let cards = Cards::with(0, &["--counting-challenge"]);
    let a = cards.path("a.pbe");
    let at = a.display().to_string();

    // A share made with the card's generator is not the card's bytes: the host's randomness is mixed in.
    let (ok, out) = answered(&["ceremony", "dkek-share", "create", &at, "-r", "serial:DEEM10001"], &["officer-one", "officer-one"]);
    assert!(ok, "{out}");
    let share = pbe::open_share(&std::fs::read(&a).expect("share file"), b"officer-one").expect("open the share");
    let counting: Vec<u8> = (0u8..32).collect();
    assert_ne!(share.as_slice(), counting.as_slice(), "the share is the predictable card's GET CHALLENGE output");
    let ka = hex_kcv(&share);
    assert!(out.contains(&format!("share key check value {ka}")), "the share's KCV is shown: {out}");

    // The same 32 bytes under another password: a second file, different on
    // disk, whose share cancels the first.
    let b = cards.path("b.pbe");
    let bt = b.display().to_string();
    std::fs::write(&b, pbe::seal_share(&share, b"officer-two", pbe::new_salt().expect("salt")).expect("seal")).expect("write");
    assert_ne!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));

    let (ok, out) = answered(&["ceremony", "init", "-r", "serial:DEEM10002", "--dkek-shares", "2"], &[SO, PIN, PIN]);
    assert!(ok, "{out}");
    let (ok, out) = answered(&["ceremony", "dkek-share", "import", &at, "-r", "serial:DEEM10002"], &["officer-one"]);
    assert!(ok && out.contains("1 of 2 still missing"), "{out}");
    // The same share file twice, then the twin file: both refused before import, naming the KCVs.
    for (file, pw) in [(&at, "officer-one"), (&bt, "officer-two")] {
        let (ok, out) = answered(&["ceremony", "dkek-share", "import", file, "-r", "serial:DEEM10002"], &[pw]);
        assert!(
            !ok && out.contains(&format!("share (KCV {ka})")) && out.contains(ZERO_KCV) && out.contains("nothing was imported"),
            "{file}: a share that cancels the DKEK so far is refused: {out}"
        );
        assert_eq!(card_json("DEEM10002")["dkek"]["outstanding"], 1, "nothing imported");
    }

    // sc-hsm-tool does not check: it imports the share twice into a
    // three-share card, whose DKEK so far is then the all-zero key. hwsigner
    // sees that in the card's KCV and adds no share to it.
    tool("sc-hsm-tool", &["-r", "2", "--initialize", "--so-pin", SO, "--pin", PIN, "--dkek-shares", "3"]);
    for _ in 0..2 {
        tool("sc-hsm-tool", &["-r", "2", "--import-dkek-share", &at, "--password", "officer-one"]);
    }
    assert_eq!(kcv("DEEM10003"), ZERO_KCV, "the emulator reports the KCV of the shares so far");
    let (ok, out) = answered(&["ceremony", "dkek-share", "import", &bt, "-r", "serial:DEEM10003"], &["officer-two"]);
    assert!(!ok && out.contains("cancel each other") && out.contains(ZERO_KCV) && out.contains("nothing was imported"), "{out}");
    assert_eq!(card_json("DEEM10003")["dkek"]["outstanding"], 1, "nothing imported");

    // A two-share card completed by sc-hsm-tool with one share twice holds the
    // all-zero DKEK: listed as such, and no key is made under it.
    tool("sc-hsm-tool", &["-r", "3", "--initialize", "--so-pin", SO, "--pin", PIN, "--dkek-shares", "2"]);
    for _ in 0..2 {
        tool("sc-hsm-tool", &["-r", "3", "--import-dkek-share", &at, "--password", "officer-one"]);
    }
    let (ok, out) = run(&mut hwsigner(&["ceremony", "list"]));
    assert!(ok && out.contains(&format!("KCV {ZERO_KCV}: THE ALL-ZERO KEY")), "{out}");
    let (ok, out) = answered(&["ceremony", "keygen", "-r", "serial:DEEM10004", "--zone", "example.", "--label", "k"], &[PIN]);
    assert!(!ok && out.contains("all-zero key") && out.contains(ZERO_KCV), "{out}");
    assert!(card_json("DEEM10004")["keys"].as_array().expect("keys").is_empty(), "no key made");
}

/// A script that needs no card: what the transcript records and how
/// `verify-transcript` judges it when intact, edited, cut short or emptied.
#[test]
fn transcripts_record_the_ceremony_and_show_every_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("witness.toml");
    std::fs::write(
        &script,
        "version = 1\ntitle = \"Witness only\"\nofficers = []\nwitness = \"wendy\"\n\n[[step]]\ntitle = \"Seals\"\nactor = \"wendy\"\naction = \"confirm\"\ntext = \"Seals of the safe at {site} in room {room} are intact.\"\n",
    )
    .expect("script");
    let st = script.to_str().expect("path");
    let path = |n: &str| dir.path().join(n).display().to_string();
    let verify = |t: &str, extra: &[&str]| run(&mut hwsigner(&[&["ceremony", "verify-transcript", st, t][..], extra].concat()));

    // A complete ceremony: --set values and the variable asked for are recorded.
    let t = path("t.jsonl");
    let (ok, out) = answered(&["ceremony", "run", st, "--transcript", &t, "--set", "site=lab-3"], &["B.12", "yes"]);
    assert!(ok && out.contains("ceremony complete"), "{out}");
    let words = out.lines().skip_while(|l| !l.contains("read aloud")).nth(1).expect("words").trim().to_owned();
    assert_eq!(words.split_whitespace().count(), 4, "16 words in four groups: {words}");
    assert!(!out.contains("\"confirmed\""), "people get text, not JSON: {out}");
    let text = std::fs::read_to_string(&t).expect("transcript");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("{\"version\":1,") && lines[0].contains("\"set\":{\"site\":\"lab-3\"}"), "{}", lines[0]);
    assert!(lines[1].contains("\"variables_asked\":{\"room\":\"B.12\"}"), "{}", lines[1]);
    assert!(lines[2].contains("\"end\":\"complete\""), "{}", lines[2]);

    let (ok, out) = verify(&t, &[]);
    assert!(ok && out.contains("transcript intact") && out.contains("completed") && out.contains(&words), "{out}");
    let (ok, out) = verify(&t, &["--expect", &words.to_uppercase()]);
    assert!(ok && out.contains("matches the words on the paper record"), "{out}");
    let mut wrong: Vec<String> = words.split('-').map(str::to_owned).collect();
    wrong[0] = if wrong[0] == "babab" { "babad".into() } else { "babab".into() };
    let wrong = wrong.join("-");
    let (ok, out) = verify(&t, &["--expect", &wrong]);
    assert!(!ok && out.contains(&words) && out.contains(&wrong) && out.contains("does not match the paper record"), "{out}");

    // Damaged copies, each reported with its reason and a failing exit status.
    let damaged = |name: &str, bytes: &[u8]| {
        let p = path(name);
        std::fs::write(&p, bytes).expect("write");
        verify(&p, &[])
    };
    let edited = text.replacen("lab-3", "lab-4", 1);
    let (ok, out) = damaged("edited.jsonl", edited.as_bytes());
    assert!(!ok && out.contains(":1:") && out.contains("does not match its hash"), "edited byte: {out}");
    let (ok, out) = damaged("cut.jsonl", &text.as_bytes()[..text.len() - 5]);
    assert!(!ok && out.contains(":3:") && out.contains("last line is incomplete"), "last line cut: {out}");
    let without_last: String = lines[..2].iter().map(|l| format!("{l}\n")).collect();
    let (ok, out) = damaged("short.jsonl", without_last.as_bytes());
    assert!(!ok && out.contains("incomplete: no closing entry"), "last entry removed: {out}");
    let (ok, out) = damaged("empty.jsonl", b"");
    assert!(!ok && out.contains("empty"), "empty file: {out}");
    let (ok, out) = verify(&t, &["--expect", &words]);
    assert!(ok, "the original is untouched: {out}");

    // An aborted ceremony is closed as aborted and says so.
    let ta = path("aborted.jsonl");
    let (ok, out) = answered(&["ceremony", "run", st, "--transcript", &ta, "--set", "site=lab-3", "--set", "room=B.12"], &["no"]);
    assert!(!ok && out.contains("did not confirm"), "{out}");
    assert!(std::fs::read_to_string(&ta).expect("transcript").contains("\"end\":\"aborted\""));
    let (ok, out) = verify(&ta, &[]);
    assert!(ok && out.contains("ABORTED (step 1: wendy did not confirm)"), "{out}");

    // A secret-looking variable is refused before anything is written.
    let tp = path("pin.jsonl");
    let (ok, out) = answered(&["ceremony", "run", st, "--transcript", &tp, "--set", "user_pin=648219"], &[]);
    assert!(!ok && out.contains("--set user_pin") && out.contains("looks like a secret"), "{out}");
    assert!(!Path::new(&tp).exists());

    // A script of an unknown format version is refused.
    let v2 = dir.path().join("v2.toml");
    std::fs::write(&v2, std::fs::read_to_string(&script).expect("script").replace("version = 1", "version = 2")).expect("v2");
    let (ok, out) = answered(&["ceremony", "run", v2.to_str().expect("path"), "--transcript", &path("v2.jsonl")], &[]);
    assert!(!ok && out.contains("script format version 2 is not known"), "{out}");
}
