//! The chain: accounts, transactions, models, tasks, blocks and receipts, and how a block is
//! built, checked and applied ([`exec`]). Every validator holds its own copy of [`State`];
//! they agree because blocks are applied deterministically.

pub mod attest;
pub mod encode;
pub mod error;
pub mod exec;
pub mod params;
pub mod registry;
pub mod runtime;
pub mod schedule;
pub mod state;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, WrappedKey};
use encode::Canonical;

pub use error::{BlockError, TxError};
pub use params::ChainParams;
pub use runtime::Runtime;
pub use state::State;

/// An address: the first 20 bytes of `blake3(ed25519 public key)`, shown as `0x…`. Accounts
/// and consensus validators are named by the same kind of address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A string that is not `0x` followed by 40 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an address is 0x followed by 40 hex digits")]
pub struct BadAddress;

impl Address {
    pub fn of(public: &[u8; 32]) -> Address {
        let mut a = [0u8; 20];
        a.copy_from_slice(&blake3::hash(public).as_bytes()[..20]);
        Address(a)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", crypto::hex(&self.0))
    }
}

impl std::str::FromStr for Address {
    type Err = BadAddress;
    fn from_str(s: &str) -> Result<Self, BadAddress> {
        let b = crypto::unhex(s).ok_or(BadAddress)?;
        Ok(Address(b.try_into().map_err(|_| BadAddress)?))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Serde helpers: 32-byte arrays as hex.
pub mod hex32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::crypto::hex(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        crate::crypto::unhex(&s)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Serde helpers: `u128` amounts as decimal strings (JSON numbers cannot hold them exactly).
pub mod dec {
    pub fn serialize<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom("expected a decimal amount")),
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(u128::from)
                .ok_or_else(|| serde::de::Error::custom("expected a decimal amount")),
            _ => Err(serde::de::Error::custom("expected a decimal amount")),
        }
    }
}

/// Serde helpers: bytes as base64.
pub mod b64 {
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|_| serde::de::Error::custom("expected base64"))
    }
}

/// A task's input as it travels on chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskInput {
    /// An input file's JSON (`{"inputs": {...}}` or `{"input_data": [...]}`), public.
    Public { inputs: serde_json::Value },
    /// The input encrypted to the validators; only the salted commitment is public.
    Encrypted {
        /// The Poseidon commitment the proof must carry (canonical field bytes, hex).
        #[serde(with = "hex32")]
        commitment: [u8; 32],
        #[serde(with = "b64")]
        ciphertext: Vec<u8>,
        keys: Vec<WrappedKey>,
    },
}

/// What an encrypted task input decrypts to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealedInput {
    pub inputs: serde_json::Value,
    /// The commitment's salt (canonical field bytes).
    #[serde(with = "hex32")]
    pub salt: [u8; 32],
}

/// The kinds of transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    Transfer {
        to: Address,
        #[serde(with = "dec")]
        amount: u128,
    },
    DeployModel {
        #[serde(with = "b64")]
        package: Vec<u8>,
    },
    SubmitTask {
        model_id: String,
        gas_limit: u64,
        input: TaskInput,
    },
    /// Lets a jailed validator execute tasks again once its jail term is over (signed by its
    /// account key).
    Unjail { validator: usize },
    /// A recurring task: a run of `model_id` on `input` every `every` blocks, `count` times,
    /// each paid (the model's gas at this transaction's price) from `deposit`, which is held
    /// in escrow from now on; the first run starts in the block that takes this transaction.
    ScheduleTask {
        model_id: String,
        gas_limit: u64,
        input: TaskInput,
        every: u64,
        count: u32,
        #[serde(with = "dec")]
        deposit: u128,
    },
    /// Stops a schedule (its owner only) and refunds what is left of its deposit.
    CancelSchedule { schedule_id: String },
    /// A validator's approval of a new version waiting for approval (signed by the
    /// validator's account key); the version goes live when more than 2/3 of the stake
    /// approved it.
    ApproveVersion { model_id: String },
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxBody {
    /// The sender's ed25519 public key.
    #[serde(with = "hex32")]
    pub from: [u8; 32],
    pub nonce: u64,
    pub gas_price: u64,
    pub kind: TxKind,
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedTx {
    pub body: TxBody,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

impl TxBody {
    /// The bytes a sender signs: the body's canonical encoding, domain-separated and bound
    /// to the chain id (a transaction signed for one chain is not valid on another).
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut w = lightchain_aivm::wire::W(Vec::new());
        w.str("lightchain-devnet tx v2");
        w.str(chain_id);
        self.enc(&mut w);
        w.0
    }

    pub fn sign(self, key: &crypto::AccountKey, chain_id: &str) -> SignedTx {
        let signature = key.sign(&self.sign_bytes(chain_id));
        SignedTx {
            body: self,
            signature,
        }
    }

    pub fn sender(&self) -> Address {
        Address::of(&self.from)
    }
}

impl SignedTx {
    /// The transaction hash: blake3 of its canonical encoding. A task's id is its
    /// transaction's hash.
    pub fn hash(&self) -> [u8; 32] {
        encode::hash("lightchain-devnet tx hash v2", self)
    }

    pub fn signature_ok(&self, chain_id: &str) -> bool {
        crypto::verify(
            &self.body.from,
            &self.body.sign_bytes(chain_id),
            &self.signature,
        )
    }
}

/// The state a task of a stateful model wrote: its values and the salt of its commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewState {
    pub values: Vec<i64>,
    #[serde(with = "hex32")]
    pub salt: [u8; 32],
}

/// What an executor claims about a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "claim", rename_all = "snake_case")]
pub enum Claim {
    /// The outputs and their proof (compact binary form).
    Proof {
        outputs: Vec<Vec<i64>>,
        #[serde(with = "b64")]
        proof: Vec<u8>,
        /// For a stateful model: the state the task wrote, which opens the proof's new state
        /// commitment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<NewState>,
    },
    /// The submitter's encrypted input does not open to what it committed to. `shared` is the
    /// X25519 secret of the executor's wrapped key, so that every validator can open the input
    /// and check the claim (revealing that one input, whose submitter lied about it).
    SubmitterFault {
        #[serde(with = "hex32")]
        shared: [u8; 32],
    },
    /// For a task of an attested model: the outputs this validator (`executor` of the result)
    /// computed, signed. Any validator may send one per task attempt.
    Attestation { outputs: Vec<Vec<i64>> },
}

/// An executor's answer to a task, signed by the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: String,
    pub attempt: u32,
    pub executor: usize,
    #[serde(flatten)]
    pub claim: Claim,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

impl TaskResult {
    /// The bytes an executor signs.
    pub fn sign_bytes(
        chain_id: &str,
        task_id: &str,
        attempt: u32,
        executor: usize,
        claim: &Claim,
    ) -> Vec<u8> {
        let mut w = lightchain_aivm::wire::W(Vec::new());
        w.str("lightchain-devnet result v2");
        w.str(chain_id);
        w.str(task_id);
        w.u(attempt as u64);
        w.len(executor);
        claim.enc(&mut w);
        w.0
    }

    pub fn hash(&self) -> [u8; 32] {
        encode::hash("lightchain-devnet result hash v2", self)
    }

    /// The outputs and proof, for a proof claim.
    pub fn proof(&self) -> Option<(&Vec<Vec<i64>>, &Vec<u8>)> {
        match &self.claim {
            Claim::Proof { outputs, proof, .. } => Some((outputs, proof)),
            Claim::SubmitterFault { .. } | Claim::Attestation { .. } => None,
        }
    }
}

/// A result that failed verification, kept as evidence against its executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub result: TaskResult,
    pub reason: String,
}

/// A block: transactions, task results, evidence, timed-out tasks to reassign, and the state
/// root after applying them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub height: u64,
    #[serde(with = "hex32")]
    pub parent: [u8; 32],
    pub timestamp_ms: u64,
    /// Index of the proposing validator.
    pub proposer: usize,
    pub txs: Vec<SignedTx>,
    pub results: Vec<TaskResult>,
    pub evidence: Vec<Evidence>,
    /// Ids of tasks whose executor missed its deadline.
    pub reassign: Vec<String>,
    #[serde(with = "hex32")]
    pub state_root: [u8; 32],
}

impl Block {
    pub fn hash(&self) -> [u8; 32] {
        encode::hash("lightchain-devnet block v2", self)
    }

    /// The ids (transaction hashes, hex) of the tasks this block submits.
    pub fn submitted_tasks(&self) -> Vec<String> {
        self.txs
            .iter()
            .filter(|t| matches!(t.body.kind, TxKind::SubmitTask { .. }))
            .map(|t| crate::crypto::hex(&t.hash()))
            .collect()
    }

    /// Whether the block carries anything (instant mining skips empty blocks).
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
            && self.results.is_empty()
            && self.evidence.is_empty()
            && self.reassign.is_empty()
    }
}

/// A committed block with its commit certificate: the validators that signed it and their
/// precommit signatures (what lets a validator that fell behind check it before taking it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedBlock {
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
    pub block: Block,
    pub round: u32,
    /// Indices of the validators whose precommits are in the commit certificate.
    pub signers: Vec<usize>,
    /// Their precommit signatures, in the same order.
    #[serde(default)]
    pub signatures: Vec<CommitSig>,
}

/// One precommit signature of a commit certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitSig {
    pub validator: usize,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

/// The receipt of a completed task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub task_id: String,
    pub model_id: String,
    pub outputs: Vec<Vec<i64>>,
    /// The outputs as floats (dequantized).
    pub outputs_float: Vec<Vec<f64>>,
    /// The proof, compact binary form (verify it with `lightchain verify PKG --proof`).
    #[serde(with = "b64")]
    pub proof: Vec<u8>,
    /// The proof's public inputs: nonce, inputs or their commitment, outputs.
    pub public_inputs: serde_json::Value,
    pub gas_used: u64,
    #[serde(with = "dec")]
    pub fee: u128,
    pub executor: usize,
    pub attempts: u32,
    pub block_height: u64,
    #[serde(with = "hex32")]
    pub block_hash: [u8; 32],
    /// Validators other than the executor that verified the proof and signed the block's
    /// commit (for an attested task, those that signed the block's commit).
    pub verified_by: Vec<usize>,
    /// `proven`: the proof above holds the result; `attested`: no proof, the result is what
    /// the validators in `attested_by` (more than 2/3 of the stake) signed.
    #[serde(default)]
    pub mode: state::ProvingMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attested_by: Vec<usize>,
}
