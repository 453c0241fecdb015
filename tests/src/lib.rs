//! Test support for witan's cross-crate integration and fault tests: real
//! clusters of member processes on loopback.

pub mod cluster;
pub mod jepsen;
pub mod recipes;

pub use cluster::{Cluster, ClusterOptions};
