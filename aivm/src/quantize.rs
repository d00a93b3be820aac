//! Calibration and quantization: from the float graph and sample inputs to an integer
//! [`Program`] with per-tensor scales.
//!
//! Each tensor gets the largest scale at which its calibrated magnitude, times a headroom factor,
//! still fits the activation bit width. Weights get the largest scale that fits the weight bit
//! width. Ops that only move or compare values (ReLU, pooling max, reshapes) keep their input's
//! scale; arithmetic ops produce a wide accumulator at the natural scale of their operands and
//! rescale it to the output scale with one round-half-up shift.

use crate::error::{AivmError, Result};
use crate::ir::{DType, Graph};
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
    /// The model's state across tasks, when it keeps one (see [`crate::state`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::state::StateSpec>,
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
            state: None,
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
pub fn bits_for(m: f64, scale: u32) -> u32 {
    let v = (m * (1u64 << scale) as f64).ceil();
    if v < 1.0 {
        2
    } else {
        (v + 1.0).log2().ceil() as u32 + 1
    }
}

/// The quantizer's state while it walks the graph: what a family's
/// [`crate::ops::FloatOp::quantize`] reads (calibrated magnitudes, the configuration, the
/// program tensors of the values so far) and how it adds tensors and nodes.
pub struct Quantizer<'a> {
    pub cfg: &'a QuantConfig,
    pub cal: &'a Calibration,
    pub graph: &'a Graph,
    /// graph value -> program tensor
    map: Vec<Option<usize>>,
    pub tensors: Vec<TensorMeta>,
    pub nodes: Vec<PNode>,
}

/// What a family's quantization produces for one node: the integer op and its output's
/// scale, bit width and element type.
pub struct Quantized {
    pub op: Op,
    pub scale: u32,
    pub bits: u32,
    pub dtype: DType,
}

impl Quantized {
    /// A float-valued output.
    pub fn real(op: Op, scale: u32, bits: u32) -> Quantized {
        Quantized {
            op,
            scale,
            bits,
            dtype: DType::F32,
        }
    }
}

impl Quantizer<'_> {
    /// The scale for a value of calibrated magnitude `m`.
    pub fn choose(&self, m: f64) -> u32 {
        self.choose_bits(m, self.cfg.act_bits)
    }

    pub fn choose_bits(&self, m: f64, bits: u32) -> u32 {
        choose_scale(self.cfg, m, bits)
    }

    /// The scale of a weight tensor: the largest that fits the weight bit width.
    pub fn weight_scale(&self, w: &[f32]) -> u32 {
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
    pub fn bits(&self, m: f64, scale: u32) -> Result<u32> {
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

    /// The calibrated magnitude of a graph value.
    pub fn max_abs(&self, value: usize) -> f64 {
        self.cal.max_abs[value]
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

    /// The program tensor of a graph value (values are quantized before they are read).
    pub fn t(&self, value: usize) -> usize {
        self.map[value].expect("values are produced before use")
    }

    /// The program tensor's facts of a graph value.
    pub fn meta(&self, value: usize) -> &TensorMeta {
        &self.tensors[self.t(value)]
    }

    /// Adds a tensor and the node computing it (for ops that insert steps, like Concat's
    /// scale alignment); returns the tensor.
    pub fn insert(&mut self, meta: TensorMeta, node: PNode) -> usize {
        self.tensors.push(meta);
        let id = self.tensors.len() - 1;
        self.nodes.push(PNode { output: id, ..node });
        id
    }
}

/// The scale of an elementwise multiplier. Each channel of an affine map (a standardisation,
/// a BatchNormalization) scales its own values, so every non-zero multiplier needs its own
/// relative precision, not just the largest one: the scale is raised until the smallest
/// non-zero multiplier has 10 significant bits, as far as the product with a `bx`-bit input
/// stays within 60 bits.
pub fn affine_scale(qz: &Quantizer, m: &[f32], bx: u32) -> u32 {
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

/// Quantizes floats at `scale`.
pub fn quant_vec(v: &[f32], scale: u32) -> Vec<i64> {
    v.iter().map(|&x| q(x as f64, scale)).collect()
}

/// Quantizes a float tensor at `scale`.
pub fn quant_tensor(t: &Tensor<f32>, scale: u32) -> Tensor<i64> {
    Tensor::new(t.shape.clone(), quant_vec(&t.data, scale))
}

/// The scale for a value of calibrated magnitude `m` in `bits` signed bits.
pub fn choose_scale(cfg: &QuantConfig, m: f64, bits: u32) -> u32 {
    if let Some(s) = cfg.fixed_scale {
        return s;
    }
    let limit = ((1u64 << (bits - 1)) - 1) as f64;
    let m = m * cfg.headroom;
    if m <= 0.0 || !m.is_finite() {
        return cfg.max_scale;
    }
    let s = (limit / m).log2().floor();
    s.clamp(0.0, cfg.max_scale as f64) as u32
}

/// Quantizes the float graph into a program (a stateful one when `cfg.state` names the state).
pub fn quantize(graph: &Graph, cal: &Calibration, cfg: &QuantConfig) -> Result<Program> {
    match &cfg.state {
        Some(spec) => crate::state::quantize(graph, cal, cfg, spec),
        None => quantize_forced(graph, cal, cfg, None),
    }
}

/// [`quantize`] without state, with the scale of one input value given (`forced`).
pub(crate) fn quantize_forced(
    graph: &Graph,
    cal: &Calibration,
    cfg: &QuantConfig,
    forced: Option<(usize, u32)>,
) -> Result<Program> {
    let mut qz = Quantizer {
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
            DType::F32 if forced.is_some_and(|f| f.0 == v) => {
                let s = forced.expect("checked").1;
                (s, qz.bits(cal.max_abs[v], s)?)
            }
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
        let mut ins: Vec<usize> = n.inputs.iter().map(|&v| qz.t(v)).collect();
        let qn = n.op.family().quantize(&mut qz, n, &mut ins)?;
        let out = qz.add_tensor(n.output, qn.scale, qn.bits, qn.dtype);
        qz.nodes.push(PNode {
            name: n.name.clone(),
            onnx_op: n.onnx_op.clone(),
            op: qn.op,
            inputs: ins,
            output: out,
        });
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
        state: false,
    };
    p.validate()
        .map_err(|e| AivmError::Quantize(format!("the quantized program is inconsistent: {e}")))?;
    Ok(p)
}
