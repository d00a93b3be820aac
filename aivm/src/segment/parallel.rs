//! Proving segments side by side: how many fit in memory at once, and a small scoped pool.

use crate::error::Result;
use crate::gas::memory_estimate_mb;

/// How many segments of domain `k` prove at once within `memory_mb`: at least one, at most
/// one per core.
pub fn workers(memory_mb: u64, k: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((memory_mb / memory_estimate_mb(k).max(1)) as usize).clamp(1, cores)
}

/// Runs `f` over `jobs` on at most `workers` threads, keeping the jobs' order in the results;
/// the first error wins.
pub(super) fn run_parallel<J: Send, T: Send>(
    jobs: Vec<J>,
    workers: usize,
    f: impl Fn(J) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let n = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().rev().collect::<Vec<_>>());
    let results: std::sync::Mutex<Vec<Option<Result<T>>>> =
        std::sync::Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.min(n) {
            s.spawn(|| {
                loop {
                    // Jobs are taken in order (the queue is reversed below).
                    let job = queue.lock().expect("queue").pop();
                    let Some((i, job)) = job else { break };
                    let r = f(job);
                    results.lock().expect("results")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
