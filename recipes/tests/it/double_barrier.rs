//! Double barrier: enter blocks until the count is in, leave until all
//! are out, a crashed participant leaves with its lease.

use witan_recipes::double_barrier::{enter, leave};
use witan_recipes::{KvCore, RecipeError};

use crate::common::{within, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_enter_together_and_leave_when_a_crashed_one_expires() {
    let member = Member::start().await;
    let core = &member.core;
    let leases = [
        member.lease(60).await,
        member.lease(60).await,
        member.lease(60).await,
    ];

    let mut entering = Vec::new();
    for (i, lease) in leases[..2].iter().copied().enumerate() {
        let core = core.clone();
        entering.push(tokio::spawn(
            async move { enter(&core, b"db", 3, lease).await },
        ));
        member.until_keys(b"db/waiters/", i + 1).await;
    }
    assert!(entering.iter().all(|e| !e.is_finished()));
    assert!(member.get(b"db/ready").await.is_none());
    assert_eq!(member.get(b"db/size").await.unwrap().value, b"3");

    // A participant with another count is refused while others are in.
    assert_eq!(
        enter(core, b"db", 4, member.lease(60).await).await,
        Err(RecipeError::SizeMismatch {
            what: "double barrier count",
            recorded: 3,
            requested: 4
        })
    );

    let third = enter(core, b"db", 3, leases[2]).await.unwrap();
    let mut tokens = vec![third.token];
    for e in entering {
        tokens.push(within(e).await.unwrap().unwrap().token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3);
    assert!(member.get(b"db/ready").await.is_some());

    // The first two leave; the third crashes inside (its lease is
    // revoked), so their leave completes only then.
    let leaving: Vec<_> = leases[..2]
        .iter()
        .copied()
        .map(|lease| {
            let core = core.clone();
            tokio::spawn(async move { leave(&core, b"db", lease).await })
        })
        .collect();
    // The oldest waits for the newest (the crashed one); the middle one
    // has deleted its key and waits for the oldest.
    member.until_keys(b"db/waiters/", 2).await;
    assert!(leaving.iter().all(|l| !l.is_finished()));
    core.lease_revoke(leases[2]).await.unwrap();
    for l in leaving {
        within(l).await.unwrap().unwrap();
    }
    assert!(member.keys_under(b"db/waiters/").await.is_empty());
    assert!(member.get(b"db/ready").await.is_none());

    // The next round may use another count now that nobody is in.
    let solo = enter(core, b"db", 1, member.lease(60).await).await.unwrap();
    assert!(solo.token.0 > third.token.0);
    assert_eq!(member.get(b"db/size").await.unwrap().value, b"1");
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_entrant_withdraws_and_bad_arguments_are_refused() {
    let member = Member::start().await;
    let core = &member.core;
    assert!(matches!(
        enter(core, b"x", 0, 1).await,
        Err(RecipeError::InvalidArgument(_))
    ));
    let lease = member.lease(60).await;
    let task = {
        let core = core.clone();
        tokio::spawn(async move { enter(&core, b"x", 2, lease).await })
    };
    member.until_keys(b"x/waiters/", 1).await;
    task.abort();
    member.until_keys(b"x/waiters/", 0).await;
    member.stop().await;
}
