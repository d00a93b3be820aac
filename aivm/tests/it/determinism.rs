//! The executor is deterministic: the same program and input give bit-identical outputs across
//! runs, across threads, and after an encode/decode round trip; compiling twice gives the same
//! program and model id.

use lightchain_aivm::Program;

use crate::{all_fixture_models, compile, load, read_inputs};

#[test]
fn same_program_and_input_give_identical_outputs_across_runs_and_threads() {
    for (name, model_path, input_path) in all_fixture_models() {
        let model = load(&model_path);
        let inputs = read_inputs(&model, &input_path);
        let program = compile(&model, &inputs);
        let q = program.quantize_inputs(&inputs).unwrap();
        let first = program.execute_all(&q).unwrap();
        assert_eq!(
            first,
            program.execute_all(&q).unwrap(),
            "{name}: second run differs"
        );
        let bytes = program.encode();
        let results: Vec<Vec<Vec<i64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (bytes, q) = (&bytes, &q);
                    s.spawn(move || Program::decode(bytes).unwrap().execute_all(q).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            assert_eq!(r, first, "{name}: a thread computed a different witness");
        }
        // Compiling again from the file gives the same bytes and id.
        let again = compile(&load(&model_path), &inputs);
        assert_eq!(
            again.encode(),
            bytes,
            "{name}: compilation is not deterministic"
        );
        assert_eq!(again.id(), program.id());
    }
}
