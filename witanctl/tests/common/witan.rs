//! One in-process witan member on free loopback ports, started with extra
//! server flags (TLS, auth settings) that the shared test kit does not
//! take, and stopped when the test ends.

use std::time::Duration;

use clap::Parser;
use witan_server::config::Config;
use witan_server::node::Node;

use super::{free_port, run};

/// A running member and the temp dir holding its data.
pub struct Witan {
    node: Option<Node>,
    /// Its client endpoint, `host:port` (no scheme).
    pub client: String,
    _dir: tempfile::TempDir,
}

impl Witan {
    /// Starts a member with `extra` server flags (`https` client URLs when
    /// `tls`) and waits until `witanctl <ready_args> get ready` succeeds.
    pub async fn start(tls: bool, extra: &[String], ready_args: &[&str]) -> Witan {
        let dir = tempfile::tempdir().unwrap();
        let client = format!("127.0.0.1:{}", free_port());
        let scheme = if tls { "https" } else { "http" };
        let client_url = format!("{scheme}://{client}");
        let peer = format!("http://127.0.0.1:{}", free_port());
        let data = dir.path().join("m1").display().to_string();
        let mut args: Vec<String> = [
            "witan",
            "--name",
            "m1",
            "--data-dir",
            &data,
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("m1={peer}"),
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "300",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        let node = Node::start(Config::parse_from(args))
            .await
            .expect("the member starts");
        let witan = Witan {
            node: Some(node),
            client,
            _dir: dir,
        };
        let mut args = ready_args.to_vec();
        args.extend(["get", "ready"]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if run(&witan.client, &args).await.status.success() {
                return witan;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "witan did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the member.
    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }
}
