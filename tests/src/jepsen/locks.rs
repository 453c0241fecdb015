//! Lock clients: each takes the run's one lock under a session with a short
//! TTL, makes a few fenced writes to the resource key under it, and lets
//! go; now and then it plays a paused process (its keepalives stop and it
//! sleeps past its TTL before writing). Every hold and every fenced write
//! is recorded.
//!
//! A hold ends, as the client saw it, at the earliest of: the release being
//! sent, the session reporting itself lost, and the lease's local deadline.
//! That deadline is tracked here by keepalives of our own (the session does
//! not expose its own): it is the send time of the last keepalive the
//! cluster answered plus the TTL it answered with, which the cluster's
//! expiry can only come after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::Rng;
use tokio::task::JoinHandle;
use witan_client::{Client, Error, Fenced, LockGuard, Mode, Op, Session};

use super::clock::{nanos, RunClock};
use super::history::{FencedWrite, LockHold, Nanos, Outcome};
use super::workload::{write_outcome, Shared, LOCK_NAME, RESOURCE_KEY};

/// What one lock client recorded.
#[derive(Debug, Default)]
pub struct LockRecords {
    /// Every hold.
    pub holds: Vec<LockHold>,
    /// Every fenced write.
    pub writes: Vec<FencedWrite>,
    /// Sessions that could not be made, acquisitions that failed or timed
    /// out.
    pub failed_acquires: usize,
    /// Holds where the client played a paused process.
    pub paused_holds: usize,
    /// Grants seen only after the lease's deadline (not holds at all).
    pub void_holds: usize,
}

/// One lock client.
pub struct LockClient {
    shared: Shared,
    preferred: usize,
    /// Through the Lock service or client-side recipes.
    mode: Mode,
    /// The session TTL, in seconds.
    ttl: i64,
    /// How often a hold plays a paused process.
    pause_chance: f64,
    rng: StdRng,
}

impl LockClient {
    /// A lock client preferring member `preferred`.
    pub fn new(
        shared: Shared,
        preferred: usize,
        mode: Mode,
        ttl: i64,
        pause_chance: f64,
        rng: StdRng,
    ) -> LockClient {
        LockClient {
            shared,
            preferred,
            mode,
            ttl,
            pause_chance,
            rng,
        }
    }

    /// Takes and lets go of the lock until the workload stops.
    pub async fn run(mut self) -> Result<LockRecords> {
        let client = self.shared.connect(self.preferred).await?;
        let mut records = LockRecords::default();
        while !self.shared.stopped() {
            self.hold_once(&client, &mut records).await;
            let pause = self
                .rng
                .gen_range(Duration::ZERO..=Duration::from_millis(50));
            self.shared.pace(pause).await;
        }
        Ok(records)
    }

    async fn hold_once(&mut self, client: &Client, records: &mut LockRecords) {
        let clock = self.shared.clock;
        let limit = self.shared.op_timeout + Duration::from_secs(1);
        let asked = Instant::now();
        let session = match tokio::time::timeout(limit, Session::new(client, self.ttl)).await {
            Ok(Ok(session)) => session,
            _ => {
                records.failed_acquires += 1;
                self.shared.pace(Duration::from_millis(100)).await;
                return;
            }
        };
        let mut deadline = LeaseDeadline::start(
            client.clone(),
            session.lease_id(),
            session.ttl(),
            clock,
            clock.at(asked),
        );
        let lock = client.lock(LOCK_NAME).mode(self.mode);
        let wait = Duration::from_secs(u64::try_from(self.ttl).unwrap_or(1) * 2 + 1);
        let guard = tokio::select! {
            acquired = tokio::time::timeout(wait, lock.acquire(&session)) => {
                acquired.ok().and_then(Result::ok)
            }
            () = self.shared.until_stopped() => None,
        };
        let Some(guard) = guard else {
            if !self.shared.stopped() {
                records.failed_acquires += 1;
            }
            // Dropping the session revokes its lease in the background (its
            // TTL ends it anyway), and with it any waiting key.
            deadline.stop();
            drop(session);
            return;
        };
        let acquired = clock.now();
        let process = self.shared.new_process();
        let token = guard.token().0;
        let lease = session.lease_id();
        let lost = LostWatch::start(&guard, clock);

        let paused = self.rng.gen_bool(self.pause_chance);
        let mut session = Some(session);
        if paused {
            records.paused_holds += 1;
            // A paused process runs nothing, keepalives included; what it
            // believed about its lease ends with the lease's deadline.
            lost.stop();
            deadline.stop();
            if let Some(session) = session.take() {
                session.abandon();
            }
            let ttl = Duration::from_secs(u64::try_from(self.ttl).unwrap_or(1));
            tokio::time::sleep(ttl + Duration::from_millis(500)).await;
        }

        let writes = self.rng.gen_range(1..=3);
        for _ in 0..writes {
            if !paused && guard.is_lost() {
                break;
            }
            let outcome = self.fenced_write(&guard, process, token, records).await;
            if outcome != Outcome::Ok {
                break;
            }
        }

        let release_sent = clock.now();
        let released = release_sent.min(deadline.deadline()).min(lost.at());
        if released > acquired {
            records.holds.push(LockHold {
                process,
                lease,
                token,
                acquired,
                released,
            });
        } else {
            // The lease's deadline passed before the grant arrived: the
            // client never believed it held the lock (and a later holder
            // may have been granted it before this grant was seen).
            records.void_holds += 1;
        }
        deadline.stop();
        lost.stop();
        // Whatever the release does, the hold is over for the checks; a
        // release that failed ends with the lease.
        let _ = tokio::time::timeout(limit, guard.release()).await;
        if let Some(session) = session {
            let _ = tokio::time::timeout(limit, session.close()).await;
        }
    }

    async fn fenced_write(
        &self,
        guard: &LockGuard,
        process: usize,
        token: i64,
        records: &mut LockRecords,
    ) -> Outcome {
        let clock = self.shared.clock;
        let seq = self.shared.unique();
        let invoke = clock.now();
        let txn = guard
            .fenced()
            .then([Op::put(RESOURCE_KEY, format!("{token}:{seq}"))])
            .commit();
        let limit = self.shared.op_timeout + Duration::from_secs(1);
        let outcome = match tokio::time::timeout(limit, txn).await {
            Ok(Ok(Fenced::Applied(_))) => Outcome::Ok,
            // The fence (or, never here, another guard) refused it.
            Ok(Ok(Fenced::Lost { .. } | Fenced::Failed(_))) => Outcome::Fail,
            Ok(Err(err)) => write_outcome(&err),
            Err(_) => Outcome::Unknown,
        };
        records.writes.push(FencedWrite {
            process,
            token,
            seq,
            invoke,
            complete: clock.now(),
            outcome,
        });
        outcome
    }
}

/// Keepalives of our own on a session's lease, tracking the latest local
/// deadline they prove: the cluster cannot expire the lease before it.
struct LeaseDeadline {
    deadline: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LeaseDeadline {
    /// Starts from a lease granted with `ttl` seconds by a request sent at
    /// `asked` (run clock).
    fn start(client: Client, lease: i64, ttl: i64, clock: RunClock, asked: Nanos) -> LeaseDeadline {
        let period = Duration::from_secs(u64::try_from(ttl).unwrap_or(1).max(1));
        let deadline = Arc::new(AtomicU64::new(asked.saturating_add(nanos(period))));
        let shared = deadline.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period / 3).await;
                let sent = clock.now();
                match tokio::time::timeout(period, client.lease_keep_alive_once(lease)).await {
                    Ok(Ok(granted)) => {
                        let granted = Duration::from_secs(u64::try_from(granted).unwrap_or(0));
                        shared.fetch_max(sent.saturating_add(nanos(granted)), Ordering::SeqCst);
                    }
                    Ok(Err(Error::LeaseNotFound)) => return,
                    Ok(Err(_)) | Err(_) => {}
                }
            }
        });
        LeaseDeadline { deadline, task }
    }

    /// The local deadline proven so far (run clock).
    fn deadline(&self) -> Nanos {
        self.deadline.load(Ordering::SeqCst)
    }

    /// Stops the keepalives; the deadline stays as proven.
    fn stop(&mut self) {
        self.task.abort();
    }
}

impl Drop for LeaseDeadline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a guard's session reported itself lost (run clock), if it did.
struct LostWatch {
    at: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LostWatch {
    fn start(guard: &LockGuard, clock: RunClock) -> LostWatch {
        let at = Arc::new(AtomicU64::new(Nanos::MAX));
        let shared = at.clone();
        let lost = guard.lost();
        let task = tokio::spawn(async move {
            lost.await;
            shared.store(clock.now(), Ordering::SeqCst);
        });
        LostWatch { at, task }
    }

    /// When the loss was seen; `Nanos::MAX` if it was not.
    fn at(&self) -> Nanos {
        self.at.load(Ordering::SeqCst)
    }

    /// Stops watching (a loss seen later is not counted).
    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for LostWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
