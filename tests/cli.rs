//! Command-line conventions, from outside: shell completions and man pages
//! generated from the command definitions, and log lines coloured only on a
//! terminal (never in a file, a pipe or journald, never with `NO_COLOR`).

mod common;
use common::{hwsigner, require, run};
use std::path::Path;
use std::process::{Command, Stdio};

const COMMANDS: [&str; 6] = ["sign", "verify", "keys", "ceremony", "tokens", "tpm"];

fn stdout_of(args: &[&str]) -> String {
    let out = hwsigner(args).output().expect("run hwsigner");
    assert!(out.status.success(), "hwsigner {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_name_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        for c in COMMANDS.iter().chain(&["generate", "verify-transcript", "output", "zone"]) {
            assert!(script.contains(c), "{shell} completions lack {c}");
        }
        assert!(!script.contains("worker"), "{shell} completions offer the internal worker command");
    }
    assert!(stdout_of(&["completions", "bash"]).contains("complete -F _hwsigner"));
    let (ok, out) = run(&mut hwsigner(&["completions", "tcsh"]));
    assert!(!ok && out.contains("tcsh"), "an unknown shell is refused: {out}");
}

#[test]
fn man_pages_describe_the_commands() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH hwsigner 1") && page.contains(".SH SYNOPSIS"), "{page}");
    for c in COMMANDS {
        assert!(page.contains(&format!("hwsigner\\-{c}")), "the main page lists {c}");
    }
    let d = tempfile::tempdir().expect("tempdir");
    let (ok, out) = run(hwsigner(&["man", "--dir"]).arg(d.path()));
    assert!(ok, "{out}");
    let sign = std::fs::read_to_string(d.path().join("hwsigner-sign.1")).expect("hwsigner-sign.1");
    assert!(sign.contains("\\-\\-output") && sign.contains("\\-\\-zone"), "{sign}");
    assert!(d.path().join("hwsigner-keys-generate.1").exists());
    assert!(!d.path().join("hwsigner-worker.1").exists(), "the internal worker gets no page");
    require("man", "man-db");
    let (ok, text) = run(Command::new("man").arg("-l").arg(d.path().join("hwsigner-sign.1")).env("MANPAGER", "cat"));
    assert!(ok && text.contains("--output"), "man renders the page: {text}");
}

/// A zone and a key, and the `sign` arguments that log debug lines.
fn signing_setup(d: &Path) -> Vec<String> {
    let keys = d.join("keys");
    let (ok, out) = run(hwsigner(&["keys", "generate", "--zone", "cli.test.", "-a", "15", "--role", "csk", "-K"]).arg(&keys));
    assert!(ok, "{out}");
    let zone = d.join("cli.zone");
    std::fs::write(&zone, "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n").expect("zone");
    let s = |p: &Path| p.to_str().expect("path").to_owned();
    ["-vv", "sign", "--quiet", "--zone", "cli.test.", "-K", &s(&keys), "--output", &s(&d.join("out.zone")), &s(&zone)]
        .map(str::to_owned)
        .to_vec()
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal() {
    let d = tempfile::tempdir().expect("tempdir");
    let args = signing_setup(d.path());

    // Standard error into a file, as under systemd or `2>log`.
    let log = d.path().join("stderr.log");
    let status = hwsigner(&[])
        .args(&args)
        .env_remove("NO_COLOR")
        .stderr(std::fs::File::create(&log).expect("log"))
        .stdout(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    let text = std::fs::read(&log).expect("log");
    assert!(String::from_utf8_lossy(&text).contains("zone read"), "the debug lines are there");
    assert!(!text.contains(&0x1b), "escape codes in a file: {}", String::from_utf8_lossy(&text));

    // On a terminal (script(1) gives it one) colours are on, unless NO_COLOR says otherwise.
    require("script", "bsdutils");
    let on_tty = |no_color: Option<&str>| {
        let cmdline = std::iter::once(env!("CARGO_BIN_EXE_hwsigner").to_owned()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
        let mut c = Command::new("script");
        c.args(["-qec", &cmdline, "/dev/null"]).stdin(Stdio::null());
        match no_color {
            Some(v) => c.env("NO_COLOR", v),
            None => c.env_remove("NO_COLOR"),
        };
        let out = c.output().expect("script");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).contains("zone read"));
        out.stdout.contains(&0x1b)
    };
    assert!(on_tty(None), "no colours on a terminal");
    assert!(!on_tty(Some("1")), "colours despite NO_COLOR");
}

#[test]
fn a_malformed_log_filter_is_reported_not_silently_replaced() {
    let out = hwsigner(&["completions", "bash"]).env("RUST_LOG", "sign=notalevel").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("RUST_LOG is not a log filter"), "{err}");
    let out = hwsigner(&["completions", "bash"]).env("RUST_LOG", "debug").output().expect("run");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"));
}
