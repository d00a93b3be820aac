//! Every fixture and every EZKL example: the lowered float graph matches tract, tract matches
//! onnxruntime's expected outputs, and the integer executor at the default calibrated scales
//! keeps the argmax and stays within 1% relative error.

use lightchain_aivm::accuracy::compare;
use lightchain_aivm::{AivmError, GuardLimits, ImportOptions, Model, Tensor};

use crate::{all_fixture_models, compile, fixtures_dir, load, read_inputs};

fn rel_err(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let range = b.data.iter().map(|v| v.abs()).fold(1e-12, f64::max);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / range
}

#[test]
fn integer_executor_matches_float_within_one_percent() {
    let mut checked = 0;
    for (name, model_path, input_path) in all_fixture_models() {
        let model = load(&model_path);
        let inputs = read_inputs(&model, &input_path);
        let program = compile(&model, &inputs);
        let float = model.reference().unwrap().run(&inputs.tensors).unwrap();
        let aivm = program.run_float(&inputs).unwrap();
        let names: Vec<String> = program.outputs.iter().map(|o| o.name.clone()).collect();
        let acc = compare(&names, &float, &aivm);
        eprintln!(
            "{name}: max rel error {:.4}%, argmax agrees {}",
            acc.max_rel_error() * 100.0,
            acc.argmax_agrees()
        );
        assert!(acc.argmax_agrees(), "{name}: argmax differs: {acc:?}");
        assert!(
            acc.max_rel_error() <= 0.01,
            "{name}: relative error above 1%: {acc:?}"
        );
        checked += 1;
    }
    assert!(
        checked >= 30,
        "expected every fixture and EZKL example, checked {checked}"
    );
}

#[test]
fn lowered_float_graph_matches_tract() {
    for (name, model_path, input_path) in all_fixture_models() {
        let model = load(&model_path);
        let inputs = read_inputs(&model, &input_path);
        let data: Vec<Vec<f64>> = inputs.tensors.iter().map(|t| t.data.clone()).collect();
        let vals = model.graph.eval(&data);
        let float = model.reference().unwrap().run(&inputs.tensors).unwrap();
        for (k, &o) in model.graph.outputs.iter().enumerate() {
            let ours = Tensor::new(model.graph.values[o].shape.clone(), vals[o].clone());
            assert_eq!(ours.shape, float[k].shape, "{name}: output {k} shape");
            let e = rel_err(&ours, &float[k]);
            assert!(
                e < 1e-4,
                "{name}: output {k}: lowering differs from tract by {e}"
            );
        }
    }
}

#[test]
fn tract_reference_matches_onnxruntime_expected_outputs() {
    let mut checked = 0;
    for (name, model_path, input_path) in all_fixture_models() {
        let expected = input_path.with_file_name("expected.json");
        if !expected.exists() {
            continue;
        }
        let model = load(&model_path);
        let inputs = read_inputs(&model, &input_path);
        let float = model.reference().unwrap().run(&inputs.tensors).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        for (k, info) in model.outputs().iter().enumerate() {
            let want = flatten(&v["outputs"][&info.name]);
            assert_eq!(want.len(), float[k].len(), "{name}: {}", info.name);
            let t = Tensor::new(float[k].shape.clone(), want);
            assert!(
                rel_err(&float[k], &t) < 1e-4,
                "{name}: {} differs from onnxruntime",
                info.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 18, "checked {checked}");
}

fn flatten(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(flatten).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn unsupported_op_names_the_op_the_node_and_the_supported_list() {
    // Sin is not in the AIVM's op set.
    let bytes = crate::builder::Builder::new(13)
        .input("x", &[1, 4])
        .node(crate::builder::node(
            "Sin",
            "/act/Sin",
            &["x"],
            &["y"],
            vec![],
        ))
        .output("y")
        .bytes();
    let err =
        Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default()).unwrap_err();
    match &err {
        AivmError::Unsupported {
            op,
            node,
            supported,
            ..
        } => {
            assert_eq!(op, "Sin");
            assert_eq!(node, "/act/Sin");
            assert!(supported.contains("Gemm") && supported.contains("LayerNormalization"));
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn fixed_scale_runs_like_ezkl_scales() {
    // `--scale N`: one scale for all tensors. At scale 7 the small EZKL MLP still agrees.
    let dir = fixtures_dir().join("ezkl/1l_mlp");
    let model = load(&dir.join("network.onnx"));
    let inputs = read_inputs(&model, &dir.join("input.json"));
    let p = model
        .compile(
            std::slice::from_ref(&inputs),
            &lightchain_aivm::QuantConfig::fixed(7),
        )
        .unwrap();
    assert!(
        p.tensors
            .iter()
            .filter(|t| t.dtype == lightchain_aivm::DType::F32)
            .all(|t| t.scale <= 7)
    );
    let out = p.run_float(&inputs).unwrap();
    let float = model.reference().unwrap().run(&inputs.tensors).unwrap();
    let acc = compare(&["output".into()], &float, &out);
    assert!(acc.max_rel_error() < 0.05, "{acc:?}");
}

#[test]
fn input_shape_mismatch_is_reported_without_values() {
    let model = load(&fixtures_dir().join("digits_mlp/model.onnx"));
    let err = model
        .parse_inputs(r#"{"inputs": {"x": [[0.3141592, 0.2718281]]}}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "input \"x\": expected shape [1, 64] f32, got [1, 2]");
    let err = model
        .parse_inputs(r#"{"inputs": {"y": [[1]]}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown input \"y\"") && err.contains("x"),
        "{err}"
    );
    let err = model
        .parse_inputs(r#"{"input_data": [[1, 2], [3]]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 arrays but the model has 1 inputs"), "{err}");
}

#[test]
fn out_of_range_input_is_an_error_not_a_wrong_answer() {
    let dir = fixtures_dir().join("digits_mlp");
    let model = load(&dir.join("model.onnx"));
    let inputs = read_inputs(&model, &dir.join("input.json"));
    let p = compile(&model, &inputs);
    let mut big = inputs.clone();
    big.tensors[0].data.iter_mut().for_each(|v| *v = 1.0e6);
    let err = p.run_float(&big).unwrap_err().to_string();
    assert!(
        err.contains("input \"x\"") && err.contains("range"),
        "{err}"
    );
    assert!(!err.contains("1000000"), "{err}");
}
