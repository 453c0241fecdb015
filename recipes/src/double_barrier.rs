//! A double barrier: participants enter and block until `count` of them
//! are in; they leave and block until every one has left.
//!
//! Layout (after etcd's recipe): each participant's key is
//! `name/waiters/<lease in hex>` under its lease, so one that crashes
//! leaves when its lease expires; `name/ready` (under no lease) is put by
//! the participant that makes the count and opens the barrier; `name/size`
//! records the count (see [`crate::size`]).
//!
//! Entering waits for `ready` to be put. A `ready` older than every
//! participant still in belongs to a round that has completely left (its
//! last participants crashed before clearing it): it is cleared, not
//! obeyed. A participant that enters while the barrier is open (some of
//! the round that opened it are still in) passes at once and joins that
//! round.
//!
//! Leaving follows etcd's recipe: the oldest participant waits for the
//! newest to go, every other one deletes its key and waits for the
//! oldest to go, until the oldest is alone, deletes its key and clears
//! `ready` in one Txn. Nobody watches the whole prefix.

use witan_proto::etcdserverpb::compare::CompareResult;
use witan_proto::etcdserverpb::range_request::SortOrder;
use witan_proto::etcdserverpb::{RangeRequest, TxnRequest};
use witan_proto::mvccpb::KeyValue;

use crate::core::{CoreError, KvCore};
use crate::error::RecipeError;
use crate::fence::fenced_txn;
use crate::held::{FencingToken, Held};
use crate::keys::{self, Span};
use crate::ops;
use crate::queue::{Entry, Ticket};
use crate::size::Size;
use crate::wake::{wait_for, Wake, WakeOn};
use crate::withdraw;

/// The keys of one double barrier.
struct Layout {
    waiters: Span,
    mine: Vec<u8>,
    ready: Vec<u8>,
    size: Vec<u8>,
}

impl Layout {
    fn new(name: &[u8], lease: i64) -> Self {
        let prefix = keys::prefix(name);
        let sub = |suffix: &[u8]| [prefix.as_slice(), suffix].concat();
        let waiters = sub(b"waiters/");
        Layout {
            mine: keys::lease_key(&waiters, lease),
            waiters: Span::prefix(waiters),
            ready: sub(b"ready"),
            size: sub(b"size"),
        }
    }
}

/// Enters double barrier `name` as the participant with `lease`, blocking
/// until `count` participants (every one giving the same count) are in.
/// Returns the participant's key, which stays until [`leave`] or the lease
/// ends. If the call ends before the barrier opens, the key is withdrawn.
pub async fn enter<C: KvCore>(
    core: &C,
    name: &[u8],
    count: u32,
    lease: i64,
) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    if count == 0 {
        return Err(RecipeError::InvalidArgument("the count must be at least 1"));
    }
    let layout = Layout::new(name, lease);
    let size = Size {
        key: layout.size.clone(),
        members: layout.waiters.clone(),
        what: "double barrier count",
        size: count,
    };
    let ticket = Ticket {
        key: &layout.mine,
        value: b"",
        lease,
    };
    let mut first = true;
    loop {
        let (entry, mut withdrawal) = match withdraw::join(core, &ticket, Some(&size)).await {
            Ok(joined) => joined,
            Err(RecipeError::Core(CoreError::LeaseNotFound)) if !first => {
                return Err(RecipeError::LeaseExpired)
            }
            Err(error) => return Err(error),
        };
        first = false;
        let opened = wait_open(core, &layout, &entry, count).await?;
        // Either the barrier opened (keep the key) or the key is gone.
        withdrawal.disarm();
        if let Some(revision) = opened {
            return Ok(Held {
                key: entry.key,
                token: FencingToken(entry.create_revision),
                revision,
            });
        }
    }
}

/// What an entering participant does, from one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnterStep {
    /// The barrier is open: pass.
    Pass,
    /// `ready` (with this mod revision) is left from a finished round.
    ClearStale(i64),
    /// This participant makes the count: open the barrier.
    Open,
    /// Wait for `ready`.
    Wait,
}

/// Decides from the oldest participant's create revision, how many are
/// in, and the `ready` key.
fn enter_step(oldest: i64, inside: i64, ready: Option<&KeyValue>, count: u32) -> EnterStep {
    match ready {
        Some(ready) if oldest < ready.create_revision => EnterStep::Pass,
        Some(ready) => EnterStep::ClearStale(ready.mod_revision),
        None if inside >= i64::from(count) => EnterStep::Open,
        None => EnterStep::Wait,
    }
}

/// Waits until the barrier is open; `None` if the entry's key disappeared.
async fn wait_open<C: KvCore>(
    core: &C,
    layout: &Layout,
    entry: &Entry,
    count: u32,
) -> Result<Option<i64>, RecipeError> {
    let watched = [(layout.ready.clone(), WakeOn::Put)];
    loop {
        // The oldest participant, and (the count ignores the limit) how
        // many are in.
        let oldest_first = RangeRequest {
            limit: 1,
            ..ops::by_create(&layout.waiters, SortOrder::Ascend)
        };
        let ([oldest_read, ready_read, mine_read], revision) = ops::snapshot(
            core,
            [oldest_first, ops::get(&layout.ready), ops::get(&entry.key)],
        )
        .await?;
        let present = mine_read
            .kvs
            .first()
            .is_some_and(|kv| kv.create_revision == entry.create_revision);
        if !present {
            return Ok(None);
        }
        let oldest = oldest_read
            .kvs
            .first()
            .map_or(entry.create_revision, |kv| kv.create_revision);
        match enter_step(oldest, oldest_read.count, ready_read.kvs.first(), count) {
            EnterStep::Pass => return Ok(Some(revision)),
            EnterStep::ClearStale(ready_mod) => {
                let clear = TxnRequest {
                    compare: vec![ops::compare_mod(
                        &layout.ready,
                        CompareResult::Equal,
                        ready_mod,
                    )],
                    success: vec![ops::delete_op(&layout.ready)],
                    failure: Vec::new(),
                };
                core.txn(clear).await?;
            }
            EnterStep::Open => {
                let open = TxnRequest {
                    compare: vec![ops::compare_create(&layout.ready, CompareResult::Equal, 0)],
                    success: vec![ops::put_op(&layout.ready, b"", 0)],
                    failure: Vec::new(),
                };
                core.txn(open).await?;
            }
            EnterStep::Wait => {
                if wait_for(core, &watched, Some(&entry.key), revision + 1).await?
                    == Wake::OwnKeyGone
                {
                    return Ok(None);
                }
            }
        }
    }
}

/// Leaves double barrier `name` as the participant with `lease`, blocking
/// until every participant has left (a crashed one leaves when its lease
/// expires). Returns the revision at which the barrier was seen empty.
/// A participant whose key is already gone (it left before, or never
/// entered) just waits; [`RecipeError::LeaseExpired`] if its lease expires
/// while it waits as the oldest, [`CoreError::LeaseNotFound`] if its key
/// and lease are gone from the start.
pub async fn leave<C: KvCore>(core: &C, name: &[u8], lease: i64) -> Result<i64, RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    let layout = Layout::new(name, lease);
    let mut left = false;
    let mut first = true;
    loop {
        let ([waiters], revision) =
            ops::snapshot(core, [ops::by_create(&layout.waiters, SortOrder::Ascend)]).await?;
        let inside = &waiters.kvs;
        let mine = inside.iter().find(|kv| kv.key == layout.mine);
        if mine.is_none() && !left {
            if !lease_alive(core, lease).await? {
                return Err(if first {
                    RecipeError::Core(CoreError::LeaseNotFound)
                } else {
                    RecipeError::LeaseExpired
                });
            }
            // Deleted by someone else, or never entered: nothing to
            // delete, still wait for everyone to leave.
            left = true;
        }
        first = false;
        match leave_step(inside, mine.map(|kv| kv.create_revision)) {
            LeaveStep::Done => {
                // Clear `ready` only while nobody is in (a new round may
                // have started).
                let clear = TxnRequest {
                    compare: vec![ops::created_before(&layout.waiters, 1)],
                    success: vec![ops::delete_op(&layout.ready)],
                    failure: Vec::new(),
                };
                let resp = core.txn(clear).await?;
                return ops::revision(&resp.header);
            }
            LeaveStep::Last(create_revision) => {
                let last = TxnRequest {
                    compare: vec![
                        ops::compare_create(&layout.mine, CompareResult::Equal, create_revision),
                        ops::created_before(&layout.waiters, revision + 1),
                    ],
                    success: vec![ops::delete_op(&layout.mine), ops::delete_op(&layout.ready)],
                    failure: Vec::new(),
                };
                let resp = core.txn(last).await?;
                if resp.succeeded {
                    return ops::revision(&resp.header);
                }
            }
            LeaveStep::WaitNewest(newest) => {
                let watched = [(newest, WakeOn::Delete)];
                // Waking on its own key's delete: the next look decides.
                wait_for(core, &watched, Some(&layout.mine), revision + 1).await?;
            }
            LeaveStep::GoThenWaitOldest {
                create_revision,
                oldest,
            } => {
                let delete = vec![ops::delete_op(&layout.mine)];
                core.txn(fenced_txn(
                    &layout.mine,
                    FencingToken(create_revision),
                    delete,
                ))
                .await?;
                left = true;
                wait_for(core, &[(oldest, WakeOn::Delete)], None, revision + 1).await?;
            }
            LeaveStep::WaitOldest(oldest) => {
                wait_for(core, &[(oldest, WakeOn::Delete)], None, revision + 1).await?;
            }
        }
    }
}

/// What a leaving participant does, from the participants still in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LeaveStep {
    /// Nobody is in.
    Done,
    /// Only this participant (key created at this revision) is in.
    Last(i64),
    /// This participant is the oldest: wait for the newest to go.
    WaitNewest(Vec<u8>),
    /// Delete this participant's key, then wait for the oldest to go.
    GoThenWaitOldest {
        /// The key's create revision (the delete is fenced on it).
        create_revision: i64,
        /// The oldest participant's key.
        oldest: Vec<u8>,
    },
    /// This participant is out: wait for the oldest to go.
    WaitOldest(Vec<u8>),
}

/// Decides from the participants in, oldest first, and this
/// participant's create revision if its key is among them.
fn leave_step(inside: &[KeyValue], mine: Option<i64>) -> LeaveStep {
    let (Some(oldest), Some(newest)) = (inside.first(), inside.last()) else {
        return LeaveStep::Done;
    };
    match mine {
        Some(create_revision) if inside.len() == 1 => LeaveStep::Last(create_revision),
        Some(create_revision) if oldest.create_revision == create_revision => {
            LeaveStep::WaitNewest(newest.key.clone())
        }
        Some(create_revision) => LeaveStep::GoThenWaitOldest {
            create_revision,
            oldest: oldest.key.clone(),
        },
        None => LeaveStep::WaitOldest(oldest.key.clone()),
    }
}

/// Whether `lease` still exists.
async fn lease_alive<C: KvCore>(core: &C, lease: i64) -> Result<bool, RecipeError> {
    match core.lease_time_to_live(lease).await {
        // etcd answers -1 for a lease that is gone.
        Ok(ttl) => Ok(ttl >= 0),
        Err(CoreError::LeaseNotFound) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
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
    fn the_layout_keeps_every_key_under_the_name() {
        let layout = Layout::new(b"b", 0xab);
        assert_eq!(layout.mine, b"b/waiters/ab");
        assert_eq!(layout.waiters.start, b"b/waiters/");
        assert_eq!(layout.waiters.end, b"b/waiters0");
        assert_eq!(layout.ready, b"b/ready");
        assert_eq!(layout.size, b"b/size");
    }

    #[test]
    fn entering_waits_for_the_count_and_ignores_a_stale_ready() {
        assert_eq!(enter_step(5, 2, None, 3), EnterStep::Wait);
        assert_eq!(enter_step(5, 3, None, 3), EnterStep::Open);
        assert_eq!(enter_step(5, 4, None, 3), EnterStep::Open);
        let ready = kv("b/ready", 9);
        assert_eq!(enter_step(5, 3, Some(&ready), 3), EnterStep::Pass);
        // Everyone in arrived after `ready`: its round is over.
        assert_eq!(enter_step(12, 1, Some(&ready), 3), EnterStep::ClearStale(9));
    }

    #[test]
    fn leaving_waits_on_the_oldest_or_the_newest_only() {
        let inside = [
            kv("b/waiters/a", 3),
            kv("b/waiters/b", 4),
            kv("b/waiters/c", 5),
        ];
        assert_eq!(leave_step(&[], None), LeaveStep::Done);
        assert_eq!(leave_step(&inside[..1], Some(3)), LeaveStep::Last(3));
        assert_eq!(
            leave_step(&inside, Some(3)),
            LeaveStep::WaitNewest(b"b/waiters/c".to_vec())
        );
        assert_eq!(
            leave_step(&inside, Some(4)),
            LeaveStep::GoThenWaitOldest {
                create_revision: 4,
                oldest: b"b/waiters/a".to_vec()
            }
        );
        assert_eq!(
            leave_step(&inside, None),
            LeaveStep::WaitOldest(b"b/waiters/a".to_vec())
        );
    }
}
