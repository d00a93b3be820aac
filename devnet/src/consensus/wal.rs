//! A validator's write-ahead log: what the consensus core asks to log (`Effect::WalAppend`:
//! the votes and proposals it sends or receives, the timeouts that elapse, the values it
//! judged) is appended to Malachite's own WAL (`informalsystems-malachitebft-wal`, one file per
//! validator) before the core goes on. The log holds one height: starting the next height
//! restarts it. A validator that restarts in the middle of a height replays the log into a
//! fresh core, so it neither forgets its own votes (and cannot be made to sign a conflicting
//! one) nor the round it was in.

use std::path::{Path, PathBuf};

use malachitebft_core_consensus::{ProposedValue, SignedConsensusMsg, WalEntry};
use malachitebft_core_types::{
    NilOrVal, Round, SignedMessage, Timeout, TimeoutKind, Validity, VoteType,
};
use serde::{Deserialize, Serialize};

use super::context::{Address, BlockHash, DevnetContext, Height, Proposal, Value, Vote};
use crate::chain::Block;
use crate::wire::{WireError, signature};

type Ctx = DevnetContext;

/// A signed vote in a form that serializes (the WAL's and the wire's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteForm {
    precommit: bool,
    height: u64,
    round: i64,
    value: Option<[u8; 32]>,
    validator: [u8; 20],
    signature: Vec<u8>,
}

impl VoteForm {
    pub fn of(v: &SignedMessage<Ctx, Vote>) -> VoteForm {
        VoteForm {
            precommit: v.message.vote_type == VoteType::Precommit,
            height: v.message.height.0,
            round: v.message.round.as_i64(),
            value: match &v.message.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(h) => Some(h.0),
            },
            validator: v.message.validator.0,
            signature: v.signature.to_bytes().to_vec(),
        }
    }

    pub fn into_signed(self) -> Result<SignedMessage<Ctx, Vote>, WireError> {
        let vote = Vote {
            vote_type: if self.precommit {
                VoteType::Precommit
            } else {
                VoteType::Prevote
            },
            height: Height(self.height),
            round: round(self.round),
            value: self
                .value
                .map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
            validator: Address(self.validator),
            extension: None,
        };
        Ok(SignedMessage::new(vote, signature(&self.signature)?))
    }
}

/// A signed proposal (with its block) in a form that serializes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposalForm {
    height: u64,
    round: i64,
    pol_round: i64,
    proposer: [u8; 20],
    block: Block,
    signature: Vec<u8>,
}

impl ProposalForm {
    pub fn of(p: &SignedMessage<Ctx, Proposal>) -> ProposalForm {
        ProposalForm {
            height: p.message.height.0,
            round: p.message.round.as_i64(),
            pol_round: p.message.pol_round.as_i64(),
            proposer: p.message.proposer.0,
            block: (*p.message.value.block).clone(),
            signature: p.signature.to_bytes().to_vec(),
        }
    }

    pub fn into_signed(self) -> Result<SignedMessage<Ctx, Proposal>, WireError> {
        let p = Proposal {
            height: Height(self.height),
            round: round(self.round),
            value: Value::new(self.block),
            pol_round: round(self.pol_round),
            proposer: Address(self.proposer),
        };
        Ok(SignedMessage::new(p, signature(&self.signature)?))
    }
}

/// A WAL entry in a form that serializes.
#[derive(Serialize, Deserialize)]
enum Entry {
    Vote(VoteForm),
    Proposal(ProposalForm),
    Timeout {
        kind: u8,
        round: i64,
    },
    ProposedValue {
        height: u64,
        round: i64,
        valid_round: i64,
        proposer: [u8; 20],
        block: Block,
        valid: bool,
    },
}

/// A round number as stored (-1: none).
pub fn round(r: i64) -> Round {
    if r < 0 {
        Round::Nil
    } else {
        Round::new(r as u32)
    }
}

impl Entry {
    fn of(e: &WalEntry<Ctx>) -> Entry {
        match e {
            WalEntry::ConsensusMsg(SignedConsensusMsg::Vote(v)) => Entry::Vote(VoteForm::of(v)),
            WalEntry::ConsensusMsg(SignedConsensusMsg::Proposal(p)) => {
                Entry::Proposal(ProposalForm::of(p))
            }
            WalEntry::Timeout(t) => Entry::Timeout {
                kind: match t.kind {
                    TimeoutKind::Propose => 0,
                    TimeoutKind::Prevote => 1,
                    TimeoutKind::Precommit => 2,
                    TimeoutKind::Rebroadcast => 3,
                },
                round: t.round.as_i64(),
            },
            WalEntry::ProposedValue(pv) => Entry::ProposedValue {
                height: pv.height.0,
                round: pv.round.as_i64(),
                valid_round: pv.valid_round.as_i64(),
                proposer: pv.proposer.0,
                block: (*pv.value.block).clone(),
                valid: pv.validity == Validity::Valid,
            },
        }
    }

    fn into_entry(self) -> Option<WalEntry<Ctx>> {
        Some(match self {
            Entry::Vote(v) => {
                WalEntry::ConsensusMsg(SignedConsensusMsg::Vote(v.into_signed().ok()?))
            }
            Entry::Proposal(p) => {
                WalEntry::ConsensusMsg(SignedConsensusMsg::Proposal(p.into_signed().ok()?))
            }
            Entry::Timeout { kind, round: r } => WalEntry::Timeout(Timeout {
                kind: match kind {
                    0 => TimeoutKind::Propose,
                    1 => TimeoutKind::Prevote,
                    2 => TimeoutKind::Precommit,
                    _ => TimeoutKind::Rebroadcast,
                },
                round: round(r),
            }),
            Entry::ProposedValue {
                height,
                round: r,
                valid_round,
                proposer,
                block,
                valid,
            } => WalEntry::ProposedValue(ProposedValue {
                height: Height(height),
                round: round(r),
                valid_round: round(valid_round),
                proposer: Address(proposer),
                value: Value::new(block),
                validity: Validity::from_bool(valid),
            }),
        })
    }
}

/// One validator's write-ahead log.
pub struct Wal {
    log: malachitebft_wal::Log,
    path: PathBuf,
    /// Whether appends are synced to disk (a persistent devnet) or only written.
    durable: bool,
}

impl Wal {
    pub fn open(path: &Path, durable: bool) -> std::io::Result<Wal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Wal {
            log: malachitebft_wal::Log::open(path)?,
            path: path.to_path_buf(),
            durable,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts logging `height`: the entries already logged for it (a restart in the middle
    /// of it) to replay, or none when the log held an earlier height, which it forgets.
    pub fn start(&mut self, height: u64) -> std::io::Result<Vec<WalEntry<Ctx>>> {
        if self.log.sequence() == height {
            let mut out = Vec::new();
            for e in self.log.iter()? {
                let bytes = e?;
                if let Some(entry) = serde_json::from_slice::<Entry>(&bytes)
                    .ok()
                    .and_then(Entry::into_entry)
                {
                    out.push(entry);
                }
            }
            return Ok(out);
        }
        self.log.restart(height)?;
        Ok(Vec::new())
    }

    /// Appends an entry; with a durable log it is on disk when this returns.
    pub fn append(&mut self, entry: &WalEntry<Ctx>) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&Entry::of(entry)).map_err(std::io::Error::other)?;
        self.log.append(&bytes)?;
        if self.durable {
            self.log.flush()?;
        }
        Ok(())
    }
}
