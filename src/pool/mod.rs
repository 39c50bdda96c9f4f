//! The signing pool: one key, several devices that each hold a copy of it.
//!
//! A SmartCard-HSM makes about two RSA signatures a second, so a zone is signed
//! by several cards at once. The pool spreads each batch over every healthy
//! device, sized by each device's measured speed so that fast and slow devices
//! mix well, with at most [`PoolOptions::in_flight`] requests outstanding per
//! device so none sits idle and none hoards work.
//!
//! Each device is driven by its own worker process (see [`worker`]): a call
//! into a hung driver cannot be cancelled, and a PKCS#11 module's global locks
//! let one stuck card stall every other card in the same process. A watchdog
//! deadline kills a worker that does not answer; its unfinished requests go to
//! the other devices; a new worker probes the device with back-off and the
//! device rejoins when it answers.
//!
//! A device that has failed before is on probation when its new worker is
//! ready ([`DeviceState::Probing`]): it is given a single request of one
//! signature, and a share of the work only once that signature comes back
//! and verifies. A token that hangs on every signature thus costs one
//! signature per back-off period instead of a full share of requests, each
//! held for a watchdog period. When the queue runs dry, idle healthy devices
//! also sign what is still outstanding on a probing device (the first valid
//! answer wins), so a probe never holds up the end of a batch: a zone takes
//! at most what the healthy devices alone would take, plus the one watchdog
//! period of the first hang. Every signature is verified on the host
//! against the pool's DNSKEY before it is accepted; a device that returns a bad
//! one is taken out for good. The pool knows nothing about PKCS#11 or TPMs:
//! backends supply the Hello message their worker understands.

pub mod child_env;
pub mod protocol;
pub mod worker;

use crate::crypto::public::PublicKey;
use crate::crypto::{SignInput, digest_of};
use crate::sign::{KeyError, KeyInfo, SigningKey};
use protocol::{BuildId, FailureKind, Reply, Request, read_frame, write_frame};
use rayon::prelude::*;
use std::collections::VecDeque;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How the pool drives its devices.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// A request not answered this long after the device's expected time is
    /// declared hung: the worker is killed and its work goes elsewhere.
    pub watchdog: Duration,
    /// How long a worker may take to start, open the device and log in.
    pub start_timeout: Duration,
    /// How long PKCS#11 discovery (loading the module, listing tokens and
    /// keys, in a child process) may take before the module is declared hung.
    /// OpenSC reads every card's PKCS#15 files here, a few seconds per card.
    pub discovery_timeout: Duration,
    /// The run fails when no signature has been accepted for this long.
    pub stall_timeout: Duration,
    /// First wait before a failed device is probed again (doubles each time).
    pub min_backoff: Duration,
    /// Longest wait between probes.
    pub max_backoff: Duration,
    /// Requests outstanding per device.
    pub in_flight: usize,
    /// Work per request, in seconds of the device's measured speed.
    pub request_seconds: f64,
    /// Largest request.
    pub max_request: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            watchdog: Duration::from_secs(10),
            start_timeout: Duration::from_secs(20),
            discovery_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(60),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            in_flight: 2,
            request_seconds: 0.05,
            max_request: 256,
        }
    }
}

/// One device of the pool: how to start its worker.
#[derive(Clone)]
pub struct MemberSpec {
    /// Name shown to the operator (e.g. `token 1234 (slot 2)`).
    pub name: String,
    /// Program to run (normally this very binary).
    pub program: PathBuf,
    /// Its arguments (the hidden worker subcommand).
    pub args: Vec<String>,
    /// The backend's start-up message (may hold a PIN; wiped on drop).
    pub hello: Zeroizing<Vec<u8>>,
    /// Environment variables set for the worker (never secrets), on top of
    /// the cleaned environment every child gets ([`child_env`]).
    pub env: Vec<(String, PathBuf)>,
    /// Files the worker reads for its whole life (e.g. a private driver
    /// configuration); removed when the pool is gone.
    pub scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl std::fmt::Debug for MemberSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberSpec").field("name", &self.name).field("program", &self.program).finish_non_exhaustive()
    }
}

/// Why the pool could not sign.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The PIN was rejected by the first device; no other device was tried.
    #[error("{device}: the PIN was rejected ({message}); no further login was attempted, so the retry counter dropped by one only")]
    PinIncorrect {
        /// The device.
        device: String,
        /// The device's words.
        message: String,
    },
    /// Every device is out.
    #[error("no device can sign with key {key}: {}", reasons.join("; "))]
    NoDevice {
        /// The key.
        key: String,
        /// Each device and why it is out.
        reasons: Vec<String>,
    },
    /// No signature was accepted for the stall timeout.
    #[error("no device signed for {seconds} s with key {key}: {}", reasons.join("; "))]
    Stalled {
        /// The key.
        key: String,
        /// Seconds waited.
        seconds: u64,
        /// Each device and its state.
        reasons: Vec<String>,
    },
    /// The pool finished without a signature for one of the inputs (a bug).
    #[error("internal error: the signing pool finished key {key} without signature {index} of {total}")]
    Missing {
        /// The key.
        key: String,
        /// The input without a signature.
        index: usize,
        /// Inputs in the batch.
        total: usize,
    },
    /// Devices hold different keys than the one configured.
    #[error("device {device} holds a different key than {key}")]
    WrongKey {
        /// The device.
        device: String,
        /// The key.
        key: String,
    },
    /// A worker could not be started.
    #[error("cannot start a worker for {device}: {source}")]
    Spawn {
        /// The device.
        device: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<PoolError> for KeyError {
    fn from(e: PoolError) -> Self {
        KeyError::Device(Box::new(e))
    }
}

/// A device's state as the operator and the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Worker starting, device being opened.
    Starting,
    /// Signing.
    Healthy,
    /// Failed before and back: one signature must succeed before it gets more work.
    Probing,
    /// Failed; probed again later.
    Waiting,
    /// Taken out for this run (bad signature, wrong PIN, wrong key).
    Out,
}

/// Per-device figures, kept for the daemon's metrics and the sign summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceStats {
    /// The device.
    pub device: String,
    /// Current state.
    pub state: DeviceState,
    /// Why it is not healthy, if it is not.
    pub reason: Option<String>,
    /// Signatures accepted.
    pub signatures: u64,
    /// Failed requests (errors, hangs, bad signatures).
    pub errors: u64,
    /// Workers started after the first.
    pub restarts: u64,
    /// Signatures by the current worker (after a restart: since the device rejoined).
    pub current_worker_signatures: u64,
    /// Mean time per signature on the device, milliseconds.
    pub mean_ms: f64,
    /// Measured speed, signatures per second.
    pub rate: f64,
}

struct Proc {
    child: Child,
    to_worker: Option<Sender<Zeroizing<Vec<u8>>>>,
}

impl Proc {
    fn kill(mut self) {
        self.to_worker = None;
        let _ = self.child.kill();
        std::thread::spawn(move || {
            let _ = self.child.wait();
        });
    }

    /// Closes the pipe, which lets the worker finalise the module and exit.
    fn close(mut self) -> Child {
        self.to_worker = None;
        self.child
    }
}

struct Inflight {
    seq: u64,
    /// Indices into the current run's inputs; empty once orphaned.
    indices: Vec<usize>,
    sent: Instant,
    deadline: Instant,
    /// Also given to another device (the queue had run dry).
    hedged: bool,
    /// Left over from an earlier run (the work was done elsewhere): its
    /// answer is discarded, but the watchdog still applies.
    orphan: bool,
}

enum State {
    Starting(Instant),
    Healthy,
    Probing,
    Waiting(Instant),
    Out,
}

struct Member {
    spec: MemberSpec,
    state: State,
    proc: Option<Proc>,
    generation: u64,
    inflight: Vec<Inflight>,
    backoff: Duration,
    rate: Option<f64>,
    last_done: Instant,
    needs_message: bool,
    reason: Option<String>,
    started: u64,
    signatures: u64,
    worker_signatures: u64,
    errors: u64,
    busy: Duration,
    healthy_since: Instant,
    /// Device time per signature of the latest requests (seconds), for `hwsigner bench`.
    samples: VecDeque<f32>,
}

/// Requests whose time per signature is kept per device (a ring).
const SAMPLES: usize = 1 << 16;

struct Event {
    member: usize,
    generation: u64,
    reply: Result<Reply, String>,
    /// When the reply came off the pipe: a busy scheduler may handle it much
    /// later, and the device's time must not shrink by that wait.
    at: Instant,
}

struct Inner {
    members: Vec<Member>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    next_seq: u64,
}

/// Keys held by several devices (each device holding every key of the pool).
/// [`Pool::key`] gives each key as a [`SigningKey`].
pub struct Pool {
    keys: Vec<(KeyInfo, PublicKey)>,
    opts: PoolOptions,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("keys", &self.keys.iter().map(|k| k.0.id.as_str()).collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

fn spawn(m: &mut Member, index: usize, sender: &Sender<Event>) -> Result<(), std::io::Error> {
    let mut child = child_env::clean(&mut Command::new(&m.spec.program))
        .args(&m.spec.args)
        .envs(m.spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err(std::io::Error::other("worker pipes missing"));
    };
    m.generation += 1;
    m.started += 1;
    let generation = m.generation;
    let (tx, rx) = channel::<Zeroizing<Vec<u8>>>();
    // A writer thread per worker: a hung worker stops reading and a full pipe
    // must block that thread, never the scheduler. Frames go to the pipe
    // unbuffered: each is written whole and flushed anyway, and a buffer
    // would keep a copy of the hello's PIN.
    std::thread::spawn(move || {
        let mut w = stdin;
        while let Ok(frame) = rx.recv() {
            if write_frame(&mut w, &frame).is_err() {
                break;
            }
        }
    });
    let events = sender.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, stdout);
        loop {
            let reply = match read_frame(&mut r) {
                Ok(Some(body)) => Reply::decode(&body).map_err(|e| e.to_string()),
                Ok(None) => Err("worker exited".to_owned()),
                Err(e) => Err(format!("worker pipe: {e}")),
            };
            let stop = reply.is_err();
            if events.send(Event { member: index, generation, reply, at: Instant::now() }).is_err() || stop {
                break;
            }
        }
    });
    let _ = tx.send(Request::Hello { build: BuildId::this(), body: m.spec.hello.clone() }.encode());
    m.proc = Some(Proc { child, to_worker: Some(tx) });
    Ok(())
}

impl Pool {
    /// Starts a worker per device and waits until they have opened their
    /// devices. The first device logs in alone: a wrong PIN stops everything
    /// after one attempt. Devices whose key differs from `info`'s DNSKEY are
    /// taken out.
    ///
    /// # Errors
    /// A rejected PIN, a worker that cannot be started, or no usable device.
    pub fn start(infos: Vec<KeyInfo>, members: Vec<MemberSpec>, opts: PoolOptions) -> Result<Self, PoolError> {
        let mut keys = Vec::new();
        for info in infos {
            let public = PublicKey::from_dnskey(&info.dnskey)
                .map_err(|_| PoolError::NoDevice { key: info.id.clone(), reasons: vec!["the configured DNSKEY is unusable".into()] })?;
            keys.push((info, public));
        }
        let (sender, events) = channel();
        let now = Instant::now();
        let members = members
            .into_iter()
            .map(|spec| Member {
                spec,
                state: State::Waiting(now),
                proc: None,
                generation: 0,
                inflight: Vec::new(),
                backoff: opts.min_backoff,
                rate: None,
                last_done: now,
                needs_message: false,
                reason: None,
                started: 0,
                signatures: 0,
                worker_signatures: 0,
                errors: 0,
                busy: Duration::ZERO,
                healthy_since: now,
                samples: VecDeque::new(),
            })
            .collect();
        let pool = Pool { keys, opts, inner: Mutex::new(Inner { members, events, sender, next_seq: 1 }) };
        {
            let mut inner = pool.lock();
            let n = inner.members.len();
            for i in 0..n {
                pool.launch(&mut inner, i)?;
                if i == 0 {
                    // The first device alone: its answer tells whether the PIN is right.
                    pool.wait_started(&mut inner, &[0])?;
                }
            }
            let rest: Vec<usize> = (1..n).collect();
            pool.wait_started(&mut inner, &rest)?;
            if !inner.members.iter().any(|m| matches!(m.state, State::Healthy | State::Probing)) {
                return Err(PoolError::NoDevice { key: pool.names(), reasons: reasons(&inner.members) });
            }
        }
        Ok(pool)
    }

    fn names(&self) -> String {
        self.keys.iter().map(|k| k.0.id.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Key `i` of the pool as a [`SigningKey`].
    pub fn key(self: &std::sync::Arc<Self>, i: usize) -> PoolKey {
        PoolKey { pool: std::sync::Arc::clone(self), key: i }
    }

    /// How many keys the pool holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the pool holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn launch(&self, inner: &mut Inner, i: usize) -> Result<(), PoolError> {
        let sender = inner.sender.clone();
        let m = &mut inner.members[i];
        match spawn(m, i, &sender) {
            Ok(()) => {
                m.state = State::Starting(Instant::now() + self.opts.start_timeout);
                Ok(())
            }
            Err(source) => Err(PoolError::Spawn { device: m.spec.name.clone(), source }),
        }
    }

    fn wait_started(&self, inner: &mut Inner, which: &[usize]) -> Result<(), PoolError> {
        let mut run = Run::new(&[]);
        loop {
            let pending: Vec<usize> = which.iter().copied().filter(|&i| matches!(inner.members[i].state, State::Starting(_))).collect();
            let Some(deadline) =
                pending.iter().filter_map(|&i| if let State::Starting(d) = inner.members[i].state { Some(d) } else { None }).min()
            else {
                return Ok(());
            };
            match inner.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(ev) => self.handle(inner, ev, &mut run)?,
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    for i in pending {
                        if matches!(inner.members[i].state, State::Starting(d) if d <= now) {
                            let why = format!("did not open within {:?}", self.opts.start_timeout);
                            self.fail(inner, i, &why, true, &mut run.queue);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Takes a device out of service: kills its worker and hands its
    /// unfinished work back. Transient failures are probed again later.
    fn fail(&self, inner: &mut Inner, i: usize, why: &str, transient: bool, queue: &mut VecDeque<usize>) {
        let m = &mut inner.members[i];
        if let Some(p) = m.proc.take() {
            p.kill();
        }
        for f in m.inflight.drain(..).rev() {
            for &ix in f.indices.iter().rev() {
                queue.push_front(ix);
            }
        }
        m.errors += 1;
        m.reason = Some(why.to_owned());
        if transient {
            tracing::warn!(device = %m.spec.name, retry_in = ?m.backoff, "device failed: {why}");
            m.state = State::Waiting(Instant::now() + m.backoff);
            m.backoff = (m.backoff * 2).min(self.opts.max_backoff);
        } else {
            tracing::error!(device = %m.spec.name, "device taken out: {why}");
            m.state = State::Out;
        }
    }

    fn handle(&self, inner: &mut Inner, ev: Event, run: &mut Run<'_>) -> Result<(), PoolError> {
        let i = ev.member;
        let arrived = ev.at;
        if inner.members[i].generation != ev.generation || inner.members[i].proc.is_none() {
            return Ok(());
        }
        let reply = match ev.reply {
            Ok(r) => r,
            Err(why) => {
                self.fail(inner, i, &why, true, &mut run.queue);
                return Ok(());
            }
        };
        match reply {
            Reply::OtherBuild(theirs) => {
                let why = other_build(&theirs);
                self.fail(inner, i, &why, false, &mut run.queue);
            }
            Reply::Ready { build, .. } if build != BuildId::this() => {
                let why = other_build(&build);
                self.fail(inner, i, &why, false, &mut run.queue);
            }
            Reply::Ready { public_keys, device, needs_message, .. } => {
                let same = public_keys.len() == self.keys.len()
                    && self.keys.iter().zip(&public_keys).all(|(k, p)| k.0.dnskey.get(4..) == Some(p.as_slice()));
                if !same {
                    let why = format!("{device} holds a different key than {}", self.names());
                    self.fail(inner, i, &why, false, &mut run.queue);
                    return Ok(());
                }
                let m = &mut inner.members[i];
                if m.started > 1 {
                    tracing::warn!(device = %m.spec.name, detail = %device, "device back; probing it with one signature");
                } else {
                    tracing::info!(device = %m.spec.name, detail = %device, "device ready");
                }
                m.state = if m.errors > 0 { State::Probing } else { State::Healthy };
                m.healthy_since = Instant::now();
                m.worker_signatures = 0;
                m.needs_message = needs_message;
                m.reason = None;
                m.last_done = Instant::now();
            }
            Reply::Failed(f) => {
                let first_login = inner.members.iter().all(|m| m.signatures == 0 && !matches!(m.state, State::Healthy | State::Probing));
                let name = inner.members[i].spec.name.clone();
                let transient = f.kind == FailureKind::Transient;
                self.fail(inner, i, &f.message, transient, &mut run.queue);
                if f.kind == FailureKind::PinIncorrect && first_login {
                    return Err(PoolError::PinIncorrect { device: name, message: f.message });
                }
            }
            Reply::SignFailed { seq, failure } => {
                let known = inner.members[i].inflight.iter().any(|f| f.seq == seq);
                let transient = failure.kind == FailureKind::Transient || !known;
                self.fail(inner, i, &failure.message, transient, &mut run.queue);
            }
            Reply::Signed { seq, sigs } => {
                let m = &mut inner.members[i];
                let Some(pos) = m.inflight.iter().position(|f| f.seq == seq) else {
                    self.fail(inner, i, "answered a request it was not given", true, &mut run.queue);
                    return Ok(());
                };
                if m.inflight[pos].orphan {
                    // Work of an earlier run, done elsewhere; its inputs are gone.
                    m.inflight.remove(pos);
                    m.last_done = Instant::now();
                    return Ok(());
                }
                if sigs.len() != m.inflight[pos].indices.len() {
                    self.fail(inner, i, "returned the wrong number of signatures", false, &mut run.queue);
                    return Ok(());
                }
                let inputs = run.inputs;
                let indices = &m.inflight[pos].indices;
                let public = &self.keys[run.key].1;
                if let Some(bad) = (0..sigs.len()).into_par_iter().find_any(|&k| !public.verify(&inputs[indices[k]], &sigs[k])) {
                    let why = format!("returned a signature that does not verify (request {}, item {bad}); taken out of the pool", seq);
                    self.fail(inner, i, &why, false, &mut run.queue);
                    return Ok(());
                }
                let m = &mut inner.members[i];
                let f = m.inflight.remove(pos);
                let now = Instant::now();
                let took = arrived.saturating_duration_since(f.sent.max(m.last_done));
                m.last_done = arrived;
                m.busy += took;
                if m.samples.len() == SAMPLES {
                    m.samples.pop_front();
                }
                m.samples.push_back((took.as_secs_f64() / f.indices.len().max(1) as f64) as f32);
                let observed = f.indices.len() as f64 / took.as_secs_f64().max(1e-6);
                m.rate = Some(m.rate.map_or(observed, |r| 0.7 * r + 0.3 * observed));
                // A device that keeps failing soon after rejoining is probed
                // ever more rarely; one that stays up is forgiven.
                if now.saturating_duration_since(m.healthy_since) > self.opts.max_backoff {
                    m.backoff = self.opts.min_backoff;
                }
                // A probe's signature is not progress: a device that signs
                // once after each restart and then fails again must not keep
                // a run from being declared stalled.
                let probe = matches!(m.state, State::Probing);
                if probe {
                    tracing::warn!(device = %m.spec.name, "probe signature verified; device rejoined the pool");
                    m.state = State::Healthy;
                    m.healthy_since = now;
                }
                m.signatures += f.indices.len() as u64;
                m.worker_signatures += f.indices.len() as u64;
                for (ix, sig) in f.indices.into_iter().zip(sigs) {
                    if run.results[ix].is_none() {
                        run.done += 1;
                    }
                    run.results[ix] = Some(sig);
                }
                if !probe {
                    run.progress = now;
                }
            }
        }
        Ok(())
    }

    /// Gives each healthy device work up to its in-flight limit, sized by its
    /// speed, and each probing device one signature; when the queue is empty,
    /// idle healthy devices take over what waits on probing devices.
    fn dispatch(&self, inner: &mut Inner, run: &mut Run<'_>) {
        let now = Instant::now();
        let n = inner.members.len();
        // Faster devices first, so the tail of a batch goes to the fastest.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            let ra = inner.members[a].rate.unwrap_or(0.0);
            let rb = inner.members[b].rate.unwrap_or(0.0);
            rb.total_cmp(&ra)
        });
        for &i in &order {
            while !run.queue.is_empty() {
                let m = &inner.members[i];
                let size = match m.state {
                    State::Healthy if m.inflight.len() < self.opts.in_flight => match m.rate {
                        Some(r) => ((r * self.opts.request_seconds) as usize).clamp(1, self.opts.max_request),
                        None => 1,
                    },
                    State::Probing if m.inflight.is_empty() => 1,
                    _ => break,
                };
                let take = size.min(run.queue.len());
                let indices: Vec<usize> = run.queue.drain(..take).collect();
                self.send(inner, i, indices, run, now);
            }
        }
        if !run.queue.is_empty() {
            return;
        }
        for &i in &order {
            let m = &inner.members[i];
            if !matches!(m.state, State::Healthy) || m.inflight.len() >= self.opts.in_flight {
                continue;
            }
            let waiting = (0..n).filter(|&j| matches!(inner.members[j].state, State::Probing)).find_map(|j| {
                let pos = inner.members[j].inflight.iter().position(|f| !f.hedged && !f.orphan)?;
                Some((j, pos))
            });
            let Some((j, pos)) = waiting else { return };
            let f = &mut inner.members[j].inflight[pos];
            f.hedged = true;
            let indices: Vec<usize> = f.indices.iter().copied().filter(|&ix| run.results[ix].is_none()).collect();
            if !indices.is_empty() {
                tracing::debug!(device = %inner.members[i].spec.name, signatures = indices.len(), "signing what waits on a probing device");
                self.send(inner, i, indices, run, now);
            }
        }
    }

    /// Sends one request to device `i`.
    fn send(&self, inner: &mut Inner, i: usize, indices: Vec<usize>, run: &mut Run<'_>, now: Instant) {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let m = &mut inner.members[i];
        let inputs: Vec<SignInput> = indices.iter().map(|&ix| convert(&run.inputs[ix], m.needs_message, &self.keys[run.key].0)).collect();
        // A device of unknown speed is assumed slow (one signature a second).
        let rate = m.rate.unwrap_or(1.0);
        let ahead: usize = m.inflight.iter().map(|f| f.indices.len()).sum();
        let expected = Duration::from_secs_f64((ahead + indices.len()) as f64 / rate);
        let deadline = now + self.opts.watchdog + expected;
        let frame = Request::Sign { seq, key: run.key as u16, inputs }.encode();
        let sent = m.proc.as_ref().and_then(|p| p.to_worker.as_ref()).is_some_and(|tx| tx.send(frame).is_ok());
        m.inflight.push(Inflight { seq, indices, sent: now, deadline, hedged: false, orphan: false });
        if !sent {
            self.fail(inner, i, "worker pipe closed", true, &mut run.queue);
        }
    }

    fn sign_all(&self, key: usize, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, PoolError> {
        let mut inner = self.lock();
        let mut run = Run::new(inputs);
        run.key = key;
        while run.done < inputs.len() {
            let now = Instant::now();
            for i in 0..inner.members.len() {
                if matches!(inner.members[i].state, State::Waiting(t) if t <= now)
                    && let Err(e) = self.launch(&mut inner, i)
                {
                    let why = e.to_string();
                    self.fail(&mut inner, i, &why, true, &mut run.queue);
                }
            }
            self.dispatch(&mut inner, &mut run);
            if inner.members.iter().all(|m| matches!(m.state, State::Out)) {
                return Err(PoolError::NoDevice { key: self.keys[run.key].0.id.clone(), reasons: reasons(&inner.members) });
            }
            if now.saturating_duration_since(run.progress) > self.opts.stall_timeout {
                return Err(PoolError::Stalled {
                    key: self.keys[run.key].0.id.clone(),
                    seconds: self.opts.stall_timeout.as_secs(),
                    reasons: reasons(&inner.members),
                });
            }
            let next = inner
                .members
                .iter()
                .flat_map(|m| {
                    let own = match m.state {
                        State::Starting(t) | State::Waiting(t) => Some(t),
                        _ => None,
                    };
                    m.inflight.iter().map(|f| f.deadline).chain(own)
                })
                .min()
                .unwrap_or(now + Duration::from_millis(100))
                .min(run.progress + self.opts.stall_timeout + Duration::from_millis(1));
            match inner.events.recv_timeout(next.saturating_duration_since(now)) {
                Ok(ev) => {
                    self.handle(&mut inner, ev, &mut run)?;
                    // Drain what else has arrived before dispatching again.
                    while let Ok(ev) = inner.events.try_recv() {
                        self.handle(&mut inner, ev, &mut run)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    for i in 0..inner.members.len() {
                        let m = &inner.members[i];
                        let hung = m.inflight.iter().any(|f| f.deadline <= now);
                        let slow_start = matches!(m.state, State::Starting(t) if t <= now);
                        if hung {
                            let why = format!(
                                "did not answer within the watchdog ({:?} beyond its expected time); worker killed",
                                self.opts.watchdog
                            );
                            self.fail(&mut inner, i, &why, true, &mut run.queue);
                        } else if slow_start {
                            let why = format!("did not open within {:?}; worker killed", self.opts.start_timeout);
                            self.fail(&mut inner, i, &why, true, &mut run.queue);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PoolError::NoDevice { key: self.keys[run.key].0.id.clone(), reasons: reasons(&inner.members) });
                }
            }
        }
        // Requests still out were also given elsewhere and are done; their
        // answers, if they come, belong to no run.
        for m in &mut inner.members {
            for f in &mut m.inflight {
                f.orphan = true;
                f.indices.clear();
            }
        }
        // Every input has a signature when the loop ends; one missing would be
        // signed into the zone as an empty RRSIG, so it is an error, not a default.
        let total = run.results.len();
        run.results
            .into_iter()
            .enumerate()
            .map(|(index, s)| s.ok_or_else(|| PoolError::Missing { key: self.keys[run.key].0.id.clone(), index, total }))
            .collect()
    }

    /// Per-device figures.
    pub fn stats(&self) -> Vec<DeviceStats> {
        let inner = self.lock();
        inner
            .members
            .iter()
            .map(|m| DeviceStats {
                device: m.spec.name.clone(),
                state: match m.state {
                    State::Starting(_) => DeviceState::Starting,
                    State::Healthy => DeviceState::Healthy,
                    State::Probing => DeviceState::Probing,
                    State::Waiting(_) => DeviceState::Waiting,
                    State::Out => DeviceState::Out,
                },
                reason: m.reason.clone(),
                signatures: m.signatures,
                errors: m.errors,
                restarts: m.started.saturating_sub(1),
                current_worker_signatures: m.worker_signatures,
                mean_ms: if m.signatures == 0 { 0.0 } else { m.busy.as_secs_f64() * 1000.0 / m.signatures as f64 },
                rate: m.rate.unwrap_or(0.0),
            })
            .collect()
    }

    /// Device time per signature, in seconds, of each device's latest
    /// requests (up to 65536; one sample per request), in the order of
    /// [`Pool::stats`]. A request holds about [`PoolOptions::request_seconds`]
    /// of work, so for a card (a few signatures a second) each sample is one
    /// signature's latency; for faster devices it is the mean over a request.
    pub fn latency_samples(&self) -> Vec<Vec<f64>> {
        self.lock().members.iter().map(|m| m.samples.iter().map(|&s| f64::from(s)).collect()).collect()
    }

    /// True when some device needs whole messages rather than digests.
    fn any_needs_message(&self) -> bool {
        self.lock().members.iter().any(|m| m.needs_message)
    }
}

impl Drop for Pool {
    /// Ends every worker before the pool is gone, synchronously: the signer
    /// may exit right after, and a worker left stuck in its driver would
    /// outlive it (holding the PIN, and the signer's standard error open).
    /// A worker with a request out is busy or hung and is killed at once; an
    /// idle one gets two seconds to log out and finalise the module.
    fn drop(&mut self) {
        let mut inner = self.lock();
        let mut closing = Vec::new();
        for m in &mut inner.members {
            let Some(p) = m.proc.take() else { continue };
            let mut child = p.close();
            if m.inflight.is_empty() {
                closing.push(child);
            } else {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !closing.is_empty() && Instant::now() < deadline {
            closing.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
            if !closing.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for mut c in closing {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Hashes a message for a device that takes digests; leaves digests as they are.
fn convert(input: &SignInput, needs_message: bool, info: &KeyInfo) -> SignInput {
    match input {
        SignInput::Message(m) if !needs_message => match digest_of(info.algorithm.hash()) {
            Some(md) => openssl::hash::hash(md, m).map_or_else(|_| input.clone(), |d| SignInput::Digest(d.to_vec())),
            None => input.clone(),
        },
        _ => input.clone(),
    }
}

struct Run<'a> {
    key: usize,
    inputs: &'a [SignInput],
    results: Vec<Option<Vec<u8>>>,
    queue: VecDeque<usize>,
    done: usize,
    progress: Instant,
}

impl<'a> Run<'a> {
    fn new(inputs: &'a [SignInput]) -> Self {
        Run { key: 0, inputs, results: vec![None; inputs.len()], queue: (0..inputs.len()).collect(), done: 0, progress: Instant::now() }
    }
}

/// Why a worker of another build is refused; names both builds.
fn other_build(theirs: &BuildId) -> String {
    format!(
        "the worker is {theirs}, the signer is {}: a worker of another build is refused (was hwsigner upgraded under a running signer? restart it)",
        BuildId::this()
    )
}

fn reasons(members: &[Member]) -> Vec<String> {
    members
        .iter()
        .map(|m| {
            let state = match m.state {
                State::Starting(_) => "starting",
                State::Healthy => "healthy",
                State::Probing => "probing after a failure",
                State::Waiting(_) => "failed, waiting to retry",
                State::Out => "out",
            };
            match &m.reason {
                Some(r) => format!("{} ({state}): {r}", m.spec.name),
                None => format!("{} ({state})", m.spec.name),
            }
        })
        .collect()
}

/// One key of a [`Pool`], as the engine sees it.
#[derive(Debug, Clone)]
pub struct PoolKey {
    pool: std::sync::Arc<Pool>,
    key: usize,
}

impl PoolKey {
    /// The pool the key belongs to (for its device figures).
    pub fn pool(&self) -> &std::sync::Arc<Pool> {
        &self.pool
    }
}

impl SigningKey for PoolKey {
    fn info(&self) -> &KeyInfo {
        &self.pool.keys[self.key].0
    }

    fn verifies_on_host(&self) -> bool {
        true
    }

    fn wants_message(&self) -> bool {
        self.pool.any_needs_message()
    }

    fn preferred_batch(&self) -> usize {
        16384
    }

    fn sign_batch(&self, inputs: &[SignInput]) -> Result<Vec<Vec<u8>>, KeyError> {
        Ok(self.pool.sign_all(self.key, inputs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::algorithm::Algorithm;
    use crate::sign::Role;

    /// A worker of another build, played by a shell that answers the hello
    /// with that build's Ready: the pool refuses it, naming both builds.
    #[test]
    fn a_worker_of_another_build_is_refused() {
        let key = openssl::pkey::PKey::generate_ed25519().unwrap().raw_public_key().unwrap();
        let dnskey = crate::crypto::dnskey::dnskey_rdata(Role::Csk.flags(), Algorithm::Ed25519, &key);
        let info = KeyInfo {
            id: "test".into(),
            backend: "test",
            zone: "example.".into(),
            algorithm: Algorithm::Ed25519,
            role: Role::Csk,
            key_tag: crate::crypto::dnskey::key_tag(&dnskey),
            dnskey,
        };
        let other = BuildId { protocol: protocol::PROTOCOL_VERSION, version: "0.0.9".into(), id: "00000000deadbeef".into() };
        let ready = Reply::Ready { build: other, public_keys: vec![key], device: "fake".into(), needs_message: true }.encode();
        let escaped: String = ready.iter().map(|b| format!("\\{b:03o}")).collect();
        let member = MemberSpec {
            name: "fake device".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), format!("printf '{escaped}'; exec cat >/dev/null")],
            hello: Zeroizing::new(b"{}".to_vec()),
            env: Vec::new(),
            scratch: None,
        };
        let err = Pool::start(vec![info], vec![member], PoolOptions::default()).unwrap_err().to_string();
        assert!(err.contains("hwsigner 0.0.9 (build 00000000deadbeef") && err.contains(env!("CARGO_PKG_VERSION")), "{err}");
        assert!(err.contains("another build"), "{err}");
    }
}
