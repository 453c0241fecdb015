//! A Range request's options, etcd 3.4's rules exactly: what to fetch
//! (`Fetch`), then filtering, sorting, truncating and shaping the response
//! (`respond`).
//!
//! The fetch is split from the response so that the same rules serve a
//! Range outside a transaction and one inside it, whatever they read from.

use std::cmp::Ordering;

use witan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use witan_proto::mvccpb::KeyValue;

use super::{KeyRange, RangeAt};

/// What a Range request reads from the store.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fetch {
    /// The keys.
    pub range: KeyRange,
    /// The requested revision (`<= 0`: current), checked by the reader.
    pub revision: i64,
    /// At most this many keys (0: all).
    pub limit: usize,
}

impl Fetch {
    /// The read a Range request needs. Sorting or a min/max filter needs
    /// every key (etcd fetches everything then, and truncates afterwards);
    /// otherwise one key more than the limit tells whether there is more.
    pub fn new(req: &RangeRequest) -> Self {
        let fetch_all = req.sort_order != SortOrder::None as i32
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let limit = if req.count_only {
            // Only the count is answered; one key is the least a reader
            // can be asked for.
            1
        } else if fetch_all || req.limit <= 0 {
            0
        } else {
            usize::try_from(req.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        Fetch {
            range: KeyRange::new(&req.key, &req.range_end),
            revision: req.revision,
            limit,
        }
    }
}

/// The response to `req` from what its `Fetch` read; `revision` is the
/// header revision (the revision of the store the read ran against, not
/// the requested one).
pub(super) fn respond(req: &RangeRequest, fetched: RangeAt, revision: i64) -> RangeResponse {
    let RangeAt { mut kvs, count } = fetched;
    if req.count_only {
        kvs.clear();
    }
    // etcd applies the filters in this order; each drops keys outside it.
    if req.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= req.max_mod_revision);
    }
    if req.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= req.min_mod_revision);
    }
    if req.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= req.max_create_revision);
    }
    if req.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= req.min_create_revision);
    }
    sort(req, &mut kvs);
    let mut more = false;
    if let Ok(limit) = usize::try_from(req.limit) {
        if limit > 0 && kvs.len() > limit {
            kvs.truncate(limit);
            more = true;
        }
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    RangeResponse {
        header: Some(ResponseHeader {
            revision,
            ..ResponseHeader::default()
        }),
        kvs,
        more,
        count,
    }
}

/// Sorts as etcd 3.4 does. A target other than KEY with order NONE sorts
/// ascending. etcd's `sort.Sort` gives a stable result on the inputs it
/// meets in practice, so ties keep key order, in both directions (DESCEND
/// reverses the comparison, not the ascending result). An unknown order
/// or target (which validation rejects) leaves key order.
fn sort(req: &RangeRequest, kvs: &mut [KeyValue]) {
    let Ok(target) = SortTarget::try_from(req.sort_target) else {
        return;
    };
    let order = match SortOrder::try_from(req.sort_order) {
        Ok(SortOrder::None) if target != SortTarget::Key => SortOrder::Ascend,
        Ok(order) => order,
        Err(_) => return,
    };
    let compare: fn(&KeyValue, &KeyValue) -> Ordering = match target {
        SortTarget::Key => |a, b| a.key.cmp(&b.key),
        SortTarget::Version => |a, b| a.version.cmp(&b.version),
        SortTarget::Create => |a, b| a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => |a, b| a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => |a, b| a.value.cmp(&b.value),
    };
    match order {
        SortOrder::None => {}
        // Keys come in key order already.
        SortOrder::Ascend if target == SortTarget::Key => {}
        SortOrder::Ascend => kvs.sort_by(compare),
        SortOrder::Descend => kvs.sort_by(|a, b| compare(b, a)),
    }
}
