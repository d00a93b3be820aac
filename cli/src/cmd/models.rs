//! `lightchain models`: the models deployed on a node, by name and version.

use clap::Args;
use lightchain_devnet::rpc::types::ListedModel;
use serde::Serialize;
use serde_json::json;

use crate::cmd::client::RpcArgs;
use crate::shell::{Human, Shell, thousands};

/// List the deployed models: name, versions, owner, k and gas per task.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain models
  lightchain models --rpc http://10.0.0.5:26650 --json

A name belongs to the account that first deployed it; only that account deploys new versions,
each above the last. Tasks name a model by id, NAME@VERSION or NAME@latest.")]
pub struct ModelsArgs {
    #[command(flatten)]
    pub conn: RpcArgs,
}

#[derive(Serialize)]
struct Models {
    models: Vec<ListedModel>,
}

impl Human for Models {
    fn human(&self, out: &mut String) {
        if self.models.is_empty() {
            out.push_str("no models deployed\n");
            return;
        }
        out.push_str(&format!(
            "{:<16} {:<10} {:<42} {:>3} {:>10} {:>7}  {:<7} {}\n",
            "name", "version", "owner", "k", "gas/task", "royalty", "inputs", "model id"
        ));
        for m in &self.models {
            let r = &m.model;
            out.push_str(&format!(
                "{:<16} {:<10} {:<42} {:>3} {:>10} {:>7}  {:<7} {}{}{}\n",
                r.name,
                r.version,
                m.owner.to_string(),
                r.k,
                thousands(r.gas),
                format!("{}%", r.royalty_bps as f64 / 100.0),
                format!("{:?}", r.input_visibility).to_lowercase(),
                &r.model_id[..16.min(r.model_id.len())],
                if m.latest { "  (latest)" } else { "" },
                if r.mode.is_proven() {
                    ""
                } else {
                    "  (attested)"
                }
            ));
        }
    }
}

impl ModelsArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let models: Vec<ListedModel> = self.conn.rpc()?.call_as("lc_listModels", json!([]))?;
        shell.emit(&Models { models })
    }
}
