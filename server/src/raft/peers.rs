//! Connections to other members: one lazily connected gRPC channel per peer
//! URL, reused by raft replication, write forwarding and read-index calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use witan_proto::raftpb::raft_transport_client::RaftTransportClient;

use super::Member;

/// Messages between members may carry many log entries; client requests
/// are bounded separately (`--max-request-bytes`).
pub const MAX_PEER_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// A peer cannot be addressed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The member has no peer URL.
    #[error("member {0:?} has no peer URL")]
    NoUrl(String),
    /// The peer URL is not usable.
    #[error("invalid peer URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why it was refused.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Cached client channels to peers, keyed by URL.
#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Peers {
    /// A client for `member`'s first peer URL. The channel connects on first
    /// use and reconnects by itself after a failure.
    pub fn client(&self, member: &Member) -> Result<RaftTransportClient<Channel>, PeerError> {
        let url = member
            .peer_urls
            .first()
            .ok_or_else(|| PeerError::NoUrl(member.name.clone()))?;
        // A poisoned lock only means another thread panicked mid-insert; the
        // map of channels is still usable.
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = match channels.get(url) {
            Some(channel) => channel.clone(),
            None => {
                let channel = Endpoint::from_shared(url.clone())
                    .map_err(|source| PeerError::InvalidUrl {
                        url: url.clone(),
                        source,
                    })?
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    // Detects a peer that vanished (killed or paused) without
                    // closing its connection.
                    .http2_keep_alive_interval(Duration::from_secs(1))
                    .keep_alive_timeout(Duration::from_secs(3))
                    .keep_alive_while_idle(true)
                    .connect_lazy();
                channels.insert(url.clone(), channel.clone());
                channel
            }
        };
        Ok(RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }
}

/// Whether a failed call certainly never reached the peer (the connection
/// could not be established), so repeating it cannot apply anything twice.
pub fn never_sent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            );
        }
        source = err.source();
    }
    false
}
