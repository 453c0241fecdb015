//! Splitting a large watch response into fragments, as etcd does for
//! watches created with `fragment`: a response of at least the size limit
//! with two or more events becomes several responses, each as many events
//! as fit below the limit (at least one), all with `fragment: true` but the
//! last. The client joins them back into one response.

use prost::Message;
use witan_proto::etcdserverpb::WatchResponse;

/// The field number of `WatchResponse.events`.
const EVENTS_FIELD: u32 = 11;

/// Splits `response` so that each part stays under `limit` bytes when it
/// can (a single event larger than the limit travels alone).
pub fn split(response: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    if response.events.len() < 2 || response.encoded_len() < limit {
        return vec![response];
    }
    let mut shell = response;
    let events = std::mem::take(&mut shell.events);
    shell.fragment = true;
    // The size of a part is its shell plus each event's own encoding
    // (repeated fields encode independently), so it is summed, not
    // re-encoded per event.
    let shell_len = shell.encoded_len();
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut current_len = shell_len;
    for event in events {
        let len = prost::encoding::message::encoded_len(EVENTS_FIELD, &event);
        if !current.is_empty() && current_len + len >= limit {
            parts.push(WatchResponse {
                events: std::mem::take(&mut current),
                ..shell.clone()
            });
            current_len = shell_len;
        }
        current_len += len;
        current.push(event);
    }
    parts.push(WatchResponse {
        events: current,
        fragment: false,
        ..shell
    });
    parts
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::ResponseHeader;
    use witan_proto::mvccpb::{Event, KeyValue};

    use super::*;

    fn event(key: &str, value_len: usize) -> Event {
        Event {
            kv: Some(KeyValue {
                key: key.into(),
                value: vec![b'x'; value_len],
                mod_revision: 9,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn response(events: Vec<Event>) -> WatchResponse {
        WatchResponse {
            header: Some(ResponseHeader {
                revision: 9,
                ..Default::default()
            }),
            watch_id: 3,
            events,
            ..Default::default()
        }
    }

    #[test]
    fn small_or_single_event_responses_are_not_split() {
        let small = response(vec![event("a", 10), event("b", 10)]);
        assert_eq!(split(small.clone(), 1000), vec![small]);
        let single = response(vec![event("a", 5000)]);
        assert_eq!(split(single.clone(), 1000), vec![single]);
    }

    #[test]
    fn large_responses_are_split_below_the_limit_in_order() {
        let events: Vec<Event> = (0..10).map(|i| event(&format!("k{i}"), 300)).collect();
        let whole = response(events.clone());
        let parts = split(whole.clone(), 1000);
        assert!(parts.len() > 1);
        for (i, part) in parts.iter().enumerate() {
            let last = i == parts.len() - 1;
            assert_eq!(part.fragment, !last, "fragment on all but the last");
            assert_eq!((part.watch_id, part.header), (3, whole.header));
            assert!(!part.events.is_empty());
            assert!(part.events.len() == 1 || part.encoded_len() < 1000);
            // A part is full: the next event would not have fit.
            if !last {
                let mut bigger = part.clone();
                bigger.events.push(parts[i + 1].events[0].clone());
                assert!(bigger.encoded_len() >= 1000);
            }
        }
        let joined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(joined, events);
    }

    #[test]
    fn an_oversized_event_travels_alone() {
        let events = vec![event("a", 10), event("big", 5000), event("c", 10)];
        let parts = split(response(events), 1000);
        let sizes: Vec<usize> = parts.iter().map(|p| p.events.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
    }
}
