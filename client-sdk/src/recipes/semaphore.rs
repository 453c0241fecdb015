//! [`Semaphore`]: at most N holders at once, served in arrival order, and
//! the [`SemaphorePermit`] an acquisition gives.

use std::future::Future;

use witan_proto::recipespb::{SemaphoreAcquireRequest, SemaphoreReleaseRequest};
use witan_recipes::{FencingToken, semaphore};

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

/// A named counting semaphore. Made by [`Client::semaphore`]; cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    name: Vec<u8>,
    permits: u32,
    mode: Mode,
}

impl Client {
    /// The semaphore `name` admitting `permits` holders at once (every
    /// caller must give the same number, else [`Error::SizeMismatch`]),
    /// run by the cluster's `witan.recipes.v1.Semaphore` service unless
    /// [`Semaphore::mode`] says otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use std::time::Duration;
    /// use witan_client::Session;
    ///
    /// let sessions = [
    ///     Session::new(&client, 10).await?,
    ///     Session::new(&client, 10).await?,
    ///     Session::new(&client, 10).await?,
    /// ];
    /// let pool = client.semaphore("/pools/db", 2);
    /// let first = pool.acquire(&sessions[0]).await?;
    /// let _second = pool.acquire(&sessions[1]).await?;
    /// // Both permits are taken: the third waits.
    /// let third = tokio::time::timeout(Duration::from_millis(200), pool.acquire(&sessions[2])).await;
    /// assert!(third.is_err());
    /// first.release().await?;
    /// let third = pool.acquire(&sessions[2]).await?;
    /// # let _ = third;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn semaphore(&self, name: impl Into<Vec<u8>>, permits: u32) -> Semaphore {
        Semaphore {
            client: self.clone(),
            name: name.into(),
            permits,
            mode: Mode::default(),
        }
    }
}

impl Semaphore {
    /// Runs the semaphore as `mode` says (the service by default).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Fenced, Mode, Op, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let permit = client.semaphore("/pools/gpu", 4).mode(Mode::ClientSide).acquire(&session).await?;
    /// let outcome = permit.fenced().then([Op::put("/gpu/job", "42")]).commit().await?;
    /// assert!(matches!(outcome, Fenced::Applied(_)));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Acquires a permit for `session`, waiting in arrival order as long as
    /// it takes (no deadline; dropping the future withdraws the waiting
    /// key). [`Error::LeaseExpired`] if the session is lost first. One
    /// permit per session: acquiring again with the same session resumes
    /// the same key. See [`Client::semaphore`].
    pub async fn acquire(&self, session: &Session) -> Result<SemaphorePermit, Error> {
        let signal = session.signal();
        let (key, token) = call::while_alive(&signal, self.take(session.lease_id())).await?;
        // Who holds "now" for a permit is the permit key itself.
        let holder = Get::new(key.clone());
        Ok(SemaphorePermit {
            hold: Hold::new(&self.client, self.mode, key, token, holder, signal),
        })
    }

    async fn take(&self, lease: i64) -> Result<(Vec<u8>, FencingToken), Error> {
        match self.mode {
            Mode::Server => {
                let request = SemaphoreAcquireRequest {
                    name: self.name.clone(),
                    permits: self.permits,
                    lease,
                };
                let response = call::blocking_rpc(&self.client, |channel| {
                    let request = request.clone();
                    async move {
                        Ok(grpc::semaphore(channel)
                            .acquire(request)
                            .await?
                            .into_inner())
                    }
                })
                .await?;
                Ok((response.key, FencingToken(response.token)))
            }
            Mode::ClientSide => {
                let held = call::blocking_recipe(|| {
                    semaphore::acquire(&self.client, &self.name, self.permits, lease)
                })
                .await?;
                Ok((held.key, held.token))
            }
        }
    }
}

/// A held permit: its key and fencing token. Dropping it releases the
/// permit in the background (fenced, best effort); it also ends with the
/// session's lease. See [`Client::semaphore`].
#[derive(Debug)]
#[must_use = "the permit is released when dropped"]
pub struct SemaphorePermit {
    hold: Hold,
}

impl SemaphorePermit {
    /// The permit's key (`name/holders/<lease in hex>`).
    pub fn key(&self) -> &[u8] {
        &self.hold.key
    }

    /// The permit's fencing token (the key's create revision).
    pub fn token(&self) -> FencingToken {
        self.hold.token
    }

    /// A transaction that commits only while this permit is held (see
    /// [`FencedTxn`] and [`Semaphore::mode`]).
    pub fn fenced(&self) -> FencedTxn {
        self.hold.fenced()
    }

    /// Whether the session the permit was taken with is lost.
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Resolves when the session the permit was taken with is lost (see
    /// [`LockGuard::lost`](crate::LockGuard::lost)).
    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.hold.lost()
    }

    /// Releases the permit (see [`Client::semaphore`]).
    pub async fn release(mut self) -> Result<(), Error> {
        let hold = &self.hold;
        match hold.mode {
            Mode::Server => {
                let request = SemaphoreReleaseRequest {
                    key: hold.key.clone(),
                };
                hold.client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move {
                            Ok(grpc::semaphore(channel)
                                .release(request)
                                .await?
                                .into_inner())
                        }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                semaphore::release(&hold.client, &hold.key).await?;
            }
        }
        self.hold.disarm();
        Ok(())
    }
}
