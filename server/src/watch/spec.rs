//! `WatchSpec`: a create request decoded and checked once (key range with
//! etcd's conventions, event filters, start revision, options), and
//! `CreateError`, why a create request is refused.

use witan_proto::etcdserverpb::watch_create_request::FilterType;
use witan_proto::etcdserverpb::WatchCreateRequest;

use crate::mvcc::KeyRange;

/// Why a watch could not be created. The texts are etcd's where etcd
/// refuses the same request (clients show them as the cancel reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The caller may not read the watched keys. etcd's cancel reason is
    /// the whole gRPC error text, which etcdctl prints as is.
    #[error("rpc error: code = PermissionDenied desc = etcdserver: permission denied")]
    PermissionDenied,
    /// The client chose a watch id that a watch of the stream still uses.
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
    /// `range_end` is not after `key`: the range holds no key.
    #[error("mvcc: watcher range is empty")]
    EmptyRange,
    /// Neither a key nor a range end. (etcd watches the key "\0" then, a
    /// key no client can write; witan says what is wrong instead.)
    #[error("etcdserver: key is not provided")]
    KeyNotProvided,
    /// A filter value this server does not know. (etcd ignores it and
    /// sends the events the client asked to drop; witan refuses.)
    #[error("witan: unknown watch filter type {0}")]
    UnknownFilter(i32),
    /// A negative start revision. (etcd answers with a "compacted"
    /// cancellation at compaction revision -1.)
    #[error("witan: watch start revision {0} is negative")]
    NegativeStartRevision(i64),
    /// The stream already holds `--max-watches-per-stream` watches. (etcd
    /// has no such limit; the text follows its "too many requests".)
    #[error("etcdserver: too many watches on this stream (at most {0})")]
    TooManyWatches(usize),
    /// The client connection already holds
    /// `--max-watches-per-connection` watches over all its streams.
    #[error("etcdserver: too many watches on this connection (at most {0})")]
    TooManyWatchesOnConnection(usize),
}

/// Which events a watch drops (etcd's `NOPUT` / `NODELETE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Drop PUT events.
    pub no_put: bool,
    /// Drop DELETE events.
    pub no_delete: bool,
}

impl EventFilter {
    /// Decodes the request's filter list; an unknown value is refused.
    pub fn new(filters: &[i32]) -> Result<Self, CreateError> {
        let mut filter = EventFilter::default();
        for &value in filters {
            match FilterType::try_from(value) {
                Ok(FilterType::Noput) => filter.no_put = true,
                Ok(FilterType::Nodelete) => filter.no_delete = true,
                Err(_) => return Err(CreateError::UnknownFilter(value)),
            }
        }
        Ok(filter)
    }

    /// Whether an event of this kind is delivered.
    pub fn keeps(&self, deleted: bool) -> bool {
        if deleted {
            !self.no_delete
        } else {
            !self.no_put
        }
    }
}

/// A valid create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// The watched keys.
    pub range: KeyRange,
    /// Which events are dropped.
    pub filter: EventFilter,
    /// The first revision to deliver; 0 means "the next one" (the current
    /// revision + 1, resolved when the watch is created).
    pub start_revision: i64,
    /// Deliver each event's previous key-value.
    pub prev_kv: bool,
    /// Send progress notifications while the watch is idle.
    pub progress_notify: bool,
    /// Split responses larger than the request size limit.
    pub fragment: bool,
}

impl WatchSpec {
    /// Checks a create request. The key range follows etcd: an empty key
    /// with a range end means "from the smallest key" ("\0"), a range end
    /// of "\0" means every key from `key` on.
    pub fn new(request: &WatchCreateRequest) -> Result<Self, CreateError> {
        let key: &[u8] = match (request.key.as_slice(), request.range_end.as_slice()) {
            ([], []) => return Err(CreateError::KeyNotProvided),
            ([], _) => &[0],
            (key, _) => key,
        };
        let range = KeyRange::new(key, &request.range_end);
        if let KeyRange::Between(start, end) = &range {
            if start >= end {
                return Err(CreateError::EmptyRange);
            }
        }
        if request.start_revision < 0 {
            return Err(CreateError::NegativeStartRevision(request.start_revision));
        }
        Ok(WatchSpec {
            range,
            filter: EventFilter::new(&request.filters)?,
            start_revision: request.start_revision,
            prev_kv: request.prev_kv,
            progress_notify: request.progress_notify,
            fragment: request.fragment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &[u8], range_end: &[u8]) -> WatchCreateRequest {
        WatchCreateRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn key_ranges_follow_etcd_conventions() {
        let single = WatchSpec::new(&request(b"a", b"")).unwrap();
        assert_eq!(single.range, KeyRange::Key(b"a".to_vec()));
        let from = WatchSpec::new(&request(b"a", b"\0")).unwrap();
        assert!(from.range.contains(b"zzz") && !from.range.contains(b"0"));
        let prefix = WatchSpec::new(&request(b"a/", b"a0")).unwrap();
        assert!(prefix.range.contains(b"a/x") && !prefix.range.contains(b"a0"));
        // An empty key with a range end starts at the smallest key.
        let all = WatchSpec::new(&request(b"", b"\0")).unwrap();
        assert_eq!(all.range, KeyRange::From(vec![0]));
        assert!(all.range.contains(b"\0") && all.range.contains(b"anything"));
        let below = WatchSpec::new(&request(b"", b"m")).unwrap();
        assert!(below.range.contains(b"a") && !below.range.contains(b"m"));
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        assert_eq!(
            WatchSpec::new(&request(b"", b"")),
            Err(CreateError::KeyNotProvided)
        );
        assert_eq!(
            WatchSpec::new(&request(b"b", b"a")),
            Err(CreateError::EmptyRange)
        );
        assert_eq!(
            WatchSpec::new(&request(b"a", b"a")),
            Err(CreateError::EmptyRange)
        );
        let negative = WatchCreateRequest {
            start_revision: -3,
            ..request(b"a", b"")
        };
        assert_eq!(
            WatchSpec::new(&negative),
            Err(CreateError::NegativeStartRevision(-3))
        );
        let unknown = WatchCreateRequest {
            filters: vec![0, 7],
            ..request(b"a", b"")
        };
        assert_eq!(WatchSpec::new(&unknown), Err(CreateError::UnknownFilter(7)));
        assert_eq!(
            CreateError::DuplicateId.to_string(),
            "mvcc: duplicate watch ID provided on the WatchStream"
        );
    }

    #[test]
    fn filters_drop_their_kind_only() {
        let none = EventFilter::new(&[]).unwrap();
        assert!(none.keeps(false) && none.keeps(true));
        let no_put = EventFilter::new(&[FilterType::Noput as i32]).unwrap();
        assert!(!no_put.keeps(false) && no_put.keeps(true));
        let no_delete = EventFilter::new(&[FilterType::Nodelete as i32]).unwrap();
        assert!(no_delete.keeps(false) && !no_delete.keeps(true));
        let both = EventFilter::new(&[0, 1, 1]).unwrap();
        assert!(!both.keeps(false) && !both.keeps(true));
    }
}
