//! The fair, herd-free queue every blocking recipe rests on: a caller puts
//! its key under a lease (its create revision is its place in line), then
//! waits until fewer than `slots` keys created before it remain in the
//! span it queues behind, watching only the keys it depends on.
//!
//! How a waiter decides, from the `slots + 1` newest keys ahead of it:
//! - fewer than `slots` ahead: its turn;
//! - exactly `slots` ahead: it is next, and every key ahead is a holder, so
//!   it waits for any of them to be deleted;
//! - more: it waits for its predecessor (the newest key ahead) to change.
//!   With one slot that is a delete; with more, a holder that gets its turn
//!   touches its key (see [`Spec::announce`]), which wakes its successor to
//!   look again. That touch is what keeps the chain moving when a holder
//!   further ahead, not the predecessor, releases.

use witan_proto::etcdserverpb::compare::CompareResult;
use witan_proto::etcdserverpb::range_request::SortOrder;
use witan_proto::etcdserverpb::{RangeRequest, TxnRequest, TxnResponse};
use witan_proto::mvccpb::KeyValue;

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::keys::Span;
use crate::ops;
use crate::wake::{wait_for, Wake, WakeOn};

/// What a caller puts in line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket<'a> {
    /// The caller's key.
    pub key: &'a [u8],
    /// Its value.
    pub value: &'a [u8],
    /// The caller's lease.
    pub lease: i64,
}

/// A caller's place in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The caller's key.
    pub key: Vec<u8>,
    /// Its create revision: the place in line and the fencing token.
    pub create_revision: i64,
    /// Whether this call created the key (false: it resumed a key the
    /// same lease had put before, as etcd's recipes do).
    pub created: bool,
    /// The revision of this call's own write of the key: its create, or
    /// the rewrite that claims a resumed key (see `withdraw::join`). A
    /// withdrawal deletes the key only while it is still this write.
    pub mod_revision: i64,
    /// The key's value when it was put or resumed.
    pub value: Vec<u8>,
}

/// Puts the ticket's key unless it exists; reads it otherwise.
pub(crate) fn enqueue_txn(ticket: &Ticket<'_>) -> TxnRequest {
    TxnRequest {
        compare: vec![ops::compare_create(ticket.key, CompareResult::Equal, 0)],
        success: vec![ops::put_op(ticket.key, ticket.value, ticket.lease)],
        failure: vec![ops::range_op(ops::get(ticket.key))],
    }
}

/// The entry an [`enqueue_txn`] response stands for; `revision` is the
/// revision the txn ran at (a nested txn's own header is not relied on).
pub(crate) fn entry_from(
    ticket: &Ticket<'_>,
    resp: &TxnResponse,
    revision: i64,
) -> Result<Entry, RecipeError> {
    if resp.succeeded {
        return Ok(Entry {
            key: ticket.key.to_vec(),
            create_revision: revision,
            created: true,
            mod_revision: revision,
            value: ticket.value.to_vec(),
        });
    }
    let existing = ops::range_at(resp, 0)?
        .kvs
        .first()
        .ok_or(RecipeError::UnexpectedResponse(
            "the key that failed the create compare is missing",
        ))?;
    Ok(Entry {
        key: ticket.key.to_vec(),
        create_revision: existing.create_revision,
        created: false,
        mod_revision: existing.mod_revision,
        value: existing.value.clone(),
    })
}

/// Puts the ticket's key in line (or resumes it).
pub(crate) async fn enqueue<C: KvCore>(
    core: &C,
    ticket: &Ticket<'_>,
) -> Result<Entry, RecipeError> {
    let resp = core.txn(enqueue_txn(ticket)).await?;
    let revision = ops::revision(&resp.header)?;
    entry_from(ticket, &resp, revision)
}

/// What a waiter does after reading the keys ahead of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Its turn.
    Go,
    /// It is next: wait for any of these holders to be deleted.
    AnyDeleted(Vec<Vec<u8>>),
    /// Wait for the predecessor to change.
    PredecessorChanged(Vec<u8>),
}

/// The read that tells a waiter where it stands: the keys of `ahead`
/// created before `create_revision`, newest first, at most `slots + 1`
/// (one slot needs only the newest).
pub(crate) fn ahead_request(ahead: &Span, create_revision: i64, slots: u32) -> RangeRequest {
    let limit = if slots <= 1 { 1 } else { i64::from(slots) + 1 };
    RangeRequest {
        limit,
        // Revisions start at 1 and the first write makes 2, so a key's
        // create revision is at least 2 and this is never 0 ("no filter").
        max_create_revision: create_revision - 1,
        ..ops::by_create(ahead, SortOrder::Descend)
    }
}

/// Decides from the keys ahead, newest first (an [`ahead_request`]'s
/// answer).
pub(crate) fn decide(ahead_newest_first: &[KeyValue], slots: u32) -> Decision {
    let slots = usize::try_from(slots).unwrap_or(usize::MAX);
    let n = ahead_newest_first.len();
    if n < slots {
        return Decision::Go;
    }
    if n == slots {
        return Decision::AnyDeleted(ahead_newest_first.iter().map(|kv| kv.key.clone()).collect());
    }
    match ahead_newest_first.first() {
        Some(predecessor) => Decision::PredecessorChanged(predecessor.key.clone()),
        // n > slots >= 0, so there is a first; going is the only answer
        // that cannot wait forever if that ever breaks.
        None => Decision::Go,
    }
}

/// How a wait for a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// The caller's turn, confirmed at this revision with its key still
    /// in place.
    Granted(i64),
    /// The caller's key is gone: it holds nothing.
    Gone,
}

/// Waits until fewer than `slots` keys of `ahead` created before `entry`
/// remain while `entry`'s key still exists with its create revision (a
/// key whose lease expired during the wait holds nothing).
pub(crate) async fn wait_turn<C: KvCore>(
    core: &C,
    entry: &Entry,
    ahead: &Span,
    slots: u32,
) -> Result<Turn, RecipeError> {
    // The revision of the event that last woke the waiter: the next read
    // need only be at least that recent (see `ops::snapshot_since`), which
    // saves a read barrier on every hand-over.
    let mut woken_at = None;
    loop {
        // The keys ahead and the caller's own key at one revision: the
        // turn is decided on both, and the watches start right after it,
        // so a delete of either is never missed.
        let ([ahead_read, mine_read], revision) = ops::snapshot_since(
            core,
            [
                ahead_request(ahead, entry.create_revision, slots),
                ops::get(&entry.key),
            ],
            woken_at,
        )
        .await?;
        let present = mine_read
            .kvs
            .first()
            .is_some_and(|kv| kv.create_revision == entry.create_revision);
        if !present {
            return Ok(Turn::Gone);
        }
        let watched: Vec<(Vec<u8>, WakeOn)> = match decide(&ahead_read.kvs, slots) {
            Decision::Go => return Ok(Turn::Granted(revision)),
            Decision::AnyDeleted(keys) => keys.into_iter().map(|k| (k, WakeOn::Delete)).collect(),
            Decision::PredecessorChanged(key) => vec![(key, WakeOn::Any)],
        };
        match wait_for(core, &watched, Some(&entry.key), revision + 1).await? {
            Wake::Changed(at) => woken_at = at,
            Wake::OwnKeyGone => return Ok(Turn::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::range_request::SortTarget;
    use witan_proto::etcdserverpb::request_op::Request;
    use witan_proto::etcdserverpb::response_op::Response;
    use witan_proto::etcdserverpb::{RangeResponse, RequestOp, ResponseOp};

    use super::*;

    fn kv(key: &str, create_revision: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision,
            mod_revision: create_revision,
            version: 1,
            ..KeyValue::default()
        }
    }

    #[test]
    fn a_lock_waiter_goes_when_nobody_is_ahead_and_otherwise_waits_for_the_delete() {
        assert_eq!(decide(&[], 1), Decision::Go);
        assert_eq!(
            decide(&[kv("l/a", 5)], 1),
            Decision::AnyDeleted(vec![b"l/a".to_vec()])
        );
    }

    #[test]
    fn a_semaphore_waiter_counts_the_keys_ahead() {
        let ahead = [kv("s/c", 9), kv("s/b", 7), kv("s/a", 5)];
        assert_eq!(decide(&ahead[..1], 2), Decision::Go);
        // Exactly `slots` ahead: all of them hold, any delete lets it in.
        assert_eq!(
            decide(&ahead[1..], 2),
            Decision::AnyDeleted(vec![b"s/b".to_vec(), b"s/a".to_vec()])
        );
        // More: only the predecessor matters.
        assert_eq!(
            decide(&ahead, 2),
            Decision::PredecessorChanged(b"s/c".to_vec())
        );
    }

    #[test]
    fn the_ahead_read_is_newest_first_before_the_caller_and_bounded() {
        let span = Span::prefix(b"s/".to_vec());
        let one = ahead_request(&span, 10, 1);
        assert_eq!(one.key, b"s/");
        assert_eq!(one.range_end, b"s0");
        assert_eq!(one.max_create_revision, 9);
        assert_eq!(one.limit, 1);
        assert_eq!(one.sort_order, SortOrder::Descend as i32);
        assert_eq!(one.sort_target, SortTarget::Create as i32);
        assert_eq!(ahead_request(&span, 10, 3).limit, 4);
    }

    #[test]
    fn enqueue_puts_the_key_only_if_absent_and_resumes_it_otherwise() {
        let ticket = Ticket {
            key: b"l/1f",
            value: b"v",
            lease: 0x1f,
        };
        let txn = enqueue_txn(&ticket);
        assert_eq!(
            txn.compare,
            vec![ops::compare_create(b"l/1f", CompareResult::Equal, 0)]
        );
        match &txn.success[..] {
            [RequestOp {
                request: Some(Request::RequestPut(put)),
            }] => {
                assert_eq!(put.key, b"l/1f");
                assert_eq!(put.value, b"v");
                assert_eq!(put.lease, 0x1f);
            }
            other => panic!("unexpected success branch {other:?}"),
        }

        let created = TxnResponse {
            succeeded: true,
            ..TxnResponse::default()
        };
        let entry = entry_from(&ticket, &created, 12).unwrap();
        assert_eq!(entry.create_revision, 12);
        assert!(entry.created);

        let mut existing = kv("l/1f", 4);
        existing.value = b"old".to_vec();
        let resumed = TxnResponse {
            succeeded: false,
            responses: vec![ResponseOp {
                response: Some(Response::ResponseRange(RangeResponse {
                    kvs: vec![existing],
                    count: 1,
                    ..RangeResponse::default()
                })),
            }],
            ..TxnResponse::default()
        };
        let entry = entry_from(&ticket, &resumed, 12).unwrap();
        assert_eq!(entry.create_revision, 4);
        assert!(!entry.created);
        assert_eq!(entry.value, b"old");
    }
}
