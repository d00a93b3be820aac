//! The float graph: an ONNX model lowered to the AIVM's closed op set, still with float weights.
//! It is what calibration measures and what quantization turns into a [`crate::Program`].

use serde::{Deserialize, Serialize};

use crate::ops::copy::{self, CopySpec};
use crate::ops::elementwise::{self, BinKind};
use crate::ops::group::{self, GroupSpec, ReduceKind};
use crate::ops::linear::{self, LinearGeom};
use crate::ops::lut::LutFn;
use crate::tensor::Tensor;

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

/// A float op of the closed AIVM op set.
#[derive(Clone, Debug, PartialEq)]
pub enum FOp {
    Linear {
        geom: LinearGeom,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
    /// `x·mul + add` with constants broadcast to the input's shape.
    Affine {
        mul: Option<Tensor<f32>>,
        add: Option<Tensor<f32>>,
    },
    Binary(BinKind),
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Clip {
        lo: Option<f32>,
        hi: Option<f32>,
    },
    Lut(LutFn),
    Softmax(GroupSpec),
    Reduce {
        kind: ReduceKind,
        groups: GroupSpec,
    },
    ArgMax(GroupSpec),
    Copy(CopySpec),
    /// Rows of a constant table selected by integer indices (embeddings).
    Gather {
        table: Tensor<f32>,
    },
}

impl FOp {
    /// Short name used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            FOp::Linear { .. } => "linear",
            FOp::Affine { .. } => "affine",
            FOp::Binary(_) => "binary",
            FOp::Relu => "relu",
            FOp::LeakyRelu { .. } => "leaky_relu",
            FOp::Clip { .. } => "clip",
            FOp::Lut(_) => "lut",
            FOp::Softmax(_) => "softmax",
            FOp::Reduce { .. } => "reduce",
            FOp::ArgMax(_) => "argmax",
            FOp::Copy(_) => "copy",
            FOp::Gather { .. } => "gather",
        }
    }
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
            let x = &vals[n.inputs[0]];
            let out_shape = &self.values[n.output].shape;
            let y = match &n.op {
                FOp::Linear { geom, weight, bias } => {
                    linear::eval_f(geom, weight, bias.as_deref(), x)
                }
                FOp::Affine { mul, add } => elementwise::affine_f(
                    x,
                    &self.values[n.inputs[0]].shape,
                    mul.as_ref(),
                    add.as_ref(),
                ),
                FOp::Binary(kind) => elementwise::binary(
                    x,
                    &self.values[n.inputs[0]].shape,
                    &vals[n.inputs[1]],
                    &self.values[n.inputs[1]].shape,
                    out_shape,
                    |a, b| kind.apply_f(a, b),
                ),
                FOp::Relu => x.iter().map(|&v| v.max(0.0)).collect(),
                FOp::LeakyRelu { alpha } => x
                    .iter()
                    .map(|&v| if v >= 0.0 { v } else { v * *alpha as f64 })
                    .collect(),
                FOp::Clip { lo, hi } => x
                    .iter()
                    .map(|&v| {
                        let v = lo.map_or(v, |l| v.max(l as f64));
                        hi.map_or(v, |h| v.min(h as f64))
                    })
                    .collect(),
                FOp::Lut(f) => x.iter().map(|&v| f.apply(v)).collect(),
                FOp::Softmax(g) => group::softmax_f(&g.groups(), x),
                FOp::Reduce { kind, groups } => group::reduce_f(*kind, &groups.groups(), x),
                FOp::ArgMax(g) => group::argmax(&g.groups(), x)
                    .into_iter()
                    .map(|i| i as f64)
                    .collect(),
                FOp::Copy(spec) => {
                    let ins: Vec<&[f64]> = n.inputs.iter().map(|&i| vals[i].as_slice()).collect();
                    copy::apply(spec, &ins)
                }
                FOp::Gather { table } => {
                    let row: usize = table.shape[1..].iter().product();
                    x.iter()
                        .flat_map(|&id| {
                            let r = id as usize;
                            table.data[r * row..(r + 1) * row].iter().map(|&v| v as f64)
                        })
                        .collect()
                }
            };
            vals[n.output] = y;
        }
        vals
    }

    /// Multiply-accumulates of the graph (dot products and elementwise products).
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                FOp::Linear { geom, .. } => geom.macs(),
                FOp::Binary(BinKind::Mul) | FOp::Affine { mul: Some(_), .. } => {
                    crate::tensor::numel(&self.values[n.output].shape) as u64
                }
                _ => 0,
            })
            .sum()
    }
}
