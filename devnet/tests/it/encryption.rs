//! Encrypted task inputs: only ciphertext and a commitment on chain, the ciphertext bound to
//! the commitment, a submitter who lies about its commitment failing its own task without
//! anyone slashed, and validator encryption keys that are random (and kept with `--state`).

use lightchain_aivm::proof::Proof;
use lightchain_devnet::chain::state::TaskStatus;
use lightchain_devnet::chain::{SealedInput, TaskInput};
use lightchain_devnet::spawn;

use crate::{WAIT, config, input, package};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_inputs_stay_ciphertext_on_chain() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[4].key();
    let (_, model) = api.deploy(&key, package("sentiment")).unwrap();
    let inputs = input("sentiment", "positive.json");
    let tokens = inputs["inputs"]["tokens"].to_string();
    let id = api
        .submit_task(&key, &model, inputs.clone(), true, 1)
        .unwrap();
    let r = api.wait_receipt(&id, WAIT).unwrap();
    // The proof commits to the input: its public inputs carry a commitment, not the tokens.
    let proof = Proof::from_bytes(&r.proof).unwrap();
    assert!(matches!(
        proof.input,
        lightchain_aivm::proof::PublicInput::Commitment(_)
    ));
    assert!(
        r.public_inputs.get("inputs").is_none()
            && r.public_inputs.get("input_commitment").is_some()
    );
    let task = api.task(&id).unwrap();
    assert!(matches!(task.input, TaskInput::Encrypted { .. }));
    // Nothing the chain keeps holds the plaintext: blocks, tasks, receipts.
    let view = api.view();
    let everything = serde_json::to_string(&(&view.blocks, &view.state, &view.receipts)).unwrap();
    let compact = tokens.replace(' ', "");
    assert!(
        compact.len() > 20 && !everything.contains(&compact),
        "plaintext tokens found on chain"
    );
    let out = &r.outputs_float[0];
    assert!(
        out[1] > out[0],
        "the positive example is classified positive"
    );
    // A model proving with public inputs refuses encryption.
    let (_, digits) = api.deploy(&key, package("digits")).unwrap();
    let e = api
        .submit_task(&key, &digits, input("digits", "six.json"), true, 1)
        .unwrap_err();
    assert!(
        matches!(
            e,
            lightchain_devnet::DevnetError::Seal(lightchain_devnet::seal::SealError::PublicModel)
        ),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_submitter_fails_its_task_and_no_one_is_slashed() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[4].key();
    let (_, model) = api.deploy(&key, package("sentiment")).unwrap();
    let record = api.model(&model).unwrap();
    let pkg = api.package(&model).unwrap();
    let before = api.view().state;
    // The input of one example under the commitment of another.
    let honest =
        lightchain_devnet::seal_input(&pkg, &api.validators(), input("sentiment", "negative.json"))
            .unwrap();
    let TaskInput::Encrypted { commitment, .. } = honest else {
        unreachable!()
    };
    let sealed = SealedInput {
        inputs: input("sentiment", "positive.json"),
        salt: [1; 32],
    };
    let lie = lightchain_devnet::seal::seal_with(&sealed, commitment, &api.validators());
    let id = api.submit_input(&key, &record, lie, 1).unwrap();
    let api2 = api.clone();
    let err = tokio::task::spawn_blocking(move || api2.wait_receipt(&id, WAIT))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("submitter fault"), "{err}");
    let after = api.view().state;
    // No evidence, no penalty, no stake lost; the fee is burned, not refunded or paid.
    assert!(after.evidence.is_empty(), "{:?}", after.evidence);
    for (a, b) in before.validators.iter().zip(&after.validators) {
        assert_eq!((a.stake, a.penalties), (b.stake, b.penalties));
    }
    let task = after.tasks.values().find(|t| t.model_id == model).unwrap();
    assert!(matches!(
        task.status,
        TaskStatus::Failed {
            submitter_fault: true,
            ..
        }
    ));
    assert_eq!(after.burned, task.fee);
    assert_eq!(after.supply(), before.supply());
    // And an honest encrypted task still completes.
    let ok = api
        .submit_task(&key, &model, input("sentiment", "positive.json"), true, 1)
        .unwrap();
    let api2 = api.clone();
    tokio::task::spawn_blocking(move || api2.wait_receipt(&ok, WAIT).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_encryption_keys_are_random_and_kept_with_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config()
        .with_validators(1)
        .with_state_dir(Some(dir.path().to_path_buf()));
    let first = {
        let (api, _h) = spawn(cfg.clone()).await;
        api.validators()[0].encryption_key
    };
    let (api, _h) = spawn(config().with_validators(1)).await;
    let other = api.validators()[0].encryption_key;
    assert_ne!(first, other, "two fresh devnets share an encryption key");
    let (api2, _h2) = spawn(cfg).await;
    assert_eq!(api2.validators()[0].encryption_key, first);
    // The restarted validator can still open what was sealed to its stored key.
    assert_ne!(first, [0; 32]);
}

/// The forms a marker value could leak in: decimal text, its f64 and f32 bytes as hex and
/// base64.
fn leak_forms(marker: f64) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (b64b, f32b) = (marker.to_le_bytes(), (marker as f32).to_le_bytes());
    vec![
        marker.to_string(),
        format!("{marker:.2}"),
        lightchain_devnet::crypto::hex(&b64b),
        lightchain_devnet::crypto::hex(&f32b),
        b64.encode(b64b),
        b64.encode(f32b),
    ]
}

fn assert_clean(what: &str, text: &str, forms: &[String]) {
    for f in forms {
        assert!(
            !text.contains(f.as_str()),
            "{what} holds the marker as {f}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_input_leaks_nowhere_on_failing_paths() {
    let (api, handle) = spawn(config()).await;
    let url = handle.rpc_url().unwrap();
    let key = handle.dev_accounts()[6].key();
    let (_, model) = api.deploy(&key, package("fraud")).unwrap();
    let record = api.model(&model).unwrap();
    let marker = 7_717.123_456_f64;
    let mut forms = leak_forms(marker);
    forms.extend(leak_forms(marker * 1e9));
    let with = |m: f64, n: usize| {
        let mut v = input("fraud", "legit.json");
        let row = v["inputs"]["features"][0].as_array_mut().unwrap();
        row[0] = m.into();
        row.resize(n, 1.0.into());
        v
    };
    // The check can see a leak: the plaintext holds the marker in its first form.
    assert!(with(marker, 8).to_string().contains(&forms[0]));
    let mut seen = Vec::new();
    // Wrong shape, value far outside the calibrated range, and not even a number: refused
    // before sealing, with shapes, not values.
    for bad in [with(marker, 9), with(marker * 1e9, 8)] {
        let e = api.submit_task(&key, &model, bad, true, 1).unwrap_err();
        seen.push(("a refused submission", e.to_string()));
    }
    // Through the RPC: an estimate of a bad input, and a plain input for a hashed model.
    let est = crate::rpc(
        &url,
        "lc_estimateGas",
        serde_json::json!([{"model_id": model, "inputs": with(marker, 9)}]),
    )
    .await;
    assert!(est.get("error").is_some(), "{est}");
    seen.push(("an RPC error", est.to_string()));
    let plain = api.task_tx(
        &key,
        &record,
        TaskInput::Public {
            inputs: with(marker, 8),
        },
        1,
    );
    let r = crate::rpc(&url, "lc_submitTask", serde_json::json!([plain])).await;
    assert!(
        r.get("error").is_some(),
        "a plain input for a hashed model was taken: {r}"
    );
    seen.push(("an RPC answer", r.to_string()));
    // A submitter who seals the marker under another input's commitment: its task fails.
    let pkg = api.package(&model).unwrap();
    let honest =
        lightchain_devnet::seal_input(&pkg, &api.validators(), input("fraud", "fraud.json"))
            .unwrap();
    let TaskInput::Encrypted { commitment, .. } = honest else {
        unreachable!()
    };
    let sealed = SealedInput {
        inputs: with(marker, 8),
        salt: [3; 32],
    };
    let lie = lightchain_devnet::seal::seal_with(&sealed, commitment, &api.validators());
    let lied = api.submit_input(&key, &record, lie, 1).unwrap();
    // And an honest encrypted task carrying the marker completes.
    let ok = api
        .submit_task(&key, &model, with(marker, 8), true, 1)
        .unwrap();
    let api2 = api.clone();
    let (failed, done) = tokio::task::spawn_blocking(move || {
        (
            api2.wait_receipt(&lied, WAIT).unwrap_err().to_string(),
            api2.wait_receipt(&ok, WAIT),
        )
    })
    .await
    .unwrap();
    assert!(failed.contains("submitter fault"), "{failed}");
    seen.push(("the failed task's reason", failed));
    let receipt = done.unwrap();
    let task = crate::rpc(&url, "lc_getTask", serde_json::json!([receipt.task_id])).await;
    seen.push(("a receipt", task.to_string()));
    let view = api.view();
    seen.push((
        "blocks, state and receipts",
        serde_json::to_string(&(&view.blocks, &view.state, &view.receipts)).unwrap(),
    ));
    for (what, text) in &seen {
        assert_clean(what, text, &forms);
    }
}
