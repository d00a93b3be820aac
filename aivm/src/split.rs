//! Splits: a convolution too big for one segment, with the channel-local ops after it (affine
//! maps, ReLU, elementwise ops of two such tensors, 2-D pooling), is rewritten into a grid of
//! chains over ranges of output channels and of output rows, followed by Concats of their
//! outputs (along rows, then along channels).
//!
//! The rewrite computes exactly the values of the original: each output channel of a
//! convolution reads only its own weights and bias, each output row only a band of input rows
//! (a row part reads that band through a Select, a copy that costs no rows); the ops after it
//! act on each channel and row alone (row parts need pooling windows that tile the rows); the
//! last Concat writes the original chain's output tensor, so everything after it is
//! unchanged. A verifier applies the rewrite itself, from the proof's list of
//! `(node, parts)`: the prover chooses where the program is cut, never what is proven.

use std::collections::HashMap;

use crate::error::{AivmError, Result};
use crate::ops::Op;
use crate::ops::copy::CopySpec;
use crate::ops::group::GroupSpec;
use crate::ops::linear::LinearGeom;
use crate::program::{PNode, Program, TensorMeta};
use crate::tensor::Tensor;

/// Split the chain starting at node `node` into `channels` ranges of output channels times
/// `rows` ranges of its output rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub node: usize,
    pub channels: usize,
    pub rows: usize,
}

fn split_err(reason: impl Into<String>) -> AivmError {
    AivmError::Segment(reason.into())
}

/// Whether node `n` acts on each channel of an NCHW (batch 1) tensor alone, in a way
/// [`slice_op`] can restrict to a range of channels.
fn channel_local(n: &PNode, program: &Program) -> bool {
    let shape = &program.tensors[n.output].shape;
    if shape.len() != 4 || shape[0] != 1 {
        return false;
    }
    let same = n.inputs.iter().all(|&t| program.tensors[t].shape == *shape);
    match &n.op {
        Op::Relu(_) => n.inputs.len() == 1,
        Op::Affine(_) => n.inputs.len() == 1 && same,
        // Elementwise over activations of the output's shape (no broadcasting).
        Op::Binary(_) => same,
        Op::Reduce(r) => n.inputs.len() == 1 && matches!(r.groups, GroupSpec::Pool2d(_)),
        _ => false,
    }
}

/// The chain a split of node `start` covers: a batch-1 2-D convolution, then following nodes
/// that read only tensors of the chain and act on each channel alone, as far as every tensor
/// the chain produces before its last node is read only inside it (and is not an output).
pub fn chain(program: &Program, start: usize) -> Option<std::ops::Range<usize>> {
    let n = program.nodes.get(start)?;
    match &n.op {
        Op::Linear(l) => match &l.geom {
            LinearGeom::Conv2d(c) if c.n == 1 && c.c_out > 1 => {}
            // A matrix product splits alone, by output columns.
            LinearGeom::MatMul { n, .. } if *n > 1 => return Some(start..start + 1),
            _ => return None,
        },
        _ => return None,
    }
    let mut end = start + 1;
    while let Some(next) = program.nodes.get(end) {
        let inside = |t: usize| program.nodes[start..end].iter().any(|n| n.output == t);
        if !next.inputs.iter().all(|&t| inside(t)) || !channel_local(next, program) {
            break;
        }
        end += 1;
    }
    // Shrink until the chain is closed: its inner tensors are read nowhere else.
    let closed = |end: usize| {
        program.nodes[start..end - 1].iter().all(|n| {
            let t = n.output;
            !program.outputs.iter().any(|o| o.tensor == t)
                && program.nodes[end..].iter().all(|m| !m.inputs.contains(&t))
        })
    };
    while !closed(end) {
        end -= 1;
    }
    Some(start..end)
}

/// `t` restricted to `[a, b)` of axis `from_end` (counted from the last, 1-based) of a tensor
/// of `dim` there it is broadcast to: constants are aligned to the right; a constant without
/// that axis (or of size 1 on it) is kept whole.
fn slice_const(t: &Tensor<i64>, from_end: usize, dim: usize, a: usize, b: usize) -> Tensor<i64> {
    let r = t.shape.len();
    if r < from_end || t.shape[r - from_end] != dim || dim == 1 {
        return t.clone();
    }
    let ax = r - from_end;
    let c = dim;
    let outer: usize = t.shape[..ax].iter().product();
    let inner: usize = t.shape[ax + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * (b - a) * inner);
    for o in 0..outer {
        data.extend_from_slice(&t.data[(o * c + a) * inner..(o * c + b) * inner]);
    }
    let mut shape = t.shape.clone();
    shape[ax] = b - a;
    Tensor { shape, data }
}

/// A part of a split chain: output channels `[a, b)` of `c`, and rows `[q0, q1)` of the
/// chain's last output (`s` of them per row of that output at each tensor, see [`stretch`]).
#[derive(Clone, Copy)]
struct Part {
    c: usize,
    a: usize,
    b: usize,
    q0: usize,
    q1: usize,
}

/// The op of a chain node restricted to a part; with row parts, `rows` holds the node
/// output's rows per row of the chain's output and its number of rows.
fn slice_op(op: &Op, part: Part, rows: Option<(usize, usize)>) -> Result<Op> {
    let Part { c, a, b, q0, q1 } = part;
    let (stretch, h) = rows.unwrap_or((1, 1));
    let (r0, r1) = (q0 * stretch, q1 * stretch);
    Ok(match op {
        Op::Linear(l) => {
            let mut l = l.clone();
            let LinearGeom::Conv2d(g) = &mut l.geom else {
                return Err(split_err("only convolutions split"));
            };
            let per = g.c_in * g.kh * g.kw;
            g.c_out = b - a;
            l.weight = l.weight[a * per..b * per].to_vec();
            l.bias = l.bias[a..b].to_vec();
            if rows.is_some() {
                let (first, last) = band(g, r0, r1);
                g.pad[0] = g.pad[0] + first - r0 * g.stride[0];
                g.h = last - first;
                g.oh = r1 - r0;
            }
            Op::Linear(l)
        }
        Op::Affine(f) => {
            let mut f = f.clone();
            let slice = |t: &Tensor<i64>| {
                let t = slice_const(t, 3, c, a, b);
                match rows {
                    Some(_) => slice_const(&t, 2, h, r0, r1),
                    None => t,
                }
            };
            f.mul = f.mul.as_ref().map(slice);
            f.add = f.add.as_ref().map(slice);
            Op::Affine(f)
        }
        Op::Relu(_) | Op::Binary(_) => op.clone(),
        Op::Reduce(r) => {
            let mut r = r.clone();
            let GroupSpec::Pool2d(p) = &mut r.groups else {
                return Err(split_err("only 2-D pooling splits"));
            };
            p.c = b - a;
            if rows.is_some() {
                p.h = (r1 - r0) * p.stride[0];
                p.oh = r1 - r0;
            }
            Op::Reduce(r)
        }
        _ => return Err(split_err("this op does not split")),
    })
}

/// The input rows `[first, last)` a convolution's output rows `[r0, r1)` read (clipped to
/// the input: rows outside it are padding).
fn band(g: &crate::ops::linear::Conv2d, r0: usize, r1: usize) -> (usize, usize) {
    let reach = g.dilation[0] * (g.kh - 1) + 1;
    let first = (r0 * g.stride[0]).saturating_sub(g.pad[0]);
    let last = ((r1 - 1) * g.stride[0] + reach)
        .saturating_sub(g.pad[0])
        .min(g.h);
    (first, last.max(first + 1))
}

/// Rows of each chain tensor per row of the chain's last output (pools multiply by their
/// stride), or `None` when a pool's windows do not tile its rows (no row split then).
fn stretch(program: &Program, range: &std::ops::Range<usize>) -> Option<HashMap<usize, usize>> {
    let nodes = &program.nodes[range.clone()];
    let mut s: HashMap<usize, usize> = HashMap::new();
    s.insert(nodes.last()?.output, 1);
    for n in nodes.iter().rev() {
        let so = *s.get(&n.output)?;
        let si = match &n.op {
            Op::Reduce(r) => match &r.groups {
                GroupSpec::Pool2d(p)
                    if p.pad[0] == 0 && p.kh == p.stride[0] && p.h == p.oh * p.stride[0] =>
                {
                    so * p.stride[0]
                }
                _ => return None,
            },
            _ => so,
        };
        if !matches!(n.op, Op::Linear(_)) {
            for &t in &n.inputs {
                if s.get(&t).is_some_and(|&x| x != si) {
                    return None;
                }
                s.insert(t, si);
            }
        }
    }
    Some(s)
}

/// How many parts of each kind a chain allows: its output channels and output rows (1 when
/// its pools do not tile).
pub fn limits(program: &Program, start: usize) -> Option<(usize, usize)> {
    let range = chain(program, start)?;
    if let Op::Linear(l) = &program.nodes[start].op
        && let LinearGeom::MatMul { n, .. } = l.geom
    {
        return Some((n, 1));
    }
    let out = &program.tensors[program.nodes[range.end - 1].output].shape;
    let rows = if stretch(program, &range).is_some() {
        out[2]
    } else {
        1
    };
    Some((out[1], rows))
}

/// The program with the chain at `split.node` split into a grid of channel and row ranges (as
/// even as they divide), in order: the Selects of input bands first, then each part's chain,
/// then the Concats writing the chain's output.
pub fn apply(program: &Program, split: Split) -> Result<Program> {
    let range = chain(program, split.node).ok_or_else(|| {
        split_err(format!(
            "node {} does not start a convolution chain",
            split.node
        ))
    })?;
    let (c, h) = limits(program, split.node).expect("a chain");
    if split.channels == 0
        || split.rows == 0
        || split.channels * split.rows < 2
        || split.channels > c
        || split.rows > h
    {
        return Err(split_err(format!(
            "{} x {} parts for {c} channels and {h} rows",
            split.channels, split.rows
        )));
    }
    let conv = &program.nodes[range.start];
    if let Op::Linear(l) = &conv.op
        && let LinearGeom::MatMul { .. } = l.geom
    {
        return Ok(split_columns(program, range.start, split.channels));
    }
    let stretch = stretch(program, &range).unwrap_or_default();
    let Op::Linear(l) = &conv.op else {
        return Err(split_err("a chain starts with a convolution"));
    };
    let LinearGeom::Conv2d(g) = &l.geom else {
        return Err(split_err("a chain starts with a convolution"));
    };
    let x = conv.inputs[0];
    let mut p = program.clone();
    let ranges = |n: usize, parts: usize| -> Vec<(usize, usize)> {
        (0..parts)
            .map(|i| (i * n / parts, (i + 1) * n / parts))
            .collect()
    };
    let row_parts = ranges(h, split.rows);
    let mut nodes = Vec::new();
    let mut concats = Vec::new();
    let mut channel_outs = Vec::new();
    for (a, b) in ranges(c, split.channels) {
        let mut row_outs = Vec::new();
        for &(q0, q1) in &row_parts {
            let part = Part { c, a, b, q0, q1 };
            // The input band this part reads (the whole input without row parts), built
            // from the pieces of the input where it is a Concat: each part then reads only
            // the pieces it needs.
            let input = if split.rows == 1 {
                x
            } else {
                let s = stretch[&conv.output];
                let (first, last) = band(g, q0 * s, q1 * s);
                rows_of(&mut p, &mut nodes, x, first, last, &conv.name)
            };
            let mut slice: HashMap<usize, usize> = HashMap::new();
            slice.insert(x, input);
            let mut prev = 0;
            for n in &program.nodes[range.clone()] {
                let meta = &program.tensors[n.output];
                let st = stretch.get(&n.output).copied().unwrap_or(1);
                let rows = if split.rows == 1 {
                    meta.shape[2]
                } else {
                    (q1 - q0) * st
                };
                let out = new_tensor(&mut p, meta, b - a, rows);
                let part_op = if split.rows == 1 {
                    slice_op(&n.op, part, None)?
                } else {
                    slice_op(&n.op, part, Some((st, meta.shape[2])))?
                };
                nodes.push(PNode {
                    name: format!("{}[c{a}..{b},r{q0}..{q1}]", n.name),
                    onnx_op: n.onnx_op.clone(),
                    op: part_op,
                    inputs: n
                        .inputs
                        .iter()
                        .map(|t| slice.get(t).copied().unwrap_or(*t))
                        .collect(),
                    output: out,
                });
                slice.insert(n.output, out);
                prev = out;
            }
            row_outs.push(prev);
        }
        channel_outs.push((a, b, row_outs));
    }
    let last = &program.nodes[range.end - 1];
    let out_meta = program.tensors[last.output].clone();
    let mut finals = Vec::new();
    for (a, b, row_outs) in channel_outs {
        if row_outs.len() == 1 {
            finals.push(row_outs[0]);
            continue;
        }
        let t = if split.channels == 1 {
            last.output
        } else {
            new_tensor(&mut p, &out_meta, b - a, out_meta.shape[2])
        };
        concats.push(concat_node(
            &p,
            format!("{}/concat_rows[c{a}..{b}]", last.name),
            2,
            row_outs,
            t,
        ));
        finals.push(t);
    }
    if split.channels > 1 {
        concats.push(concat_node(
            &p,
            format!("{}/concat", last.name),
            1,
            finals,
            last.output,
        ));
    }
    nodes.extend(concats);
    p.nodes.splice(range, nodes);
    // Copies nobody reads any more (a Concat the parts read piece by piece) go.
    while let Some(i) = p.nodes.iter().position(|n| {
        matches!(n.op, Op::Copy(_))
            && !p.outputs.iter().any(|o| o.tensor == n.output)
            && !p.nodes.iter().any(|m| m.inputs.contains(&n.output))
    }) {
        p.nodes.remove(i);
    }
    Ok(p)
}

/// The program with the matrix product at `node` (`x [batch, m, k] · W [k, n]`) split into
/// `parts` ranges of output columns, and a Concat of them along the last axis.
fn split_columns(program: &Program, node: usize, parts: usize) -> Program {
    let mut p = program.clone();
    let orig = &program.nodes[node];
    let Op::Linear(l) = &orig.op else {
        unreachable!("a matrix product")
    };
    let LinearGeom::MatMul { batch, m, k, n } = l.geom else {
        unreachable!("a matrix product")
    };
    let meta = &program.tensors[orig.output];
    let axis = meta.shape.len() - 1;
    let mut nodes = Vec::new();
    let mut outs = Vec::new();
    for i in 0..parts {
        let (a, b) = (i * n / parts, (i + 1) * n / parts);
        let mut part = l.clone();
        part.geom = LinearGeom::MatMul {
            batch,
            m,
            k,
            n: b - a,
        };
        part.weight = (0..k)
            .flat_map(|kk| l.weight[kk * n + a..kk * n + b].iter().copied())
            .collect();
        part.bias = l.bias[a..b].to_vec();
        let mut shape = meta.shape.clone();
        shape[axis] = b - a;
        p.tensors.push(TensorMeta {
            shape,
            ..meta.clone()
        });
        let out = p.tensors.len() - 1;
        nodes.push(PNode {
            name: format!("{}[n{a}..{b}]", orig.name),
            onnx_op: orig.onnx_op.clone(),
            op: Op::Linear(part),
            inputs: orig.inputs.clone(),
            output: out,
        });
        outs.push(out);
    }
    nodes.push(concat_node(
        &p,
        format!("{}/concat", orig.name),
        axis,
        outs,
        orig.output,
    ));
    p.nodes.splice(node..node + 1, nodes);
    p
}

/// Rows `[first, last)` of NCHW tensor `t`, as a tensor: `t` itself, or copies appended to
/// `out` (through the pieces of a Concat along channels or rows, down to the pieces that hold
/// those rows, then a Select).
fn rows_of(
    p: &mut Program,
    out: &mut Vec<PNode>,
    t: usize,
    first: usize,
    last: usize,
    name: &str,
) -> usize {
    let meta = p.tensors[t].clone();
    if first == 0 && last == meta.shape[2] {
        return t;
    }
    let concat = p
        .nodes
        .iter()
        .find(|n| n.output == t)
        .and_then(|n| match &n.op {
            Op::Copy(CopySpec::Concat { axis, in_shapes }) if meta.shape.len() == 4 => {
                Some((*axis, in_shapes.clone(), n.inputs.clone()))
            }
            _ => None,
        });
    let join = |p: &mut Program, out: &mut Vec<PNode>, axis: usize, subs: Vec<usize>| {
        if subs.len() == 1 {
            return subs[0];
        }
        let y = new_tensor(p, &meta, meta.shape[1], last - first);
        out.push(concat_node(
            p,
            format!("{name}/in_rows{first}..{last}"),
            axis,
            subs,
            y,
        ));
        y
    };
    match concat {
        Some((1, _, pieces)) => {
            let subs = pieces
                .iter()
                .map(|&q| rows_of(p, out, q, first, last, name))
                .collect();
            join(p, out, 1, subs)
        }
        Some((2, shapes, pieces)) => {
            let mut subs = Vec::new();
            let mut off = 0;
            for (q, shape) in pieces.iter().zip(&shapes) {
                let (lo, hi) = (first.max(off), last.min(off + shape[2]));
                if lo < hi {
                    subs.push(rows_of(p, out, *q, lo - off, hi - off, name));
                }
                off += shape[2];
            }
            join(p, out, 2, subs)
        }
        _ => {
            let y = new_tensor(p, &meta, meta.shape[1], last - first);
            out.push(PNode {
                name: format!("{name}/in_rows{first}..{last}"),
                onnx_op: "Slice".into(),
                op: Op::Copy(CopySpec::Select {
                    in_shape: meta.shape.clone(),
                    axis: 2,
                    indices: (first..last).collect(),
                }),
                inputs: vec![t],
                output: y,
            });
            y
        }
    }
}

/// A Concat of tensors `ins` of `p` along `axis`, written to `out`.
fn concat_node(p: &Program, name: String, axis: usize, ins: Vec<usize>, out: usize) -> PNode {
    PNode {
        name,
        onnx_op: "Concat".into(),
        op: Op::Copy(CopySpec::Concat {
            axis,
            in_shapes: ins.iter().map(|&t| p.tensors[t].shape.clone()).collect(),
        }),
        inputs: ins,
        output: out,
    }
}

/// Adds a tensor like `meta` with `ch` channels and `rows` rows; returns its id.
fn new_tensor(p: &mut Program, meta: &TensorMeta, ch: usize, rows: usize) -> usize {
    let mut shape = meta.shape.clone();
    shape[1] = ch;
    shape[2] = rows;
    p.tensors.push(TensorMeta {
        shape,
        ..meta.clone()
    });
    p.tensors.len() - 1
}

/// The program with every split applied, in order.
pub fn apply_all(program: &Program, splits: &[Split]) -> Result<Program> {
    let mut p = program.clone();
    for &s in splits {
        p = apply(&p, s)?;
    }
    Ok(p)
}
