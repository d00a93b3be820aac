//! Why the state transition refuses a transaction or a block. Every refusal is a variant with
//! its data, so callers (the mempool, the RPC, the tests) match on what happened rather than
//! on a message.

use lightchain_aivm::circuit::Visibility;

use super::runtime::ResultError;

/// Why a transaction does not apply to the state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("invalid signature")]
    BadSignature,
    /// The nonce was used already (the mempool's check: a later nonce may still wait).
    #[error("nonce {nonce} is already used (next is {next})")]
    NonceUsed { nonce: u64, next: u64 },
    /// The nonce is not the account's next one (the block's check).
    #[error("nonce {nonce} is not the account's next nonce {next}")]
    NonceGap { nonce: u64, next: u64 },
    #[error("unknown proposer {0}")]
    UnknownProposer(usize),
    #[error("insufficient balance: {needed} needed, {available} available")]
    InsufficientBalance { needed: u128, available: u128 },
    #[error("the amount plus the fee overflows")]
    Overflow,
    /// The deployed package does not load (the loader's reason).
    #[error("invalid package: {0}")]
    InvalidPackage(String),
    #[error("model {id} ({program} with {visibility} inputs) is already deployed")]
    AlreadyDeployed {
        id: String,
        program: String,
        visibility: Visibility,
    },
    #[error("model {0} is not deployed")]
    UnknownModel(String),
    #[error("the model name {name} belongs to {owner}: only it deploys new versions")]
    NameTaken { name: String, owner: super::Address },
    #[error("version {version} of {name} is not above its latest version {latest}")]
    VersionNotNewer {
        name: String,
        version: String,
        latest: String,
    },
    #[error("version {0:?} is not MAJOR.MINOR.PATCH")]
    BadVersion(String),
    #[error("the package of model {0} is not loaded")]
    PackageNotLoaded(String),
    #[error("gas limit {limit} is below the task's quote of {quote} gas")]
    GasLimit { limit: u64, quote: u64 },
    /// The version waits for the validators' approval.
    #[error("model {0} is a new version waiting for the validators' approval")]
    NotApproved(String),
    #[error("model {0} is not waiting for approval")]
    NotPendingApproval(String),
    #[error("validator {0} approved it already")]
    ApprovedAlready(usize),
    #[error("only a validator's account approves versions")]
    NotAValidator,
    /// A stateful model takes one pending task per account: the next starts from the state
    /// this one writes.
    #[error(
        "task {0} of this stateful model for this account is still pending: the next task starts from the state it writes, submit after its receipt"
    )]
    StatePending(String),
    /// A public input that does not fit the model (the reason names shapes and dtypes).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("an encrypted input needs keys for the validators")]
    NoInputKeys,
    /// The input's visibility is not the model's: `model` is what the model takes.
    #[error("{}", match .model {
        Visibility::Hashed => "this model commits to its inputs: submit them encrypted",
        Visibility::Public => "this model proves with public inputs: it cannot take encrypted inputs",
    })]
    WrongVisibility { model: Visibility },
    #[error("no validator can execute tasks")]
    NoExecutor,
    #[error("unknown validator {0}")]
    UnknownValidator(usize),
    #[error("only the validator's own account can unjail it")]
    NotValidatorAccount,
    #[error("validator {0} is not jailed")]
    NotJailed(usize),
    #[error("validator {validator} is jailed until height {until}")]
    StillJailed { validator: usize, until: u64 },
    /// A schedule's interval or run count outside what the chain accepts.
    #[error("{0}")]
    BadSchedule(String),
    #[error("a deposit of {deposit} does not pay for one run ({run_fee})")]
    DepositTooSmall { deposit: u128, run_fee: u128 },
    #[error("schedule {0} not found")]
    UnknownSchedule(String),
    #[error("only the schedule's owner can cancel it")]
    NotScheduleOwner,
    #[error("schedule {0} is not active")]
    ScheduleNotActive(String),
}

/// Why a block is not valid on the state it claims to follow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("height {height} does not follow {last}")]
    Height { height: u64, last: u64 },
    #[error("the parent hash is not the last block's")]
    Parent,
    #[error("the timestamp goes back in time")]
    TimeBackwards,
    #[error("the timestamp is in the future")]
    FutureTimestamp,
    #[error("unknown proposer {0}")]
    UnknownProposer(usize),
    #[error("transaction {index}: {error}")]
    Tx { index: usize, error: TxError },
    #[error("result for task {task}: {error}")]
    Result { task: String, error: ResultError },
    /// A proven result whose receipt cannot be built (its package or proof do not load).
    #[error("result for task {task}: {reason}")]
    Receipt { task: String, reason: String },
    #[error("a fault claim was accepted as a proof")]
    FaultAsProof,
    #[error("evidence against task {0}: the result is valid")]
    ValidEvidence(String),
    #[error("evidence against task {task}: {error}")]
    Evidence { task: String, error: ResultError },
    #[error("reassignment of unknown task {0}")]
    UnknownTask(String),
    #[error("task {0} is not past its deadline")]
    NotOverdue(String),
    #[error("the state root does not match")]
    StateRoot,
}
