//! Guards that every ONNX file passes before any ONNX library interprets it.
//!
//! tract panics or aborts on some crafted files (negative dims, a `ConstantOfShape` of billions of
//! elements), and a node process must not die on a model uploaded by a stranger. The guards parse
//! the protobuf with `onnx-protobuf` only and check, with overflow-checked arithmetic, everything
//! that decides how much memory loading could take. They never allocate in proportion to a number
//! read from the file before that number has been checked.

use onnx_protobuf::{GraphProto, Message, ModelProto, NodeProto, TensorProto, tensor_proto};
use protobuf::Enum;
use std::collections::HashMap;
use std::path::Path;

use super::value_info::{self, Declared, Dim};
use crate::error::{AivmError, Result};

/// Why the guards refuse a model: a limit it exceeds or a construct they do not accept, named
/// by the node, attribute or tensor it is in (never by values).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("file is {len} bytes, more than the {max}-byte limit")]
    FileSize { len: u64, max: u64 },
    #[error("graphs are nested too deeply")]
    NestedTooDeeply,
    #[error("the model has more than {max} nodes")]
    Nodes { max: usize },
    #[error("the model imports no default-domain (ai.onnx) opset")]
    NoOpset,
    #[error("opset {opset} is outside the supported range {min}..={max}")]
    Opset { opset: i64, min: i64, max: i64 },
    #[error("subgraphs are nested more than {max} deep")]
    Depth { max: usize },
    #[error("sparse initializers are not supported")]
    SparseInitializer,
    #[error("node \"{node}\" ({op}) uses the custom domain \"{domain}\"")]
    CustomDomain {
        node: String,
        op: String,
        domain: String,
    },
    #[error("{what}: sparse tensors are not supported")]
    SparseAttribute { what: String },
    #[error("{what} is too large")]
    LargeAttribute { what: String },
    #[error("node \"{node}\" ({op}): its shape operand is not an integer tensor")]
    ShapeOperand { node: String, op: String },
    #[error("node \"{node}\" ({op}) has a negative dimension in its shape operand")]
    NegativeShapeOperand { node: String, op: String },
    #[error("node \"{node}\" ({op}) would create {elems} elements, more than the limit of {max}")]
    Creates {
        node: String,
        op: String,
        elems: u64,
        max: u64,
    },
    #[error("{what} has rank {rank}, more than {max}")]
    Rank {
        what: String,
        rank: usize,
        max: usize,
    },
    #[error("\"{name}\" declares a negative dimension")]
    DeclaredNegative { name: String },
    #[error("\"{name}\" declares {elems} elements, more than the limit of {max}")]
    DeclaredElems { name: String, elems: u64, max: u64 },
    #[error("{what} refers to external data; only self-contained models are accepted")]
    ExternalData { what: String },
    #[error("{what} is a segmented tensor")]
    Segmented { what: String },
    #[error("{what} has a negative dimension")]
    NegativeDim { what: String },
    #[error("{what} has {elems} elements, more than the limit of {max}")]
    TensorElems { what: String, elems: u64, max: u64 },
    #[error("constant tensors hold more than {max} elements in total")]
    TotalElems { max: u64 },
    #[error("{what}: data length does not match its dims {dims:?}")]
    DataLength { what: String, dims: Vec<i64> },
    #[error("initializer \"{name}\": {reason}")]
    Initializer { name: String, reason: String },
}

/// Limits enforced by [`guard_bytes`]. The defaults fit the small and mid-size models lightchain
/// targets with room to spare.
#[derive(Clone, Debug)]
pub struct GuardLimits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Most nodes over the main graph and all subgraphs.
    pub max_nodes: usize,
    /// Most elements in any one tensor (initializer, constant, declared input or created shape).
    pub max_tensor_elems: u64,
    /// Most elements over all constant tensors together.
    pub max_total_elems: u64,
    /// Largest tensor rank.
    pub max_rank: usize,
    /// Deepest nesting of subgraphs (If/Loop bodies); the main graph is depth 0.
    pub max_graph_depth: usize,
    /// Accepted range of the default-domain opset. 28 is ONNX 1.23's; from 23 to 28 the
    /// supported ops changed only by new element types (float4/float6/float8e8m0/int2, all
    /// refused) and Cast's `round_mode`, which applies only to float8e8m0 targets.
    pub opset: (i64, i64),
}

impl Default for GuardLimits {
    fn default() -> Self {
        GuardLimits {
            max_file_bytes: 64 << 20,
            max_nodes: 20_000,
            max_tensor_elems: 1 << 24,
            max_total_elems: 1 << 25,
            max_rank: 8,
            max_graph_depth: 4,
            opset: (7, 28),
        }
    }
}

/// A model that passed the guards: the parsed protobuf, its file bytes and the default-domain opset.
#[derive(Clone, Debug)]
pub struct GuardedModel {
    pub proto: ModelProto,
    pub bytes: Vec<u8>,
    pub opset: i64,
}

/// Reads and guards a file, checking its size before reading it.
pub fn guard_file(path: &Path, limits: &GuardLimits) -> Result<GuardedModel> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AivmError::io(format!("cannot read {}", path.display()), e))?;
    if meta.len() > limits.max_file_bytes {
        return Err(too_big(meta.len(), limits.max_file_bytes));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| AivmError::io(format!("cannot read {}", path.display()), e))?;
    guard_bytes(bytes, limits)
}

fn too_big(len: u64, max: u64) -> AivmError {
    AivmError::Guard(Refusal::FileSize { len, max })
}

/// Parses and checks an ONNX model held in memory.
pub fn guard_bytes(bytes: Vec<u8>, limits: &GuardLimits) -> Result<GuardedModel> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_big(bytes.len() as u64, limits.max_file_bytes));
    }
    prescan_node_count(&bytes, limits.max_nodes)?;
    // rust-protobuf enforces a recursion limit of 100 while parsing, so deeply nested graphs
    // are an error here rather than a stack overflow.
    let proto = ModelProto::parse_from_bytes(&bytes).map_err(|e| {
        let msg = e.to_string();
        if msg.to_lowercase().contains("recursion") {
            AivmError::Guard(Refusal::NestedTooDeeply)
        } else {
            AivmError::Parse(msg)
        }
    })?;
    let opset = check_opsets(&proto, limits)?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| AivmError::Parse("the model has no graph".into()))?;
    let mut walk = Walk {
        limits,
        nodes: 0,
        total_elems: 0,
    };
    walk.graph(graph, 0)?;
    Ok(GuardedModel {
        proto,
        bytes,
        opset,
    })
}

/// Counts the main graph's nodes on the wire, before parsing: a file within the size limit can
/// still hold millions of tiny nodes, and materialising them would take gigabytes.
fn prescan_node_count(bytes: &[u8], max_nodes: usize) -> Result<()> {
    let malformed = || AivmError::Parse("malformed protobuf".into());
    let mut nodes = 0usize;
    for (field, body) in WireFields::new(bytes) {
        let body = body.ok_or_else(malformed)?;
        if field == 7 {
            // ModelProto.graph
            for (gfield, gbody) in WireFields::new(body) {
                gbody.ok_or_else(malformed)?;
                if gfield == 1 {
                    nodes += 1;
                    if nodes > max_nodes {
                        return Err(AivmError::Guard(Refusal::Nodes { max: max_nodes }));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Iterates the top-level fields of a protobuf message: `(field number, payload)`, where the
/// payload of a length-delimited field is its bytes and `None` marks a malformed field (the
/// iteration stops after it).
struct WireFields<'a> {
    b: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> WireFields<'a> {
    fn new(b: &'a [u8]) -> Self {
        WireFields {
            b,
            pos: 0,
            done: false,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn field(&mut self) -> Option<(u64, &'a [u8])> {
        let tag = self.varint()?;
        let start = self.pos;
        match tag & 7 {
            0 => {
                self.varint()?;
            }
            1 => self.pos = self.pos.checked_add(8)?,
            5 => self.pos = self.pos.checked_add(4)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let start = self.pos;
                self.pos = self.pos.checked_add(len)?;
                if self.pos > self.b.len() {
                    return None;
                }
                return Some((tag >> 3, &self.b[start..self.pos]));
            }
            _ => return None,
        }
        if self.pos > self.b.len() {
            return None;
        }
        Some((tag >> 3, &self.b[start..self.pos]))
    }
}

impl<'a> Iterator for WireFields<'a> {
    type Item = (u64, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.b.len() {
            return None;
        }
        match self.field() {
            Some((f, body)) => Some((f, Some(body))),
            None => {
                self.done = true;
                Some((0, None))
            }
        }
    }
}

fn check_opsets(proto: &ModelProto, limits: &GuardLimits) -> Result<i64> {
    let mut opset = None;
    for o in &proto.opset_import {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            opset = Some(o.version);
        }
    }
    let Some(v) = opset else {
        return Err(AivmError::Guard(Refusal::NoOpset));
    };
    if v < limits.opset.0 || v > limits.opset.1 {
        return Err(AivmError::Guard(Refusal::Opset {
            opset: v,
            min: limits.opset.0,
            max: limits.opset.1,
        }));
    }
    Ok(v)
}

struct Walk<'a> {
    limits: &'a GuardLimits,
    nodes: usize,
    total_elems: u64,
}

impl Walk<'_> {
    fn graph(&mut self, g: &GraphProto, depth: usize) -> Result<()> {
        if depth > self.limits.max_graph_depth {
            return Err(AivmError::Guard(Refusal::Depth {
                max: self.limits.max_graph_depth,
            }));
        }
        if !g.sparse_initializer.is_empty() {
            return Err(AivmError::Guard(Refusal::SparseInitializer));
        }
        for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
            self.value_info(vi)?;
        }
        // Constant tensors by name, to check the shape operand of ConstantOfShape.
        let mut consts: HashMap<&str, &TensorProto> = HashMap::new();
        for t in &g.initializer {
            self.tensor(t, &format!("initializer \"{}\"", t.name))?;
            consts.insert(t.name.as_str(), t);
        }
        self.nodes = self.nodes.saturating_add(g.node.len());
        if self.nodes > self.limits.max_nodes {
            return Err(AivmError::Guard(Refusal::Nodes {
                max: self.limits.max_nodes,
            }));
        }
        for n in &g.node {
            if !(n.domain.is_empty() || n.domain == "ai.onnx") {
                return Err(AivmError::Guard(Refusal::CustomDomain {
                    node: n.name.clone(),
                    op: n.op_type.clone(),
                    domain: n.domain.clone(),
                }));
            }
            for a in &n.attribute {
                let what = format!("attribute \"{}\" of node \"{}\"", a.name, n.name);
                if let Some(t) = a.t.as_ref() {
                    self.tensor(t, &what)?;
                    if n.op_type == "Constant"
                        && let Some(out) = n.output.first()
                    {
                        consts.insert(out.as_str(), t);
                    }
                }
                for t in &a.tensors {
                    self.tensor(t, &what)?;
                }
                if a.sparse_tensor.is_some() || !a.sparse_tensors.is_empty() {
                    return Err(AivmError::Guard(Refusal::SparseAttribute { what }));
                }
                if a.ints.len() as u64 > self.limits.max_tensor_elems
                    || a.floats.len() as u64 > self.limits.max_tensor_elems
                {
                    return Err(AivmError::Guard(Refusal::LargeAttribute { what }));
                }
                if let Some(sub) = a.g.as_ref() {
                    self.graph(sub, depth + 1)?;
                }
                for sub in &a.graphs {
                    self.graph(sub, depth + 1)?;
                }
            }
            self.created_shape(n, &consts)?;
        }
        Ok(())
    }

    /// Ops whose output size is given by a tensor operand: check the size they would create.
    fn created_shape(&self, n: &NodeProto, consts: &HashMap<&str, &TensorProto>) -> Result<()> {
        let operand = match n.op_type.as_str() {
            "ConstantOfShape" | "Expand" => n.input.first(),
            "Tile" | "Reshape" => n.input.get(1),
            _ => None,
        };
        let Some(t) = operand.and_then(|name| consts.get(name.as_str())) else {
            return Ok(());
        };
        let dims = int_values(t).ok_or_else(|| {
            AivmError::Guard(Refusal::ShapeOperand {
                node: n.name.clone(),
                op: n.op_type.clone(),
            })
        })?;
        if n.op_type == "Reshape" {
            // Reshape may use 0 and -1; its size is bounded by its input, which is checked elsewhere.
            return Ok(());
        }
        let mut elems: u64 = 1;
        for &d in &dims {
            let d = u64::try_from(d).map_err(|_| {
                AivmError::Guard(Refusal::NegativeShapeOperand {
                    node: n.name.clone(),
                    op: n.op_type.clone(),
                })
            })?;
            elems = elems.saturating_mul(d);
        }
        if elems > self.limits.max_tensor_elems {
            return Err(AivmError::Guard(Refusal::Creates {
                node: n.name.clone(),
                op: n.op_type.clone(),
                elems,
                max: self.limits.max_tensor_elems,
            }));
        }
        Ok(())
    }

    fn value_info(&self, vi: &onnx_protobuf::ValueInfoProto) -> Result<()> {
        let Some(Declared {
            dims: Some(dims), ..
        }) = value_info::decode(vi)
        else {
            return Ok(());
        };
        if dims.len() > self.limits.max_rank {
            return Err(AivmError::Guard(Refusal::Rank {
                what: format!("\"{}\"", vi.name),
                rank: dims.len(),
                max: self.limits.max_rank,
            }));
        }
        let mut elems: u64 = 1;
        for d in &dims {
            if let Dim::Value(v) = *d {
                let v = u64::try_from(v).map_err(|_| {
                    AivmError::Guard(Refusal::DeclaredNegative {
                        name: vi.name.clone(),
                    })
                })?;
                elems = elems.saturating_mul(v);
            }
        }
        if elems > self.limits.max_tensor_elems {
            return Err(AivmError::Guard(Refusal::DeclaredElems {
                name: vi.name.clone(),
                elems,
                max: self.limits.max_tensor_elems,
            }));
        }
        Ok(())
    }

    fn tensor(&mut self, t: &TensorProto, what: &str) -> Result<()> {
        if !t.external_data.is_empty()
            || t.data_location.value() == tensor_proto::DataLocation::EXTERNAL as i32
        {
            return Err(AivmError::Guard(Refusal::ExternalData {
                what: what.into(),
            }));
        }
        if t.segment.is_some() {
            return Err(AivmError::Guard(Refusal::Segmented { what: what.into() }));
        }
        if t.dims.len() > self.limits.max_rank {
            return Err(AivmError::Guard(Refusal::Rank {
                what: what.into(),
                rank: t.dims.len(),
                max: self.limits.max_rank,
            }));
        }
        let mut elems: u64 = 1;
        for &d in &t.dims {
            let d = u64::try_from(d)
                .map_err(|_| AivmError::Guard(Refusal::NegativeDim { what: what.into() }))?;
            elems = elems.saturating_mul(d);
        }
        if elems > self.limits.max_tensor_elems {
            return Err(AivmError::Guard(Refusal::TensorElems {
                what: what.into(),
                elems,
                max: self.limits.max_tensor_elems,
            }));
        }
        self.total_elems = self.total_elems.saturating_add(elems);
        if self.total_elems > self.limits.max_total_elems {
            return Err(AivmError::Guard(Refusal::TotalElems {
                max: self.limits.max_total_elems,
            }));
        }
        let stored = stored_len(t);
        if let Some((len, elem_bytes)) = stored
            && len != elems.saturating_mul(elem_bytes)
        {
            return Err(AivmError::Guard(Refusal::DataLength {
                what: what.into(),
                dims: t.dims.clone(),
            }));
        }
        Ok(())
    }
}

/// Size in bytes (raw data) or elements (typed fields) a tensor stores, with the unit size.
fn stored_len(t: &TensorProto) -> Option<(u64, u64)> {
    use tensor_proto::DataType as D;
    let dt = D::from_i32(t.data_type)?;
    let elem_bytes = match dt {
        D::FLOAT | D::INT32 | D::UINT32 => 4,
        D::DOUBLE | D::INT64 | D::UINT64 => 8,
        D::INT8 | D::UINT8 | D::BOOL => 1,
        D::INT16 | D::UINT16 | D::FLOAT16 | D::BFLOAT16 => 2,
        _ => return None,
    };
    if !t.raw_data.is_empty() {
        return Some((t.raw_data.len() as u64, elem_bytes));
    }
    let n = match dt {
        D::FLOAT => t.float_data.len(),
        D::DOUBLE => t.double_data.len(),
        D::INT64 => t.int64_data.len(),
        D::UINT64 | D::UINT32 => t.uint64_data.len(),
        _ => t.int32_data.len(),
    };
    Some((n as u64, 1))
}

/// Integer values of a small int32/int64 tensor (shape operands), read without `as_value`.
pub(crate) fn int_values(t: &TensorProto) -> Option<Vec<i64>> {
    use tensor_proto::DataType as D;
    match D::from_i32(t.data_type)? {
        D::INT64 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk")))
                .collect(),
        ),
        D::INT64 => Some(t.int64_data.clone()),
        D::INT32 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4-byte chunk")) as i64)
                .collect(),
        ),
        D::INT32 => Some(t.int32_data.iter().map(|&v| v as i64).collect()),
        _ => None,
    }
}
