//! Every workload, very briefly, through the real `witan-bench` binary
//! against an in-process witan member: the tool speaks the API, finishes,
//! and its JSON report says what happened. One member serves every run,
//! since each run writes under its own fresh prefix.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use witan_client_testkit::Cluster;

/// Far above what any of these runs takes; only a hang reaches it.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Runs the binary with `args` against `endpoint`.
async fn bench(endpoint: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_witan-bench"))
        .args(args)
        .args(["--endpoints", endpoint])
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUN_DEADLINE, child)
        .await
        .expect("witan-bench finishes")
        .expect("witan-bench starts")
}

/// Runs a workload with `--json` and returns its report, asserting that
/// it succeeded.
async fn report(endpoint: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = bench(endpoint, &all).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(&stdout).expect("a JSON report")
}

/// The summary of operation `name` in a report.
fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .and_then(|ops| ops.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no op {name} in {report}"))
}

fn count(report: &Value, name: &str) -> u64 {
    op(report, name)["count"].as_u64().unwrap()
}

fn errors(report: &Value, name: &str) -> u64 {
    op(report, name)["errors"].as_u64().unwrap()
}

fn extra(report: &Value, name: &str) -> f64 {
    report["extra"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no extra {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_against_witan() {
    let cluster = Cluster::single().await;
    let ep = cluster.endpoint(0);
    let ep = ep.as_str();

    let put = report(
        ep,
        &[
            "put",
            "--total",
            "200",
            "--clients",
            "4",
            "--conns",
            "2",
            "--label",
            "p",
        ],
    )
    .await;
    assert_eq!(put["workload"], "put");
    assert_eq!(put["label"], "p");
    assert_eq!((count(&put, "put"), errors(&put, "put")), (200, 0));
    assert!(op(&put, "put")["p99_ms"].as_f64().unwrap() > 0.0);

    let random = report(
        ep,
        &[
            "put",
            "--keys",
            "random",
            "--key-space",
            "10",
            "--key-size",
            "24",
            "--total",
            "50",
        ],
    )
    .await;
    assert_eq!(count(&random, "put"), 50);

    for consistency in ["l", "s"] {
        let range = report(
            ep,
            &[
                "range",
                "--consistency",
                consistency,
                "--keys",
                "20",
                "--total",
                "100",
                "--clients",
                "4",
            ],
        )
        .await;
        assert_eq!(range["params"]["consistency"], consistency);
        assert_eq!((count(&range, "range"), errors(&range, "range")), (100, 0));
        assert_eq!(extra(&range, "missing_keys"), 0.0);
    }

    let cas = report(
        ep,
        &["txn-cas", "--keys", "3", "--total", "200", "--clients", "8"],
    )
    .await;
    assert_eq!((count(&cas, "cas"), errors(&cas, "cas")), (200, 0));
    let (swapped, conflicts) = (extra(&cas, "swapped"), extra(&cas, "conflicts"));
    assert_eq!(swapped + conflicts, 200.0);
    assert!(swapped > 0.0);

    let leases = report(
        ep,
        &[
            "lease-keepalive",
            "--leases",
            "20",
            "--total",
            "100",
            "--clients",
            "4",
        ],
    )
    .await;
    assert_eq!(
        (count(&leases, "keepalive"), errors(&leases, "keepalive")),
        (100, 0)
    );
    assert_eq!(count(&leases, "grant"), 20);
    assert_eq!(extra(&leases, "expired"), 0.0);
    assert_eq!(extra(&leases, "revoke_failures"), 0.0);

    let watch = report(
        ep,
        &[
            "watch",
            "--watchers",
            "20",
            "--conns",
            "3",
            "--total",
            "30",
            "--rate",
            "300",
        ],
    )
    .await;
    assert_eq!(count(&watch, "put"), 30);
    assert_eq!(count(&watch, "event"), 600);
    assert_eq!(extra(&watch, "missing_events"), 0.0);
    assert_eq!(extra(&watch, "out_of_order_events"), 0.0);

    for (workload, acquire, release) in [
        ("lock", "lock", "unlock"),
        ("election", "campaign", "resign"),
    ] {
        let cycles = report(
            ep,
            &[workload, "--names", "2", "--clients", "4", "--total", "40"],
        )
        .await;
        assert_eq!(
            (count(&cycles, "cycle"), errors(&cycles, "cycle")),
            (40, 0),
            "{cycles}"
        );
        assert_eq!(count(&cycles, acquire), 40);
        assert_eq!(count(&cycles, release), 40);
    }

    let dir = tempfile::tempdir().unwrap();
    let killed = dir.path().join("killed");
    let kill = format!(
        "echo \"$WITAN_BENCH_LEADER_ENDPOINT $WITAN_BENCH_LEADER_ID\" > {}",
        killed.display()
    );
    let failover = report(
        ep,
        &[
            "failover",
            "--clients",
            "4",
            "--duration",
            "1500ms",
            "--rate",
            "200",
            "--kill-after",
            "300ms",
            "--kill-leader-cmd",
            &kill,
        ],
    )
    .await;
    assert!(count(&failover, "put") > 0);
    assert!(extra(&failover, "longest_gap_ms") > 0.0);
    assert!(extra(&failover, "kill_at_s") >= 0.3);
    let told = std::fs::read_to_string(&killed).unwrap();
    let (endpoint, id) = told.trim().split_once(' ').unwrap();
    assert_eq!(endpoint, ep);
    assert!(u64::from_str_radix(id, 16).unwrap() > 0);

    // The same reports, side by side.
    let witan = dir.path().join("witan.jsonl");
    let other = dir.path().join("other.jsonl");
    std::fs::write(&witan, format!("{put}\n{cas}\n")).unwrap();
    let mut slower = put.clone();
    slower["ops"][0]["ops_per_sec"] =
        Value::from(op(&put, "put")["ops_per_sec"].as_f64().unwrap() / 2.0);
    std::fs::write(&other, format!("{slower}\n")).unwrap();
    let candidate = format!("witan={}", witan.display());
    let baseline = format!("other={}", other.display());
    let out = bench(
        ep,
        &[
            "compare",
            "--candidate",
            &candidate,
            "--baseline",
            &baseline,
            "--row",
            "p put.ops_per_sec >=1.5",
        ],
    )
    .await;
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[0], "p");
    assert_eq!(
        &row[row.len() - 4..],
        ["2.00x", ">=", "1.5x", "yes"],
        "{table}"
    );

    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_json_the_report_is_a_table_and_failures_set_the_status() {
    let cluster = Cluster::single().await;
    let ep = cluster.endpoint(0);
    let out = bench(&ep, &["put", "--total", "10"]).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("put: "), "{text}");
    assert!(
        lines[2].split_whitespace().eq([
            "op", "count", "errors", "ops/s", "mean", "ms", "p50", "ms", "p90", "ms", "p99", "ms",
            "max", "ms"
        ]),
        "{text}"
    );
    assert_eq!(
        lines[3].split_whitespace().take(3).collect::<Vec<_>>(),
        ["put", "10", "0"]
    );

    // A key too short for its prefix: refused before any request.
    let out = bench(&ep, &["put", "--key-size", "4"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-size 4 is too small"));

    // Values over the server's request limit: every put is refused, the
    // run completes, counts them, and says so in its exit status.
    let out = bench(
        &ep,
        &["put", "--total", "3", "--val-size", "2000000", "--json"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((count(&report, "put"), errors(&report, "put")), (0, 3));
    let first = op(&report, "put")["first_error"].as_str().unwrap();
    assert!(first.contains("request is too large"), "{first}");

    // No server at all: the run cannot be made.
    cluster.stop().await;
    let out = bench(&ep, &["put", "--total", "3"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}
