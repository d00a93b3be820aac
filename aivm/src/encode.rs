//! The canonical binary encoding of a [`Program`] and its content hash, the model id.
//!
//! Layout: the magic `AIVMPROG`, the version as u32 little-endian, then the tensors, inputs,
//! outputs and nodes. Integers are LEB128 varints (signed ones zigzag-encoded), strings and lists
//! are length-prefixed. There is exactly one encoding of a program, so equal programs have equal
//! bytes and equal ids. Decoding never trusts a length it has not checked against the bytes left.

use crate::error::{AivmError, Result};
use crate::ir::DType;
use crate::ops::copy::CopySpec;
use crate::ops::elementwise::BinKind;
use crate::ops::group::{GroupSpec, Pool2d, ReduceKind};
use crate::ops::linear::{Conv2d, LinearGeom};
use crate::ops::lut::LutFn;
use crate::program::{IoSpec, Op, PNode, PROGRAM_VERSION, Program, TensorMeta};
use crate::tensor::Tensor;
use crate::wire::{R, W};

const MAGIC: &[u8; 8] = b"AIVMPROG";

/// A program's content address: `blake3(encoding)`, shown as 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub [u8; 32]);

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ModelId {
    type Err = AivmError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() != 64 || !s.is_ascii() {
            return Err(AivmError::Decode("a model id is 64 hex digits".into()));
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| AivmError::Decode("a model id is 64 hex digits".into()))?;
        }
        Ok(ModelId(out))
    }
}

impl Program {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&PROGRAM_VERSION.to_le_bytes());
        w.len(self.tensors.len());
        for t in &self.tensors {
            w.u(match t.dtype {
                DType::F32 => 0,
                DType::I64 => 1,
            });
            w.u(t.scale as u64);
            w.u(t.bits as u64);
            w.usizes(&t.shape);
        }
        for ios in [&self.inputs, &self.outputs] {
            w.len(ios.len());
            for io in ios {
                w.str(&io.name);
                w.len(io.tensor);
            }
        }
        w.len(self.nodes.len());
        for n in &self.nodes {
            w.str(&n.name);
            w.str(&n.onnx_op);
            w.usizes(&n.inputs);
            w.len(n.output);
            w.op(&n.op);
        }
        w.0
    }

    /// The model id: blake3 of the canonical encoding.
    pub fn id(&self) -> ModelId {
        ModelId(*blake3::hash(&self.encode()).as_bytes())
    }

    /// Decodes and validates a program. Refuses other versions, trailing bytes and any
    /// structurally inconsistent program.
    pub fn decode(bytes: &[u8]) -> Result<Program> {
        let mut r = R { b: bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err(AivmError::Decode("not an AIVM program (bad magic)".into()));
        }
        let version = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
        if version != PROGRAM_VERSION {
            return Err(AivmError::Decode(format!(
                "program format version {version} is not supported (this build reads version {PROGRAM_VERSION}); upgrade lightchain"
            )));
        }
        let nt = r.len()?;
        let mut tensors = Vec::with_capacity(nt);
        for _ in 0..nt {
            let dtype = match r.u()? {
                0 => DType::F32,
                1 => DType::I64,
                _ => return Err(AivmError::Decode("unknown dtype".into())),
            };
            let scale = r.u32()?;
            let bits = r.u32()?;
            let shape = r.usizes()?;
            tensors.push(TensorMeta {
                shape,
                dtype,
                scale,
                bits,
            });
        }
        let mut ios = Vec::new();
        for _ in 0..2 {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(IoSpec {
                    name: r.str()?,
                    tensor: r.len()?,
                });
            }
            ios.push(v);
        }
        let nn = r.len()?;
        let mut nodes = Vec::with_capacity(nn);
        for _ in 0..nn {
            let name = r.str()?;
            let onnx_op = r.str()?;
            let inputs = r.usizes()?;
            let output = r.len()?;
            let op = r.op()?;
            nodes.push(PNode {
                name,
                onnx_op,
                op,
                inputs,
                output,
            });
        }
        if r.pos != bytes.len() {
            return Err(AivmError::Decode("trailing bytes after the program".into()));
        }
        let outputs = ios.pop().unwrap_or_default();
        let inputs = ios.pop().unwrap_or_default();
        let p = Program {
            tensors,
            inputs,
            outputs,
            nodes,
        };
        p.validate()?;
        Ok(p)
    }
}

impl W {
    fn tensor(&mut self, t: &Tensor<i64>) {
        self.usizes(&t.shape);
        self.i64s(&t.data);
    }
    fn opt_tensor(&mut self, t: &Option<Tensor<i64>>) {
        match t {
            None => self.u(0),
            Some(t) => {
                self.u(1);
                self.tensor(t);
            }
        }
    }
    fn opt_i(&mut self, v: Option<i64>) {
        match v {
            None => self.u(0),
            Some(x) => {
                self.u(1);
                self.i(x);
            }
        }
    }
    fn groups(&mut self, g: &GroupSpec) {
        match g {
            GroupSpec::Axes { shape, axes } => {
                self.u(0);
                self.usizes(shape);
                self.usizes(axes);
            }
            GroupSpec::Pool2d(p) => {
                self.u(1);
                self.usizes(&[
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
                self.u(p.count_include_pad as u64);
            }
        }
    }
    fn op(&mut self, op: &Op) {
        match op {
            Op::Linear {
                geom,
                weight,
                bias,
                shift,
            } => {
                self.u(0);
                match geom {
                    LinearGeom::MatMul { batch, m, k, n } => {
                        self.u(0);
                        self.usizes(&[*batch, *m, *k, *n]);
                    }
                    LinearGeom::MatMulLeft { batch, m, k, n } => {
                        self.u(1);
                        self.usizes(&[*batch, *m, *k, *n]);
                    }
                    LinearGeom::Conv2d(c) => {
                        self.u(2);
                        self.usizes(&[
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
                self.i64s(weight);
                self.i64s(bias);
                self.u(*shift as u64);
            }
            Op::Affine { mul, add, shift } => {
                self.u(1);
                self.opt_tensor(mul);
                self.opt_tensor(add);
                self.u(*shift as u64);
            }
            Op::Binary {
                kind,
                la,
                lb,
                shift,
            } => {
                self.u(2);
                self.u(match kind {
                    BinKind::Add => 0,
                    BinKind::Sub => 1,
                    BinKind::Mul => 2,
                });
                self.u(*la as u64);
                self.u(*lb as u64);
                self.u(*shift as u64);
            }
            Op::Relu => self.u(3),
            Op::LeakyRelu { alpha, alpha_scale } => {
                self.u(4);
                self.i(*alpha);
                self.u(*alpha_scale as u64);
            }
            Op::Clip { lo, hi } => {
                self.u(5);
                self.opt_i(*lo);
                self.opt_i(*hi);
            }
            Op::Lut {
                func,
                in_shift,
                lo,
                table,
            } => {
                self.u(6);
                self.u(match func {
                    LutFn::Sigmoid => 0,
                    LutFn::Tanh => 1,
                    LutFn::Exp => 2,
                    LutFn::Rsqrt => 3,
                });
                self.i(*in_shift as i64);
                self.i(*lo);
                self.i64s(table);
            }
            Op::Softmax {
                groups,
                in_shift,
                lo,
                table,
                out_scale,
            } => {
                self.u(7);
                self.groups(groups);
                self.i(*in_shift as i64);
                self.i(*lo);
                self.i64s(table);
                self.u(*out_scale as u64);
            }
            Op::Reduce {
                kind,
                groups,
                shift,
            } => {
                self.u(8);
                self.u(match kind {
                    ReduceKind::Sum => 0,
                    ReduceKind::Mean => 1,
                    ReduceKind::Max => 2,
                });
                self.groups(groups);
                self.u(*shift as u64);
            }
            Op::ArgMax { groups } => {
                self.u(9);
                self.groups(groups);
            }
            Op::Copy { spec } => {
                self.u(10);
                match spec {
                    CopySpec::Reshape => self.u(0),
                    CopySpec::Transpose { in_shape, perm } => {
                        self.u(1);
                        self.usizes(in_shape);
                        self.usizes(perm);
                    }
                    CopySpec::Concat { axis, in_shapes } => {
                        self.u(2);
                        self.len(*axis);
                        self.len(in_shapes.len());
                        in_shapes.iter().for_each(|s| self.usizes(s));
                    }
                    CopySpec::Select {
                        in_shape,
                        axis,
                        indices,
                    } => {
                        self.u(3);
                        self.usizes(in_shape);
                        self.len(*axis);
                        self.usizes(indices);
                    }
                }
            }
            Op::Rescale { shift } => {
                self.u(11);
                self.u(*shift as u64);
            }
            Op::Gather { table } => {
                self.u(12);
                self.tensor(table);
            }
        }
    }
}

impl R<'_> {
    fn tensor(&mut self) -> Result<Tensor<i64>> {
        let shape = self.usizes()?;
        let data = self.i64s()?;
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(AivmError::Decode(
                "constant tensor length does not match its shape".into(),
            ));
        }
        Ok(Tensor { shape, data })
    }
    fn opt_tensor(&mut self) -> Result<Option<Tensor<i64>>> {
        match self.u()? {
            0 => Ok(None),
            1 => Ok(Some(self.tensor()?)),
            _ => Err(AivmError::Decode("bad option tag".into())),
        }
    }
    fn opt_i(&mut self) -> Result<Option<i64>> {
        match self.u()? {
            0 => Ok(None),
            1 => Ok(Some(self.i()?)),
            _ => Err(AivmError::Decode("bad option tag".into())),
        }
    }
    fn groups(&mut self) -> Result<GroupSpec> {
        Ok(match self.u()? {
            0 => GroupSpec::Axes {
                shape: self.usizes()?,
                axes: self.usizes()?,
            },
            1 => {
                let [n, c, h, w, kh, kw, s0, s1, p0, p1, oh, ow] = self.fixed::<12>()?;
                let count_include_pad = match self.u()? {
                    0 => false,
                    1 => true,
                    _ => return Err(AivmError::Decode("bad flag".into())),
                };
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
                    count_include_pad,
                })
            }
            _ => return Err(AivmError::Decode("unknown group kind".into())),
        })
    }
    fn op(&mut self) -> Result<Op> {
        Ok(match self.u()? {
            0 => {
                let geom = match self.u()? {
                    0 => {
                        let [batch, m, k, n] = self.fixed::<4>()?;
                        LinearGeom::MatMul { batch, m, k, n }
                    }
                    1 => {
                        let [batch, m, k, n] = self.fixed::<4>()?;
                        LinearGeom::MatMulLeft { batch, m, k, n }
                    }
                    2 => {
                        let [n, c_in, h, w, c_out, kh, kw, s0, s1, d0, d1, p0, p1, oh, ow] =
                            self.fixed::<15>()?;
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
                Op::Linear {
                    geom,
                    weight: self.i64s()?,
                    bias: self.i64s()?,
                    shift: self.u32()?,
                }
            }
            1 => Op::Affine {
                mul: self.opt_tensor()?,
                add: self.opt_tensor()?,
                shift: self.u32()?,
            },
            2 => {
                let kind = match self.u()? {
                    0 => BinKind::Add,
                    1 => BinKind::Sub,
                    2 => BinKind::Mul,
                    _ => return Err(AivmError::Decode("unknown binary op".into())),
                };
                Op::Binary {
                    kind,
                    la: self.u32()?,
                    lb: self.u32()?,
                    shift: self.u32()?,
                }
            }
            3 => Op::Relu,
            4 => Op::LeakyRelu {
                alpha: self.i()?,
                alpha_scale: self.u32()?,
            },
            5 => Op::Clip {
                lo: self.opt_i()?,
                hi: self.opt_i()?,
            },
            6 => {
                let func = match self.u()? {
                    0 => LutFn::Sigmoid,
                    1 => LutFn::Tanh,
                    2 => LutFn::Exp,
                    3 => LutFn::Rsqrt,
                    _ => return Err(AivmError::Decode("unknown table function".into())),
                };
                Op::Lut {
                    func,
                    in_shift: self.i32()?,
                    lo: self.i()?,
                    table: self.i64s()?,
                }
            }
            7 => Op::Softmax {
                groups: self.groups()?,
                in_shift: self.i32()?,
                lo: self.i()?,
                table: self.i64s()?,
                out_scale: self.u32()?,
            },
            8 => {
                let kind = match self.u()? {
                    0 => ReduceKind::Sum,
                    1 => ReduceKind::Mean,
                    2 => ReduceKind::Max,
                    _ => return Err(AivmError::Decode("unknown reduction".into())),
                };
                Op::Reduce {
                    kind,
                    groups: self.groups()?,
                    shift: self.u32()?,
                }
            }
            9 => Op::ArgMax {
                groups: self.groups()?,
            },
            10 => Op::Copy {
                spec: match self.u()? {
                    0 => CopySpec::Reshape,
                    1 => CopySpec::Transpose {
                        in_shape: self.usizes()?,
                        perm: self.usizes()?,
                    },
                    2 => {
                        let axis = self.len()?;
                        let n = self.count()?;
                        let in_shapes = (0..n).map(|_| self.usizes()).collect::<Result<_>>()?;
                        CopySpec::Concat { axis, in_shapes }
                    }
                    3 => CopySpec::Select {
                        in_shape: self.usizes()?,
                        axis: self.len()?,
                        indices: self.usizes()?,
                    },
                    _ => return Err(AivmError::Decode("unknown copy kind".into())),
                },
            },
            11 => Op::Rescale { shift: self.u32()? },
            12 => Op::Gather {
                table: self.tensor()?,
            },
            _ => return Err(AivmError::Decode("unknown op tag".into())),
        })
    }
}
