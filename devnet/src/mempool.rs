//! A validator's pool of transactions waiting for a block, with rules: a sender's
//! transactions apply in nonce order, so only the run of consecutive nonces from the
//! account's next one is ready; transactions beyond a gap wait, at most
//! [`MempoolLimits::max_ahead`] nonces ahead, and are dropped after
//! [`MempoolLimits::future_ttl`]; a transaction replaces the one with its nonce only with a
//! gas price at least [`MempoolLimits::replace_bump_pct`] percent higher.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::chain::{Address, SignedTx, State};
use crate::crypto;

/// The pool's bounds.
#[derive(Clone, Debug)]
pub struct MempoolLimits {
    /// How far past the account's next nonce a transaction may be.
    pub max_ahead: u64,
    /// Transactions per sender.
    pub max_per_sender: usize,
    /// Transactions in all.
    pub max_total: usize,
    /// How long a transaction that cannot apply yet (a gap before its nonce) is kept.
    pub future_ttl: Duration,
    /// A replacement's gas price must exceed the replaced one's by this many percent.
    pub replace_bump_pct: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_ahead: 16,
            max_per_sender: 64,
            max_total: 8192,
            future_ttl: Duration::from_secs(60),
            replace_bump_pct: 10,
        }
    }
}

/// Why a transaction is not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error(
        "nonce {nonce} is taken by a pending transaction with gas price {price}; replace it with a gas price of at least {needed}"
    )]
    Underpriced { nonce: u64, price: u64, needed: u64 },
    #[error("nonce {nonce} is more than {max} ahead of the account's next nonce {next}")]
    TooFarAhead { nonce: u64, next: u64, max: u64 },
    #[error("the sender has {0} pending transactions, the most one account may have")]
    SenderFull(usize),
    #[error("the pool holds {0} transactions, its limit")]
    Full(usize),
}

/// What happened to an admitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    Added,
    /// It replaced this transaction (its hash).
    Replaced([u8; 32]),
    /// It was already there.
    Duplicate,
}

#[derive(Clone, Debug)]
struct Entry {
    tx: SignedTx,
    hash: [u8; 32],
    at: Instant,
}

/// A transaction as the API sees the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingTx {
    /// The transaction hash (a task's id), hex.
    pub hash: String,
    pub sender: Address,
    pub nonce: u64,
    pub gas_price: u64,
}

/// The rule for a transaction meeting another of the same sender and nonce.
pub fn replaces(old_price: u64, new_price: u64, bump_pct: u64) -> Result<(), u64> {
    let needed = old_price
        .saturating_mul(100 + bump_pct)
        .div_ceil(100)
        .max(old_price + 1);
    if new_price >= needed {
        Ok(())
    } else {
        Err(needed)
    }
}

#[derive(Debug, Default)]
pub struct Mempool {
    by_sender: BTreeMap<Address, BTreeMap<u64, Entry>>,
    limits: MempoolLimits,
    total: usize,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            by_sender: BTreeMap::new(),
            limits,
            total: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Takes a transaction already checked against the state (`next`: its sender's next
    /// nonce there).
    pub fn insert(
        &mut self,
        tx: SignedTx,
        next: u64,
        now: Instant,
    ) -> Result<Admitted, MempoolError> {
        let nonce = tx.body.nonce;
        if nonce > next + self.limits.max_ahead {
            return Err(MempoolError::TooFarAhead {
                nonce,
                next,
                max: self.limits.max_ahead,
            });
        }
        let hash = tx.hash();
        let entry = Entry { tx, hash, at: now };
        let sender = entry.tx.body.sender();
        let queue = self.by_sender.entry(sender).or_default();
        if let Some(old) = queue.get(&nonce) {
            if old.hash == hash {
                return Ok(Admitted::Duplicate);
            }
            let (p, q) = (old.tx.body.gas_price, entry.tx.body.gas_price);
            replaces(p, q, self.limits.replace_bump_pct).map_err(|needed| {
                MempoolError::Underpriced {
                    nonce,
                    price: p,
                    needed,
                }
            })?;
            let replaced = old.hash;
            queue.insert(nonce, entry);
            return Ok(Admitted::Replaced(replaced));
        }
        if queue.len() >= self.limits.max_per_sender {
            return Err(MempoolError::SenderFull(queue.len()));
        }
        if self.total >= self.limits.max_total {
            return Err(MempoolError::Full(self.total));
        }
        queue.insert(nonce, entry);
        self.total += 1;
        Ok(Admitted::Added)
    }

    /// The transactions that can apply now, each sender's consecutive run from its next
    /// nonce, in nonce order per sender.
    pub fn ready(&self, state: &State) -> Vec<SignedTx> {
        let mut out = Vec::new();
        for (sender, queue) in &self.by_sender {
            let mut n = state.account(sender).nonce;
            while let Some(e) = queue.get(&n) {
                out.push(e.tx.clone());
                n += 1;
            }
        }
        out
    }

    /// Whether any transaction can apply now.
    pub fn has_ready(&self, state: &State) -> bool {
        self.by_sender
            .iter()
            .any(|(s, q)| q.contains_key(&state.account(s).nonce))
    }

    /// Drops what can never apply: transactions with a used nonce, and those still behind
    /// a gap after the time limit. Returns how many it dropped.
    pub fn prune(&mut self, state: &State, now: Instant) -> usize {
        let ttl = self.limits.future_ttl;
        let mut dropped = 0;
        for (sender, queue) in self.by_sender.iter_mut() {
            let next = state.account(sender).nonce;
            let before = queue.len();
            queue.retain(|&n, _| n >= next);
            // The consecutive run from `next` stays; past the first gap, old entries go.
            let mut n = next;
            while queue.contains_key(&n) {
                n += 1;
            }
            queue.retain(|&k, e| k < n || now.duration_since(e.at) < ttl);
            dropped += before - queue.len();
        }
        self.by_sender.retain(|_, q| !q.is_empty());
        self.total -= dropped;
        dropped
    }

    /// Removes transactions by hash (those a block included or a proposer found invalid).
    pub fn remove(&mut self, hashes: &[[u8; 32]]) {
        for queue in self.by_sender.values_mut() {
            let before = queue.len();
            queue.retain(|_, e| !hashes.contains(&e.hash));
            self.total -= before - queue.len();
        }
        self.by_sender.retain(|_, q| !q.is_empty());
    }

    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.by_sender
            .values()
            .any(|q| q.values().any(|e| &e.hash == hash))
    }

    pub fn clear(&mut self) {
        self.by_sender.clear();
        self.total = 0;
    }

    /// Every transaction, as the API shows them.
    pub fn pending(&self) -> Vec<PendingTx> {
        self.by_sender
            .values()
            .flat_map(|q| q.values())
            .map(|e| PendingTx {
                hash: crypto::hex(&e.hash),
                sender: e.tx.body.sender(),
                nonce: e.tx.body.nonce,
                gas_price: e.tx.body.gas_price,
            })
            .collect()
    }

    /// Every transaction (to persist the pool).
    pub fn all(&self) -> Vec<SignedTx> {
        self.by_sender
            .values()
            .flat_map(|q| q.values().map(|e| e.tx.clone()))
            .collect()
    }
}
