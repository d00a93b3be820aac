//! The JSON-RPC methods' request and reply types: the server serialises them and clients (the
//! CLI's `deploy` and `task`) deserialise them, so both sides share one definition. Replies
//! that carry chain records flatten them, so a reply is the record plus a few fields.

use serde::{Deserialize, Serialize};

pub use crate::api::Status;
use crate::chain::Receipt;
pub use crate::chain::state::ValidatorRecord;
use crate::chain::state::{Account, ModelRecord, Task};

/// `lc_deployModel`: the deployment's transaction and the id the model is deployed under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    pub tx_hash: String,
    pub model_id: String,
}

/// `lc_submitTask`: the task's id (its transaction's hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub task_id: String,
}

/// `lc_getTask`: a task in the chain (with its receipt once completed), or one sent but not
/// yet in a block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskReply {
    Known {
        #[serde(flatten)]
        task: Box<Task>,
        receipt: Option<Box<Receipt>>,
    },
    InMempool {
        id: String,
        status: MempoolStatus,
    },
}

/// The status of a task still in the mempool: `"submitted"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MempoolStatus {
    Submitted,
}

impl TaskReply {
    pub fn id(&self) -> &str {
        match self {
            TaskReply::Known { task, .. } => &task.id,
            TaskReply::InMempool { id, .. } => id,
        }
    }

    /// The status's name: `submitted`, `pending`, `completed` or `failed`.
    pub fn status(&self) -> &'static str {
        use crate::chain::state::TaskStatus;
        match self {
            TaskReply::InMempool { .. } => "submitted",
            TaskReply::Known { task, .. } => match task.status {
                TaskStatus::Pending { .. } => "pending",
                TaskStatus::Completed { .. } => "completed",
                TaskStatus::Failed { .. } => "failed",
            },
        }
    }

    pub fn receipt(&self) -> Option<&Receipt> {
        match self {
            TaskReply::Known { receipt, .. } => receipt.as_deref(),
            TaskReply::InMempool { .. } => None,
        }
    }
}

/// `lc_getModel`: the deployed model, with its package (base64) when asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelReply {
    #[serde(flatten)]
    pub model: ModelRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// `lc_getModel`'s optional second parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOptions {
    #[serde(default)]
    pub package: bool,
}

/// `lc_getBalance`: the account, and the nonce to sign its next transaction with (past its
/// pending ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    #[serde(flatten)]
    pub account: Account,
    pub next_nonce: u64,
}

/// `lc_estimateGas`'s first parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimateRequest {
    pub model_id: String,
    /// An input file's JSON.
    pub inputs: serde_json::Value,
}

/// `lc_validatorStatus`: one validator as this node sees it (the dashboard's validator panel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorStatus {
    pub index: usize,
    /// `online`, `killed`, `partitioned` (cut off from the largest group) or `stopped` (its
    /// store failed or it cannot apply a block) for validators this process runs; `remote`
    /// for the others (a node process runs one).
    pub state: String,
    /// Committed height (of this node's view for a remote validator).
    pub height: u64,
    /// Consensus round at the next height (local validators only).
    pub round: Option<u32>,
    /// Results it sent for its tasks, and their mean execution and proving time (local only).
    pub tasks_executed: Option<u64>,
    pub mean_prove_ms: Option<f64>,
    /// Receipts whose proof it verified before voting.
    pub proofs_verified: u64,
    /// Committed blocks whose commit certificate holds its precommit.
    pub votes: u64,
    pub penalties: u32,
    pub jailed_until: Option<u64>,
    #[serde(with = "crate::chain::dec")]
    pub stake: u128,
    /// Its misbehaviour for fault injection (`honest` unless set; local only).
    pub behavior: Option<String>,
}

/// `lc_listModels`: a deployed model, the owner of its name, and whether it is the name's
/// latest version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListedModel {
    #[serde(flatten)]
    pub model: ModelRecord,
    pub owner: crate::chain::Address,
    pub latest: bool,
}
