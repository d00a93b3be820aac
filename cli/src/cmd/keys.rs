//! `lightchain keys`: account keys kept in files (0600) under the config folder, and the config
//! file's named profiles (`config.toml`) that the clients read.
//!
//! The config folder is `$LIGHTCHAIN_CONFIG_DIR`, else `$XDG_CONFIG_HOME/lightchain`, else
//! `~/.config/lightchain`. Keys are `keys/NAME.json` there.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use lightchain_devnet::crypto::{self, AccountKey};
use serde::{Deserialize, Serialize};

use crate::shell::{Human, Shell};

/// The config folder.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("LIGHTCHAIN_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("lightchain"));
    }
    let home = std::env::var_os("HOME")
        .context("no HOME: set LIGHTCHAIN_CONFIG_DIR to the folder for keys and config.toml")?;
    Ok(PathBuf::from(home).join(".config").join("lightchain"))
}

/// One profile of `config.toml`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The node's JSON-RPC URL.
    pub rpc: Option<String>,
    /// The node's RPC token.
    pub token: Option<String>,
    /// A stored key's name (`lightchain keys list`).
    pub key: Option<String>,
}

/// `config.toml`: `default_profile = "NAME"` and `[profiles.NAME]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Config {
    /// Reads `config.toml` (an absent file is an empty config).
    pub fn load() -> anyhow::Result<Config> {
        let path = config_dir()?.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The profile named (or the default one; none when neither is set).
    pub fn profile(&self, name: Option<&str>) -> anyhow::Result<Profile> {
        let Some(name) = name.or(self.default_profile.as_deref()) else {
            return Ok(Profile::default());
        };
        self.profiles.get(name).cloned().with_context(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            format!(
                "no profile \"{name}\" in config.toml (profiles: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    }
}

/// A stored key file.
#[derive(Debug, Deserialize, Serialize)]
struct KeyFile {
    name: String,
    address: String,
    public_key: String,
    secret_key: String,
}

fn keys_dir() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("keys"))
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    anyhow::ensure!(
        ok,
        "a key name is 1 to 64 letters, digits, '-' or '_' (got \"{name}\")"
    );
    Ok(())
}

fn key_path(name: &str) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    Ok(keys_dir()?.join(format!("{name}.json")))
}

/// Loads a stored key by name.
pub fn load_key(name: &str) -> anyhow::Result<AccountKey> {
    let path = key_path(name)?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no key \"{name}\" ({}): `lightchain keys list` shows the stored keys",
            path.display()
        )
    })?;
    let f: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("invalid key file {}", path.display()))?;
    parse_secret(&f.secret_key).with_context(|| format!("invalid key file {}", path.display()))
}

/// A 32-byte secret in hex (with or without `0x`).
pub fn parse_secret(hex: &str) -> anyhow::Result<AccountKey> {
    let hex = hex.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let b: [u8; 32] = crypto::unhex(hex)
        .and_then(|b| b.try_into().ok())
        .context("a private key is 64 hex digits")?;
    Ok(AccountKey::from_secret(b))
}

/// Writes a new key file (0600, in a 0700 folder); never replaces one.
fn store(name: &str, key: &AccountKey) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = key_path(name)?;
    let dir = keys_dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let f = KeyFile {
        name: name.to_string(),
        address: key.address().to_string(),
        public_key: crypto::hex(&key.public()),
        secret_key: key.secret_hex(),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("a key named \"{name}\" exists already ({})", path.display())
            }
            _ => anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
        })?;
    file.write_all(serde_json::to_string_pretty(&f)?.as_bytes())?;
    Ok(path)
}

/// Manage account keys: create, list, show, import.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain keys new alice                       # a fresh key, kept in a 0600 file
  lightchain keys list
  lightchain keys show alice                      # address and public key
  lightchain keys show alice --secret             # the private key too (asked for)
  lightchain keys import ci < secret.hex          # a key from stdin (never from the command line)
  lightchain deploy model.lcpkg --from alice      # sign with a stored key

Keys live in $LIGHTCHAIN_CONFIG_DIR/keys (default ~/.config/lightchain/keys). config.toml there
can hold named profiles that deploy, task and status read with --profile NAME:
  default_profile = \"testnet\"
  [profiles.testnet]
  rpc = \"http://10.0.0.5:8645\"
  token = \"...\"
  key = \"alice\"")]
pub struct KeysArgs {
    #[command(subcommand)]
    pub cmd: KeysCmd,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key.
    New { name: String },
    /// List the stored keys.
    List,
    /// Show a key's address and public key.
    Show {
        name: String,
        /// Print the private key too.
        #[arg(long)]
        secret: bool,
    },
    /// Store a private key (64 hex digits) read from a file or stdin.
    Import {
        name: String,
        /// Read the key from FILE instead of stdin.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct KeyReport {
    name: String,
    address: String,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    file: String,
}

impl Human for KeyReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "name        {}\naddress     {}\npublic key  {}\nfile        {}\n",
            self.name, self.address, self.public_key, self.file
        ));
        if let Some(s) = &self.secret_key {
            out.push_str(&format!("private key {s}\n"));
        }
    }
}

#[derive(Serialize)]
struct KeyList {
    keys: Vec<KeyReport>,
}

impl Human for KeyList {
    fn human(&self, out: &mut String) {
        if self.keys.is_empty() {
            out.push_str("no keys: `lightchain keys new NAME` creates one\n");
        }
        for k in &self.keys {
            out.push_str(&format!("{:<20} {}\n", k.name, k.address));
        }
    }
}

fn report(name: &str, key: &AccountKey, path: &Path, secret: bool) -> KeyReport {
    KeyReport {
        name: name.to_string(),
        address: key.address().to_string(),
        public_key: crypto::hex(&key.public()),
        secret_key: secret.then(|| key.secret_hex()),
        file: path.display().to_string(),
    }
}

impl KeysArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        match self.cmd {
            KeysCmd::New { name } => {
                let mut secret = [0u8; 32];
                rand_core::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut secret)
                    .map_err(|e| anyhow::anyhow!("no randomness from the system: {e}"))?;
                let key = AccountKey::from_secret(secret);
                let path = store(&name, &key)?;
                shell.emit(&report(&name, &key, &path, false))
            }
            KeysCmd::List => {
                let dir = keys_dir()?;
                let mut keys = Vec::new();
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    let mut names: Vec<String> = entries
                        .filter_map(|e| e.ok())
                        .filter_map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            n.strip_suffix(".json").map(str::to_string)
                        })
                        .collect();
                    names.sort();
                    for n in names {
                        if let Ok(k) = load_key(&n) {
                            keys.push(report(&n, &k, &key_path(&n)?, false));
                        }
                    }
                }
                shell.emit(&KeyList { keys })
            }
            KeysCmd::Show { name, secret } => {
                let key = load_key(&name)?;
                shell.emit(&report(&name, &key, &key_path(&name)?, secret))
            }
            KeysCmd::Import { name, file } => {
                let text = match &file {
                    Some(f) => std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?,
                    None => {
                        let mut s = String::new();
                        std::io::stdin().read_to_string(&mut s)?;
                        s
                    }
                };
                if text.trim().is_empty() {
                    bail!("no key given: pipe 64 hex digits to stdin, or use --file");
                }
                let key = parse_secret(&text)?;
                let path = store(&name, &key)?;
                shell.emit(&report(&name, &key, &path, false))
            }
        }
    }
}
