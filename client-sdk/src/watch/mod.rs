//! Resumable watches: [`Client::watch`](crate::Client::watch) builds a
//! [`Watch`], which starts a task (`task`) holding a Watch stream on one
//! member and recreating it elsewhere when it breaks, from the resume
//! revision kept by `resume`; the consumer reads a [`WatchStream`] of
//! [`WatchEvent`]s.

mod builder;
mod event;
mod resume;
mod stream;
pub(crate) mod task;

pub use builder::Watch;
pub use event::WatchEvent;
pub use stream::WatchStream;
