//! Add, Sub and Mul of two activations (numpy broadcasting), and the lowering of ONNX
//! Add/Sub/Mul/Div in general: two constants fold, an activation and a constant become an
//! [`super::affine`] map, two activations a binary op.

use halo2_proofs::plonk::Error as PlonkError;
use serde::{Deserialize, Serialize};

use super::affine::FAffine;
use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, params_if,
    shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{DType, FOp, Node};
use crate::onnx::{CData, Const, Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::{Tensor, broadcast_map, broadcast_shape};
use crate::wire::{R, W};

const KIND: &str = "binary";

/// The ONNX arithmetic ops.
pub const ONNX: &[(&str, Lowering)] = &[
    ("Add", arith),
    ("Div", arith),
    ("Mul", arith),
    ("Sub", arith),
];

/// Add, Sub or Mul of two activations (with numpy broadcasting); the float op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinKind {
    Add,
    Sub,
    Mul,
}

impl BinKind {
    pub fn apply_f(self, a: f64, b: f64) -> f64 {
        match self {
            BinKind::Add => a + b,
            BinKind::Sub => a - b,
            BinKind::Mul => a * b,
        }
    }
}

/// Add/Sub: `rescale((a << la) ± (b << lb), shift)`; Mul: `rescale(a·b, shift)` (la = lb = 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    pub kind: BinKind,
    pub la: u32,
    pub lb: u32,
    pub shift: u32,
}

/// Evaluates `f(a[i], b[j])` over the broadcast output shape.
pub fn binary<T: Copy, U>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    f: impl Fn(T, T) -> U,
) -> Vec<U> {
    let ma = broadcast_map(a_shape, out_shape);
    let mb = broadcast_map(b_shape, out_shape);
    ma.iter().zip(&mb).map(|(&i, &j)| f(a[i], b[j])).collect()
}

fn macs(kind: BinKind, out_len: usize) -> u64 {
    match kind {
        BinKind::Mul => out_len as u64,
        BinKind::Add | BinKind::Sub => 0,
    }
}

impl FloatOp for BinKind {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        let (x, y) = (a.ins[0], a.ins[1]);
        binary(x, a.in_shapes[0], y, a.in_shapes[1], a.out_shape, |p, q| {
            self.apply_f(p, q)
        })
    }

    fn macs(&self, out_len: usize) -> u64 {
        macs(*self, out_len)
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let sx = q.meta(n.inputs[0]).scale;
        let sy = q.meta(n.inputs[1]).scale;
        let m_out = q.max_abs(n.output);
        let (la, lb, nat) = match self {
            BinKind::Mul => (0, 0, sx + sy),
            BinKind::Add | BinKind::Sub => {
                let nat = sx.max(sy);
                (nat - sx, nat - sy, nat)
            }
        };
        let s = q.choose(m_out).min(nat);
        let op = Op::Binary(Binary {
            kind: *self,
            la,
            lb,
            shift: nat - s,
        });
        Ok(Quantized::real(op, s, q.bits(m_out, s)?))
    }
}

impl IntOp for Binary {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        2
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        let (x, y) = (a.ins[0], a.ins[1]);
        let (sa, sb) = (&a.in_meta[0].shape, &a.in_meta[1].shape);
        Ok(binary(x, sa, y, sb, &a.out.shape, |p, q| {
            let v = match self.kind {
                BinKind::Add => (p << self.la) + (q << self.lb),
                BinKind::Sub => (p << self.la) - (q << self.lb),
                BinKind::Mul => p * q,
            };
            super::rescale(v, self.shift)
        }))
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(
            broadcast_shape(&ins[0].shape, &ins[1].shape).as_deref() == Some(&out.shape[..])
                && shift_ok(self.la)
                && shift_ok(self.lb)
                && shift_ok(self.shift),
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        let (x, y) = (magnitude(ins[0]), magnitude(ins[1]));
        match self.kind {
            BinKind::Mul => x * y < LIMIT,
            BinKind::Add | BinKind::Sub => (x << self.la) + (y << self.lb) < LIMIT,
        }
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        None
    }

    fn macs(&self, out_len: usize) -> u64 {
        macs(self.kind, out_len)
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

    /// Add/Sub are a two-lane dot row, Mul the product gate; then the rescale.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (x, y) = (a.ins[0], a.ins[1]);
        let ma = broadcast_map(&a.in_meta[0].shape, &a.out.shape);
        let mb = broadcast_map(&a.in_meta[1].shape, &a.out.shape);
        let (wa, wb) = (1i128 << self.la, 1i128 << self.lb);
        let bits = a.out.bits;
        ma.iter()
            .zip(&mb)
            .map(|(&i, &j)| match self.kind {
                BinKind::Add => ctx.affine(0, &[(wa, &x[i]), (wb, &y[j])], self.shift, bits),
                BinKind::Sub => ctx.affine(0, &[(wa, &x[i]), (-wb, &y[j])], self.shift, bits),
                BinKind::Mul => ctx.mul(&x[i], &y[j], self.shift, bits),
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        w.u(match self.kind {
            BinKind::Add => 0,
            BinKind::Sub => 1,
            BinKind::Mul => 2,
        });
        w.u(self.la as u64);
        w.u(self.lb as u64);
        w.u(self.shift as u64);
    }
}

impl Decode for Binary {
    fn decode(r: &mut R) -> Result<Self> {
        let kind = match r.u()? {
            0 => BinKind::Add,
            1 => BinKind::Sub,
            2 => BinKind::Mul,
            _ => return Err(AivmError::Decode("unknown binary op".into())),
        };
        Ok(Binary {
            kind,
            la: r.u32()?,
            lb: r.u32()?,
            shift: r.u32()?,
        })
    }
}

/// `Add`, `Sub`, `Mul`, `Div`.
fn arith(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let (a, b) = (n.input(0)?, n.input(1)?);
    let op = n.op;
    let (sa, sb) = (cx.shape(&a), cx.shape(&b));
    let out = broadcast_shape(&sa, &sb).ok_or_else(|| {
        n.err(format!(
            "shapes {} and {} do not broadcast",
            crate::error::ShapeDisplay(sa.clone()),
            crate::error::ShapeDisplay(sb.clone())
        ))
    })?;
    match (&a, &b) {
        (Val::Const(x), Val::Const(y)) => Ok(Val::Const(const_arith(op, x, y, out))),
        (Val::Act(ia), Val::Act(ib)) => {
            let kind = match op {
                "Add" => BinKind::Add,
                "Sub" => BinKind::Sub,
                "Mul" => BinKind::Mul,
                _ => return Err(n.unsupported("division by an activation")),
            };
            let (ia, ib) = (*ia, *ib);
            if cx.graph.values[ia].dtype != DType::F32 || cx.graph.values[ib].dtype != DType::F32 {
                return Err(n.err("expects float inputs"));
            }
            Ok(cx.push(n, FOp::Binary(kind), vec![ia, ib], out, DType::F32))
        }
        (Val::Act(_), Val::Const(c)) | (Val::Const(c), Val::Act(_)) => {
            let act_first = matches!(a, Val::Act(_));
            let x = if act_first { a.clone() } else { b.clone() };
            if cx.shape(&x) != out {
                return Err(n.unsupported(
                    "a constant operand that enlarges the activation by broadcasting",
                ));
            }
            let fop = with_constant(n, c.tensor_f32(), act_first)?;
            cx.float_op(n, x, FOp::Affine(fop), out)
        }
    }
}

/// The affine map of an arithmetic op with one constant operand `t`.
fn with_constant(n: &NodeIn, t: Tensor<f32>, act_first: bool) -> Result<FAffine> {
    let neg = |t: &Tensor<f32>| Tensor::new(t.shape.clone(), t.data.iter().map(|v| -v).collect());
    Ok(match (n.op, act_first) {
        ("Add", _) => FAffine {
            mul: None,
            add: Some(t),
        },
        ("Sub", true) => FAffine {
            mul: None,
            add: Some(neg(&t)),
        },
        ("Sub", false) => FAffine {
            mul: Some(Tensor::new(vec![], vec![-1.0])),
            add: Some(t),
        },
        ("Mul", _) => FAffine {
            mul: Some(t),
            add: None,
        },
        ("Div", true) => {
            if t.data.contains(&0.0) {
                return Err(n.err("division by a constant zero"));
            }
            let inv = t.data.iter().map(|v| 1.0 / v).collect();
            FAffine {
                mul: Some(Tensor::new(t.shape.clone(), inv)),
                add: None,
            }
        }
        _ => return Err(n.unsupported("division by an activation")),
    })
}

/// Arithmetic on two constants (folded shape arithmetic).
fn const_arith(op: &str, x: &Const, y: &Const, out: Vec<usize>) -> Const {
    let (mx, my) = (broadcast_map(&x.shape, &out), broadcast_map(&y.shape, &out));
    let data = match (&x.data, &y.data) {
        (CData::I(a), CData::I(b)) => CData::I(
            mx.iter()
                .zip(&my)
                .map(|(&i, &j)| match op {
                    "Add" => a[i].wrapping_add(b[j]),
                    "Sub" => a[i].wrapping_sub(b[j]),
                    "Mul" => a[i].wrapping_mul(b[j]),
                    _ => a[i].checked_div(b[j]).unwrap_or(0),
                })
                .collect(),
        ),
        _ => {
            let (a, b) = (x.floats(), y.floats());
            CData::F(
                mx.iter()
                    .zip(&my)
                    .map(|(&i, &j)| match op {
                        "Add" => a[i] + b[j],
                        "Sub" => a[i] - b[j],
                        "Mul" => a[i] * b[j],
                        _ => a[i] / b[j],
                    })
                    .collect(),
            )
        }
    };
    Const { shape: out, data }
}
