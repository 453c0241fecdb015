//! The generated gRPC clients, configured alike (message size limits,
//! the auth token on every call), one constructor per service.

use tonic::service::interceptor::InterceptedService;
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

use crate::auth::TokenInterceptor;

/// What calls go through: a member's channel, adding the client's auth
/// token to every call.
pub(crate) type Transport = InterceptedService<Channel, TokenInterceptor>;

/// Largest message accepted from a member: a range over many keys can be
/// large, and etcd's own client accepts up to 2 GiB.
const MAX_RECEIVE_BYTES: usize = i32::MAX as usize;

pub(crate) fn kv(channel: Transport) -> KvClient<Transport> {
    KvClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn lease(channel: Transport) -> LeaseClient<Transport> {
    LeaseClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn watch(channel: Transport) -> WatchClient<Transport> {
    WatchClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn lock(channel: Transport) -> LockClient<Transport> {
    LockClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn election(channel: Transport) -> ElectionClient<Transport> {
    ElectionClient::new(channel).max_decoding_message_size(MAX_RECEIVE_BYTES)
}

pub(crate) fn barrier(channel: Transport) -> BarrierClient<Transport> {
    BarrierClient::new(channel)
}

pub(crate) fn double_barrier(channel: Transport) -> DoubleBarrierClient<Transport> {
    DoubleBarrierClient::new(channel)
}

pub(crate) fn semaphore(channel: Transport) -> SemaphoreClient<Transport> {
    SemaphoreClient::new(channel)
}

pub(crate) fn rw_lock(channel: Transport) -> RwLockClient<Transport> {
    RwLockClient::new(channel)
}
