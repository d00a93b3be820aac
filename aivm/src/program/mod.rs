//! The AIVM program: a closed set of integer ops over fixed-point tensors, and its executor.
//!
//! A value `x` at scale `s` is held as the integer `round(x·2^s)`. Every op's integer meaning is
//! defined here, once; the halo2 circuit constrains exactly this meaning, and every validator
//! executes it bit for bit. Weights, biases and lookup tables are constants of the program, so
//! the program's hash (the model id) commits to all of them.

use serde::{Deserialize, Serialize};

use crate::error::{AivmError, Result, ShapeDisplay};
use crate::ir::DType;
use crate::ops::IntArgs;
pub use crate::ops::Op;
use crate::tensor::numel;

pub mod encode;
mod validate;

pub use encode::ModelId;
pub use validate::Invalid;

/// The version of the program's meaning and encoding. Bumped on any change of either.
pub const PROGRAM_VERSION: u32 = 1;

/// Static facts of one tensor: shape, element type, fixed-point scale and the signed bit width
/// every element must fit in (`-2^(bits-1) <= v < 2^(bits-1)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMeta {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub scale: u32,
    pub bits: u32,
}

/// A named program input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoSpec {
    pub name: String,
    pub tensor: usize,
}

/// One program node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PNode {
    /// The ONNX node(s) it came from.
    pub name: String,
    pub onnx_op: String,
    pub op: Op,
    pub inputs: Vec<usize>,
    pub output: usize,
}

/// A lowered, quantized model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub tensors: Vec<TensorMeta>,
    pub inputs: Vec<IoSpec>,
    pub outputs: Vec<IoSpec>,
    pub nodes: Vec<PNode>,
    /// Whether the program carries state from one task to the next: then its last input is
    /// the state it reads and its last output the state it writes, of one shape, element type,
    /// scale and bit width (see [`crate::state`]). A circuit commits to both instead of
    /// publishing them.
    pub state: bool,
}

/// Lowest and highest value of a signed `bits`-bit integer.
pub fn bit_range(bits: u32) -> (i64, i64) {
    let h = 1i64 << (bits - 1);
    (-h, h - 1)
}

impl Program {
    /// Runs the program; returns every tensor's values (the full witness), indexed by tensor id.
    /// Inputs are integer tensors at their input scales, in `self.inputs` order.
    pub fn execute_all(&self, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        self.check_inputs(inputs)?;
        let mut vals: Vec<Vec<i64>> = vec![Vec::new(); self.tensors.len()];
        for (io, x) in self.inputs.iter().zip(inputs) {
            vals[io.tensor] = x.clone();
        }
        for n in &self.nodes {
            let y = self.eval_node(n, &vals)?;
            let meta = &self.tensors[n.output];
            let (lo, hi) = bit_range(meta.bits);
            if y.iter().any(|&v| v < lo || v > hi) {
                return Err(AivmError::Overflow {
                    node: n.name.clone(),
                    tensor: n.output,
                    shape: ShapeDisplay(meta.shape.clone()),
                    bits: meta.bits,
                });
            }
            vals[n.output] = y;
        }
        Ok(vals)
    }

    /// Checks quantized inputs before anything runs: their number, element counts, and that
    /// every value lies in its input's calibrated bit range (the circuit range-checks inputs,
    /// so an input outside it could never be proven).
    pub fn check_inputs(&self, inputs: &[Vec<i64>]) -> Result<()> {
        self.check_inputs_of(&self.inputs, inputs)
    }

    /// A stateful program's task inputs: every input but the state (the last).
    pub fn task_inputs(&self) -> &[IoSpec] {
        &self.inputs[..self.inputs.len() - usize::from(self.state)]
    }

    /// [`Program::check_inputs`] for a task's inputs (without a stateful program's state).
    pub fn check_task_inputs(&self, inputs: &[Vec<i64>]) -> Result<()> {
        self.check_inputs_of(self.task_inputs(), inputs)
    }

    fn check_inputs_of(&self, ios: &[IoSpec], inputs: &[Vec<i64>]) -> Result<()> {
        if inputs.len() != ios.len() {
            return Err(AivmError::InputFormat(format!(
                "the program takes {} inputs, {} given",
                ios.len(),
                inputs.len()
            )));
        }
        for (io, x) in ios.iter().zip(inputs) {
            let meta = &self.tensors[io.tensor];
            if x.len() != numel(&meta.shape) {
                return Err(AivmError::Input {
                    name: io.name.clone(),
                    reason: format!(
                        "expected {} elements (shape {})",
                        numel(&meta.shape),
                        ShapeDisplay(meta.shape.clone())
                    ),
                });
            }
            let (lo, hi) = bit_range(meta.bits);
            if x.iter().any(|&v| v < lo || v > hi) {
                return Err(AivmError::Input {
                    name: io.name.clone(),
                    reason: format!(
                        "values exceed the {}-bit range calibrated for this input at scale {}; re-calibrate with wider inputs",
                        meta.bits, meta.scale
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs the program and returns its outputs, in `self.outputs` order.
    pub fn execute(&self, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        let mut all = self.execute_all(inputs)?;
        Ok(self
            .outputs
            .iter()
            .map(|o| std::mem::take(&mut all[o.tensor]))
            .collect())
    }

    fn eval_node(&self, n: &PNode, vals: &[Vec<i64>]) -> Result<Vec<i64>> {
        let args = IntArgs {
            node: &n.name,
            ins: n.inputs.iter().map(|&i| vals[i].as_slice()).collect(),
            in_meta: n.inputs.iter().map(|&i| &self.tensors[i]).collect(),
            out: &self.tensors[n.output],
        };
        n.op.family().eval(&args)
    }

    /// Total multiply-accumulates.
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.op.family().macs(numel(&self.tensors[n.output].shape)))
            .sum()
    }

    /// Number of constant parameters (weights, biases, tables).
    pub fn param_count(&self) -> u64 {
        self.nodes.iter().map(|n| n.op.family().params()).sum()
    }

    /// Table lookups of the program (activation tables, softmax's exp, embeddings).
    pub fn lookups(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.op.family().lookups(numel(&self.tensors[n.output].shape)))
            .sum()
    }
}
