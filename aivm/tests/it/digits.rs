//! The trained digits models (MLP, CNN, vision transformer) keep their float test-set accuracy
//! within 0.5 percentage points when the integer executor runs the whole held-out split.

use lightchain_aivm::accuracy::argmax_rows;
use lightchain_aivm::{Inputs, QuantConfig, Tensor};

use crate::{fixtures_dir, load, read_inputs};

fn split() -> (Vec<Vec<f64>>, Vec<usize>) {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("data/digits_test.json")).unwrap(),
    )
    .unwrap();
    let x = v["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap() / 16.0)
                .collect()
        })
        .collect();
    let y = v["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap() as usize)
        .collect();
    (x, y)
}

fn check(name: &str, shape: Vec<usize>) {
    let dir = fixtures_dir().join(name);
    let model = load(&dir.join("model.onnx"));
    // Calibrate on the fixture's sample inputs (training-like data), not on the test split.
    let samples: Vec<Inputs> = ["input.json", "input_1.json", "input_2.json"]
        .iter()
        .map(|f| read_inputs(&model, &dir.join(f)))
        .collect();
    let program = model.compile(&samples, &QuantConfig::default()).unwrap();
    let reference = model.reference().unwrap();
    let (xs, ys) = split();
    assert_eq!(xs.len(), 360);
    let (mut float_ok, mut int_ok) = (0, 0);
    for (x, &y) in xs.iter().zip(&ys) {
        let inputs = Inputs {
            tensors: vec![Tensor::new(shape.clone(), x.clone())],
        };
        let f = reference.run(&inputs.tensors).unwrap();
        let q = program.run_float(&inputs).unwrap();
        float_ok += (argmax_rows(&f[0])[0] == y) as usize;
        int_ok += (argmax_rows(&q[0])[0] == y) as usize;
    }
    let (fa, ia) = (float_ok as f64 / 3.6, int_ok as f64 / 3.6);
    eprintln!(
        "{name}: float accuracy {fa:.2}%, integer accuracy {ia:.2}% over {} test digits",
        xs.len()
    );
    assert!(fa > 95.0, "{name}: float accuracy {fa}");
    assert!(
        (fa - ia).abs() <= 0.5,
        "{name}: float {fa}% vs integer {ia}%"
    );
}

#[test]
fn digits_mlp_keeps_its_test_accuracy() {
    check("digits_mlp", vec![1, 64]);
}

#[test]
fn digits_cnn_keeps_its_test_accuracy() {
    check("digits_cnn", vec![1, 1, 8, 8]);
}

#[test]
fn digits_vit_keeps_its_test_accuracy() {
    // The vision transformer: both activation products of attention, softmax, LayerNorm and
    // GELU, over the whole held-out split.
    check("digits_vit", vec![1, 8, 8]);
}
