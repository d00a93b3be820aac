//! `lightchain gas-snapshot`: the gas of every test vector, written or checked (like forge's).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::proof::ParamsCache;
use serde::Serialize;

use crate::shell::{Human, Shell};

/// Write `.gas-snapshot` with every test vector's gas, or check it (`--check`) in CI.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain gas-snapshot            # writes .gas-snapshot
  lightchain gas-snapshot --check    # fails when the gas of a test vector changed")]
pub struct GasSnapshotArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Compare with the existing snapshot instead of writing it; non-zero exit on a difference.
    #[arg(long)]
    pub check: bool,
    /// The snapshot file (default: DIR/.gas-snapshot).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    file: String,
    checked: bool,
    entries: Vec<(String, u64)>,
    changes: Vec<String>,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        if self.checked && self.changes.is_empty() {
            out.push_str(&format!(
                "{}: {} entries unchanged\n",
                self.file,
                self.entries.len()
            ));
        } else if self.checked {
            for c in &self.changes {
                out.push_str(&format!("{c}\n"));
            }
        } else {
            out.push_str(&format!(
                "wrote {} ({} entries)\n",
                self.file,
                self.entries.len()
            ));
        }
    }
}

fn render(entries: &[(String, u64)]) -> String {
    entries
        .iter()
        .map(|(n, g)| format!("{n} (gas: {g})\n"))
        .collect()
}

fn parse(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.rsplit_once(" (gas: ")?;
            Some((name.to_string(), rest.strip_suffix(')')?.parse().ok()?))
        })
        .collect()
}

impl GasSnapshotArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let (_, pkg) =
            lightchain_packager::build(&self.dir, &ParamsCache::from_env(), false, &mut |_| {})
                .with_context(|| format!("failed to package {}", self.dir.display()))?;
        // Gas depends on the program and the input shape, not on values: every test vector of a
        // package costs the same, and the snapshot catches any change of model or schedule.
        let entries: Vec<(String, u64)> = pkg
            .manifest
            .tests
            .iter()
            .map(|t| (format!("{}::{}", pkg.info.name, t.name), pkg.gas.total))
            .collect();
        let file = self
            .file
            .clone()
            .unwrap_or_else(|| self.dir.join(".gas-snapshot"));
        let mut changes = Vec::new();
        if self.check {
            let old = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "cannot read {} (write it first without --check)",
                    file.display()
                )
            })?;
            let old = parse(&old);
            for (n, g) in &entries {
                match old.iter().find(|(o, _)| o == n) {
                    None => changes.push(format!("new      {n}: {g}")),
                    Some((_, og)) if og != g => {
                        let d = *g as i128 - *og as i128;
                        changes.push(format!(
                            "changed  {n}: {og} -> {g} ({d:+}, {:+.2}%)",
                            d as f64 * 100.0 / *og as f64
                        ));
                    }
                    _ => {}
                }
            }
            for (o, og) in &old {
                if !entries.iter().any(|(n, _)| n == o) {
                    changes.push(format!("removed  {o}: {og}"));
                }
            }
        } else {
            std::fs::write(&file, render(&entries))
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        let failed = !changes.is_empty();
        shell.emit(&Report {
            file: file.display().to_string(),
            checked: self.check,
            entries,
            changes,
        })?;
        anyhow::ensure!(
            !failed,
            "gas changed against {}",
            self.dir.join(".gas-snapshot").display()
        );
        Ok(())
    }
}
