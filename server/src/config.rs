//! The one configuration struct of a member: command-line flags (named as
//! etcd's where they mean the same thing) and `WITAN_*` environment
//! variables; durations in humantime form ("100ms", "5s").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::compaction::{AutoCompactionMode, Retention, RetentionError};
use crate::raft::NodeId;

/// Whether a member starts a new cluster or joins an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    /// Bootstrap a new cluster from `--initial-cluster`.
    New,
    /// Join a running cluster (the member was added with MemberAdd).
    Existing,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Configuration of one witan member.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "witan",
    version,
    about = "witan: a coordination service that speaks etcd's v3 API"
)]
pub struct Config {
    /// Human-readable name of this member; must appear in --initial-cluster.
    #[arg(long, env = "WITAN_NAME", default_value = "default")]
    pub name: String,

    /// Directory holding this member's raft log, state and snapshots.
    #[arg(long, env = "WITAN_DATA_DIR", default_value = "witan.data")]
    pub data_dir: PathBuf,

    /// URLs to listen on for client traffic (comma-separated).
    #[arg(
        long,
        env = "WITAN_LISTEN_CLIENT_URLS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    pub listen_client_urls: Vec<String>,

    /// Client URLs advertised to the rest of the cluster and to clients.
    #[arg(
        long,
        env = "WITAN_ADVERTISE_CLIENT_URLS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    pub advertise_client_urls: Vec<String>,

    /// URLs to listen on for traffic from other members (comma-separated).
    #[arg(
        long,
        env = "WITAN_LISTEN_PEER_URLS",
        default_value = "http://127.0.0.1:2380",
        value_delimiter = ','
    )]
    pub listen_peer_urls: Vec<String>,

    /// Peer URLs of this member advertised to the rest of the cluster.
    #[arg(
        long,
        env = "WITAN_INITIAL_ADVERTISE_PEER_URLS",
        default_value = "http://127.0.0.1:2380",
        value_delimiter = ','
    )]
    pub initial_advertise_peer_urls: Vec<String>,

    /// Initial cluster: `name=peer-url,name=peer-url,...`. Defaults to this
    /// member alone.
    #[arg(long, env = "WITAN_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,

    /// `new` to bootstrap a cluster, `existing` to join one.
    #[arg(
        long,
        env = "WITAN_INITIAL_CLUSTER_STATE",
        value_enum,
        default_value = "new"
    )]
    pub initial_cluster_state: ClusterState,

    /// Token that makes member and cluster ids unique to this cluster.
    #[arg(
        long,
        env = "WITAN_INITIAL_CLUSTER_TOKEN",
        default_value = "witan-cluster"
    )]
    pub initial_cluster_token: String,

    /// Have the leader promote a learner to voter by itself once it caught
    /// up with the leader (as `etcdctl member promote` would succeed).
    #[arg(long, env = "WITAN_AUTO_PROMOTE_LEARNERS")]
    pub auto_promote_learners: bool,

    /// Time between leader heartbeats, in milliseconds (as etcd).
    #[arg(long, env = "WITAN_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,

    /// Time without a heartbeat before a follower starts an election, in
    /// milliseconds (as etcd).
    #[arg(long, env = "WITAN_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,

    /// Largest client request accepted, in bytes.
    #[arg(long, env = "WITAN_MAX_REQUEST_BYTES", default_value_t = 1572864)]
    pub max_request_bytes: usize,

    /// Most operations (compares, success ops, failure ops: each) in a txn.
    #[arg(long, env = "WITAN_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: usize,

    /// How long a write or linearizable read may wait (for a leader, for
    /// replication) before it fails with Unavailable.
    #[arg(long, env = "WITAN_REQUEST_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5s")]
    pub request_timeout: Duration,

    /// How often the leader advances the replicated lease clock (and so how
    /// precisely leases expire; see docs/LEASES.md).
    #[arg(long, env = "WITAN_LEASE_TICK_INTERVAL", value_parser = humantime::parse_duration, default_value = "250ms")]
    pub lease_tick_interval: Duration,

    /// Applied log entries between two raft snapshots (which allow the log
    /// to be truncated).
    #[arg(long, env = "WITAN_SNAPSHOT_COUNT", default_value_t = 10000)]
    pub snapshot_count: u64,

    /// Log entries kept after a snapshot, so a briefly lagging follower
    /// catches up from the log instead of a full snapshot.
    #[arg(long, env = "WITAN_SNAPSHOT_CATCHUP_ENTRIES", default_value_t = 5000)]
    pub snapshot_catchup_entries: u64,

    /// Idle time after which a watch created with `progress_notify` gets a
    /// progress notification (etcd's
    /// `--experimental-watch-progress-notify-interval`; at least 100ms).
    #[arg(
        long,
        env = "WITAN_WATCH_PROGRESS_NOTIFY_INTERVAL",
        alias = "experimental-watch-progress-notify-interval",
        value_parser = humantime::parse_duration,
        default_value = "10m"
    )]
    pub watch_progress_notify_interval: Duration,

    // --- Maintenance: space quota and auto-compaction (etcd's flags; see
    // `quota` and `compaction`). ---
    /// Space quota of the state database in bytes: once its pages in use
    /// reach it, the NOSPACE alarm refuses writes that grow the store until
    /// space is freed (then it clears itself). 0 means etcd's default, 2 GiB.
    #[arg(long, env = "WITAN_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: i64,

    /// Auto-compaction mode: `periodic` (keep a span of time) or `revision`
    /// (keep a number of revisions).
    #[arg(
        long,
        env = "WITAN_AUTO_COMPACTION_MODE",
        value_enum,
        default_value = "periodic"
    )]
    pub auto_compaction_mode: AutoCompactionMode,

    /// Auto-compaction retention: periodic mode, a duration ("30m") or a
    /// number of hours; revision mode, a number of revisions. 0 disables.
    #[arg(long, env = "WITAN_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,

    /// How often auto-compaction runs (witan's own flag; default: a tenth
    /// of the retention in periodic mode, 5 minutes in revision mode, as
    /// etcd).
    #[arg(long, env = "WITAN_AUTO_COMPACTION_INTERVAL", value_parser = humantime::parse_duration)]
    pub auto_compaction_interval: Option<Duration>,

    // --- Transport security (etcd's flags; see `tls`). An `https://` URL in
    // --listen-client-urls needs --cert-file and --key-file; an `https://`
    // peer URL needs all three --peer-* files. ---
    /// Certificate (PEM) served on `https://` client URLs.
    #[arg(long, env = "WITAN_CERT_FILE")]
    pub cert_file: Option<PathBuf>,

    /// Private key (PEM) of --cert-file.
    #[arg(long, env = "WITAN_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates are verified against.
    #[arg(long, env = "WITAN_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,

    /// Refuse clients without a certificate signed by --trusted-ca-file.
    #[arg(long, env = "WITAN_CLIENT_CERT_AUTH")]
    pub client_cert_auth: bool,

    /// Certificate (PEM) this member shows to its peers, as a server and as
    /// a client.
    #[arg(long, env = "WITAN_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,

    /// Private key (PEM) of --peer-cert-file.
    #[arg(long, env = "WITAN_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,

    /// CA certificates (PEM) that peers' certificates are verified against.
    #[arg(long, env = "WITAN_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,

    /// Refuse peers without a certificate signed by --peer-trusted-ca-file.
    #[arg(long, env = "WITAN_PEER_CLIENT_CERT_AUTH")]
    pub peer_client_cert_auth: bool,

    // --- Limits: what one client can make a member hold (issue 8). Each
    // refusal is etcd's error where etcd has one. ---
    /// Largest gRPC message a client service sends, in bytes (a response:
    /// a large range, a snapshot chunk). etcd sends up to math.MaxInt32,
    /// which is also what its clients accept by default, so that is the
    /// default: anything smaller would refuse responses etcd serves. A
    /// range's size is bounded by the space quota; lower this to refuse
    /// huge ranges (clients then see ResourceExhausted and can paginate).
    #[arg(long, env = "WITAN_MAX_SEND_BYTES", default_value_t = i32::MAX as usize)]
    pub max_send_bytes: usize,

    /// Most concurrent HTTP/2 streams (gRPC calls) one client connection
    /// may open (etcd's `--max-concurrent-streams`; etcd's default is
    /// unlimited, witan's is bounded: a watch stream of etcd's clients
    /// carries many watches, so real clients stay far below it).
    #[arg(long, env = "WITAN_MAX_CONCURRENT_STREAMS", default_value_t = 4096)]
    pub max_concurrent_streams: u32,

    /// Most watches one watch stream may hold; a create past it is refused
    /// (canceled with a "too many watches" reason).
    #[arg(long, env = "WITAN_MAX_WATCHES_PER_STREAM", default_value_t = 10_000)]
    pub max_watches_per_stream: usize,

    /// Most watches one client connection may hold over all its watch
    /// streams; a create past it is refused (canceled with a "too many
    /// watches" reason).
    #[arg(
        long,
        env = "WITAN_MAX_WATCHES_PER_CONNECTION",
        default_value_t = 100_000
    )]
    pub max_watches_per_connection: usize,

    /// Most leases in the whole cluster (leases have no owner to count
    /// them per client): a LeaseGrant past it fails with ResourceExhausted
    /// "etcdserver: too many leases". Checked by the member receiving the
    /// grant, so concurrent grants may overshoot it by a few.
    #[arg(long, env = "WITAN_MAX_LEASES", default_value_t = 1_000_000)]
    pub max_leases: usize,

    /// The kind of auth token Authenticate hands out (etcd's flag). witan
    /// issues `simple` tokens: random, replicated to every member, valid
    /// for --auth-token-ttl.
    #[arg(long, env = "WITAN_AUTH_TOKEN", default_value = "simple", value_parser = parse_auth_token)]
    pub auth_token: String,

    /// Seconds a simple token stays valid after Authenticate (etcd's flag).
    #[arg(long, env = "WITAN_AUTH_TOKEN_TTL", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_token_ttl: u64,

    /// bcrypt cost of password hashes (etcd's flag; each step doubles the
    /// time a hash takes: 10 is about 60 ms).
    #[arg(long, env = "WITAN_BCRYPT_COST", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Serve the test-only fault-injection service on the peer port (lets a
    /// test cut this member's links). Never enable in production.
    #[arg(long, env = "WITAN_UNSAFE_FAULT_INJECTION", hide = true)]
    pub unsafe_fault_injection: bool,

    /// Log level filter (tracing `EnvFilter` syntax, e.g. `info` or
    /// `witan_server=debug,info`).
    #[arg(long, env = "WITAN_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "WITAN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `--auto-compaction-retention` does not fit `--auto-compaction-mode`.
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// A URL is not of the form `http(s)://host:port`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An --initial-cluster item is not `name=url`.
    #[error("invalid --initial-cluster entry {0:?}: expected name=http(s)://host:port")]
    InvalidClusterEntry(String),
    /// This member's name is missing from --initial-cluster.
    #[error("--initial-cluster does not contain this member's name {0:?}")]
    NameNotInCluster(String),
    /// The same name appears twice in --initial-cluster.
    #[error("--initial-cluster names member {0:?} more than once")]
    DuplicateName(String),
    /// Two members would get the same id.
    #[error("members {0:?} and {1:?} hash to the same member id; rename one")]
    IdCollision(String, String),
    /// TLS flags that cannot work together (see `Config::validate_tls`).
    #[error("{0}")]
    Tls(TlsFlagError),
    /// A list flag is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Timing flags that cannot work together.
    #[error("--election-timeout ({election}ms) must be at least 5 times --heartbeat-interval ({heartbeat}ms)")]
    Timing {
        /// Heartbeat interval in ms.
        heartbeat: u64,
        /// Election timeout in ms.
        election: u64,
    },
}

/// TLS flags that do not fit together or do not fit the URLs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TlsFlagError {
    /// One flag of a pair is set without the other.
    #[error("{0} and {1} must be given together")]
    Pair(&'static str, &'static str),
    /// A certificate check is asked for without the CA to check against.
    #[error("{0} needs {1}")]
    NoCa(&'static str, &'static str),
    /// An `https://` client URL without a certificate.
    #[error("--listen-client-urls has the https URL {0:?} but no --cert-file and --key-file")]
    NoClientCert(String),
    /// An `https://` peer URL without the peer certificate files.
    #[error("peer URL {0:?} is https: it needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file")]
    NoPeerCert(String),
}

/// A member of the initial cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    /// The member's name.
    pub name: String,
    /// Its peer URLs.
    pub peer_urls: Vec<String>,
}

impl Config {
    /// A configuration with every default, as `witan` with no flags.
    pub fn defaults() -> Config {
        Config::parse_from(["witan"])
    }

    /// Checks the configuration as a whole.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (flag, urls) in [
            ("--listen-client-urls", &self.listen_client_urls),
            ("--advertise-client-urls", &self.advertise_client_urls),
            ("--listen-peer-urls", &self.listen_peer_urls),
            (
                "--initial-advertise-peer-urls",
                &self.initial_advertise_peer_urls,
            ),
        ] {
            if urls.is_empty() {
                return Err(ConfigError::Empty(flag));
            }
            for url in urls {
                parse_host_port(url)?;
            }
        }
        if self.heartbeat_interval == 0 || self.election_timeout < 5 * self.heartbeat_interval {
            return Err(ConfigError::Timing {
                heartbeat: self.heartbeat_interval,
                election: self.election_timeout,
            });
        }
        self.validate_tls().map_err(ConfigError::Tls)?;
        self.auto_compaction()?;
        let members = self.initial_members()?;
        if !members.contains_key(&self.name) {
            return Err(ConfigError::NameNotInCluster(self.name.clone()));
        }
        let mut ids: BTreeMap<NodeId, &str> = BTreeMap::new();
        for name in members.keys() {
            if let Some(other) = ids.insert(self.member_id_of(name), name) {
                return Err(ConfigError::IdCollision(other.to_string(), name.clone()));
            }
        }
        Ok(())
    }

    /// Checks that the TLS flags fit the URLs: files for every `https://`
    /// listener, and a CA for every certificate check asked for. (Whether
    /// the files are readable PEM is checked when they are loaded, by
    /// `tls`.)
    pub fn validate_tls(&self) -> Result<(), TlsFlagError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(TlsFlagError::Pair("--cert-file", "--key-file"));
        }
        if self.peer_cert_file.is_some() != self.peer_key_file.is_some() {
            return Err(TlsFlagError::Pair("--peer-cert-file", "--peer-key-file"));
        }
        if self.client_cert_auth && self.trusted_ca_file.is_none() {
            return Err(TlsFlagError::NoCa(
                "--client-cert-auth",
                "--trusted-ca-file",
            ));
        }
        if self.peer_client_cert_auth && self.peer_trusted_ca_file.is_none() {
            return Err(TlsFlagError::NoCa(
                "--peer-client-cert-auth",
                "--peer-trusted-ca-file",
            ));
        }
        let https = |urls: &[String]| urls.iter().find(|u| is_https(u)).cloned();
        if self.cert_file.is_none() {
            if let Some(url) = https(&self.listen_client_urls) {
                return Err(TlsFlagError::NoClientCert(url));
            }
        }
        let mut peer_urls = self.listen_peer_urls.clone();
        peer_urls.extend(self.initial_advertise_peer_urls.iter().cloned());
        if let Some(spec) = &self.initial_cluster {
            peer_urls.extend(
                spec.split(',')
                    .filter_map(|item| item.split_once('='))
                    .map(|(_, url)| url.trim().to_string()),
            );
        }
        if let Some(url) = https(&peer_urls) {
            if self.peer_cert_file.is_none() || self.peer_trusted_ca_file.is_none() {
                return Err(TlsFlagError::NoPeerCert(url));
            }
        }
        Ok(())
    }

    /// The members of `--initial-cluster` by name (this member alone when the
    /// flag is absent).
    pub fn initial_members(&self) -> Result<BTreeMap<String, InitialMember>, ConfigError> {
        let Some(spec) = &self.initial_cluster else {
            let me = InitialMember {
                name: self.name.clone(),
                peer_urls: self.initial_advertise_peer_urls.clone(),
            };
            return Ok(BTreeMap::from([(self.name.clone(), me)]));
        };
        let mut members: BTreeMap<String, InitialMember> = BTreeMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, url) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::InvalidClusterEntry(item.to_string()))?;
            if name.is_empty() {
                return Err(ConfigError::InvalidClusterEntry(item.to_string()));
            }
            parse_host_port(url)?;
            // etcd allows a name to repeat to give one member several peer URLs.
            members
                .entry(name.to_string())
                .or_insert_with(|| InitialMember {
                    name: name.to_string(),
                    peer_urls: Vec::new(),
                })
                .peer_urls
                .push(url.to_string());
        }
        if members.is_empty() {
            return Err(ConfigError::Empty("--initial-cluster"));
        }
        Ok(members)
    }

    /// What auto-compaction keeps (from its mode and retention flags).
    pub fn auto_compaction(&self) -> Result<Retention, ConfigError> {
        Ok(Retention::parse(
            self.auto_compaction_mode,
            &self.auto_compaction_retention,
        )?)
    }

    /// This member's id.
    pub fn member_id(&self) -> NodeId {
        self.member_id_of(&self.name)
    }

    /// The id of the initial member called `name`: a hash of the cluster
    /// token and the name, so every member computes the same ids without
    /// talking to the others.
    pub fn member_id_of(&self, name: &str) -> NodeId {
        let id = fnv1a64(&[self.initial_cluster_token.as_bytes(), b"/", name.as_bytes()]);
        // 0 means "no member" in etcd's API.
        id.max(1)
    }

    /// The cluster id: a hash of the token and the initial member ids.
    pub fn cluster_id(&self) -> u64 {
        let names: Vec<String> = match self.initial_members() {
            Ok(m) => m.into_keys().collect(),
            Err(_) => vec![self.name.clone()],
        };
        let ids: Vec<[u8; 8]> = names
            .iter()
            .map(|n| self.member_id_of(n).to_be_bytes())
            .collect();
        let mut parts: Vec<&[u8]> = vec![self.initial_cluster_token.as_bytes()];
        parts.extend(ids.iter().map(|b| b.as_slice()));
        fnv1a64(&parts).max(1)
    }

    /// The socket addresses to serve clients on.
    pub fn client_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_client_urls
            .iter()
            .map(|u| parse_host_port(u))
            .collect()
    }

    /// The socket addresses to serve peers on.
    pub fn peer_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_peer_urls
            .iter()
            .map(|u| parse_host_port(u))
            .collect()
    }
}

/// Whether `url` is an `https://` URL (served or reached with TLS).
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// Parses `http://host:port` or `https://host:port` into a socket address
/// (host must be an IP address or `localhost`).
pub fn parse_host_port(url: &str) -> Result<SocketAddr, ConfigError> {
    let invalid = |reason| ConfigError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("only http:// and https:// URLs are supported"))?;
    let host_port = rest.trim_end_matches('/');
    let host_port = host_port.replacen("localhost:", "127.0.0.1:", 1);
    host_port
        .parse::<SocketAddr>()
        .map_err(|_| invalid("expected an IP address and a port, e.g. http://127.0.0.1:2379"))
}

/// FNV-1a over the concatenated parts: a stable hash for ids (not for
/// anything an adversary chooses).
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// `--auth-token`: only `simple` is served; etcd's `jwt,...` gets a
/// clear refusal instead of silently issuing another kind.
fn parse_auth_token(value: &str) -> Result<String, String> {
    match value.split(',').next().unwrap_or_default() {
        "simple" => Ok("simple".to_string()),
        "jwt" => Err("jwt tokens are not supported by witan: use --auth-token simple".into()),
        other => Err(format!(
            "unknown auth token kind {other:?}: expected simple"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["witan"];
        all.extend_from_slice(args);
        Config::parse_from(all)
    }

    #[test]
    fn defaults_are_a_single_local_member() {
        let c = Config::defaults();
        c.validate().expect("defaults are valid");
        assert_eq!(c.data_dir, PathBuf::from("witan.data"));
        assert_eq!(
            c.client_addrs().unwrap(),
            vec!["127.0.0.1:2379".parse().unwrap()]
        );
        assert_eq!(c.initial_members().unwrap().len(), 1);
    }

    #[test]
    fn initial_cluster_parses_and_ids_agree_across_members() {
        let spec = "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2381,n3=http://127.0.0.1:2382";
        let a = config(&["--name", "n1", "--initial-cluster", spec]);
        let b = config(&["--name", "n2", "--initial-cluster", spec]);
        a.validate().unwrap();
        assert_eq!(a.initial_members().unwrap().len(), 3);
        assert_eq!(a.member_id_of("n2"), b.member_id());
        assert_eq!(a.cluster_id(), b.cluster_id());
        assert_ne!(a.member_id(), b.member_id());
    }

    #[test]
    fn bad_configs_are_explained() {
        let c = config(&[
            "--name",
            "n9",
            "--initial-cluster",
            "n1=http://127.0.0.1:2380",
        ]);
        assert_eq!(
            c.validate(),
            Err(ConfigError::NameNotInCluster("n9".into()))
        );
        let c = config(&["--initial-cluster", "garbage"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidClusterEntry(_))
        ));
        let c = config(&["--listen-client-urls", "unix://127.0.0.1:1"]);
        assert!(matches!(c.validate(), Err(ConfigError::InvalidUrl { .. })));
        let c = config(&["--heartbeat-interval", "500", "--election-timeout", "1000"]);
        assert!(matches!(c.validate(), Err(ConfigError::Timing { .. })));
    }

    #[test]
    fn maintenance_flags_are_etcds() {
        use crate::compaction::Retention;
        let c = Config::defaults();
        assert_eq!(c.quota_backend_bytes, 0);
        assert_eq!(c.auto_compaction(), Ok(Retention::Off));
        let c = config(&[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1000",
        ]);
        assert_eq!(c.auto_compaction(), Ok(Retention::Revisions(1000)));
        let c = config(&["--auto-compaction-retention", "1h"]);
        assert_eq!(
            c.auto_compaction(),
            Ok(Retention::Period(Duration::from_secs(3600)))
        );
        let c = config(&[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1h",
        ]);
        assert!(matches!(c.validate(), Err(ConfigError::Retention(_))));
    }

    #[test]
    fn durations_use_humantime() {
        let c = config(&["--request-timeout", "250ms"]);
        assert_eq!(c.request_timeout, Duration::from_millis(250));
        assert_eq!(
            Config::defaults().watch_progress_notify_interval,
            Duration::from_secs(600)
        );
        let c = config(&["--watch-progress-notify-interval", "1s"]);
        assert_eq!(c.watch_progress_notify_interval, Duration::from_secs(1));
        let c = config(&["--experimental-watch-progress-notify-interval", "2m"]);
        assert_eq!(c.watch_progress_notify_interval, Duration::from_secs(120));
    }

    #[test]
    fn tls_flags_must_fit_the_urls() {
        let https_client = ["--listen-client-urls", "https://127.0.0.1:2379"];
        let c = config(&https_client);
        assert_eq!(
            c.validate(),
            Err(ConfigError::Tls(TlsFlagError::NoClientCert(
                "https://127.0.0.1:2379".into()
            )))
        );
        let mut args = https_client.to_vec();
        args.extend(["--cert-file", "c.pem", "--key-file", "k.pem"]);
        let c = config(&args);
        c.validate().unwrap();
        assert_eq!(
            c.client_addrs().unwrap(),
            vec!["127.0.0.1:2379".parse().unwrap()]
        );

        let c = config(&["--cert-file", "c.pem"]);
        assert_eq!(
            c.validate(),
            Err(ConfigError::Tls(TlsFlagError::Pair(
                "--cert-file",
                "--key-file"
            )))
        );
        let c = config(&["--client-cert-auth"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Tls(TlsFlagError::NoCa(..)))
        ));
        let c = config(&["--peer-client-cert-auth"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Tls(TlsFlagError::NoCa(..)))
        ));

        let peer = "n1=https://127.0.0.1:2380";
        let c = config(&["--name", "n1", "--initial-cluster", peer]);
        let err = c.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::Tls(TlsFlagError::NoPeerCert("https://127.0.0.1:2380".into()))
        );
        assert!(err.to_string().contains("--peer-trusted-ca-file"));
        let c = config(&[
            "--name",
            "n1",
            "--initial-cluster",
            peer,
            "--listen-peer-urls",
            "https://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "https://127.0.0.1:2380",
            "--peer-cert-file",
            "p.pem",
            "--peer-key-file",
            "pk.pem",
            "--peer-trusted-ca-file",
            "ca.pem",
            "--peer-client-cert-auth",
        ]);
        c.validate().unwrap();
    }
}
