//! Data movement without arithmetic: Reshape (and Flatten, Squeeze, Unsqueeze), Transpose,
//! Concat, and selection by constant indices (Gather with constant indices, Slice). In the circuit
//! these are copy constraints only.

use serde::{Deserialize, Serialize};

use crate::tensor::{numel, strides, unravel};

/// Where each output element comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopySpec {
    /// Same data, new shape.
    Reshape,
    /// `out = in.permute(perm)`.
    Transpose {
        in_shape: Vec<usize>,
        perm: Vec<usize>,
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        axis: usize,
        in_shapes: Vec<Vec<usize>>,
    },
    /// `out[.., j, ..] = in[.., indices[j], ..]` along `axis`.
    Select {
        in_shape: Vec<usize>,
        axis: usize,
        indices: Vec<usize>,
    },
}

impl CopySpec {
    /// The shape this copy produces before any final reshape (Reshape itself keeps `in_shape`).
    pub fn natural_shape(&self, in_shape: &[usize]) -> Vec<usize> {
        match self {
            CopySpec::Reshape => in_shape.to_vec(),
            CopySpec::Transpose { in_shape, perm } => perm.iter().map(|&p| in_shape[p]).collect(),
            CopySpec::Concat { axis, in_shapes } => {
                let mut s = in_shapes[0].clone();
                s[*axis] = in_shapes.iter().map(|s| s[*axis]).sum();
                s
            }
            CopySpec::Select {
                in_shape,
                axis,
                indices,
            } => {
                let mut s = in_shape.clone();
                s[*axis] = indices.len();
                s
            }
        }
    }

    /// For every output element (row-major), `(input number, flat index in that input)`. The
    /// output's row-major order is that of [`CopySpec::natural_shape`]; any final shape with the
    /// same number of elements reads the same sequence.
    pub fn sources(&self, in_len: usize) -> Vec<(usize, usize)> {
        let out_shape = match self {
            CopySpec::Reshape => vec![in_len],
            CopySpec::Transpose { in_shape, .. } | CopySpec::Select { in_shape, .. } => {
                self.natural_shape(in_shape)
            }
            CopySpec::Concat { in_shapes, .. } => self.natural_shape(&in_shapes[0]),
        };
        let out_shape = &out_shape[..];
        let total = numel(out_shape);
        match self {
            CopySpec::Reshape => (0..in_len).map(|i| (0, i)).collect(),
            CopySpec::Transpose { in_shape, perm } => {
                let st = strides(in_shape);
                (0..total)
                    .map(|o| {
                        let oi = unravel(o, out_shape);
                        (0, perm.iter().zip(&oi).map(|(&p, &i)| i * st[p]).sum())
                    })
                    .collect()
            }
            CopySpec::Concat { axis, in_shapes } => {
                let mut offsets = Vec::with_capacity(in_shapes.len());
                let mut acc = 0;
                for s in in_shapes {
                    offsets.push(acc);
                    acc += s[*axis];
                }
                (0..total)
                    .map(|o| {
                        let mut oi = unravel(o, out_shape);
                        let which = offsets
                            .iter()
                            .rposition(|&off| off <= oi[*axis])
                            .unwrap_or(0);
                        oi[*axis] -= offsets[which];
                        let st = strides(&in_shapes[which]);
                        (which, oi.iter().zip(&st).map(|(i, s)| i * s).sum())
                    })
                    .collect()
            }
            CopySpec::Select {
                in_shape,
                axis,
                indices,
            } => {
                let st = strides(in_shape);
                (0..total)
                    .map(|o| {
                        let mut oi = unravel(o, out_shape);
                        oi[*axis] = indices[oi[*axis]];
                        (0, oi.iter().zip(&st).map(|(i, s)| i * s).sum())
                    })
                    .collect()
            }
        }
    }
}

/// Applies a copy to typed data.
pub fn apply<T: Copy>(spec: &CopySpec, inputs: &[&[T]]) -> Vec<T> {
    let in_len = inputs.first().map_or(0, |x| x.len());
    spec.sources(in_len)
        .into_iter()
        .map(|(k, i)| inputs[k][i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_concat_select() {
        let t = CopySpec::Transpose {
            in_shape: vec![2, 3],
            perm: vec![1, 0],
        };
        assert_eq!(apply(&t, &[&[1, 2, 3, 4, 5, 6]]), vec![1, 4, 2, 5, 3, 6]);
        let c = CopySpec::Concat {
            axis: 1,
            in_shapes: vec![vec![2, 1], vec![2, 2]],
        };
        assert_eq!(apply(&c, &[&[1, 2], &[3, 4, 5, 6]]), vec![1, 3, 4, 2, 5, 6]);
        let s = CopySpec::Select {
            in_shape: vec![1, 4],
            axis: 1,
            indices: vec![3, 0],
        };
        assert_eq!(apply(&s, &[&[7, 8, 9, 10]]), vec![10, 7]);
    }
}
