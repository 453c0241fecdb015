//! Progress for the clients of a stream: notifications to idle watches
//! that asked for them (`progress_notify`), and answers to progress
//! requests.

use std::hash::BuildHasher;
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{Halt, WatchStream};
use crate::watch::response::{Response, ResponseKind, NO_WATCH_ID};

/// Most feed messages handled in one go before an answer that wants the
/// freshest revision; the rest wait for the main loop.
const DRAIN_LIMIT: usize = 1024;

impl WatchStream {
    /// A progress tick: a progress notification to every live watch that
    /// asked for them and received nothing since the last tick.
    pub(super) async fn on_tick(&mut self) -> Result<(), Halt> {
        if !self.watchers.values().any(|w| w.spec.progress_notify) {
            return Ok(());
        }
        self.drain_feed().await?;
        let mut due = Vec::new();
        for w in self.watchers.values_mut() {
            if w.spec.progress_notify {
                if w.quiet && w.live {
                    due.push(w.id);
                }
                w.quiet = true;
            }
        }
        for id in due {
            self.send(Response {
                watch_id: id,
                revision: self.feed_rev,
                kind: ResponseKind::Progress,
            })
            .await?;
        }
        Ok(())
    }

    /// Answers a pending progress request once every watch is live (etcd
    /// 3.5: a progress answer promises that every watch of the stream has
    /// received everything up to its revision). etcd drops a request made
    /// while a watch lags; witan answers it later instead.
    pub(super) async fn answer_progress_request(&mut self) -> Result<(), Halt> {
        if !self.progress_requested || !self.all_live() {
            return Ok(());
        }
        self.drain_feed().await?;
        if !self.all_live() {
            return Ok(());
        }
        self.progress_requested = false;
        self.send(Response {
            watch_id: NO_WATCH_ID,
            revision: self.feed_rev,
            kind: ResponseKind::Progress,
        })
        .await
    }

    fn all_live(&self) -> bool {
        self.watchers.values().all(|w| w.live)
    }

    /// Routes what the feed already holds, so that a progress answer
    /// carries the freshest revision.
    async fn drain_feed(&mut self) -> Result<(), Halt> {
        for _ in 0..DRAIN_LIMIT {
            let message = match self.feed.try_recv() {
                Ok(applied) => Ok(applied),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            self.on_feed(message).await?;
        }
        Ok(())
    }
}

/// Up to a tenth of `period`, different per stream, so that streams opened
/// together do not all notify at the same moment (as etcd).
pub(super) fn jitter(period: Duration) -> Duration {
    let tenth = u64::try_from((period / 10).as_nanos()).unwrap_or(u64::MAX);
    if tenth == 0 {
        return Duration::ZERO;
    }
    // std's RandomState is seeded randomly: enough randomness for jitter.
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    Duration::from_nanos(random % tenth)
}
