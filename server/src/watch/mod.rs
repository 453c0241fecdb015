//! Watches: etcd's watch semantics over the member's applied state, served
//! on every member (each applies every committed entry).
//!
//! Every watch delivers each event of its range exactly once, in revision
//! (then sub-revision) order, from any start revision that is not
//! compacted: live events come from the state machine's change feed
//! (`StateReader::changes`), older ones (a start in the past, a stream
//! that fell behind) from the stored history, and a watch moves between
//! the two by its next-revision mark (see `watcher`).
//!
//! Where things are:
//! - `hub`: [`WatchHub`], what the API holds: one [`WatchStream`] per
//!   client stream; `stream`: that stream's task (requests, feed routing,
//!   catch-up scheduling; `stream::progress`: progress notifications);
//! - `watcher`: one watch (range, filters, next revision, live or not);
//!   `catchup`: history reads in bounded chunks of whole revisions, and
//!   previous values; `spec`: create requests checked; `ids`: watch ids;
//! - `response`: the stream's requests and answers, independent of gRPC;
//!   `fragment`: etcd's splitting of large responses.
//!
//! This module knows nothing about tonic (the API layer adapts the gRPC
//! stream) nor SQL (history reads go through `storage::SqliteHistory`).

mod budget;
mod catchup;
pub mod fragment;
mod hub;
mod ids;
mod response;
mod spec;
mod stream;
mod watcher;

#[cfg(test)]
mod stream_tests;

pub use budget::{BudgetHold, WatchBudget};
pub use hub::{WatchHub, WatchSettings, DEFAULT_CATCH_UP_CHUNK, MIN_PROGRESS_NOTIFY_INTERVAL};
pub use response::{Request, Response, ResponseKind, NO_WATCH_ID};
pub use spec::{CreateError, EventFilter, WatchSpec};
pub use stream::WatchStream;

use crate::mvcc::HistoryError;

/// Why a watch stream ended other than by the client leaving.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// Reading the client's requests failed.
    #[error("reading watch requests failed: {0}")]
    Requests(E),
    /// The member is shutting down.
    #[error("the member is shutting down")]
    Shutdown,
    /// Reading the stored history failed (fatal for the member).
    #[error(transparent)]
    History(HistoryError),
}
