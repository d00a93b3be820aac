//! `lightchain bench --pipeline DIR`: a pipeline project proven as one program (one proof)
//! against its stages proven one by one (one proof per stage, the tensors between stages then
//! public values that link the proofs), and with `--devnet N` the pipeline's end-to-end task
//! latency on the devnet.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::guard::GuardLimits;
use lightchain_aivm::proof::ParamsCache;
use lightchain_aivm::segment::ModelKeys;
use lightchain_aivm::{ImportOptions, Inputs, Model, Program, Tensor};
use serde::Serialize;

use super::devnet::percentile;
use super::{BenchArgs, machine, this_command, write_section};
use crate::shell::{Human, Shell};

/// Proofs per measurement; the median is reported.
const RUNS: usize = 5;

/// One circuit's figures.
#[derive(Debug, Clone, Serialize)]
struct Proven {
    what: String,
    k: u32,
    rows: u64,
    keygen_s: f64,
    prove_s: f64,
    verify_s: f64,
    proof_bytes: usize,
}

#[derive(Serialize)]
struct PipelineReport {
    machine: String,
    command: String,
    pipeline: String,
    one_proof: Proven,
    per_stage: Vec<Proven>,
    devnet_median_ms: Option<f64>,
    devnet_p99_ms: Option<f64>,
    devnet_tasks_per_second: Option<f64>,
    #[serde(skip)]
    table: String,
}

impl Human for PipelineReport {
    fn human(&self, out: &mut String) {
        out.push_str(&self.table);
    }
}

const BEGIN: &str = "<!-- bench:pipeline:begin -->";
const END: &str = "<!-- bench:pipeline:end -->";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Keys, then [`RUNS`] proofs and verifications of `program` on `inputs`.
fn prove(what: &str, program: Arc<Program>, inputs: &[Vec<i64>]) -> anyhow::Result<Proven> {
    let params = ParamsCache::from_env();
    let rows = lightchain_aivm::gas::meter(&program, Visibility::Public).rows;
    let start = Instant::now();
    let keys = ModelKeys::derive(program, Visibility::Public, 1 << 20, &params, true)?;
    let keygen_s = start.elapsed().as_secs_f64();
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let (mut p, mut v, mut bytes) = (Vec::new(), Vec::new(), 0);
    for i in 0..RUNS {
        let mut nonce = [0u8; 32];
        nonce[0] = i as u8;
        let start = Instant::now();
        let proof = keys.prove_with_salt(inputs, nonce, None, &mut rng)?;
        p.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        keys.verify(&proof)?;
        v.push(start.elapsed().as_secs_f64());
        bytes = proof.proof_len();
    }
    Ok(Proven {
        what: what.to_string(),
        k: keys.k(),
        rows,
        keygen_s,
        prove_s: median(p),
        verify_s: median(v),
        proof_bytes: bytes,
    })
}

/// Each stage compiled alone (calibrated on the float values reaching it from the test
/// vectors, with the pipeline's quantization) and proven on the values of the first vector.
fn stages_alone(
    dir: &Path,
    pkg: &lightchain_packager::Package,
    samples: &[Inputs],
) -> anyhow::Result<Vec<Proven>> {
    // Per sample: every value a later stage may read, by pipeline input name or STAGE.OUTPUT.
    let mut values: Vec<HashMap<String, Tensor<f64>>> = samples
        .iter()
        .map(|s| {
            pkg.model
                .inputs()
                .iter()
                .zip(&s.tensors)
                .map(|(i, t)| (i.name.clone(), t.clone()))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for st in &pkg.manifest.stages {
        let bytes = std::fs::read(dir.join(&st.onnx))
            .with_context(|| format!("cannot read {}", st.onnx.display()))?;
        let guarded = lightchain_aivm::guard::guard_bytes(bytes, &GuardLimits::default())?;
        let source = |input: &str| -> String {
            st.inputs
                .iter()
                .find(|(i, _)| i == input)
                .map_or(input.to_string(), |(_, src)| src.clone())
        };
        let declared: Vec<String> = lightchain_aivm::onnx::value_info::runtime_inputs(
            guarded
                .proto
                .graph
                .as_ref()
                .context("a stage without a graph")?,
        )
        .map(|v| v.name.clone())
        .collect();
        let input_shapes = declared
            .iter()
            .map(|n| {
                let t = values[0]
                    .get(&source(n))
                    .with_context(|| format!("stage {}: no value for input {n}", st.name))?;
                Ok((n.clone(), t.shape.clone()))
            })
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        let opts = ImportOptions {
            input_shapes,
            ..ImportOptions::default()
        };
        let graph = lightchain_aivm::onnx::lower(&guarded, &opts)?;
        let model = Model { guarded, graph };
        let stage_samples: Vec<Inputs> = values
            .iter()
            .map(|vals| Inputs {
                tensors: model
                    .inputs()
                    .iter()
                    .map(|i| vals[&source(&i.name)].clone())
                    .collect(),
            })
            .collect();
        let program = Arc::new(model.compile(&stage_samples, &pkg.compile.quant)?);
        let q = program.quantize_inputs(&stage_samples[0])?;
        out.push(prove(&format!("stage {} alone", st.name), program, &q)?);
        for (vals, s) in values.iter_mut().zip(&stage_samples) {
            let data: Vec<Vec<f64>> = s.tensors.iter().map(|t| t.data.clone()).collect();
            let all = model.graph.eval(&data);
            for (o, &id) in model.outputs().iter().zip(&model.graph.outputs) {
                vals.insert(
                    format!("{}.{}", st.name, o.name),
                    Tensor::new(o.shape.clone(), all[id].clone()),
                );
            }
        }
    }
    Ok(out)
}

impl BenchArgs {
    pub(super) fn run_pipeline(&self, shell: &Shell, dir: &Path) -> anyhow::Result<()> {
        let params = ParamsCache::from_env();
        let pb = shell.progress(3, "packaging");
        let (package, pkg) = lightchain_packager::build(dir, &params, false, &mut |_| {})?;
        anyhow::ensure!(
            !pkg.manifest.stages.is_empty(),
            "{} is not a pipeline project: its lightchain.toml has no [[stages]]",
            dir.display()
        );
        anyhow::ensure!(
            !pkg.manifest.tests.is_empty(),
            "the pipeline needs a [[tests]] entry: its input is what the benchmark proves"
        );
        let mut samples = Vec::new();
        let mut texts = Vec::new();
        for t in &pkg.manifest.tests {
            let text = std::fs::read_to_string(dir.join(&t.input))
                .with_context(|| format!("cannot read {}", t.input.display()))?;
            samples.push(pkg.model.parse_inputs(&text)?);
            texts.push(text);
        }
        pb.inc(1);
        pb.set_message("one proof");
        let q = pkg.program.quantize_inputs(&samples[0])?;
        let one = prove("pipeline, one proof", pkg.program.clone(), &q)?;
        pb.inc(1);
        pb.set_message("each stage");
        let per_stage = stages_alone(dir, &pkg, &samples)?;
        pb.finish_and_clear();
        let devnet = match self.devnet {
            Some(n) => {
                // The input file of the first vector, as the benchmark proved it.
                let input: serde_json::Value = serde_json::from_str(&texts[0])?;
                let run = self.devnet_latency(shell, n, package, &input)?;
                let (mut sorted, per_second) = (run.latencies, run.per_second);
                sorted.sort_by(|a, b| a.total_cmp(b));
                Some((
                    percentile(&sorted, 0.5),
                    percentile(&sorted, 0.99),
                    per_second,
                ))
            }
            None => None,
        };
        let sum = |f: &dyn Fn(&Proven) -> f64| per_stage.iter().map(f).sum::<f64>();
        let mut table = String::from(
            "| proven as | k | rows | keygen s | prove s | verify s | proof bytes |\n|---|---|---|---|---|---|---|\n",
        );
        for p in std::iter::once(&one).chain(&per_stage) {
            table.push_str(&format!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.4} | {} |\n",
                p.what, p.k, p.rows, p.keygen_s, p.prove_s, p.verify_s, p.proof_bytes
            ));
        }
        let stages_prove = sum(&|p| p.prove_s);
        let stages_bytes = sum(&|p| p.proof_bytes as f64);
        table.push_str(&format!(
            "| {} stages alone, total | | | {:.3} | {:.3} | {:.4} | {} |\n",
            per_stage.len(),
            sum(&|p| p.keygen_s),
            stages_prove,
            sum(&|p| p.verify_s),
            stages_bytes
        ));
        table.push_str(&format!(
            "\nOne proof vs one per stage: prove {:.2}× the time, {:.2}× the bytes, verify {:.2}× the time.\n",
            one.prove_s / stages_prove,
            one.proof_bytes as f64 / stages_bytes,
            one.verify_s / sum(&|p| p.verify_s),
        ));
        if let Some((med, p99, tps)) = devnet {
            table.push_str(&format!(
                "\nDevnet ({} validators, {} tasks, in process): the pipeline as one proven task, submit to receipt, median {med:.1} ms, p99 {p99:.1} ms, {tps:.2} proven tasks/s at saturation (the seed's reference for two stages: ~520 ms).\n",
                self.validators,
                self.devnet.unwrap_or(0),
            ));
        }
        let command = this_command();
        let report = PipelineReport {
            machine: machine(),
            command: command.clone(),
            pipeline: dir.display().to_string(),
            one_proof: one,
            per_stage,
            devnet_median_ms: devnet.map(|d| d.0),
            devnet_p99_ms: devnet.map(|d| d.1),
            devnet_tasks_per_second: devnet.map(|d| d.2),
            table,
        };
        if !self.no_write {
            let section = format!(
                "{BEGIN}\nMeasured with `{command}` (release build) on {}: the pipeline packaged as one program and proven once, against each stage compiled alone (calibrated on the float values reaching it, same quantization) and proven on its own, as two separate proofs would be. Medians of {RUNS} proofs; public inputs. Separate proofs must publish the tensor between the stages to link them; the one proof keeps it private.\n\n{}{END}",
                report.machine, report.table
            );
            write_section(
                &self.out,
                "Pipelines: one proof vs one per stage",
                (BEGIN, END),
                &section,
            )?;
        }
        shell.emit(&report)
    }
}
