//! swtpm, one instance per test: state in a temporary directory, loopback
//! ports below the ephemeral range, run as an unprivileged user when the tests
//! run as root (as in CI).

use super::{hwsigner, require, run};
use std::cell::Cell;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// A running swtpm.
pub struct Tpm {
    /// Holds the TPM state and whatever a test writes beside it.
    pub dir: tempfile::TempDir,
    /// The server port; the control port is the next one. It can change on a
    /// restart, because a killed swtpm may leave its port in TIME_WAIT.
    pub port: Cell<u16>,
}

/// Ports handed out in this process, so parallel tests never pick the same pair
/// (a port freed by a killed swtpm would otherwise look free to another test).
static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A free server/control port pair below the kernel's ephemeral range. The
/// swtpm TCTI connects once per command, so a signing run leaves thousands of
/// client sockets in TIME_WAIT on ephemeral ports; swtpm binds without
/// SO_REUSEADDR and would find such a port taken although a probe bind (with
/// SO_REUSEADDR, as std sets it) succeeds.
fn free_port_pair() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u16>().ok()))
        .unwrap_or(32768);
    let (first, last) = (10000u16, low.saturating_sub(2).max(10002));
    let span = u32::from((last - first) / 2);
    let seed =
        std::process::id() ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..span {
        let p = first + 2 * ((seed.wrapping_add(i.wrapping_mul(7919)) % span) as u16);
        let clash = taken.iter().any(|&t| t.abs_diff(p) <= 1);
        if !clash && TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            taken.push(p);
            return p;
        }
    }
    panic!("no free port pair between {first} and {last}");
}

/// The unprivileged user swtpm runs as when the tests run as root (as in CI).
pub const SWTPM_USER: &str = "nobody";

pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

impl Tpm {
    pub fn new() -> Tpm {
        require("swtpm", "swtpm");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("state");
        if running_as_root() {
            // swtpm runs as an unprivileged user (--runas below): it must reach
            // and own its state directory.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let (ok, out) = run(Command::new("chown").arg(format!("{SWTPM_USER}:")).arg(&state));
            assert!(ok, "chown of the swtpm state: {out}");
        }
        let tpm = Tpm { dir, port: Cell::new(free_port_pair()) };
        tpm.start();
        tpm
    }

    /// Starts swtpm (again, after `kill`, with its state kept). A port that
    /// stays taken, by another process or by the killed instance's socket in
    /// TIME_WAIT, means moving to a fresh pair: the TPM state is in the
    /// directory, not tied to the port.
    pub fn start(&self) {
        let mut last = String::new();
        for attempt in 0..40 {
            match self.try_start() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            if attempt % 4 == 3 {
                self.port.set(free_port_pair());
            } else {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        panic!("swtpm did not start: {last}");
    }

    pub fn try_start(&self) -> Result<(), String> {
        let state = self.dir.path().join("state");
        let mut swtpm = Command::new("swtpm");
        swtpm.arg("socket");
        if running_as_root() {
            swtpm.args(["--runas", SWTPM_USER]);
        }
        let (ok, out) = run(swtpm.args([
            "--tpm2",
            "--tpmstate",
            &format!("dir={}", state.display()),
            "--server",
            &format!("type=tcp,port={},bindaddr=127.0.0.1", self.port.get()),
            "--ctrl",
            &format!("type=tcp,port={},bindaddr=127.0.0.1", self.port.get() + 1),
            "--flags",
            "not-need-init,startup-clear",
            "--pid",
            &format!("file={}", state.join("swtpm.pid").display()),
            "-d",
        ]));
        if !ok {
            return Err(out);
        }
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port.get())).is_ok() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!("swtpm does not listen on {}", self.port.get()))
    }

    /// The uid swtpm runs as (from /proc).
    pub fn uid(&self) -> u32 {
        let pid = std::fs::read_to_string(self.dir.path().join("state/swtpm.pid")).expect("swtpm pid file");
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).expect("swtpm status");
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).expect("Uid line")
    }

    pub fn kill(&self) {
        let file = self.dir.path().join("state/swtpm.pid");
        if let Ok(pid) = std::fs::read_to_string(&file) {
            // A stale file must not make a later kill hit a recycled pid.
            let _ = std::fs::remove_file(&file);
            let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port.get())
    }

    pub fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    pub fn hw(&self, args: &[&str]) -> Command {
        let mut c = hwsigner(args);
        c.env("TCTI", self.tcti()).env("TPM2TOOLS_TCTI", self.tcti()).env("TSS2_LOG", "all+none");
        c
    }

    pub fn tool(&self, cmd: &str, args: &[&str]) -> String {
        let (ok, out) = run(Command::new(cmd).args(args).env("TPM2TOOLS_TCTI", self.tcti()).env("TSS2_LOG", "all+none"));
        assert!(ok, "{cmd} {args:?}: {out}");
        out
    }

    pub fn keygen(&self, keys: &Path, alg: &str, role: &str, extra: &[&str]) -> String {
        let mut c = self.hw(&["keys", "generate", "--backend", "tpm", "--zone", super::AWKWARD_ORIGIN, "-a", alg, "--role", role, "-K"]);
        c.arg(keys).args(extra);
        let (ok, out) = run(&mut c);
        assert!(ok, "TPM key generation: {out}");
        assert!(out.contains("can never leave this TPM"), "the operator is warned: {out}");
        out
    }

    pub fn sign(&self, keys: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
        let mut c = self.hw(&["sign", "--zone", super::AWKWARD_ORIGIN, "-K"]);
        c.arg(keys).args(extra).arg("--output").arg(out).arg(super::awkward_zone());
        run(&mut c)
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        self.kill();
    }
}
