//! [`Election`]: leader election (etcd's `v3electionpb.Election`
//! semantics), the [`Leadership`] a campaign wins, and the [`Leader`]
//! others see.

use std::future::Future;

use witan_proto::mvccpb;
use witan_proto::v3electionpb::{
    CampaignRequest, LeaderKey, LeaderRequest, ProclaimRequest, ResignRequest,
};
use witan_recipes::{FencingToken, election};

use super::Mode;
use super::call;
use super::fence::FencedTxn;
use super::hold::{Hold, oldest_of};
use super::observe::{self, LeaderStream};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;
use crate::session::{Session, SessionLost};

/// A named election: the oldest campaigner leads. Made by
/// [`Client::election`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Election {
    client: Client,
    name: Vec<u8>,
    mode: Mode,
}

/// The leader of an election, as seen at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's key (`name/<lease in hex>`).
    pub key: Vec<u8>,
    /// The value it proclaimed.
    pub value: Vec<u8>,
    /// The leadership's fencing token (the key's create revision).
    pub token: FencingToken,
    /// The leader's lease.
    pub lease: i64,
    /// The store revision this was seen at.
    pub revision: i64,
}

impl Leader {
    pub(crate) fn from_kv(kv: mvccpb::KeyValue, revision: i64) -> Leader {
        Leader {
            key: kv.key,
            value: kv.value,
            token: FencingToken(kv.create_revision),
            lease: kv.lease,
            revision,
        }
    }

    /// The proclaimed value as UTF-8 text.
    pub fn value_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.value)
    }
}

impl Client {
    /// The election `name` (campaigners' keys are `name/<lease in hex>`,
    /// as etcd's, so `etcdctl elect name` campaigns in it), run by the
    /// cluster's Election service unless [`Election::mode`] says
    /// otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Session;
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let election = client.election("/elections/db");
    /// let leadership = election.campaign(&session, "10.0.0.1:5432").await?;
    /// let leader = election.leader().await?;
    /// assert_eq!(leader.value_str()?, "10.0.0.1:5432");
    /// assert_eq!(leader.token, leadership.token());
    /// leadership.resign().await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn election(&self, name: impl Into<Vec<u8>>) -> Election {
        Election {
            client: self.clone(),
            name: name.into(),
            mode: Mode::default(),
        }
    }
}

impl Election {
    /// Runs the election as `mode` says (the service by default).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Mode, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let election = client.election("/elections/cache").mode(Mode::ClientSide);
    /// let leadership = election.campaign(&session, "node-a").await?;
    /// assert_eq!(election.leader().await?.key, leadership.key());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Campaigns for `session` with `value`, waiting until it leads (no
    /// deadline: wrap it in `tokio::time::timeout` to bound it; dropping
    /// the future withdraws the candidacy). Fails with
    /// [`Error::LeaseExpired`] if the session is lost first. Campaigning
    /// again with the same session resumes the same candidacy with the
    /// new value, as etcd does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use std::time::Duration;
    /// use witan_client::Session;
    ///
    /// let (a, b) = (Session::new(&client, 10).await?, Session::new(&client, 10).await?);
    /// let election = client.election("/elections/primary");
    /// let first = election.campaign(&a, "a").await?;
    /// let second = tokio::time::timeout(Duration::from_millis(200), election.campaign(&b, "b")).await;
    /// assert!(second.is_err(), "b waits while a leads");
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn campaign(
        &self,
        session: &Session,
        value: impl Into<Vec<u8>>,
    ) -> Result<Leadership, Error> {
        let value = value.into();
        let signal = session.signal();
        let won = call::while_alive(&signal, self.run(session.lease_id(), value)).await?;
        let hold = Hold::new(
            &self.client,
            self.mode,
            won.key.clone(),
            won.token(),
            oldest_of(&self.name),
            signal,
        );
        Ok(Leadership { hold, won })
    }

    async fn run(&self, lease: i64, value: Vec<u8>) -> Result<election::Leadership, Error> {
        match self.mode {
            Mode::Server => {
                let request = CampaignRequest {
                    name: self.name.clone(),
                    lease,
                    value,
                };
                let response = call::blocking_rpc(&self.client, |channel| {
                    let request = request.clone();
                    async move {
                        Ok(grpc::election(channel)
                            .campaign(request)
                            .await?
                            .into_inner())
                    }
                })
                .await?;
                response
                    .leader
                    .map(election::Leadership::from)
                    .ok_or(Error::UnexpectedResponse(
                        "a campaign answered without a leader key",
                    ))
            }
            Mode::ClientSide => {
                let (won, _) = call::blocking_recipe(|| {
                    election::campaign(&self.client, &self.name, lease, value.clone())
                })
                .await?;
                Ok(won)
            }
        }
    }

    /// The current leader; [`Error::NoLeader`] if nobody campaigns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Error;
    ///
    /// let election = client.election("/elections/empty");
    /// assert!(matches!(election.leader().await, Err(Error::NoLeader)));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn leader(&self) -> Result<Leader, Error> {
        match self.mode {
            Mode::Server => {
                let request = LeaderRequest {
                    name: self.name.clone(),
                };
                let response =
                    self.client
                        .execute(Idempotence::Safe, |channel| {
                            let request = request.clone();
                            async move {
                                Ok(grpc::election(channel).leader(request).await?.into_inner())
                            }
                        })
                        .await?;
                let revision = response.header.map_or(0, |h| h.revision);
                let kv = response.kv.ok_or(Error::NoLeader)?;
                Ok(Leader::from_kv(kv, revision))
            }
            Mode::ClientSide => {
                let (kv, revision) = election::leader(&self.client, &self.name).await?;
                Ok(Leader::from_kv(kv, revision))
            }
        }
    }

    /// The leader now, then every change of leader or of its value, in
    /// order. The stream starts when first polled (nothing earlier is
    /// shown) and waits for a first leader if there is none. It goes on across member failures (it may then skip
    /// to the present, never going back), and ends after an error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use futures::StreamExt;
    /// use witan_client::Session;
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let election = client.election("/elections/observed");
    /// let leadership = election.campaign(&session, "v1").await?;
    ///
    /// let mut updates = election.observe();
    /// let first = updates.next().await.unwrap()?;
    /// assert_eq!((first.value_str()?, first.token), ("v1", leadership.token()));
    /// leadership.proclaim("v2").await?;
    /// assert_eq!(updates.next().await.unwrap()?.value_str()?, "v2");
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn observe(&self) -> LeaderStream {
        match self.mode {
            Mode::Server => observe::server(self.client.clone(), self.name.clone()),
            Mode::ClientSide => observe::client_side(self.client.clone(), self.name.clone()),
        }
    }
}

/// A won election: the leader's key and the leadership's fencing token.
///
/// Dropping it resigns in the background (fenced on the token, best
/// effort); [`Leadership::resign`] resigns and waits. It also ends when
/// the session's lease does: a leader that may have been paused must write
/// through [`Leadership::fenced`], and can notice the loss with
/// [`Leadership::lost`].
#[derive(Debug)]
#[must_use = "leadership is resigned when dropped"]
pub struct Leadership {
    hold: Hold,
    won: election::Leadership,
}

impl Leadership {
    /// The leader's key.
    pub fn key(&self) -> &[u8] {
        &self.won.key
    }

    /// The leadership's fencing token (etcd's `LeaderKey.rev`).
    pub fn token(&self) -> FencingToken {
        self.won.token()
    }

    /// The lease the leadership is held under.
    pub fn lease(&self) -> i64 {
        self.won.lease
    }

    /// Sets the leader's value; [`Error::NotLeader`] if this leadership is
    /// no longer current.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Error, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let election = client.election("/elections/proclaimed");
    /// let leadership = election.campaign(&session, "starting").await?;
    /// leadership.proclaim("ready").await?;
    /// assert_eq!(election.leader().await?.value_str()?, "ready");
    ///
    /// client.delete(leadership.key().to_vec()).await?;
    /// assert!(matches!(leadership.proclaim("again").await, Err(Error::NotLeader)));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn proclaim(&self, value: impl Into<Vec<u8>>) -> Result<(), Error> {
        let value = value.into();
        match self.hold.mode {
            Mode::Server => {
                let request = ProclaimRequest {
                    leader: Some(LeaderKey::from(self.won.clone())),
                    value,
                };
                self.hold
                    .client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move {
                            Ok(grpc::election(channel)
                                .proclaim(request)
                                .await?
                                .into_inner())
                        }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                election::proclaim(&self.hold.client, &self.won, value).await?;
            }
        }
        Ok(())
    }

    /// Gives up the leadership (the next campaigner leads). Resigning a
    /// leadership that is no longer current changes nothing.
    pub async fn resign(mut self) -> Result<(), Error> {
        match self.hold.mode {
            Mode::Server => {
                let request = ResignRequest {
                    leader: Some(LeaderKey::from(self.won.clone())),
                };
                self.hold
                    .client
                    .execute(Idempotence::Write, |channel| {
                        let request = request.clone();
                        async move { Ok(grpc::election(channel).resign(request).await?.into_inner()) }
                    })
                    .await?;
            }
            Mode::ClientSide => {
                election::resign(&self.hold.client, &self.won).await?;
            }
        }
        self.hold.disarm();
        Ok(())
    }

    /// A transaction that commits only while this leadership is current
    /// (see [`FencedTxn`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Fenced, Op, Session};
    ///
    /// let session = Session::new(&client, 10).await?;
    /// let leadership = client.election("/elections/writer").campaign(&session, "me").await?;
    /// let outcome = leadership.fenced().then([Op::put("/primary/epoch", "1")]).commit().await?;
    /// assert!(matches!(outcome, Fenced::Applied(_)));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn fenced(&self) -> FencedTxn {
        self.hold.fenced()
    }

    /// Whether the session is lost (then the leadership is, or soon will
    /// be, someone else's).
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Resolves when the session the leadership was won with is lost (see
    /// [`LockGuard::lost`](crate::LockGuard::lost)).
    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.hold.lost()
    }
}
