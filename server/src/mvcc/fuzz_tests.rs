//! Fuzz target of request validation and the MVCC apply path: random
//! sequences of puts, deletes, txns, compactions and lease grants and
//! revokes, valid and not, are validated as the API does, applied to the
//! real `KvState`, and checked after every step against a model (a map of
//! key → its current version, plus every past revision's map): revisions
//! only grow, by one per changing command; ranges now and at any past
//! revision equal the model's; compacted revisions are refused; and a
//! refused command changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use witan_proto::mvccpb::KeyValue;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::Command;

use super::testing::{compact, rejection, Store};
use super::{validate_delete_range, validate_put, validate_txn, KeyRange, MvccError};
use crate::fuzzing;

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    Put {
        key: Vec<u8>,
        value: u8,
        lease: i64,
    },
    Delete {
        key: Vec<u8>,
        end: Vec<u8>,
    },
    /// `if version(key) == version then put else delete`.
    Txn {
        key: Vec<u8>,
        version: i64,
        value: u8,
    },
    Compact(i64),
    Grant(i64),
    Revoke(i64),
    /// A read at a revision (relative to the current one when negative).
    ReadAt(i64),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::sample::select(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..3),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (key(), any::<u8>(), prop_oneof![4 => Just(0i64), 2 => 1i64..3, 1 => -1i64..1])
            .prop_map(|(key, value, lease)| Step::Put { key, value, lease }),
        2 => (key(), prop_oneof![Just(Vec::new()), Just(vec![0u8]), key()])
            .prop_map(|(key, end)| Step::Delete { key, end }),
        2 => (key(), 0i64..3, any::<u8>()).prop_map(|(key, version, value)| Step::Txn { key, version, value }),
        1 => (-3i64..20).prop_map(Step::Compact),
        1 => (0i64..3).prop_map(Step::Grant),
        1 => (0i64..3).prop_map(Step::Revoke),
        2 => (-20i64..20).prop_map(Step::ReadAt),
    ]
}

/// What the store should hold.
#[derive(Debug, Default, Clone)]
struct Model {
    revision: i64,
    compacted: i64,
    live: BTreeMap<Vec<u8>, KeyValue>,
    /// The live map after each revision (index: revision - 1).
    past: Vec<BTreeMap<Vec<u8>, KeyValue>>,
    leases: BTreeSet<i64>,
}

impl Model {
    fn new() -> Self {
        Model {
            revision: 1,
            past: vec![BTreeMap::new()],
            ..Model::default()
        }
    }

    /// Starts a new revision: the caller then changes `live`.
    fn bump(&mut self) -> i64 {
        self.revision += 1;
        self.revision
    }

    fn seal(&mut self) {
        while self.past.len() < self.revision as usize {
            self.past.push(self.live.clone());
        }
    }

    fn put(&mut self, key: &[u8], value: u8, lease: i64) {
        let rev = self.bump();
        let kv = match self.live.get(key) {
            Some(old) => KeyValue {
                mod_revision: rev,
                version: old.version + 1,
                value: vec![value],
                lease,
                ..old.clone()
            },
            None => KeyValue {
                key: key.to_vec(),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                value: vec![value],
                lease,
            },
        };
        self.live.insert(key.to_vec(), kv);
        self.seal();
    }

    fn delete(&mut self, range: &KeyRange) -> bool {
        let doomed: Vec<Vec<u8>> = self
            .live
            .keys()
            .filter(|k| range.contains(k))
            .cloned()
            .collect();
        if doomed.is_empty() {
            return false;
        }
        self.bump();
        for k in doomed {
            self.live.remove(&k);
        }
        self.seal();
        true
    }
}

fn put_op(key: &[u8], value: u8, lease: i64) -> PutRequest {
    PutRequest {
        key: key.to_vec(),
        value: vec![value],
        lease,
        ..PutRequest::default()
    }
}

fn command(op: Op) -> Command {
    Command {
        op: Some(op),
        ..Default::default()
    }
}

async fn check_range(store: &Store, model: &Model, revision: i64) -> Result<(), TestCaseError> {
    let req = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision,
        ..RangeRequest::default()
    };
    let got = store.range(req).await;
    let current = revision == 0 || revision == model.revision;
    if revision > model.revision {
        prop_assert!(matches!(got, Err(MvccError::FutureRevision)), "{got:?}");
    } else if revision != 0 && revision < model.compacted {
        prop_assert!(matches!(got, Err(MvccError::Compacted)), "{got:?}");
    } else {
        let want: Vec<KeyValue> = if current {
            model.live.values().cloned().collect()
        } else {
            let at = usize::try_from(revision.max(1) - 1).unwrap_or(0);
            model
                .past
                .get(at)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        };
        let got = got.map_err(|e| TestCaseError::fail(format!("range at {revision}: {e}")))?;
        prop_assert_eq!(got.kvs, want, "range at {}", revision);
        prop_assert_eq!(got.header.map(|h| h.revision), Some(model.revision));
    }
    Ok(())
}

async fn run_steps(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut store = Store::default();
    let mut model = Model::new();
    for step in steps {
        let before = store.state.revision();
        match step.clone() {
            Step::Put { key, value, lease } => {
                let req = put_op(&key, value, lease);
                if validate_put(&req).is_err() {
                    prop_assert!(key.is_empty(), "refused {req:?}");
                    continue;
                }
                let resp = store.apply(command(Op::Put(req))).await;
                if lease != 0 && !model.leases.contains(&lease) {
                    prop_assert!(
                        rejection(&resp).is_some(),
                        "put with lease {lease}: {resp:?}"
                    );
                } else {
                    prop_assert!(rejection(&resp).is_none(), "{resp:?}");
                    model.put(&key, value, lease);
                }
            }
            Step::Delete { key, end } => {
                let req = DeleteRangeRequest {
                    key: key.clone(),
                    range_end: end.clone(),
                    prev_kv: false,
                };
                if validate_delete_range(&req).is_err() {
                    continue;
                }
                let resp = store.apply(command(Op::DeleteRange(req))).await;
                prop_assert!(rejection(&resp).is_none(), "{resp:?}");
                model.delete(&KeyRange::new(&key, &end));
            }
            Step::Txn {
                key,
                version,
                value,
            } => {
                let req = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Version as i32,
                        key: key.clone(),
                        target_union: Some(TargetUnion::Version(version)),
                        range_end: Vec::new(),
                    }],
                    success: vec![RequestOp {
                        request: Some(Request::RequestPut(put_op(&key, value, 0))),
                    }],
                    failure: vec![RequestOp {
                        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                            key: key.clone(),
                            ..DeleteRangeRequest::default()
                        })),
                    }],
                };
                if validate_txn(&req, 128).is_err() {
                    prop_assert!(key.is_empty(), "refused {req:?}");
                    continue;
                }
                let resp = store.apply(command(Op::Txn(req))).await;
                prop_assert!(rejection(&resp).is_none(), "{resp:?}");
                let current = model.live.get(&key).map_or(0, |kv| kv.version);
                if current == version {
                    model.put(&key, value, 0);
                } else {
                    model.delete(&KeyRange::new(&key, &[]));
                }
            }
            Step::Compact(revision) => {
                let resp = store.apply(compact(revision)).await;
                if revision > model.revision {
                    prop_assert!(rejection(&resp).is_some(), "compact {revision}: {resp:?}");
                } else if revision > model.compacted {
                    prop_assert!(rejection(&resp).is_none(), "compact {revision}: {resp:?}");
                    model.compacted = revision;
                } else if revision > 0 {
                    prop_assert!(rejection(&resp).is_some(), "compact {revision}: {resp:?}");
                }
                // Compacting at 0 or below (nothing to remove) may be
                // accepted or refused; either way nothing changes (checked
                // below).
            }
            Step::Grant(id) => {
                let resp = store
                    .apply(command(Op::LeaseGrant(LeaseGrantRequest { ttl: 60, id })))
                    .await;
                if model.leases.contains(&id) || id == 0 {
                    prop_assert!(rejection(&resp).is_some(), "grant {id}: {resp:?}");
                } else if rejection(&resp).is_none() {
                    model.leases.insert(id);
                }
            }
            Step::Revoke(id) => {
                let resp = store
                    .apply(command(Op::LeaseRevoke(LeaseRevokeRequest { id })))
                    .await;
                if !model.leases.remove(&id) {
                    prop_assert!(rejection(&resp).is_some(), "revoke {id}: {resp:?}");
                } else {
                    prop_assert!(rejection(&resp).is_none(), "revoke {id}: {resp:?}");
                    let held: Vec<Vec<u8>> = model
                        .live
                        .values()
                        .filter(|kv| kv.lease == id)
                        .map(|kv| kv.key.clone())
                        .collect();
                    if !held.is_empty() {
                        model.bump();
                        for k in held {
                            model.live.remove(&k);
                        }
                        model.seal();
                    }
                }
            }
            Step::ReadAt(at) => {
                let revision = if at < 0 { model.revision + at } else { at };
                check_range(&store, &model, revision.max(0)).await?;
            }
        }
        let after = store.state.revision();
        prop_assert!(after >= before, "revision went back after {step:?}");
        prop_assert_eq!(after, model.revision, "after {:?}", step);
        prop_assert_eq!(store.state.compact_revision(), model.compacted);
        check_range(&store, &model, 0).await?;
    }
    Ok(())
}

#[test]
fn random_commands_against_the_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    fuzzing::run(
        "mvcc apply vs model",
        256,
        prop::collection::vec(step(), 1..40),
        |steps| rt.block_on(run_steps(steps)),
    );
}

/// Found by the fuzz target: lease 0 ("no lease") could be granted by a
/// forwarded command, and revoking it deleted every key without a lease.
#[tokio::test]
async fn lease_zero_is_never_granted_so_revoking_it_deletes_nothing() {
    let mut store = Store::default();
    store.put("a", "1").await;
    let grant = store
        .apply(command(Op::LeaseGrant(LeaseGrantRequest {
            ttl: 60,
            id: 0,
        })))
        .await;
    assert_eq!(
        rejection(&grant),
        Some(witan_proto::raftpb::apply_error::Kind::LeaseNotFound)
    );
    let revoke = store
        .apply(command(Op::LeaseRevoke(LeaseRevokeRequest { id: 0 })))
        .await;
    assert!(rejection(&revoke).is_some());
    let all = store.range(super::testing::range("a", "")).await.unwrap();
    assert_eq!(all.kvs.len(), 1);
    assert_eq!(store.state.revision(), 2);
}
