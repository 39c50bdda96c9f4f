//! The pipe protocol between the signer and its device workers.
//!
//! Frames are a 4-octet big-endian length followed by a tag octet and the
//! payload. It is deliberately small and binary: at tens of thousands of
//! signatures a second the framing must cost next to nothing, and a worker
//! must be able to tell a truncated frame (its parent died) from a real one.
//!
//! The first frame each way names the build: the signer's `Hello` and the
//! worker's `Ready` start with a [`BuildId`] (protocol version, package
//! version, build id) in a layout that never changes, and the `Failed` reply
//! keeps its layout too, so that any two builds can tell each other apart and
//! say so: a worker from another build (a package upgraded under a running
//! signer) is refused by both sides with a message naming both versions.
//!
//! Frames that carry secrets (the `Hello` holds the PIN) live in
//! [`Zeroizing`] buffers allocated once at their final size, so no copy is
//! left behind by a growing vector, and their `Debug` form is redacted.
//! Decoding errors are fixed texts: they never echo a frame's content.

use crate::crypto::SignInput;
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// Largest frame accepted: far above any real batch, small enough that a
/// corrupt length cannot make a worker allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// Version of the frame layouts below; raised whenever one changes.
pub const PROTOCOL_VERSION: u32 = 2;

/// Which build of hwsigner is speaking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildId {
    /// [`PROTOCOL_VERSION`] of the speaker.
    pub protocol: u32,
    /// Package version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Hash of the sources, profile and features the speaker was built from (see `build.rs`).
    pub id: String,
}

impl BuildId {
    /// This build.
    pub fn this() -> Self {
        BuildId { protocol: PROTOCOL_VERSION, version: env!("CARGO_PKG_VERSION").to_owned(), id: env!("HWSIGNER_BUILD_ID").to_owned() }
    }
}

impl std::fmt::Display for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The other side's strings come from a pipe: shown escaped and bounded.
        let show = |s: &str| s.chars().take(64).flat_map(char::escape_default).collect::<String>();
        write!(f, "hwsigner {} (build {}, protocol {})", show(&self.version), show(&self.id), self.protocol)
    }
}

/// What the signer asks of a worker.
pub enum Request {
    /// First message: the signer's build and the backend's start-up
    /// parameters (they may hold a PIN). From a build speaking another
    /// protocol only `build` is read and `body` is empty.
    Hello {
        /// The signer's build.
        build: BuildId,
        /// The backend's parameters.
        body: Zeroizing<Vec<u8>>,
    },
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

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Hello { build, body } => {
                f.debug_struct("Hello").field("build", build).field("body", &format_args!("<{} octets redacted>", body.len())).finish()
            }
            Request::Sign { seq, key, inputs } => {
                f.debug_struct("Sign").field("seq", seq).field("key", key).field("inputs", &inputs.len()).finish()
            }
        }
    }
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
        /// The worker's build.
        build: BuildId,
        /// The DNSKEY public key fields of the keys, in the order asked for.
        public_keys: Vec<Vec<u8>>,
        /// A human description of the device (label, serial, slot).
        device: String,
        /// True when the device needs the whole message rather than a digest.
        needs_message: bool,
    },
    /// A `Ready` from a worker speaking another protocol version: only its
    /// build was read.
    OtherBuild(BuildId),
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

fn put_build(out: &mut Vec<u8>, b: &BuildId) {
    out.extend_from_slice(&b.protocol.to_be_bytes());
    put_bytes(out, b.version.as_bytes());
    put_bytes(out, b.id.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// The message parsed so far is the whole frame: trailing bytes mean the
    /// two sides disagree on the format, which must not pass unnoticed.
    fn done<T>(&self, v: T) -> io::Result<T> {
        if self.0.is_empty() { Ok(v) } else { Err(bad("trailing bytes after the message")) }
    }
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
    fn build(&mut self) -> io::Result<BuildId> {
        Ok(BuildId { protocol: self.u32()?, version: self.string()?, id: self.string()? })
    }
}

fn frame(tag: u8, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    frame_sized(tag, 0, body)
}

/// A frame built in a buffer of `capacity` octets: a frame with a secret is
/// sized exactly, so the vector never grows and leaves no copy behind.
fn frame_sized(tag: u8, capacity: usize, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity.max(5));
    out.extend_from_slice(&[0, 0, 0, 0, tag]);
    body(&mut out);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

impl Request {
    /// Encodes the request as one frame.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Request::Hello { build, body } => {
                let size = 5 + 4 + 4 + build.version.len() + 4 + build.id.len() + 4 + body.len();
                frame_sized(1, size, |o| {
                    put_build(o, build);
                    put_bytes(o, body);
                })
            }
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
            1 => {
                let build = c.build()?;
                if build.protocol != PROTOCOL_VERSION {
                    return Ok(Request::Hello { build, body: Zeroizing::new(Vec::new()) });
                }
                let body = Zeroizing::new(c.bytes()?.to_vec());
                c.done(Request::Hello { build, body })
            }
            2 => {
                let seq = c.u64()?;
                let kb = c.take(2)?;
                let key = u16::from_be_bytes([kb[0], kb[1]]);
                let n = c.u32()? as usize;
                let mut inputs = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let kind = c.u8()?;
                    let b = c.bytes()?.to_vec();
                    inputs.push(match kind {
                        0 => SignInput::Digest(b),
                        1 => SignInput::Message(b),
                        _ => return Err(bad("unknown input kind")),
                    });
                }
                c.done(Request::Sign { seq, key, inputs })
            }
            _ => Err(bad("unknown request")),
        }
    }
}

impl Reply {
    /// Encodes the reply as one frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Ready { build, public_keys, device, needs_message } => frame(1, |o| {
                put_build(o, build);
                o.extend_from_slice(&(public_keys.len() as u32).to_be_bytes());
                for k in public_keys {
                    put_bytes(o, k);
                }
                put_bytes(o, device.as_bytes());
                o.push(u8::from(*needs_message));
            }),
            Reply::OtherBuild(build) => frame(1, |o| put_build(o, build)),
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
                let build = c.build()?;
                if build.protocol != PROTOCOL_VERSION {
                    return Ok(Reply::OtherBuild(build));
                }
                let n = c.u32()? as usize;
                let mut public_keys = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    public_keys.push(c.bytes()?.to_vec());
                }
                let device = c.string()?;
                let needs_message = match c.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(bad("needs-message flag is neither 0 nor 1")),
                };
                c.done(Reply::Ready { build, public_keys, device, needs_message })
            }
            2 => {
                let kind = FailureKind::from_code(c.u8()?)?;
                let message = c.string()?;
                c.done(Reply::Failed(Failure { kind, message }))
            }
            3 => {
                let seq = c.u64()?;
                let n = c.u32()? as usize;
                let mut sigs = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    sigs.push(c.bytes()?.to_vec());
                }
                c.done(Reply::Signed { seq, sigs })
            }
            4 => {
                let seq = c.u64()?;
                let kind = FailureKind::from_code(c.u8()?)?;
                let message = c.string()?;
                c.done(Reply::SignFailed { seq, failure: Failure { kind, message } })
            }
            _ => Err(bad("unknown reply")),
        }
    }
}

/// Describes a JSON decoding error by its kind and position only: serde's own
/// message quotes the offending value, which in a hello may be the PIN.
pub fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("malformed JSON ({kind} at line {} column {})", e.line(), e.column())
}

/// Serialises a message that holds a secret (a hello) as JSON into a
/// [`Zeroizing`] buffer allocated at its exact size: a growing vector would
/// leave copies of the secret in freed memory.
///
/// # Errors
/// The value cannot be serialised (described by [`json_error`]).
pub fn secret_json<T: serde::Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, String> {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_err(|e| json_error(&e))?;
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *out, value).map_err(|e| json_error(&e))?;
    Ok(out)
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
            Request::Hello { .. } => panic!("wrong request"),
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

    #[test]
    fn trailing_bytes_and_unknown_input_kinds_are_refused() {
        let req = Request::Sign { seq: 1, key: 0, inputs: vec![SignInput::Digest(vec![1; 32])] };
        let mut body = req.encode()[4..].to_vec();
        assert!(Request::decode(&body).is_ok());
        body.push(0);
        assert!(Request::decode(&body).is_err(), "a trailing byte is refused");
        let mut body = req.encode()[4..].to_vec();
        // seq (8), key (2), count (4) after the tag: the input kind follows.
        body[1 + 8 + 2 + 4] = 1;
        assert!(matches!(Request::decode(&body), Ok(Request::Sign { inputs, .. }) if matches!(inputs[0], SignInput::Message(_))));
        body[1 + 8 + 2 + 4] = 7;
        assert!(Request::decode(&body).is_err(), "an input kind other than digest or message is refused");
        let rep = Reply::Signed { seq: 3, sigs: vec![vec![9; 64]] };
        let mut body = rep.encode()[4..].to_vec();
        assert!(Reply::decode(&body).is_ok());
        body.extend_from_slice(b"xx");
        assert!(Reply::decode(&body).is_err(), "a trailing byte is refused");
    }

    #[test]
    fn hello_carries_the_build_and_hides_its_body() {
        let hello = Request::Hello { build: BuildId::this(), body: Zeroizing::new(b"{\"pin\":\"s3cret\"}".to_vec()) };
        let debug = format!("{hello:?}");
        assert!(!debug.contains("s3cret") && debug.contains("redacted"), "{debug}");
        let f = hello.encode();
        assert_eq!(f.len(), f.capacity(), "the frame with the PIN is allocated at its final size");
        match Request::decode(&f[4..]).unwrap() {
            Request::Hello { build, body } => {
                assert_eq!(build, BuildId::this());
                assert_eq!(&body[..], b"{\"pin\":\"s3cret\"}");
            }
            Request::Sign { .. } => panic!("wrong request"),
        }
    }

    #[test]
    fn another_protocol_is_recognised_from_its_build_alone() {
        let other = BuildId { protocol: 99, version: "9.9.9".into(), id: "feed".into() };
        let mut body = vec![1u8];
        put_build(&mut body, &other);
        body.extend_from_slice(b"whatever layout protocol 99 has");
        match Reply::decode(&body).unwrap() {
            Reply::OtherBuild(b) => assert_eq!(b, other),
            r => panic!("wrong reply {r:?}"),
        }
        match Request::decode(&body).unwrap() {
            Request::Hello { build, body } => assert!(build == other && body.is_empty()),
            Request::Sign { .. } => panic!("wrong request"),
        }
        let shown = BuildId { protocol: 1, version: "1\n\u{1b}[31m".into(), id: "x".repeat(500) }.to_string();
        assert!(!shown.contains('\n') && !shown.contains('\u{1b}') && shown.len() < 200, "{shown}");
    }

    #[test]
    fn json_of_secrets_is_sized_exactly_and_errors_hide_values() {
        let v = serde_json::json!({"pin": "s3cret"});
        let out = secret_json(&v).unwrap();
        assert_eq!(out.len(), out.capacity());
        let e = serde_json::from_slice::<std::collections::HashMap<String, u8>>(&out).unwrap_err();
        assert!(e.to_string().contains("s3cret"), "serde quotes values, hence json_error: {e}");
        assert!(!json_error(&e).contains("s3cret"), "{}", json_error(&e));
    }

    #[test]
    fn decoding_errors_never_echo_the_frame() {
        let secret = b"PIN=123456";
        let mut frames: Vec<Vec<u8>> = vec![vec![9], vec![1, 0, 0, 0, 2, 0, 0, 0, 10], vec![2, 0, 0, 0, 0, 0, 0, 0, 1, 0]];
        for f in &mut frames {
            f.extend_from_slice(secret);
        }
        for f in &frames {
            for e in [Request::decode(f).err(), Reply::decode(f).err()].into_iter().flatten() {
                assert!(!e.to_string().contains("123456"), "{e}");
            }
        }
    }
}
