//! Typed errors of the AIVM. Messages are lowercase, name the thing and what to do, and never
//! carry tensor values or weights: only names, shapes, dtypes and counts.

use std::fmt;

/// A tensor shape, printed as `[1, 64]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeDisplay(pub Vec<usize>);

impl fmt::Display for ShapeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// Everything that can go wrong between an ONNX file and an executed program.
#[derive(Debug, thiserror::Error)]
pub enum AivmError {
    /// The model was refused by the guards that run before any ONNX library sees it.
    #[error("model refused: {0}")]
    Guard(crate::onnx::guard::Refusal),

    /// The file is not a valid ONNX protobuf.
    #[error("not a valid ONNX model: {0}")]
    Parse(String),

    /// An operator is outside the AIVM's closed op set.
    #[error(
        "unsupported op {op} at node \"{node}\"{detail}; supported ops: {supported}",
        detail = if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) }
    )]
    Unsupported {
        op: String,
        node: String,
        detail: String,
        supported: String,
    },

    /// A supported op used in a way the lowering cannot give one exact meaning.
    #[error("node \"{node}\" ({op}): {reason}")]
    Lowering {
        node: String,
        op: String,
        reason: String,
    },

    /// A user-supplied input does not match the model's declared inputs.
    #[error("input \"{name}\": {reason}")]
    Input { name: String, reason: String },

    /// The input file could not be read as one of the accepted layouts.
    #[error("input file: {0}")]
    InputFormat(String),

    /// Quantization could not fit the model into the integer ranges.
    #[error("quantization: {0}")]
    Quantize(String),

    /// The integer executor met a value outside a tensor's calibrated range.
    #[error(
        "value out of range at node \"{node}\": tensor {tensor} of shape {shape} exceeds its {bits}-bit range; \
         the input is outside what the model was calibrated for (re-calibrate with wider inputs or a smaller scale)"
    )]
    Overflow {
        node: String,
        tensor: usize,
        shape: ShapeDisplay,
        bits: u32,
    },

    /// An integer index (Gather, token id) is outside its table.
    #[error("node \"{node}\": index out of range for a table of {len} rows")]
    IndexOutOfRange { node: String, len: usize },

    /// A program encoding could not be decoded.
    #[error("program encoding: {0}")]
    Decode(String),

    /// A program node is structurally invalid (decoded programs are validated before use).
    #[error("program encoding: node {node} ({kind}): {reason}")]
    InvalidNode {
        node: usize,
        kind: &'static str,
        reason: crate::program::Invalid,
    },

    /// The float reference (tract) failed.
    #[error("float reference (tract): {0}")]
    Reference(String),

    /// Key generation or proving failed.
    #[error("proving: {0}")]
    Prove(String),

    /// The stages of a pipeline cannot be chained as declared.
    #[error("pipeline: {0}")]
    Pipeline(String),

    /// A program cannot be cut into segments as asked.
    #[error("segmenting: {0}")]
    Segment(String),

    /// A model's state across tasks is declared or given wrongly.
    #[error("state: {0}")]
    State(String),

    /// A cached parameters file is not the parameters it is named for.
    #[error(
        "parameters file {} (k = {k}) does not match the parameters for k = {k}: it is corrupt or was tampered with; delete it and it will be generated again",
        path.display()
    )]
    ParamsMismatch { path: std::path::PathBuf, k: u32 },

    /// A proof did not verify, or its envelope is inconsistent with the model.
    #[error("invalid proof: {0}")]
    InvalidProof(crate::proof::ProofError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of the AIVM crate.
pub type Result<T, E = AivmError> = std::result::Result<T, E>;

impl AivmError {
    pub(crate) fn lowering(node: &str, op: &str, reason: impl Into<String>) -> Self {
        AivmError::Lowering {
            node: node.to_string(),
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AivmError::Io {
            context: context.into(),
            source,
        }
    }
}
