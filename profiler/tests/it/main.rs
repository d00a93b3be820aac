//! Profiler tests: the quote equals the charge, gas grows with the model and the input, and the
//! chart is drawn.

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::gas;
use lightchain_aivm::ir::DType;
use lightchain_aivm::ops::linear::LinearGeom;
use lightchain_aivm::program::{IoSpec, Op, PNode, Program, TensorMeta};
use lightchain_aivm::proof::{Keys, ParamsCache};
use lightchain_aivm::{Inputs, Tensor};
use lightchain_profiler::{ProfileOptions, estimate, plot::plot, profile};
use proptest::prelude::*;

fn params() -> ParamsCache {
    ParamsCache {
        dir: lightchain_test_utils::params_dir(),
    }
}

fn package(template: &str) -> lightchain_packager::Package {
    let dir = lightchain_test_utils::template_project(template);
    lightchain_packager::build(dir.path(), &params(), false, &mut |_| {})
        .unwrap()
        .1
}

#[test]
fn over_fifty_tasks_the_charge_equals_the_quote() {
    let pkg = package("digits");
    let keys = Keys::derive(
        pkg.program.clone(),
        pkg.info.input_visibility,
        &params(),
        true,
    )
    .unwrap();
    let mut s = 7u64;
    for task in 0..50 {
        // A different input every task, drawn from the manifest's range [0, 1].
        let data: Vec<f64> = (0..64)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let inputs = Inputs {
            tensors: vec![Tensor::new(vec![1, 64], data)],
        };
        let quote = estimate(&pkg, &inputs, 3, None).unwrap();
        let q = pkg.program.quantize_inputs(&inputs).unwrap();
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let proof = keys.prove(&q, [task as u8; 32], &mut rng).unwrap();
        keys.verify(&proof).unwrap();
        let charged = gas::charge(&pkg.program, &q, &proof);
        assert_eq!(charged, quote.breakdown, "task {task}");
        assert_eq!(quote.fee, charged.total * 3);
    }
}

/// A one-layer program: `x [1, k] · W [k, n]` then ReLU, with weights that are all 1.
fn dense(k: usize, n: usize) -> Program {
    let t = |shape: Vec<usize>| TensorMeta {
        shape,
        dtype: DType::F32,
        scale: 8,
        bits: 16,
    };
    Program {
        tensors: vec![t(vec![1, k]), t(vec![1, n]), t(vec![1, n])],
        inputs: vec![IoSpec {
            name: "x".into(),
            tensor: 0,
        }],
        outputs: vec![IoSpec {
            name: "y".into(),
            tensor: 2,
        }],
        nodes: vec![
            PNode {
                name: "dense".into(),
                onnx_op: "Gemm".into(),
                op: Op::Linear(lightchain_aivm::ops::linear::Linear {
                    geom: LinearGeom::MatMul {
                        batch: 1,
                        m: 1,
                        k,
                        n,
                    },
                    weight: vec![1; k * n],
                    bias: vec![0; n],
                    shift: 8,
                }),
                inputs: vec![0],
                output: 1,
            },
            PNode {
                name: "relu".into(),
                onnx_op: "Relu".into(),
                op: Op::Relu(lightchain_aivm::ops::relu::Relu),
                inputs: vec![1],
                output: 2,
            },
        ],
        state: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// A model twice as large (more inputs or more outputs) never costs less gas, and strictly
    /// more; the same for hashed inputs.
    #[test]
    fn gas_grows_with_the_model(k in 1usize..64, n in 1usize..32) {
        let p = dense(k, n);
        p.validate().unwrap();
        for vis in [Visibility::Public, Visibility::Hashed] {
            let g = gas::meter(&p, vis).total;
            prop_assert!(gas::meter(&dense(2 * k, n), vis).total > g);
            prop_assert!(gas::meter(&dense(k, 2 * n), vis).total > g);
        }
    }
}

#[test]
fn an_input_twice_as_long_costs_more_gas() {
    // The sentiment template's token sequence is a symbolic dimension: profile at 16, 32, 64.
    let pkg = package("sentiment");
    let p = profile(
        &pkg,
        &params(),
        &ProfileOptions {
            runs: 1,
            sizes: Some(vec![16, 32, 64]),
            gas_price: 2,
            seed: 5,
        },
        &mut |_| {},
    )
    .unwrap();
    let axis = p.axis.clone().unwrap();
    assert_eq!(
        (axis.input.as_str(), axis.axis, axis.dim_name.as_str()),
        ("tokens", 1, "seq")
    );
    let gas: Vec<u64> = p.sizes.iter().map(|s| s.gas).collect();
    assert!(gas.windows(2).all(|w| w[1] > w[0]), "{gas:?}");
    assert!(p.sizes.iter().all(|s| s.fee == 2 * s.gas));
}

#[test]
fn the_chart_is_drawn_as_svg_and_png() {
    let pkg = package("digits");
    let p = profile(
        &pkg,
        &params(),
        &ProfileOptions {
            runs: 2,
            sizes: Some(vec![1, 4]),
            gas_price: 1,
            seed: 1,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(p.sizes.len(), 2);
    assert!(p.curve.seconds_per_gas > 0.0);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("cost.svg");
    let png = dir.path().join("cost.png");
    plot(&p, &svg).unwrap();
    plot(&p, &png).unwrap();
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(
        s.starts_with("<svg") && s.contains("proving time against gas") && s.contains("<circle"),
        "svg"
    );
    let b = std::fs::read(&png).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        1000,
        "png width"
    );
    assert!(b.len() > 20_000, "a real chart, not an empty image");
    assert!(plot(&p, &dir.path().join("cost.bmp")).is_err());
}
