//! The float graph: an ONNX model lowered to the AIVM's closed op set, still with float weights.
//! It is what calibration measures and what quantization turns into a [`crate::Program`].

use serde::{Deserialize, Serialize};

pub use crate::ops::FOp;
use crate::ops::FloatArgs;
use crate::tensor::numel;

/// Element type of a graph value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    F32,
    I64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
        }
    }
}

/// A named value of the graph with its static shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// One node: an op, its ONNX origin, its input values and its output value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The ONNX node name (or a generated `op_type#index` when the model has none).
    pub name: String,
    pub onnx_op: String,
    pub op: FOp,
    pub inputs: Vec<usize>,
    pub output: usize,
}

/// A lowered model: values, inputs, outputs and nodes in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub values: Vec<ValueInfo>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Evaluates the graph in f64; returns every value's data. Integer values (token ids,
    /// argmax results) are carried as exact small f64s.
    pub fn eval(&self, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut vals: Vec<Vec<f64>> = vec![Vec::new(); self.values.len()];
        for (&id, x) in self.inputs.iter().zip(inputs) {
            vals[id] = x.clone();
        }
        for n in &self.nodes {
            let args = FloatArgs {
                ins: n.inputs.iter().map(|&i| vals[i].as_slice()).collect(),
                in_shapes: n
                    .inputs
                    .iter()
                    .map(|&i| self.values[i].shape.as_slice())
                    .collect(),
                out_shape: &self.values[n.output].shape,
            };
            let y = n.op.family().eval(&args);
            vals[n.output] = y;
        }
        vals
    }

    /// Multiply-accumulates of the graph (dot products and elementwise products).
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.op.family().macs(numel(&self.values[n.output].shape)))
            .sum()
    }
}
