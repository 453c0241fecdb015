//! Typed recipe clients: [`Lock`](crate::Lock), [`Election`](crate::Election),
//! [`Barrier`](crate::Barrier), [`DoubleBarrier`](crate::DoubleBarrier),
//! [`Semaphore`](crate::Semaphore) and [`RwLock`](crate::RwLock), each run
//! either by the cluster's services or client-side ([`Mode`]).
//!
//! Both modes run the same `witan-recipes` code on the same keys, so a
//! lock taken through the Lock service and one taken client-side exclude
//! each other. Every hold is a key under a [`Session`](crate::Session)'s
//! lease and carries a [`FencingToken`](crate::FencingToken); its
//! [`FencedTxn`] writes only while the hold is current.
//!
//! Blocking calls (acquire, campaign, wait, enter, leave) have no deadline:
//! they wait as long as it takes, and end when the caller drops them (wrap
//! one in `tokio::time::timeout` to bound it); the waiting key is then
//! withdrawn (by the member serving the call, or by the recipe running
//! here). They give up with [`Error::LeaseExpired`](crate::Error) once the
//! session is lost. `call` holds that machinery; `hold` the part every
//! guard shares; one file per recipe.

mod barrier;
mod call;
mod double_barrier;
mod election;
mod fence;
mod hold;
mod lock;
mod observe;
mod rwlock;
mod semaphore;

pub use barrier::Barrier;
pub use double_barrier::DoubleBarrier;
pub use election::{Election, Leader, Leadership};
pub use fence::{Fenced, FencedTxn};
pub use lock::{Lock, LockGuard};
pub use observe::LeaderStream;
pub use rwlock::{RwLock, RwLockGuard};
pub use semaphore::{Semaphore, SemaphorePermit};

/// Where a recipe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Through the cluster's services: etcd's `v3lockpb.Lock` and
    /// `v3electionpb.Election`, witan's `witan.recipes.v1` for the others.
    /// One call per operation; the member runs the recipe next to the
    /// data.
    #[default]
    Server,
    /// Here, by the `witan-recipes` functions over this client's KV, lease
    /// and watch calls: for clusters without the services (etcd has no
    /// `witan.recipes.v1`), at the cost of more round trips.
    ClientSide,
}
