//! Crafted, hostile ONNX files are refused by the guards before tract sees them: quickly, with a
//! clear error, and without a panic.

use std::io::Write;

use lightchain_aivm::guard::{GuardLimits, Refusal, guard_bytes, guard_file};
use lightchain_aivm::{AivmError, ImportOptions, Model};
use onnx_protobuf::{Message, StringStringEntryProto, tensor_proto::DataLocation};

use crate::builder::{A, Builder, attr, floats, node, tensor_f32, tensor_i64};

fn refuse(bytes: Vec<u8>) -> String {
    match Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default()) {
        Ok(_) => panic!("a crafted model was accepted"),
        Err(e) => e.to_string(),
    }
}

/// The guards' refusal of a crafted model (any other outcome fails the test).
fn refusal(bytes: Vec<u8>) -> Refusal {
    match Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default()) {
        Ok(_) => panic!("a crafted model was accepted"),
        Err(AivmError::Guard(r)) => r,
        Err(e) => panic!("refused, but not by the guards: {e}"),
    }
}

#[test]
fn negative_dims_are_refused() {
    let m = Builder::new(13)
        .input("x", &[1, 4])
        .init(tensor_f32("w", &[4, -2], &[]))
        .node(node("MatMul", "mm", &["x", "w"], &["y"], vec![]))
        .output("y")
        .bytes();
    let e = refuse(m);
    assert!(
        e.contains("initializer \"w\" has a negative dimension"),
        "{e}"
    );

    let m = Builder::new(13)
        .input("x", &[1, -7])
        .node(node("Relu", "r", &["x"], &["y"], vec![]))
        .output("y")
        .bytes();
    let e = refusal(m);
    assert_eq!(e, Refusal::DeclaredNegative { name: "x".into() }, "{e}");
}

#[test]
fn constant_of_shape_with_two_billion_elements_is_refused() {
    let m = Builder::new(13)
        .input("x", &[1])
        .init(tensor_i64("shape", &[1], &[2_000_000_000]))
        .node(node("ConstantOfShape", "big", &["shape"], &["c"], vec![]))
        .node(node("Add", "add", &["x", "c"], &["y"], vec![]))
        .output("y")
        .bytes();
    let e = refuse(m);
    assert!(
        e.contains("node \"big\" (ConstantOfShape) would create 2000000000 elements"),
        "{e}"
    );

    // The same through a Constant node, and a dims product that overflows u64.
    let m = Builder::new(13)
        .input("x", &[1])
        .node(node(
            "Constant",
            "k",
            &[],
            &["shape"],
            vec![attr(
                "value",
                A::T(tensor_i64("", &[2], &[1 << 40, 1 << 40])),
            )],
        ))
        .node(node("ConstantOfShape", "big", &["shape"], &["c"], vec![]))
        .output("c")
        .bytes();
    let e = refusal(m);
    assert!(matches!(e, Refusal::Creates { .. }), "{e}");
}

/// Serialises a model of `n` Identity nodes directly (building it through the message types
/// would take far longer than the guard takes to refuse it).
fn identity_model_bytes(target_bytes: usize) -> Vec<u8> {
    let one = node("Identity", "i", &["x"], &["x"], vec![])
        .write_to_bytes()
        .unwrap();
    let mut graph = Vec::with_capacity(target_bytes + 64);
    while graph.len() < target_bytes {
        graph.push(0x0a); // GraphProto.node, length-delimited
        graph.push(one.len() as u8);
        graph.extend_from_slice(&one);
    }
    let mut model = Builder::new(13).model();
    model.graph = None.into();
    let mut out = model.write_to_bytes().unwrap();
    out.push(0x3a); // ModelProto.graph (field 7), length-delimited
    let mut len = graph.len() as u64;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        out.push(if len == 0 { b } else { b | 0x80 });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&graph);
    out
}

#[test]
fn a_hundred_megabyte_file_of_identity_nodes_is_refused() {
    let bytes = identity_model_bytes(100 << 20);
    assert!(bytes.len() > 100 << 20);
    // From a file: refused on its size before it is read.
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&bytes).unwrap();
    let e = guard_file(f.path(), &GuardLimits::default()).unwrap_err();
    assert!(
        matches!(e, AivmError::Guard(Refusal::FileSize { max: 67108864, .. })),
        "{e}"
    );
    // In memory, with the size limit lifted: refused on its node count.
    let limits = GuardLimits {
        max_file_bytes: 200 << 20,
        ..GuardLimits::default()
    };
    let e = guard_bytes(bytes, &limits).unwrap_err();
    assert!(
        matches!(e, AivmError::Guard(Refusal::Nodes { max: 20000 })),
        "{e}"
    );
}

fn nested(depth: usize) -> Vec<u8> {
    let leaf = Builder::new(13)
        .node(node("Relu", "leaf", &["x"], &["y"], vec![]))
        .output("y")
        .graph;
    let mut g = leaf.clone();
    for d in 0..depth {
        // Only the then-branch nests, so the file grows linearly with the depth.
        g = Builder::new(13)
            .node(node(
                "If",
                &format!("if{d}"),
                &["c"],
                &["y"],
                vec![
                    attr("then_branch", A::G(g)),
                    attr("else_branch", A::G(leaf.clone())),
                ],
            ))
            .output("y")
            .graph;
    }
    let mut b = Builder::new(13).input("c", &[1]);
    b.graph.node = g.node;
    b.graph.output = g.output;
    b.bytes()
}

#[test]
fn graphs_nested_150_deep_are_refused() {
    let e = refusal(nested(150));
    assert_eq!(e, Refusal::NestedTooDeeply, "{e}");
    // Shallower than the parser's limit but deeper than the guard allows.
    let e = refusal(nested(6));
    assert_eq!(e, Refusal::Depth { max: 4 }, "{e}");
}

#[test]
fn external_data_paths_are_refused() {
    let mut t = tensor_f32("w", &[2, 2], &[]);
    t.raw_data.clear();
    t.data_location = DataLocation::EXTERNAL.into();
    let mut loc = StringStringEntryProto::new();
    loc.key = "location".into();
    loc.value = "../../../../etc/passwd".into();
    t.external_data.push(loc);
    let m = Builder::new(13)
        .input("x", &[1, 2])
        .init(t)
        .node(node("MatMul", "mm", &["x", "w"], &["y"], vec![]))
        .output("y")
        .bytes();
    let e = refusal(m);
    assert!(matches!(e, Refusal::ExternalData { .. }), "{e}");
}

#[test]
fn random_bytes_are_refused() {
    for (seed, len) in [(1u64, 0usize), (2, 1), (3, 64), (4, 4096), (5, 1 << 20)] {
        let bytes: Vec<u8> = floats(len, seed)
            .iter()
            .map(|f| (f.to_bits() >> 7) as u8)
            .collect();
        let e = refuse(bytes);
        assert!(!e.is_empty());
    }
    let e = refuse(b"this is not an onnx file at all".to_vec());
    assert!(
        e.starts_with("not a valid ONNX model") || e.starts_with("model refused"),
        "{e}"
    );
}

#[test]
fn data_shorter_than_dims_and_unknown_opsets_are_refused() {
    let m = Builder::new(13)
        .input("x", &[1, 1000])
        .init(tensor_f32("w", &[1000, 1], &[1.0]))
        .node(node("MatMul", "mm", &["x", "w"], &["y"], vec![]))
        .output("y")
        .bytes();
    assert!(matches!(refusal(m), Refusal::DataLength { .. }));
    let m = Builder::new(99)
        .input("x", &[1])
        .node(node("Relu", "r", &["x"], &["y"], vec![]))
        .output("y")
        .bytes();
    assert!(matches!(refusal(m), Refusal::Opset { opset: 99, .. }));
    let m = Builder::new(29)
        .input("x", &[1])
        .node(node("Relu", "r", &["x"], &["y"], vec![]))
        .output("y")
        .bytes();
    assert!(matches!(
        refusal(m),
        Refusal::Opset {
            opset: 29,
            max: 28,
            ..
        }
    ));
}

#[test]
fn unsupported_ops_never_reach_tract() {
    // Expand would let tract allocate; it is not in the AIVM op set, so lowering stops first.
    let m = Builder::new(13)
        .input("x", &[1])
        .init(tensor_i64("shape", &[1], &[1000]))
        .node(node("Expand", "ex", &["x", "shape"], &["y"], vec![]))
        .output("y")
        .bytes();
    match Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()) {
        Err(AivmError::Unsupported { op, node, .. }) => {
            assert_eq!((op.as_str(), node.as_str()), ("Expand", "ex"));
        }
        other => panic!("{other:?}"),
    }
}
