//! [`Barrier`]: one holder raises it, any number of waiters block until it
//! is lowered (or its holder's lease expires).

use witan_proto::recipespb::{BarrierHoldRequest, BarrierReleaseRequest, BarrierWaitRequest};
use witan_recipes::barrier;

use super::Mode;
use super::call;
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;
use crate::session::Session;

/// A named barrier (its key is the name itself, under the holder's
/// lease). Made by [`Client::barrier`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    name: Vec<u8>,
    mode: Mode,
}

impl Client {
    /// The barrier `name`, run by the cluster's `witan.recipes.v1.Barrier`
    /// service unless [`Barrier::mode`] says otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Session;
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let barrier = client.barrier("/barriers/deploy");
    /// barrier.hold(&session).await?;
    /// let waiter = tokio::spawn({
    ///     let barrier = barrier.clone();
    ///     async move { barrier.wait().await }
    /// });
    /// barrier.release().await?;
    /// waiter.await??;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn barrier(&self, name: impl Into<Vec<u8>>) -> Barrier {
        Barrier {
            client: self.clone(),
            name: name.into(),
            mode: Mode::default(),
        }
    }
}

impl Barrier {
    /// Runs the barrier as `mode` says (the service by default).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Mode;
    ///
    /// // Not raised: waiting returns at once.
    /// client.barrier("/barriers/idle").mode(Mode::ClientSide).wait().await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Raises the barrier under `session`'s lease; [`Error::AlreadyHeld`]
    /// if another lease holds it (raising it again under the same lease
    /// succeeds).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Error, Session};
    ///
    /// let (a, b) = (Session::new(&client, 10).await?, Session::new(&client, 10).await?);
    /// let barrier = client.barrier("/barriers/once");
    /// barrier.hold(&a).await?;
    /// assert!(matches!(barrier.hold(&b).await, Err(Error::AlreadyHeld)));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn hold(&self, session: &Session) -> Result<(), Error> {
        let lease = session.lease_id();
        match self.mode {
            Mode::Server => {
                let request = BarrierHoldRequest {
                    name: self.name.clone(),
                    lease,
                };
                // Safe to repeat: holding again under the same lease
                // returns the same hold.
                self.client
                    .execute(Idempotence::Safe, |channel| {
                        let request = request.clone();
                        async move { Ok(grpc::barrier(channel).hold(request).await?.into_inner()) }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                barrier::hold(&self.client, &self.name, lease).await?;
            }
        }
        Ok(())
    }

    /// Lowers the barrier, whoever raised it (lowering a barrier that is
    /// not raised succeeds). See [`Client::barrier`].
    pub async fn release(&self) -> Result<(), Error> {
        match self.mode {
            Mode::Server => {
                let request = BarrierReleaseRequest {
                    name: self.name.clone(),
                };
                self.client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move { Ok(grpc::barrier(channel).release(request).await?.into_inner()) }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                barrier::release(&self.client, &self.name).await?;
            }
        }
        Ok(())
    }

    /// Returns once the barrier is not raised, waiting as long as it takes
    /// (no deadline; drop the future to stop waiting). See
    /// [`Client::barrier`].
    pub async fn wait(&self) -> Result<(), Error> {
        match self.mode {
            Mode::Server => {
                let request = BarrierWaitRequest {
                    name: self.name.clone(),
                };
                call::blocking_rpc(&self.client, |channel| {
                    let request = request.clone();
                    async move { Ok(grpc::barrier(channel).wait(request).await?.into_inner()) }
                })
                .await?;
            }
            Mode::ClientSide => {
                call::blocking_recipe(|| barrier::wait(&self.client, &self.name)).await?;
            }
        }
        Ok(())
    }
}
