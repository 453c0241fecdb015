//! [`RwLock`]: any number of readers or one writer, served in arrival
//! order (a waiting writer holds back later readers), and the
//! [`RwLockGuard`] either side gives.

use std::future::Future;

use witan_proto::recipespb::{RwLockRequest, RwUnlockRequest};
use witan_recipes::{FencingToken, rwlock};

use super::Mode;
use super::call;
use super::fence::FencedTxn;
use super::hold::Hold;
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::kv::Get;
use crate::retry::Idempotence;
use crate::session::{Session, SessionLost};

/// A named read-write lock. Made by [`Client::rwlock`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct RwLock {
    client: Client,
    name: Vec<u8>,
    mode: Mode,
}

/// Which side of a read-write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Read,
    Write,
}

impl Client {
    /// The read-write lock `name`, run by the cluster's
    /// `witan.recipes.v1.RwLock` service unless [`RwLock::mode`] says
    /// otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use std::time::Duration;
    /// use witan_client::Session;
    ///
    /// let (a, b, c) = (
    ///     Session::new(&client, 10).await?,
    ///     Session::new(&client, 10).await?,
    ///     Session::new(&client, 10).await?,
    /// );
    /// let lock = client.rwlock("/locks/table");
    /// // Readers share...
    /// let r1 = lock.read(&a).await?;
    /// let r2 = lock.read(&b).await?;
    /// // ...a writer waits for them.
    /// let w = tokio::time::timeout(Duration::from_millis(200), lock.write(&c)).await;
    /// assert!(w.is_err());
    /// r1.unlock().await?;
    /// r2.unlock().await?;
    /// let w = lock.write(&c).await?;
    /// w.unlock().await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn rwlock(&self, name: impl Into<Vec<u8>>) -> RwLock {
        RwLock {
            client: self.clone(),
            name: name.into(),
            mode: Mode::default(),
        }
    }
}

impl RwLock {
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
    /// let guard = client.rwlock("/locks/index").mode(Mode::ClientSide).write(&session).await?;
    /// assert!(guard.key().starts_with(b"/locks/index/write/"));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Takes the read side for `session`, waiting for earlier writers (no
    /// deadline; dropping the future withdraws the waiting key).
    /// [`Error::LeaseExpired`] if the session is lost first. See
    /// [`Client::rwlock`].
    pub async fn read(&self, session: &Session) -> Result<RwLockGuard, Error> {
        self.take(session, Side::Read).await
    }

    /// Takes the write side for `session`, waiting for every earlier reader
    /// and writer (no deadline; dropping the future withdraws the waiting
    /// key). A session holding the read side waits for itself: no
    /// upgrades. See [`Client::rwlock`].
    pub async fn write(&self, session: &Session) -> Result<RwLockGuard, Error> {
        self.take(session, Side::Write).await
    }

    async fn take(&self, session: &Session, side: Side) -> Result<RwLockGuard, Error> {
        let signal = session.signal();
        let (key, token) = call::while_alive(&signal, self.run(session.lease_id(), side)).await?;
        // Who holds "now" for a side is the hold's own key.
        let holder = Get::new(key.clone());
        Ok(RwLockGuard {
            hold: Hold::new(&self.client, self.mode, key, token, holder, signal),
        })
    }

    async fn run(&self, lease: i64, side: Side) -> Result<(Vec<u8>, FencingToken), Error> {
        match self.mode {
            Mode::Server => {
                let request = RwLockRequest {
                    name: self.name.clone(),
                    lease,
                };
                let response = call::blocking_rpc(&self.client, |channel| {
                    let request = request.clone();
                    async move {
                        let mut service = grpc::rw_lock(channel);
                        let response = match side {
                            Side::Read => service.read_lock(request).await?,
                            Side::Write => service.write_lock(request).await?,
                        };
                        Ok(response.into_inner())
                    }
                })
                .await?;
                Ok((response.key, FencingToken(response.token)))
            }
            Mode::ClientSide => {
                let held = call::blocking_recipe(|| async move {
                    match side {
                        Side::Read => rwlock::read_lock(&self.client, &self.name, lease).await,
                        Side::Write => rwlock::write_lock(&self.client, &self.name, lease).await,
                    }
                })
                .await?;
                Ok((held.key, held.token))
            }
        }
    }
}

/// A held side of a read-write lock: its key and fencing token. Dropping
/// it unlocks in the background (fenced, best effort); it also ends with
/// the session's lease. See [`Client::rwlock`].
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct RwLockGuard {
    hold: Hold,
}

impl RwLockGuard {
    /// The hold's key (`name/read/<lease in hex>` or
    /// `name/write/<lease in hex>`).
    pub fn key(&self) -> &[u8] {
        &self.hold.key
    }

    /// The hold's fencing token (the key's create revision).
    pub fn token(&self) -> FencingToken {
        self.hold.token
    }

    /// A transaction that commits only while this hold is current (see
    /// [`FencedTxn`]).
    pub fn fenced(&self) -> FencedTxn {
        self.hold.fenced()
    }

    /// Whether the session the hold was taken with is lost.
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Resolves when the session the hold was taken with is lost (see
    /// [`LockGuard::lost`](crate::LockGuard::lost)).
    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.hold.lost()
    }

    /// Releases the hold (see [`Client::rwlock`]).
    pub async fn unlock(mut self) -> Result<(), Error> {
        let hold = &self.hold;
        match hold.mode {
            Mode::Server => {
                let request = RwUnlockRequest {
                    key: hold.key.clone(),
                };
                hold.client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move { Ok(grpc::rw_lock(channel).unlock(request).await?.into_inner()) }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                rwlock::unlock(&hold.client, &hold.key).await?;
            }
        }
        self.hold.disarm();
        Ok(())
    }
}
