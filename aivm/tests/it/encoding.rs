//! The canonical program encoding: round trips, a stable id, and no panic or wrong program on
//! truncated, corrupted or newer-version bytes.

use lightchain_aivm::{ModelId, Program};

use crate::{compile, fixtures_dir, load, read_inputs};

fn program(name: &str) -> Program {
    let dir = fixtures_dir().join(name);
    let model = load(&dir.join("model.onnx"));
    let inputs = read_inputs(&model, &dir.join("input.json"));
    compile(&model, &inputs)
}

#[test]
fn round_trip_keeps_program_and_id() {
    for name in [
        "digits_cnn",
        "op_pool",
        "op_shape",
        "sentiment_embed",
        "op_softmax",
        "op_activations",
        "op_reduce",
    ] {
        let p = program(name);
        let bytes = p.encode();
        let back = Program::decode(&bytes).unwrap();
        assert_eq!(back, p, "{name}");
        assert_eq!(back.id(), p.id());
        assert_eq!(back.encode(), bytes);
        let id: ModelId = p.id().to_string().parse().unwrap();
        assert_eq!(id, p.id());
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = program("digits_cnn").encode();
    for len in 0..bytes.len() {
        assert!(
            Program::decode(&bytes[..len]).is_err(),
            "a {len}-byte prefix decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = Program::decode(&longer).unwrap_err().to_string();
    assert!(err.contains("trailing"), "{err}");
}

#[test]
fn newer_version_is_refused_with_a_clear_error() {
    let mut bytes = program("op_gemm").encode();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let err = Program::decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("version 2 is not supported"), "{err}");
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(
        Program::decode(&bad)
            .unwrap_err()
            .to_string()
            .contains("magic")
    );
}

#[test]
fn flipped_bytes_never_panic_and_change_the_id() {
    let p = program("op_batchnorm");
    let bytes = p.encode();
    let id = p.id();
    for i in (12..bytes.len()).step_by(7) {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            // Either refused, or a different (valid) program with a different id.
            if let Ok(q) = Program::decode(&b) {
                assert_ne!(q.id(), id);
                // A decoded program is safe to run on inputs of its declared shapes.
                let inputs: Vec<Vec<i64>> = q
                    .inputs
                    .iter()
                    .map(|io| vec![0; q.tensors[io.tensor].shape.iter().product()])
                    .collect();
                let _ = q.execute_all(&inputs);
            }
        }
    }
}
