//! The HTTP/JSON gateway, health, version and metrics endpoints of real
//! member processes, spoken to as curl would (HTTP/1.1, JSON bodies):
//! etcd's encoding checked field by field (base64 bytes, 64-bit integers
//! as strings, proto field names), streaming watch and keepalive, locks and
//! elections, errors, `/health` turning 503 on a member cut off from its
//! quorum, and the Prometheus page.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};
use witan_proto::etcdserverpb::auth_client::AuthClient;
use witan_proto::etcdserverpb::AuthStatusRequest;
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

/// How long any one condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

fn single() -> ClusterOptions {
    ClusterOptions {
        size: 1,
        ..ClusterOptions::default()
    }
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

/// A curl-like HTTP/1.1 client for one member.
struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    fn new(cluster: &Cluster, i: usize) -> Http {
        Http {
            base: cluster.endpoint(i),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: &str) -> Result<Response<Incoming>> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = timeout(DEADLINE, self.client.request(request))
            .await
            .with_context(|| format!("no answer to {path} within the deadline"))??;
        Ok(response)
    }

    /// POSTs `body`; the status and the whole answer as text.
    async fn post_text(&self, path: &str, body: &str) -> Result<(StatusCode, String)> {
        let response = self.send(Method::POST, path, body).await?;
        let status = response.status();
        let bytes = timeout(DEADLINE, response.into_body().collect())
            .await
            .context("body not read within the deadline")??
            .to_bytes();
        Ok((status, String::from_utf8(bytes.to_vec())?))
    }

    /// POSTs `body`; the status and the answer as JSON.
    async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value)> {
        let (status, text) = self.post_text(path, &body.to_string()).await?;
        let value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
        Ok((status, value))
    }

    /// POSTs and expects 200.
    async fn ok(&self, path: &str, body: Value) -> Result<Value> {
        let (status, value) = self.post(path, body).await?;
        ensure!(status == StatusCode::OK, "{path}: {status} {value}");
        Ok(value)
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, String)> {
        let response = self.send(Method::GET, path, "").await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(bytes.to_vec())?))
    }
}

/// Newline-delimited JSON read from a streaming answer.
struct Lines {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(response: Response<Incoming>) -> Lines {
        Lines {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> Result<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Ok(serde_json::from_slice(&line)?);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .context("no streamed line within the deadline")?
                .context("the stream ended")??;
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

fn str_field<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A value of a series on a `/metrics` page (the first series whose name
/// and labels start with `series`).
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(series)
                && matches!(
                    l.as_bytes().get(series.len()),
                    Some(b' ') | Some(b'{') | Some(b',')
                )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn kv_over_json_with_etcds_encoding() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, single()).await?;
    let http = Http::new(&cluster, 0);
    let member_id = cluster.id(0).to_string();

    // etcd's documented example.
    let put = http
        .ok("/v3/kv/put", json!({"key": "Zm9v", "value": "YmFy"}))
        .await?;
    assert_eq!(str_field(&put, "/header/member_id"), member_id);
    assert!(put
        .pointer("/header/cluster_id")
        .is_some_and(Value::is_string));
    let rev: i64 = str_field(&put, "/header/revision").parse()?;
    assert!(put.get("prev_kv").is_none(), "defaults are omitted: {put}");

    // camelCase accepted, proto names answered.
    let put2 = http
        .ok(
            "/v3/kv/put",
            json!({"key": "Zm9v", "value": b64("baz"), "prevKv": true}),
        )
        .await?;
    assert_eq!(put2["prev_kv"]["value"], "YmFy");
    assert_eq!(put2["prev_kv"]["create_revision"], rev.to_string());
    assert_eq!(put2["prev_kv"]["version"], "1");

    let range = http.ok("/v3/kv/range", json!({"key": "Zm9v"})).await?;
    assert_eq!(range["count"], "1");
    let kv = &range["kvs"][0];
    assert_eq!(kv["key"], "Zm9v");
    assert_eq!(kv["value"], b64("baz"));
    assert_eq!(kv["create_revision"], rev.to_string());
    assert_eq!(kv["mod_revision"], (rev + 1).to_string());
    assert_eq!(kv["version"], "2");
    assert!(kv.get("lease").is_none());

    // A prefix range with integers as numbers or strings, enums by name.
    http.ok("/v3/kv/put", json!({"key": b64("foo2"), "value": b64("x")}))
        .await?;
    let prefix = http
        .ok(
            "/v3/kv/range",
            json!({"key": b64("foo"), "range_end": b64("fop"), "limit": 1,
                   "sort_order": "DESCEND", "sort_target": "KEY"}),
        )
        .await?;
    assert_eq!(prefix["kvs"][0]["key"], b64("foo2"));
    assert_eq!(prefix["more"], true);
    assert_eq!(prefix["count"], "2");

    // Txn: compare, success, failure, nested responses.
    let txn = http
        .ok(
            "/v3/kv/txn",
            json!({
                "compare": [{"target": "VALUE", "result": "EQUAL", "key": "Zm9v", "value": b64("baz")}],
                "success": [{"request_put": {"key": "Zm9v", "value": b64("qux")}},
                            {"requestRange": {"key": "Zm9v"}}],
                "failure": [{"request_delete_range": {"key": "Zm9v"}}]
            }),
        )
        .await?;
    assert_eq!(txn["succeeded"], true);
    assert!(txn["responses"][0]["response_put"]["header"]["revision"].is_string());
    assert_eq!(
        txn["responses"][1]["response_range"]["kvs"][0]["value"],
        b64("qux")
    );
    let failed = http
        .ok(
            "/v3/kv/txn",
            json!({"compare": [{"target": "VERSION", "key": "Zm9v", "version": "100"}],
                   "failure": [{"request_range": {"key": "Zm9v", "count_only": true}}]}),
        )
        .await?;
    assert!(
        failed.get("succeeded").is_none(),
        "false is omitted: {failed}"
    );
    assert_eq!(failed["responses"][0]["response_range"]["count"], "1");

    let deleted = http
        .ok(
            "/v3/kv/deleterange",
            json!({"key": b64("foo2"), "prev_kv": true}),
        )
        .await?;
    assert_eq!(deleted["deleted"], "1");
    assert_eq!(deleted["prev_kvs"][0]["value"], b64("x"));

    // Compaction, then etcd's error for a compacted revision.
    let now: i64 = str_field(&deleted, "/header/revision").parse()?;
    http.ok("/v3/kv/compaction", json!({"revision": now.to_string()}))
        .await?;
    let (status, err) = http
        .post("/v3/kv/range", json!({"key": "Zm9v", "revision": rev}))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        err,
        json!({"error": "etcdserver: mvcc: required revision has been compacted",
               "message": "etcdserver: mvcc: required revision has been compacted",
               "code": 11})
    );

    // Malformed requests: 400 with the reason, nothing written.
    let before = http.ok("/v3/kv/range", json!({"key": "Zm9v"})).await?;
    for body in [
        r#"{"key":"Zm9v","value":"#,
        r#"{"key":"!!!","value":"YmFy"}"#,
        r#"{"key":"Zm9v","lease":"abc"}"#,
        r#"[1]"#,
    ] {
        let (status, text) = http.post_text("/v3/kv/put", body).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        let err: Value = serde_json::from_str(&text)?;
        assert_eq!(err["code"], 3, "{body}: {text}");
        assert!(!str_field(&err, "/message").is_empty());
    }
    let after = http.ok("/v3/kv/range", json!({"key": "Zm9v"})).await?;
    assert_eq!(before["header"]["revision"], after["header"]["revision"]);
    let (status, err) = http.post("/v3/kv/range", json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["message"], "etcdserver: key is not provided");

    // Unknown path, wrong method, older prefixes.
    assert_eq!(
        http.post_text("/v3/kv/nothing", "{}").await?.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get("/v3/kv/range").await?.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    for prefix in ["/v3beta", "/v3alpha"] {
        let r = http
            .ok(&format!("{prefix}/kv/range"), json!({"key": "Zm9v"}))
            .await?;
        assert_eq!(r["kvs"][0]["value"], b64("qux"));
    }
    Ok(())
}

#[tokio::test]
async fn watch_streams_newline_delimited_json() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, single()).await?;
    let http = Http::new(&cluster, 0);
    let mut grpc = cluster.client(0).await?;

    let response = http
        .send(
            Method::POST,
            "/v3/watch",
            &json!({"create_request": {"key": b64("w"), "range_end": b64("x"), "prev_kv": true}})
                .to_string(),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response);
    let created = lines.next().await?;
    assert_eq!(created["result"]["created"], true, "{created}");

    grpc.put("w1", "v1", None).await?;
    grpc.put("w1", "v2", None).await?;
    grpc.delete("w1", None).await?;
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = lines.next().await?;
        let batch = line["result"]["events"]
            .as_array()
            .with_context(|| format!("expected events: {line}"))?;
        events.extend(batch.iter().cloned());
    }
    assert_eq!(events[0]["kv"]["key"], b64("w1"));
    assert_eq!(events[0]["kv"]["value"], b64("v1"));
    assert!(
        events[0].get("type").is_none(),
        "PUT is the default: {}",
        events[0]
    );
    assert_eq!(events[1]["prev_kv"]["value"], b64("v1"));
    assert_eq!(events[2]["type"], "DELETE");
    assert!(events[2]["kv"]["mod_revision"].is_string());

    let (_, page) = http.get("/metrics").await?;
    assert_eq!(
        metric(&page, "etcd_debugging_mvcc_watcher_total"),
        Some(1.0)
    );

    // Closing the HTTP stream cancels the watch.
    drop(lines);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, page) = http.get("/metrics").await?;
        if metric(&page, "etcd_debugging_mvcc_watcher_total") == Some(0.0) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the watch outlived its HTTP stream");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A malformed watch body is refused before anything starts.
    let (status, text) = http.post_text("/v3/watch", r#"{"create_request":"#).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    Ok(())
}

#[tokio::test]
async fn leases_locks_elections_cluster_and_maintenance() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, single()).await?;
    let http = Http::new(&cluster, 0);
    let mut grpc = cluster.client(0).await?;

    // Leases, on etcd's paths (3.4's /v3/kv/lease/... and 3.5's).
    let grant = http
        .ok("/v3/lease/grant", json!({"TTL": "60", "ID": "4242"}))
        .await?;
    assert_eq!(
        (grant["ID"].as_str(), grant["TTL"].as_str()),
        (Some("4242"), Some("60"))
    );
    http.ok(
        "/v3/kv/put",
        json!({"key": b64("leased"), "value": b64("v"), "lease": "4242"}),
    )
    .await?;
    let response = http
        .send(
            Method::POST,
            "/v3/lease/keepalive",
            r#"{"ID":"4242"} {"ID":4242}"#,
        )
        .await?;
    let mut lines = Lines::new(response);
    for _ in 0..2 {
        let kept = lines.next().await?;
        assert_eq!(kept["result"]["ID"], "4242", "{kept}");
        assert_eq!(kept["result"]["TTL"], "60", "{kept}");
    }
    for path in ["/v3/kv/lease/timetolive", "/v3/lease/timetolive"] {
        let ttl = http.ok(path, json!({"ID": "4242", "keys": true})).await?;
        assert_eq!(ttl["grantedTTL"], "60");
        assert_eq!(ttl["keys"], json!([b64("leased")]));
    }
    let leases = http.ok("/v3/lease/leases", json!({})).await?;
    assert_eq!(leases["leases"], json!([{"ID": "4242"}]));
    http.ok("/v3/kv/lease/revoke", json!({"ID": "4242"}))
        .await?;
    let (status, err) = http.post("/v3/lease/revoke", json!({"ID": "4242"})).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["message"], "etcdserver: requested lease not found");
    assert_eq!(err["code"], 5);
    let gone = http
        .ok("/v3/kv/range", json!({"key": b64("leased")}))
        .await?;
    assert!(gone.get("kvs").is_none(), "revoke deleted the key: {gone}");

    // Lock and unlock.
    let lease = http.ok("/v3/lease/grant", json!({"TTL": 60})).await?;
    let lease_id = str_field(&lease, "/ID").to_string();
    let locked = http
        .ok(
            "/v3/lock/lock",
            json!({"name": b64("job"), "lease": lease_id}),
        )
        .await?;
    let key = str_field(&locked, "/key").to_string();
    assert!(String::from_utf8(B64.decode(&key)?)?.starts_with("job/"));
    http.ok("/v3/lock/unlock", json!({"key": key})).await?;
    let range = http.ok("/v3/kv/range", json!({"key": key})).await?;
    assert!(
        range.get("kvs").is_none(),
        "unlock deleted the lock key: {range}"
    );

    // Election: campaign, observe, proclaim, resign.
    let campaign = http
        .ok(
            "/v3/election/campaign",
            json!({"name": b64("db"), "lease": lease_id, "value": b64("n1")}),
        )
        .await?;
    let leader = campaign["leader"].clone();
    assert_eq!(leader["name"], b64("db"));
    assert!(leader["rev"].is_string());
    let current = http
        .ok("/v3/election/leader", json!({"name": b64("db")}))
        .await?;
    assert_eq!(current["kv"]["value"], b64("n1"));
    let observe = http
        .send(
            Method::POST,
            "/v3/election/observe",
            &json!({"name": b64("db")}).to_string(),
        )
        .await?;
    let mut observed = Lines::new(observe);
    assert_eq!(observed.next().await?["result"]["kv"]["value"], b64("n1"));
    http.ok(
        "/v3/election/proclaim",
        json!({"leader": leader, "value": b64("n1b")}),
    )
    .await?;
    assert_eq!(observed.next().await?["result"]["kv"]["value"], b64("n1b"));
    drop(observed);
    http.ok("/v3/election/resign", json!({"leader": leader}))
        .await?;
    let (status, err) = http
        .post("/v3/election/leader", json!({"name": b64("db")}))
        .await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(err["message"], "election: no leader");

    // Cluster and maintenance answer what the gRPC services answer.
    let status = http.ok("/v3/maintenance/status", json!({})).await?;
    let grpc_status = grpc.status().await?;
    assert_eq!(status["leader"], grpc_status.leader().to_string());
    assert_eq!(status["version"], grpc_status.version());
    let (code, list) = http.post("/v3/cluster/member/list", json!({})).await?;
    match grpc.member_list().await {
        Ok(members) => {
            assert_eq!(code, StatusCode::OK, "{list}");
            let ids: Vec<String> = members
                .members()
                .iter()
                .map(|m| m.id().to_string())
                .collect();
            let http_ids: Vec<String> = list["members"]
                .as_array()
                .context("members")?
                .iter()
                .map(|m| str_field(m, "/ID").to_string())
                .collect();
            assert_eq!(ids, http_ids);
        }
        Err(etcd_client::Error::GRpcStatus(s)) => {
            assert_eq!(list["code"], s.code() as i32, "{list}");
            assert_eq!(list["message"], s.message(), "{list}");
        }
        Err(e) => return Err(e.into()),
    }
    let (code, auth) = http.post("/v3/auth/status", json!({})).await?;
    let mut auth_client = AuthClient::connect(cluster.endpoint(0)).await?;
    match auth_client.auth_status(AuthStatusRequest::default()).await {
        Ok(_) => assert_eq!(code, StatusCode::OK, "{auth}"),
        Err(s) => {
            assert_eq!(auth["code"], s.code() as i32, "{auth}");
            assert_eq!(auth["message"], s.message(), "{auth}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn health_version_and_metrics() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(DEADLINE).await?;
    let follower = (leader + 1) % cluster.size();
    let http: Vec<Http> = (0..cluster.size())
        .map(|i| Http::new(&cluster, i))
        .collect();

    for h in &http {
        let (status, body) = h.get("/health").await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body)?,
            json!({"health": "true", "reason": ""})
        );
        assert_eq!(h.get("/livez").await?.0, StatusCode::OK);
        assert_eq!(h.get("/readyz").await?.0, StatusCode::OK);
    }
    let (status, version) = http[0].get("/version").await?;
    assert_eq!(status, StatusCode::OK);
    let version: Value = serde_json::from_str(&version)?;
    assert_eq!(version["etcdserver"], "3.5.0");
    assert_eq!(version["etcdcluster"], "3.5.0");
    assert!(version["witan"].is_string());

    // Metrics: leadership, keys, the fsync histogram growing with writes.
    let (_, page) = http[leader].get("/metrics").await?;
    for name in [
        "etcd_server_has_leader",
        "etcd_server_is_leader",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_committed_total",
        "etcd_server_proposals_applied_total",
        "etcd_server_proposals_pending",
        "etcd_server_proposals_failed_total",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "etcd_disk_backend_commit_duration_seconds_count",
        "etcd_server_apply_duration_seconds_count",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "etcd_debugging_mvcc_keys_total",
        "etcd_debugging_mvcc_watcher_total",
        "etcd_debugging_lease_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            metric(&page, name).is_some(),
            "{name} missing from:\n{page}"
        );
    }
    assert_eq!(metric(&page, "etcd_server_has_leader"), Some(1.0));
    assert_eq!(metric(&page, "etcd_server_is_leader"), Some(1.0));
    let (_, follower_page) = http[follower].get("/metrics").await?;
    assert_eq!(metric(&follower_page, "etcd_server_is_leader"), Some(0.0));
    assert!(metric(&page, "etcd_server_leader_changes_seen_total") >= Some(1.0));
    let fsyncs = metric(&page, "etcd_disk_wal_fsync_duration_seconds_count").context("fsyncs")?;
    let keys = metric(&page, "etcd_debugging_mvcc_keys_total").context("keys")?;
    assert!(metric(&page, "etcd_mvcc_db_total_size_in_bytes") > Some(0.0));

    let mut grpc = cluster.client(leader).await?;
    for i in 0..5 {
        grpc.put(format!("metrics/{i}"), "v", None).await?;
    }
    let (_, page) = http[leader].get("/metrics").await?;
    assert_eq!(
        metric(&page, "etcd_debugging_mvcc_keys_total"),
        Some(keys + 5.0)
    );
    assert!(
        metric(&page, "etcd_disk_wal_fsync_duration_seconds_count") > Some(fsyncs),
        "the fsync histogram did not grow"
    );
    let put_ok = "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}";
    assert_eq!(metric(&page, put_ok), Some(5.0), "{page}");
    // Five puts of a 10-byte key and value at least, each way.
    for traffic in [
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_network_client_grpc_sent_bytes_total",
    ] {
        assert!(metric(&page, traffic) >= Some(50.0), "{traffic}: {page}");
    }
    assert!(
        metric(
            &page,
            "grpc_server_handling_seconds_count{grpc_method=\"Put\""
        ) == Some(5.0),
        "{page}"
    );

    // A member cut off from its quorum is unhealthy, and healthy again
    // once the links heal.
    cluster.isolate(follower).await?;
    wait_health(&http[follower], StatusCode::SERVICE_UNAVAILABLE).await?;
    let (_, body) = http[follower].get("/health").await?;
    let body: Value = serde_json::from_str(&body)?;
    assert_eq!(body["health"], "false");
    assert!(!str_field(&body, "/reason").is_empty());
    cluster.heal().await?;
    wait_health(&http[follower], StatusCode::OK).await?;
    Ok(())
}

async fn wait_health(http: &Http, want: StatusCode) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = http.get("/health").await?;
        if status == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("/health stayed {status} ({body}), expected {want}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
