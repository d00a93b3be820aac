//! The AIVM program: a closed set of integer ops over fixed-point tensors, and its executor.
//!
//! A value `x` at scale `s` is held as the integer `round(x·2^s)`. Every op's integer meaning is
//! defined here, once; the halo2 circuit constrains exactly this meaning, and every validator
//! executes it bit for bit. Weights, biases and lookup tables are constants of the program, so
//! the program's hash (the model id) commits to all of them.

use serde::{Deserialize, Serialize};

use crate::error::{AivmError, Result, ShapeDisplay};
use crate::ir::DType;
use crate::ops::copy::{self, CopySpec};
use crate::ops::elementwise::{self, BinKind};
use crate::ops::group::{self, GroupSpec, ReduceKind};
use crate::ops::linear::{self, LinearGeom};
use crate::ops::lut::{self, LutFn};
use crate::ops::rescale;
use crate::tensor::{Tensor, broadcast_shape, numel};

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

/// An integer op. Shifts are rescales by `2^shift` with round-half-up ([`rescale`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `y = rescale(bias[ch] + Σ w·x, shift)`; bias is at the product's scale.
    Linear {
        geom: LinearGeom,
        weight: Vec<i64>,
        bias: Vec<i64>,
        shift: u32,
    },
    /// `y = rescale(x·mul + add, shift)` (without `mul`, `x + add`).
    Affine {
        mul: Option<Tensor<i64>>,
        add: Option<Tensor<i64>>,
        shift: u32,
    },
    /// Add/Sub: `rescale((a << la) ± (b << lb), shift)`; Mul: `rescale(a·b, shift)` (la = lb = 0).
    Binary {
        kind: BinKind,
        la: u32,
        lb: u32,
        shift: u32,
    },
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x >= 0`, else `rescale(x·alpha, alpha_scale)`.
    LeakyRelu { alpha: i64, alpha_scale: u32 },
    /// `min(max(x, lo), hi)`.
    Clip { lo: Option<i64>, hi: Option<i64> },
    /// `table[clamp(shift_signed(x, in_shift), lo, lo + len - 1) - lo]`.
    Lut {
        func: LutFn,
        in_shift: i32,
        lo: i64,
        table: Vec<i64>,
    },
    /// See [`group::softmax_i`]; the table is `exp` on `[lo, 0]`.
    Softmax {
        groups: GroupSpec,
        in_shift: i32,
        lo: i64,
        table: Vec<i64>,
        out_scale: u32,
    },
    /// Sum (then `rescale(·, shift)`), Mean (round-half-up by the group's divisor) or Max.
    Reduce {
        kind: ReduceKind,
        groups: GroupSpec,
        shift: u32,
    },
    /// Index of the first maximum of each group.
    ArgMax { groups: GroupSpec },
    /// Data movement only.
    Copy { spec: CopySpec },
    /// `rescale(x, shift)`; aligns scales (e.g. before Concat).
    Rescale { shift: u32 },
    /// Rows of a constant table selected by integer indices.
    Gather { table: Tensor<i64> },
}

impl Op {
    /// The op's family name, as shown in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Linear { .. } => "linear",
            Op::Affine { .. } => "affine",
            Op::Binary { .. } => "binary",
            Op::Relu => "relu",
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Clip { .. } => "clip",
            Op::Lut { .. } => "lut",
            Op::Softmax { .. } => "softmax",
            Op::Reduce { .. } => "reduce",
            Op::ArgMax { .. } => "argmax",
            Op::Copy { .. } => "copy",
            Op::Rescale { .. } => "rescale",
            Op::Gather { .. } => "gather",
        }
    }
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
        if inputs.len() != self.inputs.len() {
            return Err(AivmError::InputFormat(format!(
                "the program takes {} inputs, {} given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        for (io, x) in self.inputs.iter().zip(inputs) {
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
        let x = &vals[n.inputs[0]];
        let in_shape = &self.tensors[n.inputs[0]].shape;
        Ok(match &n.op {
            Op::Linear {
                geom,
                weight,
                bias,
                shift,
            } => linear::accumulate_i(geom, weight, bias, x)
                .into_iter()
                .map(|a| rescale(a, *shift))
                .collect(),
            Op::Affine { mul, add, shift } => {
                elementwise::affine_acc_i(x, in_shape, mul.as_ref(), add.as_ref())
                    .into_iter()
                    .map(|a| rescale(a, *shift))
                    .collect()
            }
            Op::Binary {
                kind,
                la,
                lb,
                shift,
            } => {
                let b = &vals[n.inputs[1]];
                let b_shape = &self.tensors[n.inputs[1]].shape;
                let out_shape = &self.tensors[n.output].shape;
                elementwise::binary(x, in_shape, b, b_shape, out_shape, |a, b| {
                    let v = match kind {
                        BinKind::Add => (a << la) + (b << lb),
                        BinKind::Sub => (a << la) - (b << lb),
                        BinKind::Mul => a * b,
                    };
                    rescale(v, *shift)
                })
            }
            Op::Relu => x.iter().map(|&v| v.max(0)).collect(),
            Op::LeakyRelu { alpha, alpha_scale } => x
                .iter()
                .map(|&v| elementwise::leaky_relu_i(v, *alpha, *alpha_scale))
                .collect(),
            Op::Clip { lo, hi } => x
                .iter()
                .map(|&v| {
                    let v = lo.map_or(v, |l| v.max(l));
                    hi.map_or(v, |h| v.min(h))
                })
                .collect(),
            Op::Lut {
                in_shift,
                lo,
                table,
                ..
            } => lut::eval_i(x, *in_shift, *lo, table),
            Op::Softmax {
                groups,
                in_shift,
                lo,
                table,
                out_scale,
            } => group::softmax_i(&groups.groups(), x, *in_shift, *lo, table, *out_scale),
            Op::Reduce {
                kind,
                groups,
                shift,
            } => group::reduce_i(*kind, &groups.groups(), x)
                .into_iter()
                .map(|v| rescale(v, *shift))
                .collect(),
            Op::ArgMax { groups } => group::argmax(&groups.groups(), x),
            Op::Copy { spec } => {
                let ins: Vec<&[i64]> = n.inputs.iter().map(|&i| vals[i].as_slice()).collect();
                copy::apply(spec, &ins)
            }
            Op::Rescale { shift } => x.iter().map(|&v| rescale(v, *shift)).collect(),
            Op::Gather { table } => crate::ops::gather::eval_i(&n.name, table, x)?,
        })
    }

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
            let fail = |msg: &str| AivmError::Decode(format!("node {k} ({}): {msg}", n.op.kind()));
            if n.inputs.is_empty() || n.output >= nt || defined[n.output] {
                return Err(fail("invalid output or no inputs"));
            }
            if n.inputs.iter().any(|&i| i >= nt || !defined[i]) {
                return Err(fail("reads a tensor not computed before it"));
            }
            let ins: Vec<&TensorMeta> = n.inputs.iter().map(|&i| &self.tensors[i]).collect();
            let out = &self.tensors[n.output];
            let in_len = numel(&ins[0].shape);
            let out_len = numel(&out.shape);
            let shift_ok = |s: u32| s <= 62;
            let arity = match n.op {
                Op::Binary { .. } => 2,
                Op::Copy {
                    spec: CopySpec::Concat { ref in_shapes, .. },
                } => in_shapes.len(),
                _ => 1,
            };
            if n.inputs.len() != arity {
                return Err(fail("wrong number of inputs"));
            }
            let ok = match &n.op {
                Op::Linear {
                    geom,
                    weight,
                    bias,
                    shift,
                } => {
                    geom_sizes_ok(geom)
                        && geom.in_len() == in_len
                        && geom.out_len() == out_len
                        && geom.weight_len() == weight.len()
                        && bias.len() == geom.channels()
                        && shift_ok(*shift)
                        && conv_ok(geom)
                }
                Op::Affine { mul, add, shift } => {
                    in_len == out_len
                        && shift_ok(*shift)
                        && [mul, add].iter().all(|t| {
                            t.as_ref().is_none_or(|t| {
                                t.data.len() == numel(&t.shape)
                                    && broadcast_shape(&t.shape, &ins[0].shape).as_deref()
                                        == Some(&ins[0].shape[..])
                            })
                        })
                }
                Op::Binary { la, lb, shift, .. } => {
                    broadcast_shape(&ins[0].shape, &ins[1].shape).as_deref() == Some(&out.shape[..])
                        && shift_ok(*la)
                        && shift_ok(*lb)
                        && shift_ok(*shift)
                }
                Op::Relu | Op::Clip { .. } | Op::Rescale { .. } => {
                    in_len == out_len && !matches!(n.op, Op::Rescale { shift } if !shift_ok(shift))
                }
                Op::LeakyRelu { alpha_scale, .. } => in_len == out_len && shift_ok(*alpha_scale),
                Op::Lut {
                    in_shift,
                    table,
                    lo,
                    ..
                } => {
                    in_len == out_len
                        && !table.is_empty()
                        && lo.checked_add(table.len() as i64).is_some()
                        && in_shift.unsigned_abs() <= 62
                }
                Op::Softmax {
                    groups,
                    in_shift,
                    table,
                    out_scale,
                    lo,
                } => {
                    in_len == out_len
                        && matches!(groups, GroupSpec::Axes { .. })
                        && groups_ok(groups, in_len)
                        && !table.is_empty()
                        && *lo + table.len() as i64 - 1 == 0
                        && in_shift.unsigned_abs() <= 62
                        && *out_scale <= 40
                }
                Op::Reduce { groups, shift, .. } => {
                    groups_ok(groups, in_len) && groups.len() == out_len && shift_ok(*shift)
                }
                Op::ArgMax { groups } => {
                    matches!(groups, GroupSpec::Axes { .. })
                        && groups_ok(groups, in_len)
                        && groups.len() == out_len
                }
                Op::Copy { spec } => copy_ok(spec, &ins, out_len),
                Op::Gather { table } => {
                    !table.shape.is_empty()
                        && table.shape[0] > 0
                        && table.data.len() == numel(&table.shape)
                        && in_len * numel(&table.shape[1..]) == out_len
                }
            };
            if !ok {
                return Err(fail("its parameters do not match its tensors"));
            }
            if !bounded(&n.op, &ins) {
                return Err(fail("its intermediate values could exceed 62 bits"));
            }
            if let Some(need) = static_out_bits(&n.op, &ins)
                && out.bits < need
            {
                return Err(fail(&format!(
                    "its output needs {need} bits but is declared with {}",
                    out.bits
                )));
            }
            if matches!(&n.op, Op::Reduce { kind: ReduceKind::Max | ReduceKind::Mean, shift, .. } if *shift != 0)
            {
                return Err(fail("a maximum or mean takes no rescale"));
            }
            defined[n.output] = true;
        }
        for io in &self.outputs {
            if io.tensor >= nt || !defined[io.tensor] {
                return bad(format!("output \"{}\" is never computed", io.name));
            }
        }
        Ok(())
    }

    /// Total multiply-accumulates.
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Linear { geom, .. } => geom.macs(),
                Op::Binary {
                    kind: BinKind::Mul, ..
                }
                | Op::Affine { mul: Some(_), .. } => numel(&self.tensors[n.output].shape) as u64,
                _ => 0,
            })
            .sum()
    }

    /// Number of constant parameters (weights, biases, tables).
    pub fn param_count(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Linear { weight, bias, .. } => (weight.len() + bias.len()) as u64,
                Op::Affine { mul, add, .. } => {
                    (mul.as_ref().map_or(0, |t| t.len()) + add.as_ref().map_or(0, |t| t.len()))
                        as u64
                }
                Op::Gather { table } => table.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

/// Whether every intermediate of an op stays below 2^62 in magnitude for inputs within their bit
/// ranges. The circuit relies on the same bound to keep accumulators far below the field size.
fn bounded(op: &Op, ins: &[&TensorMeta]) -> bool {
    const LIMIT: i128 = 1 << 62;
    let mag = |t: &TensorMeta| 1i128 << (t.bits - 1);
    let max_abs = |v: &[i64]| {
        v.iter()
            .map(|x| x.unsigned_abs() as i128)
            .max()
            .unwrap_or(0)
    };
    let x = mag(ins[0]);
    match op {
        Op::Linear {
            geom, weight, bias, ..
        } => linear::max_abs_row(geom, weight, bias, x) < LIMIT,
        Op::Affine { mul, add, .. } => {
            let m = mul.as_ref().map_or(1, |t| max_abs(&t.data));
            let a = add.as_ref().map_or(0, |t| max_abs(&t.data));
            x * m + a < LIMIT
        }
        Op::Binary { kind, la, lb, .. } => {
            let y = mag(ins[1]);
            match kind {
                BinKind::Mul => x * y < LIMIT,
                _ => (x << la) + (y << lb) < LIMIT,
            }
        }
        Op::LeakyRelu { alpha, .. } => x * (alpha.unsigned_abs() as i128) < LIMIT,
        Op::Lut { in_shift, .. } => *in_shift >= 0 || (x << in_shift.unsigned_abs()) < LIMIT,
        Op::Softmax {
            groups,
            in_shift,
            table,
            out_scale,
            ..
        } => {
            let len = groups.groups().first().map_or(0, |g| g.members.len()) as i128;
            table.iter().all(|&e| e >= 0)
                && table.last().is_some_and(|&e| e > 0)
                && (*in_shift >= 0 || ((2 * x) << in_shift.unsigned_abs()) < LIMIT)
                && (max_abs(table) << out_scale) < LIMIT
                && max_abs(table) * len.max(1) < LIMIT
        }
        Op::Reduce { groups, .. } => {
            let len = groups
                .groups()
                .iter()
                .map(|g| g.members.len())
                .max()
                .unwrap_or(0) as i128;
            x * len.max(1) < LIMIT
        }
        _ => true,
    }
}

/// The bit width that holds every output of an op whose circuit does not range-check its output
/// (it selects, copies or looks up values whose range is known statically); `None` for ops whose
/// output the circuit range-checks to the declared width. The declared width must be at least
/// this, so that the executor's width check and the circuit agree.
fn static_out_bits(op: &Op, ins: &[&TensorMeta]) -> Option<u32> {
    let sb = |v: i64| crate::ops::signed_bits(v as i128);
    let table_bits = |t: &[i64]| t.iter().map(|&v| sb(v)).max().unwrap_or(1);
    let in_bits = ins[0].bits;
    match op {
        Op::Relu => Some(in_bits),
        Op::Clip { lo, hi } => Some(in_bits.max(lo.map_or(1, sb)).max(hi.map_or(1, sb))),
        Op::LeakyRelu { alpha, alpha_scale } => {
            Some(in_bits.max(elementwise::leaky_z_bits(in_bits, *alpha, *alpha_scale)))
        }
        Op::Lut { table, .. } => Some(table_bits(table)),
        Op::Gather { table } => Some(table_bits(&table.data)),
        Op::Copy { .. } => ins.iter().map(|t| t.bits).max(),
        Op::Reduce {
            kind: ReduceKind::Max,
            ..
        } => Some(in_bits),
        Op::ArgMax { groups } => {
            let len = groups.groups().first().map_or(1, |g| g.members.len());
            Some(sb(len as i64 - 1))
        }
        Op::Softmax { out_scale, .. } => Some(sb(1i64 << out_scale)),
        Op::Linear { .. }
        | Op::Affine { .. }
        | Op::Binary { .. }
        | Op::Reduce { .. }
        | Op::Rescale { .. } => None,
    }
}

fn conv_ok(geom: &LinearGeom) -> bool {
    match geom {
        LinearGeom::Conv2d(c) => {
            c.stride.iter().all(|&s| s > 0)
                && c.dilation.iter().all(|&d| d > 0)
                && c.kh > 0
                && c.kw > 0
        }
        _ => true,
    }
}

/// Product of sizes, or `None` past 2^28 (far above any model lightchain proves); used so that
/// a forged geometry can neither overflow nor ask for unbounded work.
fn prod(v: &[usize]) -> Option<usize> {
    v.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 28)
}

fn geom_sizes_ok(geom: &LinearGeom) -> bool {
    match geom {
        LinearGeom::MatMul { batch, m, k, n } | LinearGeom::MatMulLeft { batch, m, k, n } => {
            prod(&[*batch, *m, *k, *n]).is_some()
        }
        LinearGeom::Conv2d(c) => {
            prod(&[c.n, c.c_in, c.h, c.w]).is_some()
                && prod(&[c.n, c.c_out, c.oh, c.ow, c.c_in, c.kh, c.kw]).is_some()
                && prod(&[c.kh, c.dilation[0]]).is_some()
                && prod(&[c.kw, c.dilation[1]]).is_some()
                && prod(&[c.oh, c.stride[0]]).is_some()
                && prod(&[c.ow, c.stride[1]]).is_some()
        }
    }
}

fn groups_ok(g: &GroupSpec, in_len: usize) -> bool {
    match g {
        GroupSpec::Axes { shape, axes } => {
            prod(shape) == Some(in_len)
                && !axes.is_empty()
                && axes.windows(2).all(|w| w[0] < w[1])
                && axes.iter().all(|&a| a < shape.len())
                && axes.iter().all(|&a| shape[a] > 0)
        }
        GroupSpec::Pool2d(p) => {
            prod(&[p.n, p.c, p.h, p.w]) == Some(in_len)
                && prod(&[p.n, p.c, p.oh, p.ow, p.kh, p.kw]).is_some()
                && prod(&[p.oh, p.stride[0]]).is_some()
                && prod(&[p.ow, p.stride[1]]).is_some()
                && p.kh > 0
                && p.kw > 0
                && p.stride.iter().all(|&s| s > 0)
                && g.groups()
                    .iter()
                    .all(|gr| !gr.members.is_empty() && gr.divisor > 0)
        }
    }
}

fn copy_ok(spec: &CopySpec, ins: &[&TensorMeta], out_len: usize) -> bool {
    let in_len = numel(&ins[0].shape);
    match spec {
        CopySpec::Reshape => in_len == out_len,
        CopySpec::Transpose { in_shape, perm } => {
            let mut p = perm.clone();
            p.sort_unstable();
            *in_shape == ins[0].shape
                && p == (0..in_shape.len()).collect::<Vec<_>>()
                && in_len == out_len
        }
        CopySpec::Concat { axis, in_shapes } => {
            !in_shapes.is_empty()
                && in_shapes.iter().zip(ins).all(|(s, t)| *s == t.shape)
                && in_shapes.iter().all(|s| {
                    s.len() == in_shapes[0].len()
                        && *axis < s.len()
                        && s.iter()
                            .enumerate()
                            .all(|(i, &d)| i == *axis || d == in_shapes[0][i])
                })
                && spec.sources(in_len).len() == out_len
        }
        CopySpec::Select {
            in_shape,
            axis,
            indices,
        } => {
            *in_shape == ins[0].shape
                && *axis < in_shape.len()
                && indices.iter().all(|&i| i < in_shape[*axis])
                && spec.sources(in_len).len() == out_len
        }
    }
}
