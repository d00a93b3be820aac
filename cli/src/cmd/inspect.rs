//! `lightchain inspect`: what a model is and whether the AIVM can run it.

use anyhow::Context;
use clap::Args;
use lightchain_aivm::GuardLimits;
use lightchain_aivm::inspect::{ModelSummary, inspect_file};
use serde::Serialize;

use crate::cmd::model::ModelArgs;
use crate::shell::{Human, Shell, shape, thousands};

/// Show a model's inputs, outputs, op inventory, size and AIVM support.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain inspect fixtures/digits_mlp/model.onnx
  lightchain inspect model.onnx --json | jq .supported
  lightchain inspect model.onnx --dim batch_size=8")]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Serialize)]
struct Report {
    path: String,
    #[serde(flatten)]
    summary: ModelSummary,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        let s = &self.summary;
        out.push_str(&format!(
            "model    {} ({} bytes, opset {}, ir {}{})\n",
            self.path,
            thousands(s.file_bytes),
            s.opset,
            s.ir_version,
            if s.producer.is_empty() {
                String::new()
            } else {
                format!(", {}", s.producer)
            }
        ));
        for (label, ios) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
            for (i, io) in ios.iter().enumerate() {
                let l = if i == 0 { label } else { "" };
                out.push_str(&format!(
                    "{l:<8} {} {} {}\n",
                    io.name,
                    shape(&io.shape),
                    io.dtype
                ));
            }
        }
        let ops: Vec<String> = s
            .ops
            .iter()
            .map(|o| {
                format!(
                    "{} x{}{}",
                    o.op,
                    o.count,
                    if o.supported { "" } else { " (unsupported)" }
                )
            })
            .collect();
        out.push_str(&format!("ops      {} nodes: {}\n", s.nodes, ops.join(", ")));
        out.push_str(&format!("params   {}\n", thousands(s.params)));
        if let Some(m) = s.macs {
            out.push_str(&format!("macs     {}\n", thousands(m)));
        }
        match (&s.reason, s.aivm_nodes) {
            (None, Some(n)) => out.push_str(&format!(
                "aivm     supported ({n} AIVM nodes after lowering)\n"
            )),
            (Some(r), _) => out.push_str(&format!("aivm     not supported: {r}\n")),
            _ => {}
        }
    }
}

#[derive(Serialize)]
struct EntryReport {
    name: String,
    bytes: usize,
    blake3: String,
}

#[derive(Serialize)]
struct PackageReport {
    path: String,
    package: lightchain_packager::package::PackageInfo,
    manifest: lightchain_packager::Manifest,
    program: ProgramReport,
    gas: lightchain_aivm::gas::GasReport,
    accuracy: lightchain_packager::package::AccuracyReport,
    entries: Vec<EntryReport>,
}

#[derive(Serialize)]
struct ProgramReport {
    nodes: usize,
    macs: u64,
    params: u64,
    encoded_bytes: usize,
    input_scales: Vec<u32>,
    output_scales: Vec<u32>,
}

fn spec_line(t: &lightchain_packager::manifest::TensorSpec) -> String {
    let mut s = format!(
        "{} {} {}",
        t.name,
        shape(&t.shape),
        match t.dtype {
            lightchain_packager::manifest::DTypeSpec::F32 => "f32",
            lightchain_packager::manifest::DTypeSpec::I64 => "i64",
        }
    );
    if let Some([lo, hi]) = t.range {
        s.push_str(&format!(" in [{lo}, {hi}]"));
    }
    if let Some(l) = &t.labels {
        s.push_str(&format!(" labels {}", l.join(",")));
    }
    s
}

impl Human for PackageReport {
    fn human(&self, out: &mut String) {
        let p = &self.package;
        let m = &self.manifest;
        out.push_str(&format!(
            "package  {} (format {}, lightchain {})
",
            self.path, p.format, p.lightchain
        ));
        out.push_str(&format!(
            "model    {} {}{}
",
            p.name,
            p.version,
            m.description
                .as_ref()
                .map_or(String::new(), |d| format!(": {d}"))
        ));
        out.push_str(&format!(
            "model id {}
",
            p.model_id
        ));
        for (i, st) in m.stages.iter().enumerate() {
            let fed: Vec<String> = st
                .inputs
                .iter()
                .map(|(input, src)| format!("{input} <- {src}"))
                .collect();
            out.push_str(&format!(
                "{:<8} {} ({}){}\n",
                if i == 0 { "stages" } else { "" },
                st.name,
                st.onnx.display(),
                if fed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", fed.join(", "))
                }
            ));
        }
        for (label, ios) in [("inputs", &m.inputs), ("outputs", &m.outputs)] {
            for (i, t) in ios.iter().enumerate() {
                out.push_str(&format!(
                    "{:<8} {}
",
                    if i == 0 { label } else { "" },
                    spec_line(t)
                ));
            }
        }
        out.push_str(&format!(
            "proving  {}{} inputs, public outputs, scale {}, accuracy target {}%
",
            if p.mode == lightchain_packager::manifest::ProvingMode::Attested {
                "attested (executed and signed by the validators, no proof), "
            } else {
                ""
            },
            p.input_visibility,
            match m.proving.scale {
                lightchain_packager::manifest::ScaleSpec::Auto => "auto".to_string(),
                lightchain_packager::manifest::ScaleSpec::Fixed(s) => s.to_string(),
            },
            m.proving.accuracy_target * 100.0
        ));
        out.push_str(&format!(
            "circuit  k = {}, {} rows, vk digest {}
",
            p.k,
            thousands(self.gas.rows),
            p.vk_digest
        ));
        out.push_str(&format!(
            "program  {} nodes, {} MACs, {} params, {} bytes
",
            self.program.nodes,
            thousands(self.program.macs),
            thousands(self.program.params),
            thousands(self.program.encoded_bytes as u64)
        ));
        out.push_str(&format!(
            "gas      {} per task (prove {}, execute {}, io {}, verify {}; schedule v{})
",
            thousands(self.gas.total),
            thousands(self.gas.prove_gas),
            thousands(self.gas.exec_gas),
            thousands(self.gas.io_gas),
            thousands(self.gas.verify_gas),
            self.gas.schedule
        ));
        out.push_str(&format!(
            "limits   {} MB memory per task (estimate {} MB)
",
            m.limits.memory_mb, p.memory_estimate_mb
        ));
        out.push_str(&format!(
            "accuracy max relative error {:.3}% over {} test vector(s), {}-bit activations
",
            self.accuracy.max_rel_error * 100.0,
            self.accuracy.vectors.len(),
            self.accuracy.act_bits
        ));
        for t in &m.tests {
            out.push_str(&format!(
                "test     {} ({})
",
                t.name,
                t.input.display()
            ));
        }
        for e in &self.entries {
            out.push_str(&format!(
                "entry    {:<14} {:>9} bytes  blake3 {}
",
                e.name,
                thousands(e.bytes as u64),
                &e.blake3[..16]
            ));
        }
    }
}

impl InspectArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        if crate::cmd::model::is_package(&self.model.model) {
            let pkg = lightchain_packager::load_file(&self.model.model).with_context(|| {
                format!("failed to load package {}", self.model.model.display())
            })?;
            let prog = &pkg.program;
            return shell.emit(&PackageReport {
                path: self.model.model.display().to_string(),
                package: pkg.info.clone(),
                manifest: pkg.manifest.clone(),
                program: ProgramReport {
                    nodes: prog.nodes.len(),
                    macs: prog.macs(),
                    params: prog.param_count(),
                    encoded_bytes: prog.encode().len(),
                    input_scales: prog
                        .inputs
                        .iter()
                        .map(|i| prog.tensors[i.tensor].scale)
                        .collect(),
                    output_scales: prog
                        .outputs
                        .iter()
                        .map(|i| prog.tensors[i.tensor].scale)
                        .collect(),
                },
                gas: pkg.gas.clone(),
                accuracy: pkg.accuracy.clone(),
                entries: pkg
                    .entries
                    .iter()
                    .map(|(n, b, h)| EntryReport {
                        name: n.clone(),
                        bytes: *b,
                        blake3: h.clone(),
                    })
                    .collect(),
            });
        }
        let summary = inspect_file(
            &self.model.model,
            &self.model.import_options(),
            &GuardLimits::default(),
        )
        .with_context(|| format!("failed to inspect {}", self.model.model.display()))?;
        shell.emit(&Report {
            path: self.model.model.display().to_string(),
            summary,
        })
    }
}
