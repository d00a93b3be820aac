//! `lightchain profile`: measured cost curves of a package.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::proof::ParamsCache;
use lightchain_profiler::profile::ProfileEvent;
use lightchain_profiler::{Profile, ProfileOptions};

use crate::shell::{Human, Shell, thousands};

/// Measure a package's execution, witness, proving and verification times over many runs and
/// input sizes, and fit its cost curve (seconds per gas unit plus fixed costs).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain profile digits-0.1.0.lcpkg                          # sizes 1, 2, 4, 8 x the package's
  lightchain profile sentiment-0.1.0.lcpkg --sizes 16,32,64 --runs 20 --plot cost.svg --plot cost.png
  lightchain profile pkg.lcpkg --json > profile.json

The size axis is the model's last symbolic input dimension (batch, or sequence length). The
curve is written next to the package (PKG.profile.json), where `lightchain estimate` reads it.")]
pub struct ProfileArgs {
    /// The package.
    #[arg(value_name = "PKG.lcpkg")]
    pub package: PathBuf,
    /// Measured runs per size.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Sizes of the size axis (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Gas price for the fees shown.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u64,
    /// Write the chart (SVG or PNG by extension); may be given twice.
    #[arg(long, value_name = "FILE")]
    pub plot: Vec<PathBuf>,
    /// Where to write the profile (default: PKG.profile.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl Human for Profile {
    fn human(&self, out: &mut String) {
        let axis = self.axis.as_ref().map_or("size".to_string(), |a| {
            format!("{} ({}[{}])", a.dim_name, a.input, a.axis)
        });
        out.push_str(&format!(
            "profile  {} {} ({} inputs)\n",
            self.name, self.version, self.input_visibility
        ));
        out.push_str(&format!(
            "{:<10} {:>3} {:>10} {:>12} {:>10} {:>10} {:>17} {:>9} {:>9} {:>9} {:>8}\n",
            axis.split(' ').next().unwrap_or("size"),
            "k",
            "gas",
            "fee",
            "predicted",
            "median",
            "spread (min-max)",
            "error",
            "execute",
            "verify",
            "peak MiB"
        ));
        for s in &self.sizes {
            out.push_str(&format!(
                "{:<10} {:>3} {:>10} {:>12} {:>9.3}s {:>9.3}s {:>8.3}-{:<7.3}s {:>8.2}% {:>8.4}s {:>8.4}s {:>8}\n",
                s.size,
                s.k,
                thousands(s.gas),
                thousands(s.fee),
                s.predicted_seconds,
                s.median_seconds,
                s.min_seconds,
                s.max_seconds,
                s.prediction_error * 100.0,
                s.median_execute_seconds,
                s.median_verify_seconds,
                s.peak_mib.map_or("-".into(), |m| format!("{m:.0}"))
            ));
        }
        for (size, why) in &self.skipped {
            out.push_str(&format!("skipped {size}: {why}\n"));
        }
        let c = &self.curve;
        out.push_str(&format!(
            "curve    proving seconds = {:.4} + {:.4e} x gas (R² {:.3}, {} runs, gas schedule v{})\n",
            c.fixed_seconds, c.seconds_per_gas, c.r2, c.points, c.schedule
        ));
    }
}

impl ProfileArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let pkg = lightchain_packager::load_file(&self.package)
            .with_context(|| format!("failed to load package {}", self.package.display()))?;
        let opts = ProfileOptions {
            runs: self.runs,
            sizes: self.sizes.clone(),
            gas_price: self.gas_price,
            seed: 1,
        };
        let pb = shell.progress(0, "profile");
        let bar = pb.clone();
        let mut size_now = 0usize;
        let profile =
            lightchain_profiler::profile(&pkg, &ParamsCache::from_env(), &opts, &mut |e| match e {
                ProfileEvent::Size { size, k } => {
                    size_now = size;
                    bar.set_message(format!("size {size} (k={k})"));
                    bar.set_length(opts.runs as u64 + 1);
                    bar.set_position(0);
                }
                ProfileEvent::Run { run, .. } => {
                    bar.set_position(run as u64);
                    let _ = size_now;
                }
            })
            .context("profiling failed")?;
        pb.finish_and_clear();
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| Profile::sidecar(&self.package));
        std::fs::write(&out, serde_json::to_string_pretty(&profile)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
        for p in &self.plot {
            lightchain_profiler::plot::plot(&profile, p)
                .with_context(|| format!("cannot draw {}", p.display()))?;
        }
        shell.emit(&profile)
    }
}
