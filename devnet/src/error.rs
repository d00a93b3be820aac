//! The devnet's errors.

use std::net::SocketAddr;

use crate::mempool::MempoolError;

/// Errors of the devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{0}")]
    Config(String),
    /// The transaction does not apply to the chain (signature, nonce, balance, gas, model).
    #[error("transaction refused: {0}")]
    Refused(#[from] crate::chain::TxError),
    /// A request that is not of the kind the call takes.
    #[error("{0}")]
    BadRequest(String),
    /// An input that does not fit the model (shapes, dtypes, calibrated ranges).
    #[error("invalid input: {0}")]
    Input(#[from] lightchain_aivm::AivmError),
    /// An input that cannot be sealed for the validators.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// The mempool does not take it (a nonce taken at a higher price, too far ahead, full).
    #[error("transaction refused: {0}")]
    Mempool(#[from] MempoolError),
    /// An uploaded package did not pass its check.
    #[error("invalid package: {0}")]
    InvalidPackage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot serve JSON-RPC on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("timed out: {0}")]
    Timeout(String),
    /// A task ended without a receipt.
    #[error("task {id} failed: {reason}")]
    TaskFailed { id: String, reason: String },
}

pub type Result<T, E = DevnetError> = std::result::Result<T, E>;
