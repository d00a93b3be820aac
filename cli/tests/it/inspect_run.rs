//! `lightchain inspect` and `lightchain run`.

use crate::{Project, snap};

#[test]
fn inspect_shows_interface_ops_and_support() {
    let p = Project::new();
    p.copy("fixtures/digits_cnn/model.onnx", "digits_cnn.onnx");
    let (code, out, _) = p.run(&["inspect", "digits_cnn.onnx"]);
    assert_eq!(code, 0);
    snap!("inspect_digits_cnn", out);
    let (code, out, _) = p.run(&["inspect", "digits_cnn.onnx", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["supported"], true);
    assert_eq!(v["macs"], 10592);
    snap!("inspect_digits_cnn_json", out);
}

#[test]
fn inspect_explains_an_unsupported_model() {
    let p = Project::new();
    p.write("sin.onnx", sin_model());
    let (code, out, _) = p.run(&["inspect", "sin.onnx"]);
    assert_eq!(code, 0, "inspect reports, it does not fail");
    snap!("inspect_sin_unsupported", out);
}

#[test]
fn run_prints_both_outputs_and_the_error_figures() {
    let p = Project::new();
    p.copy("fixtures/ezkl/1l_mlp/network.onnx", "net.onnx")
        .copy("fixtures/ezkl/1l_mlp/input.json", "input.json");
    let (code, out, err) = p.run(&["run", "net.onnx", "--input", "input.json", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let o = &v["outputs"][0];
    assert_eq!(o["name"], "output");
    assert_eq!(o["aivm"].as_array().unwrap().len(), 4);
    assert_eq!(o["float"].as_array().unwrap().len(), 4);
    assert!(
        v["accuracy"]["outputs"][0]["max_rel_error"]
            .as_f64()
            .unwrap()
            < 0.01
    );
    assert_eq!(v["accuracy"]["outputs"][0]["argmax_agrees"], true);
    assert_eq!(v["model_id"].as_str().unwrap().len(), 64);
    let (code, text, _) = p.run(&["run", "net.onnx", "--input", "input.json"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("output    output [1, 4]") && text.contains("argmax agrees"),
        "{text}"
    );
}

#[test]
fn run_refuses_a_mismatched_input_without_printing_values() {
    let p = Project::new();
    p.copy("fixtures/digits_mlp/model.onnx", "digits.onnx");
    p.write(
        "short.json",
        r#"{"inputs": {"x": [[0.1234567, 0.7654321]]}}"#,
    );
    let (code, _, err) = p.run(&["run", "digits.onnx", "--input", "short.json"]);
    assert_eq!(code, 1);
    assert!(!err.contains("0.123") && !err.contains("0.765"), "{err}");
    snap!("error_run_input_shape", err);
    let (code, out, _) = p.run(&["run", "digits.onnx", "--input", "short.json", "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected shape [1, 64] f32, got [1, 2]")
    );
}

#[test]
fn errors_for_bad_models_are_clear() {
    let p = Project::new();
    p.write(
        "random.onnx",
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );
    p.write("sin.onnx", sin_model());
    p.write("input.json", br#"{"input_data": [[0.5, -0.25, 1.0, 0.0]]}"#);
    let (code, _, err) = p.run(&["run", "random.onnx", "--input", "input.json"]);
    assert_eq!(code, 1);
    snap!("error_random_bytes", err);
    let (code, _, err) = p.run(&["run", "sin.onnx", "--input", "input.json"]);
    assert_eq!(code, 1);
    snap!("error_unsupported_op", err);
    let (code, _, err) = p.run(&["run", "missing.onnx", "--input", "input.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read missing.onnx"), "{err}");
}

#[test]
fn help_has_examples() {
    let p = Project::new();
    for cmd in [
        "inspect",
        "run",
        "prove",
        "verify",
        "init",
        "package",
        "test",
        "profile",
        "estimate",
        "gas-snapshot",
        "bench",
    ] {
        let (code, out, _) = p.run(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Examples:"), "{cmd} --help lacks examples");
    }
}

/// A one-node model with an op outside the AIVM's set: `y = Sin(x)`.
fn sin_model() -> Vec<u8> {
    use onnx_protobuf::{
        GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto, tensor_shape_proto, type_proto,
    };
    use protobuf::Message;
    let value = |name: &str, dims: &[i64]| {
        let mut shape = TensorShapeProto::new();
        for &d in dims {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
            shape.dim.push(dim);
        }
        let mut tt = type_proto::Tensor::new();
        tt.elem_type = 1;
        tt.shape = Some(shape).into();
        let mut ty = TypeProto::new();
        ty.value = Some(type_proto::Value::TensorType(tt));
        let mut vi = ValueInfoProto::new();
        vi.name = name.into();
        vi.type_ = Some(ty).into();
        vi
    };
    let mut n = NodeProto::new();
    n.op_type = "Sin".into();
    n.name = "/act/Sin".into();
    n.input = vec!["x".into()];
    n.output = vec!["y".into()];
    let mut g = GraphProto::new();
    g.name = "sin".into();
    g.node.push(n);
    g.input.push(value("x", &[1, 4]));
    g.output.push(value("y", &[1, 4]));
    let mut m = ModelProto::new();
    m.ir_version = 8;
    let mut o = OperatorSetIdProto::new();
    o.version = 13;
    m.opset_import.push(o);
    m.graph = Some(g).into();
    m.write_to_bytes().unwrap()
}
