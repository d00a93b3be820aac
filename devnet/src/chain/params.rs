//! Chain parameters every validator shares, and the id of a deployed model.

use lightchain_aivm::circuit::Visibility;
use lightchain_packager::manifest::ProvingMode;

use crate::crypto;

/// Chain parameters that every validator shares.
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// Gas of a transfer or deployment (paid to the block's proposer).
    pub base_gas: u64,
    /// Gas per byte of a deployed package.
    pub deploy_gas_per_byte: u64,
    /// A fixed time an executor has for a task (`--task-timeout`); by default the time scales
    /// with the model's gas ([`ChainParams::task_timeout`]).
    pub task_timeout_ms: Option<u64>,
    /// The fixed part of a task's time: loading the package, deriving keys, parameters.
    pub timeout_base_ms: u64,
    /// Time per million gas: gas is calibrated to about 1 µs of proving per unit, so 10 s
    /// per million leaves a tenfold margin for key derivation and a loaded machine.
    pub timeout_ms_per_mgas: u64,
    /// Share of an executor's stake taken per offence, in basis points.
    pub slash_bps: u32,
    /// Blocks a penalised executor stays jailed before it may unjail.
    pub jail_blocks: u64,
    /// Stake per unit of voting power.
    pub power_unit: u128,
    /// Largest accepted clock skew of a block timestamp.
    pub max_skew_ms: u64,
    /// A new version of a deployed name waits until validators holding more than 2/3 of the
    /// stake approve it (`--approve-versions`); until then `NAME@latest` skips it and tasks for
    /// it are refused.
    pub approve_versions: bool,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            base_gas: 21_000,
            deploy_gas_per_byte: 16,
            task_timeout_ms: None,
            timeout_base_ms: 30_000,
            timeout_ms_per_mgas: 10_000,
            slash_bps: 1_000,
            jail_blocks: 20,
            power_unit: 10u128.pow(18),
            max_skew_ms: 5_000,
            approve_versions: false,
        }
    }
}

impl ChainParams {
    /// How long an executor has for one task of a model with `gas` gas.
    pub fn task_timeout(&self, gas: u64) -> u64 {
        self.task_timeout_ms.unwrap_or_else(|| {
            self.timeout_base_ms + gas.saturating_mul(self.timeout_ms_per_mgas) / 1_000_000
        })
    }

    /// A validator's voting power: its stake in units of [`ChainParams::power_unit`] (at
    /// least 1 while it has stake, so a slashed validator keeps a voice proportional to it).
    pub fn voting_power(&self, stake: u128) -> u64 {
        if stake == 0 {
            0
        } else {
            (stake / self.power_unit).clamp(1, u64::MAX as u128) as u64
        }
    }
}

/// The id of a deployed model: its program and its input visibility, so that the same
/// program deployed with public and with hashed inputs are two models.
pub fn deployment_id(program_id: &str, visibility: Visibility) -> String {
    deployment_id_for(program_id, visibility, ProvingMode::Proven)
}

/// The id of a deployment in a proving mode: an attested deployment of a program is another
/// model than its proven one (its results mean something else).
pub fn deployment_id_for(program_id: &str, visibility: Visibility, mode: ProvingMode) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"lightchain-devnet model v1\n");
    h.update(program_id.as_bytes());
    h.update(match visibility {
        Visibility::Public => b"/public",
        Visibility::Hashed => b"/hashed",
    });
    if mode == ProvingMode::Attested {
        h.update(b"/attested");
    }
    crypto::hex(h.finalize().as_bytes())
}
