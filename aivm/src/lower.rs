//! Lowering of a guarded ONNX graph to the AIVM float graph ([`crate::ir::Graph`]).
//!
//! The lowering reads the ONNX protobuf itself rather than tract's decluttered graph: the
//! program's meaning (and so the model id) must not change when tract's rewrite rules do, and
//! errors must name the user's ONNX nodes. Shape arithmetic that exporters leave in the graph
//! (Shape → Gather → Concat → Reshape) is folded to constants here. tract stays the independent
//! float reference (see [`crate::reference`]).

use std::collections::HashMap;

use onnx_protobuf::{AttributeProto, NodeProto, TensorProto, tensor_proto::DataType};
use protobuf::Enum;

use crate::error::{AivmError, Result};
use crate::guard::GuardedModel;
use crate::ir::{DType, FOp, Graph, Node, ValueInfo};
use crate::ops::copy::{self, CopySpec};
use crate::ops::elementwise::BinKind;
use crate::ops::group::{GroupSpec, Pool2d, ReduceKind};
use crate::ops::linear::{Conv2d, LinearGeom};
use crate::ops::lut::LutFn;
use crate::tensor::{Tensor, broadcast_map, broadcast_shape, norm_axis, numel};

/// The ONNX ops the AIVM accepts, in the order error messages list them.
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "ArgMax",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// Options of the import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Values of symbolic dimensions (e.g. `batch_size`); unnamed or unlisted ones are 1.
    pub dims: HashMap<String, usize>,
    /// Exact input shapes by input name; override the declared ones (dims must agree where fixed).
    pub input_shapes: HashMap<String, Vec<usize>>,
}

/// A constant known at lowering time.
#[derive(Clone, Debug)]
struct Const {
    shape: Vec<usize>,
    data: CData,
}

#[derive(Clone, Debug)]
enum CData {
    F(Vec<f32>),
    I(Vec<i64>),
}

impl Const {
    fn floats(&self) -> Vec<f32> {
        match &self.data {
            CData::F(v) => v.clone(),
            CData::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    fn ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            CData::I(v) => Some(v.clone()),
            CData::F(_) => None,
        }
    }

    fn tensor_f32(&self) -> Tensor<f32> {
        Tensor::new(self.shape.clone(), self.floats())
    }

    fn with_data(&self, shape: Vec<usize>, f: impl Fn(&CData) -> CData) -> Const {
        Const {
            shape,
            data: f(&self.data),
        }
    }
}

#[derive(Clone, Debug)]
enum Val {
    Act(usize),
    Const(Const),
}

/// Lowers a guarded model to the float graph.
pub fn lower(model: &GuardedModel, opts: &ImportOptions) -> Result<Graph> {
    let g = model
        .proto
        .graph
        .as_ref()
        .ok_or_else(|| AivmError::Parse("the model has no graph".into()))?;
    let mut cx = Cx {
        opset: model.opset,
        env: HashMap::new(),
        graph: Graph {
            values: vec![],
            inputs: vec![],
            outputs: vec![],
            nodes: vec![],
        },
    };
    for t in &g.initializer {
        let c = read_tensor(t)
            .map_err(|r| AivmError::Guard(format!("initializer \"{}\": {r}", t.name)))?;
        cx.env.insert(t.name.clone(), Val::Const(c));
    }
    for vi in &g.input {
        if cx.env.contains_key(&vi.name) {
            continue; // an initializer listed as an input (old exporters): a constant
        }
        let (shape, dtype) = input_info(vi, opts)?;
        let id = cx.new_value(&vi.name, shape, dtype);
        cx.graph.inputs.push(id);
        cx.env.insert(vi.name.clone(), Val::Act(id));
    }
    if cx.graph.inputs.is_empty() {
        return Err(AivmError::Parse("the model has no runtime inputs".into()));
    }
    for (i, n) in g.node.iter().enumerate() {
        let name = if n.name.is_empty() {
            format!("{}#{i}", n.op_type)
        } else {
            n.name.clone()
        };
        let out = cx.node(n, &name)?;
        if let Some(o) = n.output.first() {
            cx.env.insert(o.clone(), out);
        }
    }
    for vo in &g.output {
        match cx.env.get(&vo.name) {
            Some(Val::Act(id)) => {
                let id = *id;
                if cx.graph.outputs.contains(&id) || cx.graph.inputs.contains(&id) {
                    return Err(AivmError::Parse(format!(
                        "output \"{}\" repeats another input or output; not supported",
                        vo.name
                    )));
                }
                cx.graph.values[id].name = vo.name.clone();
                cx.graph.outputs.push(id);
            }
            Some(Val::Const(_)) => {
                return Err(AivmError::Parse(format!(
                    "output \"{}\" is a constant: it does not depend on any input",
                    vo.name
                )));
            }
            None => {
                return Err(AivmError::Parse(format!(
                    "output \"{}\" is not produced by any node",
                    vo.name
                )));
            }
        }
    }
    fuse(&mut cx.graph);
    Ok(cx.graph)
}

fn input_info(
    vi: &onnx_protobuf::ValueInfoProto,
    opts: &ImportOptions,
) -> Result<(Vec<usize>, DType)> {
    let bad = |reason: String| AivmError::Input {
        name: vi.name.clone(),
        reason,
    };
    let Some(onnx_protobuf::type_proto::Value::TensorType(tt)) =
        vi.type_.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(bad("only tensor inputs are supported".into()));
    };
    let dtype = match DataType::from_i32(tt.elem_type) {
        Some(DataType::FLOAT) | Some(DataType::DOUBLE) => DType::F32,
        Some(DataType::INT64) | Some(DataType::INT32) => DType::I64,
        _ => {
            return Err(bad(format!(
                "element type {} is not supported (use float32 or int64)",
                tt.elem_type
            )));
        }
    };
    let declared: Vec<Option<usize>> = tt
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| {
                    if d.has_dim_value() && d.dim_value() > 0 {
                        Some(d.dim_value() as usize)
                    } else if d.has_dim_param() {
                        Some(*opts.dims.get(d.dim_param()).unwrap_or(&1))
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(given) = opts.input_shapes.get(&vi.name) {
        let fixed_ok = given.len() == declared.len()
            && tt.shape.as_ref().is_some_and(|s| {
                s.dim.iter().zip(given).all(|(d, &g)| {
                    !d.has_dim_value() || d.dim_value() <= 0 || d.dim_value() as usize == g
                })
            });
        if !fixed_ok {
            return Err(bad(format!(
                "shape {} does not fit the model's declared shape",
                crate::error::ShapeDisplay(given.clone())
            )));
        }
        return Ok((given.clone(), dtype));
    }
    Ok((
        declared.into_iter().map(|d| d.unwrap_or(1)).collect(),
        dtype,
    ))
}

/// Reads an ONNX tensor's data (raw or typed fields) without `TensorProto::as_value`, which
/// panics on several types. The guard has already checked dims and lengths.
fn read_tensor(t: &TensorProto) -> std::result::Result<Const, String> {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let n = numel(&shape);
    let raw = &t.raw_data;
    let le = |w: usize| raw.chunks_exact(w);
    let data = match DataType::from_i32(t.data_type) {
        Some(DataType::FLOAT) if !raw.is_empty() => CData::F(
            le(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        Some(DataType::FLOAT) => CData::F(t.float_data.clone()),
        Some(DataType::DOUBLE) if !raw.is_empty() => CData::F(
            le(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
        ),
        Some(DataType::DOUBLE) => CData::F(t.double_data.iter().map(|&v| v as f32).collect()),
        Some(DataType::INT64) | Some(DataType::INT32) => CData::I(
            crate::guard::int_values(t).ok_or_else(|| "unreadable integer data".to_string())?,
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

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map_or(default, |a| a.f)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

struct Cx {
    opset: i64,
    env: HashMap<String, Val>,
    graph: Graph,
}

impl Cx {
    fn new_value(&mut self, name: &str, shape: Vec<usize>, dtype: DType) -> usize {
        self.graph.values.push(ValueInfo {
            name: name.to_string(),
            shape,
            dtype,
        });
        self.graph.values.len() - 1
    }

    fn shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Act(id) => self.graph.values[*id].shape.clone(),
            Val::Const(c) => c.shape.clone(),
        }
    }

    fn dtype(&self, v: &Val) -> DType {
        match v {
            Val::Act(id) => self.graph.values[*id].dtype,
            Val::Const(Const {
                data: CData::F(_), ..
            }) => DType::F32,
            Val::Const(_) => DType::I64,
        }
    }

    fn push(
        &mut self,
        n: &NodeProto,
        name: &str,
        op: FOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Val {
        let vname = n
            .output
            .first()
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let id = self.new_value(&vname, shape, dtype);
        self.graph.nodes.push(Node {
            name: name.to_string(),
            onnx_op: n.op_type.clone(),
            op,
            inputs,
            output: id,
        });
        Val::Act(id)
    }

    fn node(&mut self, n: &NodeProto, name: &str) -> Result<Val> {
        let op = n.op_type.as_str();
        let err = |reason: String| AivmError::lowering(name, op, reason);
        if !SUPPORTED_OPS.contains(&op) {
            return Err(AivmError::Unsupported {
                op: op.to_string(),
                node: name.to_string(),
                detail: String::new(),
                supported: SUPPORTED_OPS.join(", "),
            });
        }
        // Inputs; an empty name marks an omitted optional input.
        let mut ins: Vec<Option<Val>> = Vec::with_capacity(n.input.len());
        for i in &n.input {
            if i.is_empty() {
                ins.push(None);
            } else {
                let v =
                    self.env.get(i).cloned().ok_or_else(|| {
                        err(format!("input \"{i}\" is not defined before this node"))
                    })?;
                ins.push(Some(v));
            }
        }
        let input = |k: usize| -> Result<Val> {
            ins.get(k)
                .cloned()
                .flatten()
                .ok_or_else(|| AivmError::lowering(name, op, format!("missing input {k}")))
        };
        let const_input = |k: usize, what: &str| -> Result<Const> {
            match input(k)? {
                Val::Const(c) => Ok(c),
                Val::Act(_) => Err(AivmError::Unsupported {
                    op: op.to_string(),
                    node: name.to_string(),
                    detail: format!("its {what} must be a constant"),
                    supported: SUPPORTED_OPS.join(", "),
                }),
            }
        };
        let opt_const = |k: usize, what: &str| -> Result<Option<Const>> {
            match ins.get(k).cloned().flatten() {
                None => Ok(None),
                Some(_) => const_input(k, what).map(Some),
            }
        };
        let unsupported = |detail: &str| AivmError::Unsupported {
            op: op.to_string(),
            node: name.to_string(),
            detail: detail.to_string(),
            supported: SUPPORTED_OPS.join(", "),
        };

        match op {
            "Constant" => {
                let a = n
                    .attribute
                    .first()
                    .ok_or_else(|| err("has no value attribute".into()))?;
                let c = match a.name.as_str() {
                    "value" => read_tensor(a.t.as_ref().ok_or_else(|| err("empty value".into()))?)
                        .map_err(err)?,
                    "value_float" => Const {
                        shape: vec![],
                        data: CData::F(vec![a.f]),
                    },
                    "value_floats" => Const {
                        shape: vec![a.floats.len()],
                        data: CData::F(a.floats.clone()),
                    },
                    "value_int" => Const {
                        shape: vec![],
                        data: CData::I(vec![a.i]),
                    },
                    "value_ints" => Const {
                        shape: vec![a.ints.len()],
                        data: CData::I(a.ints.clone()),
                    },
                    other => return Err(unsupported(&format!("value attribute \"{other}\""))),
                };
                Ok(Val::Const(c))
            }
            "Identity" | "Dropout" => input(0),
            "Cast" => {
                let to = attr_i(n, "to", 1) as i32;
                let to_float = matches!(
                    DataType::from_i32(to),
                    Some(DataType::FLOAT) | Some(DataType::DOUBLE) | Some(DataType::FLOAT16)
                );
                let to_int = matches!(
                    DataType::from_i32(to),
                    Some(DataType::INT64)
                        | Some(DataType::INT32)
                        | Some(DataType::INT8)
                        | Some(DataType::UINT8)
                        | Some(DataType::BOOL)
                );
                match input(0)? {
                    Val::Const(c) if to_float => {
                        Ok(Val::Const(c.with_data(c.shape.clone(), |d| match d {
                            CData::F(v) => CData::F(v.clone()),
                            CData::I(v) => CData::F(v.iter().map(|&x| x as f32).collect()),
                        })))
                    }
                    Val::Const(c) if to_int => {
                        Ok(Val::Const(c.with_data(c.shape.clone(), |d| match d {
                            CData::F(v) => CData::I(v.iter().map(|&x| x as i64).collect()),
                            CData::I(v) => CData::I(v.clone()),
                        })))
                    }
                    v @ Val::Act(_)
                        if (to_float && self.dtype(&v) == DType::F32)
                            || (to_int && self.dtype(&v) == DType::I64) =>
                    {
                        Ok(v)
                    }
                    _ => Err(unsupported(
                        "cast of an activation between float and integer types",
                    )),
                }
            }
            "Shape" => {
                let s = self.shape(&input(0)?);
                let r = s.len() as i64;
                let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clampi(attr_i(n, "start", 0));
                let end = clampi(attr_i(n, "end", r));
                let dims: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
                Ok(Val::Const(Const {
                    shape: vec![dims.len()],
                    data: CData::I(dims),
                }))
            }
            "Reshape" => {
                let x = input(0)?;
                let spec = const_input(1, "shape operand")?
                    .ints()
                    .ok_or_else(|| err("shape must be integers".into()))?;
                let in_shape = self.shape(&x);
                let allowzero = attr_i(n, "allowzero", 0) != 0;
                let out = reshape_target(&in_shape, &spec, allowzero).map_err(err)?;
                self.copy(n, name, x, CopySpec::Reshape, out)
            }
            "Flatten" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let a = attr_i(n, "axis", 1);
                let a = if a < 0 { a + s.len() as i64 } else { a };
                if a < 0 || a > s.len() as i64 {
                    return Err(err(format!("axis {a} out of range for rank {}", s.len())));
                }
                let out = vec![numel(&s[..a as usize]), numel(&s[a as usize..])];
                self.copy(n, name, x, CopySpec::Reshape, out)
            }
            "Squeeze" | "Unsqueeze" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let axes = if self.opset >= 13 {
                    opt_const(1, "axes operand")?.and_then(|c| c.ints())
                } else {
                    attr_ints(n, "axes")
                };
                let out = if op == "Squeeze" {
                    match axes {
                        None => s.iter().copied().filter(|&d| d != 1).collect(),
                        Some(axes) => {
                            let mut ax = Vec::new();
                            for a in axes {
                                let a = norm_axis(a, s.len())
                                    .ok_or_else(|| err(format!("axis {a} out of range")))?;
                                if s[a] != 1 {
                                    return Err(err(format!(
                                        "cannot squeeze axis {a} of size {}",
                                        s[a]
                                    )));
                                }
                                ax.push(a);
                            }
                            s.iter()
                                .enumerate()
                                .filter(|(i, _)| !ax.contains(i))
                                .map(|(_, &d)| d)
                                .collect()
                        }
                    }
                } else {
                    let axes = axes.ok_or_else(|| err("axes are required".into()))?;
                    let r = s.len() + axes.len();
                    let mut ax = Vec::new();
                    for a in axes {
                        ax.push(
                            norm_axis(a, r).ok_or_else(|| err(format!("axis {a} out of range")))?,
                        );
                    }
                    let mut it = s.iter();
                    (0..r)
                        .map(|i| {
                            if ax.contains(&i) {
                                1
                            } else {
                                *it.next().unwrap_or(&1)
                            }
                        })
                        .collect()
                };
                self.copy(n, name, x, CopySpec::Reshape, out)
            }
            "Transpose" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let perm: Vec<usize> = match attr_ints(n, "perm") {
                    Some(p) => p
                        .iter()
                        .map(|&a| norm_axis(a, s.len()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| err("perm out of range".into()))?,
                    None => (0..s.len()).rev().collect(),
                };
                let mut seen = perm.clone();
                seen.sort_unstable();
                if seen != (0..s.len()).collect::<Vec<_>>() {
                    return Err(err("perm is not a permutation of the axes".into()));
                }
                let spec = CopySpec::Transpose {
                    in_shape: s.clone(),
                    perm: perm.clone(),
                };
                let out = spec.natural_shape(&s);
                self.copy(n, name, x, spec, out)
            }
            "Concat" => {
                let vals: Vec<Val> = (0..n.input.len()).map(input).collect::<Result<_>>()?;
                let shapes: Vec<Vec<usize>> = vals.iter().map(|v| self.shape(v)).collect();
                let r = shapes[0].len();
                let axis = norm_axis(attr_i(n, "axis", 0), r)
                    .ok_or_else(|| err("axis out of range".into()))?;
                for s in &shapes {
                    if s.len() != r
                        || s.iter()
                            .enumerate()
                            .any(|(i, &d)| i != axis && d != shapes[0][i])
                    {
                        return Err(err("inputs have mismatched shapes".into()));
                    }
                }
                let spec = CopySpec::Concat {
                    axis,
                    in_shapes: shapes.clone(),
                };
                let out = spec.natural_shape(&shapes[0]);
                if vals.iter().all(|v| matches!(v, Val::Const(_))) {
                    let cs: Vec<Const> = vals
                        .into_iter()
                        .map(|v| match v {
                            Val::Const(c) => c,
                            Val::Act(_) => unreachable!(),
                        })
                        .collect();
                    return Ok(Val::Const(concat_consts(&spec, &cs, out)));
                }
                let mut ids = Vec::new();
                for v in &vals {
                    match v {
                        Val::Act(id) => ids.push(*id),
                        Val::Const(_) => {
                            return Err(unsupported("concatenating a constant with an activation"));
                        }
                    }
                }
                let dt = self.graph.values[ids[0]].dtype;
                if ids.iter().any(|&i| self.graph.values[i].dtype != dt) {
                    return Err(err("inputs have mixed dtypes".into()));
                }
                Ok(self.push(n, name, FOp::Copy(spec), ids, out, dt))
            }
            "Gather" => {
                let data = input(0)?;
                let idx = input(1)?;
                let ds = self.shape(&data);
                let axis = norm_axis(attr_i(n, "axis", 0), ds.len())
                    .ok_or_else(|| err("axis out of range".into()))?;
                match (&data, &idx) {
                    (_, Val::Const(ic)) => {
                        let raw = ic
                            .ints()
                            .ok_or_else(|| err("indices must be integers".into()))?;
                        let len = ds[axis] as i64;
                        let mut indices = Vec::with_capacity(raw.len());
                        for i in raw {
                            let j = if i < 0 { i + len } else { i };
                            if !(0..len).contains(&j) {
                                return Err(err(format!(
                                    "constant index out of range for an axis of size {len}"
                                )));
                            }
                            indices.push(j as usize);
                        }
                        let spec = CopySpec::Select {
                            in_shape: ds.clone(),
                            axis,
                            indices,
                        };
                        let mut out = ds[..axis].to_vec();
                        out.extend(&ic.shape);
                        out.extend(&ds[axis + 1..]);
                        self.copy(n, name, data, spec, out)
                    }
                    (Val::Const(table), Val::Act(ids)) => {
                        if axis != 0 {
                            return Err(unsupported(
                                "gathering a constant table along an axis other than 0",
                            ));
                        }
                        if self.graph.values[*ids].dtype != DType::I64 {
                            return Err(err("indices must be an integer tensor".into()));
                        }
                        if ds.is_empty() || ds[0] == 0 {
                            return Err(err("the table is empty".into()));
                        }
                        let mut out = self.graph.values[*ids].shape.clone();
                        out.extend(&ds[1..]);
                        let ids = *ids;
                        Ok(self.push(
                            n,
                            name,
                            FOp::Gather {
                                table: table.tensor_f32(),
                            },
                            vec![ids],
                            out,
                            DType::F32,
                        ))
                    }
                    (Val::Act(_), Val::Act(_)) => Err(unsupported(
                        "gathering from an activation with runtime indices",
                    )),
                }
            }
            "Slice" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let (starts, ends, axes, steps) = if self.opset >= 10 {
                    let g = |k: usize| -> Result<Option<Vec<i64>>> {
                        Ok(opt_const(k, "slice operands")?.and_then(|c| c.ints()))
                    };
                    (
                        g(1)?.ok_or_else(|| err("starts required".into()))?,
                        g(2)?.ok_or_else(|| err("ends required".into()))?,
                        g(3)?,
                        g(4)?,
                    )
                } else {
                    (
                        attr_ints(n, "starts").unwrap_or_default(),
                        attr_ints(n, "ends").unwrap_or_default(),
                        attr_ints(n, "axes"),
                        None,
                    )
                };
                let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let mut cur = x;
                let mut cur_shape = s.clone();
                for (j, &a) in axes.iter().enumerate() {
                    let a = norm_axis(a, s.len()).ok_or_else(|| err("axis out of range".into()))?;
                    let d = cur_shape[a] as i64;
                    let step = steps
                        .as_ref()
                        .and_then(|st| st.get(j).copied())
                        .unwrap_or(1);
                    if step == 0 {
                        return Err(err("step 0".into()));
                    }
                    let fix = |v: i64, lo: i64, hi: i64| {
                        let v = if v < 0 { v + d } else { v };
                        v.clamp(lo, hi)
                    };
                    let (st, en) = (
                        starts.get(j).copied().unwrap_or(0),
                        ends.get(j).copied().unwrap_or(i64::MAX),
                    );
                    let indices: Vec<usize> = if step > 0 {
                        let (b, e) = (fix(st, 0, d), fix(en.min(d), 0, d));
                        (b..e).step_by(step as usize).map(|v| v as usize).collect()
                    } else {
                        let (b, e) = (fix(st, -1, d - 1), fix(en.max(-d - 1), -1, d - 1));
                        let mut v = Vec::new();
                        let mut i = b;
                        while i > e {
                            v.push(i as usize);
                            i += step;
                        }
                        v
                    };
                    if indices.is_empty() {
                        return Err(err("slice selects no elements".into()));
                    }
                    if indices.len() as i64 == d && step == 1 {
                        continue;
                    }
                    let spec = CopySpec::Select {
                        in_shape: cur_shape.clone(),
                        axis: a,
                        indices,
                    };
                    let out = spec.natural_shape(&cur_shape);
                    cur = self.copy(n, name, cur, spec, out.clone())?;
                    cur_shape = out;
                }
                Ok(cur)
            }
            "Add" | "Sub" | "Mul" | "Div" => self.arith(n, name, input(0)?, input(1)?),
            "Relu" => self.unary(n, name, input(0)?, FOp::Relu),
            "LeakyRelu" => self.unary(
                n,
                name,
                input(0)?,
                FOp::LeakyRelu {
                    alpha: attr_f(n, "alpha", 0.01),
                },
            ),
            "Sigmoid" => self.unary(n, name, input(0)?, FOp::Lut(LutFn::Sigmoid)),
            "Tanh" => self.unary(n, name, input(0)?, FOp::Lut(LutFn::Tanh)),
            "Clip" => {
                let (lo, hi) = if self.opset >= 11 {
                    let scalar =
                        |c: Option<Const>| c.map(|c| c.floats().first().copied().unwrap_or(0.0));
                    (scalar(opt_const(1, "min")?), scalar(opt_const(2, "max")?))
                } else {
                    (attr(n, "min").map(|a| a.f), attr(n, "max").map(|a| a.f))
                };
                if let (Some(l), Some(h)) = (lo, hi)
                    && l > h
                {
                    return Err(err("min is greater than max".into()));
                }
                self.unary(n, name, input(0)?, FOp::Clip { lo, hi })
            }
            "Softmax" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let default = if self.opset >= 13 { -1 } else { 1 };
                let a = norm_axis(attr_i(n, "axis", default), s.len())
                    .ok_or_else(|| err("axis out of range".into()))?;
                let axes = if self.opset >= 13 {
                    vec![a]
                } else {
                    (a..s.len()).collect()
                };
                self.unary(n, name, x, FOp::Softmax(GroupSpec::Axes { shape: s, axes }))
            }
            "ArgMax" => {
                let x = input(0)?;
                let s = self.shape(&x);
                if attr_i(n, "select_last_index", 0) != 0 {
                    return Err(unsupported("select_last_index = 1"));
                }
                let a = norm_axis(attr_i(n, "axis", 0), s.len())
                    .ok_or_else(|| err("axis out of range".into()))?;
                let out = reduced_shape(&s, &[a], attr_i(n, "keepdims", 1) != 0);
                let id = self.act(&x, name, op)?;
                Ok(self.push(
                    n,
                    name,
                    FOp::ArgMax(GroupSpec::Axes {
                        shape: s,
                        axes: vec![a],
                    }),
                    vec![id],
                    out,
                    DType::I64,
                ))
            }
            "ReduceMean" | "ReduceSum" | "ReduceMax" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let axes_as_input = (op == "ReduceSum" && self.opset >= 13) || self.opset >= 18;
                let axes = if axes_as_input {
                    opt_const(1, "axes operand")?.and_then(|c| c.ints())
                } else {
                    attr_ints(n, "axes")
                };
                let axes = match axes {
                    Some(a) if !a.is_empty() => {
                        let mut v: Vec<usize> = a
                            .iter()
                            .map(|&a| norm_axis(a, s.len()))
                            .collect::<Option<_>>()
                            .ok_or_else(|| err("axis out of range".into()))?;
                        v.sort_unstable();
                        v.dedup();
                        v
                    }
                    _ if attr_i(n, "noop_with_empty_axes", 0) != 0 => return input(0),
                    _ => (0..s.len()).collect(),
                };
                let kind = match op {
                    "ReduceMean" => ReduceKind::Mean,
                    "ReduceSum" => ReduceKind::Sum,
                    _ => ReduceKind::Max,
                };
                let out = reduced_shape(&s, &axes, attr_i(n, "keepdims", 1) != 0);
                self.float_op(
                    n,
                    name,
                    x,
                    FOp::Reduce {
                        kind,
                        groups: GroupSpec::Axes { shape: s, axes },
                    },
                    out,
                )
            }
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = input(0)?;
                let s = self.shape(&x);
                if s.len() < 3 {
                    return Err(err(
                        "input must have rank 3 or more (N, C, spatial...)".into()
                    ));
                }
                let axes: Vec<usize> = (2..s.len()).collect();
                let kind = if op == "GlobalAveragePool" {
                    ReduceKind::Mean
                } else {
                    ReduceKind::Max
                };
                let out = reduced_shape(&s, &axes, true);
                self.float_op(
                    n,
                    name,
                    x,
                    FOp::Reduce {
                        kind,
                        groups: GroupSpec::Axes { shape: s, axes },
                    },
                    out,
                )
            }
            "MaxPool" | "AveragePool" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let (nb, c, h, w) = nchw(&s)
                    .ok_or_else(|| unsupported("pooling over other than 1 or 2 spatial dims"))?;
                let k = attr_ints(n, "kernel_shape")
                    .ok_or_else(|| err("kernel_shape required".into()))?;
                let k2 = spatial2(&k, s.len())
                    .ok_or_else(|| err("kernel_shape has the wrong length".into()))?;
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err(unsupported("dilated pooling"));
                }
                let strides = spatial2(
                    &attr_ints(n, "strides").unwrap_or(vec![1; k.len()]),
                    s.len(),
                )
                .ok_or_else(|| err("strides have the wrong length".into()))?;
                let ceil = attr_i(n, "ceil_mode", 0) != 0;
                if ceil && op == "AveragePool" {
                    return Err(unsupported("ceil_mode = 1 for AveragePool"));
                }
                let (pads, oh, ow) =
                    pads_and_out(n, s.len(), [h, w], k2, strides, [1, 1], ceil).map_err(err)?;
                let p = Pool2d {
                    n: nb,
                    c,
                    h,
                    w,
                    kh: k2[0],
                    kw: k2[1],
                    stride: strides,
                    pad: [pads[0], pads[1]],
                    oh,
                    ow,
                    count_include_pad: attr_i(n, "count_include_pad", 0) != 0,
                };
                let groups = GroupSpec::Pool2d(p);
                if groups.groups().iter().any(|g| g.members.is_empty()) {
                    return Err(err("a pooling window lies entirely in the padding".into()));
                }
                let kind = if op == "MaxPool" {
                    ReduceKind::Max
                } else {
                    ReduceKind::Mean
                };
                let mut out = s.clone();
                let r = out.len();
                out[r - 1] = ow;
                if r == 4 {
                    out[2] = oh;
                }
                self.float_op(n, name, x, FOp::Reduce { kind, groups }, out)
            }
            "Conv" => {
                let x = input(0)?;
                let s = self.shape(&x);
                let wc = const_input(1, "weight")?;
                let b = opt_const(2, "bias")?;
                if attr_i(n, "group", 1) != 1 {
                    return Err(unsupported("grouped convolution (group != 1)"));
                }
                let (nb, c_in, h, w) = nchw(&s).ok_or_else(|| {
                    unsupported("convolution over other than 1 or 2 spatial dims")
                })?;
                if wc.shape.len() != s.len() || wc.shape[1] != c_in {
                    return Err(err(format!(
                        "weight shape {} does not match input shape {}",
                        crate::error::ShapeDisplay(wc.shape.clone()),
                        crate::error::ShapeDisplay(s.clone())
                    )));
                }
                let c_out = wc.shape[0];
                let ks = spatial2(
                    &wc.shape[2..].iter().map(|&d| d as i64).collect::<Vec<_>>(),
                    s.len(),
                )
                .ok_or_else(|| err("bad kernel".into()))?;
                let nsp = s.len() - 2;
                let strides = spatial2(&attr_ints(n, "strides").unwrap_or(vec![1; nsp]), s.len())
                    .ok_or_else(|| err("strides have the wrong length".into()))?;
                let dil = spatial2(&attr_ints(n, "dilations").unwrap_or(vec![1; nsp]), s.len())
                    .ok_or_else(|| err("dilations have the wrong length".into()))?;
                let (pads, oh, ow) =
                    pads_and_out(n, s.len(), [h, w], ks, strides, dil, false).map_err(err)?;
                let geom = LinearGeom::Conv2d(Conv2d {
                    n: nb,
                    c_in,
                    h,
                    w,
                    c_out,
                    kh: ks[0],
                    kw: ks[1],
                    stride: strides,
                    dilation: dil,
                    pad: [pads[0], pads[1]],
                    oh,
                    ow,
                });
                let bias = match b {
                    Some(b) if numel(&b.shape) == c_out => Some(b.floats()),
                    Some(_) => {
                        return Err(err("bias length does not match the output channels".into()));
                    }
                    None => None,
                };
                let mut out = vec![nb, c_out];
                if s.len() == 4 {
                    out.push(oh);
                }
                out.push(ow);
                self.float_op(
                    n,
                    name,
                    x,
                    FOp::Linear {
                        geom,
                        weight: wc.floats(),
                        bias,
                    },
                    out,
                )
            }
            "Gemm" => {
                let a = input(0)?;
                let b = const_input(1, "B operand")?;
                let c = opt_const(2, "C operand")?;
                let alpha = attr_f(n, "alpha", 1.0);
                let beta = attr_f(n, "beta", 1.0);
                if attr_i(n, "transA", 0) != 0 {
                    return Err(unsupported("transA = 1"));
                }
                let s = self.shape(&a);
                if s.len() != 2 || b.shape.len() != 2 {
                    return Err(err("A and B must be matrices".into()));
                }
                let (m, k) = (s[0], s[1]);
                let trans_b = attr_i(n, "transB", 0) != 0;
                let (bk, nn) = if trans_b {
                    (b.shape[1], b.shape[0])
                } else {
                    (b.shape[0], b.shape[1])
                };
                if bk != k {
                    return Err(err(format!(
                        "A is {} but B is {}",
                        crate::error::ShapeDisplay(s.clone()),
                        crate::error::ShapeDisplay(b.shape.clone())
                    )));
                }
                let bf = b.floats();
                let weight: Vec<f32> = (0..k * nn)
                    .map(|i| {
                        let (kk, j) = (i / nn, i % nn);
                        alpha
                            * if trans_b {
                                bf[j * k + kk]
                            } else {
                                bf[kk * nn + j]
                            }
                    })
                    .collect();
                let geom = LinearGeom::MatMul {
                    batch: 1,
                    m,
                    k,
                    n: nn,
                };
                let (bias, extra) = match c {
                    None => (None, None),
                    Some(c) => match per_channel(&c, &[m, nn], 1) {
                        Some(v) => (Some(v.iter().map(|x| x * beta).collect()), None),
                        None => (None, Some(c)),
                    },
                };
                let y =
                    self.float_op(n, name, a, FOp::Linear { geom, weight, bias }, vec![m, nn])?;
                match extra {
                    None => Ok(y),
                    Some(c) => {
                        let mut t = c.tensor_f32();
                        t.data.iter_mut().for_each(|v| *v *= beta);
                        if broadcast_shape(&t.shape, &[m, nn]).as_deref() != Some(&[m, nn][..]) {
                            return Err(err("C does not broadcast to the output".into()));
                        }
                        self.float_op(
                            n,
                            name,
                            y,
                            FOp::Affine {
                                mul: None,
                                add: Some(t),
                            },
                            vec![m, nn],
                        )
                    }
                }
            }
            "MatMul" => {
                let a = input(0)?;
                let b = input(1)?;
                match (&a, &b) {
                    (Val::Act(_), Val::Const(w)) => {
                        let s = self.shape(&a);
                        if w.shape.len() != 2 || s.is_empty() {
                            return Err(unsupported(
                                "batched constant weights (MatMul with B of rank other than 2)",
                            ));
                        }
                        let (k, nn) = (w.shape[0], w.shape[1]);
                        if *s.last().unwrap_or(&0) != k {
                            return Err(err(format!(
                                "inner dimensions differ: {} x {}",
                                crate::error::ShapeDisplay(s.clone()),
                                crate::error::ShapeDisplay(w.shape.clone())
                            )));
                        }
                        let m = if s.len() >= 2 { s[s.len() - 2] } else { 1 };
                        let batch = if s.len() >= 2 {
                            numel(&s[..s.len() - 2])
                        } else {
                            1
                        };
                        let mut out = s[..s.len() - 1].to_vec();
                        out.push(nn);
                        self.float_op(
                            n,
                            name,
                            a,
                            FOp::Linear {
                                geom: LinearGeom::MatMul { batch, m, k, n: nn },
                                weight: w.floats(),
                                bias: None,
                            },
                            out,
                        )
                    }
                    (Val::Const(w), Val::Act(_)) => {
                        let s = self.shape(&b);
                        if w.shape.len() != 2 || s.len() < 2 {
                            return Err(unsupported(
                                "MatMul with a constant A of rank other than 2",
                            ));
                        }
                        let (m, k) = (w.shape[0], w.shape[1]);
                        let r = s.len();
                        if s[r - 2] != k {
                            return Err(err("inner dimensions differ".into()));
                        }
                        let nn = s[r - 1];
                        let mut out = s[..r - 2].to_vec();
                        out.extend([m, nn]);
                        let geom = LinearGeom::MatMulLeft {
                            batch: numel(&s[..r - 2]),
                            m,
                            k,
                            n: nn,
                        };
                        self.float_op(
                            n,
                            name,
                            b,
                            FOp::Linear {
                                geom,
                                weight: w.floats(),
                                bias: None,
                            },
                            out,
                        )
                    }
                    (Val::Act(_), Val::Act(_)) => Err(unsupported("MatMul of two activations")),
                    (Val::Const(_), Val::Const(_)) => Err(unsupported("MatMul of two constants")),
                }
            }
            "BatchNormalization" => {
                let x = input(0)?;
                let s = self.shape(&x);
                if s.len() < 2 {
                    return Err(err("input must have a channel axis".into()));
                }
                let ch = s[1];
                let get = |k: usize, what: &str| -> Result<Vec<f32>> {
                    let c = const_input(k, what)?;
                    if numel(&c.shape) != ch {
                        return Err(AivmError::lowering(
                            name,
                            op,
                            format!("{what} has the wrong length"),
                        ));
                    }
                    Ok(c.floats())
                };
                let (scale, bias, mean, var) = (
                    get(1, "scale")?,
                    get(2, "bias")?,
                    get(3, "mean")?,
                    get(4, "variance")?,
                );
                let eps = attr_f(n, "epsilon", 1e-5);
                let mul: Vec<f32> = (0..ch).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
                let add: Vec<f32> = (0..ch).map(|i| bias[i] - mean[i] * mul[i]).collect();
                let mut cshape = vec![ch];
                cshape.extend(std::iter::repeat_n(1, s.len() - 2));
                self.float_op(
                    n,
                    name,
                    x,
                    FOp::Affine {
                        mul: Some(Tensor::new(cshape.clone(), mul)),
                        add: Some(Tensor::new(cshape, add)),
                    },
                    s,
                )
            }
            "LayerNormalization" => {
                // (x - mean) · rsqrt(var + eps) · scale + bias over the axes from `axis` on:
                // reductions, elementwise ops and one calibrated rsqrt table.
                if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(unsupported("the Mean and InvStdDev outputs"));
                }
                let x = input(0)?;
                let s = self.shape(&x);
                let axis = norm_axis(attr_i(n, "axis", -1), s.len())
                    .ok_or_else(|| err("axis out of range".into()))?;
                let axes: Vec<usize> = (axis..s.len()).collect();
                let inner = s[axis..].to_vec();
                let constant = |c: Option<Const>, what: &str| -> Result<Option<Tensor<f32>>> {
                    let Some(c) = c else { return Ok(None) };
                    let data = c.floats();
                    if data.len() != numel(&inner) {
                        return Err(AivmError::lowering(
                            name,
                            op,
                            format!(
                                "{what} must have the normalized shape {}",
                                crate::error::ShapeDisplay(inner.clone())
                            ),
                        ));
                    }
                    Ok(Some(Tensor::new(inner.clone(), data)))
                };
                let scale = constant(Some(const_input(1, "scale")?), "scale")?;
                let bias = constant(opt_const(2, "bias")?, "bias")?;
                let eps = attr_f(n, "epsilon", 1e-5);
                let xid = self.act(&x, name, op)?;
                if self.graph.values[xid].dtype != DType::F32 {
                    return Err(err("expects a float input, got an integer tensor".into()));
                }
                let out = n.output[0].clone();
                let reduced = reduced_shape(&s, &axes, true);
                let groups = GroupSpec::Axes {
                    shape: s.clone(),
                    axes: axes.clone(),
                };
                let step = |this: &mut Self, part: &str, op: FOp, inputs: Vec<usize>, shape| {
                    let id = this.new_value(&format!("{out}/{part}"), shape, DType::F32);
                    this.graph.nodes.push(Node {
                        name: format!("{name}/{part}"),
                        onnx_op: n.op_type.clone(),
                        op,
                        inputs,
                        output: id,
                    });
                    id
                };
                let mean_op = || FOp::Reduce {
                    kind: ReduceKind::Mean,
                    groups: groups.clone(),
                };
                let mean = step(self, "mean", mean_op(), vec![xid], reduced.clone());
                let d = step(
                    self,
                    "centered",
                    FOp::Binary(BinKind::Sub),
                    vec![xid, mean],
                    s.clone(),
                );
                let d2 = step(
                    self,
                    "squared",
                    FOp::Binary(BinKind::Mul),
                    vec![d, d],
                    s.clone(),
                );
                let var = step(self, "variance", mean_op(), vec![d2], reduced.clone());
                let var_eps = step(
                    self,
                    "variance_eps",
                    FOp::Affine {
                        mul: None,
                        add: Some(Tensor::new(vec![1], vec![eps])),
                    },
                    vec![var],
                    reduced.clone(),
                );
                let inv = step(
                    self,
                    "inv_std",
                    FOp::Lut(LutFn::Rsqrt),
                    vec![var_eps],
                    reduced,
                );
                let normed = step(
                    self,
                    "normalized",
                    FOp::Binary(BinKind::Mul),
                    vec![d, inv],
                    s.clone(),
                );
                Ok(self.push(
                    n,
                    name,
                    FOp::Affine {
                        mul: scale,
                        add: bias,
                    },
                    vec![normed],
                    s,
                    DType::F32,
                ))
            }
            _ => Err(unsupported("")),
        }
    }

    fn act(&self, v: &Val, name: &str, op: &str) -> Result<usize> {
        match v {
            Val::Act(id) => Ok(*id),
            Val::Const(_) => Err(AivmError::lowering(
                name,
                op,
                "constant input where an activation was expected (the node would fold to a constant)",
            )),
        }
    }

    /// Adds a node whose input must be a float activation.
    fn float_op(
        &mut self,
        n: &NodeProto,
        name: &str,
        x: Val,
        op: FOp,
        out: Vec<usize>,
    ) -> Result<Val> {
        let id = self.act(&x, name, &n.op_type)?;
        if self.graph.values[id].dtype != DType::F32 {
            return Err(AivmError::lowering(
                name,
                &n.op_type,
                "expects a float input, got an integer tensor",
            ));
        }
        Ok(self.push(n, name, op, vec![id], out, DType::F32))
    }

    fn unary(&mut self, n: &NodeProto, name: &str, x: Val, op: FOp) -> Result<Val> {
        let s = self.shape(&x);
        self.float_op(n, name, x, op, s)
    }

    /// Data movement; folded when the input is a constant.
    fn copy(
        &mut self,
        n: &NodeProto,
        name: &str,
        x: Val,
        spec: CopySpec,
        out: Vec<usize>,
    ) -> Result<Val> {
        let in_len = numel(&self.shape(&x));
        if numel(&out) != spec.sources(in_len).len() {
            return Err(AivmError::lowering(
                name,
                &n.op_type,
                "output size does not match input size",
            ));
        }
        match x {
            Val::Const(c) => {
                let data = match &c.data {
                    CData::F(v) => CData::F(copy::apply(&spec, &[v.as_slice()])),
                    CData::I(v) => CData::I(copy::apply(&spec, &[v.as_slice()])),
                };
                Ok(Val::Const(Const { shape: out, data }))
            }
            Val::Act(id) => {
                let dt = self.graph.values[id].dtype;
                Ok(self.push(n, name, FOp::Copy(spec), vec![id], out, dt))
            }
        }
    }

    fn arith(&mut self, n: &NodeProto, name: &str, a: Val, b: Val) -> Result<Val> {
        let op = n.op_type.as_str();
        let (sa, sb) = (self.shape(&a), self.shape(&b));
        let out = broadcast_shape(&sa, &sb).ok_or_else(|| {
            AivmError::lowering(
                name,
                op,
                format!(
                    "shapes {} and {} do not broadcast",
                    crate::error::ShapeDisplay(sa.clone()),
                    crate::error::ShapeDisplay(sb.clone())
                ),
            )
        })?;
        let unsupported = |detail: &str| AivmError::Unsupported {
            op: op.to_string(),
            node: name.to_string(),
            detail: detail.to_string(),
            supported: SUPPORTED_OPS.join(", "),
        };
        match (&a, &b) {
            (Val::Const(x), Val::Const(y)) => Ok(Val::Const(const_arith(op, x, y, out))),
            (Val::Act(_), Val::Act(_)) => {
                let kind = match op {
                    "Add" => BinKind::Add,
                    "Sub" => BinKind::Sub,
                    "Mul" => BinKind::Mul,
                    _ => return Err(unsupported("division by an activation")),
                };
                let (ia, ib) = (self.act(&a, name, op)?, self.act(&b, name, op)?);
                if self.graph.values[ia].dtype != DType::F32
                    || self.graph.values[ib].dtype != DType::F32
                {
                    return Err(AivmError::lowering(name, op, "expects float inputs"));
                }
                Ok(self.push(n, name, FOp::Binary(kind), vec![ia, ib], out, DType::F32))
            }
            (Val::Act(_), Val::Const(c)) | (Val::Const(c), Val::Act(_)) => {
                let act_first = matches!(a, Val::Act(_));
                let x = if act_first { a.clone() } else { b.clone() };
                if self.shape(&x) != out {
                    return Err(unsupported(
                        "a constant operand that enlarges the activation by broadcasting",
                    ));
                }
                let t = c.tensor_f32();
                let neg = |t: &Tensor<f32>| {
                    Tensor::new(t.shape.clone(), t.data.iter().map(|v| -v).collect())
                };
                let fop = match (op, act_first) {
                    ("Add", _) => FOp::Affine {
                        mul: None,
                        add: Some(t),
                    },
                    ("Sub", true) => FOp::Affine {
                        mul: None,
                        add: Some(neg(&t)),
                    },
                    ("Sub", false) => FOp::Affine {
                        mul: Some(Tensor::new(vec![], vec![-1.0])),
                        add: Some(t),
                    },
                    ("Mul", _) => FOp::Affine {
                        mul: Some(t),
                        add: None,
                    },
                    ("Div", true) => {
                        if t.data.contains(&0.0) {
                            return Err(AivmError::lowering(
                                name,
                                op,
                                "division by a constant zero",
                            ));
                        }
                        FOp::Affine {
                            mul: Some(Tensor::new(
                                t.shape.clone(),
                                t.data.iter().map(|v| 1.0 / v).collect(),
                            )),
                            add: None,
                        }
                    }
                    _ => return Err(unsupported("division by an activation")),
                };
                self.float_op(n, name, x, fop, out)
            }
        }
    }
}

fn const_arith(op: &str, x: &Const, y: &Const, out: Vec<usize>) -> Const {
    let (mx, my) = (broadcast_map(&x.shape, &out), broadcast_map(&y.shape, &out));
    let data = match (&x.data, &y.data) {
        (CData::I(a), CData::I(b)) => CData::I(
            mx.iter()
                .zip(&my)
                .map(|(&i, &j)| match op {
                    "Add" => a[i].wrapping_add(b[j]),
                    "Sub" => a[i].wrapping_sub(b[j]),
                    "Mul" => a[i].wrapping_mul(b[j]),
                    _ => a[i].checked_div(b[j]).unwrap_or(0),
                })
                .collect(),
        ),
        _ => {
            let (a, b) = (x.floats(), y.floats());
            CData::F(
                mx.iter()
                    .zip(&my)
                    .map(|(&i, &j)| match op {
                        "Add" => a[i] + b[j],
                        "Sub" => a[i] - b[j],
                        "Mul" => a[i] * b[j],
                        _ => a[i] / b[j],
                    })
                    .collect(),
            )
        }
    };
    Const { shape: out, data }
}

fn concat_consts(spec: &CopySpec, cs: &[Const], out: Vec<usize>) -> Const {
    let data = if cs.iter().all(|c| matches!(c.data, CData::I(_))) {
        let v: Vec<Vec<i64>> = cs.iter().map(|c| c.ints().unwrap_or_default()).collect();
        let r: Vec<&[i64]> = v.iter().map(|x| x.as_slice()).collect();
        CData::I(copy::apply(spec, &r))
    } else {
        let v: Vec<Vec<f32>> = cs.iter().map(|c| c.floats()).collect();
        let r: Vec<&[f32]> = v.iter().map(|x| x.as_slice()).collect();
        CData::F(copy::apply(spec, &r))
    };
    Const { shape: out, data }
}

/// ONNX Reshape target: 0 copies the input dim (unless `allowzero`), one -1 is inferred.
fn reshape_target(
    in_shape: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> std::result::Result<Vec<usize>, String> {
    let total = numel(in_shape);
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*in_shape.get(i).ok_or("0 refers past the input's rank")?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err("invalid shape operand".into()),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("shape overflows")?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {} elements to {:?}", total, spec));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {} elements to {:?}", total, spec));
    }
    Ok(out)
}

fn reduced_shape(s: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    s.iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keepdims.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

/// (N, C, H, W) of a rank-4 tensor, or of a rank-3 one read as H = 1.
fn nchw(s: &[usize]) -> Option<(usize, usize, usize, usize)> {
    match s.len() {
        4 => Some((s[0], s[1], s[2], s[3])),
        3 => Some((s[0], s[1], 1, s[2])),
        _ => None,
    }
}

/// Two spatial values for a rank-4 (H, W) or rank-3 (1, L) tensor.
fn spatial2(v: &[i64], rank: usize) -> Option<[usize; 2]> {
    let ok = |x: i64| usize::try_from(x).ok().filter(|&x| x > 0);
    match (rank, v) {
        (4, [a, b]) => Some([ok(*a)?, ok(*b)?]),
        (3, [a]) => Some([1, ok(*a)?]),
        _ => None,
    }
}

/// Padding (top, left) and output size from `pads` / `auto_pad`.
fn pads_and_out(
    n: &NodeProto,
    rank: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    dil: [usize; 2],
    ceil: bool,
) -> std::result::Result<([usize; 2], usize, usize), String> {
    let auto = attr_s(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    let mut pb = [0usize; 4]; // top, left, bottom, right
    match auto.as_str() {
        "NOTSET" | "" => {
            if let Some(p) = attr_ints(n, "pads") {
                let p: Vec<usize> = p
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| "negative padding".to_string()))
                    .collect::<std::result::Result<_, _>>()?;
                match (rank, p.as_slice()) {
                    (4, [t, l, b, r]) => pb = [*t, *l, *b, *r],
                    (3, [l, r]) => pb = [0, *l, 0, *r],
                    _ => return Err("pads have the wrong length".into()),
                }
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for i in 0..2 {
                let out = hw[i].div_ceil(stride[i]);
                let need = ((out - 1) * stride[i] + dil[i] * (k[i] - 1) + 1).saturating_sub(hw[i]);
                let (a, b) = if auto == "SAME_UPPER" {
                    (need / 2, need - need / 2)
                } else {
                    (need - need / 2, need / 2)
                };
                pb[i] = a;
                pb[i + 2] = b;
            }
        }
        other => return Err(format!("auto_pad {other} is not supported")),
    }
    let out = |i: usize| -> std::result::Result<usize, String> {
        let span = dil[i] * (k[i] - 1) + 1;
        let padded = hw[i] + pb[i] + pb[i + 2];
        if padded < span {
            return Err("the kernel is larger than the padded input".into());
        }
        let q = padded - span;
        Ok(if ceil {
            q.div_ceil(stride[i])
        } else {
            q / stride[i]
        } + 1)
    };
    Ok(([pb[0], pb[1]], out(0)?, out(1)?))
}

/// The per-channel vector of a constant that broadcasts onto `out_shape` and varies only along
/// `axis`, or `None`.
fn per_channel(c: &Const, out_shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    per_channel_t(&c.tensor_f32(), out_shape, axis)
}

fn per_channel_t(t: &Tensor<f32>, out_shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    let b = broadcast_shape(&t.shape, out_shape)?;
    if b != out_shape {
        return None;
    }
    let map = broadcast_map(&t.shape, out_shape);
    let st = crate::tensor::strides(out_shape);
    let ch = out_shape[axis];
    let mut v = vec![f32::NAN; ch];
    for (o, &src) in map.iter().enumerate() {
        let c = (o / st[axis]) % ch;
        let x = t.data[src];
        if v[c].is_nan() {
            v[c] = x;
        } else if v[c] != x {
            return None;
        }
    }
    Some(v)
}

/// Folds an Affine that follows a Linear (BatchNormalization after Conv, a bias Add after
/// MatMul, a constant scale) into the Linear's weights and bias, when the Linear's output feeds
/// nothing else and the constants are per output channel.
fn fuse(g: &mut Graph) {
    let mut i = 0;
    while i + 1 < g.nodes.len() {
        let lin_out = g.nodes[i].output;
        let uses = g
            .nodes
            .iter()
            .filter(|n| n.inputs.contains(&lin_out))
            .count();
        let next = &g.nodes[i + 1];
        let fusable = uses == 1
            && !g.outputs.contains(&lin_out)
            && next.inputs == [lin_out]
            && matches!(g.nodes[i].op, FOp::Linear { .. })
            && matches!(next.op, FOp::Affine { .. });
        if fusable {
            let out_shape = g.values[next.output].shape.clone();
            let (geom, ..) = match &g.nodes[i].op {
                FOp::Linear { geom, weight, bias } => (geom.clone(), weight, bias),
                _ => unreachable!(),
            };
            let axis = match &geom {
                LinearGeom::MatMul { .. } => out_shape.len() - 1,
                LinearGeom::MatMulLeft { .. } => out_shape.len().saturating_sub(2),
                LinearGeom::Conv2d(_) => 1,
            };
            let (mul, add) = match &next.op {
                FOp::Affine { mul, add } => (mul.clone(), add.clone()),
                _ => unreachable!(),
            };
            let pm = mul.as_ref().map(|m| per_channel_t(m, &out_shape, axis));
            let pa = add.as_ref().map(|a| per_channel_t(a, &out_shape, axis));
            if !matches!(pm, Some(None)) && !matches!(pa, Some(None)) {
                let ch = geom.channels();
                let pm = pm.flatten().unwrap_or(vec![1.0; ch]);
                let pa = pa.flatten().unwrap_or(vec![0.0; ch]);
                let next = g.nodes.remove(i + 1);
                if let FOp::Linear { geom, weight, bias } = &mut g.nodes[i].op {
                    for wi in 0..weight.len() {
                        weight[wi] *= pm[weight_channel(geom, wi)];
                    }
                    let b = bias.get_or_insert_with(|| vec![0.0; ch]);
                    for c in 0..ch {
                        b[c] = b[c] * pm[c] + pa[c];
                    }
                }
                // The fused node takes over the Affine's output value and a combined name.
                let lin = &mut g.nodes[i];
                lin.output = next.output;
                lin.name = format!("{}+{}", lin.name, next.name);
                lin.onnx_op = format!("{}+{}", lin.onnx_op, next.onnx_op);
                continue;
            }
        }
        i += 1;
    }
}

fn weight_channel(geom: &LinearGeom, wi: usize) -> usize {
    match geom {
        LinearGeom::MatMul { n, .. } => wi % n,
        LinearGeom::MatMulLeft { k, .. } => wi / k,
        LinearGeom::Conv2d(c) => wi / (c.c_in * c.kh * c.kw),
    }
}
