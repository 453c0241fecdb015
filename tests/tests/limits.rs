//! The limits a client meets (issue 8), end to end against one real member
//! started with small limits: the lease count, watches per stream and per
//! connection, gRPC
//! message sizes both ways on every kind of service, and concurrent HTTP/2
//! streams per connection. Proposal back-pressure ("too many requests") is
//! tested beside the proposer: filling a 65,536-command queue is not a fast
//! test.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use etcd_client::{Client, GetOptions};
use tonic::Code;
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");
const WAIT: Duration = Duration::from_secs(10);
const MAX_REQUEST_BYTES: usize = 4096;
const MAX_SEND_BYTES: usize = 64 * 1024;
/// `--max-request-bytes` plus etcd's gRPC envelope allowance.
const MAX_DECODED_BYTES: usize = MAX_REQUEST_BYTES + 512 * 1024;

async fn limited() -> Result<Cluster> {
    let args = [
        ("--max-leases", "2".to_string()),
        ("--max-watches-per-stream", "2".to_string()),
        ("--max-watches-per-connection", "3".to_string()),
        ("--max-request-bytes", MAX_REQUEST_BYTES.to_string()),
        ("--max-send-bytes", MAX_SEND_BYTES.to_string()),
        ("--max-concurrent-streams", "2".to_string()),
    ];
    let cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            extra_args: args
                .into_iter()
                .flat_map(|(flag, value)| [flag.to_string(), value])
                .collect(),
            ..ClusterOptions::default()
        },
    )
    .await?;
    cluster.wait_all_ready(WAIT).await?;
    Ok(cluster)
}

fn status(result: Result<impl std::fmt::Debug, etcd_client::Error>) -> Result<tonic::Status> {
    match result {
        Err(etcd_client::Error::GRpcStatus(s)) => Ok(s),
        other => bail!("expected a gRPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn grants_past_max_leases_are_refused_until_one_is_revoked() -> Result<()> {
    let cluster = limited().await?;
    let mut c = cluster.client(0).await?;
    let first = c.lease_grant(60, None).await?;
    c.lease_grant(60, None).await?;
    let refused = status(c.lease_grant(60, None).await)?;
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(refused.message(), "etcdserver: too many leases");
    c.lease_revoke(first.id()).await?;
    c.lease_grant(60, None).await?;
    Ok(())
}

#[tokio::test]
async fn a_watch_stream_holds_at_most_max_watches_per_stream() -> Result<()> {
    let cluster = limited().await?;
    let mut c = cluster.client(0).await?;
    let mut stream = c.watch("a", None).await?;
    stream.watch("b", None).await?;
    stream.watch("c", None).await?;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = tokio::time::timeout(WAIT, stream.message())
            .await
            .context("no watch answer")??
            .context("the watch stream ended")?;
        answers.push((r.created(), r.canceled(), r.cancel_reason().to_string()));
    }
    assert_eq!(
        answers,
        vec![
            (true, false, String::new()),
            (true, false, String::new()),
            (
                true,
                true,
                "etcdserver: too many watches on this stream (at most 2)".to_string()
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn message_sizes_are_limited_both_ways_on_every_service() -> Result<()> {
    let cluster = limited().await?;
    let mut c = cluster.client(0).await?;

    // Just over --max-request-bytes: decoded, refused by the handler with
    // etcd's error.
    let big = status(c.put("k", vec![b'v'; MAX_REQUEST_BYTES + 1], None).await)?;
    assert_eq!(big.code(), Code::InvalidArgument);
    assert_eq!(big.message(), "etcdserver: request is too large");

    // Past the envelope allowance: refused before decoding, on the KV
    // service and on one that had tonic's 4 MiB default (Lock).
    let huge = vec![b'v'; MAX_DECODED_BYTES + 1];
    let kv = status(c.put("k", huge.clone(), None).await)?;
    assert_eq!(kv.code(), Code::OutOfRange, "{kv:?}");
    let lock = status(c.lock(huge, None).await)?;
    assert_eq!(lock.code(), Code::OutOfRange, "{lock:?}");

    // A response past --max-send-bytes is refused; a smaller page works.
    let value = vec![b'v'; MAX_REQUEST_BYTES / 2];
    for i in 0..(MAX_SEND_BYTES / value.len() + 2) {
        c.put(format!("big/{i:03}"), value.clone(), None).await?;
    }
    let all = status(c.get("big/", Some(GetOptions::new().with_prefix())).await)?;
    assert_eq!(all.code(), Code::OutOfRange, "{all:?}");
    let page = c
        .get("big/", Some(GetOptions::new().with_prefix().with_limit(4)))
        .await?;
    assert_eq!(page.kvs().len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_connection_opens_at_most_max_concurrent_streams() -> Result<()> {
    let cluster = limited().await?;
    // One client, one connection: every watch is an HTTP/2 stream on it.
    let c: Client = cluster.client(0).await?;
    let mut first = c.watch_client().watch("a", None).await?;
    first.message().await?.context("first watch created")?;
    let mut second = c.watch_client().watch("b", None).await?;
    second.message().await?.context("second watch created")?;

    // The third stream waits for room: the server announced two.
    let mut client = c.watch_client();
    let mut third = tokio::spawn(async move {
        let mut stream = client.watch("c", None).await?;
        stream.message().await
    });
    // Asserting that something does not happen needs a window; a stream
    // that could open would open well within it.
    let blocked = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(blocked.is_err(), "a third stream opened past the limit");

    // Closing one stream makes room.
    drop(first);
    let created = tokio::time::timeout(WAIT, third)
        .await
        .context("the third stream never opened")???
        .context("third watch created")?;
    assert!(created.created());
    Ok(())
}

async fn next_answer(stream: &mut etcd_client::WatchStream) -> Result<(bool, bool, String)> {
    let r = tokio::time::timeout(WAIT, stream.message())
        .await
        .context("no watch answer")??
        .context("the watch stream ended")?;
    Ok((r.created(), r.canceled(), r.cancel_reason().to_string()))
}

#[tokio::test]
async fn a_connection_holds_at_most_max_watches_per_connection() -> Result<()> {
    let cluster = limited().await?;
    let c = cluster.client(0).await?;
    let created = (true, false, String::new());
    let mut first = c.watch_client().watch("a", None).await?;
    first.watch("b", None).await?;
    assert_eq!(next_answer(&mut first).await?, created);
    assert_eq!(next_answer(&mut first).await?, created);
    let mut second = c.watch_client().watch("c", None).await?;
    assert_eq!(next_answer(&mut second).await?, created);
    second.watch("d", None).await?;
    let refused = (
        true,
        true,
        "etcdserver: too many watches on this connection (at most 3)".to_string(),
    );
    assert_eq!(next_answer(&mut second).await?, refused);

    // Another connection has its own budget.
    let mut other = cluster.client(0).await?;
    let mut third = other.watch("e", None).await?;
    assert_eq!(next_answer(&mut third).await?, created);

    // A stream that ends gives its watches back.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        second.watch("d", None).await?;
        let answer = next_answer(&mut second).await?;
        if answer == created {
            break;
        }
        assert_eq!(answer, refused);
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's watches were never given back"
        );
    }
    Ok(())
}
