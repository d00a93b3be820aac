//! BFT consensus with Malachite (Informal Systems' Tendermint in Rust, `informalsystems-
//! malachitebft-core-consensus` 0.5): its sans-IO core runs in every validator and this module is
//! the host that answers its effects (signing, broadcasting, timers, building and checking
//! blocks, committing). [`context`] is the devnet's `Context`; [`node`] the host and event loop;
//! [`wal`] each validator's write-ahead log (Malachite's `informalsystems-malachitebft-wal`).

pub mod context;
pub mod node;
pub mod wal;
