//! The worker side: one process per device, signing what the pool sends.
//!
//! A worker is the same `hwsigner` binary started by the signer with a hidden
//! subcommand. It owns exactly one device session, so a driver that hangs or
//! crashes takes down this process only, and a PKCS#11 module's global locks
//! are never shared between two tokens.

use super::protocol::{Failure, FailureKind, Reply, Request, read_frame, write_frame};
use crate::crypto::SignInput;
use std::io::{self, BufReader, BufWriter};
use zeroize::Zeroizing;

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
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
    let mut output = BufWriter::with_capacity(1 << 16, stdout.lock());
    let Some(first) = read_frame(&mut input)? else { return Ok(()) };
    let hello: Zeroizing<Vec<u8>> = match Request::decode(&first)? {
        Request::Hello(h) => h,
        Request::Sign { .. } => return Err(io::Error::new(io::ErrorKind::InvalidData, "worker protocol: sign before hello")),
    };
    let mut device = match open(&hello) {
        Ok(d) => d,
        Err(f) => return write_frame(&mut output, &Reply::Failed(f).encode()),
    };
    drop(hello);
    let ready = Reply::Ready { public_keys: device.public_keys(), device: device.describe(), needs_message: device.needs_message() };
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
