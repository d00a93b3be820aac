//! Mempool rules: a transaction behind a nonce gap waits without making blocks, is dropped
//! after the time limit, is replaced only at a higher gas price, and may not run too far
//! ahead; a transaction signed for another chain is refused.

use std::time::Duration;

use lightchain_devnet::chain::{SignedTx, TxBody, TxError, TxKind};
use lightchain_devnet::crypto::AccountKey;
use lightchain_devnet::mempool::MempoolError;
use lightchain_devnet::{DevnetApi, DevnetError, spawn};

use crate::{config, eventually};

fn transfer(api: &DevnetApi, key: &AccountKey, nonce: u64, price: u64) -> SignedTx {
    send(api, key, nonce, price, 5)
}

fn send(api: &DevnetApi, key: &AccountKey, nonce: u64, price: u64, amount: u128) -> SignedTx {
    TxBody {
        from: key.public(),
        nonce,
        gas_price: price,
        kind: TxKind::Transfer {
            to: AccountKey::from_secret([3; 32]).address(),
            amount,
        },
    }
    .sign(key, api.chain_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_nonce_waits_without_making_empty_blocks() {
    let mut cfg = config();
    cfg.mempool.future_ttl = Duration::from_secs(3);
    let (api, handle) = spawn(cfg).await;
    let key = handle.dev_accounts()[0].key();
    let a = key.address();
    tokio::task::block_in_place(|| {
        // Nonce 2 with 0 and 1 missing: taken, but nothing can apply.
        api.send_transaction(transfer(&api, &key, 2, 1)).unwrap();
        let h = api.status().height;
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(api.status().height, h, "a stuck transaction made blocks");
        assert_eq!(api.next_nonce(&a), 0);
        // The gap filled: all three apply.
        api.send_transaction(transfer(&api, &key, 0, 1)).unwrap();
        api.send_transaction(transfer(&api, &key, 1, 1)).unwrap();
        eventually("the three transfers", || api.balance(&a).nonce == 3);
        // Behind a gap past the time limit, a transaction is dropped (and never applies).
        let stuck = api.send_transaction(transfer(&api, &key, 4, 1)).unwrap();
        eventually("the stuck transaction in the mempools", || {
            api.views()
                .iter()
                .all(|v| v.mempool.iter().any(|t| t.hash == stuck))
        });
        eventually("the stuck transaction dropped", || {
            api.views().iter().all(|v| v.mempool.is_empty())
        });
        api.send_transaction(transfer(&api, &key, 3, 1)).unwrap();
        eventually("nonce 3", || api.balance(&a).nonce == 4);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(api.balance(&a).nonce, 4, "a dropped transaction applied");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacement_needs_a_higher_price_and_nonces_stay_near() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[1].key();
    tokio::task::block_in_place(|| {
        // Behind a gap, so that it stays pending while we replace it.
        let first = api.send_transaction(transfer(&api, &key, 1, 10)).unwrap();
        // The same transaction again is taken (idempotent); another at its price is not.
        assert_eq!(
            api.send_transaction(transfer(&api, &key, 1, 10)).unwrap(),
            first
        );
        let err = api
            .send_transaction(send(&api, &key, 1, 10, 6))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DevnetError::Mempool(lightchain_devnet::mempool::MempoolError::Underpriced {
                    nonce: 1,
                    price: 10,
                    needed: 11
                })
            ),
            "{err}"
        );
        let second = api.send_transaction(transfer(&api, &key, 1, 11)).unwrap();
        eventually("the replacement in the mempools", || {
            api.views().iter().all(|v| {
                v.mempool.iter().any(|t| t.hash == second)
                    && !v.mempool.iter().any(|t| t.hash == first)
            })
        });
        api.send_transaction(transfer(&api, &key, 0, 1)).unwrap();
        eventually("both applied", || api.balance(&key.address()).nonce == 2);
        // Too far ahead of the account's next nonce.
        let err = api
            .send_transaction(transfer(&api, &key, 2 + 17, 1))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DevnetError::Mempool(MempoolError::TooFarAhead { nonce: 19, .. })
            ),
            "{err}"
        );
        // Signed for another chain.
        let mut other = TxBody {
            from: key.public(),
            nonce: 2,
            gas_price: 1,
            kind: TxKind::Transfer {
                to: key.address(),
                amount: 1,
            },
        }
        .sign(&key, "another-chain");
        let err = api.send_transaction(other.clone()).unwrap_err();
        assert!(
            matches!(err, DevnetError::Refused(TxError::BadSignature)),
            "{err}"
        );
        other.body.nonce = 3;
        assert!(api.send_transaction(other).is_err());
    });
}
