//! witan's wire protocol, generated from `proto/`: etcd's v3 API
//! (`etcdserverpb`, `mvccpb`, `authpb`) with etcd's package, message and
//! field names, etcd's Lock and Election services (`v3lockpb`, `v3electionpb`),
//! witan's own member-to-member protocol (`witan.raft.v1`) and its
//! coordination recipes (`witan.recipes.v1`).
//! etcd's messages also implement serde's `Serialize` and `Deserialize` in
//! etcd's grpc-gateway JSON encoding (for witan's HTTP/JSON gateway).
//! This crate holds generated code only.

#![allow(clippy::all, missing_docs)]

/// etcd's `mvccpb` package: key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's `authpb` package: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// etcd's `etcdserverpb` package: the KV, Watch, Lease, Cluster, Maintenance
/// and Auth services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// etcd's `v3lockpb` package: the Lock service.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// etcd's `v3electionpb` package: the Election service.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// witan's own packages, nested as their protobuf package names.
pub mod witan {
    /// Member-to-member protocol.
    pub mod raft {
        /// `witan.raft.v1`: raft transport, leader forwarding, read index.
        pub mod v1 {
            tonic::include_proto!("witan.raft.v1");
        }
    }

    /// Coordination recipes etcd lacks.
    pub mod recipes {
        /// `witan.recipes.v1`: Barrier, DoubleBarrier, Semaphore, RwLock.
        pub mod v1 {
            tonic::include_proto!("witan.recipes.v1");
        }
    }
}

pub use witan::raft::v1 as raftpb;
pub use witan::recipes::v1 as recipespb;
