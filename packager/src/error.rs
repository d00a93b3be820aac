//! Errors of the packager.

use std::path::PathBuf;

/// One problem in a manifest, with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestIssue {
    /// 1-based line (0 when the problem has no single location).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ManifestIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

fn list(issues: &[ManifestIssue]) -> String {
    issues.iter().map(|i| format!("\n  {i}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The manifest has errors (all of them are listed).
    #[error("{path}: {} error(s) in the manifest:{}", .issues.len(), list(.issues))]
    Manifest {
        path: PathBuf,
        issues: Vec<ManifestIssue>,
    },

    /// The manifest's schema does not match the ONNX graph (every mismatch is listed).
    #[error("the manifest does not match the model's graph:{}", list(.issues))]
    Schema { issues: Vec<ManifestIssue> },

    /// The model failed in the AIVM (guards, lowering, quantization, execution, proving).
    #[error(transparent)]
    Aivm(#[from] lightchain_aivm::AivmError),

    /// The proving memory estimate exceeds the manifest's limit, and no cut into segments fits.
    #[error(
        "proving needs an estimated {estimate_mb} MB (k = {k}) in one circuit, more than the manifest's limit of {limit_mb} MB, \
         and the model cannot be cut into segments that fit ({reason}); raise [limits] memory_mb or use a smaller model"
    )]
    MemoryLimit {
        estimate_mb: u64,
        limit_mb: u64,
        k: u32,
        /// Why no cut fits (e.g. a node that alone needs more).
        reason: String,
    },

    /// Quantization could not meet the manifest's accuracy target.
    #[error("accuracy target not met: {0}")]
    Accuracy(String),

    /// A test vector failed.
    #[error("test vector {name}: {reason}")]
    TestVector { name: String, reason: String },

    /// A proof was asked of an attested package.
    #[error(
        "package {0} is attested: its tasks are executed and signed by the validators, never proven"
    )]
    Attested(String),

    /// A package file is damaged, forged or from a newer lightchain.
    #[error("invalid package: {0}")]
    Corrupt(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = PackageError> = std::result::Result<T, E>;

impl PackageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PackageError::Io {
            context: context.into(),
            source,
        }
    }
}
