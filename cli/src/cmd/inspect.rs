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

impl InspectArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
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
