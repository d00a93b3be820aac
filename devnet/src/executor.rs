//! A validator's executor: a worker thread that proves the tasks assigned to its validator and
//! gossips the results. A task whose model is proven in segments is shared out: the executor
//! plans the proof, keeps the segments that read the task's inputs, sends every other segment
//! to another validator to prove (segment `i` to the `i`-th of the executor and the other
//! validators in turn), proves its own, checks each helper's proof against its segment as it
//! arrives, proves itself whatever is missing or wrong when its wait is over, and assembles
//! one envelope. While it waits it proves the segments other executors sent it, so two
//! executors waiting on each other never stall.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use lightchain_aivm::proof::Proof;
use lightchain_aivm::segment::{ModelKeys, SegmentJob, SegmentKeys};

use crate::chain::runtime::{RuntimeError, public_inputs};
use crate::chain::state::{ModelRecord, ProvingMode};
use crate::chain::{Claim, NewState, Runtime, SealedInput, TaskInput, TaskResult};
use crate::crypto;
use crate::lock::Shared;
use crate::net::{NetMsg, Network};
use crate::validator::{Behavior, ValidatorKeys};

/// A task an executor must prove.
#[derive(Clone, Debug)]
pub struct Job {
    pub task_id: String,
    pub attempt: u32,
    pub model: ModelRecord,
    pub input: TaskInput,
    /// The other validators that may prove segments of it, in turn after this one.
    pub helpers: Vec<usize>,
    /// For a stateful model: the state the task starts from (the chain's for its submitter,
    /// or the model's initial state), as the chain held it when the task was assigned.
    pub state: Option<lightchain_aivm::state::StateValue>,
}

/// A segment of another executor's task, to prove and send back.
#[derive(Clone, Debug)]
pub struct Help {
    pub task_id: String,
    pub attempt: u32,
    pub executor: usize,
    /// The model as this validator's chain records it (not as the message said).
    pub model: ModelRecord,
    pub job: Arc<SegmentJob>,
}

/// A helper's proof of one segment of a task, for the task's executor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentReply {
    pub task_id: String,
    pub attempt: u32,
    pub index: usize,
    /// `(k, proof bytes)`.
    pub proof: (u32, Vec<u8>),
}

/// What an executor thread is given.
#[derive(Debug)]
pub enum Work {
    Task(Job),
    Help(Help),
    Segment(SegmentReply),
}

/// What an executor did, for the API (and the dashboard).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecStats {
    /// Results sent for tasks assigned to it.
    pub tasks: u64,
    /// Segments of its own tasks it proved itself (fallbacks included).
    pub segments_own: u64,
    /// Segments of its own tasks that helpers proved (checked before use).
    pub segments_helped: u64,
    /// Segments it proved itself because a helper did not answer in time or answered wrong.
    pub segments_fallback: u64,
    /// Segments it proved for other executors.
    pub segments_for_others: u64,
    /// Milliseconds spent executing and proving the tasks it sent results for.
    pub prove_ms: u64,
}

/// How long an executor waits for its helpers once its own segments are proven: three times
/// its own mean segment time, and at least this.
const MIN_HELPER_WAIT: Duration = Duration::from_secs(1);

/// The executor of one validator.
pub struct Executor {
    pub keys: Arc<ValidatorKeys>,
    pub chain_id: String,
    pub rt: Arc<Runtime>,
    pub net: Network,
    pub behavior: Arc<Shared<Behavior>>,
    pub stats: Arc<Shared<ExecStats>>,
    pub work: Receiver<Work>,
    /// Work that arrived while it waited for helpers.
    queued: VecDeque<Work>,
}

/// Why an executor could not produce a result (it stays silent; the task times out).
#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Aivm(#[from] lightchain_aivm::AivmError),
    #[error("the input's key does not open")]
    KeyDoesNotOpen,
    #[error("the task id is not a 32-byte nonce")]
    BadTaskId,
    #[error("a task of a stateful model came without its state")]
    NoState,
}

/// What an executor makes of an encrypted input: the input and its salt, or the reason the
/// submitter is at fault with the secret that lets the chain check it.
enum Opened {
    Input(Vec<Vec<i64>>, Fp),
    Fault([u8; 32]),
}

impl Executor {
    pub fn new(
        keys: Arc<ValidatorKeys>,
        chain_id: String,
        rt: Arc<Runtime>,
        net: Network,
        behavior: Arc<Shared<Behavior>>,
        stats: Arc<Shared<ExecStats>>,
        work: Receiver<Work>,
    ) -> Executor {
        Executor {
            keys,
            chain_id,
            rt,
            net,
            behavior,
            stats,
            work,
            queued: VecDeque::new(),
        }
    }

    /// Proves its jobs until its validator is gone.
    pub fn run(mut self) {
        loop {
            let w = match self.queued.pop_front() {
                Some(w) => w,
                None => match self.work.recv() {
                    Ok(w) => w,
                    Err(_) => return,
                },
            };
            match w {
                Work::Task(job) => self.task(&job),
                Work::Help(h) => self.help(&h),
                // A helper's answer after its executor stopped waiting.
                Work::Segment(_) => {}
            }
        }
    }

    fn task(&mut self, job: &Job) {
        let b = *self.behavior.read();
        if b == Behavior::Silent {
            return;
        }
        // An executor that cannot prove stays silent; the task is reassigned at its deadline.
        let start = std::time::Instant::now();
        if let Ok(result) = self.execute(job, b) {
            let mut s = self.stats.write();
            s.tasks += 1;
            s.prove_ms += start.elapsed().as_millis() as u64;
            drop(s);
            self.net
                .broadcast_all(self.keys.index, NetMsg::Result(result));
        }
    }

    /// Proves a segment for another executor (a Byzantine helper corrupts it; a silent one
    /// does nothing) and sends it back.
    fn help(&mut self, h: &Help) {
        let b = *self.behavior.read();
        if b == Behavior::Silent {
            return;
        }
        let Ok(keys) = self.rt.prover(&h.model) else {
            return;
        };
        let ModelKeys::Cut(sk) = keys.as_ref() else {
            return;
        };
        let Ok(mut proof) = sk.prove_segment(&h.job) else {
            return;
        };
        if matches!(b, Behavior::WrongOutput | Behavior::CorruptProof) {
            flip_middle(&mut proof.1);
        }
        self.stats.write().segments_for_others += 1;
        let reply = SegmentReply {
            task_id: h.task_id.clone(),
            attempt: h.attempt,
            index: h.job.index,
            proof,
        };
        self.net
            .send(self.keys.index, h.executor, NetMsg::SegmentProof(reply));
    }

    fn execute(&mut self, job: &Job, b: Behavior) -> Result<TaskResult, ExecError> {
        let pkg = self
            .rt
            .package(&job.model)
            .ok_or_else(|| RuntimeError::NotLoaded(job.model.model_id.clone()))?;
        let (inputs, salt) = match &job.input {
            TaskInput::Public { inputs } => (public_inputs(&pkg, inputs)?, None),
            TaskInput::Encrypted {
                commitment,
                ciphertext,
                keys: wrapped,
            } => match open_input(&self.keys, &pkg, commitment, ciphertext, wrapped)? {
                Opened::Input(q, salt) => (q, Some(salt)),
                Opened::Fault(shared) => {
                    let claim = Claim::SubmitterFault { shared };
                    return Ok(sign(&self.keys, &self.chain_id, job, claim));
                }
            },
        };
        if job.model.mode == ProvingMode::Attested {
            // Executed, not proven: the outputs, signed.
            let mut outputs = pkg.program.execute(&inputs)?;
            if b == Behavior::WrongOutput {
                outputs[0][0] += 1;
            }
            return Ok(sign(
                &self.keys,
                &self.chain_id,
                job,
                Claim::Attestation { outputs },
            ));
        }
        let nonce: [u8; 32] = crypto::unhex(&job.task_id)
            .and_then(|n| n.try_into().ok())
            .ok_or(ExecError::BadTaskId)?;
        let prover = self.rt.prover(&job.model)?;
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let mut new_state = None;
        let mut proof = match prover.as_ref() {
            ModelKeys::Cut(sk) if !job.helpers.is_empty() => {
                let (skeleton, jobs) = sk.plan_proof(&inputs, nonce, salt, &mut rng)?;
                let proofs = self.share_out(job, sk, &jobs)?;
                sk.assemble(skeleton, proofs)?
            }
            ModelKeys::One(k) if k.circuit.program.state => {
                let old = job.state.as_ref().ok_or(ExecError::NoState)?;
                let (proof, new) = k.prove_with_state(&inputs, old, nonce, salt, &mut rng)?;
                new_state = Some(NewState {
                    values: new.values,
                    salt: new.salt.to_repr(),
                });
                proof
            }
            keys => {
                self.stats.write().segments_own += keys.segments() as u64;
                keys.prove_with_salt(&inputs, nonce, salt, &mut rng)?
            }
        };
        match b {
            Behavior::WrongOutput => proof.outputs[0][0] += 1,
            Behavior::CorruptProof => corrupt(&mut proof),
            _ => {}
        }
        let claim = Claim::Proof {
            outputs: proof.outputs.clone(),
            proof: proof.to_bytes(),
            state: new_state,
        };
        Ok(sign(&self.keys, &self.chain_id, job, claim))
    }

    /// Proves a task's segments with its helpers: every segment `i` goes to the `i`-th of
    /// this validator and its helpers in turn, except those that read the task's inputs
    /// (kept here: helpers see activations, never the task's inputs or their salt).
    fn share_out(
        &mut self,
        job: &Job,
        sk: &SegmentKeys,
        jobs: &[SegmentJob],
    ) -> Result<Vec<(u32, Vec<u8>)>, ExecError> {
        let me = self.keys.index;
        let turn: Vec<usize> = std::iter::once(me)
            .chain(job.helpers.iter().copied())
            .collect();
        let mut proofs: Vec<Option<(u32, Vec<u8>)>> = vec![None; jobs.len()];
        let mut mine = Vec::new();
        for (i, j) in jobs.iter().enumerate() {
            let who = turn[i % turn.len()];
            if who == me || sk.segments[i].io.task_inputs > 0 {
                mine.push(i);
            } else {
                let msg = NetMsg::SegmentJob {
                    task_id: job.task_id.clone(),
                    attempt: job.attempt,
                    job: Arc::new(j.clone()),
                };
                self.net.send(me, who, msg);
            }
        }
        let start = Instant::now();
        for &i in &mine {
            proofs[i] = Some(sk.prove_segment(&jobs[i])?);
        }
        let mean = start.elapsed() / mine.len().max(1) as u32;
        let deadline = Instant::now() + (mean * 3).max(MIN_HELPER_WAIT);
        let (mut own, mut helped) = (mine.len() as u64, 0);
        while proofs.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.work.recv_timeout(left) {
                Ok(Work::Segment(r))
                    if r.task_id == job.task_id
                        && r.attempt == job.attempt
                        && proofs.get(r.index).is_some_and(Option::is_none) =>
                {
                    // A helper's proof is used only if it holds for the planned instance.
                    if sk.check_segment(&jobs[r.index], &r.proof).is_ok() {
                        proofs[r.index] = Some(r.proof);
                        helped += 1;
                    }
                }
                Ok(Work::Segment(_)) => {}
                Ok(Work::Help(h)) => self.help(&h),
                Ok(w @ Work::Task(_)) => self.queued.push_back(w),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut fallback = 0;
        for (i, p) in proofs.iter_mut().enumerate() {
            if p.is_none() {
                *p = Some(sk.prove_segment(&jobs[i])?);
                fallback += 1;
            }
        }
        own += fallback;
        let mut s = self.stats.write();
        s.segments_own += own;
        s.segments_helped += helped;
        s.segments_fallback += fallback;
        Ok(proofs.into_iter().map(|p| p.expect("proven")).collect())
    }
}

/// Flips a byte of a proof (of its last segment's, when cut).
fn corrupt(proof: &mut Proof) {
    let bytes = match proof.segments.as_mut() {
        Some(s) => match s.proofs.last_mut() {
            Some(p) => &mut p.1,
            None => return,
        },
        None => &mut proof.proof,
    };
    flip_middle(bytes);
}

/// Flips a bit in the middle of some proof bytes (none when empty).
fn flip_middle(bytes: &mut [u8]) {
    let n = bytes.len();
    if n > 0 {
        bytes[n / 2] ^= 0x40;
    }
}

/// Opens an encrypted input with this validator's key and checks it against its commitment
/// before anything is proven: a submitter who committed to something else is caught here,
/// not blamed on the executor. A key that does not open at all cannot be shown to be the
/// submitter's doing, so then the executor stays silent (and is not penalised for it).
fn open_input(
    keys: &ValidatorKeys,
    pkg: &lightchain_packager::Package,
    commitment: &[u8; 32],
    ciphertext: &[u8],
    wrapped: &[crypto::WrappedKey],
) -> Result<Opened, ExecError> {
    let Some(mine) = wrapped.iter().find(|k| k.validator == keys.index) else {
        return Ok(Opened::Fault([0; 32]));
    };
    let shared = crypto::shared_secret(mine, &keys.encryption);
    let content = crypto::unwrap(mine, &shared).ok_or(ExecError::KeyDoesNotOpen)?;
    let fault = Ok(Opened::Fault(shared));
    let Some(plain) = crypto::decrypt(ciphertext, &content, commitment) else {
        return fault;
    };
    let Ok(sealed) = serde_json::from_slice::<SealedInput>(&plain) else {
        return fault;
    };
    let Ok(q) = public_inputs(pkg, &sealed.inputs) else {
        return fault;
    };
    let Some(salt) = Option::<Fp>::from(Fp::from_repr(sealed.salt)) else {
        return fault;
    };
    if lightchain_aivm::circuit::input_commitment(&pkg.program, &q, salt).to_repr() != *commitment {
        return fault;
    }
    Ok(Opened::Input(q, salt))
}

fn sign(keys: &ValidatorKeys, chain_id: &str, job: &Job, claim: Claim) -> TaskResult {
    let signature = keys.account.sign(&TaskResult::sign_bytes(
        chain_id,
        &job.task_id,
        job.attempt,
        keys.index,
        &claim,
    ));
    TaskResult {
        task_id: job.task_id.clone(),
        attempt: job.attempt,
        executor: keys.index,
        claim,
        signature,
    }
}
