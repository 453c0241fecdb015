//! Read-write lock: readers share, a writer is alone, a waiting writer
//! holds back later readers.

use witan_recipes::rwlock::{read_lock, unlock, write_lock};

use crate::common::{within, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_and_writers_are_exclusive_in_arrival_order() {
    let member = Member::start().await;
    let core = &member.core;
    let r1 = read_lock(core, b"rw", member.lease(60).await)
        .await
        .unwrap();
    let r2 = read_lock(core, b"rw", member.lease(60).await)
        .await
        .unwrap();
    assert!(r1.key.starts_with(b"rw/read/") && r2.key.starts_with(b"rw/read/"));

    let w = {
        let core = core.clone();
        let lease = member.lease(60).await;
        tokio::spawn(async move { write_lock(&core, b"rw", lease).await })
    };
    member.until_keys(b"rw/write/", 1).await;
    let r3 = {
        let core = core.clone();
        let lease = member.lease(60).await;
        tokio::spawn(async move { read_lock(&core, b"rw", lease).await })
    };
    member.until_keys(b"rw/read/", 3).await;
    assert!(!w.is_finished() && !r3.is_finished());

    unlock(core, &r1.key).await.unwrap();
    assert!(!w.is_finished());
    unlock(core, &r2.key).await.unwrap();
    let w = within(w).await.unwrap().unwrap();
    assert!(w.key.starts_with(b"rw/write/"));
    assert!(!r3.is_finished(), "a reader got in past a writer");

    // A second writer waits for the reader ahead of it.
    let w2 = {
        let core = core.clone();
        let lease = member.lease(60).await;
        tokio::spawn(async move { write_lock(&core, b"rw", lease).await })
    };
    member.until_keys(b"rw/write/", 2).await;
    unlock(core, &w.key).await.unwrap();
    let r3 = within(r3).await.unwrap().unwrap();
    assert!(!w2.is_finished());
    unlock(core, &r3.key).await.unwrap();
    let w2 = within(w2).await.unwrap().unwrap();
    assert!(w2.token > r3.token);
    member.stop().await;
}
