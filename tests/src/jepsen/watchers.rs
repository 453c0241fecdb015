//! Watchers: each watches the run's whole key prefix through the SDK's
//! resumable watch, from a known start revision, on a client that prefers
//! one member and resumes on the others when it fails, and records every
//! event in delivery order. A watcher runs until it has seen the end
//! marker written after the run, or gives up at a deadline (a stalled
//! watch is a finding).

use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use witan_client::{Client, WatchEvent as SdkEvent};

use super::history::{EventKind, WatchEvent, WatchLog};
use super::workload::{Shared, PREFIX};

/// Where a watcher starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// From this revision (1: the whole history).
    Revision(i64),
    /// This many revisions before the store's revision when the watcher
    /// starts (a catch-up from history, then live events).
    Behind(i64),
}

/// What a watcher recorded, and what went wrong if something did.
#[derive(Debug)]
pub struct WatcherResult {
    /// The events it saw.
    pub log: WatchLog,
    /// Why it stopped before the end marker, if it did.
    pub problem: Option<String>,
}

/// One watcher.
pub struct Watcher {
    shared: Shared,
    /// The member it opens its stream on.
    member: usize,
    start: WatchStart,
    /// Waited before starting (watchers start at different times).
    delay: Duration,
    /// The end marker's revision, once written.
    end: watch::Receiver<Option<i64>>,
    /// How long after the end marker is written the watcher may take to
    /// reach it.
    catch_up: Duration,
}

impl Watcher {
    /// A watcher opening its stream on `member`.
    pub fn new(
        shared: Shared,
        member: usize,
        start: WatchStart,
        delay: Duration,
        end: watch::Receiver<Option<i64>>,
        catch_up: Duration,
    ) -> Watcher {
        Watcher {
            shared,
            member,
            start,
            delay,
            end,
            catch_up,
        }
    }

    /// Watches until the end marker (or the catch-up deadline after it).
    pub async fn run(mut self) -> Result<WatcherResult> {
        self.shared.pace(self.delay).await;
        let process = self.shared.new_process();
        let client = self.shared.connect(self.member).await?;
        let start_revision = self.start_revision(&client).await?;
        let mut log = WatchLog {
            process,
            member: self.member,
            start_revision,
            events: Vec::new(),
        };
        let problem = self.follow(&client, &mut log).await;
        if let Some(problem) = &problem {
            tracing::warn!(process, member = self.member, %problem, "watcher stopped early");
        }
        Ok(WatcherResult { log, problem })
    }

    /// The start revision, reading the store's revision if it depends on
    /// it (retried until it succeeds: faults may be under way).
    async fn start_revision(&mut self, client: &Client) -> Result<i64> {
        let behind = match self.start {
            WatchStart::Revision(revision) => return Ok(revision),
            WatchStart::Behind(behind) => behind,
        };
        loop {
            match client.get(PREFIX).prefix().count_only().await {
                Ok(found) => return Ok((found.header.revision - behind).max(1)),
                Err(err) => {
                    tracing::debug!(%err, "watcher: reading the revision failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Records events until the end marker; `Some(why)` if it stopped
    /// before it.
    async fn follow(&mut self, client: &Client, log: &mut WatchLog) -> Option<String> {
        let mut stream = loop {
            let watch = client
                .watch(PREFIX)
                .prefix()
                .start_revision(log.start_revision);
            match watch.await {
                Ok(stream) => break stream,
                Err(err) => {
                    if let Some(end) = *self.end.borrow() {
                        return Some(format!(
                            "could not open the watch before the end marker (revision {end}): {err}"
                        ));
                    }
                    tracing::debug!(%err, "watcher: opening the watch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let mut give_up: Option<Instant> = None;
        let mut runner_gone = false;
        loop {
            let last = log.events.last().map_or(0, |e| e.revision);
            if let Some(end) = *self.end.borrow_and_update() {
                if last >= end {
                    return None;
                }
                give_up.get_or_insert(Instant::now() + self.catch_up);
            }
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok(event)) => log.events.push(record(&event)),
                    Some(Err(err)) => return Some(format!("the watch failed after revision {last}: {err}")),
                    None => return Some(format!("the watch ended after revision {last}")),
                },
                changed = self.end.changed(), if !runner_gone => {
                    if changed.is_err() {
                        if self.end.borrow().is_none() {
                            return Some("the run ended without an end marker".to_string());
                        }
                        runner_gone = true;
                    }
                }
                () = tokio::time::sleep_until(give_up.unwrap_or(far)) => {
                    let end = self.end.borrow().unwrap_or_default();
                    return Some(format!(
                        "stalled: last event at revision {last}, {:?} after the end marker (revision {end}) was written",
                        self.catch_up
                    ));
                }
            }
        }
    }
}

/// An SDK event as the history records it.
pub fn record(event: &SdkEvent) -> WatchEvent {
    WatchEvent {
        revision: event.revision(),
        key: String::from_utf8_lossy(&event.kv().key).into_owned(),
        kind: if event.is_put() {
            EventKind::Put
        } else {
            EventKind::Delete
        },
    }
}
