//! Proving and verifying AIVM inferences with halo2 (IPA over Pasta, Blake2b transcript).
//!
//! [`ParamsCache`] keeps `Params::new(k)` on disk (it is slow and deterministic). [`Keys`] are
//! derived from the program alone, so a verifier rebuilds the verifying key from the model
//! and never trusts one it is sent. A [`Proof`] carries its public inputs: the task nonce, the
//! inputs (or their salted commitment) and the claimed outputs; it verifies for exactly that
//! (model, input or commitment, output, nonce).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ff::PrimeField;
use halo2_proofs::pasta::{EqAffine, Fp};
use halo2_proofs::plonk::{self, ProvingKey, SingleVerifier, VerifyingKey};
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::transcript::{Blake2bRead, Blake2bWrite, Challenge255};
use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::circuit::{self, AivmCircuit, Visibility, Witness};
use crate::encode::ModelId;
use crate::error::{AivmError, Result};
use crate::program::Program;
use crate::wire::{R, W};

/// The proof system, as named in proof envelopes.
pub const SCHEME: &str = "halo2-ipa-pasta-blake2b";
/// Version of the proof envelope.
pub const PROOF_VERSION: u32 = 1;

/// On-disk cache of IPA parameters, one file per `k`.
#[derive(Clone, Debug)]
pub struct ParamsCache {
    pub dir: PathBuf,
}

impl ParamsCache {
    /// `$LIGHTCHAIN_PARAMS_DIR`, else `$HOME/.cache/lightchain/params`.
    pub fn from_env() -> ParamsCache {
        let dir = std::env::var_os("LIGHTCHAIN_PARAMS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                home.join(".cache/lightchain/params")
            });
        ParamsCache { dir }
    }

    pub fn path(&self, k: u32) -> PathBuf {
        self.dir.join(format!("ipa-pasta-k{k}.params"))
    }

    /// Reads the parameters for `k`, generating and storing them on first use.
    pub fn get(&self, k: u32) -> Result<Params<EqAffine>> {
        if !(4..=24).contains(&k) {
            return Err(AivmError::Prove(format!("k = {k} is outside 4..=24")));
        }
        let path = self.path(k);
        if let Ok(f) = std::fs::File::open(&path) {
            let mut r = std::io::BufReader::new(f);
            if let Ok(p) = Params::<EqAffine>::read(&mut r)
                && p.k() == k
            {
                return Ok(p);
            }
        }
        let params = Params::<EqAffine>::new(k);
        write_atomic(&path, |w| params.write(w)).map_err(|e| {
            AivmError::io(format!("cannot write parameters to {}", path.display()), e)
        })?;
        Ok(params)
    }
}

fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per writer: threads of one process (validators, executors) may write the same
    // file at once, and each must rename only its own complete copy.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f(&mut w)?;
        std::io::Write::flush(&mut w)?;
    }
    std::fs::rename(&tmp, path)
}

/// Everything needed to prove (with the proving key) or verify (without it) one program.
#[derive(Clone)]
pub struct Keys {
    pub k: u32,
    pub model_id: ModelId,
    pub circuit: AivmCircuit,
    pub params: Arc<Params<EqAffine>>,
    pub vk: VerifyingKey<EqAffine>,
    pub pk: Option<Arc<ProvingKey<EqAffine>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("k", &self.k)
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

fn perr(e: plonk::Error) -> AivmError {
    AivmError::Prove(format!("{e:?}"))
}

impl Keys {
    /// Derives the verifying key (and, with `proving`, the proving key) of a program.
    pub fn derive(
        program: Arc<Program>,
        visibility: Visibility,
        cache: &ParamsCache,
        proving: bool,
    ) -> Result<Keys> {
        let model_id = program.id();
        let circuit = AivmCircuit::new(program, visibility);
        let mut k = circuit.min_k();
        loop {
            let params = Arc::new(cache.get(k)?);
            match plonk::keygen_vk(&params, &circuit) {
                Ok(vk) => {
                    let pk = if proving {
                        Some(Arc::new(
                            plonk::keygen_pk(&params, vk.clone(), &circuit).map_err(perr)?,
                        ))
                    } else {
                        None
                    };
                    return Ok(Keys {
                        k,
                        model_id,
                        circuit,
                        params,
                        vk,
                        pk,
                    });
                }
                // The Poseidon rows are estimated; one more doubling covers the estimate.
                Err(plonk::Error::NotEnoughRowsAvailable { .. })
                    if k < 24 && k == circuit.min_k() =>
                {
                    k += 1
                }
                Err(e) => return Err(perr(e)),
            }
        }
    }

    /// A digest of the verifying key (blake3 of its pinned form): two parties derived the same
    /// key exactly when their digests are equal.
    pub fn vk_digest(&self) -> [u8; 32] {
        *blake3::hash(format!("{:?}", self.vk.pinned()).as_bytes()).as_bytes()
    }

    pub fn visibility(&self) -> Visibility {
        self.circuit.visibility
    }

    /// Proves one inference: runs the program on the quantized inputs and proves the result,
    /// bound to `nonce`. Hashed inputs get a fresh random salt.
    pub fn prove(&self, inputs: &[Vec<i64>], nonce: [u8; 32], rng: &mut impl Rng) -> Result<Proof> {
        self.prove_with_salt(inputs, nonce, None, rng)
    }

    /// As [`Keys::prove`], with the salt of the input commitment chosen by the caller (a task
    /// whose commitment was published before it was proven).
    pub fn prove_with_salt(
        &self,
        inputs: &[Vec<i64>],
        nonce: [u8; 32],
        salt: Option<Fp>,
        rng: &mut impl Rng,
    ) -> Result<Proof> {
        let pk = self
            .pk
            .as_ref()
            .ok_or_else(|| AivmError::Prove("these keys have no proving key".into()))?;
        let program = &self.circuit.program;
        let outputs = program.execute(inputs)?;
        let salt = match salt {
            Some(s) => s,
            None => random_salt(rng),
        };
        let (public_inputs, input_part) = match self.visibility() {
            Visibility::Public => (
                PublicInput::Values(inputs.to_vec()),
                inputs
                    .iter()
                    .flatten()
                    .map(|&v| circuit::ctx::fp(v as i128))
                    .collect(),
            ),
            Visibility::Hashed => {
                let c = circuit::input_commitment(program, inputs, salt);
                (PublicInput::Commitment(c.to_repr()), vec![c])
            }
        };
        let instance = circuit::instance(nonce_fp(&nonce), &input_part, &outputs);
        let circuit = self.circuit.with_witness(Witness {
            inputs: inputs.to_vec(),
            salt,
        });
        let mut transcript = Blake2bWrite::<_, EqAffine, Challenge255<_>>::init(vec![]);
        plonk::create_proof(
            &self.params,
            pk,
            &[circuit],
            &[&[&instance]],
            rng,
            &mut transcript,
        )
        .map_err(perr)?;
        Ok(Proof {
            model_id: self.model_id,
            k: self.k,
            visibility: self.visibility(),
            nonce,
            input: public_inputs,
            outputs,
            proof: transcript.finalize(),
            compile: None,
        })
    }

    /// Verifies a proof against these keys: the model id and `k` must be this program's, and
    /// the proof must hold for its public inputs.
    pub fn verify(&self, proof: &Proof) -> Result<()> {
        if proof.model_id != self.model_id {
            return Err(AivmError::InvalidProof(format!(
                "the proof is for model {}, not {}",
                proof.model_id, self.model_id
            )));
        }
        if proof.k != self.k || proof.visibility != self.visibility() {
            return Err(AivmError::InvalidProof(format!(
                "the proof claims k = {} with {} inputs; this model proves at k = {} with {} inputs",
                proof.k,
                proof.visibility,
                self.k,
                self.visibility()
            )));
        }
        let program = &self.circuit.program;
        let input_part: Vec<Fp> = match (&proof.input, self.visibility()) {
            (PublicInput::Values(v), Visibility::Public) => {
                check_shapes(
                    program
                        .inputs
                        .iter()
                        .map(|io| &program.tensors[io.tensor].shape),
                    v,
                    "input",
                )?;
                v.iter()
                    .flatten()
                    .map(|&x| circuit::ctx::fp(x as i128))
                    .collect()
            }
            (PublicInput::Commitment(c), Visibility::Hashed) => {
                vec![Option::from(Fp::from_repr(*c)).ok_or_else(|| {
                    AivmError::InvalidProof("the input commitment is not a field element".into())
                })?]
            }
            _ => {
                return Err(AivmError::InvalidProof(
                    "the public input does not match the visibility".into(),
                ));
            }
        };
        check_shapes(
            program
                .outputs
                .iter()
                .map(|io| &program.tensors[io.tensor].shape),
            &proof.outputs,
            "output",
        )?;
        let instance = circuit::instance(nonce_fp(&proof.nonce), &input_part, &proof.outputs);
        let strategy = SingleVerifier::new(&self.params);
        let mut transcript = Blake2bRead::<_, EqAffine, Challenge255<_>>::init(&proof.proof[..]);
        plonk::verify_proof(
            &self.params,
            &self.vk,
            strategy,
            &[&[&instance]],
            &mut transcript,
        )
        .map_err(|e| AivmError::InvalidProof(format!("verification failed ({e:?})")))
    }
}

fn check_shapes<'a>(
    shapes: impl Iterator<Item = &'a Vec<usize>>,
    values: &[Vec<i64>],
    what: &str,
) -> Result<()> {
    let shapes: Vec<&Vec<usize>> = shapes.collect();
    if shapes.len() != values.len()
        || shapes
            .iter()
            .zip(values)
            .any(|(s, v)| crate::tensor::numel(s) != v.len())
    {
        return Err(AivmError::InvalidProof(format!(
            "the {what} values do not match the model's {what} shapes"
        )));
    }
    Ok(())
}

/// A uniformly random salt for input commitments.
pub fn random_salt(rng: &mut impl Rng) -> Fp {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    <Fp as ff::FromUniformBytes<64>>::from_uniform_bytes(&wide)
}

/// A nonce as a field element: its first 31 bytes, little-endian (always below the modulus).
pub fn nonce_fp(nonce: &[u8; 32]) -> Fp {
    let mut repr = [0u8; 32];
    repr[..31].copy_from_slice(&nonce[..31]);
    Option::from(Fp::from_repr(repr)).expect("31 bytes are below the modulus")
}

/// The public input part of a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicInput {
    /// The quantized input values.
    Values(Vec<Vec<i64>>),
    /// The salted Poseidon commitment to them (a field element's canonical bytes).
    Commitment([u8; 32]),
}

/// How a program was compiled from an ONNX file, recorded next to a proof made from the ONNX
/// file directly (a package carries its program instead). With the ONNX file it determines the
/// program, so a verifier can rebuild it without the inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompileRecord {
    pub quant: crate::QuantConfig,
    pub calibration: crate::Calibration,
}

/// A proof with its public inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    pub model_id: ModelId,
    pub k: u32,
    pub visibility: Visibility,
    pub nonce: [u8; 32],
    pub input: PublicInput,
    pub outputs: Vec<Vec<i64>>,
    pub proof: Vec<u8>,
    /// Present for proofs made from an ONNX file (JSON form only).
    pub compile: Option<CompileRecord>,
}

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
}

#[derive(Serialize, Deserialize)]
struct PublicJson {
    nonce: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    inputs: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    input_commitment: Option<String>,
    outputs: Vec<Vec<i64>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str, what: &str) -> Result<[u8; 32]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bad = || AivmError::InvalidProof(format!("{what} must be 64 hex digits"));
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

const MAGIC: &[u8; 8] = b"LCPROOF\0";

impl Proof {
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
            },
            proof: base64::engine::general_purpose::STANDARD.encode(&self.proof),
            compile: self.compile.clone(),
        };
        serde_json::to_string_pretty(&env).expect("serialisable")
    }

    /// Parses a JSON envelope, refusing other versions and schemes.
    pub fn from_json(text: &str) -> Result<Proof> {
        let env: Envelope = serde_json::from_str(text)
            .map_err(|e| AivmError::InvalidProof(format!("not a proof envelope: {e}")))?;
        if env.version != PROOF_VERSION {
            return Err(AivmError::InvalidProof(format!(
                "proof envelope version {} is not supported (this build reads version {PROOF_VERSION})",
                env.version
            )));
        }
        if env.scheme != SCHEME {
            return Err(AivmError::InvalidProof(format!(
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
                return Err(AivmError::InvalidProof(
                    "public inputs do not match the input visibility".into(),
                ));
            }
        };
        Ok(Proof {
            model_id: env
                .model_id
                .parse()
                .map_err(|_| AivmError::InvalidProof("model_id must be 64 hex digits".into()))?,
            k: env.k,
            visibility: env.input_visibility,
            nonce: unhex32(&env.public_inputs.nonce, "nonce")?,
            input,
            outputs: env.public_inputs.outputs,
            proof: base64::engine::general_purpose::STANDARD
                .decode(env.proof.as_bytes())
                .map_err(|_| AivmError::InvalidProof("the proof is not valid base64".into()))?,
            compile: env.compile,
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
        match &self.input {
            PublicInput::Values(v) => {
                w.u(0);
                w.len(v.len());
                v.iter().for_each(|t| w.i64s(t));
            }
            PublicInput::Commitment(c) => {
                w.u(1);
                w.0.extend_from_slice(c);
            }
        }
        w.len(self.outputs.len());
        self.outputs.iter().for_each(|t| w.i64s(t));
        w.len(self.proof.len());
        w.0.extend_from_slice(&self.proof);
        w.0
    }

    /// Parses the compact binary form.
    pub fn from_bytes(b: &[u8]) -> Result<Proof> {
        let bad = |e: AivmError| AivmError::InvalidProof(format!("binary proof: {e}"));
        let mut r = R { b, pos: 0 };
        if r.take(8).map_err(bad)? != MAGIC {
            return Err(AivmError::InvalidProof(
                "not a binary lightchain proof".into(),
            ));
        }
        let version = u32::from_le_bytes(r.take(4).map_err(bad)?.try_into().expect("4 bytes"));
        if version != PROOF_VERSION {
            return Err(AivmError::InvalidProof(format!(
                "binary proof version {version} is not supported"
            )));
        }
        let model_id = ModelId(r.take(32).map_err(bad)?.try_into().expect("32 bytes"));
        let k = r.u32().map_err(bad)?;
        let nonce: [u8; 32] = r.take(32).map_err(bad)?.try_into().expect("32 bytes");
        let (visibility, input) = match r.u().map_err(bad)? {
            0 => {
                let n = r.count().map_err(bad)?;
                let v = (0..n)
                    .map(|_| r.i64s())
                    .collect::<Result<_>>()
                    .map_err(bad)?;
                (Visibility::Public, PublicInput::Values(v))
            }
            1 => (
                Visibility::Hashed,
                PublicInput::Commitment(r.take(32).map_err(bad)?.try_into().expect("32 bytes")),
            ),
            _ => return Err(AivmError::InvalidProof("unknown input visibility".into())),
        };
        let n = r.count().map_err(bad)?;
        let outputs = (0..n)
            .map(|_| r.i64s())
            .collect::<Result<_>>()
            .map_err(bad)?;
        let len = r.count().map_err(bad)?;
        let proof = r.take(len).map_err(bad)?.to_vec();
        if r.pos != b.len() {
            return Err(AivmError::InvalidProof(
                "trailing bytes after the proof".into(),
            ));
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
        })
    }
}
