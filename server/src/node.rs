//! A running member: opens storage, starts raft, bootstraps a new cluster,
//! and serves clients and peers on their listeners until shut down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::SnapshotPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tracing::{error, info, warn};
use witan_proto::etcdserverpb::lease_server::LeaseServer;
use witan_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use witan_proto::raftpb::fault_injection_server::FaultInjectionServer;
use witan_proto::raftpb::raft_transport_server::RaftTransportServer;

use crate::api::{self, ApiCore, HeaderSource, KvLimits, KvService};
use crate::auth::{AuthGate, Authenticator};
use crate::compaction::AutoCompactor;
use crate::config::{ClusterState, Config, ConfigError};
use crate::gateway;
use crate::h2_authority::AuthorityFix;
use crate::lease::{min_lease_ttl, Lessor, LessorSettings};
use crate::metrics;
use crate::quota::{quota_bytes, QuotaChecker};
use crate::raft::crash_detector::{self, DetectorTiming, LeaderContact};
use crate::raft::member_tasks::{self, MemberSettings};
use crate::raft::membership::MemberAdmin;
use crate::raft::network::NetworkFactory;
use crate::raft::peers::{Faults, Peers, MAX_PEER_MESSAGE_BYTES};
use crate::raft::proposer::Proposer;
use crate::raft::read_index::ReadIndex;
use crate::raft::service::{FaultInjectionService, TransportService};
use crate::raft::{Member, NodeId, Raft};
use crate::recipes::LocalCore;
use crate::storage;
use crate::tls::{self, TlsError, TlsFiles};
use crate::watch::{WatchHub, WatchSettings};

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The member could not establish its identity (or join its cluster).
    #[error(transparent)]
    Join(#[from] crate::raft::join::JoinError),
    /// Storage could not be opened.
    #[error(transparent)]
    Storage(#[from] storage::StorageOpenError),
    /// A TLS certificate, key or CA file cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// openraft refused the raft configuration.
    #[error("invalid raft settings: {0}")]
    RaftConfig(Box<openraft::ConfigError>),
    /// openraft failed to start or bootstrap.
    #[error("raft failed to start: {0}")]
    Raft(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// A started member. Dropping it does not stop it: call [`Node::shutdown`].
pub struct Node {
    id: NodeId,
    raft: Raft,
    lessor: Lessor,
    stop: watch::Sender<bool>,
    servers: JoinSet<()>,
    client_addrs: Vec<SocketAddr>,
    peer_addrs: Vec<SocketAddr>,
    local_core: LocalCore,
    // Maintenance tasks (see `quota` and `compaction`).
    quota: QuotaChecker,
    compactor: Option<AutoCompactor>,
}

impl Node {
    /// Starts a member as configured and returns once it is serving.
    pub async fn start(config: Config) -> Result<Node, StartError> {
        config.validate()?;
        // TLS files are loaded before anything starts, so a bad file fails
        // the start with its name and reason.
        let client_tls = acceptors(&config.listen_client_urls, TlsFiles::client(&config))?;
        let peer_tls = acceptors(&config.listen_peer_urls, TlsFiles::peer(&config))?;
        let peer_client_tls = tls::peer_client_tls(&config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let identity = crate::raft::join::resolve(&config).await?;
        let id = identity.member_id;
        info!(name = %config.name, id = format_args!("{id:x}"), data_dir = %config.data_dir.display(), "starting member");

        // Bind first: a port conflict should fail the start before raft runs.
        let client_listeners = bind_all(&config.client_addrs()?).await?;
        let peer_listeners = bind_all(&config.peer_addrs()?).await?;

        let (log_store, state_machine) = storage::open(&config.data_dir).await?;
        let state = state_machine.reader();
        // Maintenance (sizes, hashes, defragment, snapshot copies) keeps
        // handles on both stores before raft owns them.
        let storage_maintenance = storage::StorageMaintenance::new(&log_store, &state_machine);
        let raft_config = openraft::Config {
            cluster_name: config.initial_cluster_token.clone(),
            heartbeat_interval: config.heartbeat_interval,
            // openraft 0.9 campaigns only after its leader lease (which is
            // `election_timeout_max`) plus a random timeout in [min, max)
            // have passed since the last heartbeat. min = 2E/5 and max =
            // 3E/5 make that [E, 1.2E): what `--election-timeout` means to
            // an etcd user (E and 1.5E would mean 2.5E to 3E: a 3 s write
            // gap after a leader dies with etcd's default of 1 s). The
            // 0.2E spread is still far wider than a vote's round trip, and
            // the lease (0.6E, during which voters refuse candidates) is
            // what the crash detector must wait out after a leader process
            // dies. E >= 5 heartbeats (config check) keeps min above the
            // heartbeat.
            election_timeout_min: config.election_timeout * 2 / 5,
            election_timeout_max: config.election_timeout * 3 / 5,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_count),
            max_in_snapshot_log_to_keep: config.snapshot_catchup_entries,
            max_payload_entries: 64,
            install_snapshot_timeout: config.election_timeout.max(1000) * 4,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::RaftConfig(Box::new(e)))?;
        let leader_lease = Duration::from_millis(raft_config.election_timeout_max);
        let faults = Faults::default();
        let peers = Peers::new(id, faults.clone()).with_tls(peer_client_tls);
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            NetworkFactory::new(peers.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        if config.initial_cluster_state == ClusterState::New {
            bootstrap(&raft, &config).await?;
        }

        let proposer = Proposer::start(raft.clone(), id, peers.clone(), config.request_timeout);
        let read_index = ReadIndex::start(raft.clone(), id, peers.clone(), config.request_timeout);
        let header = HeaderSource::new(identity.cluster_id, id, raft.metrics());
        let limits = KvLimits {
            max_request_bytes: config.max_request_bytes,
            max_txn_ops: config.max_txn_ops,
        };
        let core = ApiCore {
            proposer: proposer.clone(),
            read_index: read_index.clone(),
            state: state.clone(),
            header: header.clone(),
            request_timeout: config.request_timeout,
            gate: AuthGate {
                authenticator: Authenticator {
                    token_ttl: Duration::from_secs(config.auth_token_ttl),
                    bcrypt_cost: config.bcrypt_cost,
                },
                state: state.clone(),
                read_index: read_index.clone(),
                request_timeout: config.request_timeout,
            },
        };

        let lessor = Lessor::start(
            id,
            raft.metrics(),
            proposer.writer().clone(),
            state.clone(),
            LessorSettings {
                tick_interval: config.lease_tick_interval,
                request_timeout: config.request_timeout,
            },
        );

        // Maintenance tasks: the space quota (every member) and
        // auto-compaction (on the leader).
        let quota = QuotaChecker::start(
            id,
            raft.metrics(),
            quota_bytes(config.quota_backend_bytes),
            proposer.clone(),
            state.clone(),
            storage_maintenance.clone(),
            config.request_timeout,
        );
        let compactor = AutoCompactor::start(
            id,
            config.auto_compaction()?,
            config.auto_compaction_interval,
            raft.metrics(),
            proposer.clone(),
            state.clone(),
            config.request_timeout,
        );

        let (stop, stopped) = watch::channel(false);
        // Membership: the Cluster service, peer calls, and the member tasks
        // (publish, promotion, removal; see raft::member_tasks).
        let members = MemberAdmin::new(
            raft.clone(),
            id,
            peers.clone(),
            identity.cluster_id,
            config.initial_cluster_token.clone(),
            config.request_timeout,
        );
        member_tasks::spawn(
            members.clone(),
            MemberSettings {
                name: config.name.clone(),
                client_urls: config.advertise_client_urls.clone(),
                auto_promote_learners: config.auto_promote_learners,
                data_dir: config.data_dir.clone(),
                request_timeout: config.request_timeout,
            },
            stop.clone(),
        );
        // Watch streams end on the stop signal: a graceful shutdown waits
        // for open streams, and a watch never ends by itself.
        let watches = WatchHub::new(
            state.clone(),
            WatchSettings {
                progress_notify_interval: config.watch_progress_notify_interval,
                max_watches_per_stream: config.max_watches_per_stream,
                ..WatchSettings::default()
            },
            stopped.clone(),
        );
        let kv = Arc::new(KvService::new(core.clone(), limits));
        let leases = Arc::new(
            api::LeaseService::new(core.clone(), min_lease_ttl(config.election_timeout))
                .with_max_leases(config.max_leases),
        );
        let local_core = LocalCore::new(kv.clone(), leases.clone(), watches.clone(), state.clone());
        // HTTP/JSON gateway and metrics, served beside gRPC on each client
        // listener (see `serve_client`).
        let client_http = ClientHttp {
            health: gateway::HealthSource {
                raft: raft.metrics(),
                core: core.clone(),
            },
            metrics: metrics::MemberMetrics {
                raft: raft.metrics(),
                state: state.clone(),
                watches: watches.clone(),
                data_dir: config.data_dir.clone(),
                grpc: Arc::default(),
                leader_changes: metrics::LeaderChanges::spawn(raft.metrics(), stopped.clone()),
            },
            max_request_bytes: config.max_request_bytes,
            max_concurrent_streams: config.max_concurrent_streams,
        };
        let sized = api::MessageLimits::new(config.max_request_bytes, config.max_send_bytes);
        let mut servers = JoinSet::new();
        let mut client_addrs = Vec::new();
        for (listener, acceptor) in client_listeners.into_iter().zip(client_tls) {
            client_addrs.push(local_addr(&listener)?);
            let router = tonic::service::Routes::default()
                .add_service(sized.apply(api::kv_server(kv.clone())))
                .add_service(
                    sized.apply(api::watch_server(
                        api::WatchService::new(
                            watches.clone(),
                            header.clone(),
                            config.max_request_bytes,
                            core.gate.clone(),
                        )
                        .with_max_watches_per_connection(config.max_watches_per_connection),
                    )),
                )
                .add_service(sized.apply(LeaseServer::from_arc(leases.clone())))
                .add_service(sized.apply(api::cluster_server(api::ClusterService::new(
                    core.clone(),
                    members.clone(),
                ))))
                .add_service(
                    sized.apply(MaintenanceServer::new(api::MaintenanceService::new(
                        api::MaintenanceParts {
                            core: core.clone(),
                            raft: raft.clone(),
                            peers: peers.clone(),
                            member_id: id,
                            storage: storage_maintenance.clone(),
                            leader_lease,
                        },
                    ))),
                )
                .add_service(sized.apply(api::auth_server(api::AuthService::new(core.clone()))))
                .add_service(sized.apply(api::lock_server(api::LockService::new(
                    local_core.clone(),
                    header.clone(),
                    core.gate.clone(),
                ))))
                .add_service(sized.apply(api::election_server(api::ElectionService::new(
                    local_core.clone(),
                    header.clone(),
                    core.gate.clone(),
                ))));
            let recipes = api::recipe_servers(api::RecipesService::new(
                local_core.clone(),
                header.clone(),
                core.gate.clone(),
            ));
            let router = router
                .add_service(sized.apply(recipes.barrier))
                .add_service(sized.apply(recipes.double_barrier))
                .add_service(sized.apply(recipes.semaphore))
                .add_service(sized.apply(recipes.rw_lock));
            servers.spawn(serve_client(
                router,
                client_http.clone(),
                listener,
                acceptor,
                stopped.clone(),
            ));
        }
        let contact = LeaderContact::default();
        servers.spawn(crash_detector::run(
            raft.clone(),
            id,
            contact.clone(),
            DetectorTiming {
                heartbeat: Duration::from_millis(config.heartbeat_interval),
                leader_lease,
            },
            stopped.clone(),
        ));
        let mut peer_addrs = Vec::new();
        for (listener, acceptor) in peer_listeners.into_iter().zip(peer_tls) {
            peer_addrs.push(local_addr(&listener)?);
            let transport = TransportService::new(
                faults.clone(),
                raft.clone(),
                proposer.writer().clone(),
                read_index.clone(),
                config.request_timeout,
                contact.clone(),
            )
            .with_members(members.clone());
            let service = RaftTransportServer::new(transport)
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
            let fault_injection = config
                .unsafe_fault_injection
                .then(|| FaultInjectionServer::new(FaultInjectionService::new(faults.clone())));
            let router = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .add_optional_service(fault_injection);
            servers.spawn(serve(router, listener, acceptor, stopped.clone(), "peer"));
        }
        info!(clients = ?client_addrs, peers = ?peer_addrs, "member serving");
        Ok(Node {
            id,
            raft,
            lessor,
            stop,
            servers,
            client_addrs,
            peer_addrs,
            local_core,
            quota,
            compactor,
        })
    }

    /// The member's KV core for in-process callers (the recipes).
    pub fn local_core(&self) -> LocalCore {
        self.local_core.clone()
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The raft handle (for metrics and tests).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The addresses clients are served on.
    pub fn client_addrs(&self) -> &[SocketAddr] {
        &self.client_addrs
    }

    /// The addresses peers are served on.
    pub fn peer_addrs(&self) -> &[SocketAddr] {
        &self.peer_addrs
    }

    /// Resolves once the member stopped serving by itself (it was removed
    /// from the cluster), so the process can exit as etcd's does.
    pub async fn wait_stopped(&self) {
        wait_stop(self.stop.subscribe()).await;
    }

    /// Stops serving, then stops raft (flushing storage).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.servers.join_next().await.is_some() {}
        self.lessor.stop().await;
        self.quota.stop().await;
        if let Some(compactor) = self.compactor {
            compactor.stop().await;
        }
        if let Err(err) = self.raft.shutdown().await {
            warn!(%err, "raft did not shut down cleanly");
        }
        info!("member stopped");
    }
}

/// Initializes a brand-new cluster from `--initial-cluster`. Every initial
/// member does this with the same membership, so whichever runs first, the
/// first log entry is identical everywhere; a member that already has a log
/// (a restart) skips it.
async fn bootstrap(raft: &Raft, config: &Config) -> Result<(), StartError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    // Only what every member knows from `--initial-cluster` goes into the
    // first membership: each member writes it as log entry 0 (term 0), and
    // raft never compares the content of entries with equal ids, so a
    // member's own client URLs here would leave every member with a
    // different membership. Names and client URLs arrive by publishing
    // (raft::member_tasks), a real membership change.
    let members: BTreeMap<NodeId, Member> = config
        .initial_members()?
        .into_values()
        .map(|m| {
            let member = Member {
                client_urls: Vec::new(),
                name: m.name.clone(),
                peer_urls: m.peer_urls,
                pending_voter: false,
            };
            (config.member_id_of(&m.name), member)
        })
        .collect();
    match raft.initialize(members).await {
        Ok(()) => {
            info!("bootstrapped a new cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(err) => Err(StartError::Raft(err.to_string())),
    }
}

/// The TLS acceptor of each listener URL (`None` for `http://`).
fn acceptors(
    urls: &[String],
    files: Option<TlsFiles>,
) -> Result<Vec<Option<TlsAcceptor>>, TlsError> {
    urls.iter()
        .map(|url| tls::acceptor_for(url, files.as_ref()))
        .collect()
}

async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: *addr,
                source,
            })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// How long a stopping member waits for open client streams to finish
/// (watch streams end at once, but a client that stopped reading holds its
/// stream open while unsent data waits for it).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What a client listener serves besides the gRPC services.
#[derive(Clone)]
struct ClientHttp {
    health: gateway::HealthSource,
    metrics: metrics::MemberMetrics,
    max_request_bytes: usize,
    /// HTTP/2 streams one connection may open (`--max-concurrent-streams`).
    max_concurrent_streams: u32,
}

/// Serves the client gRPC services `grpc` and, on the same listener, the
/// HTTP/JSON gateway, health, version and metrics endpoints: HTTP/1.1 and
/// HTTP/2 are told apart per connection. Every gRPC call, whether it came
/// over the network or from the gateway in process, is counted by the
/// metrics layer.
async fn serve_client(
    grpc: tonic::service::Routes,
    http: ClientHttp,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let counted = metrics::GrpcLayer::new(http.metrics.grpc.clone());
    let loopback = tower::Layer::layer(&counted, grpc.clone());
    let gateway =
        gateway::Gateway::new(loopback, http.health, http.metrics, http.max_request_bytes);
    let routes = grpc
        .into_axum_router()
        .layer(counted)
        .merge(gateway.router())
        .fallback(gateway::fallback);
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .max_concurrent_streams(http.max_concurrent_streams)
        .add_routes(tonic::service::Routes::from(routes));
    // TLS first (when the URL is https), then the HTTP/2 repair: Go
    // clients may send `:authority` as a URL, which h2 rejects before any
    // service runs (see `h2_authority`).
    let incoming = tls::accept(accept(listener), acceptor).map(|s| s.map(AuthorityFix::new));
    serve_incoming(router, incoming, stopped, "client").await;
}

/// Serves `router` on `listener` (after a TLS handshake when `acceptor`
/// is set) until the stop signal, then at most [`SHUTDOWN_GRACE`] longer.
async fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
    what: &'static str,
) {
    serve_incoming(
        router,
        tls::accept(accept(listener), acceptor),
        stopped,
        what,
    )
    .await;
}

/// The connections accepted on `listener`, with TCP_NODELAY set.
fn accept(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    // tonic ignores its own `tcp_nodelay` with a custom incoming stream, and
    // Nagle's algorithm stalls small gRPC frames behind delayed ACKs.
    TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            if let Err(err) = stream.set_nodelay(true) {
                warn!(%err, "cannot set TCP_NODELAY");
            }
        }
        stream
    })
}

/// Serves `router` on the `incoming` connections until the stop signal,
/// then at most [`SHUTDOWN_GRACE`] longer.
async fn serve_incoming<IO>(
    router: tonic::transport::server::Router,
    incoming: impl tokio_stream::Stream<Item = std::io::Result<IO>> + Send + 'static,
    stopped: watch::Receiver<bool>,
    what: &'static str,
) where
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
{
    let server = router.serve_with_incoming_shutdown(incoming, wait_stop(stopped.clone()));
    let grace = async {
        wait_stop(stopped).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => {
            if let Err(err) = served {
                error!(%err, what, "server failed");
            }
        }
        () = grace => warn!(what, "connections still open after the shutdown grace period: dropped"),
    }
}

async fn wait_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}
