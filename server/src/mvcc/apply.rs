//! Applying one command (etcd's `applierV3backend`): Put, DeleteRange and
//! Compact here, Txn in `txn`; and the Put / DeleteRange steps a Txn reuses.

use bytes::Bytes;
use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse, ResponseHeader,
};
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::{
    ApplyError, Command, CommandResponse, LeaseExpire, LeaseExpireResult, LeaseKeepAlive,
    LeaseKeepAliveResult, LeaseTick, LeaseTickResult,
};

use super::auth::{self, Access};
use super::write::WriteTxn;
use super::{txn, Change, History, HistoryError, KeyRange, KvState, MvccError};

/// Applies `cmd` to `state` (see `KvState::apply`).
pub(super) async fn apply<H: History>(
    state: &mut KvState,
    cmd: &Command,
    history: &H,
    changes: &mut Vec<Change>,
) -> Result<CommandResponse, HistoryError> {
    if let Some(stale) = stale_auth(state, cmd) {
        return Ok(stale);
    }
    if let Some(op) = cmd.op.as_ref().filter(|op| auth::is_auth_op(op)) {
        let (revision, clock) = (state.revision(), state.leases().clock_ms());
        return Ok(match auth::apply(state.auth_mut(), op, revision, clock) {
            Some(Ok(outcome)) => CommandResponse {
                result: Some(outcome),
            },
            Some(Err(e)) => rejected(e.to_kind().unwrap_or(Kind::Unknown)),
            None => rejected(Kind::Unknown),
        });
    }
    if grows_store(cmd) && state.alarms().no_space() {
        // etcd's capped applier: checked on apply too, so every member
        // refuses the same commands whatever the API layer saw.
        return Ok(rejected(Kind::NoSpace));
    }
    let outcome = match &cmd.op {
        Some(Op::Put(req)) => put(state, req, history, changes).map(Outcome::Put),
        Some(Op::DeleteRange(req)) => {
            delete_range(state, req, history, changes).map(Outcome::DeleteRange)
        }
        Some(Op::Txn(req)) => txn::apply(state, req, history, changes)
            .await
            .map(Outcome::Txn),
        Some(Op::Compact(req)) => compact(state, req).map(Outcome::Compact),
        Some(Op::LeaseGrant(req)) => lease_grant(state, req).map(Outcome::LeaseGrant),
        Some(Op::LeaseRevoke(req)) => lease_revoke_permitted(state, cmd, req.id)
            .and_then(|()| lease_revoke(state, req, history, changes))
            .map(Outcome::LeaseRevoke),
        Some(Op::LeaseKeepAlive(req)) => Ok(Outcome::LeaseKeepAlive(lease_keep_alive(state, req))),
        Some(Op::LeaseTick(req)) => Ok(Outcome::LeaseTick(lease_tick(state, req))),
        Some(Op::LeaseExpire(req)) => Ok(Outcome::LeaseExpire(lease_expire(
            state, req, history, changes,
        ))),
        Some(Op::Alarm(req)) => Ok(Outcome::Alarm(alarm(state, req))),
        // Answered above.
        Some(_) => return Ok(rejected(Kind::Unknown)),
        None => {
            // A command this version cannot decode (a newer member wrote a
            // new kind of op): answer deterministically, change nothing.
            tracing::warn!("applying a command with no known op");
            return Ok(rejected(Kind::Unknown));
        }
    };
    match outcome {
        Ok(outcome) => Ok(CommandResponse {
            result: Some(outcome),
        }),
        Err(MvccError::History(err)) => Err(err),
        Err(rejection) => Ok(rejected(
            rejection.to_apply_error().unwrap_or(Kind::Unknown),
        )),
    }
}

/// The rejection of a client command whose permissions were checked
/// against an auth store that has changed since (etcd's authApplier): the
/// client retries and is checked again. Commands the member makes itself
/// carry revision 0 and are never refused here.
fn stale_auth(state: &KvState, cmd: &Command) -> Option<CommandResponse> {
    let auth = state.auth();
    (cmd.auth_revision != 0 && auth.enabled() && cmd.auth_revision < auth.revision())
        .then(|| rejected(Kind::AuthOldRevision))
}

/// Whether a command is one etcd refuses while NOSPACE is active: a Put, a
/// Txn that puts, a LeaseGrant. Deletes (also in a txn), revokes,
/// compaction and the lease clock still run, so space can be freed.
pub(crate) fn grows_store(cmd: &Command) -> bool {
    match &cmd.op {
        Some(Op::Put(_)) | Some(Op::LeaseGrant(_)) => true,
        Some(Op::Txn(txn)) => txn_puts(txn),
        _ => false,
    }
}

/// Whether a txn has a Put in either branch, nested txns included (etcd
/// caps a txn whose puts cost space; it does not look into nested txns,
/// which would let a nested put through).
pub fn txn_puts(txn: &witan_proto::etcdserverpb::TxnRequest) -> bool {
    use witan_proto::etcdserverpb::request_op::Request;
    txn.success
        .iter()
        .chain(&txn.failure)
        .any(|op| match &op.request {
            Some(Request::RequestPut(_)) => true,
            Some(Request::RequestTxn(nested)) => txn_puts(nested),
            Some(Request::RequestDeleteRange(_)) | Some(Request::RequestRange(_)) | None => false,
        })
}

/// Alarm: GET lists the active alarms of a type (all for NONE); ACTIVATE
/// and DEACTIVATE answer with the alarm they changed, if any (etcd's
/// answers).
fn alarm(state: &mut KvState, req: &AlarmRequest) -> AlarmResponse {
    let alarms = match AlarmAction::try_from(req.action) {
        Ok(AlarmAction::Get) => state.alarms().list(req.alarm),
        Ok(AlarmAction::Activate) => state
            .alarms_mut()
            .activate(req.member_id, req.alarm)
            .into_iter()
            .collect(),
        Ok(AlarmAction::Deactivate) => state
            .alarms_mut()
            .deactivate(req.member_id, req.alarm)
            .into_iter()
            .collect(),
        Err(_) => Vec::new(),
    };
    AlarmResponse {
        header: header(state.revision()),
        alarms,
    }
}

/// The response of a rejected command.
fn rejected(kind: Kind) -> CommandResponse {
    CommandResponse {
        result: Some(Outcome::Error(ApplyError { kind: kind as i32 })),
    }
}

/// A response header with only the revision set (the API layer fills in
/// the cluster, member and term).
pub(super) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

/// A Put on its own: the lease must exist, then as in a Txn.
fn put<H: History>(
    state: &mut KvState,
    req: &PutRequest,
    history: &H,
    changes: &mut Vec<Change>,
) -> Result<PutResponse, MvccError> {
    state.check_lease(req.lease)?;
    let mut tw = WriteTxn::new(state, changes, history);
    let resp = put_op(&mut tw, req)?;
    tw.finish().commit(state, changes);
    Ok(resp)
}

/// A DeleteRange on its own.
fn delete_range<H: History>(
    state: &mut KvState,
    req: &DeleteRangeRequest,
    history: &H,
    changes: &mut Vec<Change>,
) -> Result<DeleteRangeResponse, MvccError> {
    let mut tw = WriteTxn::new(state, changes, history);
    let resp = delete_range_op(&mut tw, req);
    tw.finish().commit(state, changes);
    Ok(resp)
}

/// The Put step (lease already checked). `ignore_value` / `ignore_lease`
/// take the value / lease of the key as the command sees it, which must
/// exist.
pub(super) fn put_op<H: History>(
    tw: &mut WriteTxn<'_, H>,
    req: &PutRequest,
) -> Result<PutResponse, MvccError> {
    let needs_prev = req.ignore_value || req.ignore_lease;
    let prev = if needs_prev || req.prev_kv {
        tw.get(&req.key)
    } else {
        None
    };
    if needs_prev && prev.is_none() {
        return Err(MvccError::KeyNotFound);
    }
    let value = match &prev {
        Some(prev) if req.ignore_value => prev.value.clone(),
        _ => req.value.clone(),
    };
    let lease = match &prev {
        Some(prev) if req.ignore_lease => prev.lease,
        _ => req.lease,
    };
    let revision = tw.put(&req.key, Bytes::from(value), lease);
    Ok(PutResponse {
        header: header(revision),
        prev_kv: if req.prev_kv { prev } else { None },
    })
}

/// The DeleteRange step.
pub(super) fn delete_range_op<H: History>(
    tw: &mut WriteTxn<'_, H>,
    req: &DeleteRangeRequest,
) -> DeleteRangeResponse {
    let range = KeyRange::new(&req.key, &req.range_end);
    let prev_kvs = if req.prev_kv {
        tw.get_range(&range)
    } else {
        Vec::new()
    };
    let (deleted, revision) = tw.delete_range(&range);
    DeleteRangeResponse {
        header: header(revision),
        deleted,
        prev_kvs,
    }
}

/// Compact: moves the compaction revision (the storage layer drops the
/// history below it). Compacting at or below the compaction revision, or
/// beyond the current one, is rejected; `physical` changes nothing here.
fn compact(state: &mut KvState, req: &CompactionRequest) -> Result<CompactionResponse, MvccError> {
    if req.revision <= state.first_revision() {
        return Err(MvccError::Compacted);
    }
    if req.revision > state.revision() {
        return Err(MvccError::FutureRevision);
    }
    state.set_compacted(req.revision);
    Ok(CompactionResponse {
        header: header(state.revision()),
    })
}

/// LeaseGrant: the ID was chosen and the TTL checked before proposing.
fn lease_grant(
    state: &mut KvState,
    req: &LeaseGrantRequest,
) -> Result<LeaseGrantResponse, MvccError> {
    state.leases_mut().grant(req.id, req.ttl)?;
    Ok(LeaseGrantResponse {
        header: header(state.revision()),
        id: req.id,
        ttl: req.ttl,
        error: String::new(),
    })
}

/// LeaseRevoke: deletes every key attached to the lease at one revision.
/// A client's revoke deletes the keys attached when it applies, so the
/// user must be allowed to write each of them then (etcd checks the
/// lease's keys in its auth applier too).
fn lease_revoke_permitted(state: &KvState, cmd: &Command, id: i64) -> Result<(), MvccError> {
    let auth = state.auth();
    if cmd.auth_revision == 0 || !auth.enabled() {
        return Ok(());
    }
    let keys = state
        .leases()
        .info(id)
        .map(|info| info.keys)
        .unwrap_or_default();
    for key in keys {
        auth.check(&cmd.auth_user, &key, &[], Access::Write)?;
    }
    Ok(())
}

fn lease_revoke<H: History>(
    state: &mut KvState,
    req: &LeaseRevokeRequest,
    history: &H,
    changes: &mut Vec<Change>,
) -> Result<LeaseRevokeResponse, MvccError> {
    if !revoke(state, req.id, history, changes) {
        return Err(MvccError::LeaseNotFound);
    }
    Ok(LeaseRevokeResponse {
        header: header(state.revision()),
    })
}

/// Removes lease `id` and deletes its keys in one revision (none if it had
/// no keys); false if the lease does not exist.
fn revoke<H: History>(
    state: &mut KvState,
    id: i64,
    history: &H,
    changes: &mut Vec<Change>,
) -> bool {
    let Some(keys) = state.leases_mut().remove(id) else {
        return false;
    };
    let mut tw = WriteTxn::new(state, changes, history);
    for key in keys {
        tw.delete_range(&KeyRange::Key(key.to_vec()));
    }
    tw.finish().commit(state, changes);
    true
}

/// LeaseKeepAlive: a TTL per lease, 0 for one that does not exist (as etcd).
fn lease_keep_alive(state: &mut KvState, req: &LeaseKeepAlive) -> LeaseKeepAliveResult {
    let revision = state.revision();
    let responses = req
        .ids
        .iter()
        .map(|id| LeaseKeepAliveResponse {
            header: header(revision),
            id: *id,
            ttl: state.leases_mut().keep_alive(*id).unwrap_or(0),
        })
        .collect();
    LeaseKeepAliveResult { responses }
}

/// LeaseTick: advances the lease clock.
fn lease_tick(state: &mut KvState, req: &LeaseTick) -> LeaseTickResult {
    let elapsed = i64::try_from(req.elapsed_ms).unwrap_or(i64::MAX);
    state.leases_mut().tick(elapsed);
    let clock = state.leases().clock_ms();
    state.auth_mut().prune_tokens(clock);
    LeaseTickResult {
        clock_ms: state.leases().clock_ms(),
    }
}

/// LeaseExpire: revokes each listed lease that is still expired (a
/// keepalive may have been applied since the leader chose it).
fn lease_expire<H: History>(
    state: &mut KvState,
    req: &LeaseExpire,
    history: &H,
    changes: &mut Vec<Change>,
) -> LeaseExpireResult {
    let mut revoked = Vec::new();
    for id in &req.ids {
        if state.leases().is_expired(*id) && revoke(state, *id, history, changes) {
            revoked.push(*id);
        }
    }
    LeaseExpireResult { revoked }
}
