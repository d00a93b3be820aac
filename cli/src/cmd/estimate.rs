//! `lightchain estimate`: the gas, fee, time and memory of a task, before running it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_profiler::{Estimate, Profile};

use crate::cmd::model::read_inputs;
use crate::shell::{Human, Shell, thousands};

/// Quote a task without proving it (what a node's lc_estimateGas answers).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain estimate digits-0.1.0.lcpkg --input tests/seven.json
  lightchain estimate pkg.lcpkg -i input.json --gas-price 20 --json

The predicted time comes from the package's profile (PKG.profile.json, see `lightchain profile`).")]
pub struct EstimateArgs {
    /// The package.
    #[arg(value_name = "PKG.lcpkg")]
    pub package: PathBuf,
    /// The task's input file.
    #[arg(long, short = 'i', value_name = "INPUT.json")]
    pub input: PathBuf,
    /// Gas price.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u64,
}

impl Human for Estimate {
    fn human(&self, out: &mut String) {
        let b = &self.breakdown;
        out.push_str(&format!("model id   {}\n", self.model_id));
        out.push_str(&format!(
            "gas        {} (prove {}, execute {}, io {}, verify {}, base; schedule v{})\n",
            thousands(self.gas),
            thousands(b.prove_gas),
            thousands(b.exec_gas),
            thousands(b.io_gas),
            thousands(b.verify_gas),
            b.schedule
        ));
        out.push_str(&format!(
            "fee        {} at gas price {}\n",
            thousands(self.fee),
            self.gas_price
        ));
        match self.predicted_seconds {
            Some(s) => out.push_str(&format!(
                "time       {s:.3} s to prove (from the package's profile)\n"
            )),
            None => {
                out.push_str("time       unknown: run `lightchain profile` on the package first\n")
            }
        }
        if self.memory_mb < lightchain_aivm::gas::memory_estimate_mb(b.k) {
            out.push_str(&format!(
                "memory     about {} MB, proven in segments (k = {} in one circuit)\n",
                self.memory_mb, b.k
            ));
        } else {
            out.push_str(&format!(
                "memory     about {} MB (k = {})\n",
                self.memory_mb, b.k
            ));
        }
    }
}

impl EstimateArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let pkg = lightchain_packager::load_file(&self.package)
            .with_context(|| format!("failed to load package {}", self.package.display()))?;
        let inputs = read_inputs(&pkg.model, &self.input)?;
        let profile = Profile::read_sidecar(&self.package, &pkg.info.model_id);
        let e = lightchain_profiler::estimate(
            &pkg,
            &inputs,
            self.gas_price,
            profile.as_ref().map(|p| &p.curve),
        )
        .context("cannot quote this task")?;
        shell.emit(&e)
    }
}
