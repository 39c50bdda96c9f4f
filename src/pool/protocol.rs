//! The pipe protocol between the signer and its device workers.
//!
//! Frames are a 4-octet big-endian length followed by a tag octet and the
//! payload. It is deliberately small and binary: at tens of thousands of
//! signatures a second the framing must cost next to nothing, and a worker
//! must be able to tell a truncated frame (its parent died) from a real one.

use crate::crypto::SignInput;
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// Largest frame accepted: far above any real batch, small enough that a
/// corrupt length cannot make a worker allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// What the signer asks of a worker.
#[derive(Debug)]
pub enum Request {
    /// First message: the backend's start-up parameters (they may hold a PIN).
    Hello(Zeroizing<Vec<u8>>),
    /// Sign these inputs; the reply carries the same sequence number.
    Sign {
        /// Sequence number chosen by the signer.
        seq: u64,
        /// Which of the worker's keys (index into its Ready list).
        key: u16,
        /// The inputs, in order.
        inputs: Vec<SignInput>,
    },
}

/// How a failure should be treated by the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The device may come back (removed, not present, device error): retry later.
    Transient,
    /// The PIN was rejected: never retried, a card locks after a few attempts.
    PinIncorrect,
    /// The PIN is locked or the token refuses logins.
    PinLocked,
    /// Configuration or key problem that will not go away by itself.
    Fatal,
}

impl FailureKind {
    fn code(self) -> u8 {
        match self {
            FailureKind::Transient => 1,
            FailureKind::PinIncorrect => 2,
            FailureKind::PinLocked => 3,
            FailureKind::Fatal => 4,
        }
    }

    fn from_code(c: u8) -> io::Result<Self> {
        Ok(match c {
            1 => FailureKind::Transient,
            2 => FailureKind::PinIncorrect,
            3 => FailureKind::PinLocked,
            4 => FailureKind::Fatal,
            _ => return Err(bad("unknown failure kind")),
        })
    }
}

/// A failure reported by a worker, with a message naming the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How to treat it.
    pub kind: FailureKind,
    /// What happened (never contains a secret).
    pub message: String,
}

impl Failure {
    /// A new failure.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into() }
    }
}

/// What a worker answers.
#[derive(Debug)]
pub enum Reply {
    /// Logged in and ready; describes the device and the keys found.
    Ready {
        /// The DNSKEY public key fields of the keys, in the order asked for.
        public_keys: Vec<Vec<u8>>,
        /// A human description of the device (label, serial, slot).
        device: String,
        /// True when the device needs the whole message rather than a digest.
        needs_message: bool,
    },
    /// Start-up failed.
    Failed(Failure),
    /// Signatures for request `seq`, in order.
    Signed {
        /// The request.
        seq: u64,
        /// DNSSEC wire-form signatures.
        sigs: Vec<Vec<u8>>,
    },
    /// Request `seq` failed.
    SignFailed {
        /// The request.
        seq: u64,
        /// Why.
        failure: Failure,
    },
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("worker protocol: {what}"))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }
}

fn frame(tag: u8, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, tag];
    body(&mut out);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

impl Request {
    /// Encodes the request as one frame.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Request::Hello(h) => frame(1, |o| put_bytes(o, h)),
            Request::Sign { seq, key, inputs } => frame(2, |o| {
                o.extend_from_slice(&seq.to_be_bytes());
                o.extend_from_slice(&key.to_be_bytes());
                o.extend_from_slice(&(inputs.len() as u32).to_be_bytes());
                for i in inputs {
                    o.push(u8::from(matches!(i, SignInput::Message(_))));
                    put_bytes(o, i.bytes());
                }
            }),
        })
    }

    /// Decodes a frame body (tag and payload).
    ///
    /// # Errors
    /// A malformed frame.
    pub fn decode(body: &[u8]) -> io::Result<Self> {
        let mut c = Cursor(body);
        match c.u8()? {
            1 => Ok(Request::Hello(Zeroizing::new(c.bytes()?.to_vec()))),
            2 => {
                let seq = c.u64()?;
                let kb = c.take(2)?;
                let key = u16::from_be_bytes([kb[0], kb[1]]);
                let n = c.u32()? as usize;
                let mut inputs = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let kind = c.u8()?;
                    let b = c.bytes()?.to_vec();
                    inputs.push(if kind == 1 { SignInput::Message(b) } else { SignInput::Digest(b) });
                }
                Ok(Request::Sign { seq, key, inputs })
            }
            _ => Err(bad("unknown request")),
        }
    }
}

impl Reply {
    /// Encodes the reply as one frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Ready { public_keys, device, needs_message } => frame(1, |o| {
                o.extend_from_slice(&(public_keys.len() as u32).to_be_bytes());
                for k in public_keys {
                    put_bytes(o, k);
                }
                put_bytes(o, device.as_bytes());
                o.push(u8::from(*needs_message));
            }),
            Reply::Failed(f) => frame(2, |o| {
                o.push(f.kind.code());
                put_bytes(o, f.message.as_bytes());
            }),
            Reply::Signed { seq, sigs } => frame(3, |o| {
                o.extend_from_slice(&seq.to_be_bytes());
                o.extend_from_slice(&(sigs.len() as u32).to_be_bytes());
                for s in sigs {
                    put_bytes(o, s);
                }
            }),
            Reply::SignFailed { seq, failure } => frame(4, |o| {
                o.extend_from_slice(&seq.to_be_bytes());
                o.push(failure.kind.code());
                put_bytes(o, failure.message.as_bytes());
            }),
        }
    }

    /// Decodes a frame body (tag and payload).
    ///
    /// # Errors
    /// A malformed frame.
    pub fn decode(body: &[u8]) -> io::Result<Self> {
        let mut c = Cursor(body);
        match c.u8()? {
            1 => {
                let n = c.u32()? as usize;
                let mut public_keys = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    public_keys.push(c.bytes()?.to_vec());
                }
                let device = c.string()?;
                let needs_message = c.u8()? == 1;
                Ok(Reply::Ready { public_keys, device, needs_message })
            }
            2 => {
                let kind = FailureKind::from_code(c.u8()?)?;
                Ok(Reply::Failed(Failure { kind, message: c.string()? }))
            }
            3 => {
                let seq = c.u64()?;
                let n = c.u32()? as usize;
                let mut sigs = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    sigs.push(c.bytes()?.to_vec());
                }
                Ok(Reply::Signed { seq, sigs })
            }
            4 => {
                let seq = c.u64()?;
                let kind = FailureKind::from_code(c.u8()?)?;
                Ok(Reply::SignFailed { seq, failure: Failure { kind, message: c.string()? } })
            }
            _ => Err(bad("unknown reply")),
        }
    }
}

/// Reads one frame body; `Ok(None)` at a clean end of stream.
///
/// # Errors
/// I/O errors and oversized or truncated frames.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_FRAME {
        return Err(bad("frame length out of range"));
    }
    let mut body = Zeroizing::new(vec![0u8; n]);
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes one encoded frame and flushes.
///
/// # Errors
/// I/O errors (a broken pipe when the other side died).
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

/// Writes `body` as one frame (its length first) and flushes.
///
/// # Errors
/// I/O errors, or a body too large (or empty) for a frame.
pub fn write_body(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let n =
        u32::try_from(body.len()).ok().filter(|&n| n != 0 && n as usize <= MAX_FRAME).ok_or_else(|| bad("frame length out of range"))?;
    w.write_all(&n.to_be_bytes())?;
    w.write_all(body)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Sign { seq: 7, key: 1, inputs: vec![SignInput::Digest(vec![1; 32]), SignInput::Message(vec![2; 90])] };
        let f = req.encode();
        let back = Request::decode(&f[4..]).unwrap();
        match back {
            Request::Sign { seq, key, inputs } => {
                assert_eq!((seq, key), (7, 1));
                assert_eq!(inputs, vec![SignInput::Digest(vec![1; 32]), SignInput::Message(vec![2; 90])]);
            }
            Request::Hello(_) => panic!("wrong request"),
        }
        let rep = Reply::SignFailed { seq: 9, failure: Failure::new(FailureKind::PinIncorrect, "token x") };
        let f = rep.encode();
        let mut r = &f[..];
        let body = read_frame(&mut r).unwrap().unwrap();
        match Reply::decode(&body).unwrap() {
            Reply::SignFailed { seq, failure } => {
                assert_eq!(seq, 9);
                assert_eq!(failure, Failure::new(FailureKind::PinIncorrect, "token x"));
            }
            _ => panic!("wrong reply"),
        }
        assert!(read_frame(&mut r).unwrap().is_none());
        assert!(Reply::decode(&[3, 0, 0]).is_err());
    }
}
