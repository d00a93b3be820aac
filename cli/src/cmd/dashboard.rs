//! `lightchain dashboard`: the terminal dashboard on any node.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::cmd::client::RpcArgs;
use crate::dashboard::{Options, run};
use crate::shell::Shell;

/// Watch a node in the terminal: validators, blocks, tasks, models and charts, live.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain dashboard                                  # the devnet on http://127.0.0.1:8645
  lightchain dashboard --rpc http://10.0.0.5:26650 --token $TOKEN
  lightchain devnet --dashboard                         # a devnet and its dashboard in one terminal

Keys: tab / arrows move, enter shows details, / filters tasks, p pauses, ? lists every key,
q quits. On a devnet, k kills, r revives, x partitions and b makes Byzantine the selected
validator, and s submits a task to the selected model. Colours follow NO_COLOR.")]
pub struct DashboardArgs {
    #[command(flatten)]
    pub conn: RpcArgs,
    /// The input file `s` submits (default: zeros in the model's input shapes).
    #[arg(long, short, value_name = "INPUT.json")]
    pub input: Option<PathBuf>,
}

/// Reads an input file for `s`.
pub fn read_input(path: Option<&PathBuf>) -> anyhow::Result<Option<serde_json::Value>> {
    path.map(|p| {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))
    })
    .transpose()
}

impl DashboardArgs {
    pub fn run(self, _shell: &Shell) -> anyhow::Result<()> {
        let (url, token) = self.conn.url_and_token()?;
        run(Options {
            title: "lightchain dashboard".into(),
            url,
            token,
            input: read_input(self.input.as_ref())?,
        })
    }
}
