//! The in-process network between validators: all-to-all broadcast over channels, with fault
//! injection (killed validators, dropped messages, partitions, delay), so that faults are
//! testable. A real transport can take its place behind the same `broadcast`/`send`.

use std::collections::HashSet;
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};
use malachitebft_core_types::CommitCertificate;

use crate::chain::{SignedTx, TaskResult};
use crate::consensus::context::{DevnetContext, Value};

/// A message between validators (or from the node's API to them).
#[derive(Clone, Debug)]
pub enum NetMsg {
    /// A signed vote, or a signed proposal carrying the full block.
    Consensus(SignedConsensusMsg<DevnetContext>),
    /// Round synchronisation: re-broadcast votes, polka and round certificates.
    Liveness(LivenessMsg<DevnetContext>),
    /// A committed block with its certificate, for validators that fell behind.
    Decided(Value, CommitCertificate<DevnetContext>),
    /// A transaction for the mempool.
    Tx(SignedTx),
    /// An executor's result.
    Result(TaskResult),
    /// Mine a block now (dev_mine).
    Mine,
    /// Roll back to a committed height (dev_revert).
    Revert(u64),
    /// Stop the validator.
    Stop,
}

/// Network faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Validators whose messages are neither sent nor delivered.
    pub killed: HashSet<usize>,
    /// When set, only validators in the same group talk to each other.
    pub partition: Option<Vec<HashSet<usize>>>,
    /// Delay of every message.
    pub delay: Duration,
}

/// All-to-all delivery with faults.
#[derive(Clone)]
pub struct Network {
    peers: Arc<Vec<Sender<(usize, NetMsg)>>>,
    pub faults: Arc<RwLock<Faults>>,
}

/// Sender index of messages that come from the node's API rather than a validator.
pub const API: usize = usize::MAX;

impl Network {
    pub fn new(peers: Vec<Sender<(usize, NetMsg)>>) -> Network {
        Network {
            peers: Arc::new(peers),
            faults: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
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

    /// Sends to one validator.
    pub fn send(&self, from: usize, to: usize, msg: NetMsg) {
        let f = self.faults.read().expect("faults").clone();
        if !Self::connected(&f, from, to) {
            return;
        }
        let tx = self.peers[to].clone();
        if f.delay.is_zero() {
            let _ = tx.send((from, msg));
        } else {
            std::thread::spawn(move || {
                std::thread::sleep(f.delay);
                let _ = tx.send((from, msg));
            });
        }
    }

    /// Sends to every validator except `from`.
    pub fn broadcast(&self, from: usize, msg: NetMsg) {
        for to in 0..self.peers.len() {
            if to != from {
                self.send(from, to, msg.clone());
            }
        }
    }

    /// Sends to every validator including `from` (gossip that the sender also keeps).
    pub fn broadcast_all(&self, from: usize, msg: NetMsg) {
        for to in 0..self.peers.len() {
            self.send(from, to, msg.clone());
        }
    }
}
