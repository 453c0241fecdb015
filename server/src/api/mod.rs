//! The client-facing gRPC services (etcd's v3 API, etcd's Lock and
//! Election, witan's recipes). A handler validates the
//! request, turns it into a command or a read, makes one call into the
//! node's write path or read barrier, and converts the answer; every error
//! becomes a `tonic::Status` in one place (`status.rs`).
//!
//! Only this module (and `raft`'s transport) knows about tonic.

mod auth;
mod cluster;
mod core;
mod election;
mod error;
mod header;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod message_limits;
mod permissions;
mod recipes;
mod watch;

pub use self::core::ApiCore;
pub use auth::{server as auth_server, AuthService};
pub use cluster::{server as cluster_server, ClusterService};
pub use election::{server as election_server, ElectionService};
pub use error::ApiError;
pub use header::HeaderSource;
pub use kv::{server as kv_server, KvLimits, KvService};
pub use lease::LeaseService;
pub use lock::{server as lock_server, LockService, FENCING_TOKEN_METADATA};
pub use maintenance::{alarm_text, MaintenanceParts, MaintenanceService, API_VERSION};
pub use message_limits::{MessageLimits, SizeLimited, GRPC_OVERHEAD_BYTES};
pub use recipes::{servers as recipe_servers, RecipeServers, RecipesService};
pub use watch::{server as watch_server, WatchService};
