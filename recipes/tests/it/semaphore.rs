//! Semaphore: never more than N holders, arrival order, sizes agreed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use witan_recipes::semaphore::{acquire, release};
use witan_recipes::RecipeError;

use crate::common::{within, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_the_permits_hold_at_once() {
    let member = Member::start().await;
    const PERMITS: usize = 3;
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let core = member.core.clone();
        let lease = member.lease(60).await;
        let (inside, most) = (inside.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let held = acquire(&core, b"pool", PERMITS as u32, lease)
                    .await
                    .unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(now <= PERMITS, "{now} holders of {PERMITS} permits");
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
                release(&core, &held.key).await.unwrap();
            }
        }));
    }
    for task in tasks {
        within(task).await.unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= PERMITS);
    assert!(member.keys_under(b"pool/holders/").await.is_empty());
    member.stop().await;
}

/// Two permits, A and B hold, C and D wait (C next). B releases: C gets
/// in; D, which waited on C, must notice that only A and C are ahead now
/// and get in when A releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_follow_releases_anywhere_ahead_of_them() {
    let member = Member::start().await;
    let core = &member.core;
    let a = acquire(core, b"two", 2, member.lease(60).await)
        .await
        .unwrap();
    let b = acquire(core, b"two", 2, member.lease(60).await)
        .await
        .unwrap();
    let spawn = |lease| {
        let core = core.clone();
        tokio::spawn(async move { acquire(&core, b"two", 2, lease).await })
    };
    let c = spawn(member.lease(60).await);
    member.until_keys(b"two/holders/", 3).await;
    let d = spawn(member.lease(60).await);
    member.until_keys(b"two/holders/", 4).await;
    assert!(!c.is_finished() && !d.is_finished());

    release(core, &b.key).await.unwrap();
    let c = within(c).await.unwrap().unwrap();
    assert!(!d.is_finished());
    release(core, &a.key).await.unwrap();
    let d = within(d).await.unwrap().unwrap();
    assert!(d.token > c.token);
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_must_give_the_same_number_of_permits() {
    let member = Member::start().await;
    let core = &member.core;
    assert!(matches!(
        acquire(core, b"p", 0, 1).await,
        Err(RecipeError::InvalidArgument(_))
    ));
    let held = acquire(core, b"p", 3, member.lease(60).await)
        .await
        .unwrap();
    assert_eq!(
        acquire(core, b"p", 5, member.lease(60).await).await,
        Err(RecipeError::SizeMismatch {
            what: "semaphore permits",
            recorded: 3,
            requested: 5
        })
    );
    assert_eq!(member.keys_under(b"p/holders/").await.len(), 1);
    release(core, &held.key).await.unwrap();
    // Nobody holds: a new size may be recorded.
    acquire(core, b"p", 5, member.lease(60).await)
        .await
        .unwrap();
    assert_eq!(member.get(b"p/size").await.unwrap().value, b"5");
    member.stop().await;
}
