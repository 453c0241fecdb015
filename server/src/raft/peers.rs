//! Connections to other members: one lazily connected gRPC channel per peer
//! URL, reused by raft replication, write forwarding and read-index calls.
//!
//! Channels follow the membership: callers always address a member by the
//! URLs of the current membership (openraft rebuilds its replication
//! streams from the membership each time it changes, so a MemberUpdate's
//! new URLs are used at once), and the member tasks drop the channels to
//! URLs no member has any more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use witan_proto::raftpb::raft_transport_client::RaftTransportClient;

use super::{Member, NodeId};

/// gRPC metadata key naming the calling member on every peer request.
pub const FROM_HEADER: &str = "witan-from";

/// gRPC metadata key on the status a member answers a removed member with.
pub const REMOVED_HEADER: &str = "witan-removed";

/// The answer to a request from a member that was removed from the
/// cluster: it tells the sender to stop.
pub fn removed_status(member: NodeId) -> tonic::Status {
    let mut status = tonic::Status::failed_precondition(format!(
        "witan: member {member:x} was removed from the cluster"
    ));
    status
        .metadata_mut()
        .insert(REMOVED_HEADER, MetadataValue::from_static("1"));
    status
}

/// Whether a peer answered that this member was removed from the cluster.
pub fn is_removed_status(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::FailedPrecondition
        && status.metadata().get(REMOVED_HEADER).is_some()
}

/// A client to one peer; every call says which member sent it.
pub type PeerClient = RaftTransportClient<InterceptedService<Channel, SenderId>>;

/// Messages between members may carry many log entries; client requests
/// are bounded separately (`--max-request-bytes`).
pub const MAX_PEER_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// A peer cannot be addressed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The member has no peer URL.
    #[error("member {0:?} has no peer URL")]
    NoUrl(String),
    /// The link to this member is cut by fault injection.
    #[error("link to member {0:x} is cut (fault injection)")]
    Blocked(NodeId),
    /// The peer URL is https but this member has no peer certificate.
    #[error("peer URL {0:?} is https but --peer-cert-file is not set")]
    NoTls(String),
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

/// Adds this member's id to every outgoing peer request.
#[derive(Clone)]
pub struct SenderId(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for SenderId {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(FROM_HEADER, self.0.clone());
        Ok(request)
    }
}

/// Links cut or slowed by test-only fault injection (empty in production:
/// only `FaultInjectionService`, served with `--unsafe-fault-injection`,
/// changes them).
#[derive(Clone, Default)]
pub struct Faults {
    blocked: Arc<RwLock<BTreeSet<NodeId>>>,
    /// How long requests from each member are held before they are served.
    delays: Arc<RwLock<BTreeMap<NodeId, Duration>>>,
}

impl Faults {
    /// Cuts the links to exactly `members` (an empty set heals all links).
    pub fn set_blocked(&self, members: BTreeSet<NodeId>) {
        *self.blocked.write().unwrap_or_else(PoisonError::into_inner) = members;
    }

    /// Whether the link to `member` is cut.
    pub fn is_blocked(&self, member: NodeId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&member)
    }

    /// Whether a request arrived over a cut link, judged by its sender header.
    pub fn blocks_request<T>(&self, request: &tonic::Request<T>) -> bool {
        sender(request).is_some_and(|from| self.is_blocked(from))
    }

    /// Slows exactly the links from the members in `delays` (an empty map
    /// heals all).
    pub fn set_delays(&self, delays: BTreeMap<NodeId, Duration>) {
        *self.delays.write().unwrap_or_else(PoisonError::into_inner) = delays;
    }

    /// How long a request is held before it is served, judged by its
    /// sender header.
    pub fn request_delay<T>(&self, request: &tonic::Request<T>) -> Option<Duration> {
        let from = sender(request)?;
        self.delays
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&from)
            .copied()
    }
}

/// The member that sent a peer request, from its header.
pub(crate) fn sender<T>(request: &tonic::Request<T>) -> Option<NodeId> {
    request
        .metadata()
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<NodeId>().ok())
}

/// The disk stall injected before every raft log commit, in milliseconds
/// (test-only fault injection; 0 in production). Process-wide rather than
/// in [`Faults`] because the raft log writer has no handle on the member's
/// faults, and a member is one process: only `FaultInjectionService` sets
/// it.
static FSYNC_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// Stalls every later raft log commit by `delay` (zero heals).
pub fn set_fsync_delay(delay: Duration) {
    FSYNC_DELAY_MS.store(millis(delay), Ordering::Relaxed);
}

/// The stall to add before the next raft log commit, if one is injected.
pub fn fsync_delay() -> Option<Duration> {
    stall(FSYNC_DELAY_MS.load(Ordering::Relaxed))
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

fn stall(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Cached client channels to peers, keyed by URL.
#[derive(Clone)]
pub struct Peers {
    me: SenderId,
    faults: Faults,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// TLS for `https://` peer URLs (`--peer-cert-file` and friends).
    tls: Option<ClientTlsConfig>,
    /// Set once a peer answered that this member was removed.
    removed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Peers {
    /// Connections made by member `me`, subject to `faults`.
    pub fn new(me: NodeId, faults: Faults) -> Self {
        Peers {
            me: SenderId(MetadataValue::from(me)),
            faults,
            channels: Arc::default(),
            tls: None,
            removed: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Connects to `https://` peer URLs with `tls` (this member's peer
    /// certificate, and the CA the peers' certificates must be signed by).
    pub fn with_tls(mut self, tls: Option<ClientTlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// Records that a peer answered that this member was removed.
    pub fn mark_removed(&self) {
        self.removed.send_replace(true);
    }

    /// Whether a peer answered that this member was removed.
    pub fn removed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.removed.subscribe()
    }

    /// Drops the channels to URLs no member has any more (after a member
    /// was removed or moved to new peer URLs).
    pub fn retain_urls(&self, urls: &BTreeSet<String>) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|url, _| urls.contains(url));
    }

    /// A client for member `id` at its first peer URL. The channel connects
    /// on first use and reconnects by itself after a failure.
    pub fn client(&self, id: NodeId, member: &Member) -> Result<PeerClient, PeerError> {
        if self.faults.is_blocked(id) {
            return Err(PeerError::Blocked(id));
        }
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
                let invalid = |source| PeerError::InvalidUrl {
                    url: url.clone(),
                    source,
                };
                let mut endpoint = Endpoint::from_shared(url.clone()).map_err(invalid)?;
                if crate::config::is_https(url) {
                    let tls = self
                        .tls
                        .clone()
                        .ok_or_else(|| PeerError::NoTls(url.clone()))?;
                    endpoint = endpoint.tls_config(tls).map_err(invalid)?;
                }
                let channel = endpoint
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
        Ok(
            RaftTransportClient::with_interceptor(channel, self.me.clone())
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn from(member: NodeId) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert(FROM_HEADER, MetadataValue::from(member));
        request
    }

    #[test]
    fn cut_links_block_requests_by_their_sender() {
        let faults = Faults::default();
        faults.set_blocked(BTreeSet::from([7]));
        assert!(faults.blocks_request(&from(7)));
        assert!(!faults.blocks_request(&from(8)));
        assert!(!faults.blocks_request(&tonic::Request::new(())));
        faults.set_blocked(BTreeSet::new());
        assert!(!faults.blocks_request(&from(7)));
    }

    #[test]
    fn delays_apply_to_the_slowed_links_only_until_healed() {
        let faults = Faults::default();
        faults.set_delays(BTreeMap::from([(7, Duration::from_millis(30))]));
        assert_eq!(
            faults.request_delay(&from(7)),
            Some(Duration::from_millis(30))
        );
        assert_eq!(faults.request_delay(&from(8)), None);
        assert_eq!(faults.request_delay(&tonic::Request::new(())), None);
        faults.set_delays(BTreeMap::new());
        assert_eq!(faults.request_delay(&from(7)), None);
    }

    #[tokio::test]
    async fn removed_answers_are_recognised_and_channels_follow_urls() {
        let status = removed_status(0xab);
        assert!(is_removed_status(&status));
        assert!(status.message().contains("ab was removed"));
        assert!(!is_removed_status(&tonic::Status::failed_precondition("x")));

        let peers = Peers::new(1, Faults::default());
        assert!(!*peers.removed().borrow());
        peers.mark_removed();
        assert!(*peers.removed().borrow());

        let member = |url: &str| Member {
            peer_urls: vec![url.to_string()],
            ..Member::default()
        };
        peers.client(2, &member("http://127.0.0.1:1")).unwrap();
        peers.client(3, &member("http://127.0.0.1:2")).unwrap();
        peers.retain_urls(&BTreeSet::from(["http://127.0.0.1:2".to_string()]));
        let left: Vec<String> = peers.channels.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, vec!["http://127.0.0.1:2".to_string()]);
    }

    #[tokio::test]
    async fn https_peer_urls_need_a_peer_certificate() {
        let member = Member {
            peer_urls: vec!["https://127.0.0.1:1".to_string()],
            ..Member::default()
        };
        let plain = Peers::new(1, Faults::default());
        assert!(matches!(plain.client(2, &member), Err(PeerError::NoTls(_))));
        let tls = Peers::new(1, Faults::default()).with_tls(Some(ClientTlsConfig::new()));
        assert!(tls.client(2, &member).is_ok());
    }

    // The process-wide fsync stall itself is not set here: other tests of
    // this binary commit raft logs concurrently.
    #[test]
    fn a_zero_fsync_stall_is_none() {
        assert_eq!(stall(millis(Duration::ZERO)), None);
        assert_eq!(
            stall(millis(Duration::from_millis(250))),
            Some(Duration::from_millis(250))
        );
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
