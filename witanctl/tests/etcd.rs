//! The member and maintenance commands against a real etcd 3.4 (spawned
//! on free loopback ports): they are right before witan serves those
//! calls. Skipped, with a notice, where `/usr/bin/etcd` is missing.

mod common;

use common::etcd::Etcd;
use common::{fails, free_port, ok};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_commands_match_etcdctl() {
    let Some(etcd) = Etcd::start(None, &[]).await else {
        return;
    };
    let ep = &etcd.client;

    let list = ok(ep, &["member", "list"]).await;
    let cells: Vec<&str> = list.strip_suffix('\n').unwrap().split(", ").collect();
    assert_eq!(cells.len(), 6, "{list}");
    let id = cells[0].to_string();
    assert_eq!(
        cells[1..],
        [
            "started",
            "e1",
            &etcd.peer,
            &format!("http://{ep}"),
            "false"
        ]
    );

    let stderr = fails(ep, &["member", "add", "e3", "--peer-urls", &etcd.peer]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: Peer URLs already exists"),
        "{stderr}"
    );

    // A learner does not count for quorum, so adding one to a single
    // member keeps the cluster up.
    let new_peer = format!("http://127.0.0.1:{}", free_port());
    let added = ok(
        ep,
        &["member", "add", "e2", "--peer-urls", &new_peer, "--learner"],
    )
    .await;
    let lines: Vec<String> = added.lines().map(sort_initial_cluster).collect();
    assert!(
        lines[0].starts_with("Member ") && lines[0].contains(" added to cluster "),
        "{added}"
    );
    // The members come in member-id order, and the new id is random.
    assert_eq!(
        lines[1..],
        [
            "",
            "WITAN_NAME=\"e2\"",
            &format!("WITAN_INITIAL_CLUSTER=\"e1={},e2={new_peer}\"", etcd.peer),
            &format!("WITAN_INITIAL_ADVERTISE_PEER_URLS=\"{new_peer}\""),
            "WITAN_INITIAL_CLUSTER_STATE=\"existing\"",
        ]
    );
    let new_id = lines[0].split_whitespace().nth(1).unwrap().to_string();

    let table = ok(ep, &["member", "list", "-w", "table"]).await;
    // etcdctl right-aligns the hex id, so a shorter random id is padded.
    assert!(
        table.lines().any(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            cells.get(1..5) == Some(&[new_id.as_str(), "unstarted", "", new_peer.as_str()][..])
        }),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ep, &["member", "list", "-w", "json"]).await).unwrap();
    // Listed in member-id order, and the new id is random.
    let members = json["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{json}");
    let (old, new): (Vec<_>, Vec<_>) = members.iter().partition(|m| m["name"] == "e1");
    assert_eq!(old.len(), 1, "{json}");
    assert_eq!(new[0]["isLearner"], true, "{json}");
    assert_eq!(old[0]["isLearner"], serde_json::Value::Null, "{json}");

    let moved_peer = format!("http://127.0.0.1:{}", free_port());
    let updated = ok(
        ep,
        &["member", "update", &new_id, "--peer-urls", &moved_peer],
    )
    .await;
    assert!(
        updated.starts_with(&format!("Member {new_id} updated in cluster ")),
        "{updated}"
    );
    let stderr = fails(ep, &["member", "promote", &new_id]).await;
    assert!(
        stderr.starts_with(
            "Error: etcdserver: can only promote a learner member which is in sync with leader (MemberPromote at "
        ),
        "{stderr}"
    );
    let removed = ok(ep, &["member", "remove", &new_id]).await;
    assert!(
        removed.starts_with(&format!("Member {new_id} removed from cluster ")),
        "{removed}"
    );
    let stderr = fails(ep, &["member", "remove", &new_id]).await;
    assert!(
        stderr.starts_with("Error: etcdserver: member not found"),
        "{stderr}"
    );
    let stderr = fails(ep, &["member", "remove", "not-hex"]).await;
    assert_eq!(
        stderr,
        "Error: bad member ID arg (\"not-hex\"), expecting ID in hex\n"
    );

    // move-leader to the leader itself is accepted by etcd.
    assert_eq!(
        ok(ep, &["move-leader", &id]).await,
        format!("Leadership transferred from {id} to {id}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_commands_match_etcdctl() {
    let Some(etcd) = Etcd::start(None, &[]).await else {
        return;
    };
    let ep = &etcd.client;
    ok(ep, &["put", "a", "1"]).await;

    let status = ok(ep, &["endpoint", "status"]).await;
    let cells: Vec<&str> = status.strip_suffix('\n').unwrap().split(", ").collect();
    assert_eq!(cells.len(), 10, "{status}");
    assert_eq!(
        (cells[0], cells[4], cells[5]),
        (ep.as_str(), "true", "false")
    );
    assert!(cells[2].starts_with("3.4."), "{status}");
    let table = ok(ep, &["endpoint", "status", "--cluster", "-w", "table"]).await;
    assert!(
        table.contains(&format!("| http://{ep} | {} |", cells[1])),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ep, &["endpoint", "status", "-w", "json"]).await).unwrap();
    assert_eq!(json[0]["Endpoint"], ep.as_str());
    assert!(json[0]["Status"]["dbSize"].as_i64().unwrap() > 0);

    let hash = ok(ep, &["endpoint", "hashkv"]).await;
    let (hash_ep, value) = hash.strip_suffix('\n').unwrap().split_once(", ").unwrap();
    assert_eq!(hash_ep, ep);
    value.parse::<u32>().unwrap();
    let table = ok(ep, &["endpoint", "hashkv", "-w", "table"]).await;
    assert!(table.contains(&format!("| {ep} | {value} |")), "{table}");

    // snapshot save: the file is whole, and ends with the sha256 of the rest.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.db");
    let file_arg = file.to_str().unwrap();
    assert_eq!(
        ok(ep, &["snapshot", "save", file_arg]).await,
        format!("Snapshot saved at {file_arg}\n")
    );
    let bytes = std::fs::read(&file).unwrap();
    let (content, sum) = bytes.split_at(bytes.len() - 32);
    assert_eq!(Sha256::digest(content).as_slice(), sum);
    assert!(!dir.path().join("snap.db.part").exists());
    let stderr = fails(ep, &["snapshot", "save", "/nonexistent/dir/x.db"]).await;
    assert!(
        stderr.starts_with("Error: could not open /nonexistent/dir/x.db.part: "),
        "{stderr}"
    );

    assert_eq!(
        ok(ep, &["defrag"]).await,
        format!("Finished defragmenting etcd member[{ep}]\n")
    );
    assert_eq!(
        ok(ep, &["defrag", "--cluster"]).await,
        format!("Finished defragmenting etcd member[http://{ep}]\n")
    );
    assert_eq!(ok(ep, &["alarm", "list"]).await, "");
    assert_eq!(ok(ep, &["alarm", "disarm"]).await, "");
}

/// etcd answers a LeaseKeepAlive call only with its first response: the
/// keepalive (and every session: lock, elect) must send before waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_and_sessions_work_against_etcd() {
    let Some(etcd) = Etcd::start(None, &[]).await else {
        return;
    };
    let ep = &etcd.client;
    let granted = ok(ep, &["lease", "grant", "100"]).await;
    let id = granted.split_whitespace().nth(1).unwrap();
    assert_eq!(
        ok(ep, &["lease", "keep-alive", "--once", id]).await,
        format!("lease {id} keepalived with TTL(100)\n")
    );
    // etcd sends no fencing token: it is read from the lock key.
    let out = ok(
        ep,
        &[
            "lock",
            "l1",
            "--",
            "sh",
            "-c",
            "echo $ETCD_LOCK_KEY $WITAN_FENCING_TOKEN",
        ],
    )
    .await;
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(words[0].starts_with("l1/"), "{out}");
    assert!(words[1].parse::<i64>().unwrap() > 0, "{out}");
}

/// `WITAN_INITIAL_CLUSTER="..."` with its members sorted by name; other
/// lines unchanged.
fn sort_initial_cluster(line: &str) -> String {
    let Some(list) = line
        .strip_prefix("WITAN_INITIAL_CLUSTER=\"")
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return line.to_string();
    };
    let mut members: Vec<&str> = list.split(',').collect();
    members.sort_unstable();
    format!("WITAN_INITIAL_CLUSTER=\"{}\"", members.join(","))
}
