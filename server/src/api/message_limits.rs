//! The gRPC message size limits of the client services, applied the same
//! way to every one of them.
//!
//! Receiving: etcd's rule, `--max-request-bytes` plus [`GRPC_OVERHEAD_BYTES`]
//! for the envelope, so that a request just over the limit is still decoded
//! and refused by the handler with etcd's "request is too large", while a
//! far larger one is refused by tonic before it is buffered whole.
//! Sending: `--max-send-bytes` (see its flag for the default's reasons).

use witan_proto::etcdserverpb::{
    auth_server::{Auth, AuthServer},
    cluster_server::{Cluster, ClusterServer},
    kv_server::{Kv, KvServer},
    lease_server::{Lease, LeaseServer},
    maintenance_server::{Maintenance, MaintenanceServer},
    watch_server::{Watch, WatchServer},
};
use witan_proto::recipespb::{
    barrier_server::{Barrier, BarrierServer},
    double_barrier_server::{DoubleBarrier, DoubleBarrierServer},
    rw_lock_server::{RwLock, RwLockServer},
    semaphore_server::{Semaphore, SemaphoreServer},
};
use witan_proto::v3electionpb::election_server::{Election, ElectionServer};
use witan_proto::v3lockpb::lock_server::{Lock, LockServer};

/// Room for the gRPC and protobuf envelope around a request of
/// `--max-request-bytes` (etcd's `grpcOverheadBytes`).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The message size limits of one client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest message a service decodes.
    pub max_decoding: usize,
    /// Largest message a service encodes.
    pub max_encoding: usize,
}

impl MessageLimits {
    /// The limits for `--max-request-bytes` and `--max-send-bytes`.
    pub fn new(max_request_bytes: usize, max_send_bytes: usize) -> Self {
        MessageLimits {
            max_decoding: max_request_bytes.saturating_add(GRPC_OVERHEAD_BYTES),
            max_encoding: max_send_bytes,
        }
    }

    /// `server` with these limits.
    pub fn apply<S: SizeLimited>(&self, server: S) -> S {
        server.with_limits(self)
    }
}

/// A tonic server whose message sizes can be limited (every generated
/// server has the two methods, but no trait says so).
pub trait SizeLimited {
    /// This server, limited to `limits`.
    fn with_limits(self, limits: &MessageLimits) -> Self;
}

macro_rules! size_limited {
    ($($server:ident: $service:ident),* $(,)?) => {
        $(
            impl<T: $service> SizeLimited for $server<T> {
                fn with_limits(self, limits: &MessageLimits) -> Self {
                    self.max_decoding_message_size(limits.max_decoding)
                        .max_encoding_message_size(limits.max_encoding)
                }
            }
        )*
    };
}

size_limited!(
    KvServer: Kv,
    AuthServer: Auth,
    WatchServer: Watch,
    LeaseServer: Lease,
    ClusterServer: Cluster,
    MaintenanceServer: Maintenance,
    LockServer: Lock,
    ElectionServer: Election,
    BarrierServer: Barrier,
    DoubleBarrierServer: DoubleBarrier,
    SemaphoreServer: Semaphore,
    RwLockServer: RwLock,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiving_allows_the_envelope_around_the_largest_request() {
        let limits = MessageLimits::new(1_572_864, 4096);
        assert_eq!(limits.max_decoding, 1_572_864 + 512 * 1024);
        assert_eq!(limits.max_encoding, 4096);
        assert_eq!(MessageLimits::new(usize::MAX, 1).max_decoding, usize::MAX);
    }
}
