//! The end-of-run reads, on a healed, healthy cluster: an end marker
//! written after the workload stopped, then every event of the run's
//! prefix from revision 1 up to that marker, read on every member (they
//! must agree), from which every version of every register key and of the
//! resource key, and the reference events for the watch checks, are taken.
//! A run never compacts, so the whole history is there.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use tokio::time::Instant;
use witan_client::WatchEvent as SdkEvent;

use super::history::{EventKind, ResourceVersion, WatchEvent};
use super::registers::parse_value;
use super::watchers::record;
use super::workload::{connect_rotated, Shared, END_KEY, PREFIX, REGISTER_PREFIX, RESOURCE_KEY};
use std::future::IntoFuture;

/// One event with its value, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    event: WatchEvent,
    value: Vec<u8>,
}

/// What the end-of-run reads found.
#[derive(Debug, Default)]
pub struct FinalState {
    /// Every version of each register key: (mod revision, value).
    pub register_versions: BTreeMap<String, Vec<(i64, u64)>>,
    /// Every version of the resource key.
    pub resource_versions: Vec<ResourceVersion>,
    /// Every event of the prefix from revision 1 to the end marker.
    pub events: Vec<WatchEvent>,
    /// Disagreements found (members' histories, final values).
    pub problems: Vec<String>,
}

/// Writes the end marker and returns its revision (retried until it is
/// acknowledged or `within` passes).
pub async fn write_end_marker(shared: &Shared, within: Duration) -> Result<i64> {
    let client = shared.connect(0).await?;
    let deadline = Instant::now() + within;
    loop {
        match client.put(END_KEY, "end").await {
            Ok(put) => return Ok(put.header.revision),
            Err(err) if Instant::now() >= deadline => {
                return Err(err).context("writing the end marker")
            }
            Err(err) => {
                tracing::debug!(%err, "end marker not written; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads the history up to the end marker at revision `end` on every
/// member (each at most `within`) and derives the final state.
pub async fn read_back(endpoints: &[String], end: i64, within: Duration) -> Result<FinalState> {
    let mut histories = Vec::new();
    for (member, endpoint) in endpoints.iter().enumerate() {
        let history = history_of(endpoint, end, within)
            .await
            .with_context(|| format!("reading the history on member {member}"))?;
        histories.push(history);
    }
    let Some(reference) = histories.first() else {
        bail!("no members");
    };
    let mut state = FinalState::default();
    for (member, history) in histories.iter().enumerate().skip(1) {
        if let Some(problem) = disagreement(reference, history) {
            state.problems.push(format!(
                "member {member}'s history differs from member 0's: {problem}"
            ));
        }
    }
    for change in reference {
        let event = &change.event;
        if event.kind == EventKind::Put && event.key.starts_with(REGISTER_PREFIX) {
            let value = parse_value(&event.key, &change.value);
            state
                .register_versions
                .entry(event.key.clone())
                .or_default()
                .push((event.revision, value));
        } else if event.kind == EventKind::Put && event.key == RESOURCE_KEY {
            match parse_resource(&change.value) {
                Some((token, seq)) => state.resource_versions.push(ResourceVersion {
                    revision: event.revision,
                    token,
                    seq,
                }),
                None => state.problems.push(format!(
                    "the resource key holds {:?} at revision {}, which no fenced write wrote",
                    String::from_utf8_lossy(&change.value),
                    event.revision
                )),
            }
        } else if event.kind == EventKind::Delete
            && (event.key.starts_with(REGISTER_PREFIX) || event.key == RESOURCE_KEY)
        {
            state.problems.push(format!(
                "{} was deleted at revision {}, which no client did",
                event.key, event.revision
            ));
        }
    }
    state.events = reference.iter().map(|c| c.event.clone()).collect();
    state
        .problems
        .extend(check_latest(endpoints, &state.register_versions).await?);
    Ok(state)
}

/// The events of the prefix from revision 1 through `end`, read by a watch
/// on this member only.
async fn history_of(endpoint: &str, end: i64, within: Duration) -> Result<Vec<Change>> {
    let client = connect_rotated(&[endpoint.to_string()], 0, within).await?;
    let deadline = Instant::now() + within;
    let mut stream = tokio::time::timeout_at(
        deadline,
        client
            .watch(PREFIX)
            .prefix()
            .start_revision(1)
            .into_future(),
    )
    .await
    .context("opening the watch timed out")??;
    let mut changes = Vec::new();
    while changes
        .last()
        .is_none_or(|c: &Change| c.event.revision < end)
    {
        let Some(event) = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| format!("reading up to revision {end} timed out"))?
        else {
            bail!("the watch ended before revision {end}");
        };
        let event = event?;
        changes.push(Change {
            event: record(&event),
            value: value_of(&event),
        });
    }
    Ok(changes)
}

fn value_of(event: &SdkEvent) -> Vec<u8> {
    match event {
        SdkEvent::Put { kv, .. } => kv.value.clone(),
        _ => Vec::new(),
    }
}

/// Where two members' histories first differ, if they do.
fn disagreement(a: &[Change], b: &[Change]) -> Option<String> {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    match at {
        Some(i) => Some(format!(
            "event {i}: {:?} = {:?} vs {:?} = {:?}",
            a[i].event,
            String::from_utf8_lossy(&a[i].value),
            b[i].event,
            String::from_utf8_lossy(&b[i].value)
        )),
        None if a.len() != b.len() => Some(format!("{} events vs {}", a.len(), b.len())),
        None => None,
    }
}

/// A resource value, `token:seq`.
fn parse_resource(raw: &[u8]) -> Option<(i64, u64)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (token, seq) = text.split_once(':')?;
    Some((token.parse().ok()?, seq.parse().ok()?))
}

/// Cross-checks the last version of each register key against a
/// linearizable read (the history came from watches; this did not).
async fn check_latest(
    endpoints: &[String],
    versions: &BTreeMap<String, Vec<(i64, u64)>>,
) -> Result<Vec<String>> {
    let client = connect_rotated(endpoints, 0, Duration::from_secs(5)).await?;
    let found = client.get(REGISTER_PREFIX).prefix().await?;
    let mut problems = Vec::new();
    let mut current = BTreeMap::new();
    for kv in &found.kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        current.insert(key.clone(), (kv.mod_revision, parse_value(&key, &kv.value)));
    }
    let last: BTreeMap<String, (i64, u64)> = versions
        .iter()
        .filter_map(|(key, v)| Some((key.clone(), *v.last()?)))
        .collect();
    if current != last {
        problems.push(format!(
            "the registers' latest values {current:?} differ from the history's {last:?}"
        ));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: i64, key: &str, value: &str) -> Change {
        Change {
            event: WatchEvent {
                revision,
                key: key.into(),
                kind: EventKind::Put,
            },
            value: value.into(),
        }
    }

    #[test]
    fn resource_values_parse_as_token_and_seq() {
        assert_eq!(parse_resource(b"12:7"), Some((12, 7)));
        assert_eq!(parse_resource(b"12"), None);
        assert_eq!(parse_resource(b"x:7"), None);
    }

    #[test]
    fn histories_disagree_at_the_first_difference_or_in_length() {
        let a = vec![put(2, "k", "1"), put(3, "k", "2")];
        assert_eq!(disagreement(&a, &a), None);
        let b = vec![put(2, "k", "1"), put(3, "k", "3")];
        assert!(disagreement(&a, &b).unwrap().starts_with("event 1:"));
        assert_eq!(disagreement(&a, &a[..1]).unwrap(), "2 events vs 1");
    }
}
