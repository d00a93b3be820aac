//! Linear ops: every output element is a dot product of fixed weights with gathered inputs, plus a
//! bias. Gemm, MatMul with one constant operand, Conv (1-D and 2-D) and folded BatchNormalization
//! all lower to this one family, so the circuit needs one dot-product gate for all of them.

use serde::{Deserialize, Serialize};

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
pub fn layout(
    ctx: &mut crate::circuit::ctx::Ctx,
    geom: &LinearGeom,
    weight: &[i64],
    bias: &[i64],
    shift: u32,
    x: &[crate::circuit::ctx::Cell],
    out_bits: u32,
) -> Result<Vec<crate::circuit::ctx::Cell>, halo2_proofs::plonk::Error> {
    (0..geom.out_len())
        .map(|o| {
            let mut terms = Vec::new();
            geom.for_each_term(o, |wi, xi| {
                if weight[wi] != 0 {
                    terms.push((weight[wi] as i128, &x[xi]));
                }
            });
            ctx.affine(bias[geom.channel_of(o)] as i128, &terms, shift, out_bits)
        })
        .collect()
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
