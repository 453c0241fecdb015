//! `WatchStream`: one client stream and its watches, run as one task.
//!
//! The stream subscribes to the state machine's change feed *before* it
//! reads the published revision, so every change after that revision
//! reaches it through the feed (or, if the bounded feed overflows, is
//! known to be missing). `feed_rev` is the revision the stream has routed
//! the feed up to; a watch is live when its `next` revision is above
//! `feed_rev` and then takes its events from the feed, otherwise it reads
//! the history in chunks (round-robin between lagging watches) until it
//! passes `feed_rev`. A gap in the feed (overflow, snapshot install) turns
//! every watch back to catching up from its own `next`.
//!
//! Progress notifications and answers live in `progress`.
//!
//! Nothing here blocks the writers: the feed is a bounded broadcast that
//! drops a slow stream's backlog instead of waiting, and responses wait in
//! a bounded channel to the client; while it is full, the stream waits (and
//! its watches fall behind the feed and later catch up from history).

mod progress;

use crate::auth::Caller;
use crate::mvcc::Access;
use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::debug;
use witan_proto::etcdserverpb::WatchCreateRequest;

use super::budget::BudgetHold;
use super::ids::IdAllocator;
use super::response::{Request, Response, ResponseKind, NO_WATCH_ID};
use super::spec::{CreateError, WatchSpec};
use super::watcher::Watcher;
use super::{StreamError, WatchSettings};
use crate::mvcc::HistoryError;
use crate::storage::{compacted_during_read, AppliedChanges, StateReader};

/// Why the stream stops.
enum Halt {
    /// The client is gone (its response stream was dropped).
    ClientGone,
    /// The member is shutting down.
    Shutdown,
    /// Reading the history failed.
    History(HistoryError),
}

/// One client stream.
pub struct WatchStream {
    state: StateReader,
    settings: WatchSettings,
    out: mpsc::Sender<Response>,
    stopping: watch::Receiver<bool>,
    feed: broadcast::Receiver<Arc<AppliedChanges>>,
    /// Every feed message up to this revision has been routed.
    feed_rev: i64,
    watchers: BTreeMap<i64, Watcher>,
    ids: IdAllocator,
    /// A progress request waits for every watch to be live.
    progress_requested: bool,
    /// The last watch given a catch-up step (round robin).
    cursor: i64,
    /// This stream's share of its connection's watch budget, if counted.
    budget: Option<BudgetHold>,
    /// Who opened the stream: each create needs READ on its keys.
    caller: Caller,
}

impl WatchStream {
    /// A stream over `state`, answering into `out`, ending when `stopping`
    /// turns true.
    pub fn new(
        state: StateReader,
        settings: WatchSettings,
        out: mpsc::Sender<Response>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        // Subscribe first: every change after the revision read next is
        // then on the feed.
        let feed = state.changes();
        let feed_rev = state.current().kv.revision();
        WatchStream {
            state,
            settings,
            out,
            stopping,
            feed,
            feed_rev,
            watchers: BTreeMap::new(),
            ids: IdAllocator::default(),
            progress_requested: false,
            cursor: i64::MIN,
            budget: None,
            caller: Caller::member(),
        }
    }

    /// Checks each watch against `caller`'s permissions.
    pub fn with_caller(self, caller: Caller) -> Self {
        WatchStream { caller, ..self }
    }

    /// Counts this stream's watches against its connection's budget.
    pub fn with_budget(self, budget: BudgetHold) -> Self {
        WatchStream {
            budget: Some(budget),
            ..self
        }
    }

    /// Serves the client's `requests` until the client goes away (`Ok`),
    /// its requests fail, or the member stops. A client that only closes
    /// its side of the stream keeps receiving events, as with etcd.
    pub async fn run<R, E>(mut self, requests: R) -> Result<(), StreamError<E>>
    where
        R: Stream<Item = Result<Request, E>>,
    {
        let mut requests = std::pin::pin!(requests);
        let mut requests_open = true;
        let period = self.settings.progress_notify_interval;
        let mut ticker =
            tokio::time::interval_at(Instant::now() + period + progress::jitter(period), period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = self.stopping.clone();
        loop {
            let lagging = self.watchers.values().any(|w| !w.live);
            let step = tokio::select! {
                biased;
                () = self.out.closed() => Err(Halt::ClientGone),
                () = stop_signal(&mut stopping) => Err(Halt::Shutdown),
                request = requests.next(), if requests_open => match request {
                    Some(Ok(request)) => self.handle(request).await,
                    Some(Err(e)) => return Err(StreamError::Requests(e)),
                    None => {
                        requests_open = false;
                        Ok(())
                    }
                },
                message = self.feed.recv() => self.on_feed(message).await,
                _ = ticker.tick() => self.on_tick().await,
                () = std::future::ready(()), if lagging => self.catch_up_step().await,
            };
            let step = match step {
                Ok(()) => self.answer_progress_request().await,
                halt => halt,
            };
            match step {
                Ok(()) => {}
                Err(Halt::ClientGone) => return Ok(()),
                Err(Halt::Shutdown) => return Err(StreamError::Shutdown),
                Err(Halt::History(e)) => return Err(StreamError::History(e)),
            }
        }
    }

    async fn handle(&mut self, request: Request) -> Result<(), Halt> {
        match request {
            Request::Create(create) => self.create(create).await,
            Request::Cancel(id) => self.cancel(id).await,
            Request::Progress => {
                self.progress_requested = true;
                Ok(())
            }
        }
    }

    async fn create(&mut self, request: WatchCreateRequest) -> Result<(), Halt> {
        let state = self.state.current();
        let current = state.kv.revision();
        let max = self.settings.max_watches_per_stream;
        let created = WatchSpec::new(&request).and_then(|spec| {
            // Against the auth store as it is now: a stream outlives
            // permission changes, each watch is judged when created.
            self.caller
                .check(
                    state.kv.auth(),
                    &request.key,
                    &request.range_end,
                    Access::Read,
                )
                .map_err(|_| CreateError::PermissionDenied)?;
            if self.watchers.len() >= max {
                return Err(CreateError::TooManyWatches(max));
            }
            let id = self
                .ids
                .assign(request.watch_id, |id| self.watchers.contains_key(&id))?;
            // Last: a refusal above must not hold part of the budget.
            if let Some(budget) = self.budget.as_mut() {
                if !budget.take() {
                    return Err(CreateError::TooManyWatchesOnConnection(budget.max()));
                }
            }
            Ok((id, spec))
        });
        let (id, spec) = match created {
            Ok(created) => created,
            Err(e) => {
                debug!(error = %e, "watch create refused");
                return self
                    .send(Response {
                        watch_id: NO_WATCH_ID,
                        revision: current,
                        kind: ResponseKind::Refused(e),
                    })
                    .await;
            }
        };
        let start = match spec.start_revision {
            0 => current + 1,
            start => start,
        };
        let mut watcher = Watcher::new(id, spec, start);
        watcher.live = start > self.feed_rev;
        debug!(id, start, live = watcher.live, "watch created");
        self.watchers.insert(id, watcher);
        self.send(Response {
            watch_id: id,
            revision: current,
            kind: ResponseKind::Created,
        })
        .await
    }

    async fn cancel(&mut self, id: i64) -> Result<(), Halt> {
        if self.watchers.remove(&id).is_none() {
            return Ok(());
        }
        if let Some(budget) = self.budget.as_mut() {
            budget.give_back();
        }
        debug!(id, "watch canceled");
        let current = self.state.current().kv.revision();
        self.send(Response {
            watch_id: id,
            revision: current,
            kind: ResponseKind::Canceled,
        })
        .await
    }

    async fn on_feed(
        &mut self,
        message: Result<Arc<AppliedChanges>, RecvError>,
    ) -> Result<(), Halt> {
        let applied = match message {
            Ok(applied) => applied,
            Err(RecvError::Lagged(missed)) => {
                debug!(missed, "watch stream fell behind the change feed");
                self.fall_behind();
                return Ok(());
            }
            Err(RecvError::Closed) => return Err(Halt::Shutdown),
        };
        if applied.revision <= self.feed_rev {
            // Already in the state the stream started from.
            return Ok(());
        }
        if applied.prev_revision != self.feed_rev || applied.changes.is_empty() {
            // Missed messages or a snapshot jump: what lies between is only
            // in the history.
            debug!(
                from = self.feed_rev,
                to = applied.revision,
                "gap in the change feed"
            );
            self.fall_behind();
            self.feed_rev = applied.revision;
            return Ok(());
        }
        let mut responses = Vec::new();
        for group in applied
            .changes
            .chunk_by(|a, b| a.kv.mod_revision == b.kv.mod_revision)
        {
            // chunk_by never yields an empty group.
            let Some(revision) = group.first().map(|c| c.kv.mod_revision) else {
                continue;
            };
            for w in self.watchers.values_mut().filter(|w| w.live) {
                let events = w.live_events(group);
                if !events.is_empty() {
                    w.quiet = false;
                    responses.push(Response {
                        watch_id: w.id,
                        revision,
                        kind: ResponseKind::Events {
                            events,
                            fragment: w.spec.fragment,
                        },
                    });
                }
            }
        }
        for w in self.watchers.values_mut().filter(|w| w.live) {
            w.next = w.next.max(applied.revision + 1);
        }
        self.feed_rev = applied.revision;
        for response in responses {
            self.send(response).await?;
        }
        Ok(())
    }

    /// Every watch goes back to reading the history from its own `next`.
    fn fall_behind(&mut self) {
        for w in self.watchers.values_mut() {
            w.live = false;
        }
    }

    /// The next lagging watch after the cursor, wrapping around.
    fn next_lagging(&mut self) -> Option<i64> {
        let after = self
            .watchers
            .range(self.cursor.saturating_add(1)..)
            .find(|(_, w)| !w.live);
        let (&id, _) = after.or_else(|| self.watchers.iter().find(|(_, w)| !w.live))?;
        self.cursor = id;
        Some(id)
    }

    /// One chunk of history for one lagging watch.
    async fn catch_up_step(&mut self) -> Result<(), Halt> {
        let Some(id) = self.next_lagging() else {
            return Ok(());
        };
        let state = self.state.current();
        let (to, compact) = (state.kv.revision(), state.kv.compact_revision());
        let Some(w) = self.watchers.get_mut(&id) else {
            return Ok(());
        };
        if w.next > self.feed_rev {
            w.live = true;
            return Ok(());
        }
        if w.next < compact {
            debug!(id, next = w.next, compact, "watch start compacted away");
            self.watchers.remove(&id);
            if let Some(budget) = self.budget.as_mut() {
                budget.give_back();
            }
            return self
                .send(Response {
                    watch_id: id,
                    revision: 0,
                    kind: ResponseKind::Compacted {
                        compact_revision: compact,
                    },
                })
                .await;
        }
        let chunk = self.settings.catch_up_chunk;
        let caught = match w.catch_up(self.state.history(), to, compact, chunk).await {
            Ok(caught) => caught,
            Err(e) if compacted_during_read(&e) => {
                // A compaction overtook the read; the next step sees it in
                // the published state and answers "compacted" if it must.
                tokio::task::yield_now().await;
                return Ok(());
            }
            Err(e) => return Err(Halt::History(e)),
        };
        w.next = caught.through + 1;
        w.live = w.next > self.feed_rev;
        if caught.events.is_empty() {
            return Ok(());
        }
        w.quiet = false;
        let response = Response {
            watch_id: id,
            revision: to,
            kind: ResponseKind::Events {
                events: caught.events,
                fragment: w.spec.fragment,
            },
        };
        self.send(response).await
    }

    /// Sends one response, waiting while the client's buffer is full.
    async fn send(&mut self, response: Response) -> Result<(), Halt> {
        tokio::select! {
            sent = self.out.send(response) => sent.map_err(|_| Halt::ClientGone),
            () = stop_signal(&mut self.stopping) => Err(Halt::Shutdown),
        }
    }
}

/// Resolves once the member stops (the signal turns true or its sender is
/// gone).
async fn stop_signal(stopping: &mut watch::Receiver<bool>) {
    // The guard the wait returns must not live across an await.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}
