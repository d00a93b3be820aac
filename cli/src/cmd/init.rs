//! `lightchain init`: a new project from a template.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::shell::{Human, Shell};

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The templates `init` knows, with a line about each.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "digits",
        "handwritten digit classifier (8x8 pixels, MLP trained on scikit-learn's digits)",
    ),
    (
        "fraud",
        "tabular fraud-style classifier (transaction features, MLP)",
    ),
    (
        "sentiment",
        "text classifier over token ids (embedding, mean, MLP)",
    ),
    (
        "transformer",
        "vision transformer on 8x8 digits (8 tokens, 2 heads, 2 layers, attention + GELU MLP)",
    ),
    (
        "pipeline",
        "two-stage pipeline under one proof (fraud features -> embedding -> classifier)",
    ),
    (
        "stateful",
        "fraud classifier keeping a running average of its scores as state across tasks",
    ),
];

/// Create a project from a template: manifest, model, inputs, test vectors and a CI workflow.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain init demo --template digits && cd demo && lightchain package && lightchain test
  lightchain init fraud-check --template fraud
  lightchain init scoring --template pipeline     # two ONNX models, one proof
  lightchain init watch --template stateful       # state kept across tasks, under the proof

Templates: digits, fraud, sentiment, transformer, pipeline.")]
pub struct InitArgs {
    /// The folder to create (it must not exist, or be empty).
    pub dir: PathBuf,
    /// The template.
    #[arg(long, short = 't', default_value = "digits", value_parser = clap::builder::PossibleValuesParser::new(TEMPLATES.iter().map(|t| t.0)))]
    pub template: String,
}

#[derive(Serialize)]
struct Report {
    dir: String,
    template: String,
    files: Vec<String>,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "created {} from the {} template:\n",
            self.dir, self.template
        ));
        for f in &self.files {
            out.push_str(&format!("  {f}\n"));
        }
        out.push_str(&format!(
            "\nnext:\n  cd {}\n  lightchain package      # check, quantize, compile and prove the test vectors\n  lightchain test         # run the test vectors again (what CI runs)\n",
            self.dir
        ));
    }
}

impl InitArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let files: Vec<&(&str, &str, &[u8])> = TEMPLATE_FILES
            .iter()
            .filter(|(t, _, _)| *t == self.template)
            .collect();
        anyhow::ensure!(
            !files.is_empty(),
            "this build has no \"{}\" template",
            self.template
        );
        if self.dir.exists() {
            let empty = std::fs::read_dir(&self.dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            anyhow::ensure!(
                empty,
                "{} already exists and is not empty; nothing was written",
                self.dir.display()
            );
        }
        for (_, path, bytes) in &files {
            let dest = self.dir.join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&dest, bytes)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        shell.emit(&Report {
            dir: self.dir.display().to_string(),
            template: self.template.clone(),
            files: files.iter().map(|(_, p, _)| p.to_string()).collect(),
        })
    }
}
