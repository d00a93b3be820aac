//! Verifying keys stored on disk: a second derivation of a circuit rebuilds the very key the
//! first computed (same pinned form, same transcript representative) and verifies the same
//! proofs; a stored file that is not exactly what a derivation wrote is never used.

use std::path::PathBuf;
use std::sync::Arc;

use lightchain_aivm::Program;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{KeySource, Keys, ParamsCache};

use crate::proving::{cache, program};

/// A parameters cache of its own (the shared test cache's parameters copied in), so that its
/// `vk/` folder holds only this test's keys.
fn own_cache(k: u32) -> (tempfile::TempDir, ParamsCache) {
    let shared = cache();
    shared.get(k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let own = ParamsCache {
        dir: dir.path().to_path_buf(),
    };
    std::fs::copy(shared.path(k), own.path(k)).unwrap();
    (dir, own)
}

fn stored_keys(c: &ParamsCache) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(c.dir.join("vk"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn verifier(p: &Arc<Program>, vis: Visibility, c: &ParamsCache) -> Keys {
    Keys::derive(p.clone(), vis, c, false).unwrap()
}

fn same_key(a: &Keys, b: &Keys) {
    assert_eq!(a.vk.transcript_repr(), b.vk.transcript_repr());
    assert_eq!(
        format!("{:?}", a.vk.pinned()),
        format!("{:?}", b.vk.pinned())
    );
}

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

#[test]
fn a_second_derivation_rebuilds_the_stored_key_and_verifies_the_same_proofs() {
    let (p, q) = program("ezkl/1l_sigmoid");
    let prover = Keys::derive(p.clone(), Visibility::Public, &cache(), true).unwrap();
    let proof = prover.prove(&q, [3; 32], &mut rng()).unwrap();
    let (_dir, c) = own_cache(prover.k);

    let first = verifier(&p, Visibility::Public, &c);
    assert_eq!(first.vk_source, KeySource::Derived);
    assert_eq!(stored_keys(&c).len(), 1, "one key stored");
    let second = verifier(&p, Visibility::Public, &c);
    assert_eq!(second.vk_source, KeySource::Cached);
    same_key(&first, &second);
    same_key(&prover, &second);

    second.verify(&proof).unwrap();
    let mut bad = proof.clone();
    let n = bad.proof.len();
    bad.proof[n / 2] ^= 1;
    assert!(second.verify(&bad).is_err(), "a flipped byte verified");
    let mut wrong = proof.clone();
    wrong.outputs[0][0] += 1;
    assert!(second.verify(&wrong).is_err(), "another output verified");

    // Another circuit (the same program with hashed inputs) has its own key and file.
    let hashed = verifier(&p, Visibility::Hashed, &c);
    assert_eq!(hashed.vk_source, KeySource::Derived);
    assert_ne!(hashed.vk.transcript_repr(), second.vk.transcript_repr());
    assert_eq!(stored_keys(&c).len(), 2);
    assert!(
        hashed.verify(&proof).is_err(),
        "a public proof verified as hashed"
    );
}

/// Every way a stored file can differ from what the derivation wrote: the key is derived
/// again (equal to the honest one) and the file replaced, so the next derivation reads it.
#[test]
fn a_stored_key_that_is_not_what_was_written_is_derived_again() {
    let (p, _) = program("ezkl/1l_mlp");
    let (_dir, c) = own_cache(verifier(&p, Visibility::Public, &cache()).k);
    let honest = verifier(&p, Visibility::Public, &c);
    let file = stored_keys(&c).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    // The layout: 8 magic, 64 fingerprint, 32 representative, 2 counts, then 32-byte points.
    let points = 8 + 64 + 32 + 8;
    assert_eq!((good.len() - points) % 32, 0);
    // The first fixed commitment and the last permutation commitment (never equal).
    let swap = |b: &mut Vec<u8>| {
        let (a, z) = (points, b.len() - 32);
        let first: Vec<u8> = b[a..a + 32].to_vec();
        b.copy_within(z..z + 32, a);
        b[z..z + 32].copy_from_slice(&first);
    };
    let tampered: Vec<(&str, Vec<u8>)> = vec![
        // Two commitments swapped: valid points, right counts, the old representative. Only
        // the representative check refuses it.
        ("swapped commitments", {
            let mut b = good.clone();
            swap(&mut b);
            b
        }),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("one byte longer", [good.clone(), vec![0]].concat()),
        ("another format", {
            let mut b = good.clone();
            b[7] ^= 1;
            b
        }),
        ("another fingerprint", {
            let mut b = good.clone();
            b[8] ^= 1;
            b
        }),
        ("another representative", {
            let mut b = good.clone();
            b[72] ^= 1;
            b
        }),
        ("another count", {
            let mut b = good.clone();
            b[104] += 1;
            b
        }),
        ("a point off the curve", {
            let mut b = good.clone();
            b[points..points + 32].fill(0xff);
            b
        }),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in tampered {
        assert_ne!(bytes, good, "{what}");
        std::fs::write(&file, &bytes).unwrap();
        let k = verifier(&p, Visibility::Public, &c);
        assert_eq!(
            k.vk_source,
            KeySource::Derived,
            "{what}: the stored key was used"
        );
        same_key(&honest, &k);
        assert_eq!(std::fs::read(&file).unwrap(), good, "{what}: not replaced");
        assert_eq!(
            verifier(&p, Visibility::Public, &c).vk_source,
            KeySource::Cached,
            "{what}: the replaced file is not read"
        );
    }
}
