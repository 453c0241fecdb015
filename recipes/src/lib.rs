//! Coordination recipes (lock, election, barrier, double barrier,
//! semaphore, read-write lock, with fencing tokens), written once against
//! [`KvCore`], a small trait for the KV core: the server runs them over its
//! local member to serve its Lock, Election and `witan.recipes.v1`
//! services, and the SDK runs them over the network.
//!
//! Every recipe is a set of stateless async functions: all their state is
//! in the store (keys under the caller's lease), so a call can be served
//! by any member and a holder that dies lets go when its lease expires.
//! Blocking calls queue fairly (arrival order, each waiter watching only
//! the key it depends on: [`queue`]), withdraw their key if the call ends
//! before it is served, and never grant a hold whose key is gone.
//!
//! Must not depend on the server or on tonic: only on [`KvCore`] and the
//! protobuf types.

pub mod barrier;
pub mod core;
pub mod double_barrier;
pub mod election;
pub mod error;
pub mod fence;
pub mod held;
pub mod keys;
pub mod lock;
pub mod rwlock;
pub mod semaphore;

mod acquire;
mod observe;
mod ops;
mod queue;
mod size;
mod wake;
mod withdraw;

pub use crate::core::{CoreError, EventStream, KvCore, Lease, WatchBatch};
pub use crate::election::Leadership;
pub use crate::error::RecipeError;
pub use crate::fence::fenced_txn;
pub use crate::held::{FencingToken, Held};
