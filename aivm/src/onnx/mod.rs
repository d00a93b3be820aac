//! ONNX import: the guard every file passes first ([`guard`]), the one reader of declared
//! inputs and outputs ([`value_info`]), and the lowering of a guarded graph to the AIVM float
//! graph ([`crate::ir::Graph`]).
//!
//! The lowering reads the ONNX protobuf itself rather than tract's decluttered graph: the
//! program's meaning (and so the model id) must not change when tract's rewrite rules do, and
//! errors must name the user's ONNX nodes. Shape arithmetic that exporters leave in the graph
//! (Shape → Gather → Concat → Reshape) is folded to constants here. tract stays the independent
//! float reference (see [`crate::reference`]).
//!
//! Each ONNX op is lowered by the op family it becomes (`ops/<family>.rs`, its `ONNX` list);
//! ops that only fold constants or pass values through ([`structural`]) and composites built
//! from several families ([`layer_norm`]) live here. [`supported_ops`] is derived from them.

use std::collections::HashMap;

use crate::error::{AivmError, Result};
use crate::ir::{DType, Graph};

pub mod attrs;
pub mod cx;
pub mod fuse;
pub mod guard;
pub mod layer_norm;
pub mod pipeline;
pub mod structural;
pub mod value_info;

pub use cx::{CData, Const, Cx, NodeIn, Val};
pub use guard::{GuardLimits, GuardedModel};

/// Lowers one ONNX node to graph nodes (or a folded constant); returns the node's output value.
pub type Lowering = fn(&mut Cx, &NodeIn) -> Result<Val>;

/// The ONNX ops that belong to no op family: constants, shape arithmetic, pass-throughs, and
/// composites of several families.
const OWN: &[(&str, Lowering)] = &[
    ("Cast", structural::cast),
    ("Constant", structural::constant),
    ("Dropout", structural::identity),
    ("Identity", structural::identity),
    ("LayerNormalization", layer_norm::lower),
    ("Shape", structural::shape),
];

/// Every ONNX op with its lowering.
fn lowerings() -> impl Iterator<Item = &'static (&'static str, Lowering)> {
    crate::ops::ONNX_FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .chain(OWN)
}

/// The lowering of an ONNX op, if the AIVM supports it.
pub fn lowering(op: &str) -> Option<Lowering> {
    lowerings().find(|(name, _)| *name == op).map(|&(_, l)| l)
}

/// The ONNX ops the AIVM accepts, sorted (the order error messages list them in).
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = lowerings().map(|&(name, _)| name).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Options of the import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Values of symbolic dimensions (e.g. `batch_size`); unnamed or unlisted ones are 1.
    pub dims: HashMap<String, usize>,
    /// Exact input shapes by input name; override the declared ones (dims must agree where fixed).
    pub input_shapes: HashMap<String, Vec<usize>>,
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
        let c = cx::read_tensor(t).map_err(|reason| {
            AivmError::Guard(guard::Refusal::Initializer {
                name: t.name.clone(),
                reason,
            })
        })?;
        cx.env.insert(t.name.clone(), Val::Const(c));
    }
    for vi in value_info::runtime_inputs(g) {
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
        let out = node(&mut cx, n, &name)?;
        if let Some(o) = n.output.first() {
            cx.env.insert(o.clone(), out);
        }
    }
    for vo in &g.output {
        let id = match cx.env.get(&vo.name) {
            Some(Val::Act(id)) => *id,
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
        };
        if cx.graph.outputs.contains(&id) || cx.graph.inputs.contains(&id) {
            return Err(AivmError::Parse(format!(
                "output \"{}\" repeats another input or output; not supported",
                vo.name
            )));
        }
        cx.graph.values[id].name = vo.name.clone();
        cx.graph.outputs.push(id);
    }
    fuse::fuse(&mut cx.graph);
    Ok(cx.graph)
}

/// Lowers one node with its op's lowering.
fn node(cx: &mut Cx, n: &onnx_protobuf::NodeProto, name: &str) -> Result<Val> {
    let op = n.op_type.as_str();
    let Some(lower) = lowering(op) else {
        return Err(AivmError::Unsupported {
            op: op.to_string(),
            node: name.to_string(),
            detail: String::new(),
            supported: supported_ops().join(", "),
        });
    };
    // Inputs; an empty name marks an omitted optional input.
    let mut ins: Vec<Option<Val>> = Vec::with_capacity(n.input.len());
    for i in &n.input {
        if i.is_empty() {
            ins.push(None);
        } else {
            let v = cx.env.get(i).cloned().ok_or_else(|| {
                AivmError::lowering(
                    name,
                    op,
                    format!("input \"{i}\" is not defined before this node"),
                )
            })?;
            ins.push(Some(v));
        }
    }
    let view = NodeIn {
        proto: n,
        name,
        op,
        ins,
        opset: cx.opset,
    };
    lower(cx, &view)
}

/// The shape and element type of a runtime input: the declared ones with symbolic dims
/// resolved, or the shape the caller gave (which must fit the declared fixed dims).
fn input_info(
    vi: &onnx_protobuf::ValueInfoProto,
    opts: &ImportOptions,
) -> Result<(Vec<usize>, DType)> {
    let bad = |reason: String| AivmError::Input {
        name: vi.name.clone(),
        reason,
    };
    let Some(declared) = value_info::decode(vi) else {
        return Err(bad("only tensor inputs are supported".into()));
    };
    let Some(dtype) = declared.dtype() else {
        return Err(bad(format!(
            "element type {} is not supported (use float32 or int64)",
            declared.elem_type
        )));
    };
    if let Some(given) = opts.input_shapes.get(&vi.name) {
        let fixed_ok = declared.dims.as_ref().is_some_and(|dims| {
            dims.len() == given.len()
                && dims
                    .iter()
                    .zip(given)
                    .all(|(d, &g)| d.fixed().is_none_or(|f| f == g))
        });
        if !fixed_ok {
            return Err(bad(format!(
                "shape {} does not fit the model's declared shape",
                crate::error::ShapeDisplay(given.clone())
            )));
        }
        return Ok((given.clone(), dtype));
    }
    Ok((declared.resolve(&opts.dims), dtype))
}
