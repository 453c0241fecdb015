//! The recipes against a real in-process witan member (through
//! `LocalCore`, the same `KvCore` the server serves them with).

// Test code: a failed setup step should fail the test loudly (clippy.toml
// exempts #[test] functions; this covers their helpers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod barrier;
mod common;
mod double_barrier;
mod election;
mod lock;
mod rwlock;
mod semaphore;
