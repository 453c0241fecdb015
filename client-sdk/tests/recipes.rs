//! The recipe clients against in-process members, each scenario run in
//! both modes (through the services, and client-side over the SDK's own
//! KV core), plus the two modes contending on one name.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{client_on, within};
use futures::StreamExt;
use witan_client::{Error, Fenced, Mode, Op, Session};
use witan_client_testkit::Cluster;

/// Generates one test per mode for an `async fn(Mode)` scenario.
macro_rules! both_modes {
    ($scenario:ident, $server:ident, $client_side:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $server() {
            $scenario(Mode::Server).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $client_side() {
            $scenario(Mode::ClientSide).await
        }
    };
}

/// How long a negative check ("still waiting") watches.
const STILL: Duration = Duration::from_millis(300);
/// How long anything that should happen may take.
const SOON: Duration = Duration::from_secs(10);

/// Whether `future` is still pending after [`STILL`].
async fn still_waiting<F: std::future::Future>(future: F) -> bool {
    tokio::time::timeout(STILL, future).await.is_err()
}

both_modes!(
    lock_excludes_and_fences_increments,
    lock_excludes_and_fences_increments_server,
    lock_excludes_and_fences_increments_client_side
);

/// Eight contenders each add 1 to a counter five times under the lock,
/// writing through the fence: every write applies, no two holders
/// overlap, and the count is exact.
async fn lock_excludes_and_fences_increments(mode: Mode) {
    let cluster = Cluster::single().await;
    let setup = client_on(&cluster, &[0]).await;
    setup.put("/counter", "0").await.unwrap();
    let (contenders, rounds) = (8, 5);
    let inside = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..contenders {
        let client = client_on(&cluster, &[0]).await;
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            let session = Session::new(&client, 10).await.unwrap();
            let lock = client.lock("/locks/counter").mode(mode);
            let mut tokens = Vec::new();
            for _ in 0..rounds {
                let guard = lock.acquire(&session).await.unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                let current = client.get("/counter").await.unwrap();
                let n: u64 = current.kvs[0].value_str().unwrap().parse().unwrap();
                let outcome = guard
                    .fenced()
                    .then([Op::put("/counter", (n + 1).to_string())])
                    .commit()
                    .await
                    .unwrap();
                assert!(matches!(outcome, Fenced::Applied(_)), "{outcome:?}");
                tokens.push(guard.token());
                inside.store(false, Ordering::SeqCst);
                guard.release().await.unwrap();
            }
            session.close().await.unwrap();
            tokens
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "tokens grow");
        tokens.extend(mine);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), contenders * rounds, "one token per hold");
    let counter = setup.get("/counter").await.unwrap();
    assert_eq!(
        counter.kvs[0].value_str().unwrap(),
        (contenders * rounds).to_string()
    );
    cluster.stop().await;
}

both_modes!(
    a_paused_holders_fenced_write_is_refused,
    a_paused_holders_fenced_write_is_refused_server,
    a_paused_holders_fenced_write_is_refused_client_side
);

/// A holder whose keepalives stop (as if paused) loses the lock when its
/// lease expires; the next holder gets it, and the stale holder's fenced
/// write is refused, naming the new holder.
async fn a_paused_holders_fenced_write_is_refused(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let lock = client.lock("/locks/paused").mode(mode);

    let short = Session::new(&client, 1).await.unwrap();
    let stale = lock.acquire(&short).await.unwrap();
    short.abandon();
    assert!(
        within(SOON, "the guard notices its session stopped", stale.lost()).await
            == witan_client::SessionLost::Closed
    );

    let next_session = Session::new(&client, 10).await.unwrap();
    let next = within(SOON, "the lock passes on", lock.acquire(&next_session))
        .await
        .unwrap();
    assert!(next.token() > stale.token());

    let refused = stale
        .fenced()
        .then([Op::put("/protected", "stale")])
        .commit()
        .await
        .unwrap();
    match refused {
        Fenced::Lost {
            current_holder: Some(holder),
        } => {
            assert_eq!(holder.key, next.key());
            assert_eq!(holder.create_revision, next.token().0);
        }
        other => panic!("the stale write was not refused: {other:?}"),
    }
    assert!(client.get("/protected").await.unwrap().kvs.is_empty());
    let applied = next
        .fenced()
        .then([Op::put("/protected", "fresh")])
        .commit()
        .await
        .unwrap();
    assert!(matches!(applied, Fenced::Applied(_)));
    cluster.stop().await;
}

both_modes!(
    a_waiter_whose_lease_ends_gets_lease_expired,
    a_waiter_whose_lease_ends_gets_lease_expired_server,
    a_waiter_whose_lease_ends_gets_lease_expired_client_side
);

/// A waiter whose lease is revoked while it waits is told so, and its
/// waiting key does not stay behind.
async fn a_waiter_whose_lease_ends_gets_lease_expired(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let lock = client.lock("/locks/expiring").mode(mode);
    let holder = Session::new(&client, 10).await.unwrap();
    let _held = lock.acquire(&holder).await.unwrap();

    let waiter = Session::new(&client, 10).await.unwrap();
    let waiting = {
        let lease = waiter.lease_id();
        let client = client.clone();
        async move {
            // Revoke once the waiter's key is in the line.
            common::wait_until(SOON, "the waiter queues", || async {
                client.get("/locks/expiring/").prefix().await.unwrap().count == 2
            })
            .await;
            client.lease_revoke(lease).await.unwrap();
        }
    };
    let (result, ()) = tokio::join!(lock.acquire(&waiter), waiting);
    assert!(matches!(result, Err(Error::LeaseExpired)), "{result:?}");
    let left = client.get("/locks/expiring/").prefix().await.unwrap();
    assert_eq!(left.count, 1, "only the holder's key is left");
    cluster.stop().await;
}

both_modes!(
    election_campaign_observe_resign_in_order,
    election_campaign_observe_resign_in_order_server,
    election_campaign_observe_resign_in_order_client_side
);

/// One leader at a time; an observer sees every leader and value in
/// order, each leader's token larger than the last.
async fn election_campaign_observe_resign_in_order(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let election = client.election("/elections/db").mode(mode);
    assert!(matches!(election.leader().await, Err(Error::NoLeader)));

    let (a, b) = (
        Session::new(&client, 10).await.unwrap(),
        Session::new(&client, 10).await.unwrap(),
    );
    let first = election.campaign(&a, "a1").await.unwrap();
    // Observing starts with the current leader; from then on nothing is
    // missed, even while the stream is not polled.
    let mut observed = election.observe();
    let mut seen = vec![
        within(SOON, "the observer sees the leader", observed.next())
            .await
            .unwrap()
            .unwrap(),
    ];
    let second = election.campaign(&b, "b1");
    tokio::pin!(second);
    assert!(
        still_waiting(&mut second).await,
        "b campaigns while a leads"
    );
    first.proclaim("a2").await.unwrap();
    assert_eq!(election.leader().await.unwrap().value, b"a2");
    let first_token = first.token();
    let first_key = first.key().to_vec();
    first.resign().await.unwrap();
    let second = within(SOON, "b leads after a resigns", second)
        .await
        .unwrap();
    assert!(second.token() > first_token);

    while seen.len() < 3 {
        let leader = within(SOON, "the observer sees the change", observed.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(leader);
    }
    let values: Vec<&str> = seen.iter().map(|l| l.value_str().unwrap()).collect();
    assert_eq!(values, ["a1", "a2", "b1"]);
    assert_eq!(seen[0].key, first_key);
    assert_eq!(seen[0].token, first_token);
    assert_eq!(seen[2].token, second.token());
    assert!(seen.windows(2).all(|w| w[0].revision <= w[1].revision));

    // The leadership writes through its fence; a deleted leader key makes
    // proclaim fail with NotLeader.
    let write = second
        .fenced()
        .then([Op::put("/primary", "b")])
        .commit()
        .await
        .unwrap();
    assert!(matches!(write, Fenced::Applied(_)));
    client.delete(second.key().to_vec()).await.unwrap();
    assert!(matches!(second.proclaim("b2").await, Err(Error::NotLeader)));
    cluster.stop().await;
}

both_modes!(
    barrier_holds_back_waiters_until_released,
    barrier_holds_back_waiters_until_released_server,
    barrier_holds_back_waiters_until_released_client_side
);

async fn barrier_holds_back_waiters_until_released(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let barrier = client.barrier("/barriers/gate").mode(mode);
    let (a, b) = (
        Session::new(&client, 10).await.unwrap(),
        Session::new(&client, 10).await.unwrap(),
    );
    barrier.hold(&a).await.unwrap();
    barrier.hold(&a).await.unwrap();
    assert!(matches!(barrier.hold(&b).await, Err(Error::AlreadyHeld)));

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move { barrier.wait().await })
        })
        .collect();
    let mut waiters = Box::pin(futures::future::join_all(waiters));
    assert!(
        still_waiting(&mut waiters).await,
        "waiters pass a raised barrier"
    );
    barrier.release().await.unwrap();
    for waited in within(SOON, "waiters pass once released", waiters).await {
        waited.unwrap().unwrap();
    }
    // Lowered, it can be raised by another lease.
    barrier.hold(&b).await.unwrap();
    cluster.stop().await;
}

both_modes!(
    double_barrier_enters_together_and_leaves_together,
    double_barrier_enters_together_and_leaves_together_server,
    double_barrier_enters_together_and_leaves_together_client_side
);

async fn double_barrier_enters_together_and_leaves_together(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let barrier = client.double_barrier("/barriers/round", 3).mode(mode);
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(Session::new(&client, 10).await.unwrap());
    }
    let [s1, s2, s3] = &sessions[..] else {
        unreachable!()
    };

    let mut two = Box::pin(futures::future::try_join(
        barrier.enter(s1),
        barrier.enter(s2),
    ));
    assert!(still_waiting(&mut two).await, "two of three passed");
    // A participant giving another count is refused.
    let other = Session::new(&client, 10).await.unwrap();
    let mismatch = client
        .double_barrier("/barriers/round", 4)
        .mode(mode)
        .enter(&other)
        .await;
    assert!(
        matches!(
            mismatch,
            Err(Error::SizeMismatch {
                recorded: Some(3),
                requested: Some(4)
            })
        ),
        "{mismatch:?}"
    );
    let (entered, third) = within(
        SOON,
        "all three enter",
        futures::future::join(two, barrier.enter(s3)),
    )
    .await;
    entered.unwrap();
    third.unwrap();

    let mut leaving = Box::pin(futures::future::try_join(
        barrier.leave(s1),
        barrier.leave(s2),
    ));
    assert!(still_waiting(&mut leaving).await, "left before all left");
    let (left, last) = within(
        SOON,
        "all three leave",
        futures::future::join(leaving, barrier.leave(s3)),
    )
    .await;
    left.unwrap();
    last.unwrap();
    cluster.stop().await;
}

both_modes!(
    semaphore_never_exceeds_its_permits,
    semaphore_never_exceeds_its_permits_server,
    semaphore_never_exceeds_its_permits_client_side
);

async fn semaphore_never_exceeds_its_permits(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let permits = 2;
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let client = client_on(&cluster, &[0]).await;
        let (holding, most) = (holding.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let session = Session::new(&client, 10).await.unwrap();
            let semaphore = client.semaphore("/pools/workers", permits).mode(mode);
            for round in 0..3 {
                let permit = semaphore.acquire(&session).await.unwrap();
                let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(
                    now <= permits as usize,
                    "{now} holders of {permits} permits"
                );
                let outcome = permit
                    .fenced()
                    .then([Op::put(format!("/work/{i}/{round}"), "done")])
                    .commit()
                    .await
                    .unwrap();
                assert!(matches!(outcome, Fenced::Applied(_)));
                holding.fetch_sub(1, Ordering::SeqCst);
                permit.release().await.unwrap();
            }
            session.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= permits as usize);
    let done = client.get("/work/").prefix().count_only().await.unwrap();
    assert_eq!(done.count, 18);
    cluster.stop().await;
}

both_modes!(
    rwlock_shares_reads_and_isolates_writes,
    rwlock_shares_reads_and_isolates_writes_server,
    rwlock_shares_reads_and_isolates_writes_client_side
);

async fn rwlock_shares_reads_and_isolates_writes(mode: Mode) {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let lock = client.rwlock("/locks/table").mode(mode);
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(Session::new(&client, 10).await.unwrap());
    }
    let r1 = lock.read(&sessions[0]).await.unwrap();
    let r2 = within(SOON, "readers share", lock.read(&sessions[1]))
        .await
        .unwrap();
    let mut writer = Box::pin(lock.write(&sessions[2]));
    assert!(
        still_waiting(&mut writer).await,
        "a writer ran with readers"
    );
    // A reader arriving after a waiting writer waits for it.
    let mut late_reader = Box::pin(lock.read(&sessions[3]));
    assert!(
        still_waiting(&mut late_reader).await,
        "a reader jumped the writer"
    );
    let read_token = r2.token();
    r1.unlock().await.unwrap();
    r2.unlock().await.unwrap();
    let w = within(SOON, "the writer goes once readers left", writer)
        .await
        .unwrap();
    assert!(
        still_waiting(&mut late_reader).await,
        "a reader ran with the writer"
    );
    let outcome = w
        .fenced()
        .then([Op::put("/table", "v2")])
        .commit()
        .await
        .unwrap();
    assert!(matches!(outcome, Fenced::Applied(_)));
    w.unlock().await.unwrap();
    let r3 = within(SOON, "the reader goes after the writer", late_reader)
        .await
        .unwrap();
    assert!(r3.token() > read_token);
    cluster.stop().await;
}

/// A lock taken through the service and one taken client-side exclude
/// each other on the same name, whichever comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_side_locks_exclude_each_other() {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let (a, b) = (
        Session::new(&client, 10).await.unwrap(),
        Session::new(&client, 10).await.unwrap(),
    );
    for (first, second) in [
        (Mode::Server, Mode::ClientSide),
        (Mode::ClientSide, Mode::Server),
    ] {
        let held = client
            .lock("/locks/shared")
            .mode(first)
            .acquire(&a)
            .await
            .unwrap();
        let other = client.lock("/locks/shared").mode(second);
        let mut waiting = Box::pin(other.acquire(&b));
        assert!(
            still_waiting(&mut waiting).await,
            "{second:?} took a lock held via {first:?}"
        );
        let token = held.token();
        held.release().await.unwrap();
        let next = within(SOON, "the other mode gets the lock", waiting)
            .await
            .unwrap();
        assert!(next.token() > token);
        next.release().await.unwrap();
    }
    cluster.stop().await;
}

/// A guard dropped without release lets go in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_releases_its_lock() {
    let cluster = Cluster::single().await;
    let client = client_on(&cluster, &[0]).await;
    let session = Session::new(&client, 10).await.unwrap();
    let guard = client
        .lock("/locks/dropped")
        .acquire(&session)
        .await
        .unwrap();
    drop(guard);
    common::wait_until(SOON, "the dropped guard's key is deleted", || async {
        client
            .get("/locks/dropped/")
            .prefix()
            .await
            .unwrap()
            .kvs
            .is_empty()
    })
    .await;
    cluster.stop().await;
}

/// Through the services, a blocking acquire and an Observe stream carry on
/// when the member serving them stops: the acquire is made again on
/// another member with the same lease (which resumes its key), and the
/// observer reopens its stream without repeating what it saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_and_observers_survive_their_member_stopping() {
    let mut cluster = Cluster::start(3).await;
    let steady = client_on(&cluster, &[1, 2, 0]).await;
    let fragile = client_on(&cluster, &[0, 1, 2]).await;

    let holder = Session::new(&steady, 10).await.unwrap();
    let held = steady
        .lock("/locks/failover")
        .acquire(&holder)
        .await
        .unwrap();
    let leadership = steady
        .election("/elections/failover")
        .campaign(&holder, "v1")
        .await
        .unwrap();

    let waiter_session = Session::new(&fragile, 10).await.unwrap();
    let waiting_lock = fragile.lock("/locks/failover");
    let mut waiting = Box::pin(waiting_lock.acquire(&waiter_session));
    assert!(still_waiting(&mut waiting).await);
    let mut observed = fragile.election("/elections/failover").observe();
    let first = within(SOON, "the observer sees v1", observed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.value, b"v1");

    tracing::info!("stopping the member serving the waiter and the observer");
    cluster.stop_member(0).await;
    leadership.proclaim("v2").await.unwrap();
    let token = held.token();
    held.release().await.unwrap();

    let (acquired, next) = within(
        Duration::from_secs(20),
        "the waiter gets the lock and the observer sees v2 after the failover",
        futures::future::join(waiting, observed.next()),
    )
    .await;
    let acquired = acquired.unwrap();
    assert!(acquired.token() > token);
    assert_eq!(next.unwrap().unwrap().value, b"v2");
    cluster.stop().await;
}
