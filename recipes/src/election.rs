//! Leader election with etcd's `concurrency.Election` semantics: each
//! campaigner puts `name/<lease in hex>` holding its value (etcd's layout,
//! so `etcdctl elect NAME` campaigns in the same election), the oldest key
//! leads, and each campaigner waits for the key just ahead of it to go.
//! The leader's key's create revision is the leadership's fencing token.

use witan_proto::etcdserverpb::range_request::SortOrder;
use witan_proto::mvccpb::KeyValue;
use witan_proto::v3electionpb::LeaderKey;

use crate::acquire::{acquire, Spec};
use crate::core::KvCore;
use crate::error::RecipeError;
use crate::fence::fenced_txn;
use crate::held::FencingToken;
use crate::keys::{self, Span};
use crate::ops;
use crate::queue::Ticket;

pub use crate::observe::observe;

/// A leadership won by [`campaign`]: etcd's `LeaderKey`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Leadership {
    /// The election's name.
    pub name: Vec<u8>,
    /// The leader's key.
    pub key: Vec<u8>,
    /// The key's create revision: the leadership's fencing token.
    pub rev: i64,
    /// The leader's lease.
    pub lease: i64,
}

impl Leadership {
    /// The leadership's fencing token.
    pub fn token(&self) -> FencingToken {
        FencingToken(self.rev)
    }
}

impl From<LeaderKey> for Leadership {
    fn from(key: LeaderKey) -> Self {
        Leadership {
            name: key.name,
            key: key.key,
            rev: key.rev,
            lease: key.lease,
        }
    }
}

impl From<Leadership> for LeaderKey {
    fn from(leader: Leadership) -> Self {
        LeaderKey {
            name: leader.name,
            key: leader.key,
            rev: leader.rev,
            lease: leader.lease,
        }
    }
}

/// Campaigns in election `name` with `lease`, waiting until this
/// campaigner leads; `value` is its proclaimed value from the start.
/// Returns the leadership and the revision it was confirmed at.
/// Campaigning again with the same lease resumes the same key (with the
/// new value), as etcd does.
pub async fn campaign<C: KvCore>(
    core: &C,
    name: &[u8],
    lease: i64,
    value: Vec<u8>,
) -> Result<(Leadership, i64), RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    let prefix = keys::prefix(name);
    let key = keys::lease_key(&prefix, lease);
    let spec = Spec {
        ticket: Ticket {
            key: &key,
            value: &value,
            lease,
        },
        ahead: Span::prefix(prefix),
        slots: 1,
        size: None,
        announce: false,
    };
    let held = acquire(core, &spec).await?;
    let leadership = Leadership {
        name: name.to_vec(),
        key: held.key,
        rev: held.token.0,
        lease,
    };
    Ok((leadership, held.revision))
}

/// Sets the leader's value; [`RecipeError::NotLeader`] unless `leader` is
/// still current (its key exists with create revision `leader.rev`).
pub async fn proclaim<C: KvCore>(
    core: &C,
    leader: &Leadership,
    value: Vec<u8>,
) -> Result<i64, RecipeError> {
    keys::check_key(&leader.key)?;
    let put = vec![ops::put_op(&leader.key, &value, leader.lease)];
    let resp = core
        .txn(fenced_txn(&leader.key, leader.token(), put))
        .await?;
    if !resp.succeeded {
        return Err(RecipeError::NotLeader);
    }
    ops::revision(&resp.header)
}

/// The current leader's key-value (the oldest key of the election) and
/// the revision read; [`RecipeError::NoLeader`] if nobody campaigns.
pub async fn leader<C: KvCore>(core: &C, name: &[u8]) -> Result<(KeyValue, i64), RecipeError> {
    keys::check_name(name)?;
    let resp = core.range(first_created(name, 0)).await?;
    let revision = ops::revision(&resp.header)?;
    match resp.kvs.into_iter().next() {
        Some(kv) => Ok((kv, revision)),
        None => Err(RecipeError::NoLeader),
    }
}

/// Gives up `leader` (deletes its key if it is still current); returns the
/// revision. Resigning a leadership that is no longer current succeeds
/// and changes nothing, as in etcd.
pub async fn resign<C: KvCore>(core: &C, leader: &Leadership) -> Result<i64, RecipeError> {
    keys::check_key(&leader.key)?;
    let delete = vec![ops::delete_op(&leader.key)];
    let resp = core
        .txn(fenced_txn(&leader.key, leader.token(), delete))
        .await?;
    ops::revision(&resp.header)
}

/// The read of an election's leader (its oldest key) at `revision` (0:
/// now).
pub(crate) fn first_created(name: &[u8], revision: i64) -> witan_proto::etcdserverpb::RangeRequest {
    witan_proto::etcdserverpb::RangeRequest {
        limit: 1,
        revision,
        ..ops::by_create(&Span::prefix(keys::prefix(name)), SortOrder::Ascend)
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::range_request::SortTarget;

    use super::*;

    #[test]
    fn the_leader_is_the_oldest_key_under_the_prefix() {
        let read = first_created(b"db", 7);
        assert_eq!(read.key, b"db/");
        assert_eq!(read.range_end, b"db0");
        assert_eq!(read.limit, 1);
        assert_eq!(read.revision, 7);
        assert_eq!(read.sort_order, SortOrder::Ascend as i32);
        assert_eq!(read.sort_target, SortTarget::Create as i32);
    }

    #[test]
    fn leadership_converts_to_and_from_leader_key() {
        let leadership = Leadership {
            name: b"db".to_vec(),
            key: b"db/2a".to_vec(),
            rev: 11,
            lease: 0x2a,
        };
        let key = LeaderKey::from(leadership.clone());
        assert_eq!((key.rev, key.lease), (11, 0x2a));
        assert_eq!(Leadership::from(key), leadership);
        assert_eq!(leadership.token(), FencingToken(11));
    }
}
