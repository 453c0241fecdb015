//! [`Session`]: a lease kept alive by a background task, the failure
//! detector of locks, elections and every other holder.
//!
//! The session counts itself lost as soon as it cannot prove the lease is
//! alive: when a keepalive is refused (the lease is gone), or when no
//! keepalive succeeded for a whole TTL (measured from when the last
//! successful one was *sent*, so the client never believes in a lease the
//! cluster already expired). Being lost is final.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use crate::client::Client;
use crate::error::Error;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionLost {
    /// The cluster no longer knows the lease (it expired or was revoked).
    #[error("the session's lease expired or was revoked")]
    LeaseGone,
    /// No keepalive got through for a whole TTL: the lease must be
    /// presumed expired.
    #[error("no keepalive reached the cluster for a whole TTL")]
    Unreachable,
    /// The session was closed (or dropped) by its owner.
    #[error("the session was closed")]
    Closed,
}

/// A lease with a background keepalive.
///
/// Dropping the session stops the keepalive and revokes the lease in the
/// background (best effort); [`Session::close`] revokes it and waits.
#[derive(Debug)]
pub struct Session {
    client: Client,
    lease: i64,
    ttl: i64,
    state: watch::Receiver<Option<SessionLost>>,
    keepalive: JoinHandle<()>,
    /// Whether the lease was dealt with (revoked or abandoned), so drop
    /// must not revoke it.
    revoked: bool,
}

impl Session {
    /// Grants a lease of `ttl` seconds and keeps it alive (renewing about
    /// every third of the TTL) until the session is closed or lost.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Session, SessionLost};
    ///
    /// // Renewed about every second.
    /// let session = Session::new(&client, 3).await?;
    /// client.put("/workers/w1", "alive").lease(session.lease_id()).await?;
    /// assert!(!session.is_lost());
    ///
    /// // Elsewhere, someone revokes the lease: the session learns it.
    /// let lost = session.lost();
    /// client.lease_revoke(session.lease_id()).await?;
    /// assert_eq!(lost.await, SessionLost::LeaseGone);
    /// assert!(client.get("/workers/w1").await?.kvs.is_empty());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(client: &Client, ttl: i64) -> Result<Session, Error> {
        // The lease may live at most TTL from its grant: count from before
        // the request is sent.
        let sent = Instant::now();
        let grant = client.lease_grant(ttl).await?;
        Ok(Session::start(client, grant.id, grant.ttl, sent))
    }

    /// Keeps an existing lease alive, as if it was just renewed at `since`.
    fn start(client: &Client, lease: i64, ttl: i64, since: Instant) -> Session {
        let (report, state) = watch::channel(None);
        let task = Keepalive {
            client: client.clone(),
            lease,
            ttl: secs(ttl),
            expires: since + secs(ttl),
            report,
        };
        let keepalive = tokio::spawn(task.run().instrument(info_span!("session", lease)));
        Session {
            client: client.clone(),
            lease,
            ttl,
            state,
            keepalive,
            revoked: false,
        }
    }

    /// The lease id (attach keys to it with
    /// [`Put::lease`](crate::Put::lease)).
    pub fn lease_id(&self) -> i64 {
        self.lease
    }

    /// The TTL granted, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Whether the session is lost (then it holds nothing).
    pub fn is_lost(&self) -> bool {
        self.signal().is_lost()
    }

    /// Resolves when the session is lost, with the reason. The future does
    /// not borrow the session: select on it while working.
    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.signal().lost()
    }

    /// The session's loss signal, for holds that outlive the borrow of the
    /// session they were taken with.
    pub(crate) fn signal(&self) -> LostSignal {
        LostSignal(self.state.clone())
    }

    /// Stops the keepalive *without* revoking the lease: the cluster
    /// expires it after its TTL, and everything held under it passes on
    /// then. This is what a crashed or paused process looks like to the
    /// cluster; holds taken with the session count it lost at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// let session = witan_client::Session::new(&client, 30).await?;
    /// let lease = session.lease_id();
    /// session.abandon();
    /// // Still alive until its TTL runs out.
    /// assert!(client.lease_time_to_live(lease, false).await?.ttl > 0);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn abandon(mut self) {
        self.keepalive.abort();
        self.revoked = true;
    }

    /// Stops the keepalive and revokes the lease (deleting its keys).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// let session = witan_client::Session::new(&client, 10).await?;
    /// client.put("/workers/w2", "alive").lease(session.lease_id()).await?;
    /// session.close().await?;
    /// assert!(client.get("/workers/w2").await?.kvs.is_empty());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(mut self) -> Result<(), Error> {
        self.keepalive.abort();
        self.revoked = true;
        match self.client.lease_revoke(self.lease).await {
            Ok(()) | Err(Error::LeaseNotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keepalive.abort();
        if self.revoked {
            return;
        }
        // Best effort: the lease expires by itself after its TTL anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let lease = self.lease;
            runtime.spawn(async move {
                match client.lease_revoke(lease).await {
                    Ok(()) | Err(Error::LeaseNotFound) => debug!(lease, "dropped session revoked"),
                    Err(err) => debug!(lease, %err, "dropped session not revoked; it will expire"),
                }
            });
        }
    }
}

/// Whether a session is lost, without borrowing it: held by the guards
/// of recipes taken with the session.
#[derive(Debug, Clone)]
pub(crate) struct LostSignal(watch::Receiver<Option<SessionLost>>);

impl LostSignal {
    /// Whether the session is lost; a session dropped or abandoned is
    /// (its keepalive has stopped, so its lease cannot be shown alive).
    pub(crate) fn is_lost(&self) -> bool {
        self.0.borrow().is_some() || self.0.has_changed().is_err()
    }

    /// Resolves when the session is lost, with the reason.
    pub(crate) fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        let mut state = self.0.clone();
        async move {
            match state.wait_for(Option::is_some).await {
                Ok(lost) => lost.unwrap_or(SessionLost::Closed),
                // The keepalive task is gone: the session was dropped.
                Err(_) => SessionLost::Closed,
            }
        }
    }
}

/// The background task of a session.
struct Keepalive {
    client: Client,
    lease: i64,
    ttl: Duration,
    /// When the lease expires at the latest, given the keepalives that
    /// succeeded.
    expires: Instant,
    report: watch::Sender<Option<SessionLost>>,
}

/// Retries of a failed keepalive come at least this often...
const MIN_RETRY: Duration = Duration::from_millis(100);
/// ...and at most this far apart (bounded by a tenth of the TTL).
const MAX_RETRY: Duration = Duration::from_secs(1);

impl Keepalive {
    async fn run(mut self) {
        let lost = self.keep_alive().await;
        warn!(lease = self.lease, %lost, "session lost");
        let _ = self.report.send(Some(lost));
    }

    /// Renews until the lease is gone or cannot be shown alive.
    async fn keep_alive(&mut self) -> SessionLost {
        let period = self.ttl / 3;
        let retry = (self.ttl / 10).clamp(MIN_RETRY, MAX_RETRY);
        let mut next = Instant::now() + period;
        loop {
            tokio::time::sleep_until(next.min(self.expires)).await;
            if Instant::now() >= self.expires {
                return SessionLost::Unreachable;
            }
            let sent = Instant::now();
            let attempt = self.client.lease_keep_alive_once(self.lease);
            match tokio::time::timeout_at(self.expires, attempt).await {
                Ok(Ok(ttl)) => {
                    self.expires = sent + secs(ttl);
                    next = sent + period;
                }
                Ok(Err(Error::LeaseNotFound)) => return SessionLost::LeaseGone,
                Ok(Err(err)) => {
                    debug!(%err, "keepalive failed; retrying");
                    next = Instant::now() + retry;
                }
                Err(_) => return SessionLost::Unreachable,
            }
        }
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(u64::try_from(ttl).unwrap_or(0))
}
