//! The worker side: one process per device, signing what the pool sends.
//!
//! A worker is the same `hwsigner` binary started by the signer with a hidden
//! subcommand. It owns exactly one device session, so a driver that hangs or
//! crashes takes down this process only, and a PKCS#11 module's global locks
//! are never shared between two tokens.
//!
//! A worker holds the PIN, so before reading anything it makes itself
//! undumpable ([`harden`]): a vendor module that crashes (what the test
//! suite's fault module simulates) must not leave the PIN in a core file, and
//! other processes of the same user must not read its memory. The hello that
//! carries the PIN is read straight from the pipe, not through a buffer that
//! would keep a copy.

use super::protocol::{BuildId, Failure, FailureKind, Reply, Request, read_frame, write_frame};
use crate::crypto::SignInput;
use std::io::{self, BufReader, BufWriter};
use std::os::fd::AsFd;
use zeroize::Zeroizing;

/// Makes this process keep its memory to itself: no core dumps
/// (`RLIMIT_CORE` 0, soft and hard, so a module cannot raise it again) and
/// not dumpable (`PR_SET_DUMPABLE` 0: no core even through a `core_pattern`
/// pipe, no `ptrace` or `/proc/PID/mem` by the same user; `/proc/PID` files
/// become owned by root).
///
/// # Errors
/// The kernel refused either setting.
pub fn harden() -> io::Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }).map_err(|e| io::Error::other(format!("RLIMIT_CORE: {e}")))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| io::Error::other(format!("PR_SET_DUMPABLE: {e}")))
}

/// Standard input as a file of its own (a duplicate descriptor), read without
/// the process-wide buffer of [`io::Stdin`], which would keep a copy of the
/// secrets that pass through it.
///
/// # Errors
/// The descriptor cannot be duplicated.
pub fn unbuffered_stdin() -> io::Result<std::fs::File> {
    Ok(std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

/// Refuses a signer of another build; the message names both.
fn check_build(theirs: &BuildId) -> Result<(), Failure> {
    let ours = BuildId::this();
    if *theirs == ours {
        return Ok(());
    }
    Err(Failure::new(
        FailureKind::Fatal,
        format!(
            "worker refused a signer of another build: the signer is {theirs}, this worker is {ours}; restart the signer after an upgrade"
        ),
    ))
}

/// A device session opened by a worker, with one or more keys.
pub trait DeviceSigner {
    /// The DNSKEY public key fields of the keys, in the order the Hello named them.
    fn public_keys(&self) -> Vec<Vec<u8>>;
    /// Human description of the device (label, serial, slot).
    fn describe(&self) -> String;
    /// True when the device signs the whole message (no digest mechanism).
    fn needs_message(&self) -> bool;
    /// Signs one input with key `key`.
    ///
    /// # Errors
    /// A [`Failure`] classified for the pool.
    fn sign(&mut self, key: usize, input: &SignInput) -> Result<Vec<u8>, Failure>;
}

/// Serves the pool on standard input and output until the pipe closes.
///
/// `open` receives the Hello payload and opens the device.
///
/// # Errors
/// Pipe I/O errors (the parent went away).
pub fn serve<F>(open: F) -> io::Result<()>
where
    F: FnOnce(&[u8]) -> Result<Box<dyn DeviceSigner>, Failure>,
{
    let stdout = io::stdout();
    let mut output = BufWriter::with_capacity(1 << 16, stdout.lock());
    if let Err(e) = harden() {
        // Refused before the PIN is read: it never enters this process.
        let f = Failure::new(FailureKind::Fatal, format!("worker cannot disable core dumps: {e}"));
        return write_frame(&mut output, &Reply::Failed(f).encode());
    }
    let mut raw = unbuffered_stdin()?;
    let Some(first) = read_frame(&mut raw)? else { return Ok(()) };
    let (build, hello): (BuildId, Zeroizing<Vec<u8>>) = match Request::decode(&first)? {
        Request::Hello { build, body } => (build, body),
        Request::Sign { .. } => return Err(io::Error::new(io::ErrorKind::InvalidData, "worker protocol: sign before hello")),
    };
    drop(first);
    if let Err(f) = check_build(&build) {
        drop(hello);
        return write_frame(&mut output, &Reply::Failed(f).encode());
    }
    let mut device = match open(&hello) {
        Ok(d) => d,
        Err(f) => return write_frame(&mut output, &Reply::Failed(f).encode()),
    };
    drop(hello);
    let mut input = BufReader::with_capacity(1 << 16, raw);
    let ready = Reply::Ready {
        build: BuildId::this(),
        public_keys: device.public_keys(),
        device: device.describe(),
        needs_message: device.needs_message(),
    };
    write_frame(&mut output, &ready.encode())?;
    while let Some(frame) = read_frame(&mut input)? {
        let Request::Sign { seq, key, inputs } = Request::decode(&frame)? else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "worker protocol: second hello"));
        };
        let reply = match inputs.iter().map(|i| device.sign(usize::from(key), i)).collect::<Result<Vec<_>, _>>() {
            Ok(sigs) => Reply::Signed { seq, sigs },
            Err(failure) => Reply::SignFailed { seq, failure },
        };
        write_frame(&mut output, &reply.encode())?;
        if let Reply::SignFailed { failure, .. } = reply
            && failure.kind != FailureKind::Transient
        {
            return Ok(());
        }
    }
    Ok(())
}
