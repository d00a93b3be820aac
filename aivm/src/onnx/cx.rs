//! The lowering context: the values known so far (activations and folded constants), the graph
//! being built, and the view of one ONNX node that a family's lowering reads.

use std::collections::HashMap;

use onnx_protobuf::{AttributeProto, NodeProto, TensorProto, tensor_proto::DataType};
use protobuf::Enum;

use crate::error::{AivmError, Result};
use crate::ir::{DType, FOp, Graph, Node, ValueInfo};
use crate::ops::copy::{self, CopySpec};
use crate::tensor::{Tensor, numel};

/// A constant known at lowering time.
#[derive(Clone, Debug)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: CData,
}

/// A constant's data: floats or integers.
#[derive(Clone, Debug)]
pub enum CData {
    F(Vec<f32>),
    I(Vec<i64>),
}

impl Const {
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            CData::F(v) => v.clone(),
            CData::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    pub fn ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            CData::I(v) => Some(v.clone()),
            CData::F(_) => None,
        }
    }

    pub fn tensor_f32(&self) -> Tensor<f32> {
        Tensor::new(self.shape.clone(), self.floats())
    }

    pub fn with_data(&self, shape: Vec<usize>, f: impl Fn(&CData) -> CData) -> Const {
        Const {
            shape,
            data: f(&self.data),
        }
    }

    /// Applies a data movement to the constant (folding).
    pub fn copied(&self, spec: &CopySpec, out: Vec<usize>) -> Const {
        self.with_data(out, |d| match d {
            CData::F(v) => CData::F(copy::apply(spec, &[v.as_slice()])),
            CData::I(v) => CData::I(copy::apply(spec, &[v.as_slice()])),
        })
    }
}

/// A value during lowering: a graph activation or a folded constant.
#[derive(Clone, Debug)]
pub enum Val {
    Act(usize),
    Const(Const),
}

/// Reads an ONNX tensor's data (raw or typed fields) without `TensorProto::as_value`, which
/// panics on several types. The guard has already checked dims and lengths.
pub fn read_tensor(t: &TensorProto) -> std::result::Result<Const, String> {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let n = numel(&shape);
    let raw = &t.raw_data;
    let le = |w: usize| raw.chunks_exact(w);
    let data = match DataType::from_i32(t.data_type) {
        Some(DataType::FLOAT) if !raw.is_empty() => CData::F(
            le(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Some(DataType::FLOAT) => CData::F(t.float_data.clone()),
        Some(DataType::DOUBLE) if !raw.is_empty() => CData::F(
            le(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
        ),
        Some(DataType::DOUBLE) => CData::F(t.double_data.iter().map(|&v| v as f32).collect()),
        Some(DataType::INT64) | Some(DataType::INT32) => CData::I(
            super::guard::int_values(t).ok_or_else(|| "unreadable integer data".to_string())?,
        ),
        Some(DataType::INT8) if !raw.is_empty() => {
            CData::I(raw.iter().map(|&b| b as i8 as i64).collect())
        }
        Some(DataType::UINT8) | Some(DataType::BOOL) if !raw.is_empty() => {
            CData::I(raw.iter().map(|&b| b as i64).collect())
        }
        Some(DataType::INT8) | Some(DataType::UINT8) | Some(DataType::BOOL) => {
            CData::I(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        _ => return Err(format!("element type {} is not supported", t.data_type)),
    };
    let len = match &data {
        CData::F(v) => v.len(),
        CData::I(v) => v.len(),
    };
    if len != n {
        return Err(format!("holds {len} values for dims {:?}", t.dims));
    }
    Ok(Const { shape, data })
}

/// One ONNX node as its lowering sees it: the proto, its display name, its inputs (an omitted
/// optional input is `None`) and the model's opset.
pub struct NodeIn<'a> {
    pub proto: &'a NodeProto,
    pub name: &'a str,
    pub op: &'a str,
    pub ins: Vec<Option<Val>>,
    pub opset: i64,
}

impl NodeIn<'_> {
    /// A lowering error naming this node.
    pub fn err(&self, reason: impl Into<String>) -> AivmError {
        AivmError::lowering(self.name, self.op, reason)
    }

    /// An "unsupported" error naming this node and what about it is not supported.
    pub fn unsupported(&self, detail: &str) -> AivmError {
        AivmError::Unsupported {
            op: self.op.to_string(),
            node: self.name.to_string(),
            detail: detail.to_string(),
            supported: super::supported_ops().join(", "),
        }
    }

    /// Input `k`, which must be present.
    pub fn input(&self, k: usize) -> Result<Val> {
        self.ins
            .get(k)
            .cloned()
            .flatten()
            .ok_or_else(|| self.err(format!("missing input {k}")))
    }

    /// Input `k`, which must be a constant.
    pub fn const_input(&self, k: usize, what: &str) -> Result<Const> {
        match self.input(k)? {
            Val::Const(c) => Ok(c),
            Val::Act(_) => Err(self.unsupported(&format!("its {what} must be a constant"))),
        }
    }

    /// Optional input `k`, a constant when present.
    pub fn opt_const(&self, k: usize, what: &str) -> Result<Option<Const>> {
        match self.ins.get(k).cloned().flatten() {
            None => Ok(None),
            Some(_) => self.const_input(k, what).map(Some),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub fn attr_f(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    pub fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    pub fn attr_s(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// The name of the node's first output (its value's name in the graph).
    pub fn output_name(&self) -> String {
        self.proto
            .output
            .first()
            .cloned()
            .unwrap_or_else(|| self.name.to_string())
    }
}

/// The lowering's state: the values by ONNX name and the graph built so far.
pub struct Cx {
    pub opset: i64,
    pub env: HashMap<String, Val>,
    pub graph: Graph,
}

impl Cx {
    pub fn new_value(&mut self, name: &str, shape: Vec<usize>, dtype: DType) -> usize {
        self.graph.values.push(ValueInfo {
            name: name.to_string(),
            shape,
            dtype,
        });
        self.graph.values.len() - 1
    }

    pub fn shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Act(id) => self.graph.values[*id].shape.clone(),
            Val::Const(c) => c.shape.clone(),
        }
    }

    pub fn dtype(&self, v: &Val) -> DType {
        match v {
            Val::Act(id) => self.graph.values[*id].dtype,
            Val::Const(Const {
                data: CData::F(_), ..
            }) => DType::F32,
            Val::Const(_) => DType::I64,
        }
    }

    /// Adds a node computing `op` over `inputs`; its output is the node's first ONNX output.
    pub fn push(
        &mut self,
        n: &NodeIn,
        op: FOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Val {
        let id = self.new_value(&n.output_name(), shape, dtype);
        self.graph.nodes.push(Node {
            name: n.name.to_string(),
            onnx_op: n.proto.op_type.clone(),
            op,
            inputs,
            output: id,
        });
        Val::Act(id)
    }

    /// Adds one step of a composite lowering (e.g. LayerNormalization's mean), named
    /// `node/part` with output `output/part`.
    pub fn push_part(
        &mut self,
        n: &NodeIn,
        part: &str,
        op: FOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        let id = self.new_value(&format!("{}/{part}", n.output_name()), shape, DType::F32);
        self.graph.nodes.push(Node {
            name: format!("{}/{part}", n.name),
            onnx_op: n.proto.op_type.clone(),
            op,
            inputs,
            output: id,
        });
        id
    }

    /// The activation a value is, or an error when it folded to a constant.
    pub fn act(&self, v: &Val, n: &NodeIn) -> Result<usize> {
        match v {
            Val::Act(id) => Ok(*id),
            Val::Const(_) => Err(n.err(
                "constant input where an activation was expected (the node would fold to a constant)",
            )),
        }
    }

    /// The float activation a value is, or an error when it folded to a constant or is an
    /// integer tensor.
    pub fn float_act(&self, v: &Val, n: &NodeIn) -> Result<usize> {
        let id = self.act(v, n)?;
        if self.graph.values[id].dtype != DType::F32 {
            return Err(n.err("expects a float input, got an integer tensor"));
        }
        Ok(id)
    }

    /// Adds a node whose input must be a float activation.
    pub fn float_op(&mut self, n: &NodeIn, x: Val, op: FOp, out: Vec<usize>) -> Result<Val> {
        let id = self.float_act(&x, n)?;
        Ok(self.push(n, op, vec![id], out, DType::F32))
    }

    /// A float op that keeps its input's shape.
    pub fn unary(&mut self, n: &NodeIn, x: Val, op: FOp) -> Result<Val> {
        let s = self.shape(&x);
        self.float_op(n, x, op, s)
    }

    /// Data movement; folded when the input is a constant.
    pub fn copy(&mut self, n: &NodeIn, x: Val, spec: CopySpec, out: Vec<usize>) -> Result<Val> {
        let in_len = numel(&self.shape(&x));
        if numel(&out) != spec.sources(in_len).len() {
            return Err(n.err("output size does not match input size"));
        }
        match x {
            Val::Const(c) => Ok(Val::Const(c.copied(&spec, out))),
            Val::Act(id) => {
                let dt = self.graph.values[id].dtype;
                Ok(self.push(n, FOp::Copy(spec), vec![id], out, dt))
            }
        }
    }
}
