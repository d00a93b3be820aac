//! State across tasks: a model may read a small state tensor and write its next value, kept on
//! chain per (model, account) between tasks (e.g. a running average of scores).
//!
//! The manifest names one model input (the state read) and one output (the state written), of
//! one shape. Quantization gives both one scale and bit width ([`bind`]): the state input is
//! quantized like an activation, the state output is rescaled to the input's scale when it
//! is finer and clipped to the state's calibrated magnitude, so that each task's new state is
//! exactly a valid state input of the next. The program then ends with the pair ([`Program::state`]) and its
//! circuit commits to each with its own salted Poseidon chain, as it does for a segment's links:
//! the proof's public inputs hold the old state's commitment and the new state's, never the
//! values. A verifier that knows the old commitment (the chain keeps it) and checks the new
//! one against the values it is given knows the new state is this model's next state on this
//! input from exactly that old state.

use halo2_proofs::pasta::Fp;
use serde::{Deserialize, Serialize};

use crate::circuit;
use crate::error::{AivmError, Result};
use crate::ir::{DType, Graph};
use crate::ops::{self, clip::Clip, rescale::Rescale};
use crate::program::{IoSpec, Op, PNode, Program, TensorMeta, bit_range};
use crate::quantize::{Calibration, QuantConfig};
use crate::tensor::numel;

/// Which model input is the state read and which output the state written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSpec {
    pub input: String,
    pub output: String,
}

/// A state's values and the salt of its commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct StateValue {
    pub values: Vec<i64>,
    pub salt: Fp,
}

impl std::fmt::Debug for StateValue {
    // Its size only: never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateValue")
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

fn err(msg: impl Into<String>) -> AivmError {
    AivmError::State(msg.into())
}

/// The state's tensor facts in a stateful program (its input's, which its output shares).
pub fn meta(program: &Program) -> Result<&TensorMeta> {
    if !program.state {
        return Err(err("the model keeps no state"));
    }
    Ok(&program.tensors[program.inputs[program.inputs.len() - 1].tensor])
}

/// The bounds every state of the program lies within: those of the clip that writes it.
pub fn bounds(program: &Program) -> Result<(i64, i64)> {
    meta(program)?;
    let out = program.outputs[program.outputs.len() - 1].tensor;
    match program
        .nodes
        .iter()
        .find(|n| n.output == out)
        .map(|n| &n.op)
    {
        Some(Op::Clip(Clip {
            lo: Some(lo),
            hi: Some(hi),
        })) => Ok((*lo, *hi)),
        _ => Ok(bit_range(meta(program)?.bits)),
    }
}

/// The initial state: every element `init` quantized at the state's scale (clamped to the
/// state's bounds).
pub fn initial(program: &Program, init: f64) -> Result<StateValue> {
    let m = meta(program)?;
    let (lo, hi) = bounds(program)?;
    let v = ops::quantize(init, m.scale).clamp(lo, hi);
    Ok(StateValue {
        values: vec![v; numel(&m.shape)],
        salt: Fp::zero(),
    })
}

/// The salted Poseidon commitment to a state (the one the circuit computes).
pub fn commitment(program: &Program, state: &StateValue) -> Result<Fp> {
    let m = meta(program)?;
    let (lo, hi) = bit_range(m.bits);
    if state.values.len() != numel(&m.shape) || state.values.iter().any(|&v| v < lo || v > hi) {
        return Err(err(format!(
            "a state must be {} values of {} bits",
            numel(&m.shape),
            m.bits
        )));
    }
    let io = &program.inputs[program.inputs.len() - 1..];
    Ok(circuit::commitment(
        program,
        io,
        std::slice::from_ref(&state.values),
        state.salt,
    ))
}

/// Quantizes a stateful model: the state input at an activation's scale (lowered to the state
/// output's when that is coarser), then [`bind`].
pub(crate) fn quantize(
    graph: &Graph,
    cal: &Calibration,
    cfg: &QuantConfig,
    spec: &StateSpec,
) -> Result<Program> {
    let names = |vs: &[usize]| -> String {
        vs.iter()
            .map(|&v| format!("\"{}\"", graph.values[v].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ii = graph
        .inputs
        .iter()
        .position(|&v| graph.values[v].name == spec.input)
        .ok_or_else(|| {
            err(format!(
                "the state input \"{}\" is not a model input (inputs: {})",
                spec.input,
                names(&graph.inputs)
            ))
        })?;
    let oi = graph
        .outputs
        .iter()
        .position(|&v| graph.values[v].name == spec.output)
        .ok_or_else(|| {
            err(format!(
                "the state output \"{}\" is not a model output (outputs: {})",
                spec.output,
                names(&graph.outputs)
            ))
        })?;
    if graph.inputs.len() < 2 || graph.outputs.len() < 2 {
        return Err(err(
            "a stateful model needs a task input besides its state input and an output besides its state output",
        ));
    }
    // Inputs are read (and outputs written) in the model's order everywhere: the state pair
    // must already be where the program keeps it.
    if ii + 1 != graph.inputs.len() || oi + 1 != graph.outputs.len() {
        return Err(err(format!(
            "the state input must be the model's last input and the state output its last output (inputs: {}; outputs: {})",
            names(&graph.inputs),
            names(&graph.outputs)
        )));
    }
    let (vi, vo) = (
        &graph.values[graph.inputs[ii]],
        &graph.values[graph.outputs[oi]],
    );
    if vi.dtype != DType::F32 || vo.dtype != DType::F32 || vi.shape != vo.shape {
        return Err(err(format!(
            "the state input \"{}\" ({:?} {:?}) and output \"{}\" ({:?} {:?}) must both be f32 of one shape",
            vi.name, vi.dtype, vi.shape, vo.name, vo.dtype, vo.shape
        )));
    }
    let v = graph.inputs[ii];
    let mut scale = crate::quantize::choose_scale(cfg, cal.max_abs[v], cfg.act_bits);
    // The output's scale follows its own calibrated magnitude; lower the input's to it when
    // it is coarser, so that the output can be rescaled down to the input's scale.
    for _ in 0..2 {
        let p = crate::quantize::quantize_forced(graph, cal, cfg, Some((v, scale)))?;
        let out_scale = p.tensors[p.outputs[oi].tensor].scale;
        if out_scale >= scale {
            let bound = ops::quantize(cal.max_abs[v], scale);
            return bind(p, ii, oi, bound);
        }
        scale = out_scale;
    }
    Err(err(format!(
        "the state output \"{}\" cannot be given the state input's scale",
        spec.output
    )))
}

/// Moves the state input and output to the ends of the program's inputs and outputs, makes
/// the output the input's scale (a rescale when it is finer) and clips it to `±bound` (the
/// state's calibrated magnitude at its scale, within which every tensor the state reaches was
/// sized: a state the chain keeps can never make the next task overflow), and marks the
/// program stateful.
pub fn bind(mut p: Program, input: usize, output: usize, bound: i64) -> Result<Program> {
    let inp = p.inputs.remove(input);
    let out = p.outputs.remove(output);
    let a = p.tensors[inp.tensor].clone();
    let mut t = out.tensor;
    let b = p.tensors[t].clone();
    if b.scale < a.scale {
        return Err(err(format!(
            "the state output \"{}\" (scale {}) is coarser than the state input \"{}\" (scale {})",
            out.name, b.scale, inp.name, a.scale
        )));
    }
    if b.scale > a.scale {
        t = push(
            &mut p,
            "state:rescale",
            Op::Rescale(Rescale {
                shift: b.scale - a.scale,
            }),
            t,
            TensorMeta {
                scale: a.scale,
                ..b.clone()
            },
        );
    }
    let (lo, hi) = bit_range(a.bits);
    let clip = Op::Clip(Clip {
        lo: Some((-bound).max(lo)),
        hi: Some(bound.min(hi)),
    });
    t = push(&mut p, "state:clip", clip, t, a.clone());
    p.inputs.push(inp);
    p.outputs.push(IoSpec {
        name: out.name,
        tensor: t,
    });
    p.state = true;
    p.validate()?;
    Ok(p)
}

fn push(p: &mut Program, name: &str, op: Op, input: usize, meta: TensorMeta) -> usize {
    p.tensors.push(meta);
    let output = p.tensors.len() - 1;
    p.nodes.push(PNode {
        name: name.into(),
        onnx_op: op.kind().into(),
        op,
        inputs: vec![input],
        output,
    });
    output
}
