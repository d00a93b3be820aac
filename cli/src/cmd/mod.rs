//! One module per command.

pub mod bench;
pub mod client;
pub mod dashboard;
pub mod devnet;
pub mod estimate;
pub mod gas_snapshot;
pub mod init;
pub mod inspect;
pub mod keys;
pub mod model;
pub mod models;
pub mod node;
pub mod package;
pub mod profile;
pub mod prove;
pub mod run;
pub mod schedule;
pub mod state;
pub mod test;
pub mod verify;
