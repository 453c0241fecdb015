//! A barrier: one holder raises it by creating the key `name` under its
//! lease (etcd's recipe layout), waiters block until the key is gone
//! (released, or its holder's lease expired).

use witan_proto::etcdserverpb::compare::CompareResult;
use witan_proto::etcdserverpb::TxnRequest;

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::held::{FencingToken, Held};
use crate::keys;
use crate::ops;
use crate::wake::{wait_for, Wake, WakeOn};

/// Raises barrier `name` under `lease`. [`RecipeError::AlreadyHeld`] if
/// another lease holds it; raising it again under the lease that holds it
/// returns the same hold (a retried call does not fail).
pub async fn hold<C: KvCore>(core: &C, name: &[u8], lease: i64) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    let txn = TxnRequest {
        compare: vec![ops::compare_create(name, CompareResult::Equal, 0)],
        success: vec![ops::put_op(name, b"", lease)],
        failure: vec![ops::range_op(ops::get(name))],
    };
    let resp = core.txn(txn).await?;
    let revision = ops::revision(&resp.header)?;
    if resp.succeeded {
        return Ok(Held {
            key: name.to_vec(),
            token: FencingToken(revision),
            revision,
        });
    }
    match ops::range_at(&resp, 0)?.kvs.first() {
        Some(kv) if kv.lease == lease => Ok(Held {
            key: name.to_vec(),
            token: FencingToken(kv.create_revision),
            revision,
        }),
        _ => Err(RecipeError::AlreadyHeld),
    }
}

/// Lowers barrier `name`, whoever raised it; lowering a barrier that is
/// not raised succeeds. Returns the revision.
pub async fn release<C: KvCore>(core: &C, name: &[u8]) -> Result<i64, RecipeError> {
    keys::check_name(name)?;
    ops::write(core, ops::delete_op(name)).await
}

/// Returns once barrier `name` is not raised, with the revision at which
/// it was seen down (the release's revision when it waited: a barrier
/// raised again right after a release does not hold back a waiter that
/// was waiting for that release).
pub async fn wait<C: KvCore>(core: &C, name: &[u8]) -> Result<i64, RecipeError> {
    keys::check_name(name)?;
    let watched = [(name.to_vec(), WakeOn::Delete)];
    loop {
        let resp = core.range(ops::get(name)).await?;
        let revision = ops::revision(&resp.header)?;
        if resp.kvs.is_empty() {
            return Ok(revision);
        }
        if let Wake::Changed(Some(released)) = wait_for(core, &watched, None, revision + 1).await? {
            return Ok(released);
        }
    }
}
