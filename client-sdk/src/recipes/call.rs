//! How the recipe clients make their blocking calls: a service call with
//! no deadline that fails over between members, a recipe run client-side
//! whose transient failures are repeated, and giving up once the caller's
//! session is lost.
//!
//! Repeating a blocking call whose outcome is unknown is safe for every
//! blocking recipe call there is, which is why both helpers always
//! repeat: a lock, campaign, semaphore acquire, read or write lock, or
//! double-barrier enter made again with the same lease takes over the
//! key the first attempt may have created (etcd's semantics: the key is
//! `NAME/<lease>`, and finding it resumes it rather than queueing again);
//! a double-barrier leave is by lease and a barrier wait only reads.
//! Writes that are not blocking (release, proclaim, ...) keep the client's
//! deadline and its rule: repeated only if certainly not applied.

use std::future::Future;

use tonic::Status;
use tracing::debug;
use witan_recipes::RecipeError;

use crate::client::Client;
use crate::error::Error;
use crate::grpc::Transport;
use crate::retry::{Backoff, Idempotence};
use crate::session::LostSignal;

/// A blocking service call: no deadline, failing over (and repeating the
/// call) until a member answers. Dropping the future cancels the RPC; the
/// member then withdraws the caller's waiting key.
pub(crate) async fn blocking_rpc<T, F, Fut>(client: &Client, attempt: F) -> Result<T, Error>
where
    F: FnMut(Transport) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    // Safe: see the module doc.
    client.execute_unbounded(Idempotence::Safe, attempt).await
}

/// A blocking recipe run client-side: repeated after a failure of the
/// network or the cluster (each of its calls already failed over between
/// members), until it succeeds or fails for a reason repeating cannot
/// fix. Dropping the future drops the recipe's guard, which withdraws
/// its waiting key.
pub(crate) async fn blocking_recipe<T, F, Fut>(mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RecipeError>>,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await.map_err(Error::from) {
            Ok(answer) => return Ok(answer),
            // Safe to repeat: see the module doc.
            Err(err) if transient(&err) => {
                debug!(%err, "recipe call failed; repeating it");
                tokio::time::sleep(backoff.pause()).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether a client-side recipe failed because the cluster could not be
/// reached or answer in time (the recipe's state is in the store, so
/// running it again picks up where it was).
fn transient(err: &Error) -> bool {
    matches!(
        err,
        Error::Unavailable { .. } | Error::OutcomeUnknown { .. } | Error::Timeout
    )
}

/// Runs `call` until it ends or the session is lost, whichever is first;
/// a lost session is [`Error::LeaseExpired`] (and dropping `call` cancels
/// it, withdrawing its key).
pub(crate) async fn while_alive<T>(
    session: &LostSignal,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    if session.is_lost() {
        return Err(Error::LeaseExpired);
    }
    tokio::select! {
        biased;
        answer = call => answer,
        lost = session.lost() => {
            debug!(%lost, "session lost while waiting");
            Err(Error::LeaseExpired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_to_reach_the_cluster_are_repeated() {
        assert!(transient(&Error::Timeout));
        assert!(transient(&Error::Unavailable {
            message: String::new()
        }));
        assert!(transient(&Error::OutcomeUnknown {
            message: String::new()
        }));
        assert!(!transient(&Error::LeaseExpired));
        assert!(!transient(&Error::LeaseNotFound));
        assert!(!transient(&Error::SizeMismatch {
            recorded: Some(1),
            requested: Some(2)
        }));
    }

    #[tokio::test]
    async fn a_recipe_is_repeated_until_it_answers() {
        let mut calls = 0;
        let answer = blocking_recipe(|| {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(RecipeError::Core(witan_recipes::CoreError::Unavailable(
                        "down".into(),
                    )))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 3);

        let refused: Result<(), Error> =
            blocking_recipe(|| async { Err(RecipeError::LeaseExpired) }).await;
        assert!(matches!(refused, Err(Error::LeaseExpired)));
    }
}
