//! BFT consensus with Malachite (Informal Systems' Tendermint in Rust, `informalsystems-
//! malachitebft-core-consensus` 0.5): its sans-IO core runs in every validator and this module is
//! the host that answers its effects (signing, broadcasting, timers, building and checking
//! blocks, committing). [`context`] is the devnet's `Context`; [`node`] the host and event loop;
//! [`wal`] each validator's write-ahead log (Malachite's `informalsystems-malachitebft-wal`).

pub mod context;
pub mod node;
pub mod wal;

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{Round, Timeout, TimeoutKind};

    use super::node::{BACKOFF_ROUNDS, Timeouts};

    #[test]
    fn round_timeouts_back_off_up_to_a_cap() {
        let t = Timeouts::default();
        for kind in [
            TimeoutKind::Propose,
            TimeoutKind::Prevote,
            TimeoutKind::Precommit,
        ] {
            let at = |r: u32| t.duration(Timeout::new(Round::new(r), kind));
            assert_eq!(at(1) - at(0), t.delta);
            assert_eq!(at(BACKOFF_ROUNDS) - at(0), t.delta * BACKOFF_ROUNDS);
            assert_eq!(at(1000), at(BACKOFF_ROUNDS));
        }
    }
}
