//! `lightchain verify`: checks a proof against a program the verifier decides itself: a
//! package's, or an ONNX model compiled with the settings given here (never with settings read
//! from the proof), or the program with an expected model id.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{KeySource, Keys, ParamsCache, Proof};
use lightchain_aivm::segment::SegmentKeys;
use lightchain_aivm::{ModelId, Program};
use lightchain_devnet::chain::Receipt;
use serde::Serialize;

use crate::cmd::model::{ModelArgs, QuantArgs, Settings, Source};
use crate::cmd::prove::InputVisibility;
use crate::shell::{Human, Shell};

/// Verify a proof: exit status 0 only when it is valid for the program this command decides.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain verify digits-0.1.0.lcpkg --proof seven.bin           # a package fixes its program
  lightchain verify model.onnx --proof proof.json                  # default settings
  lightchain verify model.onnx --proof proof.json --scale 7        # the prover's --scale
  lightchain verify model.onnx --proof proof.json --calibrate data.json
  lightchain verify model.onnx --proof proof.json --model-id 3f2a…  # a program you trust by id
  lightchain task get $ID --rpc http://node:8645 --json > task.json
  lightchain verify digits-0.1.0.lcpkg --receipt task.json         # a node's receipt, offline

The verifier rebuilds the circuit and its verifying key from the program; it needs the proof's
public inputs (nonce, inputs or their commitment, outputs), never the witness. A key derived once
is stored with the parameters (~/.cache/lightchain/params/vk, under a digest of everything it is
computed from) and rebuilt from there next time; LIGHTCHAIN_VK_CACHE=off derives it every time. For an ONNX
model the program is the one the model compiles to with the settings given here (the same flags
the prover used: --scale, --calibrate, --dim); a proof of any other program is refused. With
--model-id, the program the proof records how to rebuild is accepted only if it is the model
compiled to that id.")]
pub struct VerifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The proof (JSON envelope or compact binary form).
    #[arg(
        long,
        short = 'p',
        value_name = "PROOF",
        required_unless_present = "receipt"
    )]
    pub proof: Option<PathBuf>,
    /// A task's receipt from any node (`lightchain task get ID --json > R.json`, or the
    /// receipt alone): its proof is verified against the package, and the receipt's task id,
    /// model id, outputs and public inputs against the proof.
    #[arg(long, value_name = "RECEIPT.json", conflicts_with_all = ["proof", "model_id"])]
    pub receipt: Option<PathBuf>,
    #[command(flatten)]
    pub quant: QuantArgs,
    /// Accept only the program with this id (64 hex digits), rebuilt from the ONNX model with
    /// the compile record of a JSON proof.
    #[arg(long, value_name = "ID", conflicts_with_all = ["scale", "calibrate"])]
    pub model_id: Option<ModelId>,
    /// Require this input visibility (default: whichever the proof has).
    #[arg(long, value_enum)]
    pub input_visibility: Option<InputVisibility>,
}

#[derive(Serialize)]
struct ModelFile {
    path: String,
    blake3: String,
}

#[derive(Serialize)]
struct VerifyReport {
    valid: bool,
    model: ModelFile,
    model_id: String,
    k: u32,
    input_visibility: Visibility,
    /// Segments verified, each with its links (1: one circuit).
    segments: usize,
    settings: Settings,
    nonce: String,
    outputs: Vec<Vec<i64>>,
    /// With --receipt: the task, block and executor the receipt names (the proof binds the
    /// task; the block is as the node said).
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<ReceiptFacts>,
    /// How many of the verifying keys (one per segment) were rebuilt from the ones an earlier
    /// derivation stored, instead of derived now.
    verifying_keys_cached: usize,
}

#[derive(Serialize)]
struct ReceiptFacts {
    task_id: String,
    deployed_model_id: String,
    block_height: u64,
    executor: usize,
}

impl Human for VerifyReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "valid proof for model {} (k = {}, {} inputs)\n",
            self.model_id, self.k, self.input_visibility
        ));
        if self.segments > 1 {
            out.push_str(&format!(
                "  segments  {} proofs and every link between them\n",
                self.segments
            ));
        }
        out.push_str(&format!(
            "  file      {} (blake3 {})\n",
            self.model.path, self.model.blake3
        ));
        out.push_str(&format!("  settings  {}\n", self.settings.describe()));
        out.push_str(&format!("  nonce     {}\n", self.nonce));
        out.push_str(&format!(
            "  key       {}\n",
            match (self.verifying_keys_cached, self.segments) {
                (0, _) => "derived from the program".to_string(),
                (c, s) if c == s => "the stored key of this circuit".to_string(),
                (c, s) => format!("{c} of {s} stored, the others derived"),
            }
        ));
        if let Some(r) = &self.receipt {
            out.push_str(&format!(
                "  receipt   task {} of deployed model {}, block {}, executor {}\n",
                r.task_id, r.deployed_model_id, r.block_height, r.executor
            ));
        }
    }
}

/// A receipt from `task get --json` (`{"task": {"receipt": ...}}`), `{"receipt": ...}` or
/// the receipt alone.
fn read_receipt(path: &std::path::Path) -> anyhow::Result<Receipt> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).context("not JSON")?;
    let r = if v["task"].is_object() {
        &v["task"]["receipt"]
    } else if v.get("receipt").is_some() {
        &v["receipt"]
    } else {
        &v
    };
    anyhow::ensure!(
        r.is_object(),
        "it holds no receipt (the task has not completed, status {})",
        v["task"]["status"]
    );
    let receipt: Receipt = serde_json::from_value(r.clone()).context("not a task receipt")?;
    anyhow::ensure!(
        receipt.attested_by.is_empty(),
        "the receipt is attested (by validators {:?}), not proven: it has no proof to verify",
        receipt.attested_by
    );
    Ok(receipt)
}

/// Checks that a receipt says what its (verified) proof proves: the task (the proof's nonce),
/// the deployed model (the package's program and visibility), the outputs (quantized and
/// dequantized) and the public inputs.
fn check_receipt(
    r: &Receipt,
    proof: &Proof,
    pkg: &lightchain_packager::Package,
) -> anyhow::Result<()> {
    let nonce = lightchain_devnet::crypto::hex(&proof.nonce);
    anyhow::ensure!(
        nonce == r.task_id,
        "invalid receipt: its proof is bound to task {nonce}, not {}",
        r.task_id
    );
    let deployed = lightchain_devnet::chain::params::deployment_id(
        &proof.model_id.to_string(),
        pkg.info.input_visibility,
    );
    anyhow::ensure!(
        deployed == r.model_id,
        "invalid receipt: this package deploys as model {deployed}, not the receipt's {}",
        r.model_id
    );
    anyhow::ensure!(
        proof.outputs == r.outputs,
        "invalid receipt: its outputs are not the proof's"
    );
    let floats: Vec<Vec<f64>> = pkg
        .program
        .dequantize_outputs(&proof.outputs)
        .into_iter()
        .map(|t| t.data)
        .collect();
    anyhow::ensure!(
        floats == r.outputs_float,
        "invalid receipt: its float outputs are not the proof's outputs dequantized"
    );
    let envelope: serde_json::Value = serde_json::from_str(&proof.to_json())?;
    anyhow::ensure!(
        envelope["public_inputs"] == r.public_inputs,
        "invalid receipt: its public inputs are not the proof's"
    );
    Ok(())
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
    /// The program this verifier accepts, and how it was decided.
    fn program(&self, source: &Source, proof: &Proof) -> anyhow::Result<(Arc<Program>, Settings)> {
        let (Some(expected), Source::Onnx(model)) = (self.model_id, source) else {
            let (program, _, settings) = source.program(&self.quant)?;
            return Ok((program, settings));
        };
        let record = proof.compile.as_ref().context(
            "--model-id needs a JSON proof that records how its program was compiled; give the \
             prover's settings (--scale, --calibrate) instead",
        )?;
        let program = model
            .compile_with(&record.calibration, &record.quant)
            .context("the proof's compile record does not compile this model")?;
        anyhow::ensure!(
            program.id() == expected,
            "invalid proof: {} with the proof's compile record is model {}, not the expected {expected}",
            self.model.model.display(),
            program.id()
        );
        let settings = Settings {
            from: "model-id".into(),
            scale: record.quant.fixed_scale,
            calibration: Vec::new(),
            default_range: None,
            package: None,
        };
        Ok((Arc::new(program), settings))
    }

    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let (proof, receipt) = match (&self.proof, &self.receipt) {
            (Some(p), _) => (
                read_proof(p).with_context(|| format!("invalid proof file {}", p.display()))?,
                None,
            ),
            (None, Some(r)) => {
                let receipt = read_receipt(r)
                    .with_context(|| format!("invalid receipt file {}", r.display()))?;
                let proof = Proof::from_bytes(&receipt.proof)
                    .with_context(|| format!("invalid proof in {}", r.display()))?;
                (proof, Some(receipt))
            }
            (None, None) => anyhow::bail!("give --proof or --receipt"),
        };
        let source = self.model.source()?;
        anyhow::ensure!(
            receipt.is_none() || matches!(source, Source::Package(_)),
            "--receipt needs the package the model was deployed from (a .lcpkg), not an ONNX model"
        );
        anyhow::ensure!(
            self.model_id.is_none() || matches!(source, Source::Onnx(_)),
            "--model-id applies to ONNX models; a package fixes its program"
        );
        let (program, settings) = self.program(&source, &proof)?;
        anyhow::ensure!(
            program.id() == proof.model_id,
            "invalid proof: it is for model {}, but {} with {} is model {}{}",
            proof.model_id,
            self.model.model.display(),
            settings.describe(),
            program.id(),
            if matches!(source, Source::Onnx(_)) {
                "; give the settings the prover used (--scale, --calibrate, --dim), or --model-id \
                 with an id you trust"
            } else {
                ""
            }
        );
        let visibility = match &source {
            Source::Package(p) => p.info.input_visibility,
            Source::Onnx(_) => proof.visibility,
        };
        if let Some(v) = self.input_visibility {
            anyhow::ensure!(
                Visibility::from(v) == proof.visibility,
                "invalid proof: it has {} inputs, not {}",
                proof.visibility,
                Visibility::from(v)
            );
        }
        let cache = ParamsCache::from_env();
        let sources: Vec<KeySource> = match &proof.segments {
            None => {
                let keys = Keys::derive(program, visibility, &cache, false)
                    .context("cannot derive the verifying key")?;
                keys.verify(&proof)?;
                vec![keys.vk_source]
            }
            // Every segment's verifying key from the program and the proof's cuts (any cut is
            // sound: the keys come from the program, not from the proof).
            Some(s) => {
                let keys = SegmentKeys::derive(program, visibility, &s.cut(), &cache, false)
                    .context("cannot derive the segments' verifying keys")?;
                keys.verify(&proof)?;
                keys.keys.iter().map(|k| k.vk_source).collect()
            }
        };
        let facts = match (&receipt, &source) {
            (Some(r), Source::Package(pkg)) => {
                check_receipt(r, &proof, pkg)?;
                Some(ReceiptFacts {
                    task_id: r.task_id.clone(),
                    deployed_model_id: r.model_id.clone(),
                    block_height: r.block_height,
                    executor: r.executor,
                })
            }
            _ => None,
        };
        let bytes = std::fs::read(&self.model.model)
            .with_context(|| format!("cannot read {}", self.model.model.display()))?;
        shell.emit(&VerifyReport {
            valid: true,
            model: ModelFile {
                path: self.model.model.display().to_string(),
                blake3: blake3::hash(&bytes).to_hex().to_string(),
            },
            model_id: proof.model_id.to_string(),
            k: proof.k,
            input_visibility: proof.visibility,
            segments: proof.segments.as_ref().map_or(1, |s| s.proofs.len()),
            settings,
            nonce: lightchain_devnet::crypto::hex(&proof.nonce),
            outputs: proof.outputs.clone(),
            receipt: facts,
            verifying_keys_cached: sources.iter().filter(|s| **s == KeySource::Cached).count(),
        })
    }
}
