//! Coordination recipes (lock, election, barrier, double barrier,
//! semaphore, read-write lock, with fencing tokens), written once against
//! [`KvCore`], a small trait for the KV core: the server runs them over its
//! local member to serve its Lock, Election and `witan.recipes.v1`
//! services, and the SDK runs them over the network.

pub mod core;
pub mod error;

pub use crate::core::{CoreError, EventStream, KvCore, Lease, WatchBatch};
pub use crate::error::RecipeError;
