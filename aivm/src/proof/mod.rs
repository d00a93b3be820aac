//! Proving and verifying AIVM inferences with halo2 (IPA over Pasta, Blake2b transcript).
//!
//! [`ParamsCache`] keeps `Params::new(k)` on disk (it is slow and deterministic). [`Keys`] are
//! derived from the program alone, so a verifier rebuilds the verifying key from the model
//! and never trusts one it is sent. A [`Proof`] carries its public inputs: the task nonce, the
//! inputs (or their salted commitment) and the claimed outputs; it verifies for exactly that
//! (model, input or commitment, output, nonce).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ff::PrimeField;
use halo2_proofs::pasta::{EqAffine, Fp};
use halo2_proofs::plonk::{self, ProvingKey, SingleVerifier, VerifyingKey};
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::transcript::{Blake2bRead, Blake2bWrite, Challenge255};
use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::circuit::{self, AivmCircuit, Visibility, Witness};
use crate::error::{AivmError, Result};
use crate::program::ModelId;
use crate::program::Program;
use crate::state::StateValue;

/// The proof system, as named in proof envelopes.
pub const SCHEME: &str = "halo2-ipa-pasta-blake2b";
/// Version of the proof envelope and of the circuit it verifies against (2: the nonce as two
/// field elements, inputs packed for hashing at their own bit widths; 3: the product-chain gate
/// of MatMul of two activations, which every verifying key now commits to).
pub const PROOF_VERSION: u32 = 3;

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

    /// The parameters for `k`, checked: a cached file must match the digest pinned for `k`
    /// ([`PINNED_DIGESTS`]), or, for a `k` without one, the parameters generated afresh; a
    /// missing file is generated and stored. Checked parameters are kept in memory for the
    /// rest of the process.
    pub fn get(&self, k: u32) -> Result<Arc<Params<EqAffine>>> {
        if !(4..=24).contains(&k) {
            return Err(AivmError::Prove(format!("k = {k} is outside 4..=24")));
        }
        type Memo = Mutex<HashMap<PathBuf, Arc<Params<EqAffine>>>>;
        static CHECKED: std::sync::OnceLock<Memo> = std::sync::OnceLock::new();
        let memo = CHECKED.get_or_init(Default::default);
        let path = self.path(k);
        if let Some(p) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&path) {
            return Ok(p.clone());
        }
        let pinned = pinned_digest(k);
        let params = match std::fs::read(&path) {
            Ok(bytes) => {
                let digest = *blake3::hash(&bytes).as_bytes();
                let good = match pinned {
                    Some(d) => d == digest,
                    None => serialize(&Params::new(k)) == bytes,
                };
                if !good {
                    return Err(AivmError::ParamsMismatch { path, k });
                }
                Params::<EqAffine>::read(&mut &bytes[..])
                    .map_err(|e| AivmError::io(format!("cannot read {}", path.display()), e))?
            }
            Err(_) => {
                let params = Params::<EqAffine>::new(k);
                let bytes = serialize(&params);
                if pinned.is_some_and(|d| d != *blake3::hash(&bytes).as_bytes()) {
                    return Err(AivmError::Prove(format!(
                        "parameters generated for k = {k} do not match their pinned digest"
                    )));
                }
                write_atomic(&path, |w| std::io::Write::write_all(w, &bytes)).map_err(|e| {
                    AivmError::io(format!("cannot write parameters to {}", path.display()), e)
                })?;
                params
            }
        };
        let params = Arc::new(params);
        memo.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, params.clone());
        Ok(params)
    }
}

fn serialize(params: &Params<EqAffine>) -> Vec<u8> {
    let mut bytes = Vec::new();
    params.write(&mut bytes).expect("writing to memory");
    bytes
}

/// blake3 digests of `Params::<EqAffine>::new(k)` as `Params::write` writes it, for the `k` a
/// cached parameters file is checked against (computed here from freshly generated parameters;
/// `Params::new` is deterministic). Files for other `k` are checked by generating again.
pub const PINNED_DIGESTS: &[(u32, &str)] = &[
    (
        4,
        "6cd834276864469092ef57195efc1dd5ce88adaa5133db53b952b40487d41744",
    ),
    (
        5,
        "f85a521ed172e51f3470953ac3fd79d6c98975965a243fe6c15995bf4383fe27",
    ),
    (
        6,
        "28cf263eafc9d63aa21b4507293605dd336223b9cc9e909c4d2dfda7d0b5d3a3",
    ),
    (
        7,
        "6a7989f183f0a63d29515bfe622311513a998fcc82ff10eb750112f827f4db27",
    ),
    (
        8,
        "48736798f29e5119cc1a1b938b752eb9af46d952e147d5e59fd9e8ff30bd37b4",
    ),
    (
        9,
        "4978bdbb39b45dc1e3106a4f9274af5757a4809269383e5533c1fe8cf055ad7f",
    ),
    (
        10,
        "2de4cf220fdf8f6ae21aee51685c11c9d211dd474f7ae15595a8084f854d0603",
    ),
    (
        11,
        "46d2cc8da807c681ba7301f789a7a388bf9f2ea74e37f1bd1defbb6b82c4d25e",
    ),
    (
        12,
        "657e0b22474bfe35b547cbaa17f19afad7bbaf3461bb214cd4739bfc1e42ff15",
    ),
    (
        13,
        "2c7eb351c10632d63279fb2342ac3a547bc93a9b4835a8027f5cb7ca5d09b890",
    ),
    (
        14,
        "f81c051458c5751ffed06b3d9295f62b1254db75632574b242265ab0c0f84869",
    ),
    (
        15,
        "4011c4b95d21a0a3dbe2492b667f496a12bfd6e288fc733e712287abd977ba8d",
    ),
    (
        16,
        "c5710a9cf4a80cbdd8369a6e63844ecda8d62d70dc7234ee5fd3be73cdc2f6a4",
    ),
    (
        17,
        "73cbfcbb343b69b67959cc5ad683865f2e1a96b981f8b7405fd8cf1c3c4ca475",
    ),
    (
        18,
        "1c1ce7922ad6077ecb23640c05cc2b93d4f2ba651d0f87e6fcf90fb02b230111",
    ),
];

fn pinned_digest(k: u32) -> Option<[u8; 32]> {
    PINNED_DIGESTS
        .iter()
        .find(|(pk, _)| *pk == k)
        .map(|(_, hex)| {
            let mut d = [0u8; 32];
            for (i, o) in d.iter_mut().enumerate() {
                *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a pinned hex digest");
            }
            d
        })
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
    /// Whether the verifying key was derived now or rebuilt from a stored one.
    pub vk_source: KeySource,
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
        Keys::derive_circuit(AivmCircuit::new(program, visibility), cache, proving)
    }

    /// [`Keys::derive`] for a circuit (a segment's, with links).
    pub fn derive_circuit(
        circuit: AivmCircuit,
        cache: &ParamsCache,
        proving: bool,
    ) -> Result<Keys> {
        let model_id = circuit.program.id();
        let mut k = circuit.min_k();
        loop {
            let params = cache.get(k)?;
            match cache.verifying_key(&params, &circuit) {
                Ok((vk, vk_source)) => {
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
                        vk_source,
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

    /// A proof of this circuit for `witness` and `instance` (no check). Without a kept proving
    /// key, derives one for this proof only and drops it after.
    pub fn prove_instance(&self, witness: Witness, instance: &[Fp]) -> Result<Vec<u8>> {
        let derived;
        let pk = match &self.pk {
            Some(pk) => pk.as_ref(),
            None => {
                derived =
                    plonk::keygen_pk(&self.params, self.vk.clone(), &self.circuit).map_err(perr)?;
                &derived
            }
        };
        let circuit = self.circuit.with_witness(witness);
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let mut transcript = Blake2bWrite::<_, EqAffine, Challenge255<_>>::init(vec![]);
        plonk::create_proof(
            &self.params,
            pk,
            &[circuit],
            &[&[instance]],
            &mut rng,
            &mut transcript,
        )
        .map_err(perr)?;
        Ok(transcript.finalize())
    }

    /// Checks proof bytes of this circuit against `instance`.
    pub fn verify_instance(&self, instance: &[Fp], proof: &[u8]) -> Result<()> {
        let strategy = SingleVerifier::new(&self.params);
        let mut transcript = Blake2bRead::<_, EqAffine, Challenge255<_>>::init(proof);
        plonk::verify_proof(
            &self.params,
            &self.vk,
            strategy,
            &[&[instance]],
            &mut transcript,
        )
        .map_err(|e| AivmError::InvalidProof(ProofError::Verification(format!("{e:?}"))))
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
    /// bound to `nonce`. Hashed inputs get a fresh random salt. Keys without a proving key
    /// derive one for this proof.
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
        self.prove_full(inputs, None, nonce, salt, rng)
            .map(|(p, _)| p)
    }

    /// Proves one task of a stateful program from state `old`: returns the proof (whose public
    /// inputs hold the commitments to `old` and to the new state) and the new state, salted
    /// afresh.
    pub fn prove_with_state(
        &self,
        inputs: &[Vec<i64>],
        old: &StateValue,
        nonce: [u8; 32],
        salt: Option<Fp>,
        rng: &mut impl Rng,
    ) -> Result<(Proof, StateValue)> {
        let (proof, new) = self.prove_full(inputs, Some(old), nonce, salt, rng)?;
        Ok((proof, new.expect("a stateful proof has a new state")))
    }

    fn prove_full(
        &self,
        inputs: &[Vec<i64>],
        old: Option<&StateValue>,
        nonce: [u8; 32],
        salt: Option<Fp>,
        rng: &mut impl Rng,
    ) -> Result<(Proof, Option<StateValue>)> {
        let program = &self.circuit.program;
        if program.state != old.is_some() {
            return Err(AivmError::State(if program.state {
                "this model keeps state: prove it from its current state".into()
            } else {
                "this model keeps no state".into()
            }));
        }
        let mut all = inputs.to_vec();
        all.extend(old.map(|s| s.values.clone()));
        let mut outputs = program.execute(&all)?;
        let salt = match salt {
            Some(s) => s,
            None => random_salt(rng),
        };
        let mut links = Vec::new();
        let mut state = None;
        let mut new_state = None;
        if let Some(old) = old {
            let new = StateValue {
                values: outputs.pop().expect("the state output"),
                salt: random_salt(rng),
            };
            let c = |s: &StateValue| crate::state::commitment(program, s);
            state = Some(StateCommitments {
                old: c(old)?.to_repr(),
                new: c(&new)?.to_repr(),
            });
            links = vec![old.salt, new.salt];
            new_state = Some(new);
        }
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
        let instance = instance_of(nonce, &input_part, &outputs, state.as_ref())?;
        let witness = Witness {
            inputs: all,
            salt,
            links,
        };
        let bytes = self.prove_instance(witness, &instance)?;
        let proof = Proof {
            model_id: self.model_id,
            k: self.k,
            visibility: self.visibility(),
            nonce,
            input: public_inputs,
            outputs,
            proof: bytes,
            compile: None,
            segments: None,
            state,
        };
        // A proof that does not verify is never handed out: the circuit and the executor
        // disagreeing is a bug, and this is where it shows instead of at a verifier.
        self.verify(&proof).map_err(|e| {
            AivmError::Prove(format!(
                "the proof just made does not verify ({e}); this is a bug in lightchain, please report it"
            ))
        })?;
        Ok((proof, new_state))
    }

    /// Verifies a proof against these keys: the model id and `k` must be this program's, and
    /// the proof must hold for its public inputs.
    pub fn verify(&self, proof: &Proof) -> Result<()> {
        if proof.segments.is_some() {
            return Err(AivmError::InvalidProof(ProofError::Segments(
                "a segmented proof; this model proves in one circuit".into(),
            )));
        }
        if proof.model_id != self.model_id {
            return Err(AivmError::InvalidProof(ProofError::OtherModel {
                proof: proof.model_id,
                expected: self.model_id,
            }));
        }
        if proof.k != self.k || proof.visibility != self.visibility() {
            return Err(AivmError::InvalidProof(ProofError::Domain {
                k: proof.k,
                visibility: proof.visibility,
                model_k: self.k,
                model_visibility: self.visibility(),
            }));
        }
        let program = &self.circuit.program;
        let input_part: Vec<Fp> = match (&proof.input, self.visibility()) {
            (PublicInput::Values(v), Visibility::Public) => v
                .iter()
                .flatten()
                .map(|&x| circuit::ctx::fp(x as i128))
                .collect(),
            (PublicInput::Commitment(c), Visibility::Hashed) => vec![commitment_field(c)?],
            _ => {
                return Err(AivmError::InvalidProof(ProofError::VisibilityMismatch));
            }
        };
        check_io_shapes(program, proof)?;
        if program.state != proof.state.is_some() {
            return Err(AivmError::InvalidProof(ProofError::State(program.state)));
        }
        let instance = instance_of(
            proof.nonce,
            &input_part,
            &proof.outputs,
            proof.state.as_ref(),
        )?;
        self.verify_instance(&instance, &proof.proof)
    }
}

/// The public instance of a single-circuit proof: nonce, the input part, then (stateful) the
/// old state's commitment, the public outputs, then (stateful) the new state's commitment.
fn instance_of(
    nonce: [u8; 32],
    input_part: &[Fp],
    outputs: &[Vec<i64>],
    state: Option<&StateCommitments>,
) -> Result<Vec<Fp>> {
    let mut part = input_part.to_vec();
    if let Some(s) = state {
        part.push(commitment_field(&s.old)?);
    }
    let mut v = circuit::instance(circuit::nonce_fields(&nonce), &part, outputs);
    if let Some(s) = state {
        v.push(commitment_field(&s.new)?);
    }
    Ok(v)
}

/// A stateful proof's state commitments (canonical field element bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateCommitments {
    /// The state the task read.
    pub old: [u8; 32],
    /// The state the task wrote.
    pub new: [u8; 32],
}

/// An input or link commitment's bytes as a field element (refused when not canonical).
pub(crate) fn commitment_field(c: &[u8; 32]) -> Result<Fp> {
    Option::from(Fp::from_repr(*c)).ok_or(AivmError::InvalidProof(ProofError::CommitmentNotField))
}

/// The proof's public inputs (when values) and outputs have the program's shapes.
pub(crate) fn check_io_shapes(program: &Program, proof: &Proof) -> Result<()> {
    let shapes = |ios: &[crate::program::IoSpec]| -> Vec<Vec<usize>> {
        ios.iter()
            .map(|io| program.tensors[io.tensor].shape.clone())
            .collect()
    };
    // A stateful program's state input and output are committed to, not published.
    let s = usize::from(program.state);
    if let PublicInput::Values(v) = &proof.input {
        check_shapes(shapes(program.task_inputs()).iter(), v, "input")?;
    }
    let public = &program.outputs[..program.outputs.len() - s];
    check_shapes(shapes(public).iter(), &proof.outputs, "output")
}

fn check_shapes<'a>(
    shapes: impl Iterator<Item = &'a Vec<usize>>,
    values: &[Vec<i64>],
    what: &'static str,
) -> Result<()> {
    let shapes: Vec<&Vec<usize>> = shapes.collect();
    if shapes.len() != values.len()
        || shapes
            .iter()
            .zip(values)
            .any(|(s, v)| crate::tensor::numel(s) != v.len())
    {
        return Err(AivmError::InvalidProof(ProofError::Shapes { what }));
    }
    Ok(())
}

/// A uniformly random salt for input commitments.
pub fn random_salt(rng: &mut impl Rng) -> Fp {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    <Fp as ff::FromUniformBytes<64>>::from_uniform_bytes(&wide)
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
    /// Present for a segmented proof (then `proof` is empty and `k` the largest segment's).
    pub segments: Option<Segments>,
    /// Present for a stateful program's proof.
    pub state: Option<StateCommitments>,
}

impl Segments {
    /// The cut these segments claim.
    pub fn cut(&self) -> crate::segment::Cut {
        crate::segment::Cut {
            splits: self
                .splits
                .iter()
                .map(|&(node, channels, rows)| crate::split::Split {
                    node,
                    channels,
                    rows,
                })
                .collect(),
            ends: self.ends.clone(),
        }
    }
}

/// The segments of a segmented proof (see [`crate::segment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segments {
    /// The splits applied before cutting, in order: `(node, channel parts, row parts)`.
    pub splits: Vec<(usize, usize, usize)>,
    /// Where each segment ends: a node index (exclusive); the last is the program's length.
    pub ends: Vec<usize>,
    /// Every link's commitment, by tensor id (in tensor order).
    pub links: Vec<(usize, [u8; 32])>,
    /// Each segment's `k` and proof bytes, in order.
    pub proofs: Vec<(u32, Vec<u8>)>,
}

/// Why a proof is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof is for model {proof}, not {expected}")]
    OtherModel { proof: ModelId, expected: ModelId },
    #[error(
        "the proof claims k = {k} with {visibility} inputs; this model proves at k = {model_k} with {model_visibility} inputs"
    )]
    Domain {
        k: u32,
        visibility: Visibility,
        model_k: u32,
        model_visibility: Visibility,
    },
    #[error("the input commitment is not a field element")]
    CommitmentNotField,
    #[error("the public input does not match the visibility")]
    VisibilityMismatch,
    /// The `what` ("input" or "output") values do not have the model's shapes.
    #[error("the {what} values do not match the model's {what} shapes")]
    Shapes { what: &'static str },
    /// The proof does not hold for its public inputs (halo2's reason).
    #[error("verification failed ({0})")]
    Verification(String),
    /// The envelope or binary form cannot be read.
    #[error("{0}")]
    Malformed(String),
    /// A proof with state commitments for a model without state, or the reverse.
    #[error("{}", if *.0 { "the model keeps state but the proof has no state commitments" } else { "the proof has state commitments but the model keeps no state" })]
    State(bool),
    /// A segmented proof's cuts, links or segment proofs do not hold.
    #[error("segments: {0}")]
    Segments(String),
}

mod envelope;
mod vk_cache;
pub use vk_cache::KeySource;

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof whose witness breaks a constraint (here: one cell forged while proving) is
    /// refused by `prove` itself, not handed out to fail at a verifier.
    #[test]
    fn prove_refuses_a_proof_that_does_not_verify() {
        use crate::circuit::testing;
        let (program, inputs) = crate::circuit::tests::fixture("ezkl/1l_relu");
        let dir = std::env::temp_dir().join("lightchain-test-params");
        let cache = ParamsCache { dir };
        let keys = Keys::derive(program, Visibility::Public, &cache, true).unwrap();
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        keys.prove(&inputs, [1; 32], &mut rng).unwrap();
        let cfg = crate::circuit::tests::config();
        let mut over = HashMap::new();
        over.insert((cfg.y, 3), Fp::from(12345));
        let (r, _) = testing::with(None, over, false, || keys.prove(&inputs, [1; 32], &mut rng));
        match r {
            Err(AivmError::Prove(e)) => assert!(e.contains("does not verify"), "{e}"),
            other => panic!("a broken proof was handed out: {:?}", other.map(|_| ())),
        }
    }

    /// Prints the digests [`PINNED_DIGESTS`] holds, from parameters generated afresh
    /// (`cargo test -p lightchain-aivm print_params_digests -- --ignored --nocapture`; minutes).
    #[test]
    #[ignore]
    fn print_params_digests() {
        let max: u32 = std::env::var("LIGHTCHAIN_DIGESTS_MAX_K")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(18);
        for k in 4..=max {
            let bytes = serialize(&Params::<EqAffine>::new(k));
            println!("    ({k}, \"{}\"),", blake3::hash(&bytes).to_hex());
        }
    }
}
