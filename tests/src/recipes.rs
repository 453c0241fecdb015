//! Support for the recipe service tests: etcd clients that fail over
//! between members, lease keepalive tasks that can be stopped to simulate
//! a dead client, a real etcd 3.4 to compare answers with, and waits on
//! conditions with deadlines.

use std::future::Future;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use etcd_client::{Client, ConnectOptions};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long one unary KV call may take before it is given up and retried
/// (generous: a loaded 2-core machine commits slowly during an election).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an operation keeps retrying through failures before the test
/// fails.
pub const RETRY_BUDGET: Duration = Duration::from_secs(45);

/// A client connected to one member at a time, moving on to the next
/// member after a failure (the test's stand-in for a client library's
/// failover). Clients carry no request timeout: blocking recipe calls
/// (Lock, Campaign) may wait as long as they need, and unary calls are
/// bounded by [`CALL_TIMEOUT`] in [`Failover::retry`].
pub struct Failover {
    endpoints: Vec<String>,
    at: usize,
    client: Option<Client>,
    /// Calls that failed and were retried.
    pub retries: u64,
}

impl Failover {
    /// A client of `endpoints`, starting with `endpoints[start]`.
    pub fn new(endpoints: Vec<String>, start: usize) -> Self {
        let at = start % endpoints.len();
        Failover {
            endpoints,
            at,
            client: None,
            retries: 0,
        }
    }

    /// The index of the member it talks to now.
    pub fn member(&self) -> usize {
        self.at
    }

    /// The client of the current member (connecting lazily).
    pub async fn client(&mut self) -> Result<Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(2));
        let client = Client::connect([self.endpoints[self.at].clone()], Some(options)).await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Drops the connection and moves on to the next member.
    pub fn next(&mut self) {
        self.client = None;
        self.at = (self.at + 1) % self.endpoints.len();
        self.retries += 1;
    }

    /// Runs `op` against the current member, bounded by `per_call` if
    /// given; on a failure worth retrying (see [`retryable`]) moves to the
    /// next member and runs it again, for at most [`RETRY_BUDGET`]. Only
    /// for operations whose retry is safe: the caller decides that.
    pub async fn retry<T, F, Fut>(
        &mut self,
        what: &str,
        per_call: Option<Duration>,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + RETRY_BUDGET;
        loop {
            let outcome = match self.client().await {
                Ok(client) => match per_call {
                    Some(limit) => match tokio::time::timeout(limit, op(client)).await {
                        Ok(outcome) => outcome.map_err(Failure::Call),
                        Err(_) => Err(Failure::TimedOut),
                    },
                    None => op(client).await.map_err(Failure::Call),
                },
                Err(e) => Err(Failure::Connect(e)),
            };
            let failure = match outcome {
                Ok(value) => return Ok(value),
                Err(Failure::Call(e)) if !retryable(&e) => {
                    return Err(anyhow!(e).context(format!("{what} failed")))
                }
                Err(failure) => failure,
            };
            if Instant::now() >= deadline {
                bail!("{what} kept failing for {RETRY_BUDGET:?}; last: {failure}");
            }
            tracing::debug!(what, member = self.at, %failure, "retrying on the next member");
            self.next();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Call(etcd_client::Error),
    Connect(anyhow::Error),
    TimedOut,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Call(e) => write!(f, "{e}"),
            Failure::Connect(e) => write!(f, "connecting: {e:#}"),
            Failure::TimedOut => write!(f, "no answer within the call timeout"),
        }
    }
}

/// Whether a failed call may have failed because of the fault rather than
/// the request (the member died or is electing, the connection broke): the
/// answers a client should retry on, possibly elsewhere. Errors that are
/// the request's fault (not found, invalid, failed precondition) are not.
pub fn retryable(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Unknown
                    | Code::Internal
                    | Code::Aborted
            ) && !status.message().starts_with("election:")
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// The gRPC code and message of a failed call, if it failed with a status.
pub fn status_of(error: &etcd_client::Error) -> Option<(tonic::Code, String)> {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            Some((status.code(), status.message().to_string()))
        }
        _ => None,
    }
}

/// What a keepalive task has seen.
#[derive(Debug, Default)]
struct KeepAliveState {
    lost: AtomicBool,
    stopping: AtomicBool,
    stop: Notify,
    acked: AtomicU64,
    times: Mutex<Times>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Times {
    /// When the last keepalive (or stream open, which sends one) went out.
    attempted: Option<Instant>,
    /// When the last answered keepalive went out.
    answered_sent: Option<Instant>,
    /// When the last answer came.
    answered: Option<Instant>,
}

/// A task keeping one lease alive, as a client library's session does: a
/// keepalive every `every`, reopening the stream on another member when it
/// breaks. Stopping it (or dropping it) is a client that died: its lease
/// runs out after its TTL.
pub struct KeepAlive {
    task: JoinHandle<()>,
    state: Arc<KeepAliveState>,
}

/// The last keepalives of a stopped [`KeepAlive`].
#[derive(Debug, Clone, Copy)]
pub struct LastKeepAlive {
    /// When the last *answered* keepalive was sent. It was applied after
    /// this, so the lease cannot expire earlier than its TTL after it.
    pub sent: Instant,
    /// When its answer came.
    pub answered: Instant,
    /// When the last keepalive of any outcome was sent (one that went
    /// unanswered may still have been applied): the lease's expiry bound
    /// counts from here.
    pub attempted: Instant,
}

impl KeepAlive {
    /// Keeps `lease` alive through `endpoints`, starting with
    /// `endpoints[start]`.
    pub fn spawn(endpoints: Vec<String>, start: usize, lease: i64, every: Duration) -> KeepAlive {
        let state = Arc::new(KeepAliveState::default());
        let task = tokio::spawn(keep_alive(
            Failover::new(endpoints, start),
            lease,
            every,
            state.clone(),
        ));
        KeepAlive { task, state }
    }

    /// Whether the server said the lease is gone.
    pub fn lost(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst)
    }

    /// How many keepalives have been answered.
    pub fn answered(&self) -> u64 {
        self.state.acked.load(Ordering::SeqCst)
    }

    /// Waits until `n` keepalives have been answered.
    pub async fn wait_answered(&self, n: u64, within: Duration) -> Result<()> {
        eventually(within, "keepalives answered", || async {
            self.answered() >= n
        })
        .await
    }

    /// Stops keeping the lease alive (the client dies) once the keepalive
    /// in flight, if any, has its answer, and before another is sent;
    /// returns when the last ones were sent.
    pub async fn stop(mut self) -> Result<LastKeepAlive> {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.state.stop.notify_one();
        tokio::time::timeout(CALL_TIMEOUT * 2, &mut self.task)
            .await
            .context("the keepalive task did not stop")??;
        let times = *lock(&self.state.times);
        match times {
            Times {
                attempted: Some(attempted),
                answered_sent: Some(sent),
                answered: Some(answered),
            } => Ok(LastKeepAlive {
                sent,
                answered,
                attempted,
            }),
            _ => bail!("no keepalive was ever answered"),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn keep_alive(mut link: Failover, lease: i64, every: Duration, state: Arc<KeepAliveState>) {
    let stopping = || state.stopping.load(Ordering::SeqCst);
    let answered = |sent: Instant| {
        state.acked.fetch_add(1, Ordering::SeqCst);
        let mut times = lock(&state.times);
        times.answered_sent = Some(sent);
        times.answered = Some(Instant::now());
    };
    while !stopping() {
        let opened = match link.client().await {
            Ok(mut client) => {
                // Opening the stream sends a keepalive and waits for its
                // answer.
                let sent = Instant::now();
                lock(&state.times).attempted = Some(sent);
                tokio::time::timeout(CALL_TIMEOUT, client.lease_keep_alive(lease))
                    .await
                    .map(|opened| opened.map(|stream| (stream, sent)))
            }
            Err(_) => {
                link.next();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ((mut keeper, mut answers), sent) = match opened {
            Ok(Ok(stream)) => stream,
            // What the client makes of an answer with TTL 0: the lease is
            // gone.
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(_))) => {
                state.lost.store(true, Ordering::SeqCst);
                return;
            }
            Ok(Err(_)) | Err(_) => {
                link.next();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        answered(sent);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = state.stop.notified() => return,
            }
            if stopping() {
                return;
            }
            let sent = Instant::now();
            lock(&state.times).attempted = Some(sent);
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(CALL_TIMEOUT, answers.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => answered(sent),
                Ok(Ok(Some(_))) => {
                    state.lost.store(true, Ordering::SeqCst);
                    return;
                }
                _ => break,
            }
        }
        link.next();
    }
}

/// Waits until `condition` holds, polling every 20 ms, at most `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real single-member etcd on free loopback ports, killed when dropped.
pub struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

/// Where the reference etcd is installed.
pub const ETCD_BINARY: &str = "/usr/bin/etcd";

impl Etcd {
    /// Starts `/usr/bin/etcd` and waits until it serves reads; `None` if it
    /// is not installed.
    pub async fn start() -> Result<Option<Etcd>> {
        if !Path::new(ETCD_BINARY).exists() {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let (client_port, peer_port) = {
            let a = TcpListener::bind("127.0.0.1:0")?;
            let b = TcpListener::bind("127.0.0.1:0")?;
            (a.local_addr()?.port(), b.local_addr()?.port())
        };
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        let child = Command::new(ETCD_BINARY)
            .args(["--name", "ref"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("ref={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning etcd")?;
        let etcd = Etcd {
            child,
            endpoint: client_url,
            _dir: dir,
        };
        let endpoint = etcd.endpoint.clone();
        eventually(Duration::from_secs(30), "etcd serves reads", || {
            let endpoint = endpoint.clone();
            async move {
                let Ok(mut client) = Client::connect([endpoint], None).await else {
                    return false;
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), client.get("ready", None)).await,
                    Ok(Ok(_))
                )
            }
        })
        .await?;
        Ok(Some(etcd))
    }

    /// Its client URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A spawned task that is aborted when dropped, so a failing test leaves
/// nothing running.
pub struct Task<T> {
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> Task<T> {
    /// Spawns `future` on the current runtime.
    pub fn spawn<F>(future: F) -> Task<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        Task {
            handle: tokio::spawn(future),
        }
    }

    /// Whether it has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Its output, waiting at most `within`.
    pub async fn join(mut self, within: Duration) -> Result<T> {
        match tokio::time::timeout(within, &mut self.handle).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(anyhow!("the task failed: {e}")),
            Err(_) => bail!("the task did not finish within {within:?}"),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
