//! [`DoubleBarrier`]: participants enter and block until `count` of them
//! are in; they leave and block until every one has left.

use witan_proto::recipespb::{DoubleBarrierEnterRequest, DoubleBarrierLeaveRequest};
use witan_recipes::double_barrier;

use super::Mode;
use super::call;
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::session::Session;

/// A named double barrier for `count` participants, one per session.
/// Made by [`Client::double_barrier`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    name: Vec<u8>,
    count: u32,
    mode: Mode,
}

impl Client {
    /// The double barrier `name` for `count` participants (every one must
    /// give the same count, else [`Error::SizeMismatch`]), run by the
    /// cluster's `witan.recipes.v1.DoubleBarrier` service unless
    /// [`DoubleBarrier::mode`] says otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Session;
    ///
    /// let (a, b) = (Session::new(&client, 10).await?, Session::new(&client, 10).await?);
    /// let barrier = client.double_barrier("/barriers/round", 2);
    /// // Both must be in before either passes.
    /// tokio::try_join!(barrier.enter(&a), barrier.enter(&b))?;
    /// tokio::try_join!(barrier.leave(&a), barrier.leave(&b))?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn double_barrier(&self, name: impl Into<Vec<u8>>, count: u32) -> DoubleBarrier {
        DoubleBarrier {
            client: self.clone(),
            name: name.into(),
            count,
            mode: Mode::default(),
        }
    }
}

impl DoubleBarrier {
    /// Runs the barrier as `mode` says (the service by default).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Mode, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let alone = client.double_barrier("/barriers/solo", 1).mode(Mode::ClientSide);
    /// alone.enter(&session).await?;
    /// alone.leave(&session).await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Enters as `session`'s participant and waits until `count` are in
    /// (no deadline; dropping the future withdraws the participant).
    /// [`Error::LeaseExpired`] if the session is lost first. See
    /// [`Client::double_barrier`].
    pub async fn enter(&self, session: &Session) -> Result<(), Error> {
        let lease = session.lease_id();
        let call = async {
            match self.mode {
                Mode::Server => {
                    let request = DoubleBarrierEnterRequest {
                        name: self.name.clone(),
                        count: self.count,
                        lease,
                    };
                    call::blocking_rpc(&self.client, |channel| {
                        let request = request.clone();
                        async move {
                            Ok(grpc::double_barrier(channel)
                                .enter(request)
                                .await?
                                .into_inner())
                        }
                    })
                    .await?;
                }
                Mode::ClientSide => {
                    call::blocking_recipe(|| {
                        double_barrier::enter(&self.client, &self.name, self.count, lease)
                    })
                    .await?;
                }
            }
            Ok(())
        };
        call::while_alive(&session.signal(), call).await
    }

    /// Leaves as `session`'s participant and waits until every participant
    /// has left (a crashed one leaves when its lease expires). See
    /// [`Client::double_barrier`].
    pub async fn leave(&self, session: &Session) -> Result<(), Error> {
        let lease = session.lease_id();
        let call = async {
            match self.mode {
                Mode::Server => {
                    let request = DoubleBarrierLeaveRequest {
                        name: self.name.clone(),
                        lease,
                    };
                    call::blocking_rpc(&self.client, |channel| {
                        let request = request.clone();
                        async move {
                            Ok(grpc::double_barrier(channel)
                                .leave(request)
                                .await?
                                .into_inner())
                        }
                    })
                    .await?;
                }
                Mode::ClientSide => {
                    call::blocking_recipe(|| {
                        double_barrier::leave(&self.client, &self.name, lease)
                    })
                    .await?;
                }
            }
            Ok(())
        };
        call::while_alive(&session.signal(), call).await
    }
}
