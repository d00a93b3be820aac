//! `lightchain prove`: a halo2 proof of one inference.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use lightchain_aivm::circuit::{AivmCircuit, Visibility};
use lightchain_aivm::gas::memory_estimate_mb;
use lightchain_aivm::proof::{Keys, ParamsCache};
use lightchain_aivm::segment::{self, SegmentKeys};
use serde::Serialize;

use crate::cmd::model::{ModelArgs, QuantArgs, Settings, Source, input_hint, read_inputs};
use crate::shell::{Human, Shell, shape};

/// Input visibility on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InputVisibility {
    /// The inputs are public inputs of the proof.
    Public,
    /// Only a salted Poseidon commitment to the inputs is public.
    Hashed,
}

impl From<InputVisibility> for Visibility {
    fn from(v: InputVisibility) -> Self {
        match v {
            InputVisibility::Public => Visibility::Public,
            InputVisibility::Hashed => Visibility::Hashed,
        }
    }
}

/// Prove one inference of a model with halo2 (IPA over Pasta).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain prove fixtures/digits_mlp/model.onnx --input fixtures/digits_mlp/input.json -o proof.json
  lightchain verify fixtures/digits_mlp/model.onnx --proof proof.json
  lightchain prove model.onnx -i input.json --calibrate data.json     # inputs beyond [-1, 1]
  lightchain verify model.onnx --proof proof.json --calibrate data.json
  lightchain prove model.onnx -i input.json --input-visibility hashed --nonce 00ff...
  lightchain prove fixtures/digits_vit/model.onnx -i fixtures/digits_vit/input.json --memory-limit 512

A program whose circuit needs more memory than --memory-limit (a package's [limits] memory_mb;
default 512 MB, the AIVM's limit per task) is cut into segments whose circuits fit, proven one
after another (or several at once where the limit allows), each segment's boundary activations
committed to with salted Poseidon and linked to the next; `verify` checks every segment and link.

An ONNX model is compiled with the settings given here (--scale, --calibrate, --dim), never with
anything taken from the input being proven; a verifier compiles it again with the same flags.
Without --calibrate the model is calibrated on deterministic samples with every float input in
[-1, 1]. A package fixes all of this itself. The proof is checked before it is written.

Parameters are generated once per circuit size and cached in $LIGHTCHAIN_PARAMS_DIR
(default ~/.cache/lightchain/params).")]
pub struct ProveArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The input file (JSON).
    #[arg(long, short = 'i', value_name = "INPUT.json")]
    pub input: PathBuf,
    /// Where to write the proof.
    #[arg(long, short = 'o', value_name = "PROOF", default_value = "proof.json")]
    pub out: PathBuf,
    /// Whether the inputs are public or only committed to (default public; a package sets its
    /// own).
    #[arg(long, value_enum)]
    pub input_visibility: Option<InputVisibility>,
    /// The task nonce the proof is bound to (64 hex digits; random by default).
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// Write the compact binary form instead of JSON.
    #[arg(long)]
    pub binary: bool,
    /// Most memory proving may take, in MB (a package's [limits] memory_mb by default, else
    /// 512): a bigger circuit is proven in segments.
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub memory_limit: Option<u64>,
    #[command(flatten)]
    pub quant: QuantArgs,
}

#[derive(Serialize)]
struct Seconds {
    compile: f64,
    keygen: f64,
    witness: f64,
    prove: f64,
}

#[derive(Serialize)]
struct OutputReport {
    name: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

#[derive(Serialize)]
struct ProveReport {
    proof: String,
    model_id: String,
    k: u32,
    input_visibility: Visibility,
    proof_bytes: usize,
    /// Segments proven (1: one circuit).
    segments: usize,
    memory_limit_mb: u64,
    settings: Settings,
    /// The command that verifies this proof with the same settings.
    verify_with: String,
    seconds: Seconds,
    outputs: Vec<OutputReport>,
}

impl Human for ProveReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "proof     {} ({} bytes, k = {}, {} inputs)\n",
            self.proof, self.proof_bytes, self.k, self.input_visibility
        ));
        if self.segments > 1 {
            out.push_str(&format!(
                "segments  {} (each within {} MB; largest k = {})\n",
                self.segments, self.memory_limit_mb, self.k
            ));
        }
        out.push_str(&format!("model id  {}\n", self.model_id));
        out.push_str(&format!("settings  {}\n", self.settings.describe()));
        out.push_str(&format!("verify    {}\n", self.verify_with));
        let s = &self.seconds;
        out.push_str(&format!(
            "time      compile {:.2}s, keygen {:.2}s, witness {:.3}s, prove {:.2}s\n",
            s.compile, s.keygen, s.witness, s.prove
        ));
        for o in &self.outputs {
            let v: Vec<String> = o
                .values
                .iter()
                .take(10)
                .map(|x| format!("{x:.5}"))
                .collect();
            let more = if o.values.len() > 10 {
                format!(", ... ({} more)", o.values.len() - 10)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "output    {} {} [{}{more}]\n",
                o.name,
                shape(&o.shape),
                v.join(", ")
            ));
        }
    }
}

/// The AIVM's memory limit per task, in MB (a package's default too).
pub const DEFAULT_MEMORY_MB: u64 = 512;

/// Keys for one circuit, or for a program cut into segments.
enum Prover {
    One(Box<Keys>),
    Cut(SegmentKeys),
}

pub fn parse_nonce(s: &str) -> anyhow::Result<[u8; 32]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    anyhow::ensure!(s.len() == 64 && s.is_ascii(), "a nonce is 64 hex digits");
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).context("a nonce is 64 hex digits")?;
    }
    Ok(out)
}

impl ProveArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let pb = shell.progress(4, "compile");
        let t = Instant::now();
        let source = self.model.source()?;
        let input = read_inputs(source.model(), &self.input)?;
        let (program, record, settings) = source.program(&self.quant)?;
        let visibility = match (&source, self.input_visibility) {
            (Source::Package(p), v) => {
                let pv = p.info.input_visibility;
                if let Some(v) = v {
                    anyhow::ensure!(
                        Visibility::from(v) == pv,
                        "the package proves with {pv} inputs (set in its manifest)"
                    );
                }
                pv
            }
            (Source::Onnx(_), v) => v.map_or(Visibility::Public, Visibility::from),
        };
        let compile = t.elapsed().as_secs_f64();
        pb.inc(1);
        pb.set_message("keygen");
        let t = Instant::now();
        let memory_limit = match (&source, self.memory_limit) {
            (_, Some(m)) => m,
            (Source::Package(p), None) => p.manifest.limits.memory_mb,
            (Source::Onnx(_), None) => DEFAULT_MEMORY_MB,
        };
        let cuts = segment::cuts_within(&program, visibility, memory_limit).map_err(|e| {
            anyhow::anyhow!(
                "{e}; a bigger --memory-limit proves it (in one circuit from about {} MB)",
                memory_estimate_mb(AivmCircuit::new(program.clone(), visibility).min_k())
            )
        })?;
        let cache = ParamsCache::from_env();
        let keys = match &cuts {
            None => Prover::One(Box::new(Keys::derive(
                program.clone(),
                visibility,
                &cache,
                true,
            )?)),
            // Proving keys are derived one segment at a time while proving.
            Some(cut) => Prover::Cut(SegmentKeys::derive(
                program.clone(),
                visibility,
                cut,
                &cache,
                false,
            )?),
        };
        let keygen = t.elapsed().as_secs_f64();
        pb.inc(1);
        pb.set_message("witness");
        let t = Instant::now();
        let q = program.quantize_inputs(&input)?;
        program.execute(&q).map_err(|e| input_hint(e, &settings))?;
        let witness = t.elapsed().as_secs_f64();
        pb.inc(1);
        pb.set_message("proving");
        let nonce = match &self.nonce {
            Some(s) => parse_nonce(s)?,
            None => {
                let mut n = [0u8; 32];
                rand_core::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut n)
                    .context("no system randomness")?;
                n
            }
        };
        let t = Instant::now();
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let mut proof = match &keys {
            Prover::One(k) => k.prove(&q, nonce, &mut rng),
            Prover::Cut(k) => k.prove(
                &q,
                nonce,
                None,
                segment::workers(memory_limit, k.k()),
                &mut rng,
            ),
        }
        .context("proving failed")?;
        let prove = t.elapsed().as_secs_f64();
        pb.finish_and_clear();
        proof.compile = record;
        let bytes = if self.binary {
            proof.to_bytes()
        } else {
            proof.to_json().into_bytes()
        };
        std::fs::write(&self.out, &bytes)
            .with_context(|| format!("cannot write {}", self.out.display()))?;
        let outputs = program
            .outputs
            .iter()
            .zip(program.dequantize_outputs(&proof.outputs))
            .map(|(io, t)| OutputReport {
                name: io.name.clone(),
                shape: t.shape,
                values: t.data,
            })
            .collect();
        let dims: String = self
            .model
            .dims
            .iter()
            .map(|(k, v)| format!(" --dim {k}={v}"))
            .collect();
        let verify_with = format!(
            "lightchain verify {} --proof {}{dims} {}",
            self.model.model.display(),
            self.out.display(),
            settings.flags()
        )
        .trim_end()
        .to_string();
        shell.emit(&ProveReport {
            proof: self.out.display().to_string(),
            model_id: proof.model_id.to_string(),
            k: proof.k,
            input_visibility: proof.visibility,
            proof_bytes: proof.proof_len(),
            segments: proof.segments.as_ref().map_or(1, |s| s.proofs.len()),
            memory_limit_mb: memory_limit,
            settings,
            verify_with,
            seconds: Seconds {
                compile,
                keygen,
                witness,
                prove,
            },
            outputs,
        })
    }
}
