//! The generated gRPC clients, configured alike (message size limits),
//! one constructor per service.

use tonic::transport::Channel;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::watch_client::WatchClient;
use witan_proto::recipespb::barrier_client::BarrierClient;
use witan_proto::recipespb::double_barrier_client::DoubleBarrierClient;
use witan_proto::recipespb::rw_lock_client::RwLockClient;
use witan_proto::recipespb::semaphore_client::SemaphoreClient;
use witan_proto::v3electionpb::election_client::ElectionClient;
use witan_proto::v3lockpb::lock_client::LockClient;

/// Largest message accepted from a member: a range over many keys can be
/// large, and etcd's own client accepts up to 2 GiB.
const MAX_RECEIVE_BYTES: usize = i32::MAX as usize;

pub(crate) fn kv(channel: Channel) -> KvClient<Channel> {
    KvClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn lease(channel: Channel) -> LeaseClient<Channel> {
    LeaseClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn watch(channel: Channel) -> WatchClient<Channel> {
    WatchClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn lock(channel: Channel) -> LockClient<Channel> {
    LockClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn election(channel: Channel) -> ElectionClient<Channel> {
    ElectionClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn barrier(channel: Channel) -> BarrierClient<Channel> {
    BarrierClient::new(channel)
}

pub(crate) fn double_barrier(channel: Channel) -> DoubleBarrierClient<Channel> {
    DoubleBarrierClient::new(channel)
}

pub(crate) fn semaphore(channel: Channel) -> SemaphoreClient<Channel> {
    SemaphoreClient::new(channel)
}

pub(crate) fn rw_lock(channel: Channel) -> RwLockClient<Channel> {
    RwLockClient::new(channel)
}
