//! Every validator message survives the wire with its signatures intact; bad bytes are refused.

use malachitebft_core_types::SigningProvider;

use super::*;
use crate::chain::{Address as Account, Claim, CommitSig, TxBody, TxKind};
use crate::consensus::context::{Ed25519Signer, Proposal, Vote};
use crate::crypto::{self, AccountKey};

fn signer() -> (Ed25519Signer, malachitebft_signing_ed25519::PublicKey) {
    let key = malachitebft_signing_ed25519::PrivateKey::from(crypto::dev_secret("wire", 0));
    let public = key.public_key();
    (Ed25519Signer::new(key), public)
}

fn block(height: u64) -> Block {
    let key = AccountKey::from_secret(crypto::dev_secret("account", 0));
    let tx = TxBody {
        from: key.public(),
        nonce: 3,
        gas_price: 1,
        kind: TxKind::Transfer {
            to: Account([9; 20]),
            amount: 10u128.pow(20),
        },
    }
    .sign(&key, "lightchain-devnet");
    Block {
        height,
        parent: [1; 32],
        timestamp_ms: 1_700_000_000_000,
        proposer: 2,
        txs: vec![tx],
        results: vec![],
        evidence: vec![],
        reassign: vec!["ab".repeat(32)],
        state_root: [7; 32],
    }
}

fn vote(precommit: bool, value: Option<[u8; 32]>) -> Vote {
    Vote {
        vote_type: if precommit {
            VoteType::Precommit
        } else {
            VoteType::Prevote
        },
        height: Height(5),
        round: malachitebft_core_types::Round::new(2),
        value: value.map_or(NilOrVal::Nil, |h| NilOrVal::Val(BlockHash(h))),
        validator: Address([4; 20]),
        extension: None,
    }
}

/// Encodes, decodes, and encodes again: the same bytes (nothing lost or added).
fn round_trip(msg: &NetMsg) -> NetMsg {
    let bytes = encode(msg).expect("travels");
    let back = decode(&bytes).unwrap();
    assert_eq!(encode(&back).unwrap(), bytes, "{msg:?}");
    back
}

#[test]
fn votes_and_proposals_keep_their_signatures() {
    let (s, pk) = signer();
    for v in [vote(false, Some([3; 32])), vote(true, None)] {
        let signed = s.sign_vote(v.clone());
        for msg in [
            NetMsg::Consensus(SignedConsensusMsg::Vote(signed.clone())),
            NetMsg::Liveness(LivenessMsg::Vote(signed.clone())),
        ] {
            let back = match round_trip(&msg) {
                NetMsg::Consensus(SignedConsensusMsg::Vote(b))
                | NetMsg::Liveness(LivenessMsg::Vote(b)) => b,
                other => panic!("{other:?}"),
            };
            assert_eq!(back.message, v);
            assert!(s.verify_signed_vote(&back.message, &back.signature, &pk));
        }
    }
    let p = Proposal {
        height: Height(5),
        round: malachitebft_core_types::Round::new(1),
        value: Value::new(block(5)),
        pol_round: malachitebft_core_types::Round::Nil,
        proposer: Address([4; 20]),
    };
    let signed = s.sign_proposal(p.clone());
    let NetMsg::Consensus(SignedConsensusMsg::Proposal(back)) =
        round_trip(&NetMsg::Consensus(SignedConsensusMsg::Proposal(signed)))
    else {
        panic!("not a proposal")
    };
    assert_eq!(back.message, p);
    assert_eq!(back.message.value.hash(), p.value.hash());
    assert!(s.verify_signed_proposal(&back.message, &back.signature, &pk));
    // A tampered block no longer matches the proposer's signature.
    let mut bytes = String::from_utf8(
        encode(&NetMsg::Consensus(SignedConsensusMsg::Proposal(
            s.sign_proposal(p.clone()),
        )))
        .unwrap(),
    )
    .unwrap();
    bytes = bytes.replace("\"proposer\":2", "\"proposer\":3");
    let NetMsg::Consensus(SignedConsensusMsg::Proposal(forged)) = decode(bytes.as_bytes()).unwrap()
    else {
        panic!()
    };
    assert!(!s.verify_signed_proposal(&forged.message, &forged.signature, &pk));
}

#[test]
fn certificates_decided_blocks_and_sync_round_trip() {
    let (s, _) = signer();
    let sig = |v: Vote| s.sign_vote(v).signature;
    let polka = PolkaCertificate {
        height: Height(5),
        round: malachitebft_core_types::Round::new(2),
        value_id: BlockHash([3; 32]),
        polka_signatures: vec![PolkaSignature::new(
            Address([4; 20]),
            sig(vote(false, Some([3; 32]))),
        )],
    };
    let NetMsg::Liveness(LivenessMsg::PolkaCertificate(back)) = round_trip(&NetMsg::Liveness(
        LivenessMsg::PolkaCertificate(polka.clone()),
    )) else {
        panic!()
    };
    assert_eq!(back, polka);
    for precommit in [false, true] {
        let cert = RoundCertificate {
            height: Height(5),
            round: malachitebft_core_types::Round::new(2),
            cert_type: if precommit {
                RoundCertificateType::Precommit
            } else {
                RoundCertificateType::Skip
            },
            round_signatures: vec![
                RoundSignature::new(
                    VoteType::Prevote,
                    NilOrVal::Nil,
                    Address([4; 20]),
                    sig(vote(false, None)),
                ),
                RoundSignature::new(
                    VoteType::Precommit,
                    NilOrVal::Val(BlockHash([3; 32])),
                    Address([5; 20]),
                    sig(vote(true, Some([3; 32]))),
                ),
            ],
        };
        let NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(back)) = round_trip(
            &NetMsg::Liveness(LivenessMsg::SkipRoundCertificate(cert.clone())),
        ) else {
            panic!()
        };
        assert_eq!(back, cert);
    }
    let value = Value::new(block(6));
    let cert = CommitCertificate {
        height: Height(6),
        round: malachitebft_core_types::Round::new(0),
        value_id: value.hash(),
        commit_signatures: vec![CommitSignature::new(
            Address([4; 20]),
            sig(vote(true, Some(value.hash().0))),
        )],
    };
    let NetMsg::Decided(v, c) = round_trip(&NetMsg::Decided(value.clone(), cert.clone())) else {
        panic!()
    };
    assert_eq!((v.hash(), *v.block == *value.block), (value.hash(), true));
    assert_eq!(c, cert);
    let committed = CommittedBlock {
        hash: value.hash().0,
        block: block(6),
        round: 0,
        signers: vec![1],
        signatures: vec![CommitSig {
            validator: 1,
            signature: vec![9; 64],
        }],
    };
    for msg in [
        NetMsg::Status(41),
        NetMsg::SyncRequest { from: 3, to: 9 },
        NetMsg::SyncResponse(vec![committed.clone()]),
        NetMsg::Tx(block(1).txs[0].clone()),
    ] {
        let back = round_trip(&msg);
        assert_eq!(format!("{back:?}"), format!("{msg:?}"));
    }
}

#[test]
fn results_and_segments_round_trip_and_controls_stay_home() {
    let r = TaskResult {
        task_id: "cd".repeat(32),
        attempt: 1,
        executor: 2,
        claim: Claim::Proof {
            outputs: vec![vec![-3, 4, i64::MIN, i64::MAX]],
            proof: vec![1, 2, 3],
            state: Some(crate::chain::NewState {
                values: vec![-1, 7],
                salt: [9; 32],
            }),
        },
        signature: vec![5; 64],
    };
    let NetMsg::Result(back) = round_trip(&NetMsg::Result(r.clone())) else {
        panic!()
    };
    assert_eq!(back, r);
    let mut witness = Witness::new(vec![vec![-5, 1 << 40]], Fp::from(77u64));
    witness.links = vec![Fp::from(1u64), -Fp::from(2u64)];
    let job = SegmentJob {
        index: 3,
        witness,
        instance: vec![Fp::from(9u64), -Fp::from(1u64)],
    };
    let msg = NetMsg::SegmentJob {
        task_id: "ef".repeat(32),
        attempt: 0,
        job: Arc::new(job.clone()),
    };
    let NetMsg::SegmentJob { job: back, .. } = round_trip(&msg) else {
        panic!()
    };
    assert_eq!(back.index, 3);
    assert_eq!(back.witness.inputs, job.witness.inputs);
    assert_eq!(back.witness.salt, job.witness.salt);
    assert_eq!(back.witness.links, job.witness.links);
    assert_eq!(back.instance, job.instance);
    let reply = SegmentReply {
        task_id: "ef".repeat(32),
        attempt: 0,
        index: 3,
        proof: (11, vec![8; 100]),
    };
    let NetMsg::SegmentProof(back) = round_trip(&NetMsg::SegmentProof(reply.clone())) else {
        panic!()
    };
    assert_eq!((back.index, back.proof), (reply.index, reply.proof));
    for local in [
        NetMsg::Mine,
        NetMsg::Revert(3),
        NetMsg::Keep(3),
        NetMsg::Stop,
    ] {
        assert!(encode(&local).is_none());
    }
}

#[test]
fn bad_bytes_are_refused() {
    let (s, _) = signer();
    let good = encode(&NetMsg::Consensus(SignedConsensusMsg::Vote(
        s.sign_vote(vote(true, None)),
    )))
    .unwrap();
    let text = String::from_utf8(good).unwrap();
    for bad in [
        b"".to_vec(),
        b"{".to_vec(),
        b"{\"Nope\": 1}".to_vec(),
        format!("{text} trailing").into_bytes(),
    ] {
        assert!(
            matches!(decode(&bad), Err(WireError::Malformed(_))),
            "{bad:?}"
        );
    }
    // A short signature.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut short = v.clone();
    short["Vote"]["signature"] = serde_json::json!([1, 2, 3]);
    assert!(matches!(
        decode(short.to_string().as_bytes()),
        Err(WireError::Signature(3))
    ));
    // A field element out of range (all ones is above the Pallas modulus).
    let mut job = serde_json::to_value(Wire::SegmentJob {
        task_id: String::new(),
        attempt: 0,
        job: JobForm {
            index: 0,
            inputs: vec![],
            salt: [0; 32],
            links: vec![],
            instance: vec![],
        },
    })
    .unwrap();
    job["SegmentJob"]["job"]["salt"] = serde_json::json!([255u8; 32].to_vec());
    assert!(matches!(
        decode(job.to_string().as_bytes()),
        Err(WireError::Field)
    ));
}
