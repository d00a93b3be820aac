//! The AIVM op families: one module per family, holding everything that family means.
//!
//! A family module keeps, side by side:
//! - its parameters: a float op (what the ONNX lowering produces, with float weights) and an
//!   integer op (what the program holds and validators execute), often one type for both;
//! - its ONNX lowering: the ONNX ops it implements, as `(name, lowering)` pairs in `ONNX`;
//! - its float evaluation (calibration, the lowering's own cross-check) and its quantization;
//! - its integer evaluation: the one meaning every validator executes bit for bit;
//! - its validation (parameters against the tensors they read and write), its intermediate
//!   bound (every intermediate below 2^62, which the circuit relies on), and the static width
//!   of outputs the circuit does not range-check;
//! - its circuit layout (the gadgets of [`crate::circuit::ctx`]), its lookup-table rows, and
//!   the usage gas prices (multiply-accumulates, lookups);
//! - its encoding in the program bytes.
//!
//! Each concern is a method of [`FloatOp`] or [`IntOp`] without a default, so a family that
//! forgets one does not compile; the [`registry!`] below generates the [`Op`] and [`FOp`] enums
//! and their dispatch from one line per family, and [`crate::onnx`] derives the supported ONNX
//! ops from the families' `ONNX` lists.
//!
//! # Adding an op
//! 1. Write `ops/<family>.rs`: the op's parameter types, `impl FloatOp` and `impl IntOp` (and
//!    [`Decode`]), and `pub const ONNX: &[(&str, Lowering)]` with its lowering (see
//!    [`crate::onnx::Cx`] for reading inputs and attributes and pushing nodes).
//! 2. Add one line to [`registry!`]'s invocation below: a new wire tag (never reuse one: the tag
//!    is part of every program's bytes and so of every model id), the variant, the integer op
//!    type and the float op type. Add its `ONNX` list to [`ONNX_FAMILIES`].
//! 3. Test it: its integer meaning against the float one (`aivm/tests/it/op_variants.rs`), a
//!    fixture through the circuit, and a negative test per constraint its layout adds
//!    (`circuit/tests/forgeries.rs`), its widest inputs (`circuit/tests/widths.rs`).
//!
//! `ops/neg.rs` is the smallest complete example.

use halo2_proofs::plonk::Error as PlonkError;

use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::Node;
use crate::onnx::Lowering;
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::wire::{R, W};

pub mod affine;
pub mod argmax;
pub mod binary;
pub mod clip;
pub mod copy;
pub mod gather;
pub mod group;
pub mod leaky_relu;
pub mod linear;
pub mod lut;
pub mod matmul;
pub mod neg;
pub mod reduce;
pub mod relu;
pub mod rescale;
pub mod softmax;

/// Every intermediate of an op stays below this in magnitude (see [`IntOp::bounded`]).
pub const LIMIT: i128 = 1 << 62;

/// What a float op's evaluation reads.
pub struct FloatArgs<'a> {
    pub ins: Vec<&'a [f64]>,
    pub in_shapes: Vec<&'a [usize]>,
    pub out_shape: &'a [usize],
}

/// What an integer op's evaluation reads.
pub struct IntArgs<'a> {
    /// The node's name, for errors.
    pub node: &'a str,
    pub ins: Vec<&'a [i64]>,
    pub in_meta: Vec<&'a TensorMeta>,
    pub out: &'a TensorMeta,
}

/// What an op's circuit layout reads.
pub struct LayoutArgs<'a> {
    pub ins: Vec<&'a [Cell]>,
    pub in_meta: Vec<&'a TensorMeta>,
    pub out: &'a TensorMeta,
    /// The function-table tag of the op's rows, when [`IntOp::table_rows`] has some.
    pub tag: Option<u64>,
}

impl LayoutArgs<'_> {
    /// The table tag; a layout that looks up is always given one.
    pub fn tag(&self) -> std::result::Result<u64, PlonkError> {
        self.tag.ok_or(PlonkError::Synthesis)
    }
}

/// A float op of the graph.
pub trait FloatOp: std::fmt::Debug {
    /// The family's name in reports (the same as its integer op's).
    fn kind(&self) -> &'static str;
    /// Evaluates the op in f64.
    fn eval(&self, a: &FloatArgs) -> Vec<f64>;
    /// Multiply-accumulates for an output of `out_len` elements.
    fn macs(&self, out_len: usize) -> u64;
    /// Quantizes the op of node `n`: its integer op, output scale, bits and dtype. `ins` are
    /// the node's program tensors; an op may insert nodes before it and rewire them (Concat
    /// aligns its inputs' scales).
    fn quantize(&self, q: &mut Quantizer, n: &Node, ins: &mut Vec<usize>) -> Result<Quantized>;
}

/// An integer op of the program.
pub trait IntOp: std::fmt::Debug {
    /// The family's name in reports.
    fn kind(&self) -> &'static str;
    /// How many inputs it reads.
    fn arity(&self) -> usize;
    /// The integer meaning, before the executor's width check of the output.
    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>>;
    /// Whether its parameters fit the tensors it reads and writes (`ins` has `arity` entries).
    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid>;
    /// Whether every intermediate stays below [`LIMIT`] in magnitude for inputs within their bit
    /// ranges. The circuit relies on the same bound to keep accumulators far below the field.
    fn bounded(&self, ins: &[&TensorMeta]) -> bool;
    /// The width that holds every output, for an op whose circuit does not range-check its
    /// output (it selects, copies or looks up values whose range is known statically); `None`
    /// when the circuit range-checks the output to its declared width.
    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32>;
    /// Multiply-accumulates for an output of `out_len` elements (priced by gas).
    fn macs(&self, out_len: usize) -> u64;
    /// Constant parameters it holds (weights, biases, tables).
    fn params(&self) -> u64;
    /// Table lookups for an output of `out_len` elements (priced by gas).
    fn lookups(&self, out_len: usize) -> u64;
    /// The `(input, output)` rows of its function table, if it looks up.
    fn table_rows(&self) -> Option<Vec<(i128, i128)>>;
    /// Lays the op out in the circuit; returns the output cells.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> std::result::Result<Vec<Cell>, PlonkError>;
    /// Writes its parameters (after the tag [`Op::tag`]).
    fn encode(&self, w: &mut W);
}

/// Reads an op's parameters back from the program encoding.
pub trait Decode: Sized {
    fn decode(r: &mut R) -> Result<Self>;
}

/// Generates [`Op`], [`FOp`] and their dispatch from one line per op:
/// `tag Variant(IntegerType, FloatType)`; an op that only quantization inserts has no float type.
macro_rules! registry {
    ($( $tag:literal $V:ident($it:ty $(, $ft:ty)?) ),* $(,)?) => {
        /// An integer op of the program: one variant per op, holding its family's parameters.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Op {
            $( $V($it), )*
        }

        /// A float op of the graph.
        #[derive(Clone, Debug, PartialEq)]
        pub enum FOp {
            $( $( $V($ft), )? )*
        }

        impl Op {
            /// The family that implements the op.
            pub fn family(&self) -> &dyn IntOp {
                match self {
                    $( Op::$V(o) => o, )*
                }
            }

            /// The op's tag in the program encoding.
            pub fn tag(&self) -> u64 {
                match self {
                    $( Op::$V(_) => $tag, )*
                }
            }

            /// Reads an op with the given tag.
            pub(crate) fn decode_tagged(tag: u64, r: &mut R) -> Result<Op> {
                match tag {
                    $( $tag => Ok(Op::$V(<$it as Decode>::decode(r)?)), )*
                    _ => Err(AivmError::Decode("unknown op tag".into())),
                }
            }
        }

        impl FOp {
            /// The family that implements the op.
            pub fn family(&self) -> &dyn FloatOp {
                match self {
                    $( $( FOp::$V(o) => { let o: &$ft = o; o } )? )*
                }
            }
        }
    };
}

registry! {
    0 Linear(linear::Linear, linear::FLinear),
    1 Affine(affine::Affine, affine::FAffine),
    2 Binary(binary::Binary, binary::BinKind),
    3 Relu(relu::Relu, relu::Relu),
    4 LeakyRelu(leaky_relu::LeakyRelu, leaky_relu::FLeakyRelu),
    5 Clip(clip::Clip, clip::FClip),
    6 Lut(lut::Lut, lut::LutFn),
    7 Softmax(softmax::Softmax, softmax::FSoftmax),
    8 Reduce(reduce::Reduce, reduce::FReduce),
    9 ArgMax(argmax::ArgMax, argmax::ArgMax),
    10 Copy(copy::CopySpec, copy::CopySpec),
    11 Rescale(rescale::Rescale),
    12 Gather(gather::Gather, gather::FGather),
    13 Neg(neg::Neg, neg::Neg),
    14 MatMul(matmul::MatMul, matmul::FMatMul),
    15 ArgMaxLast(argmax::ArgMaxLast, argmax::ArgMaxLast),
    16 SoftmaxSplit(softmax::SoftmaxSplit),
}

/// The ONNX ops of every family, in registry order; [`crate::onnx`] adds the structural ops
/// (Constant, Shape, Cast, ...) and composites (LayerNormalization) that belong to no family.
pub const ONNX_FAMILIES: &[&[(&str, Lowering)]] = &[
    linear::ONNX,
    affine::ONNX,
    binary::ONNX,
    relu::ONNX,
    leaky_relu::ONNX,
    clip::ONNX,
    lut::ONNX,
    softmax::ONNX,
    reduce::ONNX,
    argmax::ONNX,
    copy::ONNX,
    gather::ONNX,
    neg::ONNX,
];

impl Op {
    /// The op's family name, as shown in reports.
    pub fn kind(&self) -> &'static str {
        self.family().kind()
    }
}

impl FOp {
    /// The op's family name, as shown in reports.
    pub fn kind(&self) -> &'static str {
        self.family().kind()
    }
}

/// Signed bit width that holds `k`.
pub fn signed_bits(k: i128) -> u32 {
    let a = if k < 0 { -(k + 1) } else { k };
    128 - (a as u128).leading_zeros() + 1
}

/// Round-half-up rescale by `2^shift`: `floor((v + 2^(shift-1)) / 2^shift)`. This is the one
/// rounding rule of the AIVM; the circuit proves `v + 2^(shift-1) = q·2^shift + r`, `0 <= r < 2^shift`.
#[inline]
pub fn rescale(v: i64, shift: u32) -> i64 {
    if shift == 0 {
        v
    } else {
        (v + (1i64 << (shift - 1))) >> shift
    }
}

/// Round-half-up division by a positive constant: `floor((v + floor(d/2)) / d)`.
#[inline]
pub fn div_round(v: i64, d: i64) -> i64 {
    (v + d / 2).div_euclid(d)
}

/// Quantizes a float to the integer grid of `scale`, rounding half away from zero.
#[inline]
pub fn quantize(x: f64, scale: u32) -> i64 {
    (x * (1u64 << scale) as f64).round() as i64
}

/// The float value of an integer at `scale`.
#[inline]
pub fn dequantize(v: i64, scale: u32) -> f64 {
    v as f64 / (1u64 << scale) as f64
}

/// `2^(bits-1)`: the largest magnitude of a `bits`-bit signed value (plus one).
pub(crate) fn magnitude(t: &TensorMeta) -> i128 {
    1i128 << (t.bits - 1)
}

/// Largest magnitude in a list of constants.
pub(crate) fn max_abs(v: &[i64]) -> i128 {
    v.iter()
        .map(|x| x.unsigned_abs() as i128)
        .max()
        .unwrap_or(0)
}

/// Signed width of the widest constant in a table.
pub(crate) fn table_bits(t: &[i64]) -> u32 {
    t.iter().map(|&v| signed_bits(v as i128)).max().unwrap_or(1)
}

/// A shift the program allows (the accumulators it divides stay below 2^62).
pub(crate) fn shift_ok(s: u32) -> bool {
    s <= 62
}

/// `Ok` when `cond` holds, else [`Invalid::Params`].
pub(crate) fn params_if(cond: bool) -> std::result::Result<(), Invalid> {
    if cond { Ok(()) } else { Err(Invalid::Params) }
}

/// Product of sizes, or `None` past 2^28 (far above any model lightchain proves); used so that
/// a forged geometry can neither overflow nor ask for unbounded work.
pub(crate) fn prod(v: &[usize]) -> Option<usize> {
    v.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 28)
}

/// The whole tensor's elements with one function applied (for elementwise unary ops).
pub(crate) fn map_cells(
    x: &[Cell],
    f: impl FnMut(&Cell) -> std::result::Result<Cell, PlonkError>,
) -> std::result::Result<Vec<Cell>, PlonkError> {
    x.iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_half_up() {
        assert_eq!(rescale(5, 1), 3); // 2.5 -> 3
        assert_eq!(rescale(-5, 1), -2); // -2.5 -> -2
        assert_eq!(rescale(-6, 2), -1); // -1.5 -> -1
        assert_eq!(rescale(7, 0), 7);
        assert_eq!(div_round(7, 2), 4);
        assert_eq!(div_round(-7, 2), -3);
        assert_eq!(div_round(-8, 3), -3); // -2.67 -> -3
    }

    #[test]
    fn every_tag_decodes_to_its_own_op() {
        // The registry's tags are distinct and each decodes to the variant that wrote it.
        use crate::tensor::Tensor;
        let ops = [
            Op::Relu(relu::Relu),
            Op::Rescale(rescale::Rescale { shift: 3 }),
            Op::Gather(gather::Gather {
                table: Tensor::new(vec![2, 1], vec![1, 2]),
            }),
        ];
        for op in ops {
            let mut w = W(Vec::new());
            op.family().encode(&mut w);
            let mut r = R { b: &w.0, pos: 0 };
            assert_eq!(Op::decode_tagged(op.tag(), &mut r).unwrap(), op);
        }
    }
}
