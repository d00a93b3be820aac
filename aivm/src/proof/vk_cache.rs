//! Verifying keys kept on disk. Deriving a key computes a commitment to every fixed and
//! permutation column (multi-scalar multiplications of size 2^k), most of what a command-line
//! `verify` of a small model spent. The commitments a derivation computed are stored under the
//! fingerprint of what they were computed from (`k`, the constraint system, every fixed value
//! and the permutation: halo2's `VkAssembly`, see `vendor/README.md`), and a later derivation of
//! a circuit with that fingerprint rebuilds the key from them: synthesis only, no commitment.
//!
//! A stored key is used only when its fingerprint is the circuit's and the rebuilt key's
//! transcript representative (a hash of its whole pinned form) is the one stored with it; any
//! other file (truncated, another format, a point off the curve) is ignored and the key derived
//! again. The files are trusted like the binary and the parameters beside them: whoever can
//! write them can make this machine's verifier accept proofs of another circuit.
//! `LIGHTCHAIN_VK_CACHE=off` derives every key.

use std::path::PathBuf;

use ff::PrimeField;
use halo2_proofs::pasta::EqAffine;
use halo2_proofs::pasta::group::GroupEncoding;
use halo2_proofs::plonk::{self, VerifyingKey};
use halo2_proofs::poly::commitment::Params;
use serde::Serialize;

use super::{ParamsCache, write_atomic};
use crate::circuit::AivmCircuit;

/// Format tag of a stored key.
const MAGIC: &[u8; 8] = b"LCVK0001";
/// Bytes of a compressed point.
const POINT: usize = 32;
/// The header's fields, at these offsets: magic, fingerprint, transcript representative, and
/// the two commitment counts; then the points.
const FINGERPRINT: usize = 8;
const REPR: usize = FINGERPRINT + 64;
const COUNTS: usize = REPR + 32;
const HEAD: usize = COUNTS + 8;

/// Where a verifying key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Computed now (and stored, unless the cache is off).
    Derived,
    /// Rebuilt from commitments stored by an earlier derivation.
    Cached,
}

/// A stored key: the commitments and the transcript representative they give.
struct Stored {
    repr: [u8; 32],
    fixed: Vec<EqAffine>,
    permutation: Vec<EqAffine>,
}

impl Stored {
    fn of(vk: &VerifyingKey<EqAffine>) -> Stored {
        let (fixed, permutation) = vk.commitments();
        Stored {
            repr: vk.transcript_repr().to_repr(),
            fixed: fixed.to_vec(),
            permutation: permutation.to_vec(),
        }
    }

    fn encode(&self, fingerprint: &[u8; 64]) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEAD + POINT * (self.fixed.len() + self.permutation.len()));
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(fingerprint);
        b.extend_from_slice(&self.repr);
        for n in [self.fixed.len(), self.permutation.len()] {
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for p in self.fixed.iter().chain(&self.permutation) {
            b.extend_from_slice(p.to_bytes().as_ref());
        }
        b
    }

    /// The stored key in `b` if it is one, for `fingerprint`, with `counts` commitments.
    fn decode(b: &[u8], fingerprint: &[u8; 64], counts: (usize, usize)) -> Option<Stored> {
        let (head, rest) = b.split_at_checked(HEAD)?;
        if &head[..FINGERPRINT] != MAGIC || head[FINGERPRINT..REPR] != fingerprint[..] {
            return None;
        }
        let repr: [u8; 32] = head[REPR..COUNTS].try_into().ok()?;
        let n = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes")) as usize;
        if (n(COUNTS), n(COUNTS + 4)) != counts || rest.len() != POINT * (counts.0 + counts.1) {
            return None;
        }
        let points = rest
            .chunks_exact(POINT)
            .map(|c| {
                let bytes = c.try_into().expect("a point's bytes");
                Option::from(EqAffine::from_bytes(&bytes))
            })
            .collect::<Option<Vec<EqAffine>>>()?;
        let (fixed, permutation) = points.split_at(counts.0);
        Some(Stored {
            repr,
            fixed: fixed.to_vec(),
            permutation: permutation.to_vec(),
        })
    }
}

impl ParamsCache {
    /// Where the key of a circuit with this assembly fingerprint is stored.
    pub fn vk_path(&self, fingerprint: &[u8; 64]) -> PathBuf {
        self.dir
            .join("vk")
            .join(format!("{}.vk", crate::wire::hex(&fingerprint[..32])))
    }

    /// Whether keys are stored and read (`LIGHTCHAIN_VK_CACHE` is not `off`).
    pub fn vk_cache_enabled() -> bool {
        std::env::var("LIGHTCHAIN_VK_CACHE").map_or(true, |v| v != "off")
    }

    /// The verifying key of `circuit` with `params`: rebuilt from the commitments stored for
    /// its fingerprint, else derived (and stored; a failed write only costs the next caller
    /// the derivation).
    pub(super) fn verifying_key(
        &self,
        params: &Params<EqAffine>,
        circuit: &AivmCircuit,
    ) -> Result<(VerifyingKey<EqAffine>, KeySource), plonk::Error> {
        let assembly = plonk::vk_assembly(params, circuit)?;
        if !Self::vk_cache_enabled() {
            return Ok((assembly.commit(params), KeySource::Derived));
        }
        let fingerprint = assembly.fingerprint();
        let path = self.vk_path(&fingerprint);
        let counts = assembly.commitment_counts();
        if let Some(s) = std::fs::read(&path)
            .ok()
            .and_then(|b| Stored::decode(&b, &fingerprint, counts))
        {
            let vk = assembly.with_commitments(s.fixed, s.permutation)?;
            if vk.transcript_repr().to_repr() == s.repr {
                return Ok((vk, KeySource::Cached));
            }
            // Consistent framing, other contents: derive again (and replace the file).
            let vk = plonk::vk_assembly(params, circuit)?.commit(params);
            self.store_vk(&path, &fingerprint, &vk);
            return Ok((vk, KeySource::Derived));
        }
        let vk = assembly.commit(params);
        self.store_vk(&path, &fingerprint, &vk);
        Ok((vk, KeySource::Derived))
    }

    fn store_vk(
        &self,
        path: &std::path::Path,
        fingerprint: &[u8; 64],
        vk: &VerifyingKey<EqAffine>,
    ) {
        let bytes = Stored::of(vk).encode(fingerprint);
        let _ = write_atomic(path, |w| std::io::Write::write_all(w, &bytes));
    }
}
