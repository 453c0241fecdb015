//! What a watch delivers: [`WatchEvent`]s, typed.

use witan_proto::mvccpb::{self, event::EventType};

use crate::kv::KeyValue;

/// One change to a watched key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was put (created or updated).
    Put {
        /// The key as written.
        kv: KeyValue,
        /// The key before, when the watch asked for it and it existed.
        prev_kv: Option<KeyValue>,
    },
    /// The key was deleted (or its lease ended).
    Delete {
        /// The key and the revision of the delete (no value).
        kv: KeyValue,
        /// The key before, when the watch asked for it.
        prev_kv: Option<KeyValue>,
    },
}

impl WatchEvent {
    /// The key-value of the event (for a delete: key and revision only).
    pub fn kv(&self) -> &KeyValue {
        match self {
            WatchEvent::Put { kv, .. } | WatchEvent::Delete { kv, .. } => kv,
        }
    }

    /// The key before the event, if asked for.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        match self {
            WatchEvent::Put { prev_kv, .. } | WatchEvent::Delete { prev_kv, .. } => {
                prev_kv.as_ref()
            }
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        self.kv().mod_revision
    }

    /// Whether it is a put.
    pub fn is_put(&self) -> bool {
        matches!(self, WatchEvent::Put { .. })
    }
}

impl From<mvccpb::Event> for WatchEvent {
    fn from(event: mvccpb::Event) -> Self {
        let kind = event.r#type();
        let kv = event.kv.map(KeyValue::from).unwrap_or_default();
        let prev_kv = event.prev_kv.map(KeyValue::from);
        match kind {
            EventType::Put => WatchEvent::Put { kv, prev_kv },
            EventType::Delete => WatchEvent::Delete { kv, prev_kv },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_kind_kv_and_prev_kv() {
        let raw = mvccpb::Event {
            r#type: EventType::Delete as i32,
            kv: Some(mvccpb::KeyValue {
                key: b"k".to_vec(),
                mod_revision: 9,
                ..Default::default()
            }),
            prev_kv: Some(mvccpb::KeyValue {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            }),
        };
        let event = WatchEvent::from(raw);
        assert!(!event.is_put());
        assert_eq!(event.revision(), 9);
        assert_eq!(
            event.prev_kv().map(|kv| kv.value.as_slice()),
            Some(&b"v"[..])
        );
    }
}
