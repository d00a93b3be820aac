//! `lightchain run`: the integer executor next to tract's float reference.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::Tensor;
use lightchain_aivm::accuracy::{self, Accuracy, argmax_rows};
use serde::Serialize;

use crate::cmd::model::{ModelArgs, QuantArgs, input_hint, read_inputs};
use crate::shell::{Human, Shell, shape};

/// Run a model with the AIVM integer executor and with tract in float, and compare them.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain run fixtures/digits_mlp/model.onnx --input fixtures/digits_mlp/input.json
  lightchain run network.onnx --input input.json --scale 7      # EZKL-style fixed scale
  lightchain run model.onnx --input in.json --json | jq .accuracy
  lightchain run model.onnx --input in.json --calibrate in.json   # calibrated on this input

The model is compiled as `prove` compiles it: with --scale and --calibrate, or without
calibration files on deterministic samples with every float input in [-1, 1].

Input files hold named tensors {\"inputs\": {\"x\": [[...]]}} or EZKL's {\"input_data\": [[...]]}.")]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The input file (JSON).
    #[arg(long, short = 'i', value_name = "INPUT.json")]
    pub input: PathBuf,
    #[command(flatten)]
    pub quant: QuantArgs,
}

#[derive(Serialize)]
struct OutputReport {
    name: String,
    shape: Vec<usize>,
    scale: u32,
    aivm: Vec<f64>,
    float: Vec<f64>,
}

#[derive(Serialize)]
struct RunReport {
    model: String,
    model_id: String,
    program_bytes: usize,
    aivm_nodes: usize,
    macs: u64,
    params: u64,
    input_scales: Vec<u32>,
    outputs: Vec<OutputReport>,
    accuracy: Accuracy,
}

fn preview(v: &[f64]) -> String {
    const MAX: usize = 12;
    let mut s: Vec<String> = v.iter().take(MAX).map(|x| format!("{x:.5}")).collect();
    if v.len() > MAX {
        s.push(format!("... ({} more)", v.len() - MAX));
    }
    format!("[{}]", s.join(", "))
}

impl Human for RunReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!("model     {}\n", self.model));
        out.push_str(&format!(
            "model id  {} ({} AIVM nodes, {} MACs, {} params, program {} bytes)\n",
            self.model_id, self.aivm_nodes, self.macs, self.params, self.program_bytes
        ));
        for (o, a) in self.outputs.iter().zip(&self.accuracy.outputs) {
            out.push_str(&format!(
                "output    {} {} (scale 2^-{})\n",
                o.name,
                shape(&o.shape),
                o.scale
            ));
            out.push_str(&format!("  aivm    {}\n", preview(&o.aivm)));
            out.push_str(&format!("  float   {}\n", preview(&o.float)));
            let arg = match a.argmax_agrees {
                Some(true) => {
                    let t = Tensor::new(o.shape.clone(), o.float.clone());
                    format!(", argmax agrees ({:?})", argmax_rows(&t))
                }
                Some(false) => ", argmax DIFFERS".into(),
                None => String::new(),
            };
            out.push_str(&format!(
                "  error   max abs {:.3e}, max rel {:.4}%{arg}\n",
                a.max_abs_error,
                a.max_rel_error * 100.0
            ));
        }
    }
}

impl RunArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let source = self.model.source()?;
        let model = source.model();
        let input = read_inputs(model, &self.input)?;
        let (program, _, settings) = source.program(&self.quant)?;
        let aivm = program
            .run_float(&input)
            .map_err(|e| input_hint(e, &settings))?;
        let float = model
            .reference()
            .and_then(|r| r.run(&input.tensors))
            .context("the float reference failed")?;
        let names: Vec<String> = program.outputs.iter().map(|o| o.name.clone()).collect();
        let accuracy = accuracy::compare(&names, &float, &aivm);
        let outputs = program
            .outputs
            .iter()
            .zip(aivm.iter().zip(&float))
            .map(|(io, (a, f))| OutputReport {
                name: io.name.clone(),
                shape: a.shape.clone(),
                scale: program.tensors[io.tensor].scale,
                aivm: a.data.clone(),
                float: f.data.clone(),
            })
            .collect();
        shell.emit(&RunReport {
            model: self.model.model.display().to_string(),
            model_id: program.id().to_string(),
            program_bytes: program.encode().len(),
            aivm_nodes: program.nodes.len(),
            macs: program.macs(),
            params: program.param_count(),
            input_scales: program
                .inputs
                .iter()
                .map(|i| program.tensors[i.tensor].scale)
                .collect(),
            outputs,
            accuracy,
        })
    }
}
