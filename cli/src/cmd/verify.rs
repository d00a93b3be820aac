//! `lightchain verify`: checks a proof with the model's program and the proof's public inputs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::proof::{Keys, ParamsCache, Proof};
use serde::Serialize;

use crate::cmd::model::{ModelArgs, Source};
use crate::shell::{Human, Shell};

/// Verify a proof: exit status 0 only when it is valid for this model.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain verify fixtures/digits_mlp/model.onnx --proof proof.json
  lightchain verify model.onnx --proof proof.bin --json

The verifier rebuilds the circuit and its verifying key from the model; it needs the proof's
public inputs (nonce, inputs or their commitment, outputs), never the witness.")]
pub struct VerifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The proof (JSON envelope or compact binary form).
    #[arg(long, short = 'p', value_name = "PROOF")]
    pub proof: PathBuf,
}

#[derive(Serialize)]
struct VerifyReport {
    valid: bool,
    model_id: String,
    k: u32,
    outputs: Vec<Vec<i64>>,
}

impl Human for VerifyReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "valid proof for model {} (k = {})\n",
            self.model_id, self.k
        ));
    }
}

/// Reads a proof in either form.
pub fn read_proof(path: &std::path::Path) -> anyhow::Result<Proof> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let proof = if bytes.starts_with(b"LCPROOF") {
        Proof::from_bytes(&bytes)?
    } else {
        Proof::from_json(
            std::str::from_utf8(&bytes).context("the proof is neither JSON nor binary")?,
        )?
    };
    Ok(proof)
}

impl VerifyArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let proof = read_proof(&self.proof)
            .with_context(|| format!("invalid proof file {}", self.proof.display()))?;
        let (program, visibility) = match self.model.source()? {
            Source::Package(p) => (p.program.clone(), p.info.input_visibility),
            Source::Onnx(model) => {
                let record = proof.compile.as_ref().context(
                    "the proof does not record how the model was compiled (binary proofs need the model's package)",
                )?;
                let program = model
                    .compile_with(&record.calibration, &record.quant)
                    .context("cannot rebuild the program from the model")?;
                (Arc::new(program), proof.visibility)
            }
        };
        anyhow::ensure!(
            program.id() == proof.model_id,
            "invalid proof: it is for model {}, but {} is model {}",
            proof.model_id,
            self.model.model.display(),
            program.id()
        );
        let keys = Keys::derive(program, visibility, &ParamsCache::from_env(), false)
            .context("cannot derive the verifying key")?;
        keys.verify(&proof)?;
        shell.emit(&VerifyReport {
            valid: true,
            model_id: proof.model_id.to_string(),
            k: proof.k,
            outputs: proof.outputs.clone(),
        })
    }
}
