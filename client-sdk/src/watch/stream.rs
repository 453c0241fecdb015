//! [`WatchStream`]: the consumer's end of a watch, a `Stream` of typed
//! events.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use super::event::WatchEvent;
use super::task::{AbortOnDrop, Batches};
use crate::error::Error;

/// The events of a watch, in revision order, each exactly once, across
/// member failures. Ends with an error when the watch cannot go on (see
/// [`Error::Compacted`]); dropping it cancels the watch.
#[derive(Debug)]
pub struct WatchStream {
    batches: Batches,
    pending: VecDeque<WatchEvent>,
    _task: AbortOnDrop,
}

impl WatchStream {
    pub(crate) fn new(batches: Batches, task: AbortOnDrop) -> Self {
        WatchStream {
            batches,
            pending: VecDeque::new(),
            _task: task,
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            match self.batches.poll_recv(cx) {
                Poll::Ready(Some(Ok(batch))) => self
                    .pending
                    .extend(batch.events.into_iter().map(WatchEvent::from)),
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
