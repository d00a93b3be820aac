//! Validators over HTTP: every message between them crosses a socket and the wire codec;
//! the chain commits proven tasks, agrees at every height, survives a killed validator and
//! catches it up, and a listener refuses what is not a validator's message, signed by it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use lightchain_devnet::crypto::AccountKey;
use lightchain_devnet::spawn;
use lightchain_devnet::transport::{FROM_HEADER, SIG_HEADER, message_digest};

use crate::{WAIT, config, eventually, input, package};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_over_http_commit_agree_and_survive_a_kill() {
    let cfg = config()
        .with_http_transport()
        .with_task_timeout(Some(Duration::from_secs(5)));
    let (api, handle) = spawn(cfg).await;
    let t = api.network().transport().expect("an HTTP transport");
    let mut ports: Vec<u16> = t.addrs.iter().map(|a| a.port()).collect();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    let key = handle.dev_accounts()[1].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        let run = |files: &[&str]| {
            let ids: Vec<String> = files
                .iter()
                .map(|f| {
                    api.submit_task(&key, &model, input("digits", f), false, 1)
                        .unwrap()
                })
                .collect();
            ids.iter()
                .map(|id| api.wait_receipt(id, WAIT).unwrap())
                .collect::<Vec<_>>()
        };
        run(&["seven.json", "six.json"]);
        let sent = t.stats.sent.load(Ordering::Relaxed);
        assert!(sent > 0 && t.stats.received.load(Ordering::Relaxed) > 0);

        // A validator killed: tasks still complete, by the others.
        api.kill(3).unwrap();
        for r in run(&["three.json", "seven.json"]) {
            assert_ne!(r.executor, 3);
        }
        // Revived, it catches up over the same links.
        api.revive(3).unwrap();
        api.mine().unwrap();
        let target = api.view().state.height;
        eventually("validator 3 to catch up", || {
            api.views()[3].state.height >= target
        });
        let views = api.views();
        let h = views.iter().map(|v| v.state.height).min().unwrap();
        for height in 0..h as usize {
            let hashes: Vec<[u8; 32]> = views.iter().map(|v| v.blocks[height].hash).collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "height {}: {hashes:?}",
                height + 1
            );
        }

        // What is not a validator's message is refused and changes nothing: no sender, an
        // unknown one, no signature, a signature by another validator's key, one made for
        // another destination, a signed body that is no message.
        let url = format!("http://{}/p2p", t.addrs[0]);
        let client = reqwest::blocking::Client::new();
        let chain = api.chain_id().to_string();
        let key = |i: usize| {
            AccountKey::from_secret(lightchain_devnet::crypto::dev_secret(
                "validator account",
                i,
            ))
        };
        let sign = |by: usize, from: usize, to: usize, body: &str| {
            let d = message_digest(&chain, from, to, body.as_bytes());
            lightchain_devnet::crypto::hex(&key(by).sign(&d))
        };
        let post = |from: Option<&str>, sig: Option<String>, body: &str| {
            let mut r = client.post(&url).body(body.to_string());
            if let Some(f) = from {
                r = r.header(FROM_HEADER, f);
            }
            if let Some(s) = sig {
                r = r.header(SIG_HEADER, s);
            }
            r.send().unwrap().status().as_u16()
        };
        let refused = t.stats.refused.load(Ordering::Relaxed);
        let height = api.views()[0].state.height;
        let status = r#"{"Status": 1}"#;
        assert_eq!(post(None, Some(sign(1, 1, 0, status)), status), 400);
        assert_eq!(post(Some("9"), Some(sign(1, 9, 0, status)), status), 400);
        assert_eq!(post(Some("1"), None, status), 401);
        assert_eq!(post(Some("1"), Some("zz".into()), status), 401);
        assert_eq!(post(Some("1"), Some(sign(2, 1, 0, status)), status), 401);
        assert_eq!(post(Some("1"), Some(sign(1, 1, 2, status)), status), 401);
        assert_eq!(
            post(Some("1"), Some(sign(1, 1, 0, "nonsense")), "nonsense"),
            400
        );
        let vote = r#"{"Vote": {"precommit": true}}"#;
        assert_eq!(post(Some("1"), Some(sign(1, 1, 0, vote)), vote), 400);
        assert_eq!(t.stats.refused.load(Ordering::Relaxed), refused + 8);
        // A well-formed status signed by its sender is taken (and harmless).
        assert_eq!(post(Some("1"), Some(sign(1, 1, 0, status)), status), 204);
        assert_eq!(api.views()[0].state.height, height);
    });
}
