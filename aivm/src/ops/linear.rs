//! Linear ops: every output element is a dot product of fixed weights with gathered inputs, plus a
//! bias. Gemm, MatMul with one constant operand, Conv (1-D and 2-D) and folded BatchNormalization
//! all lower to this one family, so the circuit needs one dot-product gate for all of them.

use halo2_proofs::plonk::Error as PlonkError;
use serde::{Deserialize, Serialize};

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, params_if, prod,
    shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{FOp, Node};
use crate::onnx::attrs::{Window, nchw, pads_and_out, per_channel, spatial2};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::ops::copy::CopySpec;
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer, quant_vec};
use crate::tensor::{broadcast_shape, numel};
use crate::wire::{R, W};

const KIND: &str = "linear";

/// The ONNX ops that become linear ops.
pub const ONNX: &[(&str, Lowering)] = &[("Conv", conv), ("Gemm", gemm), ("MatMul", matmul)];

/// A float linear op: `y = bias[ch] + Σ w·x`.
#[derive(Clone, Debug, PartialEq)]
pub struct FLinear {
    pub geom: LinearGeom,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// An integer linear op: `y = rescale(bias[ch] + Σ w·x, shift)`; bias is at the product's scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linear {
    pub geom: LinearGeom,
    pub weight: Vec<i64>,
    pub bias: Vec<i64>,
    pub shift: u32,
}

/// Where the weights and inputs of each output element come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinearGeom {
    /// `x [batch, m, k] · W [k, n] -> [batch, m, n]`; bias per `n`.
    MatMul {
        batch: usize,
        m: usize,
        k: usize,
        n: usize,
    },
    /// `W [m, k] · x [batch, k, n] -> [batch, m, n]`; bias per `m`.
    MatMulLeft {
        batch: usize,
        m: usize,
        k: usize,
        n: usize,
    },
    /// NCHW convolution, groups = 1; weights `[c_out, c_in, kh, kw]`, bias per `c_out`.
    Conv2d(Conv2d),
}

/// The geometry of a 2-D convolution with explicit (possibly asymmetric) padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// top, left padding (bottom/right padding only affect the output size).
    pub pad: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl LinearGeom {
    /// Number of output elements.
    pub fn out_len(&self) -> usize {
        match self {
            LinearGeom::MatMul { batch, m, n, .. } | LinearGeom::MatMulLeft { batch, m, n, .. } => {
                batch * m * n
            }
            LinearGeom::Conv2d(c) => c.n * c.c_out * c.oh * c.ow,
        }
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        match self {
            LinearGeom::MatMul { k, n, .. } => k * n,
            LinearGeom::MatMulLeft { m, k, .. } => m * k,
            LinearGeom::Conv2d(c) => c.c_out * c.c_in * c.kh * c.kw,
        }
    }

    /// Number of input elements read.
    pub fn in_len(&self) -> usize {
        match self {
            LinearGeom::MatMul { batch, m, k, .. } => batch * m * k,
            LinearGeom::MatMulLeft { batch, k, n, .. } => batch * k * n,
            LinearGeom::Conv2d(c) => c.n * c.c_in * c.h * c.w,
        }
    }

    /// Number of bias entries (output channels).
    pub fn channels(&self) -> usize {
        match self {
            LinearGeom::MatMul { n, .. } => *n,
            LinearGeom::MatMulLeft { m, .. } => *m,
            LinearGeom::Conv2d(c) => c.c_out,
        }
    }

    /// The output channel (bias index) of output element `o`.
    pub fn channel_of(&self, o: usize) -> usize {
        match self {
            LinearGeom::MatMul { n, .. } => o % n,
            LinearGeom::MatMulLeft { m, n, .. } => (o / n) % m,
            LinearGeom::Conv2d(c) => (o / (c.oh * c.ow)) % c.c_out,
        }
    }

    /// Calls `f(weight_index, input_index)` for every term of output element `o`. Terms that fall
    /// into a convolution's zero padding are skipped: they contribute nothing.
    pub fn for_each_term(&self, o: usize, mut f: impl FnMut(usize, usize)) {
        match *self {
            LinearGeom::MatMul { m, k, n, .. } => {
                let (b, rest) = (o / (m * n), o % (m * n));
                let (i, j) = (rest / n, rest % n);
                for kk in 0..k {
                    f(kk * n + j, (b * m + i) * k + kk);
                }
            }
            LinearGeom::MatMulLeft { m, k, n, .. } => {
                let (b, rest) = (o / (m * n), o % (m * n));
                let (i, j) = (rest / n, rest % n);
                for kk in 0..k {
                    f(i * k + kk, (b * k + kk) * n + j);
                }
            }
            LinearGeom::Conv2d(ref c) => {
                let ox = o % c.ow;
                let oy = (o / c.ow) % c.oh;
                let co = (o / (c.ow * c.oh)) % c.c_out;
                let b = o / (c.ow * c.oh * c.c_out);
                for ci in 0..c.c_in {
                    for ky in 0..c.kh {
                        let y =
                            (oy * c.stride[0] + ky * c.dilation[0]) as isize - c.pad[0] as isize;
                        if y < 0 || y >= c.h as isize {
                            continue;
                        }
                        for kx in 0..c.kw {
                            let x = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                - c.pad[1] as isize;
                            if x < 0 || x >= c.w as isize {
                                continue;
                            }
                            let wi = ((co * c.c_in + ci) * c.kh + ky) * c.kw + kx;
                            let xi = ((b * c.c_in + ci) * c.h + y as usize) * c.w + x as usize;
                            f(wi, xi);
                        }
                    }
                }
            }
        }
    }

    /// Multiply-accumulate count (terms over all outputs).
    pub fn macs(&self) -> u64 {
        let mut total = 0u64;
        match self {
            LinearGeom::Conv2d(_) => {
                for o in 0..self.out_len() {
                    self.for_each_term(o, |_, _| total += 1);
                }
            }
            LinearGeom::MatMul { k, .. } | LinearGeom::MatMulLeft { k, .. } => {
                total = (self.out_len() * k) as u64
            }
        }
        total
    }
}

/// Float evaluation: `y[o] = bias[ch(o)] + Σ w·x`.
pub fn eval_f(geom: &LinearGeom, w: &[f32], bias: Option<&[f32]>, x: &[f64]) -> Vec<f64> {
    (0..geom.out_len())
        .map(|o| {
            let mut acc = bias.map_or(0.0, |b| b[geom.channel_of(o)] as f64);
            geom.for_each_term(o, |wi, xi| acc += w[wi] as f64 * x[xi]);
            acc
        })
        .collect()
}

/// Integer accumulation before rescale: `acc[o] = bias[ch(o)] + Σ w·x`, exact in i64 (the
/// quantizer bounds every accumulator well below 2^62).
pub fn accumulate_i(geom: &LinearGeom, w: &[i64], bias: &[i64], x: &[i64]) -> Vec<i64> {
    (0..geom.out_len())
        .map(|o| {
            let mut acc = bias[geom.channel_of(o)];
            geom.for_each_term(o, |wi, xi| acc += w[wi] * x[xi]);
            acc
        })
        .collect()
}

/// Largest `Σ|w|` over the outputs plus the matching `|bias|`, as used to bound accumulators.
pub fn max_abs_row(geom: &LinearGeom, w: &[i64], bias: &[i64], in_bound: i128) -> i128 {
    let mut per_channel = vec![0i128; geom.channels()];
    // Rows of the same channel share weights; the padding only removes terms, so bounding a
    // channel by all its weights is safe.
    match geom {
        LinearGeom::MatMul { k, n, .. } => {
            for kk in 0..*k {
                for (j, pc) in per_channel.iter_mut().enumerate() {
                    *pc += w[kk * n + j].unsigned_abs() as i128;
                }
            }
        }
        LinearGeom::MatMulLeft { m, k, .. } => {
            for i in 0..*m {
                per_channel[i] = w[i * k..(i + 1) * k]
                    .iter()
                    .map(|v| v.unsigned_abs() as i128)
                    .sum();
            }
        }
        LinearGeom::Conv2d(c) => {
            let per = c.c_in * c.kh * c.kw;
            for (co, pc) in per_channel.iter_mut().enumerate() {
                *pc = w[co * per..(co + 1) * per]
                    .iter()
                    .map(|v| v.unsigned_abs() as i128)
                    .sum();
            }
        }
    }
    per_channel
        .iter()
        .zip(bias)
        .map(|(s, b)| s * in_bound + b.unsigned_abs() as i128)
        .max()
        .unwrap_or(0)
}

/// Circuit layout: one dot-product chain per output (zero weights skipped: they add nothing),
/// then the rescale gadget. Constrains exactly [`accumulate_i`] followed by
/// [`super::rescale`].
fn layout(op: &Linear, ctx: &mut Ctx, x: &[Cell], out_bits: u32) -> Result<Vec<Cell>, PlonkError> {
    (0..op.geom.out_len())
        .map(|o| {
            let mut terms = Vec::new();
            op.geom.for_each_term(o, |wi, xi| {
                if op.weight[wi] != 0 {
                    terms.push((op.weight[wi] as i128, &x[xi]));
                }
            });
            let b = op.bias[op.geom.channel_of(o)] as i128;
            ctx.affine(b, &terms, op.shift, out_bits)
        })
        .collect()
}

impl FloatOp for FLinear {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        eval_f(&self.geom, &self.weight, self.bias.as_deref(), a.ins[0])
    }

    fn macs(&self, _out_len: usize) -> u64 {
        self.geom.macs()
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let sx = q.meta(n.inputs[0]).scale;
        let m_out = q.max_abs(n.output);
        let sw = q.weight_scale(&self.weight);
        let nat = sx + sw;
        let s = q.choose(m_out).min(nat);
        let bias = match &self.bias {
            Some(b) => quant_vec(b, nat),
            None => vec![0; self.geom.channels()],
        };
        let op = Op::Linear(Linear {
            geom: self.geom.clone(),
            weight: quant_vec(&self.weight, sw),
            bias,
            shift: nat - s,
        });
        Ok(Quantized::real(op, s, q.bits(m_out, s)?))
    }
}

impl IntOp for Linear {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(accumulate_i(&self.geom, &self.weight, &self.bias, a.ins[0])
            .into_iter()
            .map(|v| super::rescale(v, self.shift))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let g = &self.geom;
        params_if(
            geom_sizes_ok(g)
                && g.in_len() == numel(&ins[0].shape)
                && g.out_len() == numel(&out.shape)
                && g.weight_len() == self.weight.len()
                && self.bias.len() == g.channels()
                && shift_ok(self.shift)
                && conv_ok(g),
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        max_abs_row(&self.geom, &self.weight, &self.bias, magnitude(ins[0])) < LIMIT
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        None
    }

    fn macs(&self, _out_len: usize) -> u64 {
        self.geom.macs()
    }

    fn params(&self) -> u64 {
        (self.weight.len() + self.bias.len()) as u64
    }

    fn lookups(&self, _out_len: usize) -> u64 {
        0
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        None
    }

    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        layout(self, ctx, a.ins[0], a.out.bits)
    }

    fn encode(&self, w: &mut W) {
        match &self.geom {
            LinearGeom::MatMul { batch, m, k, n } => {
                w.u(0);
                w.usizes(&[*batch, *m, *k, *n]);
            }
            LinearGeom::MatMulLeft { batch, m, k, n } => {
                w.u(1);
                w.usizes(&[*batch, *m, *k, *n]);
            }
            LinearGeom::Conv2d(c) => {
                w.u(2);
                w.usizes(&[
                    c.n,
                    c.c_in,
                    c.h,
                    c.w,
                    c.c_out,
                    c.kh,
                    c.kw,
                    c.stride[0],
                    c.stride[1],
                    c.dilation[0],
                    c.dilation[1],
                    c.pad[0],
                    c.pad[1],
                    c.oh,
                    c.ow,
                ]);
            }
        }
        w.i64s(&self.weight);
        w.i64s(&self.bias);
        w.u(self.shift as u64);
    }
}

impl Decode for Linear {
    fn decode(r: &mut R) -> Result<Self> {
        let geom = match r.u()? {
            0 => {
                let [batch, m, k, n] = r.fixed::<4>()?;
                LinearGeom::MatMul { batch, m, k, n }
            }
            1 => {
                let [batch, m, k, n] = r.fixed::<4>()?;
                LinearGeom::MatMulLeft { batch, m, k, n }
            }
            2 => {
                let [n, c_in, h, w, c_out, kh, kw, s0, s1, d0, d1, p0, p1, oh, ow] =
                    r.fixed::<15>()?;
                LinearGeom::Conv2d(Conv2d {
                    n,
                    c_in,
                    h,
                    w,
                    c_out,
                    kh,
                    kw,
                    stride: [s0, s1],
                    dilation: [d0, d1],
                    pad: [p0, p1],
                    oh,
                    ow,
                })
            }
            _ => return Err(AivmError::Decode("unknown linear geometry".into())),
        };
        Ok(Linear {
            geom,
            weight: r.i64s()?,
            bias: r.i64s()?,
            shift: r.u32()?,
        })
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
        LinearGeom::MatMul { .. } | LinearGeom::MatMulLeft { .. } => true,
    }
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

/// `Conv` (1-D and 2-D, groups = 1) with a constant weight and optional bias.
fn conv(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let wc = n.const_input(1, "weight")?;
    let b = n.opt_const(2, "bias")?;
    if n.attr_i("group", 1) != 1 {
        return Err(n.unsupported("grouped convolution (group != 1)"));
    }
    let (nb, c_in, h, w) =
        nchw(&s).ok_or_else(|| n.unsupported("convolution over other than 1 or 2 spatial dims"))?;
    if wc.shape.len() != s.len() || wc.shape[1] != c_in {
        return Err(n.err(format!(
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
    .ok_or_else(|| n.err("bad kernel"))?;
    let nsp = s.len() - 2;
    let strides = spatial2(&n.attr_ints("strides").unwrap_or(vec![1; nsp]), s.len())
        .ok_or_else(|| n.err("strides have the wrong length"))?;
    let dil = spatial2(&n.attr_ints("dilations").unwrap_or(vec![1; nsp]), s.len())
        .ok_or_else(|| n.err("dilations have the wrong length"))?;
    let window = Window {
        hw: [h, w],
        k: ks,
        stride: strides,
        dil,
        ceil: false,
    };
    let (pads, oh, ow) = pads_and_out(n, s.len(), &window).map_err(|e| n.err(e))?;
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
        Some(_) => return Err(n.err("bias length does not match the output channels")),
        None => None,
    };
    let mut out = vec![nb, c_out];
    if s.len() == 4 {
        out.push(oh);
    }
    out.push(ow);
    let op = FOp::Linear(FLinear {
        geom,
        weight: wc.floats(),
        bias,
    });
    cx.float_op(n, x, op, out)
}

/// `Gemm` with a constant B (A transposed by a copy when transA = 1); a C that is not per output column becomes an Affine.
fn gemm(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let a = n.input(0)?;
    let b = n.const_input(1, "B operand")?;
    let c = n.opt_const(2, "C operand")?;
    let alpha = n.attr_f("alpha", 1.0);
    let beta = n.attr_f("beta", 1.0);
    let s = cx.shape(&a);
    if s.len() != 2 || b.shape.len() != 2 {
        return Err(n.err("A and B must be matrices"));
    }
    // transA: the activation is transposed by a copy first (C and the weights are unaffected).
    let (a, s) = if n.attr_i("transA", 0) != 0 {
        let spec = CopySpec::Transpose {
            in_shape: s.clone(),
            perm: vec![1, 0],
        };
        (cx.copy(n, a, spec, vec![s[1], s[0]])?, vec![s[1], s[0]])
    } else {
        (a, s)
    };
    let (m, k) = (s[0], s[1]);
    let trans_b = n.attr_i("transB", 0) != 0;
    let (bk, nn) = if trans_b {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if bk != k {
        return Err(n.err(format!(
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
    let op = FOp::Linear(FLinear { geom, weight, bias });
    let y = cx.float_op(n, a, op, vec![m, nn])?;
    let Some(c) = extra else { return Ok(y) };
    let mut t = c.tensor_f32();
    t.data.iter_mut().for_each(|v| *v *= beta);
    if broadcast_shape(&t.shape, &[m, nn]).as_deref() != Some(&[m, nn][..]) {
        return Err(n.err("C does not broadcast to the output"));
    }
    let add = FOp::Affine(super::affine::FAffine {
        mul: None,
        add: Some(t),
    });
    cx.float_op(n, y, add, vec![m, nn])
}

/// `MatMul` with one constant operand (of rank 2); of two activations, a [`super::matmul`] op.
fn matmul(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let a = n.input(0)?;
    let b = n.input(1)?;
    let (x, w, geom, out) = match (&a, &b) {
        (Val::Act(_), Val::Const(w)) => {
            let s = cx.shape(&a);
            if w.shape.len() != 2 || s.is_empty() {
                return Err(
                    n.unsupported("batched constant weights (MatMul with B of rank other than 2)")
                );
            }
            let (k, nn) = (w.shape[0], w.shape[1]);
            if *s.last().unwrap_or(&0) != k {
                return Err(n.err(format!(
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
            (a.clone(), w, LinearGeom::MatMul { batch, m, k, n: nn }, out)
        }
        (Val::Const(w), Val::Act(_)) => {
            let s = cx.shape(&b);
            if w.shape.len() != 2 || s.len() < 2 {
                return Err(n.unsupported("MatMul with a constant A of rank other than 2"));
            }
            let (m, k) = (w.shape[0], w.shape[1]);
            let r = s.len();
            if s[r - 2] != k {
                return Err(n.err("inner dimensions differ"));
            }
            let nn = s[r - 1];
            let mut out = s[..r - 2].to_vec();
            out.extend([m, nn]);
            let batch = numel(&s[..r - 2]);
            (
                b.clone(),
                w,
                LinearGeom::MatMulLeft { batch, m, k, n: nn },
                out,
            )
        }
        (Val::Act(_), Val::Act(_)) => return super::matmul::lower(cx, n, &a, &b),
        (Val::Const(_), Val::Const(_)) => return Err(n.unsupported("MatMul of two constants")),
    };
    let op = FOp::Linear(FLinear {
        geom,
        weight: w.floats(),
        bias: None,
    });
    cx.float_op(n, x, op, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_padding_skips_terms() {
        // 1x1 input, 3x3 kernel, pad 1: only the centre tap touches the input.
        let g = LinearGeom::Conv2d(Conv2d {
            n: 1,
            c_in: 1,
            h: 1,
            w: 1,
            c_out: 1,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [1, 1],
            oh: 1,
            ow: 1,
        });
        let mut terms = vec![];
        g.for_each_term(0, |w, x| terms.push((w, x)));
        assert_eq!(terms, vec![(4, 0)]);
        assert_eq!(g.macs(), 1);
    }

    #[test]
    fn matmul_layouts() {
        let g = LinearGeom::MatMul {
            batch: 1,
            m: 2,
            k: 3,
            n: 2,
        };
        // x = [[1,2,3],[4,5,6]], W = [[1,0],[0,1],[1,1]]
        let y = accumulate_i(&g, &[1, 0, 0, 1, 1, 1], &[0, 10], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(y, vec![4, 15, 10, 21]);
        let g = LinearGeom::MatMulLeft {
            batch: 1,
            m: 1,
            k: 2,
            n: 2,
        };
        // W = [[1,2]], x = [[1,2],[3,4]]
        assert_eq!(accumulate_i(&g, &[1, 2], &[0], &[1, 2, 3, 4]), vec![7, 10]);
    }
}
