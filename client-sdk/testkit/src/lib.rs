//! In-process witan members for the SDK's doc tests and integration
//! tests: a [`Cluster`] of 1 or more members, each with its own data dir
//! and loopback ports, that a test can stop and restart member by member.
//!
//! This crate deliberately does not depend on `witan-client` (the SDK's
//! tests depend on it, and one crate linked twice would give two
//! incompatible copies of its types): it hands out endpoint strings.
//! Helpers panic on failure: they only run in tests.
//!
//! [`Cluster::start_with`] passes extra server flags (`--bcrypt-cost`,
//! `--auth-token-ttl`, TLS files); with `--cert-file` among them the
//! members serve clients on `https://`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio::time::Instant;
use tonic::Code;
use witan_proto::etcdserverpb::RangeRequest;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_server::config::Config;
use witan_server::node::Node;

/// How long a member may take to serve after starting.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One member's fixed identity; its node while running.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    node: Option<Node>,
}

/// A running cluster of in-process members.
pub struct Cluster {
    members: Vec<Member>,
    initial_cluster: String,
    /// Server flags added to every member's (see [`Cluster::start_with`]).
    extra_args: Vec<String>,
    // Last, so the data dirs outlive the members.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// One member, serving.
    pub async fn single() -> Cluster {
        Cluster::start(1).await
    }

    /// `size` members, every one serving linearizable reads.
    pub async fn start(size: usize) -> Cluster {
        Cluster::start_with(size, &[]).await
    }

    /// `size` members started with these server flags added, e.g.
    /// `["--bcrypt-cost", "4", "--auth-token-ttl", "2"]`, or TLS files
    /// (`--cert-file`, `--key-file`, `--trusted-ca-file`,
    /// `--client-cert-auth`: clients then reach members on `https://`).
    pub async fn start_with(size: usize, extra_args: &[&str]) -> Cluster {
        init_tracing();
        let dir = tempfile::tempdir().expect("a temp dir");
        let ports = free_ports(size * 2);
        let members: Vec<Member> = (0..size)
            .map(|i| {
                let name = format!("m{}", i + 1);
                Member {
                    data_dir: dir.path().join(&name),
                    name,
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    node: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            members,
            initial_cluster,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            _dir: dir,
        };
        // Every member must be listening before any waits for a leader.
        let starts: Vec<_> = (0..size).map(|i| cluster.config(i)).collect();
        for (i, config) in starts.into_iter().enumerate() {
            let node = Node::start(config).await.expect("the member starts");
            cluster.members[i].node = Some(node);
        }
        for i in 0..size {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    fn config(&self, i: usize) -> Config {
        let m = &self.members[i];
        let client = self.endpoint(i);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let data_dir = m.data_dir.to_string_lossy().into_owned();
        let base = [
            "witan",
            "--name",
            &m.name,
            "--data-dir",
            &data_dir,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &self.initial_cluster,
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "300",
            "--request-timeout",
            "2s",
        ];
        let args = base
            .into_iter()
            .map(str::to_string)
            .chain(self.extra_args.iter().cloned());
        Config::parse_from(args)
    }

    /// Whether members serve clients over TLS.
    fn tls(&self) -> bool {
        self.extra_args.iter().any(|a| a == "--cert-file")
    }

    /// The number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Member `i`'s client URL (`http://127.0.0.1:port`, `https://` with
    /// TLS), running or not.
    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.size()).map(|i| self.endpoint(i)).collect()
    }

    /// Whether member `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].node.is_some()
    }

    /// The index of the member the running members take as leader, once
    /// they agree on one.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let views: Vec<Option<u64>> = self
                .members
                .iter()
                .filter_map(|m| m.node.as_ref())
                .map(|n| n.raft().metrics().borrow().current_leader)
                .collect();
            let agreed = match views.first() {
                Some(Some(leader)) if views.iter().all(|v| *v == Some(*leader)) => Some(*leader),
                _ => None,
            };
            let index = agreed.and_then(|leader| {
                self.members
                    .iter()
                    .position(|m| m.node.as_ref().is_some_and(|n| n.id() == leader))
            });
            if let Some(index) = index {
                return index;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {READY_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops member `i` (it stops serving, then stops raft).
    pub async fn stop_member(&mut self, i: usize) {
        if let Some(node) = self.members[i].node.take() {
            tracing::info!(member = %self.members[i].name, "stopping member");
            node.shutdown().await;
        }
    }

    /// Restarts member `i` from its data dir, on its old ports, and waits
    /// until it serves.
    pub async fn restart_member(&mut self, i: usize) {
        assert!(!self.is_running(i), "member {i} is running");
        tracing::info!(member = %self.members[i].name, "restarting member");
        let node = Node::start(self.config(i))
            .await
            .expect("the member restarts");
        self.members[i].node = Some(node);
        self.wait_ready(i).await;
    }

    /// Waits until member `i` answers a linearizable read; with auth on
    /// (a refusal for lack of credentials) or TLS (the probe has no
    /// certificates), until it takes clients and knows a leader.
    pub async fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + READY_WITHIN;
        let endpoint = self.endpoint(i);
        loop {
            let ready = if self.tls() {
                let address = endpoint.trim_start_matches("https://");
                tokio::net::TcpStream::connect(address).await.is_ok() && self.knows_leader(i)
            } else {
                self.probe(&endpoint, i).await
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "member {i} not ready within {READY_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One readiness probe of plain-text member `i`.
    async fn probe(&self, endpoint: &str, i: usize) -> bool {
        let Ok(mut kv) = KvClient::connect(endpoint.to_string()).await else {
            return false;
        };
        let probe = RangeRequest {
            key: b"witan-testkit/ready".to_vec(),
            ..Default::default()
        };
        match kv.range(probe).await {
            Ok(_) => true,
            Err(status) => {
                matches!(
                    status.code(),
                    Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied
                ) && self.knows_leader(i)
            }
        }
    }

    /// Whether member `i` runs and knows a leader.
    fn knows_leader(&self, i: usize) -> bool {
        self.members[i]
            .node
            .as_ref()
            .is_some_and(|n| n.raft().metrics().borrow().current_leader.is_some())
    }

    /// Stops every member.
    pub async fn stop(mut self) {
        for i in 0..self.size() {
            self.stop_member(i).await;
        }
    }
}

/// Free loopback ports, reserved all at once so none repeats.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// Logs to stderr when `RUST_LOG` is set (once per process).
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
