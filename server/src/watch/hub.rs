//! `WatchHub`: the member's watch service below the API: opens a
//! [`WatchStream`] per client stream over the member's applied state and
//! counts the open ones.

use crate::auth::Caller;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::budget::{BudgetHold, WatchBudget};
use super::response::{Request, Response};
use super::stream::WatchStream;
use super::StreamError;
use crate::storage::StateReader;

/// etcd's floor for the progress notification interval.
pub const MIN_PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_millis(100);

/// Changes read from the history per catch-up step (whole revisions: a
/// larger revision is read whole).
pub const DEFAULT_CATCH_UP_CHUNK: usize = 512;

/// The default of `--max-watches-per-stream`.
pub const DEFAULT_MAX_WATCHES_PER_STREAM: usize = 10_000;

/// How watches behave.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// Idle time after which a watch created with `progress_notify` gets a
    /// progress notification (`--watch-progress-notify-interval`).
    pub progress_notify_interval: Duration,
    /// Changes read from the history per catch-up step.
    pub catch_up_chunk: usize,
    /// Most watches one stream may hold (`--max-watches-per-stream`).
    pub max_watches_per_stream: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            progress_notify_interval: Duration::from_secs(600),
            catch_up_chunk: DEFAULT_CATCH_UP_CHUNK,
            max_watches_per_stream: DEFAULT_MAX_WATCHES_PER_STREAM,
        }
    }
}

/// Serves watch streams on one member (clone it per listener).
#[derive(Debug, Clone)]
pub struct WatchHub {
    state: StateReader,
    settings: WatchSettings,
    stopping: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
}

impl WatchHub {
    /// Watches over `state`; every stream ends when `stopping` turns true
    /// (or its sender is dropped), so that a shutdown does not wait for
    /// clients to leave.
    pub fn new(
        state: StateReader,
        mut settings: WatchSettings,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        if settings.progress_notify_interval < MIN_PROGRESS_NOTIFY_INTERVAL {
            warn!(
                requested = ?settings.progress_notify_interval,
                used = ?MIN_PROGRESS_NOTIFY_INTERVAL,
                "watch progress notify interval raised to the minimum"
            );
            settings.progress_notify_interval = MIN_PROGRESS_NOTIFY_INTERVAL;
        }
        settings.catch_up_chunk = settings.catch_up_chunk.max(1);
        WatchHub {
            state,
            settings,
            stopping,
            open: Arc::default(),
        }
    }

    /// Serves one client stream: its `requests` in, its responses into
    /// `out` (a bounded channel: its capacity is the stream's buffer).
    /// Returns `Ok` when the client is gone (`out`'s receiver dropped).
    pub async fn serve<R, E>(
        &self,
        requests: R,
        out: mpsc::Sender<Response>,
    ) -> Result<(), StreamError<E>>
    where
        R: Stream<Item = Result<Request, E>>,
    {
        self.serve_on_connection(requests, out, None, Caller::member())
            .await
    }

    /// [`WatchHub::serve`] for a stream of a client connection whose
    /// watches (over all its streams) count against `budget`, opened by
    /// `caller` (each watch needs READ on its keys).
    pub async fn serve_on_connection<R, E>(
        &self,
        requests: R,
        out: mpsc::Sender<Response>,
        budget: Option<Arc<WatchBudget>>,
        caller: Caller,
    ) -> Result<(), StreamError<E>>
    where
        R: Stream<Item = Result<Request, E>>,
    {
        let _open = OpenStream::new(&self.open);
        let mut stream = WatchStream::new(
            self.state.clone(),
            self.settings,
            out,
            self.stopping.clone(),
        )
        .with_caller(caller);
        if let Some(budget) = budget {
            stream = stream.with_budget(BudgetHold::new(budget));
        }
        stream.run(requests).await
    }

    /// How many client streams are being served.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Counts a stream as open while it lives.
struct OpenStream<'a>(&'a AtomicUsize);

impl<'a> OpenStream<'a> {
    fn new(open: &'a AtomicUsize) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        OpenStream(open)
    }
}

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
