//! Transport security against real member processes: a cluster with TLS on
//! client and peer links replicates; with `--client-cert-auth` only clients
//! with a certificate from the trusted CA get in (no certificate, another
//! CA's and an expired one are refused at the handshake); with
//! `--peer-client-cert-auth` a member whose peer certificate comes from
//! another CA never joins the quorum. Certificates are generated here.

mod common;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use common::certs::{Ca, Pair};
use tokio::time::Instant;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::{PutRequest, RangeRequest};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

/// Every TLS flag for a member serving `pair` on client and peer links,
/// trusting `ca` on both and requiring client certificates on both.
fn tls_args(pair: &Pair, ca: &Path) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, path) in [
        ("--cert-file", &pair.cert),
        ("--key-file", &pair.key),
        ("--trusted-ca-file", &ca.to_path_buf()),
        ("--peer-cert-file", &pair.cert),
        ("--peer-key-file", &pair.key),
        ("--peer-trusted-ca-file", &ca.to_path_buf()),
    ] {
        args.push(flag.to_string());
        args.push(path.display().to_string());
    }
    args.push("--client-cert-auth".to_string());
    args.push("--peer-client-cert-auth".to_string());
    args
}

/// A cluster of `size` members with TLS everywhere; member `i` gets its
/// peer certificate from `peer_ca(i)` (the good CA unless a test says
/// otherwise). Not launched.
fn prepare(
    dir: &Path,
    ca: &Ca,
    size: usize,
    peer_ca: impl Fn(usize) -> Option<Ca>,
) -> Result<Cluster> {
    let ca_file = ca.write(dir, "ca")?;
    let mut cluster = Cluster::prepare(
        NODE,
        ClusterOptions {
            size,
            ..ClusterOptions::default()
        },
    )?;
    cluster.use_https()?;
    for i in 0..size {
        let name = format!("member{i}");
        let pair = match peer_ca(i) {
            Some(other) => other.issue(dir, &name, false)?,
            None => ca.issue(dir, &name, false)?,
        };
        cluster.set_member_args(i, tls_args(&pair, &ca_file));
    }
    Ok(cluster)
}

/// A KV client to `url` trusting `ca`, showing `identity` if given.
async fn kv(
    url: &str,
    ca: &Ca,
    identity: Option<&Pair>,
) -> Result<KvClient<tonic::transport::Channel>> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.cert_pem));
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&pair.cert)?,
            std::fs::read(&pair.key)?,
        ));
    }
    let channel = Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(KvClient::new(channel))
}

async fn put(url: &str, ca: &Ca, identity: Option<&Pair>, key: &str, value: &str) -> Result<()> {
    kv(url, ca, identity)
        .await?
        .put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..PutRequest::default()
        })
        .await?;
    Ok(())
}

async fn get(url: &str, ca: &Ca, identity: Option<&Pair>, key: &str) -> Result<Option<Vec<u8>>> {
    let response = kv(url, ca, identity)
        .await?
        .range(RangeRequest {
            key: key.into(),
            ..RangeRequest::default()
        })
        .await?;
    Ok(response
        .into_inner()
        .kvs
        .into_iter()
        .next()
        .map(|kv| kv.value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_replicates_and_admits_only_trusted_client_certs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("witan test CA")?;
    let rogue = Ca::new("rogue CA")?;
    let mut cluster = prepare(dir.path(), &ca, 3, |_| None)?;
    cluster.launch().await?;
    let urls: Vec<String> = (0..3)
        .map(|i| cluster.https_endpoint(i).context("https endpoint"))
        .collect::<Result<_>>()?;

    // Writes over TLS replicate over TLS peer links.
    let alice = ca.issue(dir.path(), "alice", false)?;
    put(&urls[0], &ca, Some(&alice), "tls/k", "v1").await?;
    for url in &urls {
        assert_eq!(
            get(url, &ca, Some(&alice), "tls/k").await?,
            Some(b"v1".to_vec())
        );
    }

    // Refused at the handshake: no certificate, another CA's, an expired one.
    let mallory = rogue.issue(dir.path(), "mallory", false)?;
    let expired = ca.issue(dir.path(), "expired", true)?;
    for (what, identity) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&mallory)),
        ("an expired certificate", Some(&expired)),
    ] {
        let refused = put(&urls[1], &ca, identity, "tls/k", "intruder").await;
        assert!(refused.is_err(), "a client with {what} was let in");
    }
    assert_eq!(
        get(&urls[2], &ca, Some(&alice), "tls/k").await?,
        Some(b"v1".to_vec())
    );

    // The member still accepts good clients after refusing bad ones.
    put(&urls[1], &ca, Some(&alice), "tls/k", "v2").await?;
    assert_eq!(
        get(&urls[0], &ca, Some(&alice), "tls/k").await?,
        Some(b"v2".to_vec())
    );

    etcdctl_put_get(&urls[2], dir.path(), &ca, &alice)?;
    curl_gateway(&urls[0], dir.path(), &ca, &alice)?;

    // A member added later joins over TLS (it asks the members who it is,
    // then replicates) and serves what was written before.
    let new = cluster.add_member(0, false).await?;
    let pair = ca.issue(dir.path(), "member-new", false)?;
    let ca_file = ca.write(dir.path(), "ca")?;
    cluster.set_member_args(new, tls_args(&pair, &ca_file));
    cluster.start_member(new)?;
    cluster.wait_voter(new, Duration::from_secs(30)).await?;
    let url = cluster.https_endpoint(new).context("https endpoint")?;
    assert_eq!(
        get(&url, &ca, Some(&alice), "tls/k").await?,
        Some(b"v2".to_vec())
    );
    Ok(())
}

/// The JSON gateway over TLS (HTTP/1.1, chosen by ALPN), through curl if
/// it is installed: `tls/k` is `v2` (base64 `dGxzL2s=`, `djI=`).
fn curl_gateway(url: &str, dir: &Path, ca: &Ca, pair: &Pair) -> Result<()> {
    let curl = Path::new("/usr/bin/curl");
    if !curl.exists() {
        eprintln!("NOTICE: /usr/bin/curl not found: skipping the HTTPS gateway check");
        return Ok(());
    }
    let ca_file = ca.write(dir, "curl-ca")?;
    let output = std::process::Command::new(curl)
        .args(["-sS", "-f", "--http1.1", "--max-time", "5"])
        .arg("--cacert")
        .arg(&ca_file)
        .arg("--cert")
        .arg(&pair.cert)
        .arg("--key")
        .arg(&pair.key)
        .args(["-d", r#"{"key":"dGxzL2s="}"#])
        .arg(format!("{url}/v3/kv/range"))
        .output()?;
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(body.contains(r#""value":"djI=""#), "{body}");
    // Without a client certificate the handshake is refused.
    let refused = std::process::Command::new(curl)
        .args(["-sS", "-f", "--max-time", "5", "--cacert"])
        .arg(&ca_file)
        .arg(format!("{url}/health"))
        .output()?;
    assert!(
        !refused.status.success(),
        "curl without a certificate got in"
    );
    Ok(())
}

/// etcd's own client over TLS, if it is installed.
fn etcdctl_put_get(url: &str, dir: &Path, ca: &Ca, pair: &Pair) -> Result<()> {
    let etcdctl = Path::new("/usr/bin/etcdctl");
    if !etcdctl.exists() {
        eprintln!("NOTICE: /usr/bin/etcdctl not found: skipping the etcdctl TLS check");
        return Ok(());
    }
    let ca_file = ca.write(dir, "etcdctl-ca")?;
    let run = |args: &[&str]| -> Result<String> {
        let output = std::process::Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={url}"))
            .arg(format!("--cacert={}", ca_file.display()))
            .arg(format!("--cert={}", pair.cert.display()))
            .arg(format!("--key={}", pair.key.display()))
            .arg("--dial-timeout=3s")
            .arg("--command-timeout=5s")
            .args(args)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    };
    assert_eq!(run(&["put", "tls/etcdctl", "hello"])?.trim(), "OK");
    assert_eq!(
        run(&["get", "tls/etcdctl", "--print-value-only"])?.trim(),
        "hello"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_another_cas_peer_certificate_never_joins() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("witan test CA")?;
    let mut cluster = prepare(dir.path(), &ca, 3, |i| {
        (i == 2).then(|| Ca::new("rogue CA").expect("rogue CA"))
    })?;
    for i in 0..3 {
        cluster.start_member(i)?;
    }
    // The two good members make a quorum by themselves.
    cluster.wait_ready(0, Duration::from_secs(30)).await?;
    cluster.wait_ready(1, Duration::from_secs(30)).await?;
    let mut client = cluster.client(0).await?;
    client.put("tls/peer", "quorum", None).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.local_get(1, "tls/peer").await? != Some(b"quorum".to_vec()) {
        assert!(
            Instant::now() < deadline,
            "the write did not reach member 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.put("tls/peer", "again", None).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.local_get(1, "tls/peer").await? != Some(b"again".to_vec()) {
        assert!(
            Instant::now() < deadline,
            "the second write did not reach member 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The rogue member answers (its client port is fine) but has no data.
    assert_eq!(cluster.local_get(2, "tls/peer").await?, None);
    Ok(())
}
