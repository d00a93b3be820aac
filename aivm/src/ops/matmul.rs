//! MatMul of two activations, as attention computes `Q·Kᵀ` and `P·V`: ONNX's (numpy's) matmul,
//! with the batch dimensions broadcast against each other and 1-D operands promoted to
//! matrices. Every output is `rescale(Σ a·b, shift)`, laid out as a product chain (the `pdot`
//! gate, four products per row) followed by the rescale gadget. MatMul with a constant operand
//! is a [`super::linear`] op instead: its weights are fixed columns, not products.

use halo2_proofs::plonk::Error as PlonkError;

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, params_if, prod,
    shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{DType, FOp, Node};
use crate::onnx::{Cx, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::{broadcast_map, broadcast_shape, numel};
use crate::wire::{R, W};

const KIND: &str = "matmul";

/// Where the operands of each output come from: A is `a_batch ++ [m, k]`, B is
/// `b_batch ++ [k, n]` (batch shapes of equal rank that broadcast against each other), the
/// output `broadcast(a_batch, b_batch) ++ [m, n]`, all row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatGeom {
    pub a_batch: Vec<usize>,
    pub b_batch: Vec<usize>,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

impl MatGeom {
    /// The broadcast batch shape, if the batch shapes broadcast.
    pub fn out_batch(&self) -> Option<Vec<usize>> {
        (self.a_batch.len() == self.b_batch.len())
            .then(|| broadcast_shape(&self.a_batch, &self.b_batch))
            .flatten()
    }

    fn sizes_ok(&self) -> bool {
        let Some(ob) = self.out_batch() else {
            return false;
        };
        let dims = |b: &[usize], x: usize, y: usize| prod(&[prod(b).unwrap_or(usize::MAX), x, y]);
        dims(&self.a_batch, self.m, self.k).is_some()
            && dims(&self.b_batch, self.k, self.n).is_some()
            && dims(&ob, self.m, self.n).is_some()
            && prod(&[numel(&ob), self.m, self.n, self.k]).is_some()
    }

    /// Number of output elements.
    pub fn out_len(&self) -> usize {
        self.out_batch().map_or(0, |b| numel(&b)) * self.m * self.n
    }

    /// For every output in order, its products as `(a_index, b_index)` pairs; nothing for an
    /// invalid geometry ([`MatGeom::out_batch`] is `None`).
    pub fn outputs(&self) -> impl Iterator<Item = impl Iterator<Item = (usize, usize)>> {
        let (am, bm) = match self.out_batch() {
            Some(ob) => (
                broadcast_map(&self.a_batch, &ob),
                broadcast_map(&self.b_batch, &ob),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let (m, k, n) = (self.m, self.k, self.n);
        am.into_iter().zip(bm).flat_map(move |(ab, bb)| {
            (0..m).flat_map(move |i| {
                (0..n).map(move |j| {
                    let (a0, b0) = ((ab * m + i) * k, bb * k * n + j);
                    (0..k).map(move |kk| (a0 + kk, b0 + kk * n))
                })
            })
        })
    }

    fn macs(&self) -> u64 {
        (self.out_len() * self.k) as u64
    }
}

/// The float op.
#[derive(Clone, Debug, PartialEq)]
pub struct FMatMul(pub MatGeom);

/// The integer op: `rescale(Σ a·b, shift)` per output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatMul {
    pub geom: MatGeom,
    pub shift: u32,
}

impl FloatOp for FMatMul {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        let (x, y) = (a.ins[0], a.ins[1]);
        self.0
            .outputs()
            .map(|terms| terms.map(|(i, j)| x[i] * y[j]).sum())
            .collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        self.0.macs()
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let nat = q.meta(n.inputs[0]).scale + q.meta(n.inputs[1]).scale;
        let m_out = q.max_abs(n.output);
        let s = q.choose(m_out).min(nat);
        let op = Op::MatMul(MatMul {
            geom: self.0.clone(),
            shift: nat - s,
        });
        Ok(Quantized::real(op, s, q.bits(m_out, s)?))
    }
}

impl IntOp for MatMul {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        2
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        let (x, y) = (a.ins[0], a.ins[1]);
        Ok(self
            .geom
            .outputs()
            .map(|terms| super::rescale(terms.map(|(i, j)| x[i] * y[j]).sum(), self.shift))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let g = &self.geom;
        params_if(
            g.sizes_ok()
                && numel(&ins[0].shape) == numel(&g.a_batch) * g.m * g.k
                && numel(&ins[1].shape) == numel(&g.b_batch) * g.k * g.n
                && numel(&out.shape) == g.out_len()
                && shift_ok(self.shift),
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        // Every partial sum of the chain is at most k products in magnitude.
        (self.geom.k.max(1) as i128)
            .checked_mul(magnitude(ins[0]) * magnitude(ins[1]))
            .is_some_and(|v| v < LIMIT)
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        None
    }

    fn macs(&self, _out_len: usize) -> u64 {
        self.geom.macs()
    }

    fn params(&self) -> u64 {
        0
    }

    fn lookups(&self, _out_len: usize) -> u64 {
        0
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        None
    }

    /// One product chain per output, then its rescale.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (x, y) = (a.ins[0], a.ins[1]);
        self.geom
            .outputs()
            .map(|terms| {
                let pairs: Vec<(&Cell, &Cell)> = terms.map(|(i, j)| (&x[i], &y[j])).collect();
                let (row, acc) = ctx.pdot(&pairs)?;
                ctx.rescale_at(row, acc.v, self.shift, a.out.bits)
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        let g = &self.geom;
        w.usizes(&g.a_batch);
        w.usizes(&g.b_batch);
        w.usizes(&[g.m, g.k, g.n]);
        w.u(self.shift as u64);
    }
}

impl Decode for MatMul {
    fn decode(r: &mut R) -> Result<Self> {
        let (a_batch, b_batch) = (r.usizes()?, r.usizes()?);
        let [m, k, n] = r.fixed::<3>()?;
        Ok(MatMul {
            geom: MatGeom {
                a_batch,
                b_batch,
                m,
                k,
                n,
            },
            shift: r.u32()?,
        })
    }
}

/// `MatMul` of two float activations (the lowering of ONNX `MatMul` when neither operand is a
/// constant): numpy's rules, a 1-D A is a row `[1, k]` and a 1-D B a column `[k, 1]`, whose
/// added dimension the output drops.
pub fn lower(cx: &mut Cx, n: &NodeIn, a: &Val, b: &Val) -> Result<Val> {
    let (ia, ib) = (cx.float_act(a, n)?, cx.float_act(b, n)?);
    let (sa, sb) = (cx.shape(a), cx.shape(b));
    if sa.is_empty() || sb.is_empty() {
        return Err(n.err("MatMul operands must have rank 1 or more"));
    }
    let (ra, rb) = (sa.len().max(2), sb.len().max(2));
    let (m, k) = if sa.len() == 1 {
        (1, sa[0])
    } else {
        (sa[ra - 2], sa[ra - 1])
    };
    let (kb, nn) = if sb.len() == 1 {
        (sb[0], 1)
    } else {
        (sb[rb - 2], sb[rb - 1])
    };
    if k != kb {
        return Err(n.err(format!(
            "inner dimensions differ: {} x {}",
            crate::error::ShapeDisplay(sa.clone()),
            crate::error::ShapeDisplay(sb.clone())
        )));
    }
    let rank = ra.max(rb) - 2;
    let pad = |s: &[usize]| -> Vec<usize> {
        let batch = &s[..s.len().saturating_sub(2)];
        let mut v = vec![1; rank - batch.len()];
        v.extend_from_slice(batch);
        v
    };
    let geom = MatGeom {
        a_batch: pad(&sa),
        b_batch: pad(&sb),
        m,
        k,
        n: nn,
    };
    let Some(batch) = geom.out_batch() else {
        return Err(n.err(format!(
            "batch dimensions do not broadcast: {} x {}",
            crate::error::ShapeDisplay(sa.clone()),
            crate::error::ShapeDisplay(sb.clone())
        )));
    };
    if !geom.sizes_ok() {
        return Err(n.err("MatMul is too large"));
    }
    let mut out = batch;
    if sa.len() > 1 {
        out.push(m);
    }
    if sb.len() > 1 {
        out.push(nn);
    }
    Ok(cx.push(n, FOp::MatMul(FMatMul(geom)), vec![ia, ib], out, DType::F32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_broadcast_and_index_row_major() {
        // A: [2, 1, 2] (two batches of one row), B: [1, 2, 2] (one matrix for both).
        let g = MatGeom {
            a_batch: vec![2],
            b_batch: vec![1],
            m: 1,
            k: 2,
            n: 2,
        };
        let op = MatMul { geom: g, shift: 0 };
        let a = [1, 2, 3, 4];
        let b = [1, 0, 1, 10];
        let meta = TensorMeta {
            shape: vec![2, 1, 2],
            dtype: DType::F32,
            scale: 0,
            bits: 8,
        };
        let out = meta.clone();
        let args = IntArgs {
            node: "mm",
            ins: vec![&a, &b],
            in_meta: vec![&meta, &meta],
            out: &out,
        };
        // [1,2]·[[1,0],[1,10]] = [3, 20]; [3,4]·... = [7, 40]
        assert_eq!(op.eval(&args).unwrap(), vec![3, 20, 7, 40]);
    }
}
