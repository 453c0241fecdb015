//! Consensus: openraft's type configuration, the protobuf conversions of its
//! messages, the tonic network between members, and the write path to the
//! leader (batching, forwarding) and the linearizable-read barrier.
//!
//! Nothing here knows about SQL (that is `storage`) or about etcd's MVCC
//! rules (that is `mvcc`).

pub mod convert;
pub mod crash_detector;
#[cfg(test)]
mod fuzz_tests;
pub mod types;

pub use types::*;
pub mod join;
pub mod leader;
pub mod member_tasks;
pub mod membership;
pub mod network;
pub mod peers;
pub mod proposer;
pub mod read_index;
pub mod service;
pub mod transfer;
