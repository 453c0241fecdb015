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
use witan_client::{WatchEvent as SdkEvent, WatchStream};

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
        let mut log = WatchLog {
            process,
            member: self.member,
            start_revision: match self.start {
                WatchStart::Revision(revision) => revision,
                WatchStart::Behind(_) => 1,
            },
            events: Vec::new(),
        };
        let problem = match self.open(&mut log).await {
            Ok(mut stream) => self.follow(&mut stream, &mut log).await,
            Err(problem) => Some(problem),
        };
        if let Some(problem) = &problem {
            tracing::warn!(process, member = self.member, %problem, "watcher stopped early");
        }
        Ok(WatcherResult { log, problem })
    }

    /// Connects, settles the start revision and opens the stream, retrying
    /// every step while faults are under way (a crash leaves no member to
    /// connect to for a while); gives up only once the end marker is
    /// written.
    async fn open(&mut self, log: &mut WatchLog) -> Result<WatchStream, String> {
        let client = loop {
            match self.shared.connect(self.member).await {
                Ok(client) => break client,
                Err(err) => self.retry("connect", &err).await?,
            }
        };
        if let WatchStart::Behind(behind) = self.start {
            log.start_revision = loop {
                match client.get(PREFIX).prefix().count_only().await {
                    Ok(found) => break (found.header.revision - behind).max(1),
                    Err(err) => self.retry("read the revision", &err).await?,
                }
            };
        }
        loop {
            let watch = client
                .watch(PREFIX)
                .prefix()
                .start_revision(log.start_revision);
            match watch.await {
                Ok(stream) => return Ok(stream),
                Err(err) => self.retry("open the watch", &err).await?,
            }
        }
    }

    /// After a failed step: waits a little, or gives up if the end marker
    /// is already written.
    async fn retry(&self, step: &str, err: &(dyn std::fmt::Display + Sync)) -> Result<(), String> {
        if let Some(end) = *self.end.borrow() {
            return Err(format!(
                "could not {step} before the end marker (revision {end}) was written: {err}"
            ));
        }
        tracing::debug!(%err, step, "watcher: retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    /// Records events until the end marker; `Some(why)` if it stopped
    /// before it.
    async fn follow(&mut self, stream: &mut WatchStream, log: &mut WatchLog) -> Option<String> {
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
