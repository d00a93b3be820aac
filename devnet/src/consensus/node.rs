//! One validator: Malachite's consensus `State`, the host that answers its effects, and the
//! application ([`crate::validator::App`]) that builds, checks and commits blocks.
//!
//! `process!(input, state, metrics, with: effect => handler)` runs the consensus coroutine for
//! one input; every `Effect` it yields is answered synchronously by [`Host::handle_effect`].
//! The handler cannot feed inputs re-entrantly, so inputs it produces (our proposal after
//! `GetValue`, the next `StartHeight`) go to `Host::pending`, fed after `process!` returns.
//!
//! Proposals carry the whole block and consensus runs in `ProposalAndParts` mode so that the
//! host decides validity (`Input::ProposedValue { validity }`): a block whose proofs do not
//! verify is prevoted nil. A proposal for a later height than the one in progress is kept and
//! judged when that height starts. Recovery:
//!
//! - every entry the core logs goes to the validator's write-ahead log ([`super::wal`]) before
//!   it goes on, and a restarted validator replays the log of the height it was in;
//! - validators announce their committed height every [`STATUS_EVERY`]; one that is behind asks
//!   a peer for the blocks it lacks with their commit certificates (block sync), checks each
//!   certificate against the validator set of its height and commits;
//! - a block this validator cannot apply or store stops it ([`crate::validator::Fatal`]).
//!
//! Between heights a validator is idle until there is work (instant mining) or the block time
//! has passed. Byzantine behaviours ([`Behavior`]) are injected here, for fault tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use malachitebft_core_consensus::{
    ConsensusMsg, Effect, Error as ConsensusError, Input, LivenessMsg, LocallyProposedValue,
    Params, ProposedValue, Resumable, Resume, SignedConsensusMsg, State, ValuePayload, WalEntry,
    process,
};
use malachitebft_core_types::{
    CommitCertificate, CommitSignature, Context, NilOrVal, SignedProposal, SigningProvider,
    SigningProviderExt, ThresholdParams, Timeout, TimeoutKind, Validity, ValueOrigin,
};
use malachitebft_signing_ed25519::{PublicKey, Signature};

use super::context::{
    Address, BlockHash, DevnetContext, Ed25519Signer, Height, Validator, ValidatorSet, Value,
};
use super::wal::Wal;
use crate::chain::ChainParams;
use crate::chain::{CommitSig, CommittedBlock, State as ChainState};
use crate::lock::Shared;
use crate::net::{NetMsg, Network};
use crate::validator::{App, Behavior};

type Ctx = DevnetContext;

/// How often a validator announces its committed height.
pub const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Blocks one sync response carries at most.
const SYNC_BATCH: u64 = 32;
/// Proposals for later heights kept at most (a Byzantine proposer could send many).
const FUTURE_PROPOSALS: usize = 64;

/// Consensus timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub propose: Duration,
    pub prevote: Duration,
    pub precommit: Duration,
    pub rebroadcast: Duration,
    /// Added per round (back-off).
    pub delta: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        // The propose timeout covers building and checking a block, which verifies proofs.
        Timeouts {
            propose: Duration::from_millis(3000),
            prevote: Duration::from_millis(1000),
            precommit: Duration::from_millis(1000),
            rebroadcast: Duration::from_millis(3000),
            delta: Duration::from_millis(500),
        }
    }
}

/// Rounds after which the timeouts stop growing: after a long partition a height can be at a
/// high round, and uncapped back-off would make every round after the heal slower still.
pub const BACKOFF_ROUNDS: u32 = 8;

impl Timeouts {
    pub fn duration(&self, t: Timeout) -> Duration {
        let r = t.round.as_u32().unwrap_or(0).min(BACKOFF_ROUNDS);
        match t.kind {
            TimeoutKind::Propose => self.propose + self.delta * r,
            TimeoutKind::Prevote => self.prevote + self.delta * r,
            TimeoutKind::Precommit => self.precommit + self.delta * r,
            TimeoutKind::Rebroadcast => self.rebroadcast,
        }
    }
}

/// The validator set of the height after `state`: every validator with stake, its voting
/// power its stake (so that slashing costs votes).
pub fn validator_set(state: &ChainState, params: &ChainParams) -> ValidatorSet {
    ValidatorSet::new(
        state
            .validators
            .iter()
            .filter_map(|v| {
                let power = params.voting_power(v.stake);
                (power > 0).then(|| Validator::new(PublicKey::from_bytes(v.consensus_key), power))
            })
            .collect(),
    )
}

#[allow(clippy::large_enum_variant)]
enum Action {
    Input(Input<Ctx>),
    TryCatchUp,
}

struct Host {
    index: usize,
    ctx: Ctx,
    signer: Ed25519Signer,
    net: Network,
    timeouts: Timeouts,
    app: App,
    wal: Wal,
    behavior: Arc<Shared<Behavior>>,
    /// Consensus address -> validator index.
    indices: BTreeMap<[u8; 20], usize>,
    timers: HashMap<Timeout, Instant>,
    pending: VecDeque<Action>,
    blocks: HashMap<BlockHash, Value>,
    validity_cache: HashMap<BlockHash, bool>,
    /// Proposals for heights after the one in progress, judged when it starts.
    future: BTreeMap<u64, Vec<SignedProposal<Ctx>>>,
    certs: BTreeMap<u64, (Value, CommitCertificate<Ctx>)>,
    committed: u64,
    current: (u64, u32),
    /// Decided the last height and waiting for work before starting the next.
    idle: bool,
    last_sync_request: Instant,
    fatal: Option<String>,
}

impl Host {
    fn validator_set(&self, height: u64) -> Option<ValidatorSet> {
        let state = self.app.state_at(height.checked_sub(1)?)?;
        Some(validator_set(state, &self.app.params))
    }

    fn wal_append(&mut self, entry: &WalEntry<Ctx>) {
        if let Err(e) = self.wal.append(entry) {
            self.stop(format!(
                "validator {} cannot write its WAL {}: {e}",
                self.index,
                self.wal.path().display()
            ));
        }
    }

    fn stop(&mut self, reason: String) {
        if self.fatal.is_none() {
            self.app.view.write().fatal = Some(reason.clone());
            self.fatal = Some(reason);
        }
    }

    fn behavior(&self) -> Behavior {
        *self.behavior.read()
    }

    fn handle_effect(&mut self, effect: Effect<Ctx>) -> Result<Resume<Ctx>, String> {
        match effect {
            Effect::ResetTimeouts(r) => Ok(r.resume_with(())),
            Effect::CancelAllTimeouts(r) => {
                self.timers.clear();
                Ok(r.resume_with(()))
            }
            Effect::CancelTimeout(t, r) => {
                self.timers.remove(&t);
                Ok(r.resume_with(()))
            }
            Effect::ScheduleTimeout(t, r) => {
                self.timers
                    .insert(t, Instant::now() + self.timeouts.duration(t));
                Ok(r.resume_with(()))
            }
            Effect::GetValidatorSet(h, r) => Ok(r.resume_with(self.validator_set(h.0))),
            Effect::StartRound(height, round, _proposer, _role, r) => {
                self.current = (height.0, round.as_u32().unwrap_or(0));
                self.app.view.write().round = self.current.1;
                self.pending.push_back(Action::TryCatchUp);
                Ok(r.resume_with(()))
            }
            Effect::PublishConsensusMsg(msg, r) => {
                self.publish(msg);
                Ok(r.resume_with(()))
            }
            Effect::PublishLivenessMsg(msg, r) => {
                if !(self.behavior() == Behavior::WithholdVotes
                    && matches!(msg, LivenessMsg::Vote(_)))
                {
                    self.net.broadcast(self.index, NetMsg::Liveness(msg));
                }
                Ok(r.resume_with(()))
            }
            Effect::RepublishVote(vote, r) => {
                if self.behavior() != Behavior::WithholdVotes {
                    self.net
                        .broadcast(self.index, NetMsg::Liveness(LivenessMsg::Vote(vote)));
                }
                Ok(r.resume_with(()))
            }
            Effect::RepublishRoundCertificate(cert, r) => {
                self.net.broadcast(
                    self.index,
                    NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(cert)),
                );
                Ok(r.resume_with(()))
            }
            Effect::GetValue(height, round, _timeout, r) => {
                let mut block = self.app.build();
                if self.behavior() == Behavior::InvalidBlock {
                    block.state_root[0] ^= 1;
                }
                let value = Value::new(block);
                self.blocks.insert(value.hash(), value.clone());
                self.validity_cache.insert(value.hash(), true);
                self.pending
                    .push_back(Action::Input(Input::Propose(LocallyProposedValue::new(
                        height, round, value,
                    ))));
                Ok(r.resume_with(()))
            }
            Effect::RestreamProposal(_h, _r, _vr, _p, _id, r) => Ok(r.resume_with(())),
            Effect::SyncValue(_resp, r) => Ok(r.resume_with(())),
            Effect::Decide(cert, _ext, r) => {
                let value = self
                    .blocks
                    .get(&cert.value_id)
                    .cloned()
                    .ok_or("decided a value never received")?;
                self.commit(value, cert, true);
                Ok(r.resume_with(()))
            }
            Effect::SignVote(vote, r) => Ok(r.resume_with(self.signer.sign_vote(vote))),
            Effect::SignProposal(p, r) => Ok(r.resume_with(self.signer.sign_proposal(p))),
            Effect::VerifySignature(msg, pk, r) => {
                let ok = match &msg.message {
                    ConsensusMsg::Vote(v) => self.signer.verify_signed_vote(v, &msg.signature, &pk),
                    ConsensusMsg::Proposal(p) => {
                        self.signer.verify_signed_proposal(p, &msg.signature, &pk)
                    }
                };
                Ok(r.resume_with(ok))
            }
            Effect::VerifyCommitCertificate(c, vs, th, r) => Ok(r.resume_with(
                self.signer
                    .verify_commit_certificate(&self.ctx, &c, &vs, th),
            )),
            Effect::VerifyPolkaCertificate(c, vs, th, r) => {
                Ok(r.resume_with(self.signer.verify_polka_certificate(&self.ctx, &c, &vs, th)))
            }
            Effect::VerifyRoundCertificate(c, vs, th, r) => {
                Ok(r.resume_with(self.signer.verify_round_certificate(&self.ctx, &c, &vs, th)))
            }
            Effect::WalAppend(e, r) => {
                self.wal_append(&e);
                Ok(r.resume_with(()))
            }
            Effect::ExtendVote(_h, _r, _id, r) => Ok(r.resume_with(None)),
            Effect::VerifyVoteExtension(_h, _r, _id, _ext, _pk, r) => Ok(r.resume_with(Ok(()))),
        }
    }

    /// Sends a consensus message, or misbehaves with it.
    fn publish(&mut self, msg: SignedConsensusMsg<Ctx>) {
        match (self.behavior(), msg) {
            (Behavior::WithholdVotes, SignedConsensusMsg::Vote(_)) => {}
            (Behavior::DoubleVote, SignedConsensusMsg::Vote(v)) => {
                // A second vote for the same height and round, for something else, to half
                // of the validators.
                let mut other = v.message.clone();
                other.value = match other.value {
                    NilOrVal::Nil => NilOrVal::Val(BlockHash([0xee; 32])),
                    NilOrVal::Val(_) => NilOrVal::Nil,
                };
                let other = self.signer.sign_vote(other);
                self.split(
                    NetMsg::Consensus(SignedConsensusMsg::Vote(v)),
                    NetMsg::Consensus(SignedConsensusMsg::Vote(other)),
                );
            }
            (Behavior::EquivocatingProposer, SignedConsensusMsg::Proposal(p)) => {
                // Another block for the same height and round to half of the validators.
                let mut block = (*p.message.value.block).clone();
                block.timestamp_ms += 1;
                let mut other = p.message.clone();
                other.value = Value::new(block);
                let other = self.signer.sign_proposal(other);
                self.split(
                    NetMsg::Consensus(SignedConsensusMsg::Proposal(p)),
                    NetMsg::Consensus(SignedConsensusMsg::Proposal(other)),
                );
            }
            (_, msg) => self.net.broadcast(self.index, NetMsg::Consensus(msg)),
        }
    }

    /// `a` to the peers with an even index, `b` to the others.
    fn split(&self, a: NetMsg, b: NetMsg) {
        for to in (0..self.net.len()).filter(|&to| to != self.index) {
            let m = if to % 2 == 0 { a.clone() } else { b.clone() };
            self.net.send(self.index, to, m);
        }
    }

    /// Commits a decided block (ours, or from a peer's verified certificate).
    fn commit(&mut self, value: Value, cert: CommitCertificate<Ctx>, own: bool) {
        let height = cert.height.0;
        if height <= self.committed || self.fatal.is_some() {
            return;
        }
        let (signers, signatures): (Vec<usize>, Vec<CommitSig>) = cert
            .commit_signatures
            .iter()
            .filter_map(|s| {
                let v = *self.indices.get(&s.address.0)?;
                Some((
                    v,
                    CommitSig {
                        validator: v,
                        signature: s.signature.to_bytes().to_vec(),
                    },
                ))
            })
            .unzip();
        let committed = CommittedBlock {
            hash: value.hash().0,
            block: (*value.block).clone(),
            round: cert.round.as_u32().unwrap_or(0),
            signers,
            signatures,
        };
        if let Err(e) = self.app.commit(committed) {
            self.stop(e.0);
            return;
        }
        self.committed = height;
        if own {
            self.net.broadcast(self.index, NetMsg::Decided(value, cert));
        }
        self.pending
            .retain(|a| !matches!(a, Action::Input(Input::Propose(v)) if v.height.0 <= height));
        self.blocks.retain(|_, b| b.block.height > height);
        self.validity_cache.clear();
        self.signer.clear_cache();
        self.certs = self.certs.split_off(&(height + 1));
        self.future = self.future.split_off(&(height + 1));
        self.idle = true;
    }

    /// The commit certificate of a stored block, from its signatures (validators by index:
    /// their consensus keys never change, so the current records map them).
    fn certificate(&self, b: &CommittedBlock) -> Option<CommitCertificate<Ctx>> {
        let validators = &self.app.state.validators;
        let sigs = b
            .signatures
            .iter()
            .map(|s| {
                let v = validators.get(s.validator)?;
                let address = Address::of(&v.consensus_key);
                let sig = Signature::from_bytes(s.signature.as_slice().try_into().ok()?);
                Some(CommitSignature::new(address, sig))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CommitCertificate {
            height: Height(b.block.height),
            round: malachitebft_core_types::Round::new(b.round),
            value_id: BlockHash(b.hash),
            commit_signatures: sigs,
        })
    }

    fn on_message(&mut self, from: usize, msg: NetMsg) -> Vec<Action> {
        match msg {
            NetMsg::Consensus(SignedConsensusMsg::Vote(v)) => {
                self.wake_for(v.height.0);
                vec![Action::Input(Input::Vote(v))]
            }
            NetMsg::Consensus(SignedConsensusMsg::Proposal(p)) => {
                self.wake_for(p.height.0);
                self.on_proposal(p)
            }
            NetMsg::Liveness(LivenessMsg::Vote(v)) => vec![Action::Input(Input::Vote(v))],
            NetMsg::Liveness(LivenessMsg::PolkaCertificate(c)) => {
                vec![Action::Input(Input::PolkaCertificate(c))]
            }
            NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(c)) => {
                vec![Action::Input(Input::RoundCertificate(c))]
            }
            NetMsg::Decided(value, cert) => self.on_decided(value, cert),
            NetMsg::Status(h) => {
                if h > self.committed
                    && from != crate::net::API
                    && self.last_sync_request.elapsed() >= STATUS_EVERY
                {
                    self.last_sync_request = Instant::now();
                    let (lo, hi) = (self.committed + 1, h.min(self.committed + SYNC_BATCH));
                    self.net
                        .send(self.index, from, NetMsg::SyncRequest { from: lo, to: hi });
                }
                vec![]
            }
            NetMsg::SyncRequest { from: lo, to: hi } => {
                let hi = hi
                    .min(lo.saturating_add(SYNC_BATCH - 1))
                    .min(self.committed);
                let blocks: Vec<CommittedBlock> = (lo..=hi)
                    .filter_map(|h| self.app.blocks.get(h.checked_sub(1)? as usize).cloned())
                    .collect();
                if !blocks.is_empty() && from != crate::net::API {
                    self.net
                        .send(self.index, from, NetMsg::SyncResponse(blocks));
                }
                vec![]
            }
            NetMsg::SyncResponse(blocks) => {
                let mut out = vec![];
                for b in blocks {
                    if b.block.height <= self.committed
                        || Value::new(b.block.clone()).hash().0 != b.hash
                    {
                        continue;
                    }
                    // Checked against the validator set of its height when it is its turn.
                    if let Some(cert) = self.certificate(&b) {
                        out.extend(self.on_decided(Value::new(b.block), cert));
                    }
                }
                out
            }
            NetMsg::Tx(tx) => {
                self.app.on_tx(tx);
                vec![]
            }
            NetMsg::Result(r) => {
                self.app.on_result(r);
                vec![]
            }
            msg @ (NetMsg::SegmentJob { .. } | NetMsg::SegmentProof(_)) => {
                self.app.on_segment(from, msg);
                vec![]
            }
            NetMsg::Mine => {
                self.app.mine_requested = true;
                vec![]
            }
            NetMsg::Revert(_) | NetMsg::Keep(_) | NetMsg::Stop => vec![],
        }
    }

    fn on_decided(&mut self, value: Value, cert: CommitCertificate<Ctx>) -> Vec<Action> {
        let h = cert.height.0;
        if h <= self.committed || value.hash() != cert.value_id {
            return vec![];
        }
        self.certs.entry(h).or_insert((value, cert));
        // A certificate is final: take it whatever round this validator is in (one stuck in a
        // step that waits for votes the others no longer send would otherwise never leave it).
        if self.certs.contains_key(&(self.committed + 1)) {
            vec![Action::TryCatchUp]
        } else {
            vec![]
        }
    }

    /// A message for the next height while idle: the others have started it, so do we.
    fn wake_for(&mut self, height: u64) {
        if self.idle && height == self.committed + 1 {
            self.start_next();
        }
    }

    /// Starts the next height: logs it, replays what the log holds of it (after a restart),
    /// and feeds the proposals that came early.
    fn start_next(&mut self) {
        self.idle = false;
        let h = self.committed + 1;
        let Some(vset) = self.validator_set(h) else {
            self.stop(format!(
                "validator {} has no state for height {h}",
                self.index
            ));
            return;
        };
        let replay = match self.wal.start(h) {
            Ok(r) => r,
            Err(e) => {
                self.stop(format!(
                    "validator {} cannot start its WAL {}: {e}",
                    self.index,
                    self.wal.path().display()
                ));
                return;
            }
        };
        self.pending
            .push_back(Action::Input(Input::StartHeight(Height(h), vset)));
        for e in replay {
            let input = match e {
                WalEntry::ConsensusMsg(SignedConsensusMsg::Vote(v)) => Input::Vote(v),
                WalEntry::ConsensusMsg(SignedConsensusMsg::Proposal(p)) => {
                    let v = p.message.value.clone();
                    self.blocks.insert(v.hash(), v);
                    Input::Proposal(p)
                }
                WalEntry::Timeout(t) => Input::TimeoutElapsed(t),
                WalEntry::ProposedValue(pv) => {
                    self.blocks.insert(pv.value.hash(), pv.value.clone());
                    self.validity_cache
                        .insert(pv.value.hash(), pv.validity == Validity::Valid);
                    Input::ProposedValue(pv, ValueOrigin::Consensus)
                }
            };
            self.pending.push_back(Action::Input(input));
        }
        for p in self.future.remove(&h).unwrap_or_default() {
            let actions = self.on_proposal(p);
            self.pending.extend(actions);
        }
    }

    fn on_proposal(&mut self, sp: SignedProposal<Ctx>) -> Vec<Action> {
        let h = sp.height.0;
        if h <= self.committed {
            return vec![];
        }
        if h > self.committed + 1 || self.idle {
            // Judged against the state of its height when that height starts.
            let n: usize = self.future.values().map(Vec::len).sum();
            if n < FUTURE_PROPOSALS && h <= self.committed + 8 {
                self.future.entry(h).or_default().push(sp);
            }
            return vec![];
        }
        let Some(vset) = self.validator_set(h) else {
            return vec![];
        };
        let expected = self.ctx.select_proposer(&vset, sp.height, sp.round).address;
        if expected != sp.proposer {
            return vec![];
        }
        let Some(v) = vset.validators.iter().find(|v| v.address == sp.proposer) else {
            return vec![];
        };
        if !self
            .signer
            .verify_signed_proposal(&sp.message, &sp.signature, &v.public_key)
        {
            return vec![];
        }
        let value = sp.value.clone();
        let id = value.hash();
        let valid = match self.validity_cache.get(&id) {
            Some(v) => *v,
            None => {
                let ok = value.block.height == h && self.app.validate(&value.block).is_ok();
                self.validity_cache.insert(id, ok);
                ok
            }
        };
        self.blocks.insert(id, value.clone());
        let pv = ProposedValue {
            height: sp.height,
            round: sp.round,
            valid_round: sp.pol_round,
            proposer: sp.proposer,
            value,
            validity: Validity::from_bool(valid),
        };
        vec![
            Action::Input(Input::Proposal(sp)),
            Action::Input(Input::ProposedValue(pv, ValueOrigin::Consensus)),
        ]
    }
}

/// A validator's consensus instance and host.
pub struct Node {
    state: State<Ctx>,
    host: Host,
    rx: Receiver<(usize, NetMsg)>,
    params: Params<Ctx>,
}

/// What a validator needs besides its app: its signer, the network, and its log.
pub struct Wiring {
    pub index: usize,
    pub signer: Ed25519Signer,
    pub address: Address,
    pub net: Network,
    pub rx: Receiver<(usize, NetMsg)>,
    pub timeouts: Timeouts,
    pub wal: Wal,
    pub behavior: Arc<Shared<Behavior>>,
}

impl Node {
    pub fn new(w: Wiring, app: App) -> Node {
        let committed = app.state.height;
        let vset = validator_set(&app.state, &app.params);
        let indices = app
            .state
            .validators
            .iter()
            .map(|v| (Address::of(&v.consensus_key).0, v.index))
            .collect();
        let params = Params {
            initial_height: Height(committed + 1),
            initial_validator_set: vset,
            address: w.address,
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalAndParts,
        };
        let state = State::new(DevnetContext, params.clone(), 16);
        let host = Host {
            index: w.index,
            ctx: DevnetContext,
            signer: w.signer,
            net: w.net,
            timeouts: w.timeouts,
            app,
            wal: w.wal,
            behavior: w.behavior,
            indices,
            timers: HashMap::new(),
            pending: VecDeque::new(),
            blocks: HashMap::new(),
            validity_cache: HashMap::new(),
            future: BTreeMap::new(),
            certs: BTreeMap::new(),
            committed,
            current: (committed + 1, 0),
            idle: true,
            last_sync_request: Instant::now() - STATUS_EVERY,
            fatal: None,
        };
        Node {
            state,
            host,
            rx: w.rx,
            params,
        }
    }

    fn apply(&mut self, input: Input<Ctx>) {
        let result: Result<(), ConsensusError<Ctx>> = process!(
            input: input,
            state: &mut self.state,
            metrics: &(),
            with: effect => self.host.handle_effect(effect)
        );
        // A failed effect is logged by the core, which continues; nothing to do here.
        let _ = result;
    }

    fn restart_core(&mut self) {
        let mut params = self.params.clone();
        params.initial_height = Height(self.host.committed + 1);
        if let Some(vs) = self.host.validator_set(self.host.committed + 1) {
            params.initial_validator_set = vs;
        }
        self.state = State::new(DevnetContext, params, 16);
        self.host.timers.clear();
    }

    fn try_catch_up(&mut self) {
        let h = self.host.committed + 1;
        let Some((value, cert)) = self.host.certs.remove(&h) else {
            return;
        };
        let Some(vset) = self.host.validator_set(h) else {
            return;
        };
        let ok = self.host.signer.verify_commit_certificate(
            &self.host.ctx,
            &cert,
            &vset,
            ThresholdParams::default(),
        );
        if ok.is_ok() {
            self.host.commit(value, cert, false);
            // Restart the core at the next height from a clean state.
            self.restart_core();
            if self.host.certs.contains_key(&(self.host.committed + 1)) {
                self.host.pending.push_back(Action::TryCatchUp);
            }
        }
    }

    fn revert(&mut self, height: u64) {
        match self.host.app.revert(height) {
            Err(e) => {
                self.host.stop(e.0);
                return;
            }
            Ok(false) => return,
            Ok(true) => {}
        }
        self.host.committed = self.host.app.state.height;
        self.host.current = (self.host.committed + 1, 0);
        self.host.timers.clear();
        self.host.pending.clear();
        self.host.blocks.clear();
        self.host.certs.clear();
        self.host.future.clear();
        self.host.validity_cache.clear();
        self.host.idle = true;
        self.restart_core();
    }

    fn drain_pending(&mut self) {
        while let Some(action) = self.host.pending.pop_front() {
            if self.host.fatal.is_some() {
                return;
            }
            match action {
                Action::Input(input) => self.apply(input),
                Action::TryCatchUp => self.try_catch_up(),
            }
        }
    }

    /// Runs until stopped, disconnected or unable to go on; returns the app (what a
    /// restarted validator keeps).
    pub fn run(mut self) -> App {
        let mut last_status = Instant::now() - STATUS_EVERY;
        let mut last_tick = Instant::now();
        loop {
            self.drain_pending();
            if self.host.fatal.is_some() {
                return self.host.app;
            }
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                self.host
                    .net
                    .broadcast(self.host.index, NetMsg::Status(self.host.committed));
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                self.host.app.tick();
            }
            if self.host.idle && self.host.app.has_work() {
                self.host.start_next();
                continue;
            }
            let now = Instant::now();
            let mut expired: Vec<(Instant, Timeout)> = self
                .host
                .timers
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(t, at)| (*at, *t))
                .collect();
            if !expired.is_empty() {
                expired.sort_by_key(|(at, _)| *at);
                for (_, t) in expired {
                    self.host.timers.remove(&t);
                    self.host
                        .pending
                        .push_back(Action::Input(Input::TimeoutElapsed(t)));
                }
                continue;
            }
            let wait = self
                .host
                .timers
                .values()
                .min()
                .map(|at| at.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(50));
            match self.rx.recv_timeout(wait) {
                Ok((_, NetMsg::Stop)) => return self.host.app,
                Ok((_, NetMsg::Revert(h))) => self.revert(h),
                Ok((_, NetMsg::Keep(h))) => self.host.app.keep(h),
                Ok((from, msg)) => {
                    let actions = self.host.on_message(from, msg);
                    self.host.pending.extend(actions);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.host.app,
            }
        }
    }
}
