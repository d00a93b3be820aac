//! Ops that combine groups of elements: pooling, reductions, softmax and argmax. A [`GroupSpec`]
//! lists, for every output (or every softmax row), the input elements it reads, in axis order.

use serde::{Deserialize, Serialize};

use crate::tensor::{numel, strides, unravel};

/// How input elements are grouped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupSpec {
    /// Reduce `shape` over `axes` (sorted); groups are ordered by the remaining axes, members by
    /// the reduced axes in row-major order.
    Axes { shape: Vec<usize>, axes: Vec<usize> },
    /// 2-D pooling windows over NCHW.
    Pool2d(Pool2d),
}

/// A 2-D pooling window geometry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// top, left padding.
    pub pad: [usize; 2],
    pub oh: usize,
    pub ow: usize,
    /// Average pooling divides by the full window (true) or by the valid elements (false).
    pub count_include_pad: bool,
}

/// One group: the input elements it reads and the divisor a mean over it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub members: Vec<usize>,
    pub divisor: usize,
}

impl GroupSpec {
    /// Number of groups (outputs of a reduction).
    pub fn len(&self) -> usize {
        match self {
            GroupSpec::Axes { shape, axes } => {
                let all = shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
                let red = axes
                    .iter()
                    .filter_map(|&a| shape.get(a))
                    .fold(1usize, |a, &d| a.saturating_mul(d));
                all / red.max(1)
            }
            GroupSpec::Pool2d(p) => [p.n, p.c, p.oh, p.ow]
                .iter()
                .fold(1usize, |a, &d| a.saturating_mul(d)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All groups, in output order.
    pub fn groups(&self) -> Vec<Group> {
        match self {
            GroupSpec::Axes { shape, axes } => {
                let st = strides(shape);
                let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
                let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
                let red_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
                let n_red = numel(&red_shape);
                (0..numel(&kept_shape))
                    .map(|g| {
                        let gi = unravel(g, &kept_shape);
                        let base: usize = kept.iter().zip(&gi).map(|(&a, &i)| i * st[a]).sum();
                        let members = (0..n_red)
                            .map(|r| {
                                let ri = unravel(r, &red_shape);
                                base + axes
                                    .iter()
                                    .zip(&ri)
                                    .map(|(&a, &i)| i * st[a])
                                    .sum::<usize>()
                            })
                            .collect();
                        Group {
                            members,
                            divisor: n_red,
                        }
                    })
                    .collect()
            }
            GroupSpec::Pool2d(p) => {
                let mut out = Vec::with_capacity(self.len());
                for nc in 0..p.n * p.c {
                    for oy in 0..p.oh {
                        for ox in 0..p.ow {
                            let mut members = Vec::with_capacity(p.kh * p.kw);
                            for ky in 0..p.kh {
                                let y = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
                                for kx in 0..p.kw {
                                    let x = (ox * p.stride[1] + kx) as isize - p.pad[1] as isize;
                                    if y >= 0 && x >= 0 && (y as usize) < p.h && (x as usize) < p.w
                                    {
                                        members.push((nc * p.h + y as usize) * p.w + x as usize);
                                    }
                                }
                            }
                            let divisor = if p.count_include_pad {
                                p.kh * p.kw
                            } else {
                                members.len()
                            };
                            out.push(Group { members, divisor });
                        }
                    }
                }
                out
            }
        }
    }
}

/// What a reduction computes over each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
}

/// Float reduction.
pub fn reduce_f(kind: ReduceKind, groups: &[Group], x: &[f64]) -> Vec<f64> {
    groups
        .iter()
        .map(|g| match kind {
            ReduceKind::Sum => g.members.iter().map(|&i| x[i]).sum(),
            ReduceKind::Mean => g.members.iter().map(|&i| x[i]).sum::<f64>() / g.divisor as f64,
            ReduceKind::Max => g
                .members
                .iter()
                .map(|&i| x[i])
                .fold(f64::NEG_INFINITY, f64::max),
        })
        .collect()
}

/// Integer reduction before any rescale: Sum is exact, Mean divides with round-half-up by the
/// group's divisor, Max is exact. Groups are never empty (the lowering refuses such windows).
pub fn reduce_i(kind: ReduceKind, groups: &[Group], x: &[i64]) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let it = g.members.iter().map(|&i| x[i]);
            match kind {
                ReduceKind::Sum => it.sum(),
                ReduceKind::Mean => super::div_round(it.sum(), g.divisor as i64),
                ReduceKind::Max => it.max().unwrap_or(0),
            }
        })
        .collect()
}

/// Index of the first maximum of each group (ties go to the lowest index, as ONNX's default).
pub fn argmax<T: PartialOrd + Copy>(groups: &[Group], x: &[T]) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let mut best = 0;
            for (j, &i) in g.members.iter().enumerate() {
                if x[i] > x[g.members[best]] {
                    best = j;
                }
            }
            best as i64
        })
        .collect()
}

/// Float softmax over each group; output has the input's layout.
pub fn softmax_f(groups: &[Group], x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for g in groups {
        let m = g
            .members
            .iter()
            .map(|&i| x[i])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = g.members.iter().map(|&i| (x[i] - m).exp()).sum();
        for &i in &g.members {
            y[i] = (x[i] - m).exp() / s;
        }
    }
    y
}

/// Integer softmax: per group, `d = x - max`, `t = clamp(rescale(d), lo, 0)`, `e = table[t - lo]`,
/// `y = floor(e·2^out_scale / Σe)`. The maximum's `e` is the table's top entry, so `Σe > 0`.
pub fn softmax_i(
    groups: &[Group],
    x: &[i64],
    in_shift: i32,
    lo: i64,
    table: &[i64],
    out_scale: u32,
) -> Vec<i64> {
    let mut y = vec![0; x.len()];
    for g in groups {
        let m = g.members.iter().map(|&i| x[i]).max().unwrap_or(0);
        let e: Vec<i64> = g
            .members
            .iter()
            .map(|&i| table[(super::lut::shift_signed(x[i] - m, in_shift).max(lo) - lo) as usize])
            .collect();
        let s: i64 = e.iter().sum();
        for (&i, &ei) in g.members.iter().zip(&e) {
            y[i] = (ei << out_scale) / s;
        }
    }
    y
}

use crate::circuit::ctx::{Cell, Ctx};
use halo2_proofs::plonk::Error;

/// Circuit layout of [`reduce_i`] (+ rescale): sums are dot chains of ones, means divide with
/// the constant-divisor gadget, maxima use the product-chain maximum.
pub fn layout_reduce(
    ctx: &mut Ctx,
    kind: ReduceKind,
    groups: &GroupSpec,
    shift: u32,
    x: &[Cell],
    in_bits: u32,
    out_bits: u32,
) -> Result<Vec<Cell>, Error> {
    groups
        .groups()
        .iter()
        .map(|g| {
            let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
            match kind {
                ReduceKind::Max => ctx.max_of(&xs, in_bits),
                ReduceKind::Sum => {
                    let terms: Vec<(i128, &Cell)> = xs.iter().map(|c| (1, *c)).collect();
                    ctx.affine(0, &terms, shift, out_bits)
                }
                ReduceKind::Mean => {
                    let terms: Vec<(i128, &Cell)> = xs.iter().map(|c| (1, *c)).collect();
                    let (row, acc) = ctx.dot(0, &terms)?;
                    let d = g.divisor as i128;
                    ctx.divide_at(row, acc.v, d, d / 2, out_bits)
                }
            }
        })
        .collect()
}

/// Circuit layout of [`argmax`]: the one-hot argmax gadget per group.
pub fn layout_argmax(
    ctx: &mut Ctx,
    groups: &GroupSpec,
    x: &[Cell],
    in_bits: u32,
) -> Result<Vec<Cell>, Error> {
    groups
        .groups()
        .iter()
        .map(|g| {
            let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
            ctx.argmax_of(&xs, in_bits)
        })
        .collect()
}

/// Circuit layout of [`softmax_i`]: the group maximum, `x - max` shifted to the table's scale,
/// clamped below, looked up in the exp table, summed, and divided.
#[allow(clippy::too_many_arguments)]
pub fn layout_softmax(
    ctx: &mut Ctx,
    tag: u64,
    groups: &GroupSpec,
    (in_shift, lo, table): (i32, i64, &[i64]),
    out_scale: u32,
    x: &[Cell],
    in_bits: u32,
    out_bits: u32,
) -> Result<Vec<Cell>, Error> {
    let mut out: Vec<Option<Cell>> = vec![None; x.len()];
    let top = table.iter().copied().max().unwrap_or(1).max(1) as i128;
    for g in groups.groups() {
        let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
        let m = ctx.max_of(&xs, in_bits)?;
        let mut es = Vec::with_capacity(xs.len());
        for xi in &xs {
            let (t, t_bits) = if in_shift >= 0 {
                (
                    ctx.affine(0, &[(1, *xi), (-1, &m)], in_shift as u32, in_bits + 1)?,
                    in_bits + 1,
                )
            } else {
                let k = in_shift.unsigned_abs();
                let bits = in_bits + 1 + k;
                (
                    ctx.affine(0, &[(1i128 << k, *xi), (-(1i128 << k), &m)], 0, bits)?,
                    bits,
                )
            };
            let bits = t_bits.max(super::signed_bits(lo as i128)) + 1;
            let c = ctx.cmp_const(&t, lo as i128, false, bits)?;
            let e = c.v.map(|cv| table[(cv - lo as i128) as usize] as i128);
            es.push(ctx.lut(tag, &c, e)?);
        }
        let terms: Vec<(i128, &Cell)> = es.iter().map(|e| (1, e)).collect();
        let (_, s) = ctx.dot(0, &terms)?;
        let sbits = super::signed_bits(top * es.len() as i128);
        for (&i, e) in g.members.iter().zip(&es) {
            out[i] = Some(ctx.softmax_div(e, &s, out_scale, sbits, out_bits)?);
        }
    }
    out.into_iter().map(|c| c.ok_or(Error::Synthesis)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_groups_follow_row_major_order() {
        let g = GroupSpec::Axes {
            shape: vec![2, 3],
            axes: vec![1],
        };
        let gs = g.groups();
        assert_eq!(gs[0].members, vec![0, 1, 2]);
        assert_eq!(gs[1].members, vec![3, 4, 5]);
        let g = GroupSpec::Axes {
            shape: vec![2, 3],
            axes: vec![0],
        };
        assert_eq!(g.groups()[2].members, vec![2, 5]);
    }

    #[test]
    fn pool_divisor_counts_padding_or_not() {
        let p = Pool2d {
            n: 1,
            c: 1,
            h: 2,
            w: 2,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            pad: [1, 1],
            oh: 2,
            ow: 2,
            count_include_pad: false,
        };
        let gs = GroupSpec::Pool2d(p.clone()).groups();
        assert_eq!(gs[0].members.len(), 4);
        assert_eq!(gs[0].divisor, 4);
        let gs = GroupSpec::Pool2d(Pool2d {
            count_include_pad: true,
            ..p
        })
        .groups();
        assert_eq!(gs[0].divisor, 9);
    }

    #[test]
    fn argmax_breaks_ties_low() {
        let g = GroupSpec::Axes {
            shape: vec![4],
            axes: vec![0],
        }
        .groups();
        assert_eq!(argmax(&g, &[1, 5, 5, 2]), vec![1]);
    }
}
