//! The `witanctl` binary against a real witan member (in-process, on
//! loopback ports): each command's exact output, as etcdctl would print
//! it, and witan's own recipes. One member serves every test of a group;
//! each test uses its own keys.

mod common;

use common::{fails, is_hex16, ok, run_with_input, Running};
use witan_client_testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_txn_lease_and_compaction() {
    let cluster = Cluster::single().await;
    let ep = &cluster.endpoint(0);

    // put / get / del, simple output.
    assert_eq!(ok(ep, &["put", "foo", "bar"]).await, "OK\n");
    assert_eq!(ok(ep, &["put", "foo2", "x"]).await, "OK\n");
    assert_eq!(
        ok(ep, &["put", "foo", "bar2", "--prev-kv"]).await,
        "OK\nfoo\nbar\n"
    );
    assert_eq!(ok(ep, &["get", "foo"]).await, "foo\nbar2\n");
    assert_eq!(
        ok(ep, &["get", "foo", "--prefix"]).await,
        "foo\nbar2\nfoo2\nx\n"
    );
    assert_eq!(
        ok(ep, &["get", "foo", "--print-value-only"]).await,
        "bar2\n"
    );
    assert_eq!(
        ok(ep, &["get", "foo", "--prefix", "--keys-only"]).await,
        "foo\n\nfoo2\n\n"
    );
    assert_eq!(
        ok(ep, &["get", "foo", "--prefix", "--count-only"]).await,
        "2\n"
    );
    assert_eq!(
        ok(
            ep,
            &["get", "foo", "--prefix", "--limit", "1", "--order", "DESCEND"]
        )
        .await,
        "foo2\nx\n"
    );
    assert_eq!(
        ok(ep, &["get", "foo", "--hex"]).await,
        "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\\x32\n"
    );
    assert_eq!(ok(ep, &["get", "nothing"]).await, "");

    // json: etcd's field names, bytes as base64.
    let json: serde_json::Value =
        serde_json::from_str(&ok(ep, &["get", "foo", "-w", "json"]).await).unwrap();
    assert_eq!(json["kvs"][0]["key"], "Zm9v");
    assert_eq!(json["kvs"][0]["value"], "YmFyMg==");
    assert_eq!(json["kvs"][0]["version"], 2);
    assert_eq!(json["count"], 1);
    assert!(json["header"]["revision"].as_i64().unwrap() >= 3);
    let stderr = fails(ep, &["get", "foo", "-w", "table"]).await;
    assert_eq!(stderr, "Error: table not supported as output format\n");

    assert_eq!(ok(ep, &["del", "foo2", "--prev-kv"]).await, "1\nfoo2\nx\n");
    assert_eq!(ok(ep, &["del", "nothing"]).await, "0\n");

    // txn from standard input: compares, success ops, failure ops.
    let txn = "value(\"foo\") = \"bar2\"\nmod(\"foo\") > \"0\"\n\nput k2 v2\nget foo\ndel k9\n\nput k3 v3\n\n";
    let out = run_with_input(ep, &["txn"], txn).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SUCCESS\n\nOK\n\nfoo\nbar2\n\n0\n"
    );
    let txn = "value(\"foo\") = \"nope\"\n\nput k2 v2\n\nget k2\n\n";
    let out = run_with_input(ep, &["txn", "-i"], txn).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n\nk2\nv2\n"
    );
    let out = run_with_input(ep, &["txn"], "bogus\n\n\n").await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: malformed comparison: bogus\n"
    );

    // Leases.
    let granted = ok(ep, &["lease", "grant", "100"]).await;
    let id = granted
        .strip_prefix("lease ")
        .and_then(|rest| rest.strip_suffix(" granted with TTL(100s)\n"))
        .unwrap_or_else(|| panic!("unexpected grant output {granted:?}"))
        .to_string();
    assert!(is_hex16(&id), "{id}");
    assert_eq!(
        ok(ep, &["put", "leased", "v", "--lease", &id]).await,
        "OK\n"
    );
    let ttl = ok(ep, &["lease", "timetolive", &id, "--keys"]).await;
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(100s), remaining("))
            && ttl.ends_with("s), attached keys([leased])\n"),
        "{ttl}"
    );
    assert!(ok(ep, &["lease", "list"])
        .await
        .contains(&format!("{id}\n")));
    assert_eq!(
        ok(ep, &["lease", "keep-alive", "--once", &id]).await,
        format!("lease {id} keepalived with TTL(100)\n")
    );
    assert_eq!(
        ok(ep, &["lease", "revoke", &id]).await,
        format!("lease {id} revoked\n")
    );
    assert_eq!(ok(ep, &["get", "leased"]).await, "");
    assert_eq!(
        ok(ep, &["lease", "timetolive", &id]).await,
        format!("lease {id} already expired\n")
    );
    let stderr = fails(ep, &["lease", "revoke", &id]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: requested lease not found (LeaseRevoke at "),
        "{stderr}"
    );

    // Compaction, and the compacted error on an old read.
    let rev =
        serde_json::from_str::<serde_json::Value>(&ok(ep, &["get", "foo", "-w", "json"]).await)
            .unwrap()["header"]["revision"]
            .as_i64()
            .unwrap();
    assert_eq!(
        ok(ep, &["compaction", &rev.to_string()]).await,
        format!("compacted revision {rev}\n")
    );
    let stderr = fails(ep, &["get", "foo", "--rev", "1"]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: mvcc: required revision has been compacted"),
        "{stderr}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_lock_elect_barrier_semaphore() {
    let cluster = Cluster::single().await;
    let ep = &cluster.endpoint(0);

    // watch from a past revision: the events come from history, so no
    // race with the watch's start.
    let first =
        serde_json::from_str::<serde_json::Value>(&ok(ep, &["put", "w1", "a", "-w", "json"]).await)
            .unwrap()["header"]["revision"]
            .as_i64()
            .unwrap();
    ok(ep, &["put", "w1", "b"]).await;
    ok(ep, &["del", "w1"]).await;
    let mut watch = Running::start(
        ep,
        &[
            "watch",
            "w",
            "--prefix",
            "--prev-kv",
            "--rev",
            &first.to_string(),
        ],
    );
    assert_eq!(
        watch.lines(11).await,
        ["PUT", "w1", "a", "PUT", "w1", "a", "w1", "b", "DELETE", "w1", "b"]
    );
    assert_eq!(watch.lines(2).await, ["w1", ""]);
    assert!(watch.terminate().await.success());

    // lock with a command: etcdctl's variables and witan's fencing token.
    let out = ok(
        ep,
        &[
            "lock",
            "mylock",
            "--",
            "sh",
            "-c",
            "echo $ETCD_LOCK_KEY $WITAN_LOCK_KEY $WITAN_FENCING_TOKEN $ETCD_LOCK_REV",
        ],
    )
    .await;
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{out}");
    assert!(
        words[0].starts_with("mylock/") && words[0] == words[1],
        "{out}"
    );
    let token: i64 = words[2].parse().unwrap();
    let revision: i64 = words[3].parse().unwrap();
    assert!(token > 0 && token <= revision, "{out}");
    // The lock is released once the command ends.
    assert_eq!(ok(ep, &["get", "mylock", "--prefix"]).await, "");
    let stderr = fails(ep, &["lock", "mylock", "--", "sh", "-c", "exit 7"]).await;
    assert_eq!(stderr, "Error: exit status 7\n");

    // lock without a command: holds until SIGTERM, then unlocks.
    let mut held = Running::start(ep, &["lock", "held"]);
    let key = held.line().await;
    assert!(key.starts_with("held/"), "{key}");
    let token_line = held.line().await;
    let token: i64 = token_line
        .strip_prefix("fencing token ")
        .unwrap()
        .parse()
        .unwrap();
    let fields = ok(ep, &["get", &key, "-w", "fields"]).await;
    assert!(
        fields.contains(&format!("\"CreateRevision\" : {token}\n")),
        "{fields}"
    );
    assert!(held.terminate().await.success());
    assert_eq!(ok(ep, &["get", "held", "--prefix"]).await, "");

    // elect: the campaigner prints its key, proposal and token; an
    // observer sees the same leader.
    let mut leader = Running::start(ep, &["elect", "myel", "p1"]);
    let key = leader.line().await;
    assert!(key.starts_with("myel/"), "{key}");
    assert_eq!(leader.line().await, "p1");
    assert!(leader.line().await.starts_with("fencing token "));
    let mut observer = Running::start(ep, &["elect", "-l", "myel"]);
    assert_eq!(observer.lines(2).await, [key.clone(), "p1".to_string()]);
    assert!(leader.terminate().await.success());
    assert_eq!(ok(ep, &["get", "myel", "--prefix"]).await, "");
    assert!(observer.terminate().await.success());

    // barrier: set holds it, wait returns once it is released.
    let mut barrier = Running::start(ep, &["barrier", "set", "b1"]);
    assert_eq!(barrier.line().await, "b1");
    assert!(ok(ep, &["get", "b1", "--keys-only"])
        .await
        .starts_with("b1\n"));
    let waiter = Running::start(ep, &["barrier", "wait", "b1"]);
    assert_eq!(ok(ep, &["barrier", "release", "b1"]).await, "OK\n");
    assert!(waiter.finish().await.success());
    assert!(barrier.terminate().await.success());
    let stderr = fails(ep, &["barrier", "set", "b2", "--lease", "1234"]).await;
    assert!(stderr.contains("lease not found"), "{stderr}");

    // semaphore: the command runs holding a permit.
    let out = ok(
        ep,
        &[
            "semaphore",
            "acquire",
            "s1",
            "--permits",
            "2",
            "--",
            "sh",
            "-c",
            "echo $WITAN_SEMAPHORE_KEY $WITAN_FENCING_TOKEN",
        ],
    )
    .await;
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(words.len() == 2 && words[0].starts_with("s1/"), "{out}");
    assert!(words[1].parse::<i64>().unwrap() > 0, "{out}");
    // The permit is released once the command ends.
    let left = ok(ep, &["get", "s1", "--prefix", "--keys-only"]).await;
    assert!(!left.contains(words[0]), "{left}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_status_health_errors_and_bench() {
    let cluster = Cluster::single().await;
    let ep = &cluster.endpoint(0);
    let addr = ep.trim_start_matches("http://");

    let status = ok(addr, &["endpoint", "status"]).await;
    let cells: Vec<&str> = status.strip_suffix('\n').unwrap().split(", ").collect();
    assert_eq!(cells.len(), 10, "{status}");
    assert_eq!(cells[0], addr);
    assert_eq!(cells[2], "3.5.0");
    assert_eq!((cells[4], cells[5]), ("true", "false"), "{status}");
    let table = ok(addr, &["endpoint", "status", "-w", "table"]).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert_eq!(
        rows[1],
        [
            "",
            "ENDPOINT",
            "ID",
            "VERSION",
            "DB SIZE",
            "IS LEADER",
            "IS LEARNER",
            "RAFT TERM",
            "RAFT INDEX",
            "RAFT APPLIED INDEX",
            "ERRORS",
            ""
        ]
    );
    assert_eq!(rows[3][1..6], [addr, cells[1], "3.5.0", cells[3], "true"]);

    let out = common::run(addr, &["endpoint", "health"]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{addr} is healthy: successfully committed proposal: took = "
        )),
        "{stderr}"
    );
    let health: serde_json::Value =
        serde_json::from_str(&ok(addr, &["endpoint", "health", "-w", "json"]).await).unwrap();
    assert_eq!(health[0]["endpoint"], addr);
    assert_eq!(health[0]["health"], true);

    // A member that is not there: which endpoint, what failed, what to do.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let stderr = fails(&gone, &["get", "foo"]).await;
    assert_eq!(
        stderr,
        format!("Error: cannot reach {gone}: connection refused — is a member running there? check --endpoints\n")
    );
    // The next endpoint is tried when the first is down.
    let both = format!("{gone},{addr}");
    assert_eq!(ok(&both, &["put", "failover", "1"]).await, "OK\n");

    // Endpoints from the environment, witanctl's or etcdctl's.
    for var in ["WITANCTL_ENDPOINTS", "ETCDCTL_ENDPOINTS"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_witanctl"))
            .args(["put", "from-env", var])
            .env_remove("WITANCTL_ENDPOINTS")
            .env_remove("ETCDCTL_ENDPOINTS")
            .env(var, addr)
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "OK\n",
            "{var}: {out:?}"
        );
    }
    assert_eq!(
        ok(ep, &["get", "from-env"]).await,
        "from-env\nETCDCTL_ENDPOINTS\n"
    );

    // Credentials for a member whose authentication is off are ignored,
    // as etcd's client does (tests/auth.rs covers authentication).
    assert_eq!(
        ok(addr, &["--user", "root:secret", "get", "from-env"]).await,
        "from-env\nETCDCTL_ENDPOINTS\n"
    );

    // The bench, nested, with witanctl's endpoints.
    let report = ok(
        ep,
        &["bench", "put", "--total", "20", "--json", "--no-progress"],
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["workload"], "put");

    assert!(ok(ep, &["version"]).await.starts_with("witanctl version: "));
    cluster.stop().await;
}
