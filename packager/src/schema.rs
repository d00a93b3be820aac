//! The manifest's inputs and outputs against the ONNX graph: names, ranks, dims and dtypes.
//! Every mismatch is reported, at once, with shapes and dtypes only.

use std::collections::HashMap;

use lightchain_aivm::error::ShapeDisplay;
use lightchain_aivm::guard::GuardedModel;
use lightchain_aivm::onnx::{self, value_info};
use lightchain_aivm::{DType, ImportOptions, Model};

use crate::error::{ManifestIssue, PackageError, Result};
use crate::manifest::{DTypeSpec, Manifest, TensorSpec};

fn dtype_name(d: DTypeSpec) -> &'static str {
    match d {
        DTypeSpec::F32 => "f32",
        DTypeSpec::I64 => "i64",
    }
}

fn to_dtype(d: DTypeSpec) -> DType {
    match d {
        DTypeSpec::F32 => DType::F32,
        DTypeSpec::I64 => DType::I64,
    }
}

/// What the ONNX file declares for one input: name, dims (`None` for symbolic) and dtype.
struct Declared {
    name: String,
    dims: Vec<Option<usize>>,
    dtype: Option<DType>,
}

fn declared_inputs(g: &GuardedModel) -> Vec<Declared> {
    let Some(graph) = g.proto.graph.as_ref() else {
        return vec![];
    };
    value_info::runtime_inputs(graph)
        .map(|v| match value_info::decode(v) {
            Some(d) => Declared {
                name: d.name.clone(),
                dims: d.dims().iter().map(|x| x.fixed()).collect(),
                dtype: d.dtype(),
            },
            None => Declared {
                name: v.name.clone(),
                dims: vec![],
                dtype: None,
            },
        })
        .collect()
}

fn issue(t: &TensorSpec, message: String) -> ManifestIssue {
    ManifestIssue {
        line: t.line,
        message,
    }
}

/// Checks the manifest against the guarded model and lowers it with the manifest's shapes.
pub fn check_and_lower(manifest: &Manifest, guarded: GuardedModel) -> Result<Model> {
    let mut issues = Vec::new();
    let declared = declared_inputs(&guarded);
    let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
    for t in &manifest.inputs {
        match declared.iter().find(|d| d.name == t.name) {
            None => issues.push(issue(
                t,
                format!(
                    "input \"{}\" is not an input of the model; its inputs are: {}",
                    t.name,
                    names.join(", ")
                ),
            )),
            Some(d) => {
                if d.dims.len() != t.shape.len() {
                    issues.push(issue(
                        t,
                        format!(
                            "input \"{}\": rank {} in the manifest, {} in the model",
                            t.name,
                            t.shape.len(),
                            d.dims.len()
                        ),
                    ));
                } else {
                    for (i, (&m, &g)) in t.shape.iter().zip(&d.dims).enumerate() {
                        if let Some(g) = g
                            && g != m
                        {
                            issues.push(issue(t, format!("input \"{}\": dim {i} is {m} in the manifest, {g} in the model", t.name)));
                        }
                    }
                }
                if d.dtype != Some(to_dtype(t.dtype)) {
                    issues.push(issue(
                        t,
                        format!(
                            "input \"{}\": dtype {} in the manifest, {} in the model",
                            t.name,
                            dtype_name(t.dtype),
                            d.dtype.map_or("an unsupported type", |x| x.name())
                        ),
                    ));
                }
            }
        }
    }
    for d in &declared {
        if !manifest.inputs.iter().any(|t| t.name == d.name) {
            issues.push(ManifestIssue {
                line: 0,
                message: format!(
                    "the model's input \"{}\" is not declared in [[inputs]]",
                    d.name
                ),
            });
        }
    }
    if !issues.is_empty() {
        // Output checks need a lowered graph, which needs consistent inputs.
        return Err(PackageError::Schema { issues });
    }
    let opts = ImportOptions {
        input_shapes: manifest
            .inputs
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect::<HashMap<_, _>>(),
        ..ImportOptions::default()
    };
    let graph = onnx::lower(&guarded, &opts)?;
    let model = Model { guarded, graph };
    let outs = model.outputs();
    let out_names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    for t in &manifest.outputs {
        match outs.iter().find(|o| o.name == t.name) {
            None => issues.push(issue(
                t,
                format!(
                    "output \"{}\" is not an output of the model; its outputs are: {}",
                    t.name,
                    out_names.join(", ")
                ),
            )),
            Some(o) => {
                if o.shape != t.shape {
                    issues.push(issue(
                        t,
                        format!(
                            "output \"{}\": shape {} in the manifest, {} in the model",
                            t.name,
                            ShapeDisplay(t.shape.clone()),
                            ShapeDisplay(o.shape.clone())
                        ),
                    ));
                }
                if o.dtype != to_dtype(t.dtype) {
                    issues.push(issue(
                        t,
                        format!(
                            "output \"{}\": dtype {} in the manifest, {} in the model",
                            t.name,
                            dtype_name(t.dtype),
                            o.dtype.name()
                        ),
                    ));
                }
            }
        }
    }
    for o in &outs {
        if !manifest.outputs.iter().any(|t| t.name == o.name) {
            issues.push(ManifestIssue {
                line: 0,
                message: format!(
                    "the model's output \"{}\" is not declared in [[outputs]]",
                    o.name
                ),
            });
        }
    }
    if !issues.is_empty() {
        return Err(PackageError::Schema { issues });
    }
    Ok(model)
}
