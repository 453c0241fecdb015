//! The real etcdctl 3.4 against witan with endpoints given as URLs: its Go
//! gRPC client then sends `:authority: http://127.0.0.1:PORT`, which only
//! works because client listeners repair it (`witan_server::h2_authority`).
//! Skipped, with a notice, where /usr/bin/etcdctl is not installed.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::time::Instant;
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");
const ETCDCTL: &str = "/usr/bin/etcdctl";
const WITHIN: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

fn etcdctl_missing() -> bool {
    if Path::new(ETCDCTL).exists() {
        return false;
    }
    eprintln!("skipped: {ETCDCTL} is not installed");
    true
}

/// Runs etcdctl against `endpoint` and returns its stdout; fails on a
/// non-zero exit, with stderr in the error.
async fn etcdctl(endpoint: &str, args: &[&str]) -> Result<String> {
    let output = tokio::process::Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            endpoint,
            "--dial-timeout",
            "5s",
            "--command-timeout",
            "10s",
        ])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .context("running etcdctl")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "etcdctl {args:?} against {endpoint} exited with {}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

#[tokio::test]
async fn etcdctl_commands_work_with_url_endpoints() -> Result<()> {
    if etcdctl_missing() {
        return Ok(());
    }
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let endpoints = cluster.endpoints();
    let first = endpoints[0].as_str();
    assert!(first.starts_with("http://"), "{first}");

    tracing::info!("endpoint status on one URL endpoint");
    let status = etcdctl(first, &["endpoint", "status"]).await?;
    let id = format!("{:x}", cluster.id(0));
    assert!(
        status.starts_with(&format!("{first}, {id}, ")),
        "unexpected status line: {status}"
    );

    tracing::info!("waiting until MemberList has every member's client URL");
    let deadline = Instant::now() + WITHIN;
    while cluster
        .member_list(0)
        .await?
        .iter()
        .any(|(_, _, _, clients, _)| clients.is_empty())
    {
        if Instant::now() >= deadline {
            bail!("members never published their client URLs");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    tracing::info!("endpoint status --cluster -w table");
    let table = etcdctl(first, &["endpoint", "status", "--cluster", "-w", "table"]).await?;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let row = table
            .lines()
            .find(|line| line.contains(endpoint.as_str()))
            .with_context(|| format!("no row for {endpoint} in\n{table}"))?;
        assert!(row.contains(&format!("{:x}", cluster.id(i))), "{row}");
    }
    let leaders = table
        .lines()
        .filter(|l| l.contains("|      true |"))
        .count();
    assert_eq!(leaders, 1, "exactly one leader expected in\n{table}");

    tracing::info!("a write, then endpoint hashkv --cluster until every member agrees");
    etcdctl(first, &["put", "authority-test", "v"]).await?;
    let deadline = Instant::now() + WITHIN;
    loop {
        let hashes = etcdctl(first, &["endpoint", "hashkv", "--cluster"]).await?;
        let mut seen = Vec::new();
        for endpoint in &endpoints {
            let line = hashes
                .lines()
                .find(|line| line.starts_with(&format!("{endpoint}, ")))
                .with_context(|| format!("no hash for {endpoint} in\n{hashes}"))?;
            let hash: u32 = line[endpoint.len() + 2..].trim().parse()?;
            seen.push(hash);
        }
        if seen.iter().all(|h| *h == seen[0]) {
            break;
        }
        if Instant::now() >= deadline {
            bail!("members' hashes never agreed: {hashes}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tracing::info!("defrag --cluster");
    let defrag = etcdctl(first, &["defrag", "--cluster"]).await?;
    for endpoint in &endpoints {
        assert!(
            defrag.contains(&format!("Finished defragmenting etcd member[{endpoint}]")),
            "{defrag}"
        );
    }

    tracing::info!("move-leader through the leader's URL endpoint");
    let leader = cluster.leader(WITHIN).await?;
    let target = (leader + 1) % cluster.size();
    let target_id = format!("{:x}", cluster.id(target));
    let moved = etcdctl(&endpoints[leader], &["move-leader", &target_id]).await?;
    assert!(
        moved.contains(&format!(
            "Leadership transferred from {:x} to {target_id}",
            cluster.id(leader)
        )),
        "{moved}"
    );
    Ok(())
}
