//! Sealing a task's input for the validators: a random salt, the Poseidon commitment the
//! proof will carry, and the input encrypted (authenticated with the commitment) to every
//! validator's X25519 key. Only the ciphertext and the commitment go on chain.

use ff::PrimeField;
use lightchain_aivm::circuit::Visibility;

use crate::chain::runtime::public_inputs;
use crate::chain::state::ValidatorRecord;
use crate::chain::{SealedInput, TaskInput};
use crate::crypto;

/// Why an input cannot be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "this model proves with public inputs; package it with input_visibility = \"hashed\" to encrypt inputs"
    )]
    PublicModel,
    #[error(transparent)]
    Input(#[from] lightchain_aivm::AivmError),
}

/// Seals an input file's JSON for the validators.
pub fn seal_input(
    pkg: &lightchain_packager::Package,
    validators: &[ValidatorRecord],
    inputs: serde_json::Value,
) -> Result<TaskInput, SealError> {
    if pkg.info.input_visibility != Visibility::Hashed {
        return Err(SealError::PublicModel);
    }
    let q = public_inputs(pkg, &inputs)?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let salt = lightchain_aivm::proof::random_salt(&mut rng);
    let commitment = lightchain_aivm::circuit::input_commitment(&pkg.program, &q, salt).to_repr();
    let sealed = SealedInput {
        inputs,
        salt: salt.to_repr(),
    };
    Ok(seal_with(&sealed, commitment, validators))
}

/// Seals any input under any commitment (a client that lies about its commitment does this).
pub fn seal_with(
    sealed: &SealedInput,
    commitment: [u8; 32],
    validators: &[ValidatorRecord],
) -> TaskInput {
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let recipients: Vec<(usize, [u8; 32])> = validators
        .iter()
        .map(|v| (v.index, v.encryption_key))
        .collect();
    let plain = serde_json::to_vec(sealed).expect("serialisable");
    let (ciphertext, keys) = crypto::seal(&plain, &commitment, &recipients, &mut rng);
    TaskInput::Encrypted {
        commitment,
        ciphertext,
        keys,
    }
}
