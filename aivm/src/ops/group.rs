//! Groupings of elements, shared by the families that combine groups (reductions and pooling,
//! softmax, argmax). A [`GroupSpec`] lists, for every output (or every softmax row), the input
//! elements it reads, in axis order.

use serde::{Deserialize, Serialize};

use super::prod;
use crate::error::{AivmError, Result};
use crate::tensor::{numel, strides, unravel};
use crate::wire::{R, W};

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

/// Whether a grouping fits an input of `in_len` elements and every group is well formed.
pub fn groups_ok(g: &GroupSpec, in_len: usize) -> bool {
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

impl GroupSpec {
    /// Writes the grouping into the program encoding.
    pub fn encode(&self, w: &mut W) {
        match self {
            GroupSpec::Axes { shape, axes } => {
                w.u(0);
                w.usizes(shape);
                w.usizes(axes);
            }
            GroupSpec::Pool2d(p) => {
                w.u(1);
                w.usizes(&[
                    p.n,
                    p.c,
                    p.h,
                    p.w,
                    p.kh,
                    p.kw,
                    p.stride[0],
                    p.stride[1],
                    p.pad[0],
                    p.pad[1],
                    p.oh,
                    p.ow,
                ]);
                w.flag(p.count_include_pad);
            }
        }
    }

    /// Reads a grouping back.
    pub fn decode(r: &mut R) -> Result<GroupSpec> {
        Ok(match r.u()? {
            0 => GroupSpec::Axes {
                shape: r.usizes()?,
                axes: r.usizes()?,
            },
            1 => {
                let [n, c, h, w, kh, kw, s0, s1, p0, p1, oh, ow] = r.fixed::<12>()?;
                GroupSpec::Pool2d(Pool2d {
                    n,
                    c,
                    h,
                    w,
                    kh,
                    kw,
                    stride: [s0, s1],
                    pad: [p0, p1],
                    oh,
                    ow,
                    count_include_pad: r.flag()?,
                })
            }
            _ => return Err(AivmError::Decode("unknown group kind".into())),
        })
    }
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
}
