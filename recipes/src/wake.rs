//! Waiting for a change on a few keys: one watch per key, from the
//! revision after the read that decided to wait, so no change after that
//! read is missed. Never a watch on a whole prefix: each waiter hears only
//! about the keys it depends on.

use futures::stream::{self, select_all, BoxStream, StreamExt};
use witan_proto::mvccpb::event::EventType;

use crate::core::{CoreError, KvCore, WatchBatch};
use crate::error::RecipeError;

/// One watch's items, tagged with what wakes on it (`None`: the caller's
/// own key, woken by its delete); an item of `None` marks
/// its end.
type Tagged = BoxStream<'static, (Option<WakeOn>, Option<Result<WatchBatch, CoreError>>)>;

/// Which events on a watched key end the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeOn {
    /// A put (the key was created or changed).
    Put,
    /// A delete.
    Delete,
    /// Any event.
    Any,
}

impl WakeOn {
    fn matches(self, event: EventType) -> bool {
        match self {
            WakeOn::Put => event == EventType::Put,
            WakeOn::Delete => event == EventType::Delete,
            WakeOn::Any => true,
        }
    }
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something the caller depends on changed, at this revision (`None`:
    /// the watch could not say, after a compaction): read again.
    Changed(Option<i64>),
    /// The caller's own key was deleted (its lease expired, or someone
    /// deleted it).
    OwnKeyGone,
}

/// Waits, from `from_revision`, until an event of `watched` matches, or
/// `own` (the caller's key) is deleted.
pub(crate) async fn wait_for<C: KvCore>(
    core: &C,
    watched: &[(Vec<u8>, WakeOn)],
    own: Option<&[u8]>,
    from_revision: i64,
) -> Result<Wake, RecipeError> {
    // The caller's key wakes it on a delete only, as a separate outcome.
    let mut targets: Vec<(&[u8], Option<WakeOn>)> = Vec::with_capacity(watched.len() + 1);
    if let Some(own) = own {
        targets.push((own, None));
    }
    targets.extend(watched.iter().map(|(key, on)| (key.as_slice(), Some(*on))));

    let opened = futures::future::join_all(
        targets
            .iter()
            .map(|(key, _)| core.watch(key.to_vec(), Vec::new(), from_revision)),
    )
    .await;
    let mut streams: Vec<Tagged> = Vec::with_capacity(opened.len());
    for (watch, &(_, on)) in opened.into_iter().zip(&targets) {
        match watch {
            Ok(events) => streams.push(
                events
                    .map(move |item| (on, Some(item)))
                    // Marks the end of this watch: a watch that ends
                    // without an error is a broken core, not a wake.
                    .chain(stream::once(async move { (on, None) }))
                    .boxed(),
            ),
            // The history was compacted between the read and the watch:
            // whatever changed, the caller reads again.
            Err(CoreError::Compacted { .. }) => return Ok(Wake::Changed(None)),
            Err(error) => return Err(error.into()),
        }
    }

    let mut all = select_all(streams);
    while let Some((on, item)) = all.next().await {
        match item {
            Some(Ok(batch)) => {
                for event in &batch.events {
                    let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Put);
                    match on {
                        None if kind == EventType::Delete => return Ok(Wake::OwnKeyGone),
                        None => {}
                        Some(on) if on.matches(kind) => {
                            let revision = event.kv.as_ref().map(|kv| kv.mod_revision);
                            return Ok(Wake::Changed(revision));
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(Err(CoreError::Compacted { .. })) => return Ok(Wake::Changed(None)),
            Some(Err(error)) => return Err(error.into()),
            None => {
                return Err(RecipeError::UnexpectedResponse(
                    "a watch ended without an error",
                ))
            }
        }
    }
    Err(RecipeError::UnexpectedResponse("no watch to wait on"))
}
