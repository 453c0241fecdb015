//! The generated gRPC clients, configured alike (message size limits),
//! one constructor per service.

use tonic::transport::Channel;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::watch_client::WatchClient;

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
