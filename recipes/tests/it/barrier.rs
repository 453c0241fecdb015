//! Barrier: hold, wait, release, and a holder whose lease ends.

use witan_recipes::barrier::{hold, release, wait};
use witan_recipes::{CoreError, KvCore, RecipeError};

use crate::common::{within, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_block_while_the_barrier_is_raised() {
    let member = Member::start().await;
    let core = &member.core;
    // Not raised: waiting returns at once.
    within(wait(core, b"gate")).await.unwrap();

    let lease = member.lease(60).await;
    let held = hold(core, b"gate", lease).await.unwrap();
    assert_eq!(held.key, b"gate");
    let other = member.lease(60).await;
    assert_eq!(
        hold(core, b"gate", other).await,
        Err(RecipeError::AlreadyHeld)
    );
    // The holder raising it again gets the same hold.
    assert_eq!(hold(core, b"gate", lease).await.unwrap().token, held.token);

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let core = core.clone();
            tokio::spawn(async move { wait(&core, b"gate").await })
        })
        .collect();
    let released = release(core, b"gate").await.unwrap();
    // Each waiter started with the barrier raised, so it returns exactly
    // the release's revision.
    for waiter in waiters {
        assert_eq!(within(waiter).await.unwrap().unwrap(), released);
    }
    assert!(member.get(b"gate").await.is_none());
    // Releasing a barrier that is down succeeds.
    release(core, b"gate").await.unwrap();
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_ends_lowers_the_barrier() {
    let member = Member::start().await;
    let core = &member.core;
    assert_eq!(
        hold(core, b"gate", 0x5555).await,
        Err(RecipeError::Core(CoreError::LeaseNotFound))
    );
    let lease = member.lease(60).await;
    hold(core, b"gate", lease).await.unwrap();
    let waiter = {
        let core = core.clone();
        tokio::spawn(async move { wait(&core, b"gate").await })
    };
    core.lease_revoke(lease).await.unwrap();
    within(waiter).await.unwrap().unwrap();
    // Down again: anyone may raise it.
    hold(core, b"gate", member.lease(60).await).await.unwrap();
    member.stop().await;
}
