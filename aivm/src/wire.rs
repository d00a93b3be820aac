//! The varint wire format shared by the program encoding, the compact proof form and the
//! devnet's canonical encoding of what it hashes and signs.

use crate::error::{AivmError, Result};
use crate::tensor::Tensor;

pub struct W(pub Vec<u8>);

impl W {
    pub fn u(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    pub fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn len(&mut self, v: usize) {
        self.u(v as u64);
    }
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub fn usizes(&mut self, v: &[usize]) {
        self.len(v.len());
        v.iter().for_each(|&x| self.len(x));
    }
    pub fn i64s(&mut self, v: &[i64]) {
        self.len(v.len());
        v.iter().for_each(|&x| self.i(x));
    }
    pub fn tensor(&mut self, t: &Tensor<i64>) {
        self.usizes(&t.shape);
        self.i64s(&t.data);
    }
    pub fn opt_tensor(&mut self, t: &Option<Tensor<i64>>) {
        match t {
            None => self.u(0),
            Some(t) => {
                self.u(1);
                self.tensor(t);
            }
        }
    }
    pub fn opt_i(&mut self, v: Option<i64>) {
        match v {
            None => self.u(0),
            Some(x) => {
                self.u(1);
                self.i(x);
            }
        }
    }
    pub fn flag(&mut self, b: bool) {
        self.u(b as u64);
    }
}

pub struct R<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

fn short() -> AivmError {
    AivmError::Decode("the encoding ends early".into())
}

// `len` reads a length field of the encoding; it is not the reader's own length.
#[allow(clippy::len_without_is_empty)]
impl<'a> R<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(short)?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().ok_or_else(short)?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                // Canonical form: no redundant trailing zero groups.
                if b == 0 && shift > 0 {
                    return Err(AivmError::Decode("non-canonical varint".into()));
                }
                return Ok(v);
            }
        }
        Err(AivmError::Decode("varint too long".into()))
    }
    pub fn i(&mut self) -> Result<i64> {
        let u = self.u()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    pub fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.u()?).map_err(|_| AivmError::Decode("value too large".into()))
    }
    pub fn i32(&mut self) -> Result<i32> {
        i32::try_from(self.i()?).map_err(|_| AivmError::Decode("value too large".into()))
    }
    /// A length or index: bounded by the bytes left (each element takes at least one byte),
    /// so a forged length cannot make us allocate.
    pub fn len(&mut self) -> Result<usize> {
        let v = self.u()?;
        usize::try_from(v).map_err(|_| AivmError::Decode("length too large".into()))
    }
    pub fn count(&mut self) -> Result<usize> {
        let n = self.len()?;
        if n > self.b.len() - self.pos {
            return Err(short());
        }
        Ok(n)
    }
    pub fn str(&mut self) -> Result<String> {
        let n = self.count()?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| AivmError::Decode("invalid utf-8".into()))
    }
    pub fn usizes(&mut self) -> Result<Vec<usize>> {
        let n = self.count()?;
        (0..n).map(|_| self.len()).collect()
    }
    pub fn fixed<const N: usize>(&mut self) -> Result<[usize; N]> {
        let v = self.usizes()?;
        v.try_into()
            .map_err(|_| AivmError::Decode("wrong number of geometry fields".into()))
    }
    pub fn i64s(&mut self) -> Result<Vec<i64>> {
        let n = self.count()?;
        (0..n).map(|_| self.i()).collect()
    }
    pub fn tensor(&mut self) -> Result<Tensor<i64>> {
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
    pub fn opt_tensor(&mut self) -> Result<Option<Tensor<i64>>> {
        match self.u()? {
            0 => Ok(None),
            1 => Ok(Some(self.tensor()?)),
            _ => Err(AivmError::Decode("bad option tag".into())),
        }
    }
    pub fn opt_i(&mut self) -> Result<Option<i64>> {
        match self.u()? {
            0 => Ok(None),
            1 => Ok(Some(self.i()?)),
            _ => Err(AivmError::Decode("bad option tag".into())),
        }
    }
    pub fn flag(&mut self) -> Result<bool> {
        match self.u()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(AivmError::Decode("bad flag".into())),
        }
    }
}

/// Lowercase hex, two digits per byte: the one hex encoding of every crate.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from hex (an optional `0x` prefix, an even number of digits).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}
