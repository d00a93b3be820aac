//! The canonical binary encoding of a [`Program`] and its content hash, the model id.
//!
//! Layout: the magic `AIVMPROG`, the version as u32 little-endian, then the tensors, inputs,
//! outputs and nodes. Integers are LEB128 varints (signed ones zigzag-encoded), strings and lists
//! are length-prefixed. There is exactly one encoding of a program, so equal programs have equal
//! bytes and equal ids. Decoding never trusts a length it has not checked against the bytes left.

use crate::error::{AivmError, Result};
use crate::ir::DType;
use crate::program::{IoSpec, Op, PNode, PROGRAM_VERSION, Program, TensorMeta};
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
            w.u(n.op.tag());
            n.op.family().encode(&mut w);
        }
        // A stateful program's marker trails the nodes, so that every stateless program keeps
        // its encoding (and model id).
        if self.state {
            w.u(1);
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
        let v = r.take(4)?;
        let version = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
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
            let tag = r.u()?;
            let op = Op::decode_tagged(tag, &mut r)?;
            nodes.push(PNode {
                name,
                onnx_op,
                op,
                inputs,
                output,
            });
        }
        let state = r.pos < bytes.len();
        if state && r.u()? != 1 {
            return Err(AivmError::Decode("trailing bytes after the program".into()));
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
            state,
        };
        p.validate()?;
        Ok(p)
    }
}
