//! Observing an election: the current leader's key-value, then every
//! change of leader or of its proclaimed value, in revision order.
//!
//! Like etcd's `Election.Observe` it follows the oldest key under the
//! election's prefix, watching that one key. When the leader's key is
//! deleted at revision R, the next leader is read *at R* (not now), and
//! its key watched from R + 1, so a leader that came and went or a value
//! proclaimed while the observer was switching is still seen. With no
//! leader it watches the prefix for the first key to appear. If the
//! history it needs was compacted it reads the present again and goes on
//! from there (what was compacted away cannot be shown).

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use witan_proto::mvccpb::event::EventType;
use witan_proto::mvccpb::KeyValue;

use crate::core::{CoreError, EventStream, KvCore};
use crate::election::first_created;
use crate::error::RecipeError;
use crate::keys::{self, Span};
use crate::ops;

/// Streams the leader's key-value of election `name` and every later
/// change of leadership or proclaimed value, each with the store revision
/// it was seen at. The stream ends after its first error (a core failure;
/// compaction is handled by reading again).
pub fn observe<C: KvCore>(
    core: C,
    name: Vec<u8>,
) -> impl Stream<Item = Result<(KeyValue, i64), RecipeError>> + Send + 'static {
    let observer = Observer::new(core, name);
    futures::stream::unfold(observer, |mut observer| async move {
        let item = observer.next().await?;
        Some((item, observer))
    })
}

/// Where an observer is.
enum Phase {
    /// Read the leader at this revision (0: now).
    Read(i64),
    /// Following the leader's key.
    Follow(EventStream),
    /// No leader: waiting for a key to appear under the prefix.
    Await(EventStream),
}

/// The observer's state between items.
struct Observer<C> {
    core: C,
    name: Vec<u8>,
    phase: Phase,
    /// The key, create and mod revision of the last key-value yielded, so
    /// a re-read after a compaction does not repeat it.
    last: Option<(Vec<u8>, i64, i64)>,
    pending: VecDeque<(KeyValue, i64)>,
    /// An error to yield before ending (or already yielded: `done`).
    failed: Option<RecipeError>,
    done: bool,
}

impl<C: KvCore> Observer<C> {
    fn new(core: C, name: Vec<u8>) -> Self {
        let failed = keys::check_name(&name).err();
        Observer {
            core,
            name,
            phase: Phase::Read(0),
            last: None,
            pending: VecDeque::new(),
            failed,
            done: false,
        }
    }

    async fn next(&mut self) -> Option<Result<(KeyValue, i64), RecipeError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Some(error) = self.failed.take() {
                self.done = true;
                return Some(Err(error));
            }
            if let Err(error) = self.step().await {
                self.failed = Some(error);
            }
        }
    }

    /// Queues what the next stretch of history shows.
    async fn step(&mut self) -> Result<(), RecipeError> {
        match std::mem::replace(&mut self.phase, Phase::Read(0)) {
            Phase::Read(at) => self.read(at).await,
            Phase::Follow(mut watch) => {
                match watch.next().await {
                    Some(Ok(batch)) => {
                        for event in batch.events {
                            let Some(kv) = event.kv else { continue };
                            if event.r#type == EventType::Delete as i32 {
                                // Who leads right after the delete.
                                self.phase = Phase::Read(kv.mod_revision);
                                return Ok(());
                            }
                            self.offer(kv, batch.revision);
                        }
                        self.phase = Phase::Follow(watch);
                    }
                    Some(Err(CoreError::Compacted { .. })) => self.phase = Phase::Read(0),
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(ended()),
                }
                Ok(())
            }
            Phase::Await(mut watch) => {
                match watch.next().await {
                    Some(Ok(batch)) => {
                        let put = batch.events.iter().find_map(|event| {
                            (event.r#type == EventType::Put as i32)
                                .then(|| event.kv.as_ref().map(|kv| kv.mod_revision))
                                .flatten()
                        });
                        // The oldest key at the first put is the leader
                        // (several keys may appear in one revision).
                        self.phase = match put {
                            Some(revision) => Phase::Read(revision),
                            None => Phase::Await(watch),
                        };
                    }
                    Some(Err(CoreError::Compacted { .. })) => self.phase = Phase::Read(0),
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(ended()),
                }
                Ok(())
            }
        }
    }

    /// Reads the leader at `at` (0: now; a compacted `at`: now) and starts
    /// following it, or waiting for one.
    async fn read(&mut self, at: i64) -> Result<(), RecipeError> {
        let (resp, at) = match self.core.range(first_created(&self.name, at)).await {
            Ok(resp) => (resp, at),
            Err(CoreError::Compacted { .. }) if at > 0 => {
                (self.core.range(first_created(&self.name, 0)).await?, 0)
            }
            Err(error) => return Err(error.into()),
        };
        let revision = ops::revision(&resp.header)?;
        let from = if at > 0 { at } else { revision };
        let (key, range_end) = match resp.kvs.into_iter().next() {
            Some(kv) => {
                let key = kv.key.clone();
                self.offer(kv, revision);
                (key, Vec::new())
            }
            None => {
                let span = Span::prefix(keys::prefix(&self.name));
                (span.start, span.end)
            }
        };
        let following = range_end.is_empty();
        self.phase = match self.core.watch(key, range_end, from + 1).await {
            Ok(watch) if following => Phase::Follow(watch),
            Ok(watch) => Phase::Await(watch),
            Err(CoreError::Compacted { .. }) => Phase::Read(0),
            Err(error) => return Err(error.into()),
        };
        Ok(())
    }

    /// Queues `kv` unless it was the last one yielded.
    fn offer(&mut self, kv: KeyValue, revision: i64) {
        let seen = (kv.key.clone(), kv.create_revision, kv.mod_revision);
        if self.last.as_ref() == Some(&seen) {
            return;
        }
        self.last = Some(seen);
        self.pending.push_back((kv, revision));
    }
}

fn ended() -> RecipeError {
    RecipeError::UnexpectedResponse("a watch ended without an error")
}
