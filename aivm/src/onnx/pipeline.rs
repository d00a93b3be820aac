//! Pipelines: several guarded ONNX models chained into one ONNX model, so that a pipeline
//! compiles to one program and one circuit, with the tensors passed between stages private
//! witness values like any other intermediate.
//!
//! Every name a stage defines (node outputs, initializers, value-infos, node names) is prefixed
//! with `STAGE.`, so stages cannot capture each other's values. A stage input bound to an
//! earlier stage's output (`inputs = { x = "embed.y" }`) reads that value; an unbound input is
//! an input of the pipeline under its own name. The last stage's outputs keep their names; an
//! earlier stage's output becomes an output of the pipeline (public) only when asked for by its
//! `STAGE.OUTPUT` name.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto};
use protobuf::Message;

use super::guard::GuardedModel;
use super::value_info::{self, Dim, runtime_inputs};
use crate::error::{AivmError, Result};

/// One stage of a pipeline.
pub struct Stage<'a> {
    /// Lowercase letters, digits, '-' or '_' (no '.': it separates stage and value names).
    pub name: &'a str,
    pub model: &'a GuardedModel,
    /// (this stage's input, `STAGE.OUTPUT` of an earlier stage).
    pub bind: &'a [(String, String)],
}

fn err(msg: String) -> AivmError {
    AivmError::Pipeline(msg)
}

/// Shapes and element types of a bound input and the output it reads must agree where both
/// are declared (symbolic dims agree with anything; the lowering checks the rest).
fn check_binding(
    stage: &str,
    input: &ValueInfoProto,
    src: &str,
    out: &ValueInfoProto,
) -> Result<()> {
    let (Some(i), Some(o)) = (value_info::decode(input), value_info::decode(out)) else {
        return Ok(());
    };
    if i.elem_type != o.elem_type {
        return Err(err(format!(
            "stage \"{stage}\": input \"{}\" is {} but \"{src}\" is {}",
            i.name,
            i.elem_name(),
            o.elem_name()
        )));
    }
    if let (Some(a), Some(b)) = (&i.dims, &o.dims) {
        let show = |d: &[Dim]| {
            d.iter()
                .map(|x| match x {
                    Dim::Value(v) => v.to_string(),
                    Dim::Param(p) => p.clone(),
                    Dim::Unknown => "?".into(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let differ = a.len() != b.len()
            || a.iter().zip(b).any(|(x, y)| match (x.fixed(), y.fixed()) {
                (Some(x), Some(y)) => x != y,
                _ => false,
            });
        if differ {
            return Err(err(format!(
                "stage \"{stage}\": input \"{}\" has shape [{}] but \"{src}\" has shape [{}]",
                i.name,
                show(a),
                show(b)
            )));
        }
    }
    Ok(())
}

/// Merges the stages into one ONNX model. `outputs` are the pipeline's declared outputs, in
/// order: names of the last stage's outputs, or `STAGE.OUTPUT` of an earlier stage (made
/// public). The last stage's outputs not named there follow, so that the schema check reports
/// them as undeclared.
pub fn merge(stages: &[Stage], outputs: &[String]) -> Result<ModelProto> {
    let first = stages
        .first()
        .ok_or_else(|| err("a pipeline needs at least one stage".into()))?;
    if let Some(s) = stages.iter().find(|s| s.model.opset != first.model.opset) {
        return Err(err(format!(
            "stages use different ONNX opsets (\"{}\": {}, \"{}\": {}); export every stage with the same opset",
            first.name, first.model.opset, s.name, s.model.opset
        )));
    }
    let mut g = GraphProto::new();
    g.name = "pipeline".into();
    // `STAGE.OUTPUT` → (merged value name, its declared value-info).
    let mut produced: HashMap<String, (String, ValueInfoProto)> = HashMap::new();
    let mut defined: HashSet<String> = HashSet::new();
    let mut last_outputs: Vec<ValueInfoProto> = Vec::new();
    for (i, st) in stages.iter().enumerate() {
        let last = i + 1 == stages.len();
        let sg = st
            .model
            .proto
            .graph
            .as_ref()
            .ok_or_else(|| err(format!("stage \"{}\" has no graph", st.name)))?;
        let mut map: HashMap<String, String> = HashMap::new();
        let runtime: Vec<&ValueInfoProto> = runtime_inputs(sg).collect();
        for (input, src) in st.bind {
            let Some(vi) = runtime.iter().find(|v| v.name == *input) else {
                let names: Vec<&str> = runtime.iter().map(|v| v.name.as_str()).collect();
                return Err(err(format!(
                    "stage \"{}\" has no input \"{input}\"; its inputs are: {}",
                    st.name,
                    names.join(", ")
                )));
            };
            let Some((merged, out)) = produced.get(src) else {
                return Err(err(format!(
                    "stage \"{}\": input \"{input}\" reads \"{src}\", which is not an output of an earlier stage",
                    st.name
                )));
            };
            check_binding(st.name, vi, src, out)?;
            map.insert(input.clone(), merged.clone());
        }
        let mut new_names = Vec::new();
        for vi in &runtime {
            if map.contains_key(&vi.name) {
                continue;
            }
            map.insert(vi.name.clone(), vi.name.clone());
            g.input.push((*vi).clone());
            new_names.push(vi.name.clone());
        }
        if last {
            for o in &sg.output {
                map.entry(o.name.clone()).or_insert_with(|| o.name.clone());
            }
        }
        let rename = |n: &str| -> String {
            if n.is_empty() {
                String::new()
            } else {
                map.get(n)
                    .cloned()
                    .unwrap_or_else(|| format!("{}.{n}", st.name))
            }
        };
        for t in &sg.initializer {
            let mut t = t.clone();
            t.name = rename(&t.name);
            new_names.push(t.name.clone());
            g.initializer.push(t);
        }
        // Old exporters list initializers among the inputs; they stay there, renamed.
        for vi in sg
            .input
            .iter()
            .filter(|v| !runtime.iter().any(|r| r.name == v.name))
        {
            let mut vi = vi.clone();
            vi.name = rename(&vi.name);
            g.input.push(vi);
        }
        for n in &sg.node {
            if n.attribute
                .iter()
                .any(|a| a.g.is_some() || !a.graphs.is_empty())
            {
                return Err(err(format!(
                    "stage \"{}\": node \"{}\" ({}) has a subgraph, which pipelines do not support",
                    st.name, n.name, n.op_type
                )));
            }
            let mut n = n.clone();
            for x in n.input.iter_mut() {
                *x = rename(x);
            }
            for x in n.output.iter_mut() {
                *x = rename(x);
                new_names.push(x.clone());
            }
            if !n.name.is_empty() {
                n.name = format!("{}/{}", st.name, n.name);
            }
            g.node.push(n);
        }
        for vi in &sg.value_info {
            if st.bind.iter().any(|(input, _)| *input == vi.name) {
                continue;
            }
            let mut vi = vi.clone();
            vi.name = rename(&vi.name);
            g.value_info.push(vi);
        }
        for n in new_names.into_iter().filter(|n| !n.is_empty()) {
            if !defined.insert(n.clone()) {
                return Err(err(format!(
                    "the value name \"{n}\" is defined twice in the pipeline (stage \"{}\"); rename an input or output",
                    st.name
                )));
            }
        }
        for o in &sg.output {
            let mut vi = o.clone();
            vi.name = rename(&o.name);
            produced.insert(
                format!("{}.{}", st.name, o.name),
                (vi.name.clone(), vi.clone()),
            );
            if last {
                last_outputs.push(vi);
            }
        }
    }
    declare_outputs(&mut g, &produced, last_outputs, outputs)?;
    let mut m = ModelProto::new();
    m.ir_version = stages
        .iter()
        .map(|s| s.model.proto.ir_version)
        .max()
        .unwrap_or(8);
    m.producer_name = "lightchain pipeline".into();
    let mut op = OperatorSetIdProto::new();
    op.version = first.model.opset;
    m.opset_import.push(op);
    m.graph = Some(g).into();
    Ok(m)
}

/// The merged graph's outputs: the declared ones in order (the last stage's by name, an
/// earlier stage's as `STAGE.OUTPUT`), then the last stage's that were not declared.
fn declare_outputs(
    g: &mut GraphProto,
    produced: &HashMap<String, (String, ValueInfoProto)>,
    last_outputs: Vec<ValueInfoProto>,
    outputs: &[String],
) -> Result<()> {
    for name in outputs {
        if let Some(vi) = last_outputs.iter().find(|o| o.name == *name) {
            g.output.push(vi.clone());
        } else if let Some((merged, vi)) = produced.get(name) {
            let mut vi = vi.clone();
            vi.name = merged.clone();
            g.output.push(vi);
        } else {
            return Err(err(format!(
                "output \"{name}\" is neither an output of the last stage nor STAGE.OUTPUT of an earlier stage"
            )));
        }
    }
    for vi in last_outputs {
        if !g.output.iter().any(|o| o.name == vi.name) {
            g.output.push(vi);
        }
    }
    Ok(())
}

/// [`merge`], encoded as an ONNX file's bytes.
pub fn merge_bytes(stages: &[Stage], outputs: &[String]) -> Result<Vec<u8>> {
    merge(stages, outputs)?
        .write_to_bytes()
        .map_err(|e| err(format!("cannot encode the merged model: {e}")))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use onnx_protobuf::{AttributeProto, NodeProto};

    use super::*;
    use crate::onnx::guard::{GuardLimits, guard_bytes, guard_file};
    use crate::{ImportOptions, Model};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn stage_model(file: &str) -> GuardedModel {
        guard_file(
            &root().join("templates/pipeline").join(file),
            &GuardLimits::default(),
        )
        .unwrap()
    }

    fn bind(input: &str, src: &str) -> Vec<(String, String)> {
        vec![(input.to_string(), src.to_string())]
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn lowered(bytes: Vec<u8>) -> Model {
        let guarded = guard_bytes(bytes, &GuardLimits::default()).unwrap();
        let graph = crate::onnx::lower(&guarded, &ImportOptions::default()).unwrap();
        Model { guarded, graph }
    }

    fn legit() -> crate::Inputs {
        let text =
            std::fs::read_to_string(root().join("fixtures/fraud_tabular/input.json")).unwrap();
        let whole = Model::load(
            &root().join("fixtures/fraud_tabular/model.onnx"),
            &ImportOptions::default(),
            &GuardLimits::default(),
        )
        .unwrap();
        whole.parse_inputs(&text).unwrap()
    }

    fn eval(m: &Model, inputs: &crate::Inputs) -> Vec<Vec<f64>> {
        let data: Vec<Vec<f64>> = inputs.tensors.iter().map(|t| t.data.clone()).collect();
        let vals = m.graph.eval(&data);
        m.graph.outputs.iter().map(|&o| vals[o].clone()).collect()
    }

    /// The template's two stages, merged, compute exactly the model they were cut from, and
    /// tract (the float reference) reads the merged file too.
    #[test]
    fn merged_stages_compute_the_model_they_were_cut_from() {
        let (e, c) = (stage_model("embed.onnx"), stage_model("classify.onnx"));
        let b = bind("x", "embed.embedding");
        let stages = pair(&e, &c, &b);
        let merged = lowered(merge_bytes(&stages, &names(&["probs"])).unwrap());
        let whole = Model::load(
            &root().join("fixtures/fraud_tabular/model.onnx"),
            &ImportOptions::default(),
            &GuardLimits::default(),
        )
        .unwrap();
        let inp = legit();
        assert_eq!(merged.inputs().len(), 1);
        assert_eq!(merged.inputs()[0].name, "features");
        assert_eq!(merged.outputs().len(), 1, "the embedding stays private");
        assert_eq!(merged.outputs()[0].name, "probs");
        assert_eq!(eval(&merged, &inp), eval(&whole, &inp));
        let float = merged.reference().unwrap().run(&inp.tensors).unwrap();
        let diff = float[0]
            .data
            .iter()
            .zip(&eval(&whole, &inp)[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "{diff}");
        // Node names say which stage they came from.
        assert!(
            merged
                .graph
                .nodes
                .iter()
                .all(|n| n.name.starts_with("embed/")
                    || n.name.starts_with("classify/")
                    || !n.name.contains('/'))
        );
    }

    /// An earlier stage's output named `STAGE.OUTPUT` becomes a (public) output of the pipeline,
    /// in the declared order, with the value that stage computes alone.
    #[test]
    fn a_declared_stage_output_is_published() {
        let (e, c) = (stage_model("embed.onnx"), stage_model("classify.onnx"));
        let b = bind("x", "embed.embedding");
        let stages = pair(&e, &c, &b);
        let merged = lowered(merge_bytes(&stages, &names(&["embed.embedding", "probs"])).unwrap());
        let outs = merged.outputs();
        assert_eq!(outs.len(), 2);
        assert_eq!(
            (outs[0].name.as_str(), outs[0].shape.as_slice()),
            ("embed.embedding", &[1, 16][..])
        );
        assert_eq!(
            (outs[1].name.as_str(), outs[1].shape.as_slice()),
            ("probs", &[1, 2][..])
        );
        let alone = lowered(e.bytes.clone());
        let inp = legit();
        assert_eq!(eval(&merged, &inp)[0], eval(&alone, &inp)[0]);
    }

    /// The template's two stages, the second fed by `b`.
    fn pair<'a>(
        e: &'a GuardedModel,
        c: &'a GuardedModel,
        b: &'a [(String, String)],
    ) -> [Stage<'a>; 2] {
        [
            Stage {
                name: "embed",
                model: e,
                bind: &[],
            },
            Stage {
                name: "classify",
                model: c,
                bind: b,
            },
        ]
    }

    fn merge_err(stages: &[Stage], outputs: &[&str]) -> String {
        match merge(stages, &names(outputs)) {
            Err(AivmError::Pipeline(m)) => m,
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("merged"),
        }
    }

    #[test]
    fn wiring_mistakes_are_refused_by_name() {
        let (e, c) = (stage_model("embed.onnx"), stage_model("classify.onnx"));
        let good = bind("x", "embed.embedding");
        // An input the stage does not have.
        let b = bind("y", "embed.embedding");
        let m = merge_err(&pair(&e, &c, &b), &["probs"]);
        assert!(
            m.contains("has no input \"y\"") && m.contains("its inputs are: x"),
            "{m}"
        );
        // A source that is not an earlier stage's output.
        let b = bind("x", "classify.probs");
        let m = merge_err(&pair(&e, &c, &b), &["probs"]);
        assert!(m.contains("not an output of an earlier stage"), "{m}");
        // Shapes that cannot agree: [batch, 16] fed from [batch, 2].
        let b3 = bind("x", "classify.probs");
        let [first, second] = pair(&e, &c, &good);
        let m = merge_err(
            &[
                first,
                second,
                Stage {
                    name: "again",
                    model: &c,
                    bind: &b3,
                },
            ],
            &["probs"],
        );
        assert!(
            m.contains(
                "input \"x\" has shape [batch, 16] but \"classify.probs\" has shape [batch, 2]"
            ),
            "{m}"
        );
        // Two stages whose unbound inputs share a name.
        let m = merge_err(
            &[
                Stage {
                    name: "one",
                    model: &c,
                    bind: &[],
                },
                Stage {
                    name: "two",
                    model: &c,
                    bind: &[],
                },
            ],
            &["probs"],
        );
        assert!(m.contains("\"x\" is defined twice"), "{m}");
        // An output that is neither the last stage's nor STAGE.OUTPUT.
        let m = merge_err(&pair(&e, &c, &good), &["embedding"]);
        assert!(m.contains("output \"embedding\" is neither"), "{m}");
        // No stages.
        assert!(merge_err(&[], &["probs"]).contains("at least one stage"));
    }

    #[test]
    fn stages_of_different_opsets_or_with_subgraphs_are_refused() {
        let (e, mut c) = (stage_model("embed.onnx"), stage_model("classify.onnx"));
        let good = bind("x", "embed.embedding");
        c.opset = 17;
        let m = merge_err(&pair(&e, &c, &good), &["probs"]);
        assert!(
            m.contains("different ONNX opsets (\"embed\": 13, \"classify\": 17)"),
            "{m}"
        );
        let mut c = stage_model("classify.onnx");
        let mut node = NodeProto::new();
        node.op_type = "If".into();
        node.name = "branch".into();
        let mut a = AttributeProto::new();
        a.name = "then_branch".into();
        a.g = Some(GraphProto::new()).into();
        node.attribute.push(a);
        c.proto.graph.as_mut().unwrap().node.push(node);
        let m = merge_err(&pair(&e, &c, &good), &["probs"]);
        assert!(m.contains("node \"branch\" (If) has a subgraph"), "{m}");
    }
}
