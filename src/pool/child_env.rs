//! The environment of the processes the signer starts (signing workers and
//! PKCS#11 discovery children).
//!
//! A child inherits nothing by default: its environment is cleared and only
//! the variables on [`ALLOWED`] (exact names) or [`ALLOWED_PREFIXES`] are
//! copied from the signer's, which are what PKCS#11 modules, PC/SC, TPM TCTIs
//! and logging read. Everything else stays behind, in particular the variable
//! a PIN or a TPM authorisation value was read from (`pin_env`,
//! `--tpm-auth-env`): `/proc/PID/environ` and `execve` traces show a child's
//! environment to anyone who may trace it. As a second guard, every variable a
//! secret was read from ([`crate::secret::secret_env_vars`]) is removed even
//! when its name is on the allow-list.
//!
//! A vendor module that needs another variable is given it by naming it in
//! `HWSIGNER_WORKER_ENV` (names separated by spaces or commas); a name that
//! held a secret is never passed, whatever that list says.

use std::process::Command;

/// Variables passed to children by exact name.
pub const ALLOWED: &[&str] = &[
    // Finding programs and libraries, the user's files, locale and time.
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    // PKCS#11 modules' configuration: SoftHSM2, OpenSC, YubiHSM 2, p11-kit,
    // Thales Luna, Entrust nShield, Utimaco.
    "SOFTHSM2_CONF",
    "OPENSC_CONF",
    "OPENSC_DRIVER",
    "YUBIHSM_PKCS11_CONF",
    "P11_KIT_SERVER_ADDRESS",
    "ChrystokiConfigurationPath",
    "NFAST_HOME",
    "CS_PKCS11_R2_CFG",
    "CS_PKCS11_R3_CFG",
    // OpenSSL (host-side hashing in the worker; a FIPS provider set-up).
    "OPENSSL_CONF",
    "OPENSSL_MODULES",
    // TPM TCTIs (tpm2-tools' variable and the plain one `tcti()` reads).
    "TPM2TOOLS_TCTI",
    "TCTI",
    // Logging and diagnostics of this program.
    "RUST_LOG",
    "RUST_BACKTRACE",
    // The extension list itself, so that a worker's own children follow it.
    "HWSIGNER_WORKER_ENV",
];

/// Variables passed to children by prefix: locale categories, pcsc-lite,
/// the TSS2 libraries (TCTI and log configuration), tpm2-pkcs11 (`TPM2_PKCS11_STORE`,
/// `_TCTI`, `_LOG_LEVEL`), nShield's `CKNFAST_`
/// settings, and the test suite's fault-injecting module
/// (`tests/fault-pkcs11`: `FAULT_PKCS11_MODULE`, `_CONTROL`, `_LOG`).
pub const ALLOWED_PREFIXES: &[&str] = &["LC_", "PCSCLITE_", "TSS2_", "TPM2_PKCS11_", "CKNFAST_", "FAULT_PKCS11_"];

/// The operator's extension list.
const EXTRA: &str = "HWSIGNER_WORKER_ENV";

/// True when a variable of this name may be passed to a child.
fn allowed(name: &str, extra: &[String]) -> bool {
    ALLOWED.contains(&name) || ALLOWED_PREFIXES.iter().any(|p| name.starts_with(p)) || extra.iter().any(|e| e == name)
}

/// The variables a child gets: the allowed part of `vars`, minus every name
/// in `secret`.
fn filter(vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>, secret: &[String]) -> Vec<(String, std::ffi::OsString)> {
    let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = vars.collect();
    let extra: Vec<String> = vars
        .iter()
        .find(|(k, _)| k == EXTRA)
        .and_then(|(_, v)| v.to_str())
        .map(|v| v.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    vars.into_iter()
        .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
        .filter(|(k, _)| allowed(k, &extra) && !secret.iter().any(|s| s == k))
        .collect()
}

/// Gives `cmd` a cleaned copy of this process's environment (see the module
/// documentation). Variables the caller sets on `cmd` afterwards are kept.
pub fn clean(cmd: &mut Command) -> &mut Command {
    let vars = filter(std::env::vars_os(), &crate::secret::secret_env_vars());
    cmd.env_clear().envs(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
        list.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn only_allowed_names_pass_and_secret_names_never() {
        let env = vars(&[
            ("PATH", "/usr/bin"),
            ("TEST_PIN", "1234"),
            ("SOFTHSM2_CONF", "/x"),
            ("LC_ALL", "C"),
            ("FAULT_PKCS11_CONTROL", "/c"),
            ("HWSIGNER_WORKER_ENV", "VENDOR_CONF, PCSCLITE_PIN"),
            ("VENDOR_CONF", "/v"),
            ("PCSCLITE_PIN", "4321"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
        ]);
        let got = filter(env, &["PCSCLITE_PIN".to_owned()]);
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "SOFTHSM2_CONF", "LC_ALL", "FAULT_PKCS11_CONTROL", "HWSIGNER_WORKER_ENV", "VENDOR_CONF"]);
    }
}
