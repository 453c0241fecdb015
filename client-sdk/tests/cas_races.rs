//! put_if_absent and compare-and-swap under contention: one creator wins,
//! and concurrent increments through CAS lose no update.

mod common;

use common::client_on;
use witan_client::{CreateOutcome, Expect, Put, Swap};
use witan_client_testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_many_creators_wins() {
    let cluster = Cluster::start(3).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client_on(&cluster, &[i % 3, (i + 1) % 3, (i + 2) % 3]).await;
        tasks.push(tokio::spawn(async move {
            client
                .put_if_absent("/race", format!("task-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut created = Vec::new();
    let mut holders = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            CreateOutcome::Created { revision } => created.push(revision),
            CreateOutcome::Exists(kv) => holders.push(kv),
        }
    }
    assert_eq!(created.len(), 1, "one creator");
    let client = client_on(&cluster, &[0]).await;
    let stored = client.get("/race").await.unwrap().kvs.remove(0);
    assert_eq!(stored.create_revision, created[0]);
    assert_eq!(holders.len(), 15);
    assert!(
        holders.iter().all(|kv| kv == &stored),
        "every loser saw the winner"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_increments_lose_nothing() {
    let cluster = Cluster::start(3).await;
    let setup = client_on(&cluster, &[0]).await;
    setup.put("/counter", "0").await.unwrap();
    let (workers, increments) = (8, 25);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client_on(&cluster, &[w % 3, (w + 1) % 3, (w + 2) % 3]).await;
        tasks.push(tokio::spawn(async move {
            let mut mismatches = 0;
            let mut current = client.get("/counter").await.unwrap().kvs.remove(0);
            for _ in 0..increments {
                loop {
                    let n: u64 = current.value_str().unwrap().parse().unwrap();
                    let put = Put::new("/counter", (n + 1).to_string());
                    match client
                        .compare_and_swap(put, Expect::ModRevision(current.mod_revision))
                        .await
                        .unwrap()
                    {
                        Swap::Swapped { revision } => {
                            current.value = (n + 1).to_string().into_bytes();
                            current.mod_revision = revision;
                            break;
                        }
                        Swap::Mismatch { current: Some(now) } => {
                            mismatches += 1;
                            current = now;
                        }
                        Swap::Mismatch { current: None } => panic!("the counter vanished"),
                    }
                }
            }
            mismatches
        }));
    }
    let mut mismatches = 0;
    for task in tasks {
        mismatches += task.await.unwrap();
    }
    let end = setup.get("/counter").await.unwrap().kvs.remove(0);
    assert_eq!(end.value_str().unwrap(), (workers * increments).to_string());
    // 1 put to start, one per increment: every swap wrote exactly once.
    assert_eq!(end.version, (workers * increments + 1) as i64);
    tracing::info!(mismatches, "contention seen");
    cluster.stop().await;
}
