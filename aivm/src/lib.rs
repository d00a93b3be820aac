//! `lightchain-aivm`: the AI Virtual Machine.
//!
//! An ONNX model enters through [`onnx::guard`] (protobuf-level checks before any ONNX library
//! interprets the file), is lowered by [`onnx::lower`] to a float [`ir::Graph`] over the AIVM's
//! closed op set ([`ops`]: one module per op family), calibrated and quantized by [`quantize`]
//! into an integer [`Program`], and run by the program's executor, the one meaning every
//! validator computes and proves. [`reference`] runs the same ONNX file in tract as the float
//! reference, and [`accuracy`] compares the two. A program has one canonical encoding
//! ([`program::encode`]) whose hash is the model id.
//!
//! [`Model`] ties the steps together for callers that start from a file.

pub mod accuracy;
pub mod circuit;
pub mod error;
pub mod gas;
pub mod input;
pub mod inspect;
pub mod ir;
pub mod onnx;
pub mod ops;
pub mod program;
pub mod proof;
pub mod quantize;
pub mod reference;
pub mod rng;
pub mod segment;
pub mod split;
pub mod state;
pub mod tensor;
pub mod wire;

use std::path::Path;

pub use accuracy::Accuracy;
pub use error::{AivmError, Result};
pub use guard::{GuardLimits, GuardedModel};
pub use input::Inputs;
pub use ir::{DType, Graph, ValueInfo};
pub use onnx::ImportOptions;
pub use onnx::guard;
pub use program::ModelId;
pub use program::Program;
pub use quantize::{Calibration, QuantConfig};
pub use tensor::Tensor;

/// A guarded and lowered ONNX model.
#[derive(Clone, Debug)]
pub struct Model {
    pub guarded: GuardedModel,
    pub graph: Graph,
}

impl Model {
    /// Guards, parses and lowers an ONNX file.
    pub fn load(path: &Path, opts: &ImportOptions, limits: &GuardLimits) -> Result<Model> {
        let guarded = guard::guard_file(path, limits)?;
        let graph = onnx::lower(&guarded, opts)?;
        Ok(Model { guarded, graph })
    }

    /// Guards, parses and lowers an ONNX model held in memory.
    pub fn from_bytes(bytes: Vec<u8>, opts: &ImportOptions, limits: &GuardLimits) -> Result<Model> {
        let guarded = guard::guard_bytes(bytes, limits)?;
        let graph = onnx::lower(&guarded, opts)?;
        Ok(Model { guarded, graph })
    }

    /// The model's runtime inputs with their (resolved) shapes and dtypes.
    pub fn inputs(&self) -> Vec<ValueInfo> {
        self.graph
            .inputs
            .iter()
            .map(|&i| self.graph.values[i].clone())
            .collect()
    }

    /// The model's outputs with their shapes and dtypes.
    pub fn outputs(&self) -> Vec<ValueInfo> {
        self.graph
            .outputs
            .iter()
            .map(|&i| self.graph.values[i].clone())
            .collect()
    }

    /// Parses an input file's text against this model's inputs.
    pub fn parse_inputs(&self, text: &str) -> Result<Inputs> {
        input::parse_inputs(text, &self.inputs())
    }

    /// Parses a task's input: every model input but, for a stateful program (`state`), the
    /// state (its last input), which the chain supplies.
    pub fn parse_task_inputs(&self, text: &str, state: bool) -> Result<Inputs> {
        let mut inputs = self.inputs();
        if state && let Some(s) = inputs.pop() {
            let named = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .is_some_and(|v| v["inputs"].get(&s.name).is_some());
            if named {
                return Err(AivmError::State(format!(
                    "\"{}\" is the model's state, which the chain keeps: leave it out of the task's input",
                    s.name
                )));
            }
        }
        input::parse_inputs(text, &inputs)
    }

    /// Calibrates on the samples and quantizes.
    pub fn compile(&self, samples: &[Inputs], cfg: &QuantConfig) -> Result<Program> {
        let cal = self.calibrate(samples)?;
        quantize::quantize(&self.graph, &cal, cfg)
    }

    /// Runs the float graph on the samples and records every value's magnitude.
    pub fn calibrate(&self, samples: &[Inputs]) -> Result<Calibration> {
        let data: Vec<Vec<Vec<f64>>> = samples
            .iter()
            .map(|s| s.tensors.iter().map(|t| t.data.clone()).collect())
            .collect();
        quantize::calibrate(&self.graph, &data)
    }

    /// The samples a model is calibrated on when no calibration data is given: float inputs
    /// over [`quantize::DEFAULT_INPUT_RANGE`], integer inputs (token ids) over the rows of the
    /// smallest embedding table (or `0..=1`). They depend on the model alone, so a prover and a
    /// verifier compile the same program from the same file.
    pub fn default_samples(&self) -> Vec<Inputs> {
        let rows = self
            .graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                ir::FOp::Gather(g) => g.table.shape.first().copied(),
                _ => None,
            })
            .min()
            .unwrap_or(2);
        let specs: Vec<_> = self
            .inputs()
            .into_iter()
            .map(|v| {
                let range = match v.dtype {
                    DType::F32 => quantize::DEFAULT_INPUT_RANGE,
                    DType::I64 => (0.0, rows.saturating_sub(1).max(1) as f64),
                };
                (v.shape, v.dtype, range)
            })
            .collect();
        quantize::range_samples(&specs, quantize::DEFAULT_SEED)
    }

    /// Quantizes with a given calibration (e.g. one recorded next to a proof).
    pub fn compile_with(&self, cal: &Calibration, cfg: &QuantConfig) -> Result<Program> {
        if cal.max_abs.len() != self.graph.values.len() {
            return Err(AivmError::Quantize(format!(
                "the calibration describes {} values but the model has {}",
                cal.max_abs.len(),
                self.graph.values.len()
            )));
        }
        quantize::quantize(&self.graph, cal, cfg)
    }

    /// The float reference (tract) for this model's input shapes.
    pub fn reference(&self) -> Result<reference::Reference> {
        reference::Reference::new(&self.guarded.proto, &self.inputs())
    }
}

impl Program {
    /// Quantizes float inputs to each input tensor's scale (integer inputs pass unchanged).
    /// A stateful program takes all of its inputs, or only the task's (without the state).
    pub fn quantize_inputs(&self, inputs: &Inputs) -> Result<Vec<Vec<i64>>> {
        let task_only = self.state && inputs.tensors.len() + 1 == self.inputs.len();
        if inputs.tensors.len() != self.inputs.len() && !task_only {
            return Err(AivmError::InputFormat(format!(
                "the program takes {} inputs, {} given",
                self.inputs.len(),
                inputs.tensors.len()
            )));
        }
        Ok(self
            .inputs
            .iter()
            .zip(&inputs.tensors)
            .map(|(io, t)| {
                let meta = &self.tensors[io.tensor];
                match meta.dtype {
                    DType::F32 => t
                        .data
                        .iter()
                        .map(|&x| ops::quantize(x, meta.scale))
                        .collect(),
                    DType::I64 => t.data.iter().map(|&x| x as i64).collect(),
                }
            })
            .collect())
    }

    /// Converts integer outputs back to floats (integer outputs such as argmax pass unchanged).
    pub fn dequantize_outputs(&self, outputs: &[Vec<i64>]) -> Vec<Tensor<f64>> {
        self.outputs
            .iter()
            .zip(outputs)
            .map(|(io, v)| {
                let meta = &self.tensors[io.tensor];
                Tensor::new(
                    meta.shape.clone(),
                    v.iter().map(|&x| ops::dequantize(x, meta.scale)).collect(),
                )
            })
            .collect()
    }

    /// Quantizes, executes and dequantizes in one call.
    pub fn run_float(&self, inputs: &Inputs) -> Result<Vec<Tensor<f64>>> {
        let q = self.quantize_inputs(inputs)?;
        let out = self.execute(&q)?;
        Ok(self.dequantize_outputs(&out))
    }
}
