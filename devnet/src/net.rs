//! The in-process network between validators: all-to-all broadcast over channels, with fault
//! injection (crashed validators, partitions, delay), so that faults are testable. A real
//! transport can take its place behind the same `broadcast`/`send`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};
use malachitebft_core_types::CommitCertificate;

use crate::chain::{CommittedBlock, SignedTx, TaskResult};
use crate::consensus::context::{DevnetContext, Value};
use crate::lock::{Lock, Shared};

/// A message between validators (or from the node's API to them).
#[derive(Clone, Debug)]
pub enum NetMsg {
    /// A signed vote, or a signed proposal carrying the full block.
    Consensus(SignedConsensusMsg<DevnetContext>),
    /// Round synchronisation: re-broadcast votes, polka and round certificates.
    Liveness(LivenessMsg<DevnetContext>),
    /// A block just decided, with its certificate, for validators a moment behind.
    Decided(Value, CommitCertificate<DevnetContext>),
    /// A validator's committed height, sent every so often: a validator further behind
    /// asks the sender for the blocks it lacks.
    Status(u64),
    /// Asks for committed blocks `from..=to`.
    SyncRequest { from: u64, to: u64 },
    /// Committed blocks with their certificates, in height order.
    SyncResponse(Vec<CommittedBlock>),
    /// A transaction for the mempool.
    Tx(SignedTx),
    /// An executor's result.
    Result(TaskResult),
    /// A segment of a task for another validator to prove, from the task's executor.
    SegmentJob {
        task_id: String,
        attempt: u32,
        job: Arc<lightchain_aivm::segment::SegmentJob>,
    },
    /// A helper's proof of one segment, back to the task's executor.
    SegmentProof(crate::executor::SegmentReply),
    /// Mine a block now (dev_mine).
    Mine,
    /// Roll back to a committed height (dev_revert).
    Revert(u64),
    /// Keep the state of a committed height for a later revert (dev_snapshot).
    Keep(u64),
    /// Stop: the validator exits, keeping what it stored (dev_kill, shutdown).
    Stop,
}

/// Network faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Validators whose messages are neither sent nor delivered (crashed).
    pub killed: HashSet<usize>,
    /// When set, only validators in the same group talk to each other.
    pub partition: Option<Vec<HashSet<usize>>>,
    /// Delay of every message between validators.
    pub delay: Duration,
}

type Peer = Sender<(usize, NetMsg)>;

/// Messages waiting out their delay: due time (and a sequence number) -> (to, from, msg).
type Delayed = BTreeMap<(Instant, u64), (usize, usize, NetMsg)>;

/// All-to-all delivery with faults.
#[derive(Clone)]
pub struct Network {
    peers: Arc<Shared<Vec<Peer>>>,
    /// When set, messages between validators travel over it (HTTP) instead of channels.
    transport: Arc<Shared<Option<Arc<crate::transport::Transport>>>>,
    pub faults: Arc<Shared<Faults>>,
    delayed: Arc<Lock<(Delayed, u64)>>,
    wake: Arc<Lock<Option<Sender<()>>>>,
}

/// Sender index of messages that come from the node's API rather than a validator.
pub const API: usize = usize::MAX;

impl Network {
    pub fn new(peers: Vec<Peer>) -> Network {
        Network {
            peers: Arc::new(Shared::new(peers)),
            transport: Default::default(),
            faults: Default::default(),
            delayed: Default::default(),
            wake: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.peers.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives validator `i` a new inbox (it restarted).
    pub fn reconnect(&self, i: usize, peer: Peer) {
        self.peers.write()[i] = peer;
    }

    fn connected(f: &Faults, from: usize, to: usize) -> bool {
        if f.killed.contains(&to) || (from != API && f.killed.contains(&from)) {
            return false;
        }
        match (&f.partition, from) {
            (Some(groups), from) if from != API => {
                groups.iter().any(|g| g.contains(&from) && g.contains(&to))
            }
            _ => true,
        }
    }

    /// Sends to one validator (through the faults).
    pub fn send(&self, from: usize, to: usize, msg: NetMsg) {
        let (ok, delay) = {
            let f = self.faults.read();
            (Self::connected(&f, from, to), f.delay)
        };
        if !ok {
            return;
        }
        if delay.is_zero() || from == API {
            self.deliver(from, to, msg);
        } else {
            self.later(Instant::now() + delay, from, to, msg);
        }
    }

    /// Sends messages between validators over `t` from now on.
    pub fn set_transport(&self, t: Arc<crate::transport::Transport>) {
        *self.transport.write() = Some(t);
    }

    /// Takes the transport out (validators then talk through channels again).
    pub fn take_transport(&self) -> Option<Arc<crate::transport::Transport>> {
        self.transport.write().take()
    }

    /// The transport, when validators talk over one.
    pub fn transport(&self) -> Option<Arc<crate::transport::Transport>> {
        self.transport.read().clone()
    }

    /// Delivers to one validator whatever the faults (stopping a crashed validator): over the
    /// transport when there is one and the message travels, else through its channel.
    /// In a node process, messages from the API (transactions) travel in the name of the
    /// node's validator.
    pub fn deliver(&self, from: usize, to: usize, msg: NetMsg) {
        if let Some(t) = self.transport() {
            let via = if from == API { t.me } else { Some(from) };
            if let Some(via) = via
                && t.post(via, to, &msg)
            {
                return;
            }
        }
        self.deliver_local(from, to, msg);
    }

    /// Delivers through the validator's channel (what arrives from the transport).
    pub fn deliver_local(&self, from: usize, to: usize, msg: NetMsg) {
        if let Some(p) = self.peers.read().get(to) {
            let _ = p.send((from, msg));
        }
    }

    fn later(&self, at: Instant, from: usize, to: usize, msg: NetMsg) {
        let mut d = self.delayed.lock();
        d.1 += 1;
        let seq = d.1;
        d.0.insert((at, seq), (to, from, msg));
        drop(d);
        let mut wake = self.wake.lock();
        if wake.as_ref().is_none_or(|w| w.send(()).is_err()) {
            let (tx, rx) = std::sync::mpsc::channel();
            *wake = Some(tx);
            let net = self.clone();
            std::thread::Builder::new()
                .name("net-delay".into())
                .spawn(move || net.run_delays(rx))
                .expect("thread");
        }
    }

    /// Delivers delayed messages when they are due; exits when nothing waits for a while.
    fn run_delays(&self, wake: Receiver<()>) {
        loop {
            let next = {
                let mut d = self.delayed.lock();
                let now = Instant::now();
                let due: Vec<(Instant, u64)> =
                    d.0.range(..=(now, u64::MAX)).map(|(k, _)| *k).collect();
                let msgs: Vec<(usize, usize, NetMsg)> =
                    due.iter().filter_map(|k| d.0.remove(k)).collect();
                let next = d.0.keys().next().map(|(at, _)| *at);
                drop(d);
                for (to, from, msg) in msgs {
                    // Faults may have changed while it waited.
                    if Self::connected(&self.faults.read(), from, to) {
                        self.deliver(from, to, msg);
                    }
                }
                next
            };
            let wait = next.map_or(Duration::from_secs(5), |at| {
                at.saturating_duration_since(Instant::now())
            });
            match wake.recv_timeout(wait) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if next.is_none() => {
                    // Idle: let the next delayed message start a new thread.
                    let mut w = self.wake.lock();
                    if self.delayed.lock().0.is_empty() {
                        *w = None;
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Sends to every validator except `from`.
    pub fn broadcast(&self, from: usize, msg: NetMsg) {
        for to in 0..self.len() {
            if to != from {
                self.send(from, to, msg.clone());
            }
        }
    }

    /// Sends to every validator including `from` (gossip that the sender also keeps).
    pub fn broadcast_all(&self, from: usize, msg: NetMsg) {
        for to in 0..self.len() {
            self.send(from, to, msg.clone());
        }
    }
}
