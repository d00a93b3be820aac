//! The validators' messages as bytes, for a transport between processes: every [`NetMsg`]
//! that travels between validators (consensus votes and proposals, liveness certificates,
//! decided blocks with their commit certificates, status and block sync, transactions, task
//! results, segment jobs and proofs) has a serde form here; the node's local controls (mine,
//! revert, keep, stop) have none. Signatures travel as they were made: decoding rebuilds the
//! very signed messages, and the receiver checks them as it checks in-process ones. Votes and
//! proposals use the forms the WAL stores.
//!
//! Decoding is strict: a signature of the wrong length, a field element out of range or
//! trailing garbage is an error, not a default.

use std::sync::Arc;

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use lightchain_aivm::circuit::Witness;
use lightchain_aivm::segment::SegmentJob;
use malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};
use malachitebft_core_types::{
    CommitCertificate, CommitSignature, NilOrVal, PolkaCertificate, PolkaSignature,
    RoundCertificate, RoundCertificateType, RoundSignature, VoteType,
};
use malachitebft_signing_ed25519::Signature;
use serde::{Deserialize, Serialize};

use crate::chain::{Block, CommittedBlock, SignedTx, TaskResult};
use crate::consensus::context::{Address, BlockHash, DevnetContext, Height, Value};
use crate::consensus::wal::{ProposalForm, VoteForm, round};
use crate::executor::SegmentReply;
use crate::net::NetMsg;

type Ctx = DevnetContext;

/// Why bytes are not a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a validator message: {0}")]
    Malformed(String),
    #[error("a signature of {0} bytes (64 expected)")]
    Signature(usize),
    #[error("a field element out of range")]
    Field,
}

/// An address and its signature (commit and polka certificates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sig {
    address: [u8; 20],
    signature: Vec<u8>,
}

/// One signature of a round certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RoundSig {
    precommit: bool,
    value: Option<[u8; 32]>,
    address: [u8; 20],
    signature: Vec<u8>,
}

/// A segment job's witness and instance (field elements as their 32-byte representations).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct JobForm {
    index: usize,
    inputs: Vec<Vec<i64>>,
    salt: [u8; 32],
    links: Vec<[u8; 32]>,
    instance: Vec<[u8; 32]>,
}

/// A message on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Wire {
    Vote(VoteForm),
    Proposal(ProposalForm),
    LivenessVote(VoteForm),
    Polka {
        height: u64,
        round: i64,
        value: [u8; 32],
        signatures: Vec<Sig>,
    },
    RoundCertificate {
        height: u64,
        round: i64,
        precommit: bool,
        signatures: Vec<RoundSig>,
    },
    Decided {
        block: Block,
        height: u64,
        round: i64,
        value: [u8; 32],
        signatures: Vec<Sig>,
    },
    Status(u64),
    SyncRequest {
        from: u64,
        to: u64,
    },
    SyncResponse(Vec<CommittedBlock>),
    Tx(SignedTx),
    Result(TaskResult),
    SegmentJob {
        task_id: String,
        attempt: u32,
        job: JobForm,
    },
    SegmentProof(SegmentReply),
}

pub(crate) fn signature(b: &[u8]) -> Result<Signature, WireError> {
    let a: [u8; 64] = b.try_into().map_err(|_| WireError::Signature(b.len()))?;
    Ok(Signature::from_bytes(a))
}

fn sig_bytes(s: &Signature) -> Vec<u8> {
    s.to_bytes().to_vec()
}

fn fp(b: &[u8; 32]) -> Result<Fp, WireError> {
    Option::from(Fp::from_repr(*b)).ok_or(WireError::Field)
}

fn sigs_of<'a>(it: impl Iterator<Item = (&'a Address, &'a Signature)>) -> Vec<Sig> {
    it.map(|(a, s)| Sig {
        address: a.0,
        signature: sig_bytes(s),
    })
    .collect()
}

impl Wire {
    fn of(msg: &NetMsg) -> Option<Wire> {
        Some(match msg {
            NetMsg::Consensus(SignedConsensusMsg::Vote(v)) => Wire::Vote(VoteForm::of(v)),
            NetMsg::Consensus(SignedConsensusMsg::Proposal(p)) => {
                Wire::Proposal(ProposalForm::of(p))
            }
            NetMsg::Liveness(LivenessMsg::Vote(v)) => Wire::LivenessVote(VoteForm::of(v)),
            NetMsg::Liveness(LivenessMsg::PolkaCertificate(c)) => Wire::Polka {
                height: c.height.0,
                round: c.round.as_i64(),
                value: c.value_id.0,
                signatures: sigs_of(
                    c.polka_signatures
                        .iter()
                        .map(|s| (&s.address, &s.signature)),
                ),
            },
            NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(c)) => Wire::RoundCertificate {
                height: c.height.0,
                round: c.round.as_i64(),
                precommit: c.cert_type == RoundCertificateType::Precommit,
                signatures: c
                    .round_signatures
                    .iter()
                    .map(|s| RoundSig {
                        precommit: s.vote_type == VoteType::Precommit,
                        value: match &s.value_id {
                            NilOrVal::Nil => None,
                            NilOrVal::Val(h) => Some(h.0),
                        },
                        address: s.address.0,
                        signature: sig_bytes(&s.signature),
                    })
                    .collect(),
            },
            NetMsg::Decided(value, cert) => Wire::Decided {
                block: (*value.block).clone(),
                height: cert.height.0,
                round: cert.round.as_i64(),
                value: cert.value_id.0,
                signatures: sigs_of(
                    cert.commit_signatures
                        .iter()
                        .map(|s| (&s.address, &s.signature)),
                ),
            },
            NetMsg::Status(h) => Wire::Status(*h),
            NetMsg::SyncRequest { from, to } => Wire::SyncRequest {
                from: *from,
                to: *to,
            },
            NetMsg::SyncResponse(b) => Wire::SyncResponse(b.clone()),
            NetMsg::Tx(tx) => Wire::Tx(tx.clone()),
            NetMsg::Result(r) => Wire::Result(r.clone()),
            NetMsg::SegmentJob {
                task_id,
                attempt,
                job,
            } => Wire::SegmentJob {
                task_id: task_id.clone(),
                attempt: *attempt,
                job: JobForm {
                    index: job.index,
                    inputs: job.witness.inputs.clone(),
                    salt: job.witness.salt.to_repr(),
                    links: job.witness.links.iter().map(PrimeField::to_repr).collect(),
                    instance: job.instance.iter().map(PrimeField::to_repr).collect(),
                },
            },
            NetMsg::SegmentProof(r) => Wire::SegmentProof(r.clone()),
            NetMsg::Mine | NetMsg::Revert(_) | NetMsg::Keep(_) | NetMsg::Stop => return None,
        })
    }

    fn into_msg(self) -> Result<NetMsg, WireError> {
        let commit_sigs = |sigs: Vec<Sig>| -> Result<Vec<CommitSignature<Ctx>>, WireError> {
            sigs.into_iter()
                .map(|s| {
                    Ok(CommitSignature::new(
                        Address(s.address),
                        signature(&s.signature)?,
                    ))
                })
                .collect()
        };
        Ok(match self {
            Wire::Vote(v) => NetMsg::Consensus(SignedConsensusMsg::Vote(v.into_signed()?)),
            Wire::Proposal(p) => NetMsg::Consensus(SignedConsensusMsg::Proposal(p.into_signed()?)),
            Wire::LivenessVote(v) => NetMsg::Liveness(LivenessMsg::Vote(v.into_signed()?)),
            Wire::Polka {
                height,
                round: r,
                value,
                signatures,
            } => NetMsg::Liveness(LivenessMsg::PolkaCertificate(PolkaCertificate {
                height: Height(height),
                round: round(r),
                value_id: BlockHash(value),
                polka_signatures: signatures
                    .into_iter()
                    .map(|s| {
                        Ok(PolkaSignature::new(
                            Address(s.address),
                            signature(&s.signature)?,
                        ))
                    })
                    .collect::<Result<_, WireError>>()?,
            })),
            Wire::RoundCertificate {
                height,
                round: r,
                precommit,
                signatures,
            } => NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(RoundCertificate {
                height: Height(height),
                round: round(r),
                cert_type: if precommit {
                    RoundCertificateType::Precommit
                } else {
                    RoundCertificateType::Skip
                },
                round_signatures: signatures
                    .into_iter()
                    .map(|s| {
                        Ok(RoundSignature::new(
                            if s.precommit {
                                VoteType::Precommit
                            } else {
                                VoteType::Prevote
                            },
                            s.value
                                .map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
                            Address(s.address),
                            signature(&s.signature)?,
                        ))
                    })
                    .collect::<Result<_, WireError>>()?,
            })),
            Wire::Decided {
                block,
                height,
                round: r,
                value,
                signatures,
            } => NetMsg::Decided(
                Value::new(block),
                CommitCertificate {
                    height: Height(height),
                    round: round(r),
                    value_id: BlockHash(value),
                    commit_signatures: commit_sigs(signatures)?,
                },
            ),
            Wire::Status(h) => NetMsg::Status(h),
            Wire::SyncRequest { from, to } => NetMsg::SyncRequest { from, to },
            Wire::SyncResponse(b) => NetMsg::SyncResponse(b),
            Wire::Tx(tx) => NetMsg::Tx(tx),
            Wire::Result(r) => NetMsg::Result(r),
            Wire::SegmentJob {
                task_id,
                attempt,
                job,
            } => {
                let mut witness = Witness::new(job.inputs, fp(&job.salt)?);
                witness.links = job.links.iter().map(fp).collect::<Result<_, _>>()?;
                NetMsg::SegmentJob {
                    task_id,
                    attempt,
                    job: Arc::new(SegmentJob {
                        index: job.index,
                        witness,
                        instance: job.instance.iter().map(fp).collect::<Result<_, _>>()?,
                    }),
                }
            }
            Wire::SegmentProof(r) => NetMsg::SegmentProof(r),
        })
    }
}

/// A message's bytes; `None` for a node's local controls, which never leave it.
pub fn encode(msg: &NetMsg) -> Option<Vec<u8>> {
    let w = Wire::of(msg)?;
    Some(serde_json::to_vec(&w).expect("a wire message serializes"))
}

/// The message in `bytes` (its signatures unchecked: the receiver checks them).
pub fn decode(bytes: &[u8]) -> Result<NetMsg, WireError> {
    let w: Wire = serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    w.into_msg()
}

#[cfg(test)]
mod tests;
