//! Segment proofs on the devnet: a model over its package's memory limit is proven in
//! segments, and the executor shares them out to the other validators, checks what they send
//! back, and proves itself whatever a helper withholds or gets wrong.

use lightchain_aivm::proof::{ParamsCache, Proof};
use lightchain_devnet::chain::{TaskInput, exec};
use lightchain_devnet::executor::ExecStats;
use lightchain_devnet::validator::Behavior;
use lightchain_devnet::{DevnetApi, spawn};
use lightchain_test_utils::fixtures_dir;

use crate::{WAIT, config, params_dir};

/// The digits CNN fixture (2^13 rows in one circuit) packaged within 128 MB (k ≤ 11): four
/// segments.
fn segmented_cnn() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures_dir().join("digits_cnn/model.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let manifest = r#"
[model]
name = "cnn"
version = "0.1.0"
onnx = "model.onnx"

[[inputs]]
name = "x"
dtype = "f32"
shape = [1, 1, 8, 8]
range = [0.0, 1.0]

[[outputs]]
name = "logits"
dtype = "f32"
shape = [1, 10]

[proving]
accuracy_target = 0.05

[limits]
memory_mb = 128
"#;
    std::fs::write(dir.path().join("lightchain.toml"), manifest).unwrap();
    let params = ParamsCache { dir: params_dir() };
    lightchain_packager::build(dir.path(), &params, false, &mut |_| {})
        .unwrap()
        .0
}

fn cnn_input(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures_dir().join("digits_cnn").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stats(api: &DevnetApi) -> Vec<ExecStats> {
    (0..4).map(|i| api.executor_stats(i).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_prove_the_segments_of_one_task() {
    let bytes = segmented_cnn();
    let pkg = lightchain_packager::load(&bytes).unwrap();
    let verifier = pkg.keys(&ParamsCache { dir: params_dir() }, false).unwrap();
    let segments = verifier.segments() as u64;
    assert!(segments >= 3, "{segments} segments");
    assert!(verifier.k() <= 11);
    // Deadlines long enough for the first task's key derivation (every segment, on every
    // validator, on two cores).
    let cfg = config().with_task_timeout(Some(std::time::Duration::from_secs(120)));
    let (api, handle) = spawn(cfg).await;
    let key = handle.dev_accounts()[0].key();
    tokio::task::block_in_place(|| {
        let (_, model_id) = api.deploy(&key, bytes.clone()).unwrap();
        let model = api.model(&model_id).unwrap();
        // The quote's memory is the segments', within the package's 128 MB.
        let quote = api
            .estimate(&model_id, &cnn_input("input.json"), 1)
            .unwrap();
        assert!(
            quote.memory_mb <= 128 && quote.breakdown.k > 11,
            "{quote:?}"
        );
        // A task whose executor is known before it is sent (its id is its hash).
        let task = |file: &str| {
            let inputs = cnn_input(file);
            let tx = api.task_tx(&key, &model, TaskInput::Public { inputs }, 1);
            let id = lightchain_devnet::crypto::hex(&tx.hash());
            let executor = exec::assign(&api.view().state, &id, 0, &[]).unwrap();
            (tx, id, executor)
        };

        // All honest: the executor proves the segment reading the input and gets the
        // others from the other validators, each checked; the proof verifies offline.
        let (tx, id, e) = task("input.json");
        api.send_transaction(tx).unwrap();
        let r = api.wait_receipt(&id, WAIT).unwrap();
        assert_eq!(r.executor, e);
        let proof = Proof::from_bytes(&r.proof).unwrap();
        assert_eq!(
            proof.segments.as_ref().unwrap().proofs.len() as u64,
            segments
        );
        verifier.verify(&proof).unwrap();
        let s = stats(&api);
        assert_eq!(s[e].tasks, 1);
        assert_eq!(s[e].segments_own + s[e].segments_helped, segments, "{s:?}");
        // Segments sent out: the helpers proved them (an answer later than the executor's
        // wait, on a loaded machine, is proven again by the executor: a fallback).
        let shared = s[e].segments_helped + s[e].segments_fallback;
        assert!(shared >= 2 && s[e].segments_helped >= 1, "{s:?}");
        let for_others: u64 = s.iter().map(|x| x.segments_for_others).sum();
        assert!(for_others >= s[e].segments_helped, "{s:?}");
        assert!(
            s.iter().filter(|x| x.segments_for_others > 0).count() >= 1,
            "{s:?}"
        );

        // Helpers that corrupt their segments, then helpers that withhold them: the
        // executor proves those itself, and the task still completes with a proof that
        // verifies.
        for (file, b) in [
            ("input_1.json", Behavior::CorruptProof),
            ("input_2.json", Behavior::Silent),
        ] {
            let before = stats(&api);
            let (tx, id, e) = task(file);
            let others: Vec<usize> = (0..4).filter(|&v| v != e).collect();
            for &v in &others {
                api.set_behavior(v, b).unwrap();
            }
            api.send_transaction(tx).unwrap();
            let r = api.wait_receipt(&id, WAIT).unwrap();
            assert_eq!(r.executor, e);
            verifier
                .verify(&Proof::from_bytes(&r.proof).unwrap())
                .unwrap();
            let s = stats(&api);
            let fallback = s[e].segments_fallback - before[e].segments_fallback;
            assert_eq!(fallback, shared, "{b:?}: {s:?}");
            assert_eq!(s[e].segments_helped, before[e].segments_helped, "{s:?}");
            // Corrupting helpers did prove (and spoil) their segments, perhaps after the
            // executor stopped waiting; silent ones did not.
            let expected = if b == Behavior::Silent { 0 } else { shared };
            let proven = || -> u64 {
                let s = stats(&api);
                others
                    .iter()
                    .map(|&v| s[v].segments_for_others - before[v].segments_for_others)
                    .sum()
            };
            let start = std::time::Instant::now();
            while proven() < expected && start.elapsed() < WAIT {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            assert_eq!(proven(), expected, "{b:?}: {:?}", stats(&api));
            for &v in &others {
                api.set_behavior(v, Behavior::Honest).unwrap();
            }
        }
    });
}
