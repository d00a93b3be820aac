//! Op variants beyond the fixtures, each checked against tract's float output: the lowered float
//! graph must match tract closely, and the integer executor within 1% of the output range.

use lightchain_aivm::accuracy::compare;
use lightchain_aivm::{GuardLimits, ImportOptions, Inputs, Model, QuantConfig, Tensor};

use crate::builder::{A, Builder, attr, floats, node, tensor_f32, tensor_i64};

/// Lowers `bytes`, runs it on pseudo-random inputs of the given shapes and compares with tract.
fn check(name: &str, bytes: Vec<u8>, shapes: &[&[usize]]) {
    let model = Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let tensors: Vec<Tensor<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let n = s.iter().product();
            Tensor::new(
                s.to_vec(),
                floats(n, 7 + k as u64)
                    .iter()
                    .map(|&v| 2.0 * v as f64)
                    .collect(),
            )
        })
        .collect();
    let inputs = Inputs { tensors };
    let float = model
        .reference()
        .unwrap()
        .run(&inputs.tensors)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let data: Vec<Vec<f64>> = inputs.tensors.iter().map(|t| t.data.clone()).collect();
    let vals = model.graph.eval(&data);
    for (k, &o) in model.graph.outputs.iter().enumerate() {
        assert_eq!(
            model.graph.values[o].shape, float[k].shape,
            "{name}: output shape"
        );
        let range = float[k].data.iter().map(|v| v.abs()).fold(1e-9, f64::max);
        let e = vals[o]
            .iter()
            .zip(&float[k].data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / range;
        assert!(e < 1e-4, "{name}: lowering differs from tract by {e}");
    }
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.run_float(&inputs).unwrap();
    let names: Vec<String> = p.outputs.iter().map(|o| o.name.clone()).collect();
    let acc = compare(&names, &float, &q);
    assert!(acc.max_rel_error() <= 0.01, "{name}: {acc:?}");
}

fn w(name: &str, dims: &[i64], seed: u64) -> onnx_protobuf::TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    tensor_f32(name, dims, &floats(n, seed))
}

#[test]
fn conv_same_padding_dilation_and_1d() {
    let m = Builder::new(13)
        .input("x", &[1, 2, 7, 7])
        .init(w("w", &[3, 2, 3, 3], 1))
        .node(node(
            "Conv",
            "c",
            &["x", "w"],
            &["y"],
            vec![
                attr("auto_pad", A::S("SAME_UPPER")),
                attr("dilations", A::Is(&[2, 2])),
            ],
        ))
        .output("y")
        .bytes();
    check("conv same/dilated", m, &[&[1, 2, 7, 7]]);
    let m = Builder::new(13)
        .input("x", &[1, 2, 10])
        .init(w("w", &[4, 2, 3], 2))
        .init(w("b", &[4], 3))
        .node(node(
            "Conv",
            "c",
            &["x", "w", "b"],
            &["y"],
            vec![attr("strides", A::Is(&[2])), attr("pads", A::Is(&[1, 0]))],
        ))
        .output("y")
        .bytes();
    check("conv1d", m, &[&[1, 2, 10]]);
}

#[test]
fn pooling_variants() {
    let m = Builder::new(13)
        .input("x", &[1, 2, 7, 7])
        .node(node(
            "MaxPool",
            "mp",
            &["x"],
            &["a"],
            vec![
                attr("kernel_shape", A::Is(&[2, 2])),
                attr("strides", A::Is(&[2, 2])),
                attr("ceil_mode", A::I(1)),
            ],
        ))
        .node(node(
            "AveragePool",
            "ap",
            &["x"],
            &["b"],
            vec![
                attr("kernel_shape", A::Is(&[3, 3])),
                attr("pads", A::Is(&[1, 1, 1, 1])),
                attr("count_include_pad", A::I(1)),
            ],
        ))
        .node(node("GlobalMaxPool", "gmp", &["x"], &["c"], vec![]))
        .output("a")
        .output("b")
        .output("c")
        .bytes();
    check("pools", m, &[&[1, 2, 7, 7]]);
    // AveragePool with ceil_mode: the last windows pass the input and average what they hold;
    // with count_include_pad where ceil and floor give the same windows.
    let ap = |name: &str, attrs: Vec<onnx_protobuf::AttributeProto>| {
        Builder::new(13)
            .input("x", &[1, 2, 7, 7])
            .node(node("AveragePool", name, &["x"], &["y"], attrs))
            .output("y")
            .bytes()
    };
    let k2s2 = || {
        vec![
            attr("kernel_shape", A::Is(&[2, 2])),
            attr("strides", A::Is(&[2, 2])),
            attr("ceil_mode", A::I(1)),
        ]
    };
    check("average ceil", ap("ap", k2s2()), &[&[1, 2, 7, 7]]);
    let exact = vec![
        attr("kernel_shape", A::Is(&[3, 3])),
        attr("strides", A::Is(&[2, 2])),
        attr("pads", A::Is(&[1, 1, 1, 1])),
        attr("ceil_mode", A::I(1)),
        attr("count_include_pad", A::I(1)),
    ];
    check(
        "average ceil with padding",
        ap("ap", exact),
        &[&[1, 2, 7, 7]],
    );
    // Where the last window passes the padded input, the refusal names the case.
    let mut partial = k2s2();
    partial.push(attr("count_include_pad", A::I(1)));
    let Err(e) = Model::from_bytes(
        ap("partial", partial),
        &ImportOptions::default(),
        &GuardLimits::default(),
    ) else {
        panic!("a partial window counting padding must be refused");
    };
    let text = format!("{e:#}");
    assert!(
        text.contains("partial") && text.contains("ceil_mode = 1 and count_include_pad = 1"),
        "{text}"
    );
}

#[test]
fn gemm_variants_and_constant_left_matmul() {
    let m = Builder::new(13)
        .input("x", &[2, 5])
        .init(w("b", &[5, 3], 4))
        .init(w("c", &[1, 3], 5))
        .init(w("l", &[4, 2], 6))
        .node(node(
            "Gemm",
            "g",
            &["x", "b", "c"],
            &["y"],
            vec![attr("alpha", A::F(0.5)), attr("beta", A::F(2.0))],
        ))
        .node(node("MatMul", "ml", &["l", "y"], &["z"], vec![]))
        .output("z")
        .bytes();
    check("gemm+matmul-left", m, &[&[2, 5]]);
    // A C operand of shape [m, n] cannot be a bias: it becomes an elementwise Add.
    let m = Builder::new(13)
        .input("x", &[2, 3])
        .init(w("b", &[4, 3], 7))
        .init(w("c", &[2, 4], 8))
        .node(node(
            "Gemm",
            "g",
            &["x", "b", "c"],
            &["y"],
            vec![attr("transB", A::I(1))],
        ))
        .output("y")
        .bytes();
    check("gemm full C", m, &[&[2, 3]]);
    // transA with transB: y = xᵀ·bᵀ + c, x of shape [k, m] = [3, 2].
    let m = Builder::new(13)
        .input("x", &[3, 2])
        .init(w("b", &[4, 3], 9))
        .init(w("c", &[4], 10))
        .node(node(
            "Gemm",
            "g",
            &["x", "b", "c"],
            &["y"],
            vec![attr("transA", A::I(1)), attr("transB", A::I(1))],
        ))
        .output("y")
        .bytes();
    check("gemm transA", m, &[&[3, 2]]);
}

#[test]
fn slice_transpose_concat_of_different_scales() {
    let m = Builder::new(13)
        .input("x", &[1, 4, 6])
        .init(tensor_i64("starts", &[2], &[5, 1]))
        .init(tensor_i64("ends", &[2], &[-100, 4]))
        .init(tensor_i64("axes", &[2], &[2, 1]))
        .init(tensor_i64("steps", &[2], &[-2, 1]))
        .init(tensor_f32("big", &[], &[40.0]))
        .node(node(
            "Slice",
            "s",
            &["x", "starts", "ends", "axes", "steps"],
            &["a"],
            vec![],
        ))
        .node(node("Transpose", "t", &["a"], &["b"], vec![]))
        .node(node("Mul", "m", &["b", "big"], &["c"], vec![]))
        .node(node(
            "Concat",
            "cat",
            &["b", "c"],
            &["y"],
            vec![attr("axis", A::I(0))],
        ))
        .output("y")
        .bytes();
    check("slice/transpose/concat", m, &[&[1, 4, 6]]);
}

#[test]
fn old_opset_semantics() {
    // Softmax before opset 13 coerces to 2-D at `axis`; Clip takes attributes; Unsqueeze too.
    let m = Builder::new(11)
        .input("x", &[1, 3, 4])
        .node(node(
            "Softmax",
            "sm",
            &["x"],
            &["a"],
            vec![attr("axis", A::I(1))],
        ))
        .node(node(
            "Unsqueeze",
            "u",
            &["a"],
            &["b"],
            vec![attr("axes", A::Is(&[0]))],
        ))
        .output("b")
        .bytes();
    check("softmax opset 11", m, &[&[1, 3, 4]]);
    let m = Builder::new(10)
        .input("x", &[1, 8])
        .node(node(
            "Clip",
            "c",
            &["x"],
            &["y"],
            vec![attr("min", A::F(-0.5)), attr("max", A::F(0.25))],
        ))
        .output("y")
        .bytes();
    check("clip opset 10", m, &[&[1, 8]]);
}

#[test]
fn newest_opsets_keep_the_semantics_of_the_ops_they_retyped() {
    // Opsets 23 to 28 (ONNX 1.18 to 1.23) gave Reshape, Shape, Squeeze, Unsqueeze, Transpose,
    // Flatten, Identity, Constant and Cast new versions that only add element types; Cast 24
    // adds `round_mode`, which applies only to float8e8m0 targets.
    for opset in [23, 24, 25, 28] {
        let m = Builder::new(opset)
            .input("x", &[1, 2, 6])
            .init(tensor_i64("shape", &[3], &[1, 3, 4]))
            .init(tensor_i64("ax0", &[1], &[0]))
            .init(tensor_i64("ax1", &[1], &[1]))
            .init(w("w", &[3, 5], 9))
            .node(node("Identity", "id", &["x"], &["a"], vec![]))
            .node(node("Reshape", "rs", &["a", "shape"], &["b"], vec![]))
            .node(node(
                "Transpose",
                "tr",
                &["b"],
                &["c"],
                vec![attr("perm", A::Is(&[0, 2, 1]))],
            ))
            .node(node("Squeeze", "sq", &["c", "ax0"], &["d"], vec![]))
            .node(node("Unsqueeze", "us", &["d", "ax1"], &["e"], vec![]))
            .node(node(
                "Cast",
                "cast",
                &["e"],
                &["f"],
                vec![attr("to", A::I(1)), attr("round_mode", A::S("up"))],
            ))
            .node(node("Flatten", "fl", &["f"], &["g"], vec![]))
            .node(node("MatMul", "mm", &["g", "w"], &["y"], vec![]))
            .output("y")
            .bytes();
        check(&format!("opset {opset}"), m, &[&[1, 2, 6]]);
    }
}

#[test]
fn arithmetic_with_constants_on_either_side() {
    let m = Builder::new(13)
        .input("x", &[1, 6])
        .init(w("c", &[6], 9))
        .init(tensor_f32("d", &[], &[4.0]))
        .node(node("Sub", "s", &["c", "x"], &["a"], vec![]))
        .node(node("Div", "d", &["a", "d"], &["b"], vec![]))
        .node(node("LeakyRelu", "l", &["b"], &["c2"], vec![]))
        .node(node(
            "ReduceMax",
            "rm",
            &["c2"],
            &["y"],
            vec![attr("axes", A::Is(&[1]))],
        ))
        .node(node("Dropout", "dr", &["b"], &["z"], vec![]))
        .node(node("Identity", "id", &["z"], &["z2"], vec![]))
        .output("y")
        .output("z2")
        .bytes();
    check("const arithmetic", m, &[&[1, 6]]);
}

#[test]
fn neg_of_inputs_and_of_an_intermediate() {
    let m = Builder::new(13)
        .input("x", &[1, 6])
        .init(w("c", &[6], 5))
        .node(node("Neg", "n1", &["x"], &["a"], vec![]))
        .node(node("Add", "add", &["a", "c"], &["b"], vec![]))
        .node(node("Neg", "n2", &["b"], &["y"], vec![]))
        .output("y")
        .bytes();
    check("neg", m, &[&[1, 6]]);
}

#[test]
fn erf_and_gelu_as_pytorch_exports_them_and_as_the_opset_20_op() {
    // y = Erf(x W): the function alone, over inputs beyond its table's domain too.
    let m = Builder::new(13)
        .input("x", &[1, 6])
        .init(w("w", &[6, 8], 3))
        .node(node("MatMul", "mm", &["x", "w"], &["h"], vec![]))
        .node(node("Erf", "erf", &["h"], &["y"], vec![]))
        .output("y")
        .bytes();
    check("erf", m, &[&[1, 6]]);
    // torch.nn.GELU() at opset <= 19: x * 0.5 * (1 + erf(x / sqrt(2))).
    let m = Builder::new(17)
        .input("x", &[1, 6])
        .init(w("w", &[6, 8], 4))
        .init(tensor_f32("sqrt2", &[], &[std::f32::consts::SQRT_2]))
        .init(tensor_f32("one", &[], &[1.0]))
        .init(tensor_f32("half", &[], &[0.5]))
        .node(node("MatMul", "mm", &["x", "w"], &["h"], vec![]))
        .node(node("Div", "div", &["h", "sqrt2"], &["a"], vec![]))
        .node(node("Erf", "erf", &["a"], &["b"], vec![]))
        .node(node("Add", "add", &["b", "one"], &["c"], vec![]))
        .node(node("Mul", "mul", &["h", "c"], &["d"], vec![]))
        .node(node("Mul", "mul2", &["d", "half"], &["y"], vec![]))
        .output("y")
        .bytes();
    check("gelu via erf", m, &[&[1, 6]]);
    // The Gelu op of opset 20, exact and with the tanh approximation.
    for approx in [None, Some("none"), Some("tanh")] {
        let attrs = approx.map(|a| vec![attr("approximate", A::S(a))]);
        let m = Builder::new(20)
            .input("x", &[1, 6])
            .init(w("w", &[6, 8], 5))
            .node(node("MatMul", "mm", &["x", "w"], &["h"], vec![]))
            .node(node(
                "Gelu",
                "gelu",
                &["h"],
                &["y"],
                attrs.unwrap_or_default(),
            ))
            .output("y")
            .bytes();
        check(&format!("gelu {approx:?}"), m, &[&[1, 6]]);
    }
}

#[test]
fn gelu_with_an_unknown_approximation_is_refused_by_name() {
    let m = Builder::new(20)
        .input("x", &[1, 6])
        .node(node(
            "Gelu",
            "gelu",
            &["x"],
            &["y"],
            vec![attr("approximate", A::S("sigmoid"))],
        ))
        .output("y")
        .bytes();
    let Err(e) = Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()) else {
        panic!("an unknown approximation must be refused");
    };
    assert!(e.to_string().contains("approximate = \"sigmoid\""), "{e}");
}

#[test]
fn embedding_gather_with_runtime_ids() {
    let m = Builder::new(13)
        .input_typed("ids", &[1, 5], 7)
        .init(w("table", &[10, 3], 11))
        .node(node("Gather", "g", &["table", "ids"], &["e"], vec![]))
        .node(node(
            "ReduceSum",
            "rs",
            &["e", "ax"],
            &["y"],
            vec![attr("keepdims", A::I(0))],
        ))
        .init(tensor_i64("ax", &[1], &[1]))
        .output("y")
        .bytes();
    let model = Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let inputs = model
        .parse_inputs(r#"{"inputs": {"ids": [[0, 9, 3, 3, 1]]}}"#)
        .unwrap();
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.run_float(&inputs).unwrap();
    let f = model.reference().unwrap().run(&inputs.tensors).unwrap();
    assert!(compare(&["y".into()], &f, &q).max_rel_error() < 0.01);
    // An id past the table is an error naming the node, not a panic or a clamp.
    let bad = model
        .parse_inputs(r#"{"inputs": {"ids": [[0, 10, 3, 3, 1]]}}"#)
        .unwrap();
    let e = p.run_float(&bad).unwrap_err().to_string();
    assert_eq!(e, "node \"g\": index out of range for a table of 10 rows");
}

#[test]
fn layer_normalization_over_one_and_two_axes() {
    // The last axis, with scale and bias (a transformer block's LayerNorm).
    let m = Builder::new(17)
        .input("x", &[2, 3, 8])
        .init(w("g", &[8], 11))
        .init(w("b", &[8], 12))
        .node(node(
            "LayerNormalization",
            "ln",
            &["x", "g", "b"],
            &["y"],
            vec![attr("epsilon", A::F(1e-5))],
        ))
        .output("y")
        .bytes();
    check("layernorm last axis", m, &[&[2, 3, 8]]);
    // The last two axes, no bias.
    let m = Builder::new(17)
        .input("x", &[1, 4, 3, 5])
        .init(w("g", &[3, 5], 13))
        .node(node(
            "LayerNormalization",
            "ln",
            &["x", "g"],
            &["y"],
            vec![attr("axis", A::I(2))],
        ))
        .output("y")
        .bytes();
    check("layernorm two axes", m, &[&[1, 4, 3, 5]]);
}

#[test]
fn matmul_of_two_activations_batched_broadcast_and_1d() {
    let mm = |sa: &[i64], sb: &[i64]| {
        Builder::new(13)
            .input("a", sa)
            .input("b", sb)
            .node(node("MatMul", "mm", &["a", "b"], &["y"], vec![]))
            .output("y")
            .bytes()
    };
    // Batch dimensions broadcast against each other, and a lower rank is padded with ones.
    check(
        "batches",
        mm(&[2, 1, 3, 4], &[1, 3, 4, 2]),
        &[&[2, 1, 3, 4], &[1, 3, 4, 2]],
    );
    check(
        "ranks 3 and 2",
        mm(&[2, 3, 4], &[4, 5]),
        &[&[2, 3, 4], &[4, 5]],
    );
    // 1-D operands: a row vector on the left, a column vector on the right, dropped after.
    check("1-D left", mm(&[4], &[2, 4, 3]), &[&[4], &[2, 4, 3]]);
    check("1-D right", mm(&[2, 3, 4], &[4]), &[&[2, 3, 4], &[4]]);
    // Shapes that do not multiply are refused with both shapes.
    for (sa, sb) in [(&[2, 3, 4][..], &[2, 5, 2][..]), (&[2, 3, 4], &[3, 4, 2])] {
        let e = Model::from_bytes(
            mm(sa, sb),
            &ImportOptions::default(),
            &GuardLimits::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{sa:?} x {sb:?} must be refused"));
        let text = format!("{e:#}");
        assert!(text.contains("mm"), "{text}");
    }
}

/// One self-attention block as `torch.onnx.export` writes it: projections, heads split by
/// Reshape and Transpose, `Q·Kᵀ / sqrt(d)`, Softmax, `P·V`, heads merged, output projection.
pub fn attention_block(tokens: i64, dim: i64, heads: i64, seed: u64) -> Vec<u8> {
    let dh = dim / heads;
    let mut b = Builder::new(17).input("x", &[1, tokens, dim]);
    for (i, name) in ["wq", "wk", "wv", "wo"].into_iter().enumerate() {
        b = b.init(w(name, &[dim, dim], seed + i as u64));
    }
    b.init(tensor_i64("split", &[4], &[1, tokens, heads, dh]))
        .init(tensor_i64("merge", &[3], &[1, tokens, dim]))
        .init(tensor_f32("scale", &[], &[(dh as f32).sqrt()]))
        .node(node("MatMul", "q", &["x", "wq"], &["q0"], vec![]))
        .node(node("MatMul", "k", &["x", "wk"], &["k0"], vec![]))
        .node(node("MatMul", "v", &["x", "wv"], &["v0"], vec![]))
        .node(node(
            "Reshape",
            "q_split",
            &["q0", "split"],
            &["q1"],
            vec![],
        ))
        .node(node(
            "Reshape",
            "k_split",
            &["k0", "split"],
            &["k1"],
            vec![],
        ))
        .node(node(
            "Reshape",
            "v_split",
            &["v0", "split"],
            &["v1"],
            vec![],
        ))
        .node(node(
            "Transpose",
            "q_heads",
            &["q1"],
            &["q"],
            vec![attr("perm", A::Is(&[0, 2, 1, 3]))],
        ))
        .node(node(
            "Transpose",
            "k_heads_t",
            &["k1"],
            &["kt"],
            vec![attr("perm", A::Is(&[0, 2, 3, 1]))],
        ))
        .node(node(
            "Transpose",
            "v_heads",
            &["v1"],
            &["v"],
            vec![attr("perm", A::Is(&[0, 2, 1, 3]))],
        ))
        .node(node("MatMul", "scores", &["q", "kt"], &["s0"], vec![]))
        .node(node("Div", "scaled", &["s0", "scale"], &["s"], vec![]))
        .node(node(
            "Softmax",
            "attn",
            &["s"],
            &["p"],
            vec![attr("axis", A::I(-1))],
        ))
        .node(node("MatMul", "mix", &["p", "v"], &["o0"], vec![]))
        .node(node(
            "Transpose",
            "o_tokens",
            &["o0"],
            &["o1"],
            vec![attr("perm", A::Is(&[0, 2, 1, 3]))],
        ))
        .node(node(
            "Reshape",
            "o_merge",
            &["o1", "merge"],
            &["o2"],
            vec![],
        ))
        .node(node("MatMul", "proj", &["o2", "wo"], &["y"], vec![]))
        .output("y")
        .bytes()
}

#[test]
fn self_attention_as_pytorch_exports_it() {
    check("attention", attention_block(4, 8, 2, 11), &[&[1, 4, 8]]);
}

#[test]
fn concat_of_a_constant_with_an_activation() {
    // A class token before the patch embeddings (ViT), and a constant column after them.
    let m = Builder::new(13)
        .input("x", &[1, 3, 4])
        .init(w("cls", &[1, 1, 4], 12))
        .init(w("col", &[1, 4, 2], 13))
        .node(node(
            "Concat",
            "with_cls",
            &["cls", "x"],
            &["a"],
            vec![attr("axis", A::I(1))],
        ))
        .node(node(
            "Concat",
            "with_col",
            &["a", "col"],
            &["y"],
            vec![attr("axis", A::I(-1))],
        ))
        .output("y")
        .bytes();
    check("concat constant", m, &[&[1, 3, 4]]);
}
