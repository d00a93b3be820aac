//! Keys of the devnet: ed25519 accounts (transactions, executor results), X25519 keys for
//! encrypted task inputs, and deterministic dev keys derived from a seed.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::chain::Address;

/// A deterministic 32-byte secret for `purpose` and `index` (dev accounts, validator keys).
pub fn dev_secret(purpose: &str, index: usize) -> [u8; 32] {
    *blake3::hash(format!("lightchain devnet {purpose} {index}").as_bytes()).as_bytes()
}

/// An ed25519 account key.
#[derive(Clone)]
pub struct AccountKey(pub SigningKey);

impl AccountKey {
    pub fn from_secret(secret: [u8; 32]) -> AccountKey {
        AccountKey(SigningKey::from_bytes(&secret))
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn address(&self) -> Address {
        Address::of(&self.public())
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }

    pub fn secret_hex(&self) -> String {
        hex(&self.0.to_bytes())
    }
}

/// Verifies an ed25519 signature (strict).
pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

pub use lightchain_aivm::wire::{hex, unhex};

/// A content key wrapped for one validator: `chacha(X25519(ephemeral, validator), key)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub validator: usize,
    #[serde(with = "crate::chain::hex32")]
    pub ephemeral: [u8; 32],
    #[serde(with = "crate::chain::b64")]
    pub wrapped: Vec<u8>,
}

fn kdf(shared: &[u8; 32], context: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("lightchain devnet task input v2");
    h.update(shared);
    h.update(context);
    *h.finalize().as_bytes()
}

/// Encrypts `plaintext` under a fresh content key, authenticated with `aad` (the input
/// commitment: the ciphertext opens only together with it), and wraps that key for each
/// recipient's X25519 public key. Returns (ciphertext, wrapped keys).
pub fn seal(
    plaintext: &[u8],
    aad: &[u8],
    recipients: &[(usize, [u8; 32])],
    rng: &mut impl rand_core::Rng,
) -> (Vec<u8>, Vec<WrappedKey>) {
    let mut content = [0u8; 32];
    rng.fill_bytes(&mut content);
    let cipher = ChaCha20Poly1305::new(&Key::from(content));
    // A content key is used for exactly one message, so a zero nonce is safe.
    let ciphertext = cipher
        .encrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("in-memory encryption");
    let keys = recipients
        .iter()
        .map(|(validator, public)| {
            let mut eph = [0u8; 32];
            rng.fill_bytes(&mut eph);
            let eph = x25519_dalek::StaticSecret::from(eph);
            let eph_pub = x25519_dalek::PublicKey::from(&eph).to_bytes();
            let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
            let wrapped = ChaCha20Poly1305::new(&Key::from(kdf(shared.as_bytes(), &eph_pub)))
                .encrypt(&Nonce::from([0u8; 12]), &content[..])
                .expect("wrap");
            WrappedKey {
                validator: *validator,
                ephemeral: eph_pub,
                wrapped,
            }
        })
        .collect();
    (ciphertext, keys)
}

/// The X25519 secret a validator shares with one wrapped key.
pub fn shared_secret(key: &WrappedKey, secret: &x25519_dalek::StaticSecret) -> [u8; 32] {
    *secret
        .diffie_hellman(&x25519_dalek::PublicKey::from(key.ephemeral))
        .as_bytes()
}

/// The content key inside a wrapped key, given the shared secret: `None` when it does not
/// open (a wrong secret, or a wrap that is not one).
pub fn unwrap(key: &WrappedKey, shared: &[u8; 32]) -> Option<[u8; 32]> {
    ChaCha20Poly1305::new(&Key::from(kdf(shared, &key.ephemeral)))
        .decrypt(&Nonce::from([0u8; 12]), key.wrapped.as_slice())
        .ok()?
        .try_into()
        .ok()
}

/// Decrypts a ciphertext with its content key and associated data.
pub fn decrypt(ciphertext: &[u8], content: &[u8; 32], aad: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(&Key::from(*content))
        .decrypt(
            &Nonce::from([0u8; 12]),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// Opens a sealed message with a validator's X25519 secret.
pub fn open(
    ciphertext: &[u8],
    aad: &[u8],
    key: &WrappedKey,
    secret: &x25519_dalek::StaticSecret,
) -> Option<Vec<u8>> {
    let content = unwrap(key, &shared_secret(key, secret))?;
    decrypt(ciphertext, &content, aad)
}

/// A fresh X25519 secret from the operating system's randomness.
pub fn random_encryption_key() -> x25519_dalek::StaticSecret {
    let mut b = [0u8; 32];
    rand_core::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut b)
        .expect("the operating system's randomness");
    x25519_dalek::StaticSecret::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let secrets: Vec<x25519_dalek::StaticSecret> = (0..3)
            .map(|i| x25519_dalek::StaticSecret::from(dev_secret("x", i)))
            .collect();
        let recipients: Vec<(usize, [u8; 32])> = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (i, x25519_dalek::PublicKey::from(s).to_bytes()))
            .collect();
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let (ct, keys) = seal(b"secret input", b"commitment", &recipients, &mut rng);
        assert!(!ct.windows(6).any(|w| w == b"secret"));
        for (k, s) in keys.iter().zip(&secrets) {
            assert_eq!(open(&ct, b"commitment", k, s).unwrap(), b"secret input");
        }
        assert!(open(&ct, b"commitment", &keys[0], &secrets[1]).is_none());
        // The ciphertext is bound to its commitment.
        assert!(open(&ct, b"another one", &keys[0], &secrets[0]).is_none());
        // A revealed shared secret opens that one key, and a wrong one opens nothing.
        let shared = shared_secret(&keys[2], &secrets[2]);
        assert!(unwrap(&keys[2], &shared).is_some());
        assert!(unwrap(&keys[1], &shared).is_none());
        let a = AccountKey::from_secret(dev_secret("account", 0));
        let sig = a.sign(b"m");
        assert!(verify(&a.public(), b"m", &sig));
        assert!(!verify(&a.public(), b"n", &sig));
    }
}
