//! Backup and restore through witanctl: `snapshot save` from a live witan
//! member, `snapshot status` of the file, `snapshot restore` into a fresh
//! data dir, and a new member started from it holds every key.

mod common;

use clap::Parser;
use common::{free_port, ok};
use witan_client_testkit::Cluster;
use witan_server::config::Config;
use witan_server::node::Node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_status_restore_and_serve() {
    let cluster = Cluster::single().await;
    let ep = &cluster.endpoint(0);
    for i in 0..20 {
        ok(ep, &["put", &format!("key{i:02}"), &format!("value{i}")]).await;
    }
    let deleted: serde_json::Value =
        serde_json::from_str(&ok(ep, &["del", "key00", "-w", "json"]).await).unwrap();
    let revision = deleted["header"]["revision"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let file = file.to_str().unwrap();
    assert_eq!(
        ok(ep, &["snapshot", "save", file]).await,
        format!("Snapshot saved at {file}\n")
    );
    cluster.stop().await;

    let status = ok(ep, &["snapshot", "status", file]).await;
    let cells: Vec<&str> = status.strip_suffix('\n').unwrap().split(", ").collect();
    assert_eq!(cells.len(), 4, "{status}");
    assert_eq!(
        (cells[1], cells[2]),
        (revision.to_string().as_str(), "19"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ep, &["snapshot", "status", file, "-w", "json"]).await).unwrap();
    assert_eq!(json["revision"], revision);
    assert_eq!(json["totalKey"], 19);

    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let initial = format!("r1={peer_url}");
    let data_dir = dir.path().join("r1");
    let data = data_dir.to_str().unwrap();
    let restored = ok(
        ep,
        &[
            "snapshot",
            "restore",
            file,
            "--data-dir",
            data,
            "--name",
            "r1",
            "--initial-cluster",
            &initial,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster-token",
            "restored",
        ],
    )
    .await;
    assert!(
        restored.starts_with(&format!(
            "Restored snapshot {file} into {data}: revision {revision} "
        )),
        "{restored}"
    );

    let config = Config::parse_from([
        "witan",
        "--name",
        "r1",
        "--data-dir",
        data,
        "--listen-client-urls",
        &client_url,
        "--advertise-client-urls",
        &client_url,
        "--listen-peer-urls",
        &peer_url,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster",
        &initial,
        "--initial-cluster-token",
        "restored",
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "300",
    ]);
    let node = Node::start(config)
        .await
        .expect("the restored member starts");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let addr = format!("127.0.0.1:{client}");
    loop {
        let out = common::run(&addr, &["get", "key", "--prefix", "--count-only"]).await;
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "19\n");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restored member serves"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ok(&addr, &["get", "key19"]).await, "key19\nvalue19\n");
    assert_eq!(ok(&addr, &["get", "key00"]).await, "");
    node.shutdown().await;
}
