//! Structural validation of a program: every index, length and shift consistent, so that the
//! executor cannot fail on a structurally broken program (e.g. one decoded from bytes), and
//! every intermediate bounded, so that the circuit's accumulators stay far below the field.

use super::{Program, TensorMeta};
use crate::error::{AivmError, Result};
use crate::tensor::numel;

/// Why a program node is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("invalid output or no inputs")]
    Output,
    #[error("reads a tensor not computed before it")]
    Undefined,
    #[error("wrong number of inputs ({got}, expected {expected})")]
    Arity { expected: usize, got: usize },
    #[error("its parameters do not match its tensors")]
    Params,
    #[error("its intermediate values could exceed 62 bits")]
    Unbounded,
    #[error("its output needs {need} bits but is declared with {declared}")]
    Narrow { need: u32, declared: u32 },
    #[error("a maximum or mean takes no rescale")]
    NoRescale,
}

impl Program {
    /// Checks that every index, length and shift in the program is consistent, so that the
    /// executor cannot fail on a structurally broken program (e.g. one decoded from bytes).
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(AivmError::Decode(msg));
        let nt = self.tensors.len();
        for (i, t) in self.tensors.iter().enumerate() {
            if t.bits == 0 || t.bits > 48 || t.scale > 48 || t.shape.len() > 8 {
                return bad(format!(
                    "tensor {i} has an invalid scale, bit width or rank"
                ));
            }
            let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if n.is_none_or(|n| n > 1 << 26) {
                return bad(format!("tensor {i} is too large"));
            }
        }
        let mut defined = vec![false; nt];
        for io in &self.inputs {
            if io.tensor >= nt || defined[io.tensor] {
                return bad("an input refers to an invalid tensor".into());
            }
            defined[io.tensor] = true;
        }
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return bad("a program needs inputs and outputs".into());
        }
        for (k, n) in self.nodes.iter().enumerate() {
            self.node_ok(n, &defined)
                .map_err(|reason| AivmError::InvalidNode {
                    node: k,
                    kind: n.op.kind(),
                    reason,
                })?;
            defined[n.output] = true;
        }
        for io in &self.outputs {
            if io.tensor >= nt || !defined[io.tensor] {
                return bad(format!("output \"{}\" is never computed", io.name));
            }
        }
        if self.state {
            let (i, o) = (
                &self.inputs[self.inputs.len() - 1],
                &self.outputs[self.outputs.len() - 1],
            );
            let (a, b) = (&self.tensors[i.tensor], &self.tensors[o.tensor]);
            if a != b {
                return bad(format!(
                    "the state output \"{}\" ({:?} {:?}, scale {}, {} bits) differs from the state input \"{}\" ({:?} {:?}, scale {}, {} bits)",
                    o.name,
                    b.dtype,
                    b.shape,
                    b.scale,
                    b.bits,
                    i.name,
                    a.dtype,
                    a.shape,
                    a.scale,
                    a.bits
                ));
            }
        }
        Ok(())
    }

    /// One node against the tensors computed before it.
    fn node_ok(&self, n: &super::PNode, defined: &[bool]) -> std::result::Result<(), Invalid> {
        let nt = self.tensors.len();
        if n.inputs.is_empty() || n.output >= nt || defined[n.output] {
            return Err(Invalid::Output);
        }
        if n.inputs.iter().any(|&i| i >= nt || !defined[i]) {
            return Err(Invalid::Undefined);
        }
        let op = n.op.family();
        if n.inputs.len() != op.arity() {
            return Err(Invalid::Arity {
                expected: op.arity(),
                got: n.inputs.len(),
            });
        }
        let ins: Vec<&TensorMeta> = n.inputs.iter().map(|&i| &self.tensors[i]).collect();
        let out = &self.tensors[n.output];
        op.check(&ins, out)?;
        if !op.bounded(&ins) {
            return Err(Invalid::Unbounded);
        }
        if let Some(need) = op.static_out_bits(&ins)
            && out.bits < need
        {
            return Err(Invalid::Narrow {
                need,
                declared: out.bits,
            });
        }
        debug_assert!(numel(&out.shape) <= 1 << 26);
        Ok(())
    }
}
