//! The two forms of a proof: the JSON envelope and the compact binary form.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{
    CompileRecord, PROOF_VERSION, Proof, ProofError, PublicInput, SCHEME, Segments,
    StateCommitments,
};
use crate::circuit::Visibility;
use crate::error::{AivmError, Result};
use crate::program::ModelId;
use crate::wire::{R, W};

/// The JSON envelope of a proof.
#[derive(Serialize, Deserialize)]
struct Envelope {
    version: u32,
    scheme: String,
    model_id: String,
    k: u32,
    input_visibility: Visibility,
    public_inputs: PublicJson,
    proof: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    compile: Option<CompileRecord>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    segments: Option<SegmentsJson>,
}

#[derive(Serialize, Deserialize)]
struct SegmentsJson {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    splits: Vec<(usize, usize, usize)>,
    ends: Vec<usize>,
    links: Vec<LinkJson>,
    proofs: Vec<SegmentProofJson>,
}

#[derive(Serialize, Deserialize)]
struct LinkJson {
    tensor: usize,
    commitment: String,
}

#[derive(Serialize, Deserialize)]
struct SegmentProofJson {
    k: u32,
    proof: String,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|_| malformed("the proof is not valid base64"))
}

impl SegmentsJson {
    fn of(s: &Segments) -> SegmentsJson {
        SegmentsJson {
            splits: s.splits.clone(),
            ends: s.ends.clone(),
            links: s
                .links
                .iter()
                .map(|(t, c)| LinkJson {
                    tensor: *t,
                    commitment: hex(c),
                })
                .collect(),
            proofs: s
                .proofs
                .iter()
                .map(|(k, p)| SegmentProofJson {
                    k: *k,
                    proof: b64(p),
                })
                .collect(),
        }
    }

    fn parse(self) -> Result<Segments> {
        Ok(Segments {
            splits: self.splits,
            ends: self.ends,
            links: self
                .links
                .into_iter()
                .map(|l| Ok((l.tensor, unhex32(&l.commitment, "a link commitment")?)))
                .collect::<Result<_>>()?,
            proofs: self
                .proofs
                .into_iter()
                .map(|p| Ok((p.k, unb64(&p.proof)?)))
                .collect::<Result<_>>()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct PublicJson {
    nonce: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    inputs: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    input_commitment: Option<String>,
    outputs: Vec<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    state: Option<StateJson>,
}

/// A stateful proof's state commitments, as hex.
#[derive(Serialize, Deserialize)]
struct StateJson {
    old: String,
    new: String,
}

fn unhex32(s: &str, what: &str) -> Result<[u8; 32]> {
    crate::wire::unhex(s)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(format!("{what} must be 64 hex digits")))
}

use crate::wire::hex;

fn malformed(reason: impl Into<String>) -> AivmError {
    AivmError::InvalidProof(ProofError::Malformed(reason.into()))
}

const MAGIC: &[u8; 8] = b"LCPROOF\0";

impl Proof {
    /// Bytes of halo2 proof it carries (every segment's, when segmented).
    pub fn proof_len(&self) -> usize {
        self.proof.len()
            + self
                .segments
                .as_ref()
                .map_or(0, |s| s.proofs.iter().map(|p| p.1.len()).sum())
    }

    /// The JSON envelope.
    pub fn to_json(&self) -> String {
        let (inputs, input_commitment) = match &self.input {
            PublicInput::Values(v) => (Some(v.clone()), None),
            PublicInput::Commitment(c) => (None, Some(hex(c))),
        };
        let env = Envelope {
            version: PROOF_VERSION,
            scheme: SCHEME.into(),
            model_id: self.model_id.to_string(),
            k: self.k,
            input_visibility: self.visibility,
            public_inputs: PublicJson {
                nonce: hex(&self.nonce),
                inputs,
                input_commitment,
                outputs: self.outputs.clone(),
                state: self.state.map(|s| StateJson {
                    old: hex(&s.old),
                    new: hex(&s.new),
                }),
            },
            proof: b64(&self.proof),
            compile: self.compile.clone(),
            segments: self.segments.as_ref().map(SegmentsJson::of),
        };
        serde_json::to_string_pretty(&env).expect("serialisable")
    }

    /// Parses a JSON envelope, refusing other versions and schemes.
    pub fn from_json(text: &str) -> Result<Proof> {
        let env: Envelope = serde_json::from_str(text)
            .map_err(|e| malformed(format!("not a proof envelope: {e}")))?;
        if env.version != PROOF_VERSION {
            return Err(malformed(format!(
                "proof envelope version {} is not supported (this build reads version {PROOF_VERSION})",
                env.version
            )));
        }
        if env.scheme != SCHEME {
            return Err(malformed(format!(
                "proof scheme \"{}\" is not {SCHEME}",
                env.scheme
            )));
        }
        let input = match (
            env.input_visibility,
            env.public_inputs.inputs,
            env.public_inputs.input_commitment,
        ) {
            (Visibility::Public, Some(v), None) => PublicInput::Values(v),
            (Visibility::Hashed, None, Some(c)) => {
                PublicInput::Commitment(unhex32(&c, "input_commitment")?)
            }
            _ => {
                return Err(malformed("public inputs do not match the input visibility"));
            }
        };
        Ok(Proof {
            model_id: env
                .model_id
                .parse()
                .map_err(|_| malformed("model_id must be 64 hex digits"))?,
            k: env.k,
            visibility: env.input_visibility,
            nonce: unhex32(&env.public_inputs.nonce, "nonce")?,
            input,
            outputs: env.public_inputs.outputs,
            proof: unb64(&env.proof)?,
            compile: env.compile,
            segments: env.segments.map(SegmentsJson::parse).transpose()?,
            state: env
                .public_inputs
                .state
                .map(|s| {
                    Ok(StateCommitments {
                        old: unhex32(&s.old, "state.old")?,
                        new: unhex32(&s.new, "state.new")?,
                    })
                })
                .transpose()?,
        })
    }

    /// The compact binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&PROOF_VERSION.to_le_bytes());
        w.0.extend_from_slice(&self.model_id.0);
        w.u(self.k as u64);
        w.0.extend_from_slice(&self.nonce);
        // The input's tag: 0 values, 1 a commitment; + 2 when state commitments follow it.
        let stateful = if self.state.is_some() { 2 } else { 0 };
        match &self.input {
            PublicInput::Values(v) => {
                w.u(stateful);
                w.len(v.len());
                v.iter().for_each(|t| w.i64s(t));
            }
            PublicInput::Commitment(c) => {
                w.u(1 + stateful);
                w.0.extend_from_slice(c);
            }
        }
        if let Some(s) = &self.state {
            w.0.extend_from_slice(&s.old);
            w.0.extend_from_slice(&s.new);
        }
        w.len(self.outputs.len());
        self.outputs.iter().for_each(|t| w.i64s(t));
        w.len(self.proof.len());
        w.0.extend_from_slice(&self.proof);
        // A segmented proof appends its segments (a single proof ends here, as it always did).
        if let Some(s) = &self.segments {
            w.len(s.ends.len());
            s.ends.iter().for_each(|&e| w.u(e as u64));
            w.len(s.links.len());
            for (t, c) in &s.links {
                w.u(*t as u64);
                w.0.extend_from_slice(c);
            }
            w.len(s.proofs.len());
            for (k, p) in &s.proofs {
                w.u(*k as u64);
                w.len(p.len());
                w.0.extend_from_slice(p);
            }
            w.len(s.splits.len());
            for (node, channels, rows) in &s.splits {
                w.u(*node as u64);
                w.u(*channels as u64);
                w.u(*rows as u64);
            }
        }
        w.0
    }

    /// Parses the compact binary form.
    pub fn from_bytes(b: &[u8]) -> Result<Proof> {
        let bad = |e: AivmError| malformed(format!("binary proof: {e}"));
        let mut r = R { b, pos: 0 };
        if r.take(8).map_err(bad)? != MAGIC {
            return Err(malformed("not a binary lightchain proof"));
        }
        let version = u32::from_le_bytes(r.take(4).map_err(bad)?.try_into().expect("4 bytes"));
        if version != PROOF_VERSION {
            return Err(malformed(format!(
                "binary proof version {version} is not supported"
            )));
        }
        let model_id = ModelId(r.take(32).map_err(bad)?.try_into().expect("32 bytes"));
        let k = r.u32().map_err(bad)?;
        let nonce: [u8; 32] = r.take(32).map_err(bad)?.try_into().expect("32 bytes");
        let tag = r.u().map_err(bad)?;
        let (visibility, input) = match tag & !2 {
            0 if tag < 4 => {
                let n = r.count().map_err(bad)?;
                let v = (0..n)
                    .map(|_| r.i64s())
                    .collect::<Result<_>>()
                    .map_err(bad)?;
                (Visibility::Public, PublicInput::Values(v))
            }
            1 if tag < 4 => (
                Visibility::Hashed,
                PublicInput::Commitment(r.take(32).map_err(bad)?.try_into().expect("32 bytes")),
            ),
            _ => return Err(malformed("unknown input visibility")),
        };
        let state = if tag & 2 != 0 {
            let mut take32 = || -> Result<[u8; 32]> {
                Ok(r.take(32).map_err(bad)?.try_into().expect("32 bytes"))
            };
            Some(StateCommitments {
                old: take32()?,
                new: take32()?,
            })
        } else {
            None
        };
        let n = r.count().map_err(bad)?;
        let outputs = (0..n)
            .map(|_| r.i64s())
            .collect::<Result<_>>()
            .map_err(bad)?;
        let len = r.count().map_err(bad)?;
        let proof = r.take(len).map_err(bad)?.to_vec();
        let segments = if r.pos < b.len() {
            let n = r.count().map_err(bad)?;
            let ends = (0..n)
                .map(|_| r.u().map(|e| e as usize))
                .collect::<Result<_>>()
                .map_err(bad)?;
            let n = r.count().map_err(bad)?;
            let links = (0..n)
                .map(|_| {
                    let t = r.u()? as usize;
                    Ok((t, r.take(32)?.try_into().expect("32 bytes")))
                })
                .collect::<Result<_>>()
                .map_err(bad)?;
            let n = r.count().map_err(bad)?;
            let proofs = (0..n)
                .map(|_| {
                    let k = r.u32()?;
                    let len = r.count()?;
                    Ok((k, r.take(len)?.to_vec()))
                })
                .collect::<Result<_>>()
                .map_err(bad)?;
            let n = r.count().map_err(bad)?;
            let splits = (0..n)
                .map(|_| Ok((r.u()? as usize, r.u()? as usize, r.u()? as usize)))
                .collect::<Result<_>>()
                .map_err(bad)?;
            Some(Segments {
                splits,
                ends,
                links,
                proofs,
            })
        } else {
            None
        };
        if r.pos != b.len() {
            return Err(malformed("trailing bytes after the proof"));
        }
        Ok(Proof {
            model_id,
            k,
            visibility,
            nonce,
            input,
            outputs,
            proof,
            compile: None,
            segments,
            state,
        })
    }
}
