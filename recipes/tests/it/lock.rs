//! Lock: mutual exclusion checked through fenced writes, arrival order,
//! leases ending, cancelled waiters, and `etcdctl lock` on the same names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{PutRequest, RequestOp};
use witan_recipes::lock::{lock, unlock};
use witan_recipes::{fenced_txn, CoreError, FencingToken, KvCore, RecipeError};

use crate::common::{within, Member};

fn put(key: &[u8], value: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            ..PutRequest::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_never_overlap_and_every_fenced_increment_lands() {
    let member = Member::start().await;
    const CONTENDERS: usize = 8;
    const ROUNDS: usize = 5;
    let inside = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let core = member.core.clone();
        let lease = member.lease(60).await;
        let inside = inside.clone();
        let tokens = tokens.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let held = lock(&core, b"counter-lock", lease).await.unwrap();
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokens.lock().unwrap().push(held.token);
                // Read, then write through the fence: a holder that lost
                // the lock could not write.
                let current = core
                    .range(witan_proto::etcdserverpb::RangeRequest {
                        key: b"counter".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .kvs
                    .first()
                    .map_or(0, |kv| {
                        String::from_utf8_lossy(&kv.value).parse::<u64>().unwrap()
                    });
                let next = (current + 1).to_string();
                let resp = core
                    .txn(fenced_txn(
                        &held.key,
                        held.token,
                        vec![put(b"counter", next.as_bytes())],
                    ))
                    .await
                    .unwrap();
                assert!(resp.succeeded, "the fence refused a current holder");
                inside.fetch_sub(1, Ordering::SeqCst);
                unlock(&core, &held.key).await.unwrap();
            }
        }));
    }
    for task in tasks {
        within(task).await.unwrap();
    }
    let counter = member.get(b"counter").await.unwrap();
    assert_eq!(counter.value, (CONTENDERS * ROUNDS).to_string().as_bytes());
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), CONTENDERS * ROUNDS);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens must grow with every hold: {tokens:?}"
    );
    assert!(member.keys_under(b"counter-lock/").await.is_empty());
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_cannot_write_through_the_fence() {
    let member = Member::start().await;
    let lease = member.lease(60).await;
    let held = lock(&member.core, b"fence", lease).await.unwrap();
    member.core.lease_revoke(lease).await.unwrap();
    let next = lock(&member.core, b"fence", member.lease(60).await)
        .await
        .unwrap();
    assert!(next.token > held.token);

    let resp = member
        .core
        .txn(fenced_txn(
            &held.key,
            held.token,
            vec![put(b"guarded", b"stale")],
        ))
        .await
        .unwrap();
    assert!(!resp.succeeded);
    // The failure branch tells the stale holder what is there now.
    match resp.responses[0].response.as_ref() {
        Some(Response::ResponseRange(range)) => assert!(range.kvs.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
    assert!(member.get(b"guarded").await.is_none());
    let resp = member
        .core
        .txn(fenced_txn(
            &next.key,
            next.token,
            vec![put(b"guarded", b"fresh")],
        ))
        .await
        .unwrap();
    assert!(resp.succeeded);
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order() {
    let member = Member::start().await;
    let first = lock(&member.core, b"fair", member.lease(60).await)
        .await
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let core = member.core.clone();
        let lease = member.lease(60).await;
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let held = lock(&core, b"fair", lease).await.unwrap();
            order.lock().unwrap().push(i);
            unlock(&core, &held.key).await.unwrap();
        }));
        // The next contender arrives only once this one is in line.
        member.until_keys(b"fair/", i + 2).await;
    }
    unlock(&member.core, &first.key).await.unwrap();
    for task in tasks {
        within(task).await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_holder_passes_the_lock_on() {
    let member = Member::start().await;
    let holder_lease = member.lease(60).await;
    let held = lock(&member.core, b"passes", holder_lease).await.unwrap();
    let core = member.core.clone();
    let waiter_lease = member.lease(60).await;
    let waiter = tokio::spawn(async move { lock(&core, b"passes", waiter_lease).await });
    member.until_keys(b"passes/", 2).await;
    assert!(!waiter.is_finished());

    member.core.lease_revoke(holder_lease).await.unwrap();
    let next = within(waiter).await.unwrap().unwrap();
    assert!(next.token > held.token);
    assert_eq!(
        next.key,
        witan_recipes::keys::lease_key(b"passes/", waiter_lease)
    );
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_lease_expires_gets_nothing() {
    let member = Member::start().await;
    let held = lock(&member.core, b"expires", member.lease(60).await)
        .await
        .unwrap();
    // The shortest lease the member grants, never kept alive.
    let short = member.core.lease_grant(1, 0).await.unwrap();
    let core = member.core.clone();
    let waiter = tokio::spawn(async move { lock(&core, b"expires", short.id).await });

    assert_eq!(
        within(waiter).await.unwrap(),
        Err(RecipeError::LeaseExpired)
    );
    let left = member.keys_under(b"expires/").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, held.key);
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_revoked_while_the_holder_holds_fails_at_once() {
    let member = Member::start().await;
    let _held = lock(&member.core, b"revoked", member.lease(60).await)
        .await
        .unwrap();
    let lease = member.lease(60).await;
    let core = member.core.clone();
    let waiter = tokio::spawn(async move { lock(&core, b"revoked", lease).await });
    member.until_keys(b"revoked/", 2).await;
    member.core.lease_revoke(lease).await.unwrap();
    assert_eq!(
        within(waiter).await.unwrap(),
        Err(RecipeError::LeaseExpired)
    );
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_withdraws_its_key() {
    let member = Member::start().await;
    let held = lock(&member.core, b"cancel", member.lease(60).await)
        .await
        .unwrap();
    let core = member.core.clone();
    let lease = member.lease(60).await;
    let waiter = tokio::spawn(async move { lock(&core, b"cancel", lease).await });
    member.until_keys(b"cancel/", 2).await;

    waiter.abort();
    member.until_keys(b"cancel/", 1).await;
    assert_eq!(member.keys_under(b"cancel/").await[0].key, held.key);

    // The line moves on without it.
    let core = member.core.clone();
    let lease = member.lease(60).await;
    let next = tokio::spawn(async move { lock(&core, b"cancel", lease).await });
    member.until_keys(b"cancel/", 2).await;
    unlock(&member.core, &held.key).await.unwrap();
    within(next).await.unwrap().unwrap();
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_checked_and_a_second_lock_resumes_the_first() {
    let member = Member::start().await;
    assert_eq!(
        lock(&member.core, b"l", 0x7777).await,
        Err(RecipeError::Core(CoreError::LeaseNotFound))
    );
    assert!(member.keys_under(b"l/").await.is_empty());
    assert!(matches!(
        lock(&member.core, b"l", 0).await,
        Err(RecipeError::InvalidArgument(_))
    ));
    assert!(matches!(
        lock(&member.core, b"", 1).await,
        Err(RecipeError::InvalidArgument(_))
    ));

    let lease = member.lease(60).await;
    let held = lock(&member.core, b"l", lease).await.unwrap();
    assert_eq!(held.key, format!("l/{lease:x}").into_bytes());
    assert_eq!(
        FencingToken(member.get(&held.key).await.unwrap().create_revision),
        held.token
    );
    let again = lock(&member.core, b"l", lease).await.unwrap();
    assert_eq!((again.key, again.token), (held.key.clone(), held.token));
    let revision = unlock(&member.core, &held.key).await.unwrap();
    assert!(revision > held.revision);
    assert!(member.get(&held.key).await.is_none());
    member.stop().await;
}

/// `etcdctl lock` builds the lock client-side from Txn, Range and Watch;
/// on the same name it must wait for our holder, and ours for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lock_contends_on_the_same_keys() {
    if !std::path::Path::new("/usr/bin/etcdctl").exists() {
        eprintln!("etcdctl not installed: skipping");
        return;
    }
    let member = Member::start().await;
    let endpoint = member.node.client_addrs()[0].to_string();
    let held = lock(&member.core, b"shared", member.lease(60).await)
        .await
        .unwrap();

    // etcdctl waits behind our holder, then runs its command under the lock.
    let mut etcdctl = tokio::process::Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "lock", "shared", "true"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    member.until_keys(b"shared/", 2).await;
    assert!(
        etcdctl.try_wait().unwrap().is_none(),
        "etcdctl took a held lock"
    );
    unlock(&member.core, &held.key).await.unwrap();
    assert!(within(etcdctl.wait()).await.unwrap().success());

    // etcdctl holds (until killed, its session lease revoked on exit); we
    // wait behind it.
    let mut etcdctl = tokio::process::Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "lock", "shared"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    member.until_keys(b"shared/", 1).await;
    let core = member.core.clone();
    let lease = member.lease(60).await;
    let ours = tokio::spawn(async move { lock(&core, b"shared", lease).await });
    member.until_keys(b"shared/", 2).await;
    assert!(!ours.is_finished());
    // etcdctl's key goes with its lease: revoke it as a crash would end it.
    let theirs = member.keys_under(b"shared/").await[0].lease;
    member.core.lease_revoke(theirs).await.unwrap();
    within(ours).await.unwrap().unwrap();
    etcdctl.kill().await.unwrap();
    member.stop().await;
}
