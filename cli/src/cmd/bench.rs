//! `lightchain bench`: proves models with lightchain and with EZKL in the same run and writes a
//! side-by-side table (k, rows, keygen, prove, verify seconds, proof bytes, peak memory, output
//! error against the float model, and ratios to EZKL).
//!
//! Each model is measured in a child process (`lightchain bench-one`) so that its peak memory
//! is its own; EZKL runs through `../shared/peers/ezkl/prove.py` on the same ONNX file and input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::accuracy::compare;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{Keys, ParamsCache};
use lightchain_aivm::segment::{self, SegmentKeys};
use lightchain_aivm::{QuantConfig, Tensor};
use serde::{Deserialize, Serialize};

use crate::cmd::model::read_inputs;
use crate::cmd::prove::DEFAULT_MEMORY_MB;

mod devnet;
mod pipeline;
mod testnet;
use crate::shell::{Human, Shell};

/// Benchmark proving against EZKL and write BENCHMARKS.md.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain bench                                   # every fixture and EZKL example
  lightchain bench fixtures/ezkl/1l_mlp fixtures/digits_cnn --no-write
  lightchain bench --devnet 50 --devnet-model fixtures/digits_mlp   # latency and tasks/s
  lightchain bench --testnet 4,7,10 --devnet 20                    # node processes
  lightchain bench --pipeline templates/pipeline --devnet 20        # one proof vs one per stage
  lightchain bench --ezkl ../shared/peers/ezkl/prove.py --python ~/.cache/lightchain-peers/ezkl-venv/bin/python

A model folder holds model.onnx or network.onnx, and input.json.")]
pub struct BenchArgs {
    /// Model folders (default: fixtures/* and fixtures/ezkl/*).
    pub models: Vec<PathBuf>,
    /// EZKL's driver script.
    #[arg(long, default_value = "../shared/peers/ezkl/prove.py")]
    pub ezkl: PathBuf,
    /// The Python with EZKL installed (see ../shared/peers/ezkl/setup.sh).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip EZKL.
    #[arg(long)]
    pub no_ezkl: bool,
    /// Markdown file the table is written into (between its bench markers).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Print the table without writing the file.
    #[arg(long)]
    pub no_write: bool,
    /// Instead of proving against EZKL: measure end-to-end task latency on an in-process
    /// devnet of 4 validators over N tasks (submit to receipt with a verified proof), one at
    /// a time, then the proven tasks per second with N more submitted at once.
    #[arg(long, value_name = "N")]
    pub devnet: Option<usize>,
    /// The model folder the devnet benchmark deploys.
    #[arg(long, default_value = "fixtures/ezkl/1l_mlp")]
    pub devnet_model: PathBuf,
    /// With --devnet: validators exchange their messages over HTTP on loopback (sockets and
    /// the wire codec, as separate processes do) instead of in-process channels.
    #[arg(long, requires = "devnet")]
    pub over_http: bool,
    /// With --devnet: the number of validators.
    #[arg(long, default_value_t = 4, requires = "devnet", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub validators: u16,
    /// With --devnet: delay every message between validators by MS milliseconds (a network's
    /// one-way latency, simulated).
    #[arg(long, value_name = "MS", requires = "devnet")]
    pub delay_ms: Option<u64>,
    /// Instead of proving against EZKL: block time, task latency and proven tasks per second
    /// with every validator a separate `lightchain node` process, for each network size
    /// given (e.g. 4,7,10); --devnet N sets the tasks per size (default 20).
    #[arg(long, value_delimiter = ',', value_name = "N,...", conflicts_with_all = ["over_http", "chaos"])]
    pub testnet: Vec<usize>,
    /// Instead of proving against EZKL: run the devnet fault suite over N tasks (kills,
    /// revivals, partitions, delays and one Byzantine validator under load) and write its
    /// figures into RELIABILITY.md.
    #[arg(long, value_name = "N", conflicts_with = "devnet")]
    pub chaos: Option<usize>,
    /// Instead of proving against EZKL: a pipeline project (`[[stages]]`) proven as one
    /// program against each stage proven alone (time, bytes); with --devnet N also its task
    /// latency on the devnet.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["testnet", "chaos"])]
    pub pipeline: Option<PathBuf>,
    /// Seed of the fault schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Measure one model (run by `bench` in a child process).
#[derive(Debug, Args)]
pub struct BenchOneArgs {
    pub dir: PathBuf,
}

/// Figures of one prover on one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Figures {
    pub ok: bool,
    pub error: Option<String>,
    pub k: Option<u32>,
    pub rows: Option<u64>,
    pub keygen_s: Option<f64>,
    pub prove_s: Option<f64>,
    pub verify_s: Option<f64>,
    pub proof_bytes: Option<u64>,
    pub peak_mib: Option<f64>,
    pub max_rel_error: Option<f64>,
    /// Segments proven, when the circuit exceeds the AIVM's 512 MB per task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Row {
    model: String,
    lightchain: Figures,
    ezkl: Option<Figures>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    command: String,
    rows: Vec<Row>,
    #[serde(skip)]
    table: String,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        out.push_str(&self.table);
    }
}

fn model_file(dir: &Path) -> PathBuf {
    let m = dir.join("model.onnx");
    if m.exists() {
        m
    } else {
        dir.join("network.onnx")
    }
}

impl BenchOneArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let f = match measure(&self.dir) {
            Ok(f) => f,
            Err(e) => Figures {
                error: Some(format!("{e:#}")),
                ..Figures::default()
            },
        };
        println!("{}", serde_json::to_string(&f)?);
        Ok(())
    }
}

fn measure(dir: &Path) -> anyhow::Result<Figures> {
    let model =
        lightchain_aivm::Model::load(&model_file(dir), &Default::default(), &Default::default())?;
    let input = read_inputs(&model, &dir.join("input.json"))?;
    let program = Arc::new(model.compile(std::slice::from_ref(&input), &QuantConfig::default())?);
    let cache = ParamsCache::from_env();
    let cut = segment::cuts_within(&program, Visibility::Public, DEFAULT_MEMORY_MB)?;
    let q = program.quantize_inputs(&input)?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let decoded = Arc::new(lightchain_aivm::Program::decode(&program.encode())?);
    let (keygen_s, prove_s, verify_s, proof, rows) = match &cut {
        None => {
            // Parameters come from the cache (generated outside the timing on first use).
            let circuit =
                lightchain_aivm::circuit::AivmCircuit::new(program.clone(), Visibility::Public);
            cache.get(circuit.min_k())?;
            let t = Instant::now();
            let keys = Keys::derive(program.clone(), Visibility::Public, &cache, true)?;
            let keygen_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let proof = keys.prove(&q, [7; 32], &mut rng)?;
            let prove_s = t.elapsed().as_secs_f64();
            // A fresh verifier: keys from the program alone, timed on verification only.
            let verifier = Keys::derive(decoded, Visibility::Public, &cache, false)?;
            let t = Instant::now();
            verifier.verify(&proof)?;
            let verify_s = t.elapsed().as_secs_f64();
            (
                keygen_s,
                prove_s,
                verify_s,
                proof,
                keys.circuit.rows().0 as u64,
            )
        }
        Some(cut) => {
            // Within the AIVM's memory limit: segments, each proving key derived while
            // proving (so "prove" holds their derivation; "keygen" the verifying keys).
            // Parameters of every size a segment may take, outside the timing.
            for k in 4..=segment::max_k_within(DEFAULT_MEMORY_MB).unwrap_or(4) {
                cache.get(k)?;
            }
            let t = Instant::now();
            let keys =
                SegmentKeys::derive(program.clone(), Visibility::Public, cut, &cache, false)?;
            let keygen_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let workers = segment::workers(DEFAULT_MEMORY_MB, keys.k());
            let proof = keys.prove(&q, [7; 32], None, workers, &mut rng)?;
            let prove_s = t.elapsed().as_secs_f64();
            let verifier = SegmentKeys::derive(decoded, Visibility::Public, cut, &cache, false)?;
            let t = Instant::now();
            verifier.verify(&proof)?;
            let verify_s = t.elapsed().as_secs_f64();
            let rows = keys.keys.iter().map(|k| k.circuit.rows().0 as u64).sum();
            (keygen_s, prove_s, verify_s, proof, rows)
        }
    };
    let float = model.reference()?.run(&input.tensors)?;
    let ours = program.dequantize_outputs(&proof.outputs);
    let names: Vec<String> = program.outputs.iter().map(|o| o.name.clone()).collect();
    let acc = compare(&names, &float, &ours);
    Ok(Figures {
        ok: true,
        error: None,
        k: Some(proof.k),
        rows: Some(rows),
        keygen_s: Some(keygen_s),
        prove_s: Some(prove_s),
        verify_s: Some(verify_s),
        proof_bytes: Some(proof.proof_len() as u64),
        peak_mib: lightchain_profiler::profile::peak_mib(),
        max_rel_error: Some(acc.max_rel_error()),
        segments: proof.segments.as_ref().map(|s| s.proofs.len()),
    })
}

#[derive(Deserialize)]
struct EzklOut {
    verified: bool,
    k: Option<u32>,
    rows: Option<u64>,
    seconds: std::collections::HashMap<String, f64>,
    bytes: std::collections::HashMap<String, Option<u64>>,
    peak_rss_mib: Option<f64>,
    outputs: Option<Vec<Vec<serde_json::Value>>>,
}

fn ezkl(args: &BenchArgs, dir: &Path, python: &Path) -> Figures {
    let run = || -> anyhow::Result<Figures> {
        // EZKL reads MODEL_DIR/network.onnx and an EZKL-format input.json.
        let model = lightchain_aivm::Model::load(
            &model_file(dir),
            &Default::default(),
            &Default::default(),
        )?;
        let input = read_inputs(&model, &dir.join("input.json"))?;
        let tmp = tempfile::tempdir()?;
        std::fs::copy(model_file(dir), tmp.path().join("network.onnx"))?;
        let data: Vec<Vec<f64>> = input.tensors.iter().map(|t| t.data.clone()).collect();
        std::fs::write(
            tmp.path().join("input.json"),
            serde_json::json!({ "input_data": data }).to_string(),
        )?;
        let out = Command::new(python)
            .arg(&args.ezkl)
            .arg(tmp.path())
            .output()
            .context("cannot run EZKL")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .with_context(|| {
                let err = String::from_utf8_lossy(&out.stderr);
                format!(
                    "EZKL failed: {}",
                    err.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("no output")
                )
            })?;
        let e: EzklOut = serde_json::from_str(line)?;
        let float = model.reference()?.run(&input.tensors)?;
        let max_rel_error = e.outputs.as_ref().map(|outs| {
            let q: Vec<Tensor<f64>> = outs
                .iter()
                .zip(&float)
                .map(|(o, f)| {
                    Tensor::new(
                        f.shape.clone(),
                        o.iter()
                            .map(|v| {
                                v.as_f64()
                                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                                    .unwrap_or(f64::NAN)
                            })
                            .collect(),
                    )
                })
                .collect();
            let names: Vec<String> = (0..q.len()).map(|i| i.to_string()).collect();
            compare(&names, &float, &q).max_rel_error()
        });
        Ok(Figures {
            ok: e.verified,
            error: (!e.verified).then(|| "EZKL did not verify".into()),
            k: e.k,
            rows: e.rows,
            keygen_s: e.seconds.get("setup").copied(),
            prove_s: e.seconds.get("prove").copied(),
            verify_s: e.seconds.get("verify").copied(),
            proof_bytes: e.bytes.get("proof").copied().flatten(),
            peak_mib: e.peak_rss_mib,
            max_rel_error,
            segments: None,
        })
    };
    run().unwrap_or_else(|e| Figures {
        error: Some(format!("{e:#}")),
        ..Figures::default()
    })
}

fn default_models() -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for base in ["fixtures", "fixtures/ezkl"] {
        let Ok(rd) = std::fs::read_dir(base) else {
            continue;
        };
        for e in rd {
            let p = e?.path();
            if p.join("input.json").exists() && model_file(&p).exists() {
                v.push(p);
            }
        }
    }
    v.sort();
    anyhow::ensure!(
        !v.is_empty(),
        "no model folders found; run from the repository root or name them"
    );
    Ok(v)
}

fn f2(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
        _ => "–".into(),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {:.0} GiB", kb / 1024.0 / 1024.0)
        });
    format!("{cpu}, {cores} cores{mem}")
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| model | k (lc / ezkl) | rows (lc / ezkl) | keygen s (lc / ezkl) | prove s (lc / ezkl) | prove speed-up | verify s (lc / ezkl) | proof B (lc / ezkl) | peak MiB (lc / ezkl) | max rel error (lc / ezkl) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let l = &r.lightchain;
        let e = r.ezkl.clone().unwrap_or_default();
        let pair = |a: String, b: String| format!("{a} / {b}");
        let opt_u = |v: Option<u64>| v.map_or("–".into(), |x| x.to_string());
        let opt_k = |v: Option<u32>| v.map_or("–".into(), |x| x.to_string());
        let pct = |v: Option<f64>| v.map_or("–".into(), |x| format!("{:.3}%", x * 100.0));
        if !l.ok {
            t.push_str(&format!(
                "| {} | lightchain: {} | | | | | | | | |\n",
                r.model,
                // The first clause names the problem (e.g. the unsupported op); the rest is context.
                l.error
                    .clone()
                    .unwrap_or_default()
                    .split("; ")
                    .next()
                    .unwrap_or("")
                    .replace('|', "/")
            ));
            continue;
        }
        let mut ez_note = l
            .segments
            .map_or(String::new(), |n| format!(" ({n} segments ≤ 512 MB)"));
        if r.ezkl.is_some() && !e.ok {
            ez_note.push_str(" (ezkl failed)");
        }
        t.push_str(&format!(
            "| {}{ez_note} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.model,
            pair(opt_k(l.k), opt_k(e.k)),
            pair(opt_u(l.rows), opt_u(e.rows)),
            pair(f2(l.keygen_s, 2), f2(e.keygen_s, 2)),
            pair(f2(l.prove_s, 2), f2(e.prove_s, 2)),
            ratio(l.prove_s, e.prove_s),
            pair(f2(l.verify_s, 3), f2(e.verify_s, 3)),
            pair(opt_u(l.proof_bytes), opt_u(e.proof_bytes)),
            pair(f2(l.peak_mib, 0), f2(e.peak_mib, 0)),
            pair(pct(l.max_rel_error), pct(e.max_rel_error)),
        ));
    }
    // Ratios to EZKL over the models both proved: geometric means (EZKL / lightchain, so above
    // 1 means lightchain is faster or smaller).
    let both: Vec<(&Figures, Figures)> = rows
        .iter()
        .filter_map(|r| {
            r.ezkl
                .clone()
                .filter(|e| e.ok && r.lightchain.ok)
                .map(|e| (&r.lightchain, e))
        })
        .collect();
    let geo = |f: &dyn Fn(&Figures) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = both
            .iter()
            .filter_map(|(l, e)| Some(f(e)? / f(l)?))
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        (!v.is_empty()).then(|| (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
    };
    let show = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.1}×"));
    t.push_str(&format!(
        "\nGeometric means of EZKL / lightchain over the {} models both proved: keygen {}, prove {}, verify {}, peak memory {}, proof size {}.\n",
        both.len(),
        show(geo(&|f| f.keygen_s)),
        show(geo(&|f| f.prove_s)),
        show(geo(&|f| f.verify_s)),
        show(geo(&|f| f.peak_mib)),
        show(geo(&|f| f.proof_bytes.map(|b| b as f64))),
    ));
    t
}

/// The command line this benchmark was run with, for the report.
fn this_command() -> String {
    format!(
        "lightchain bench {}",
        std::env::args().skip(2).collect::<Vec<_>>().join(" ")
    )
    .trim()
    .to_string()
}

/// Replaces the section between `markers` in `path` (section includes the markers), or
/// appends it under `heading`.
fn write_section(
    path: &Path,
    heading: &str,
    (begin, end): (&str, &str),
    section: &str,
) -> anyhow::Result<()> {
    let title = match path.file_stem().and_then(|s| s.to_str()) {
        Some("RELIABILITY") => {
            "# Reliability\n\nFigures of the devnet's fault suite (`lightchain bench --chaos N`).\n"
        }
        _ => "# Benchmarks\n",
    };
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| format!("{title}\n"));
    let new = match (old.find(begin), old.find(end)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{section}{}", &old[..a], &old[b + end.len()..])
        }
        _ => format!("{old}\n## {heading}\n\n{section}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

const BEGIN: &str = "<!-- bench:prove:begin -->";
const END: &str = "<!-- bench:prove:end -->";

/// A project folder for a model folder: a manifest declaring its inputs (ranges from the input
/// file, widened) and outputs, so that it can be packaged and deployed.
fn project_for(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let model =
        lightchain_aivm::Model::load(&model_file(dir), &Default::default(), &Default::default())?;
    let input = read_inputs(&model, &dir.join("input.json"))?;
    let mut toml =
        String::from("[model]\nname = \"bench\"\nversion = \"0.1.0\"\nonnx = \"model.onnx\"\n\n");
    for (info, t) in model.inputs().iter().zip(&input.tensors) {
        let m = t.data.iter().fold(1.0f64, |a, v| a.max(v.abs())) * 2.0;
        let dtype = if info.dtype == lightchain_aivm::DType::I64 {
            "i64"
        } else {
            "f32"
        };
        toml.push_str(&format!(
            "[[inputs]]\nname = {:?}\ndtype = \"{dtype}\"\nshape = {:?}\nrange = [{}, {}]\n\n",
            info.name, info.shape, -m, m
        ));
    }
    for info in model.outputs() {
        let dtype = if info.dtype == lightchain_aivm::DType::I64 {
            "i64"
        } else {
            "f32"
        };
        toml.push_str(&format!(
            "[[outputs]]\nname = {:?}\ndtype = \"{dtype}\"\nshape = {:?}\n\n",
            info.name, info.shape
        ));
    }
    toml.push_str("[proving]\naccuracy_target = 0.05\n");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("lightchain.toml"), toml)?;
    std::fs::copy(model_file(dir), out.join("model.onnx"))?;
    Ok(())
}

impl BenchArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        if !self.testnet.is_empty() {
            return self.run_testnet(shell, &self.testnet);
        }
        if let Some(dir) = &self.pipeline {
            return self.run_pipeline(shell, dir);
        }
        if let Some(n) = self.devnet {
            return self.run_devnet(shell, n);
        }
        if let Some(n) = self.chaos {
            return self.run_chaos(shell, n);
        }
        let models = if self.models.is_empty() {
            default_models()?
        } else {
            self.models.clone()
        };
        let exe = std::env::current_exe()?;
        let python = match &self.python {
            Some(p) => p.clone(),
            None => {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default();
                home.join(".cache/lightchain-peers/ezkl-venv/bin/python")
            }
        };
        let pb = shell.progress(models.len() as u64, "proving");
        let mut rows = Vec::new();
        for dir in &models {
            let name = dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            pb.set_message(name.clone());
            // Keygen is measured as a derivation: no verifying key read from the cache.
            let out = Command::new(&exe)
                .arg("bench-one")
                .arg(dir)
                .env("LIGHTCHAIN_VK_CACHE", "off")
                .output()?;
            let line = String::from_utf8_lossy(&out.stdout);
            let lightchain: Figures =
                serde_json::from_str(line.trim()).unwrap_or_else(|_| Figures {
                    error: Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
                    ..Figures::default()
                });
            let ezkl = if self.no_ezkl || !lightchain.ok {
                None
            } else {
                Some(ezkl(&self, dir, &python))
            };
            rows.push(Row {
                model: name,
                lightchain,
                ezkl,
            });
            pb.inc(1);
        }
        pb.finish_and_clear();
        let command = this_command();
        let table = table(&rows);
        let report = Report {
            machine: machine(),
            command,
            rows,
            table,
        };
        if !self.no_write {
            let section = format!(
                "{BEGIN}\nMeasured with `{}` (release build) on {}; lightchain and EZKL ran one after the other in the same run, each model in its own process. Keygen excludes parameter generation for both (lightchain caches `Params` on disk; EZKL's SRS is cached). Rows: lightchain's used rows; EZKL's `num_rows`. Errors are relative to the float model's largest output magnitude, both against tract's float output.\n\n{}{END}",
                report.command, report.machine, report.table
            );
            write_section(
                &self.out,
                "Proving: lightchain vs EZKL",
                (BEGIN, END),
                &section,
            )?;
        }
        shell.emit(&report)
    }
}
