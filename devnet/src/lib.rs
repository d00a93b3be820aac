//! `lightchain-devnet`: a multi-validator AIVM chain in one process, with full proving.
//!
//! [`spawn`] starts N validators (default 4), each with its own keys, chain state, mempool,
//! write-ahead log and AIVM caches, connected by a simulated in-process network ([`net`]) that
//! can crash, partition and delay them, and agreeing through Malachite's Tendermint core
//! ([`consensus`]). Tasks are executed and proven by a deterministically chosen executor (a
//! model proven in segments has its segments proven by the other validators too, each checked
//! by the executor: [`executor`]); every other validator verifies the proof before voting for
//! the block that carries it ([`chain::exec`]). A JSON-RPC 2.0 server ([`rpc`]) serves the chain on loopback; [`store`]
//! persists it with `--state DIR`.
//!
//! The rooms: [`config`] and [`error`]; [`handle`] starts the validators and holds them;
//! [`api`] is what the RPC calls; [`chain`] is the pure state transition (its [`chain::encode`]
//! is what gets hashed and signed); [`validator`], [`executor`] and [`consensus`] are one
//! validator;
//! [`mempool`], [`seal`] (encrypted inputs), [`checker`] (uploaded packages, out of process),
//! [`clock`] and [`lock`] serve them. [`wire`] encodes the validators' messages and
//! [`transport`] carries them over HTTP (`DevnetConfig::with_http_transport`: each validator
//! its own loopback listener) instead of in-process channels.
//!
//! ```no_run
//! # async fn demo() {
//! let (api, handle) = lightchain_devnet::spawn(lightchain_devnet::DevnetConfig::test()).await;
//! println!("{} at height {}", handle.rpc_url().unwrap(), api.status().height);
//! # }
//! ```

pub mod api;
pub mod chain;
pub mod chaos;
pub mod checker;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod error;
pub mod executor;
pub mod handle;
pub mod home;
pub mod lock;
pub mod mempool;
pub mod net;
pub mod rpc;
pub mod seal;
pub mod store;
pub mod transport;
pub mod validator;
pub mod wire;

pub use api::{DevAccount, DevnetApi, Status};
pub use config::DevnetConfig;
pub use error::{DevnetError, Result};
pub use handle::{DevnetHandle, spawn, try_spawn};
pub use seal::seal_input;
