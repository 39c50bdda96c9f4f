//! A PKCS#11 module for tests that forwards every call to a real module
//! (SoftHSM2) and, per token and under the test's control, makes it behave
//! like a card in the field: slow, hung, pulled out, failing, or returning
//! corrupt signatures.
//!
//! Environment:
//! * `FAULT_PKCS11_MODULE`: the real module (default SoftHSM2's);
//! * `FAULT_PKCS11_CONTROL`: a control file, re-read whenever it changes, so a
//!   test can change a token's behaviour in the middle of a run;
//! * `FAULT_PKCS11_LOG`: a file to which every `C_Login` and `C_OpenSession`
//!   is appended (`login <token label>`), so tests can count login attempts.
//!
//! Control file lines: `<token label or *> <action> [after=N] [ms=M]`, where the
//! action is `latency` (sleep M ms per signature), `hang` (never return from
//! `C_Sign`), `removed` (`CKR_DEVICE_REMOVED` from `C_Sign`,
//! `CKR_TOKEN_NOT_PRESENT` from `C_GetTokenInfo`, `C_OpenSession` and
//! `C_Login`), `error` (`CKR_DEVICE_ERROR` from `C_Sign`), `corrupt` (flip a
//! bit of each signature) or `crash` (abort the process inside `C_Sign`, as a
//! vendor library that segfaults would). `hang-listing` and `crash-listing`
//! do the same inside `C_GetTokenInfo`, as a stuck `pcscd` or a broken
//! driver does while the signer is still discovering tokens. `hide=1,40` (hex mechanism numbers,
//! any action name) removes mechanisms from the token's `C_GetMechanismList`,
//! to model tokens such as the AEP Keyper that lack `CKM_RSA_PKCS` or the
//! hash-and-sign mechanisms. `after=N` delays the fault until this process has
//! made N signatures on that token. `once` makes a fault happen in one process
//! only (a card pulled and re-inserted: the next worker finds it back); it is
//! remembered in a file beside the control file. `#` starts a comment.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use cryptoki_sys::*;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

struct Rule {
    token: String,
    action: String,
    after: u64,
    ms: u64,
    once: bool,
    hide: Vec<CK_MECHANISM_TYPE>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    mtime: Option<SystemTime>,
    sessions: HashMap<CK_SESSION_HANDLE, CK_SLOT_ID>,
    labels: HashMap<CK_SLOT_ID, String>,
    signed: HashMap<CK_SLOT_ID, u64>,
}

struct Module {
    real: CK_FUNCTION_LIST,
    ours: CK_FUNCTION_LIST,
}

static MODULE: OnceLock<Result<Module, String>> = OnceLock::new();
static STATE: OnceLock<Mutex<State>> = OnceLock::new();

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.get_or_init(|| Mutex::new(State::default())).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn module() -> Option<&'static Module> {
    MODULE
        .get_or_init(|| unsafe {
            let path = std::env::var("FAULT_PKCS11_MODULE").unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into());
            let lib = libloading::Library::new(&path).map_err(|e| format!("{path}: {e}"))?;
            let lib: &'static libloading::Library = Box::leak(Box::new(lib));
            let get: libloading::Symbol<'_, unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
                lib.get(b"C_GetFunctionList\0").map_err(|e| e.to_string())?;
            let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
            if get(&mut list) != CKR_OK || list.is_null() {
                return Err("C_GetFunctionList of the real module failed".into());
            }
            let real = *list;
            let mut ours = real;
            ours.C_GetFunctionList = Some(C_GetFunctionList);
            ours.C_GetTokenInfo = Some(fault_get_token_info);
            ours.C_OpenSession = Some(fault_open_session);
            ours.C_Login = Some(fault_login);
            ours.C_Sign = Some(fault_sign);
            ours.C_GetMechanismList = Some(fault_get_mechanism_list);
            Ok(Module { real, ours })
        })
        .as_ref()
        .ok()
}

fn log(line: &str) {
    if let Ok(path) = std::env::var("FAULT_PKCS11_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn reload(st: &mut State) {
    let Ok(path) = std::env::var("FAULT_PKCS11_CONTROL") else { return };
    let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    if mtime == st.mtime {
        return;
    }
    st.mtime = mtime;
    st.rules.clear();
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(token), Some(action)) = (words.next(), words.next()) else { continue };
        let mut rule = Rule { token: token.to_owned(), action: action.to_owned(), after: 0, ms: 0, once: false, hide: Vec::new() };
        for w in words {
            if let Some(v) = w.strip_prefix("after=") {
                rule.after = v.parse().unwrap_or(0);
            } else if let Some(v) = w.strip_prefix("ms=") {
                rule.ms = v.parse().unwrap_or(0);
            } else if let Some(v) = w.strip_prefix("hide=") {
                rule.hide = v.split(',').filter_map(|h| CK_MECHANISM_TYPE::from_str_radix(h, 16).ok()).collect();
            } else if w == "once" {
                rule.once = true;
            }
        }
        st.rules.push(rule);
    }
}

unsafe fn label_of(m: &Module, slot: CK_SLOT_ID, st: &mut State) -> String {
    if let Some(l) = st.labels.get(&slot) {
        return l.clone();
    }
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    let Some(f) = m.real.C_GetTokenInfo else { return String::new() };
    if unsafe { f(slot, &mut info) } != CKR_OK {
        return String::new();
    }
    let label = String::from_utf8_lossy(&info.label).trim().to_owned();
    st.labels.insert(slot, label.clone());
    label
}

fn fired_marker(rule: &Rule, label: &str) -> Option<std::path::PathBuf> {
    let control = std::env::var("FAULT_PKCS11_CONTROL").ok()?;
    Some(std::path::PathBuf::from(format!("{control}.fired.{label}.{}", rule.action)))
}

/// The action in force for a token, given its signature count. A `once` rule
/// fires in the first process that reaches it and is then spent.
fn action_for(st: &State, label: &str, signed: u64) -> Option<(String, u64)> {
    let rule = st.rules.iter().rev().find(|r| (r.token == "*" || r.token == label) && signed >= r.after)?;
    if rule.once {
        let marker = fired_marker(rule, label)?;
        let mine = format!("{}", std::process::id());
        match std::fs::read_to_string(&marker) {
            Ok(owner) if owner != mine => return None,
            Ok(_) => {}
            Err(_) => {
                let _ = std::fs::write(&marker, &mine);
            }
        }
    }
    Some((rule.action.clone(), rule.ms))
}

/// The action in force for a slot now.
fn slot_action(slot: CK_SLOT_ID) -> Option<String> {
    let m = module()?;
    let mut st = state();
    reload(&mut st);
    let label = unsafe { label_of(m, slot, &mut st) };
    let signed = st.signed.get(&slot).copied().unwrap_or(0);
    action_for(&st, &label, signed).map(|(a, _)| a)
}

fn removed(slot: CK_SLOT_ID) -> bool {
    slot_action(slot).is_some_and(|a| a == "removed")
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(pp: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    match module() {
        Some(m) if !pp.is_null() => {
            unsafe { *pp = &m.ours as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST };
            CKR_OK
        }
        Some(_) => CKR_ARGUMENTS_BAD,
        None => CKR_GENERAL_ERROR,
    }
}

unsafe extern "C" fn fault_get_token_info(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    let Some(m) = module() else { return CKR_GENERAL_ERROR };
    match slot_action(slot).as_deref() {
        Some("removed") => return CKR_TOKEN_NOT_PRESENT,
        Some("hang-listing") => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Some("crash-listing") => std::process::abort(),
        _ => {}
    }
    match m.real.C_GetTokenInfo {
        Some(f) => unsafe { f(slot, info) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

unsafe extern "C" fn fault_get_mechanism_list(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG) -> CK_RV {
    let Some(m) = module() else { return CKR_GENERAL_ERROR };
    let Some(f) = m.real.C_GetMechanismList else { return CKR_FUNCTION_NOT_SUPPORTED };
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let hidden: Vec<CK_MECHANISM_TYPE> = {
        let mut st = state();
        reload(&mut st);
        let label = unsafe { label_of(m, slot, &mut st) };
        st.rules.iter().filter(|r| r.token == "*" || r.token == label).flat_map(|r| r.hide.iter().copied()).collect()
    };
    let mut n: CK_ULONG = 0;
    let rv = unsafe { f(slot, std::ptr::null_mut(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    let mut all = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let rv = unsafe { f(slot, all.as_mut_ptr(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    all.truncate(n as usize);
    all.retain(|mech| !hidden.contains(mech));
    let room = unsafe { *count } as usize;
    unsafe { *count = all.len() as CK_ULONG };
    if list.is_null() {
        return CKR_OK;
    }
    if room < all.len() {
        return CKR_BUFFER_TOO_SMALL;
    }
    unsafe { std::ptr::copy_nonoverlapping(all.as_ptr(), list, all.len()) };
    CKR_OK
}

unsafe extern "C" fn fault_open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    app: *mut std::ffi::c_void,
    notify: CK_NOTIFY,
    out: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    let Some(m) = module() else { return CKR_GENERAL_ERROR };
    if removed(slot) {
        return CKR_TOKEN_NOT_PRESENT;
    }
    let Some(f) = m.real.C_OpenSession else { return CKR_FUNCTION_NOT_SUPPORTED };
    let rv = unsafe { f(slot, flags, app, notify, out) };
    if rv == CKR_OK && !out.is_null() {
        state().sessions.insert(unsafe { *out }, slot);
    }
    rv
}

unsafe extern "C" fn fault_login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, len: CK_ULONG) -> CK_RV {
    let Some(m) = module() else { return CKR_GENERAL_ERROR };
    let slot = state().sessions.get(&session).copied();
    if let Some(slot) = slot {
        let label = unsafe { label_of(m, slot, &mut state()) };
        log(&format!("login {label}"));
        if removed(slot) {
            return CKR_DEVICE_REMOVED;
        }
    }
    match m.real.C_Login {
        Some(f) => unsafe { f(session, user, pin, len) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

unsafe extern "C" fn fault_sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    let Some(m) = module() else { return CKR_GENERAL_ERROR };
    let Some(f) = m.real.C_Sign else { return CKR_FUNCTION_NOT_SUPPORTED };
    // A length query (no output buffer) is passed straight through.
    if sig.is_null() {
        return unsafe { f(session, data, data_len, sig, sig_len) };
    }
    let (action, slot) = {
        let mut st = state();
        reload(&mut st);
        let slot = st.sessions.get(&session).copied();
        match slot {
            Some(slot) => {
                let label = unsafe { label_of(m, slot, &mut st) };
                let signed = st.signed.get(&slot).copied().unwrap_or(0);
                (action_for(&st, &label, signed), Some(slot))
            }
            None => (None, None),
        }
    };
    match action.as_ref().map(|(a, ms)| (a.as_str(), *ms)) {
        Some(("hang", _)) => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Some(("removed", _)) => return CKR_DEVICE_REMOVED,
        Some(("crash", _)) => std::process::abort(),
        Some(("error", _)) => return CKR_DEVICE_ERROR,
        Some(("latency", ms)) => std::thread::sleep(Duration::from_millis(ms)),
        _ => {}
    }
    let rv = unsafe { f(session, data, data_len, sig, sig_len) };
    if rv == CKR_OK {
        if let Some(slot) = slot {
            *state().signed.entry(slot).or_insert(0) += 1;
        }
        if matches!(action, Some((ref a, _)) if a == "corrupt") && !sig_len.is_null() && unsafe { *sig_len } > 0 {
            unsafe { *sig.add(2) ^= 0x40 };
        }
    }
    rv
}
