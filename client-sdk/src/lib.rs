//! The typed Rust SDK for witan (and any etcd v3 cluster).
//!
//! - [`Client`]: connects to a list of endpoints, fails over between
//!   members, repeats only what is safe to repeat, and gives every call a
//!   deadline ([`ClientOptions`]).
//! - Typed KV: [`Client::get`], [`Client::put`], [`Client::delete`],
//!   [`Client::txn`] with [`Compare`] and [`Op`], [`Client::compact`];
//!   responses are our own types ([`KeyValue`], [`Header`], ...), errors
//!   one enum ([`Error`]).
//! - Conditional writes: [`Client::put_if_absent`] and
//!   [`Client::compare_and_swap`].
//! - Leases and [`Session`]s (a lease kept alive in the background, with a
//!   signal when it is lost).
//! - Resumable watches ([`Client::watch`]): no event lost or repeated
//!   across member failures; compaction reported, never skipped.
//! - Typed key spaces with JSON values ([`Client::keyspace`], feature
//!   `serde`).
//! - Authentication ([`ClientOptions::credentials`]: log in, send the
//!   token with every call, log in again when it expires) and TLS
//!   ([`ClientOptions::tls`], [`Tls`]: `https://` endpoints, a client
//!   certificate whose common name logs its user in).
//! - `witan_recipes::KvCore` for [`Client`], so the recipes run
//!   client-side.
//! - Recipe clients ([`Client::lock`], [`Client::election`],
//!   [`Client::barrier`], [`Client::double_barrier`],
//!   [`Client::semaphore`], [`Client::rwlock`]), run by the cluster's
//!   services or client-side ([`Mode`]); every hold has a
//!   [`FencingToken`] and a fenced write ([`FencedTxn`]).
//!
//! Where things are, and the rules they keep:
//!
//! - `client`: [`Client`] and `execute`, the one loop every unary call
//!   runs through (deadline, failover, repeat); `members`: one channel per
//!   endpoint and which one is current; `endpoint`, [`ClientOptions`];
//!   `auth`: the credentials, the one token every call carries, logging
//!   in again; `tls`.
//! - `retry` alone decides whether a failed attempt may be repeated:
//!   reads, keepalives and watch creation always; a write only when it
//!   certainly never took effect (the connection was refused, or the
//!   member answered "no leader", which it says only before proposing).
//!   Anything else makes a write fail with [`Error::OutcomeUnknown`].
//!   Separately, a call refused for its auth token ("invalid auth token":
//!   the client logs in again first) or a stale auth revision is made
//!   once more (`Client::auth_retry`): both refusals changed nothing.
//! - `error` alone reads etcd's error texts; everything else matches on
//!   [`Error`] variants.
//! - `kv`: the builders and response types; protobuf stays inside the
//!   crate (the `KvCore` implementation in `core` speaks it because the
//!   recipes do).
//! - `watch`: builder, the reconnecting task, the pure resume logic
//!   (`resume`), the consumer's stream; `session`, `lease`, `cas`,
//!   `keyspace`.
//! - `recipes`: the recipe clients, one file each, over the services or
//!   the `witan-recipes` functions; their blocking calls have no deadline
//!   and are repeated after a transport failure only because repeating
//!   them with the same lease resumes the same key (`recipes::call`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let cluster = witan_client_testkit::Cluster::single().await;
//! # let endpoints = cluster.endpoints();
//! use witan_client::{Client, ClientOptions};
//!
//! let client = Client::connect(endpoints, ClientOptions::default()).await?;
//! client.put("/config/mode", "blue").await?;
//! let found = client.get("/config/mode").await?;
//! assert_eq!(found.kvs[0].value_str()?, "blue");
//! # cluster.stop().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod cas;
mod client;
mod core;
mod endpoint;
mod error;
mod grpc;
#[cfg(feature = "serde")]
mod keyspace;
mod kv;
mod lease;
mod members;
mod options;
mod recipes;
mod retry;
mod session;
mod tls;
mod watch;

pub use auth::Credentials;
pub use cas::{CreateOutcome, Expect, PutIfAbsent, Swap};
pub use client::Client;
pub use error::Error;
#[cfg(feature = "serde")]
pub use keyspace::{KeySpace, KeySpaceEvent, KeySpaceStream, Listing, Versioned};
pub use kv::{
    Cmp, Compare, Delete, DeleteResponse, Detached, Get, GetResponse, Header, KeyValue, Op,
    OpResponse, Put, PutResponse, SortOrder, SortTarget, Txn, TxnResponse,
};
pub use lease::{LeaseGrant, LeaseInfo};
pub use options::ClientOptions;
pub use recipes::{
    Barrier, DoubleBarrier, Election, Fenced, FencedTxn, Leader, LeaderStream, Leadership, Lock,
    LockGuard, Mode, RwLock, RwLockGuard, Semaphore, SemaphorePermit,
};
pub use session::{Session, SessionLost};
pub use tls::Tls;
pub use watch::{Watch, WatchEvent, WatchStream};
/// A hold's fencing token (the create revision of its key), from the
/// recipes crate.
pub use witan_recipes::FencingToken;
