//! Calibration and quantization: from the float graph and sample inputs to an integer
//! [`Program`] with per-tensor scales.
//!
//! Each tensor gets the largest scale at which its calibrated magnitude, times a headroom factor,
//! still fits the activation bit width. Weights get the largest scale that fits the weight bit
//! width. Ops that only move or compare values (ReLU, pooling max, reshapes) keep their input's
//! scale; arithmetic ops produce a wide accumulator at the natural scale of their operands and
//! rescale it to the output scale with one round-half-up shift.

use crate::error::{AivmError, Result};
use crate::ir::{DType, FOp, Graph};
use crate::ops::copy::CopySpec;
use crate::ops::elementwise::BinKind;
use crate::ops::group::ReduceKind;
use crate::ops::lut::{self, LutFn};
use crate::ops::quantize as q;
use crate::program::{IoSpec, Op, PNode, Program, TensorMeta};
use crate::tensor::{Tensor, numel};

/// Quantization settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantConfig {
    /// Signed bit width of activations.
    pub act_bits: u32,
    /// Signed bit width of float model inputs. Wider than activations because raw inputs
    /// (tabular features) can span many orders of magnitude within one tensor.
    pub input_bits: u32,
    /// Signed bit width of weights (sets their scale).
    pub weight_bits: u32,
    /// Largest scale any tensor gets.
    pub max_scale: u32,
    /// Calibrated magnitudes are multiplied by this before choosing a scale, so that inputs
    /// somewhat larger than the calibration samples still fit.
    pub headroom: f64,
    /// One scale for every tensor and weight instead of calibrated ones (like EZKL's scales).
    pub fixed_scale: Option<u32>,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            act_bits: 16,
            input_bits: 32,
            weight_bits: 12,
            max_scale: 20,
            headroom: 2.0,
            fixed_scale: None,
        }
    }
}

impl QuantConfig {
    /// A configuration with one fixed scale for all tensors and weights.
    pub fn fixed(scale: u32) -> Self {
        QuantConfig {
            fixed_scale: Some(scale),
            ..QuantConfig::default()
        }
    }
}

/// Per-value calibrated magnitudes: the largest `|x|` seen over the samples. Together with a
/// [`QuantConfig`] and the model it determines the program exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub max_abs: Vec<f64>,
    pub samples: usize,
}

/// The range float inputs are assumed to lie in when a model is compiled without calibration
/// data ([`crate::Model::default_samples`]).
pub const DEFAULT_INPUT_RANGE: (f64, f64) = (-1.0, 1.0);

/// Seed of the default calibration samples.
pub const DEFAULT_SEED: u64 = 0x6c69_6768_7463_6861;

/// Ten deterministic calibration samples for inputs of the given shapes, element types and
/// inclusive ranges: every element at its range's low end, then at its high end, then eight
/// draws (splitmix64 from `seed`) in between; integer inputs take the floor.
pub fn range_samples(inputs: &[(Vec<usize>, DType, (f64, f64))], seed: u64) -> Vec<crate::Inputs> {
    let mut rng = crate::rng::SplitMix64(seed);
    let mut unit = || rng.unit();
    (0..10)
        .map(|k| crate::Inputs {
            tensors: inputs
                .iter()
                .map(|(shape, dtype, (lo, hi))| {
                    let data = (0..numel(shape))
                        .map(|_| {
                            let u = match k {
                                0 => 0.0,
                                1 => 1.0,
                                _ => unit(),
                            };
                            let v = lo + (hi - lo) * u;
                            match dtype {
                                DType::I64 => v.floor().clamp(*lo, *hi),
                                DType::F32 => v,
                            }
                        })
                        .collect();
                    Tensor::new(shape.clone(), data)
                })
                .collect(),
        })
        .collect()
}

/// Runs the float graph on every sample and records each value's largest magnitude.
pub fn calibrate(graph: &Graph, samples: &[Vec<Vec<f64>>]) -> Result<Calibration> {
    if samples.is_empty() {
        return Err(AivmError::Quantize(
            "calibration needs at least one sample input".into(),
        ));
    }
    let mut max_abs = vec![0.0f64; graph.values.len()];
    for s in samples {
        let vals = graph.eval(s);
        for (m, v) in max_abs.iter_mut().zip(&vals) {
            for &x in v {
                if !x.is_finite() {
                    return Err(AivmError::Quantize(
                        "the float model produced a non-finite value on a calibration sample"
                            .into(),
                    ));
                }
                *m = m.max(x.abs());
            }
        }
    }
    Ok(Calibration {
        max_abs,
        samples: samples.len(),
    })
}

/// Smallest signed bit width that holds `m` at `scale`.
fn bits_for(m: f64, scale: u32) -> u32 {
    let v = (m * (1u64 << scale) as f64).ceil();
    if v < 1.0 {
        2
    } else {
        (v + 1.0).log2().ceil() as u32 + 1
    }
}

struct Q<'a> {
    cfg: &'a QuantConfig,
    cal: &'a Calibration,
    graph: &'a Graph,
    /// graph value -> program tensor
    map: Vec<Option<usize>>,
    tensors: Vec<TensorMeta>,
    nodes: Vec<PNode>,
}

impl Q<'_> {
    /// The scale for a value of calibrated magnitude `m`.
    fn choose(&self, m: f64) -> u32 {
        self.choose_bits(m, self.cfg.act_bits)
    }

    fn choose_bits(&self, m: f64, bits: u32) -> u32 {
        if let Some(s) = self.cfg.fixed_scale {
            return s;
        }
        let limit = ((1u64 << (bits - 1)) - 1) as f64;
        let m = m * self.cfg.headroom;
        if m <= 0.0 || !m.is_finite() {
            return self.cfg.max_scale;
        }
        let s = (limit / m).log2().floor();
        s.clamp(0.0, self.cfg.max_scale as f64) as u32
    }

    fn weight_scale(&self, w: &[f32]) -> u32 {
        if let Some(s) = self.cfg.fixed_scale {
            return s;
        }
        let m = w.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
        let limit = ((1u64 << (self.cfg.weight_bits - 1)) - 1) as f64;
        if m <= 0.0 {
            return 0;
        }
        ((limit / m).log2().floor()).clamp(0.0, self.cfg.max_scale as f64) as u32
    }

    /// Bit width of a tensor at `scale` with calibrated magnitude `m`.
    fn bits(&self, m: f64, scale: u32) -> Result<u32> {
        let b = self
            .cfg
            .act_bits
            .max(bits_for(m * self.cfg.headroom, scale));
        if b > 40 {
            return Err(AivmError::Quantize(format!(
                "a tensor needs {b} bits at scale {scale}; lower the scale"
            )));
        }
        Ok(b)
    }

    fn add_tensor(&mut self, value: usize, scale: u32, bits: u32, dtype: DType) -> usize {
        self.tensors.push(TensorMeta {
            shape: self.graph.values[value].shape.clone(),
            dtype,
            scale,
            bits,
        });
        let id = self.tensors.len() - 1;
        self.map[value] = Some(id);
        id
    }

    fn t(&self, value: usize) -> usize {
        self.map[value].expect("values are produced before use")
    }

    fn meta(&self, value: usize) -> &TensorMeta {
        &self.tensors[self.t(value)]
    }
}

/// The scale of an elementwise multiplier. Each channel of an affine map (a standardisation,
/// a BatchNormalization) scales its own values, so every non-zero multiplier needs its own
/// relative precision, not just the largest one: the scale is raised until the smallest
/// non-zero multiplier has 10 significant bits, as far as the product with a `bx`-bit input
/// stays within 60 bits.
fn affine_scale(qz: &Q, m: &[f32], bx: u32) -> u32 {
    let base = qz.weight_scale(m);
    if qz.cfg.fixed_scale.is_some() {
        return base;
    }
    let abs = m.iter().map(|&v| (v as f64).abs());
    let max = abs.clone().fold(0.0f64, f64::max);
    let min_nz = abs.filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
    if max == 0.0 || !min_nz.is_finite() {
        return base;
    }
    let want = (1024.0 / min_nz).log2().ceil().max(0.0) as u32;
    let room = 60i64 - (bx as i64 - 1) - max.log2().ceil() as i64 - 1;
    base.max(want.min(room.clamp(0, 40) as u32))
}

fn quant_vec(v: &[f32], scale: u32) -> Vec<i64> {
    v.iter().map(|&x| q(x as f64, scale)).collect()
}

fn quant_tensor(t: &Tensor<f32>, scale: u32) -> Tensor<i64> {
    Tensor::new(t.shape.clone(), quant_vec(&t.data, scale))
}

/// Quantizes the float graph into a program.
pub fn quantize(graph: &Graph, cal: &Calibration, cfg: &QuantConfig) -> Result<Program> {
    let mut qz = Q {
        cfg,
        cal,
        graph,
        map: vec![None; graph.values.len()],
        tensors: Vec::new(),
        nodes: Vec::new(),
    };
    let mut inputs = Vec::new();
    for &v in &graph.inputs {
        let info = &graph.values[v];
        let (scale, bits) = match info.dtype {
            DType::F32 => {
                let m = cal.max_abs[v];
                let s = qz.choose_bits(m, cfg.input_bits);
                (s, qz.bits(m, s)?)
            }
            DType::I64 => (0, 32),
        };
        let id = qz.add_tensor(v, scale, bits, info.dtype);
        inputs.push(IoSpec {
            name: info.name.clone(),
            tensor: id,
        });
    }
    for n in &graph.nodes {
        quantize_node(&mut qz, n)?;
    }
    let outputs = graph
        .outputs
        .iter()
        .map(|&v| IoSpec {
            name: graph.values[v].name.clone(),
            tensor: qz.t(v),
        })
        .collect();
    let p = Program {
        tensors: qz.tensors,
        inputs,
        outputs,
        nodes: qz.nodes,
    };
    p.validate()
        .map_err(|e| AivmError::Quantize(format!("the quantized program is inconsistent: {e}")))?;
    Ok(p)
}

fn quantize_node(qz: &mut Q, n: &crate::ir::Node) -> Result<()> {
    let m_out = qz.cal.max_abs[n.output];
    let x = n.inputs[0];
    let sx = qz.meta(x).scale;
    let bx = qz.meta(x).bits;
    let mut ins: Vec<usize> = n.inputs.iter().map(|&v| qz.t(v)).collect();
    // (op, output scale, output bits, dtype)
    let (op, scale, bits, dtype) = match &n.op {
        FOp::Linear { geom, weight, bias } => {
            let sw = qz.weight_scale(weight);
            let nat = sx + sw;
            let s = qz.choose(m_out).min(nat);
            let bias = match bias {
                Some(b) => quant_vec(b, nat),
                None => vec![0; geom.channels()],
            };
            let op = Op::Linear {
                geom: geom.clone(),
                weight: quant_vec(weight, sw),
                bias,
                shift: nat - s,
            };
            (op, s, qz.bits(m_out, s)?, DType::F32)
        }
        FOp::Affine { mul, add } => {
            let sm = mul.as_ref().map_or(0, |m| affine_scale(qz, &m.data, bx));
            let nat = sx + sm;
            let s = qz.choose(m_out).min(nat);
            let op = Op::Affine {
                mul: mul.as_ref().map(|m| quant_tensor(m, sm)),
                add: add.as_ref().map(|a| quant_tensor(a, nat)),
                shift: nat - s,
            };
            (op, s, qz.bits(m_out, s)?, DType::F32)
        }
        FOp::Binary(kind) => {
            let sy = qz.meta(n.inputs[1]).scale;
            let (la, lb, nat) = match kind {
                BinKind::Mul => (0, 0, sx + sy),
                _ => {
                    let nat = sx.max(sy);
                    (nat - sx, nat - sy, nat)
                }
            };
            let s = qz.choose(m_out).min(nat);
            (
                Op::Binary {
                    kind: *kind,
                    la,
                    lb,
                    shift: nat - s,
                },
                s,
                qz.bits(m_out, s)?,
                DType::F32,
            )
        }
        FOp::Relu => (Op::Relu, sx, bx, DType::F32),
        FOp::LeakyRelu { alpha } => {
            const ALPHA_SCALE: u32 = 16;
            let a = q(*alpha as f64, ALPHA_SCALE);
            let z_bits = crate::ops::elementwise::leaky_z_bits(bx, a, ALPHA_SCALE);
            (
                Op::LeakyRelu {
                    alpha: a,
                    alpha_scale: ALPHA_SCALE,
                },
                sx,
                bx.max(z_bits),
                DType::F32,
            )
        }
        FOp::Clip { lo, hi } => {
            let lo = lo.map(|l| q(l as f64, sx));
            let hi = hi.map(|h| q(h as f64, sx));
            (Op::Clip { lo, hi }, sx, bx, DType::F32)
        }
        FOp::Lut(LutFn::Rsqrt) => {
            // The table spans the calibrated input range (with headroom) in at most 2,048
            // steps; entries are capped at the output tensor's range.
            let m_in = (qz.cal.max_abs[x] * qz.cfg.headroom).max(f64::MIN_POSITIVE);
            let fit = (2047.0 / m_in).log2().floor().clamp(0.0, 14.0) as u32;
            let ts = qz.cfg.fixed_scale.map_or(fit, |s| s.min(fit));
            let s = qz.choose(m_out);
            let bits = qz.bits(m_out, s)?;
            let cap = (1i64 << (bits - 1)) - 1;
            let (lo, _hi, table) = lut::build_table_on(LutFn::Rsqrt, (0.0, m_in), ts, s, cap);
            let op = Op::Lut {
                func: LutFn::Rsqrt,
                in_shift: sx as i32 - ts as i32,
                lo,
                table,
            };
            (op, s, bits, DType::F32)
        }
        FOp::Lut(f) => {
            let ts = qz
                .cfg
                .fixed_scale
                .map_or(f.table_scale(), |s| s.min(f.table_scale()));
            let s = qz.choose(1.0);
            let (lo, _hi, table) = lut::build_table(*f, ts, s);
            let op = Op::Lut {
                func: *f,
                in_shift: sx as i32 - ts as i32,
                lo,
                table,
            };
            (op, s, qz.bits(1.0, s)?, DType::F32)
        }
        FOp::Softmax(groups) => {
            let ts = qz.cfg.fixed_scale.map_or(LutFn::Exp.table_scale(), |s| {
                s.min(LutFn::Exp.table_scale())
            });
            const EXP_SCALE: u32 = 16;
            let (lo, _hi, table) = lut::build_table(LutFn::Exp, ts, EXP_SCALE);
            let s = qz.choose(1.0);
            let op = Op::Softmax {
                groups: groups.clone(),
                in_shift: sx as i32 - ts as i32,
                lo,
                table,
                out_scale: s,
            };
            (op, s, qz.bits(1.0, s)?, DType::F32)
        }
        FOp::Reduce { kind, groups } => match kind {
            ReduceKind::Sum => {
                let s = qz.choose(m_out).min(sx);
                (
                    Op::Reduce {
                        kind: *kind,
                        groups: groups.clone(),
                        shift: sx - s,
                    },
                    s,
                    qz.bits(m_out, s)?,
                    DType::F32,
                )
            }
            _ => (
                Op::Reduce {
                    kind: *kind,
                    groups: groups.clone(),
                    shift: 0,
                },
                sx,
                bx,
                DType::F32,
            ),
        },
        FOp::ArgMax(groups) => {
            let len = groups.groups().first().map_or(1, |g| g.members.len());
            (
                Op::ArgMax {
                    groups: groups.clone(),
                },
                0,
                bits_for(len as f64, 0),
                DType::I64,
            )
        }
        FOp::Copy(spec) => {
            let dtype = qz.graph.values[x].dtype;
            if let CopySpec::Concat { .. } = spec {
                // Align every input to the smallest scale among them.
                let s = n
                    .inputs
                    .iter()
                    .map(|&v| qz.meta(v).scale)
                    .min()
                    .unwrap_or(sx);
                let mut bits = 0;
                for (k, &v) in n.inputs.iter().enumerate() {
                    let meta = qz.meta(v).clone();
                    bits = u32::max(bits, meta.bits);
                    if meta.scale > s {
                        qz.tensors.push(TensorMeta {
                            scale: s,
                            ..meta.clone()
                        });
                        let id = qz.tensors.len() - 1;
                        qz.nodes.push(PNode {
                            name: format!("{}:align{k}", n.name),
                            onnx_op: n.onnx_op.clone(),
                            op: Op::Rescale {
                                shift: meta.scale - s,
                            },
                            inputs: vec![ins[k]],
                            output: id,
                        });
                        ins[k] = id;
                    }
                }
                (Op::Copy { spec: spec.clone() }, s, bits, dtype)
            } else {
                (Op::Copy { spec: spec.clone() }, sx, bx, dtype)
            }
        }
        FOp::Gather { table } => {
            let m = table
                .data
                .iter()
                .fold(0.0f64, |a, &v| a.max((v as f64).abs()));
            let s = qz.choose(m);
            (
                Op::Gather {
                    table: quant_tensor(table, s),
                },
                s,
                qz.bits(m, s)?,
                DType::F32,
            )
        }
    };
    let out = qz.add_tensor(n.output, scale, bits, dtype);
    debug_assert_eq!(
        numel(&qz.tensors[out].shape),
        numel(&qz.graph.values[n.output].shape)
    );
    qz.nodes.push(PNode {
        name: n.name.clone(),
        onnx_op: n.onnx_op.clone(),
        op,
        inputs: ins,
        output: out,
    });
    Ok(())
}
