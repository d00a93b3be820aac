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
//! verify is prevoted nil. The core only decides values it holds valid, so a validator that
//! rejected a block the others committed catches up from their commit certificate
//! (`NetMsg::Decided`). Between heights a validator is idle until there is work (instant
//! mining) or the block time has passed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use malachitebft_core_consensus::{
    ConsensusMsg, Effect, Error as ConsensusError, Input, LivenessMsg, LocallyProposedValue,
    Params, ProposedValue, Resumable, Resume, SignedConsensusMsg, State, ValuePayload, process,
};
use malachitebft_core_types::{
    CommitCertificate, Context, SignedProposal, SigningProvider, SigningProviderExt,
    ThresholdParams, Timeout, TimeoutKind, Validity, ValueOrigin,
};

use super::context::{BlockHash, DevnetContext, Ed25519Signer, Height, ValidatorSet, Value};
use crate::net::{NetMsg, Network};
use crate::validator::App;

type Ctx = DevnetContext;

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

impl Timeouts {
    fn duration(&self, t: Timeout) -> Duration {
        let r = t.round.as_u32().unwrap_or(0);
        match t.kind {
            TimeoutKind::Propose => self.propose + self.delta * r,
            TimeoutKind::Prevote => self.prevote + self.delta * r,
            TimeoutKind::Precommit => self.precommit + self.delta * r,
            TimeoutKind::Rebroadcast => self.rebroadcast,
        }
    }
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
    validator_set: ValidatorSet,
    net: Network,
    timeouts: Timeouts,
    app: App,
    timers: HashMap<Timeout, Instant>,
    pending: VecDeque<Action>,
    blocks: HashMap<BlockHash, Value>,
    validity_cache: HashMap<BlockHash, bool>,
    certs: BTreeMap<u64, (Value, CommitCertificate<Ctx>)>,
    committed: u64,
    current: (u64, u32),
    /// Decided the last height and waiting for work before starting the next.
    idle: bool,
}

impl Host {
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
            Effect::GetValidatorSet(_h, r) => Ok(r.resume_with(Some(self.validator_set.clone()))),
            Effect::StartRound(height, round, _proposer, _role, r) => {
                self.current = (height.0, round.as_u32().unwrap_or(0));
                self.pending.push_back(Action::TryCatchUp);
                Ok(r.resume_with(()))
            }
            Effect::PublishConsensusMsg(msg, r) => {
                self.net.broadcast(self.index, NetMsg::Consensus(msg));
                Ok(r.resume_with(()))
            }
            Effect::PublishLivenessMsg(msg, r) => {
                self.net.broadcast(self.index, NetMsg::Liveness(msg));
                Ok(r.resume_with(()))
            }
            Effect::RepublishVote(vote, r) => {
                self.net
                    .broadcast(self.index, NetMsg::Liveness(LivenessMsg::Vote(vote)));
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
                let value = Value::new(self.app.build());
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
            Effect::WalAppend(_e, r) => Ok(r.resume_with(())),
            Effect::ExtendVote(_h, _r, _id, r) => Ok(r.resume_with(None)),
            Effect::VerifyVoteExtension(_h, _r, _id, _ext, _pk, r) => Ok(r.resume_with(Ok(()))),
        }
    }

    /// Commits a decided block (ours, or from a peer's verified certificate).
    fn commit(&mut self, value: Value, cert: CommitCertificate<Ctx>, own: bool) {
        let height = cert.height.0;
        if height <= self.committed {
            return;
        }
        self.committed = height;
        let signers: Vec<usize> = cert
            .commit_signatures
            .iter()
            .filter_map(|s| self.app.signers.get(&s.address.0).copied())
            .collect();
        let round = cert.round.as_u32().unwrap_or(0);
        self.app
            .commit(&value.block, value.hash().0, round, signers);
        if own {
            self.net.broadcast(self.index, NetMsg::Decided(value, cert));
        }
        self.pending
            .retain(|a| !matches!(a, Action::Input(Input::Propose(v)) if v.height.0 <= height));
        self.blocks.retain(|_, b| b.block.height > height);
        self.validity_cache.clear();
        self.signer.clear_cache();
        self.certs = self.certs.split_off(&(height + 1));
        self.idle = true;
    }

    fn on_message(&mut self, msg: NetMsg) -> Vec<Action> {
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
            NetMsg::Decided(value, cert) => {
                let h = cert.height.0;
                if h <= self.committed || value.hash() != cert.value_id {
                    return vec![];
                }
                self.certs.entry(h).or_insert((value, cert));
                if self.committed + 1 == h && (self.idle || self.current.1 > 0) {
                    vec![Action::TryCatchUp]
                } else {
                    vec![]
                }
            }
            NetMsg::Tx(tx) => {
                self.app.on_tx(tx);
                vec![]
            }
            NetMsg::Result(r) => {
                self.app.on_result(r);
                vec![]
            }
            NetMsg::Mine => {
                self.app.mine_requested = true;
                vec![]
            }
            NetMsg::Revert(_) | NetMsg::Stop => vec![],
        }
    }

    /// A message for the next height while idle: the others have started it, so do we.
    fn wake_for(&mut self, height: u64) {
        if self.idle && height == self.committed + 1 {
            self.start_next();
        }
    }

    fn start_next(&mut self) {
        self.idle = false;
        self.pending.push_back(Action::Input(Input::StartHeight(
            Height(self.committed + 1),
            self.validator_set.clone(),
        )));
    }

    fn on_proposal(&mut self, sp: SignedProposal<Ctx>) -> Vec<Action> {
        if sp.height.0 <= self.committed {
            return vec![];
        }
        let expected = self
            .ctx
            .select_proposer(&self.validator_set, sp.height, sp.round)
            .address;
        if expected != sp.proposer {
            return vec![];
        }
        let Some(v) = self
            .validator_set
            .validators
            .iter()
            .find(|v| v.address == sp.proposer)
        else {
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
        // Only a block for the height we are at can be checked against our state; one for a
        // later height waits (the core buffers it) and is checked when it is fed again.
        let valid = match self.validity_cache.get(&id) {
            Some(v) => *v,
            None if sp.height.0 == self.committed + 1 && value.block.height == sp.height.0 => {
                let ok = self.app.validate(&value.block).is_ok();
                self.validity_cache.insert(id, ok);
                ok
            }
            None => false,
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

impl Node {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        signer: Ed25519Signer,
        validator_set: ValidatorSet,
        address: super::context::Address,
        net: Network,
        rx: Receiver<(usize, NetMsg)>,
        timeouts: Timeouts,
        app: App,
    ) -> Node {
        let committed = app.state.height;
        let params = Params {
            initial_height: Height(committed + 1),
            initial_validator_set: validator_set.clone(),
            address,
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalAndParts,
        };
        let state = State::new(DevnetContext, params.clone(), 16);
        let host = Host {
            index,
            ctx: DevnetContext,
            signer,
            validator_set,
            net,
            timeouts,
            app,
            timers: HashMap::new(),
            pending: VecDeque::new(),
            blocks: HashMap::new(),
            validity_cache: HashMap::new(),
            certs: BTreeMap::new(),
            committed,
            current: (committed + 1, 0),
            idle: true,
        };
        Node {
            state,
            host,
            rx,
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

    fn try_catch_up(&mut self) {
        let h = self.host.committed + 1;
        let Some((value, cert)) = self.host.certs.remove(&h) else {
            return;
        };
        let ok = self.host.signer.verify_commit_certificate(
            &self.host.ctx,
            &cert,
            &self.host.validator_set,
            ThresholdParams::default(),
        );
        if ok.is_ok() {
            let was_idle = self.host.idle;
            self.host.commit(value, cert, false);
            if !was_idle {
                // The core is still at the committed height: move it on.
                self.host.idle = true;
            }
            // Restart the core at the next height from a clean state.
            let mut params = self.params.clone();
            params.initial_height = Height(self.host.committed + 1);
            self.state = State::new(DevnetContext, params, 16);
            self.host.timers.clear();
        }
    }

    fn revert(&mut self, height: u64) {
        self.host.app.revert(height);
        self.host.committed = self.host.app.state.height;
        self.host.current = (self.host.committed + 1, 0);
        self.host.timers.clear();
        self.host.pending.clear();
        self.host.blocks.clear();
        self.host.certs.clear();
        self.host.validity_cache.clear();
        self.host.idle = true;
        let mut params = self.params.clone();
        params.initial_height = Height(self.host.committed + 1);
        self.state = State::new(DevnetContext, params, 16);
    }

    fn drain_pending(&mut self) {
        while let Some(action) = self.host.pending.pop_front() {
            match action {
                Action::Input(input) => self.apply(input),
                Action::TryCatchUp => self.try_catch_up(),
            }
        }
    }

    /// Runs until stopped or disconnected.
    pub fn run(mut self) {
        loop {
            self.drain_pending();
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
                Ok((_, NetMsg::Stop)) => return,
                Ok((_, NetMsg::Revert(h))) => self.revert(h),
                Ok((_, msg)) => {
                    let actions = self.host.on_message(msg);
                    self.host.pending.extend(actions);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
