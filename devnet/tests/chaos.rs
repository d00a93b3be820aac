//! The short fault suite in a test binary of its own: cargo runs test binaries one after
//! another, so no other devnet competes with it for the cores while it measures recovery
//! times (beside the other devnet tests on 2 cores it could stall past its settle time).

#[path = "it/chaos.rs"]
mod chaos;
mod common;

pub use common::{config, input, package};
