//! [`Client`]: a handle on a witan cluster, and the one loop every unary
//! call goes through (deadline, failover, retry of what is safe, logging
//! in again once when the token was refused).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tracing::debug;

use crate::error::Error;
use crate::grpc::Transport;
use crate::members::Members;
use crate::options::ClientOptions;
use crate::retry::{self, Backoff, Idempotence, Next};

/// A connection to a witan (or etcd v3) cluster.
///
/// Cheap to clone: clones share the connections. Every call has a
/// deadline ([`ClientOptions::request_timeout`]); a call that fails
/// because a member is down or has no leader moves to the next endpoint,
/// and is repeated there only when repeating is safe (see
/// [`Error::OutcomeUnknown`]).
#[derive(Debug, Clone)]
pub struct Client {
    members: Arc<Members>,
    request_timeout: Duration,
}

impl Client {
    /// Connects to a cluster through any of `endpoints`
    /// (`http://host:port` or `host:port`). Returns once one of them
    /// accepted a connection (tried in order); the others are dialled when
    /// a failover needs them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let endpoint = cluster.endpoint(0);
    /// use witan_client::{Client, ClientOptions};
    ///
    /// // e.g. endpoint = "127.0.0.1:2379"
    /// let client = Client::connect([endpoint], ClientOptions::default()).await?;
    /// client.put("greeting", "hello").await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect<S: AsRef<str>>(
        endpoints: impl IntoIterator<Item = S>,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let members = Members::connect(endpoints, &options).await?;
        Ok(Client {
            members: Arc::new(members),
            request_timeout: options.request_timeout,
        })
    }

    /// This client with another deadline for its calls (sharing the
    /// connections).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use std::time::Duration;
    ///
    /// let quick = client.with_timeout(Duration::from_millis(500));
    /// let found = quick.get("missing").await?;
    /// assert!(found.kvs.is_empty());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            members: self.members.clone(),
            request_timeout: timeout,
        }
    }

    /// The endpoints, as dialled (`http://host:port`), in the order given.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let endpoint = cluster.endpoint(0);
    /// # let scheme_less = endpoint.trim_start_matches("http://").to_string();
    /// let client = witan_client::Client::connect([scheme_less], Default::default()).await?;
    /// assert_eq!(client.endpoints(), vec![endpoint]);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn endpoints(&self) -> Vec<String> {
        self.members.uris()
    }

    /// A client that has not connected (it will when used), for tests of
    /// code that needs one but sends nothing.
    #[cfg(test)]
    pub(crate) fn unconnected<S: AsRef<str>>(endpoints: impl IntoIterator<Item = S>) -> Client {
        Client {
            members: Arc::new(Members::unconnected(endpoints)),
            request_timeout: ClientOptions::default().request_timeout,
        }
    }

    /// The deadline of a call starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    /// The member calls go to now.
    pub(crate) fn current(&self) -> (usize, Transport) {
        self.members.current()
    }

    /// Member `index` failed a call: move on.
    pub(crate) fn failed(&self, index: usize) {
        self.members.failed(index)
    }

    /// What to do about a call member `index` refused for a reason of
    /// authentication, when the call carried `token`: `Ok` when the call
    /// is to be made again (once: `repeated` says whether it was
    /// already). A refused token makes the client log in again first; a
    /// stale auth revision needs nothing (the refused call changed
    /// nothing). `Err` is the error the call ends with.
    pub(crate) async fn auth_retry(
        &self,
        index: usize,
        token: Option<MetadataValue<Ascii>>,
        err: Error,
        repeated: &mut bool,
    ) -> Result<(), Error> {
        if *repeated {
            return Err(err);
        }
        match err {
            Error::InvalidToken if self.members.auth().has_credentials() => {
                *repeated = true;
                self.members.refresh_token(index, token).await
            }
            Error::AuthRevisionOld => {
                *repeated = true;
                debug!("permissions changed while the call was in flight; repeating it");
                Ok(())
            }
            err => Err(err),
        }
    }

    /// The token calls carry now.
    pub(crate) fn token(&self) -> Option<MetadataValue<Ascii>> {
        self.members.auth().token()
    }

    /// How many endpoints there are.
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Runs one call: `attempt` is made on the current member, and made
    /// again on the next members while the failure allows it (see
    /// [`retry`]) and the deadline has not passed.
    pub(crate) async fn execute<T, F, Fut>(&self, kind: Idempotence, attempt: F) -> Result<T, Error>
    where
        F: FnMut(Transport) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.execute_until(Some(self.deadline()), kind, attempt)
            .await
    }

    /// [`Client::execute`] with no deadline (`None`): for the recipes'
    /// blocking calls, which wait as long as it takes and end when the
    /// caller drops them. Failovers go on until a member answers.
    pub(crate) async fn execute_unbounded<T, F, Fut>(
        &self,
        kind: Idempotence,
        attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Transport) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.execute_until(None, kind, attempt).await
    }

    async fn execute_until<T, F, Fut>(
        &self,
        deadline: Option<Instant>,
        kind: Idempotence,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Transport) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut backoff = Backoff::new();
        let mut failures = 0usize;
        let mut auth_repeated = false;
        loop {
            let token = self.token();
            let (index, channel) = self.members.current();
            let outcome = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, attempt(channel)).await,
                None => Ok(attempt(channel).await),
            };
            let status = match outcome {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) => status,
                Err(_) => return Err(retry::deadline_passed(kind)),
            };
            match retry::next(kind, retry::classify(status)) {
                Next::Fail(err) => {
                    // The refused call changed nothing, so running out of
                    // time while logging in again is a plain timeout.
                    let again = self.auth_retry(index, token, err, &mut auth_repeated);
                    match deadline {
                        Some(deadline) => tokio::time::timeout_at(deadline, again)
                            .await
                            .map_err(|_| Error::Timeout)??,
                        None => again.await?,
                    }
                }
                Next::Failover(status) => {
                    debug!(endpoint = self.members.uri(index), %status, "attempt failed");
                    self.members.failed(index);
                    failures += 1;
                    // After a whole round over the members, pause: the
                    // cluster may be electing a leader.
                    if failures.is_multiple_of(self.members.len()) {
                        let resume = Instant::now() + backoff.pause();
                        if deadline.is_some_and(|deadline| resume >= deadline) {
                            return Err(retry::gave_up(Some(status)));
                        }
                        tokio::time::sleep_until(resume).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_auth_revision_is_repeated_once() {
        let client = Client::unconnected(["127.0.0.1:1"]);
        let mut repeated = false;
        let first = client
            .auth_retry(0, None, Error::AuthRevisionOld, &mut repeated)
            .await;
        assert!(first.is_ok() && repeated);
        let second = client
            .auth_retry(0, None, Error::AuthRevisionOld, &mut repeated)
            .await;
        assert!(matches!(second, Err(Error::AuthRevisionOld)));
    }

    #[tokio::test]
    async fn without_credentials_a_refused_token_is_final() {
        let client = Client::unconnected(["127.0.0.1:1"]);
        let mut repeated = false;
        let outcome = client
            .auth_retry(0, None, Error::InvalidToken, &mut repeated)
            .await;
        assert!(matches!(outcome, Err(Error::InvalidToken)));
        let other = client
            .auth_retry(0, None, Error::LeaseNotFound, &mut repeated)
            .await;
        assert!(matches!(other, Err(Error::LeaseNotFound)));
    }
}
