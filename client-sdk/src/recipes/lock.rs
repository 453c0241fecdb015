//! [`Lock`]: a mutex (etcd's `v3lockpb.Lock` semantics), and the
//! [`LockGuard`] an acquisition gives.

use std::future::Future;

use witan_proto::v3lockpb::{LockRequest, UnlockRequest};
use witan_recipes::FencingToken;

use super::Mode;
use super::call;
use super::fence::FencedTxn;
use super::hold::{Hold, oldest_of};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;
use crate::session::{Session, SessionLost};

/// The response metadata where witan's Lock service puts the fencing
/// token (etcd does not send it).
const FENCING_TOKEN_METADATA: &str = "witan-fencing-token";

/// A named lock: at most one holder at a time, served in arrival order.
/// Made by [`Client::lock`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    name: Vec<u8>,
    mode: Mode,
}

impl Client {
    /// The lock `name` (its holder keys are `name/<lease in hex>`, as
    /// etcd's, so `etcdctl lock name` contends with it), run by the
    /// cluster's Lock service unless [`Lock::mode`] says otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Fenced, Op, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let guard = client.lock("/locks/counter").acquire(&session).await?;
    /// // Write only while the lock is still ours.
    /// let outcome = guard.fenced().then([Op::put("/counter", "1")]).commit().await?;
    /// assert!(matches!(outcome, Fenced::Applied(_)));
    /// guard.release().await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lock(&self, name: impl Into<Vec<u8>>) -> Lock {
        Lock {
            client: self.clone(),
            name: name.into(),
            mode: Mode::default(),
        }
    }
}

impl Lock {
    /// Runs the lock as `mode` says (the service by default).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Mode, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let lock = client.lock("/locks/jobs").mode(Mode::ClientSide);
    /// let guard = lock.acquire(&session).await?;
    /// assert!(guard.key().starts_with(b"/locks/jobs/"));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Acquires the lock for `session`, waiting as long as it takes (no
    /// deadline: wrap it in `tokio::time::timeout` to bound it; dropping
    /// the future withdraws the waiting key). Fails with
    /// [`Error::LeaseExpired`] if the session is lost first.
    ///
    /// One hold per session and name: acquiring again with the same
    /// session returns the same key at once (as etcd does), and releasing
    /// either releases both.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use std::time::Duration;
    /// use witan_client::Session;
    ///
    /// let (first, second) = (Session::new(&client, 10).await?, Session::new(&client, 10).await?);
    /// let lock = client.lock("/locks/db");
    /// let held = lock.acquire(&first).await?;
    /// // The second session waits while the first holds the lock.
    /// let waiting = tokio::time::timeout(Duration::from_millis(200), lock.acquire(&second)).await;
    /// assert!(waiting.is_err());
    /// let first_token = held.token();
    /// held.release().await?;
    /// let next = lock.acquire(&second).await?;
    /// assert!(next.token() > first_token);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self, session: &Session) -> Result<LockGuard, Error> {
        let signal = session.signal();
        let (key, token) = call::while_alive(&signal, self.take(session.lease_id())).await?;
        Ok(LockGuard {
            hold: Hold::new(
                &self.client,
                self.mode,
                key,
                token,
                oldest_of(&self.name),
                signal,
            ),
        })
    }

    async fn take(&self, lease: i64) -> Result<(Vec<u8>, FencingToken), Error> {
        match self.mode {
            Mode::Server => {
                let request = LockRequest {
                    name: self.name.clone(),
                    lease,
                };
                let (key, token) = call::blocking_rpc(&self.client, |channel| {
                    let request = request.clone();
                    async move {
                        let response = grpc::lock(channel).lock(request).await?;
                        let token = response
                            .metadata()
                            .get(FENCING_TOKEN_METADATA)
                            .and_then(|value| value.to_str().ok())
                            .and_then(|text| text.parse::<i64>().ok());
                        Ok((response.into_inner().key, token))
                    }
                })
                .await?;
                let token = match token {
                    Some(token) => FencingToken(token),
                    // etcd does not send the token: the key's create
                    // revision is the token.
                    None => created(&self.client, &key).await?,
                };
                Ok((key, token))
            }
            Mode::ClientSide => {
                let held = call::blocking_recipe(|| {
                    witan_recipes::lock::lock(&self.client, &self.name, lease)
                })
                .await?;
                Ok((held.key, held.token))
            }
        }
    }
}

/// The fencing token of a hold whose service did not say it: its key's
/// create revision; [`Error::LeaseExpired`] if the key is already gone.
pub(crate) async fn created(client: &Client, key: &[u8]) -> Result<FencingToken, Error> {
    let found = client.get(key.to_vec()).await?;
    match found.kvs.first() {
        Some(kv) => Ok(FencingToken(kv.create_revision)),
        None => Err(Error::LeaseExpired),
    }
}

/// A held lock: its key and fencing token.
///
/// Dropping the guard releases the lock in the background (fenced on the
/// token, best effort); [`LockGuard::release`] releases it and waits. The
/// lock also ends when the session's lease does: a holder that may have
/// been paused must write through [`LockGuard::fenced`], and can notice
/// the loss with [`LockGuard::lost`].
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    hold: Hold,
}

impl LockGuard {
    /// The lock key (`name/<lease in hex>`).
    pub fn key(&self) -> &[u8] {
        &self.hold.key
    }

    /// The fencing token: the key's create revision, larger for every
    /// later acquisition of the lock.
    pub fn token(&self) -> FencingToken {
        self.hold.token
    }

    /// A transaction that commits only while this lock is held (see
    /// [`FencedTxn`]); if it is not, [`Fenced::Lost`](crate::Fenced) says
    /// who holds it now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Fenced, Op, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let guard = client.lock("/locks/a").acquire(&session).await?;
    /// // Someone deletes the key (an operator, or the lease expiring).
    /// client.delete(guard.key().to_vec()).await?;
    /// let outcome = guard.fenced().then([Op::put("/a", "x")]).commit().await?;
    /// assert_eq!(outcome, Fenced::Lost { current_holder: None });
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn fenced(&self) -> FencedTxn {
        self.hold.fenced()
    }

    /// Whether the session is lost (then the lock is, or soon will be,
    /// someone else's).
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Resolves when the session the lock was taken with is lost. It does
    /// not borrow the guard: select on it while working.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Session, SessionLost};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let guard = client.lock("/locks/b").acquire(&session).await?;
    /// let lost = guard.lost();
    /// client.lease_revoke(session.lease_id()).await?;
    /// assert_eq!(lost.await, SessionLost::LeaseGone);
    /// assert!(guard.is_lost());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.hold.lost()
    }

    /// Releases the lock (deletes its key), as etcd's Unlock does.
    pub async fn release(mut self) -> Result<(), Error> {
        let hold = &self.hold;
        match hold.mode {
            Mode::Server => {
                let request = UnlockRequest {
                    key: hold.key.clone(),
                };
                hold.client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move { Ok(grpc::lock(channel).unlock(request).await?.into_inner()) }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                witan_recipes::lock::unlock(&hold.client, &hold.key).await?;
            }
        }
        self.hold.disarm();
        Ok(())
    }
}
