//! A summary of an ONNX model for `lightchain inspect`: its interface, op inventory, size and
//! whether the AIVM can run it (and if not, why).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::ir::{DType, ValueInfo};
use crate::onnx::guard::{GuardLimits, guard_file};
use crate::onnx::{ImportOptions, lower, supported_ops, value_info};
use crate::tensor::numel;

/// One input or output as shown by inspect.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IoSummary {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: &'static str,
}

impl From<&ValueInfo> for IoSummary {
    fn from(v: &ValueInfo) -> Self {
        IoSummary {
            name: v.name.clone(),
            shape: v.shape.clone(),
            dtype: match v.dtype {
                DType::F32 => "f32",
                DType::I64 => "i64",
            },
        }
    }
}

/// Count of one ONNX op type in the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpCount {
    pub op: String,
    pub count: usize,
    pub supported: bool,
}

/// The inspect report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSummary {
    pub opset: i64,
    pub ir_version: i64,
    pub producer: String,
    pub file_bytes: u64,
    pub inputs: Vec<IoSummary>,
    pub outputs: Vec<IoSummary>,
    pub ops: Vec<OpCount>,
    pub nodes: usize,
    /// Elements of all initializers.
    pub params: u64,
    /// Multiply-accumulates of the lowered graph (when it lowers).
    pub macs: Option<u64>,
    /// AIVM nodes after lowering and fusion (when it lowers).
    pub aivm_nodes: Option<usize>,
    pub supported: bool,
    /// Why the model cannot run, when it cannot.
    pub reason: Option<String>,
}

/// Guards, inventories and tries to lower a model file. Guard failures are errors; lowering
/// failures are reported in the summary.
pub fn inspect_file(
    path: &std::path::Path,
    opts: &ImportOptions,
    limits: &GuardLimits,
) -> Result<ModelSummary> {
    let g = guard_file(path, limits)?;
    let graph = g.proto.graph.as_ref();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in graph.map(|g| g.node.as_slice()).unwrap_or_default() {
        *counts.entry(n.op_type.clone()).or_default() += 1;
    }
    let params = graph
        .map(|g| {
            g.initializer
                .iter()
                .map(|t| numel(&t.dims.iter().map(|&d| d as usize).collect::<Vec<_>>()) as u64)
                .sum()
        })
        .unwrap_or(0);
    let lowered = lower(&g, opts);
    // Declared interface (shown when the model does not lower): the one value-info reader's
    // rule for symbolic dims.
    let declared = |vs: &mut dyn Iterator<Item = &onnx_protobuf::ValueInfoProto>| {
        vs.map(|v| match value_info::decode(v) {
            Some(d) => IoSummary {
                name: d.name.clone(),
                shape: d.resolve(&opts.dims),
                dtype: d.elem_name(),
            },
            None => IoSummary {
                name: v.name.clone(),
                shape: vec![],
                dtype: "other",
            },
        })
        .collect::<Vec<_>>()
    };
    let (inputs, outputs, macs, aivm_nodes, reason) = match &lowered {
        Ok(gr) => (
            gr.inputs.iter().map(|&i| (&gr.values[i]).into()).collect(),
            gr.outputs.iter().map(|&i| (&gr.values[i]).into()).collect(),
            Some(gr.macs()),
            Some(gr.nodes.len()),
            None,
        ),
        Err(e) => (
            graph.map_or(vec![], |g| declared(&mut value_info::runtime_inputs(g))),
            graph.map_or(vec![], |g| declared(&mut g.output.iter())),
            None,
            None,
            Some(e.to_string()),
        ),
    };
    let supported = supported_ops();
    Ok(ModelSummary {
        opset: g.opset,
        ir_version: g.proto.ir_version,
        producer: format!("{} {}", g.proto.producer_name, g.proto.producer_version)
            .trim()
            .to_string(),
        file_bytes: g.bytes.len() as u64,
        inputs,
        outputs,
        ops: counts
            .into_iter()
            .map(|(op, count)| OpCount {
                supported: supported.contains(&op.as_str()),
                op,
                count,
            })
            .collect(),
        nodes: graph.map_or(0, |g| g.node.len()),
        params,
        macs,
        aivm_nodes,
        supported: reason.is_none(),
        reason,
    })
}
