//! Which keys a request reads and writes, checked against the caller's
//! permissions (etcd's `checkTxnReqsPermission` and friends): every key a
//! txn touches in either branch, its compares, nested txns included; the
//! keys a recipe (lock, election, barrier, semaphore) keeps under its name.

use witan_proto::etcdserverpb::{
    request_op::Request as TxnOp, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest,
};

use crate::auth::Caller;
use crate::mvcc::{Access, AuthError, AuthStore};

/// A Range needs READ on its keys.
pub fn check_range(caller: &Caller, auth: &AuthStore, req: &RangeRequest) -> Result<(), AuthError> {
    caller.check(auth, &req.key, &req.range_end, Access::Read)
}

/// A Put needs WRITE on its key, and READ when it returns the previous
/// value.
pub fn check_put(caller: &Caller, auth: &AuthStore, req: &PutRequest) -> Result<(), AuthError> {
    caller.check(auth, &req.key, &[], Access::Write)?;
    if req.prev_kv {
        caller.check(auth, &req.key, &[], Access::Read)?;
    }
    Ok(())
}

/// A DeleteRange needs WRITE on its keys, and READ when it returns the
/// deleted values.
pub fn check_delete(
    caller: &Caller,
    auth: &AuthStore,
    req: &DeleteRangeRequest,
) -> Result<(), AuthError> {
    caller.check(auth, &req.key, &req.range_end, Access::Write)?;
    if req.prev_kv {
        caller.check(auth, &req.key, &req.range_end, Access::Read)?;
    }
    Ok(())
}

/// A Txn needs READ on what it compares, and what each op of both
/// branches needs, whichever branch runs.
pub fn check_txn(caller: &Caller, auth: &AuthStore, req: &TxnRequest) -> Result<(), AuthError> {
    for compare in &req.compare {
        caller.check(auth, &compare.key, &compare.range_end, Access::Read)?;
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(TxnOp::RequestRange(r)) => check_range(caller, auth, r)?,
            Some(TxnOp::RequestPut(r)) => check_put(caller, auth, r)?,
            Some(TxnOp::RequestDeleteRange(r)) => check_delete(caller, auth, r)?,
            Some(TxnOp::RequestTxn(r)) => check_txn(caller, auth, r)?,
            None => {}
        }
    }
    Ok(())
}

/// A lock, election, barrier or semaphore named `name` reads and writes
/// the key `name` and the keys under `name/`: the caller needs READ and
/// WRITE on all of them.
pub fn check_recipe(caller: &Caller, auth: &AuthStore, name: &[u8]) -> Result<(), AuthError> {
    let end = witan_recipes::keys::prefix_end(name);
    caller.check(auth, name, &end, Access::Read)?;
    caller.check(auth, name, &end, Access::Write)
}

/// Reading who holds a recipe `name` (an election's leader).
pub fn check_recipe_read(caller: &Caller, auth: &AuthStore, name: &[u8]) -> Result<(), AuthError> {
    let end = witan_recipes::keys::prefix_end(name);
    caller.check(auth, name, &end, Access::Read)
}

/// Releasing (deleting) or updating a held key.
pub fn check_held_key(caller: &Caller, auth: &AuthStore, key: &[u8]) -> Result<(), AuthError> {
    caller.check(auth, key, &[], Access::Write)
}

#[cfg(test)]
mod tests {
    use witan_proto::authpb::permission::Type as PermType;
    use witan_proto::authpb::{Permission, Role, User};
    use witan_proto::etcdserverpb::{Compare, RequestOp};
    use witan_proto::raftpb::AuthState;

    use super::*;

    /// Auth on; alice may read /app/ and write /app/w/.
    fn store() -> AuthStore {
        let perm = |kind: PermType, key: &str, end: &str| Permission {
            perm_type: kind as i32,
            key: key.into(),
            range_end: end.into(),
        };
        AuthStore::from_state(AuthState {
            enabled: true,
            revision: 5,
            users: vec![User {
                name: b"alice".to_vec(),
                roles: vec!["app".into()],
                ..User::default()
            }],
            roles: vec![Role {
                name: b"app".to_vec(),
                key_permission: vec![
                    perm(PermType::Read, "/app/", "/app0"),
                    perm(PermType::Write, "/app/w/", "/app/w0"),
                ],
            }],
            tokens: Vec::new(),
        })
    }

    fn alice() -> Caller {
        Caller {
            user: Some("alice".into()),
            revision: 5,
        }
    }

    fn put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(TxnOp::RequestPut(PutRequest {
                key: key.into(),
                ..PutRequest::default()
            })),
        }
    }

    #[test]
    fn a_txn_is_checked_in_both_branches_and_its_compares() {
        let auth = store();
        let allowed = TxnRequest {
            success: vec![put("/app/w/a")],
            failure: vec![put("/app/w/b")],
            ..TxnRequest::default()
        };
        assert_eq!(check_txn(&alice(), &auth, &allowed), Ok(()));
        let bad_failure = TxnRequest {
            failure: vec![put("/secret/x")],
            ..allowed.clone()
        };
        assert_eq!(
            check_txn(&alice(), &auth, &bad_failure),
            Err(AuthError::PermissionDenied)
        );
        let bad_compare = TxnRequest {
            compare: vec![Compare {
                key: b"/secret/x".to_vec(),
                ..Compare::default()
            }],
            ..allowed.clone()
        };
        assert_eq!(
            check_txn(&alice(), &auth, &bad_compare),
            Err(AuthError::PermissionDenied)
        );
        let nested = TxnRequest {
            success: vec![RequestOp {
                request: Some(TxnOp::RequestTxn(bad_failure)),
            }],
            ..TxnRequest::default()
        };
        assert_eq!(
            check_txn(&alice(), &auth, &nested),
            Err(AuthError::PermissionDenied)
        );
    }

    #[test]
    fn prev_kv_needs_read_too() {
        let auth = store();
        let mut req = PutRequest {
            key: b"/app/w/a".to_vec(),
            ..PutRequest::default()
        };
        assert_eq!(check_put(&alice(), &auth, &req), Ok(()));
        req.prev_kv = true;
        assert_eq!(check_put(&alice(), &auth, &req), Ok(()));
        let outside_read = DeleteRangeRequest {
            key: b"/app0".to_vec(),
            prev_kv: true,
            ..DeleteRangeRequest::default()
        };
        assert_eq!(
            check_delete(&alice(), &auth, &outside_read),
            Err(AuthError::PermissionDenied)
        );
    }

    #[test]
    fn no_user_while_auth_is_on_is_etcds_user_empty() {
        let nobody = Caller {
            user: None,
            revision: 5,
        };
        let req = RangeRequest {
            key: b"/app/x".to_vec(),
            ..RangeRequest::default()
        };
        assert_eq!(
            check_range(&nobody, &store(), &req),
            Err(AuthError::UserEmpty)
        );
        assert_eq!(check_range(&Caller::member(), &store(), &req), Ok(()));
    }
}
