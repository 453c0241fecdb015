//! `KvState`: the live keys at the current revision (the in-memory index),
//! the revision counters, and the entry points that apply a command and
//! serve a Range.

use std::fmt;

use witan_proto::etcdserverpb::{RangeRequest, RangeResponse};
use witan_proto::mvccpb::KeyValue;
use witan_proto::raftpb::{Command, CommandResponse};

use super::alarms::Alarms;
use super::auth::AuthStore;
use super::leases::{Lease, LeaseTable};
use super::range::{self, Fetch};
use super::record::{LiveMap, Record};
use super::view::{resolve_revision, Past};
use super::{apply, Change, History, HistoryError, MvccError};

/// The key-value state at one revision.
///
/// Cloning is O(1) (the live keys are a persistent map): the storage layer
/// publishes clones to readers.
#[derive(Clone, PartialEq)]
pub struct KvState {
    /// Every live key at `revision`, each key stored once (as the map key).
    live: LiveMap,
    /// The current revision.
    revision: i64,
    /// etcd's `compactMainRev`: the compaction revision, -1 until the
    /// first compaction. Kept apart from "0" because etcd accepts one
    /// compaction at revision 0 and reads at negative revisions inside a
    /// txn depend on it.
    first: i64,
    /// Every lease and the lease clock.
    leases: LeaseTable,
    /// The active alarms (replicated, like the keys).
    alarms: Alarms,
    /// Users, roles, permissions and tokens (replicated, like the keys).
    auth: AuthStore,
}

impl KvState {
    /// An empty store: revision 1, nothing compacted.
    pub fn new() -> Self {
        KvState {
            live: LiveMap::new(),
            revision: 1,
            first: -1,
            leases: LeaseTable::default(),
            alarms: Alarms::default(),
            auth: AuthStore::default(),
        }
    }

    /// Rebuilds the state from the live keys stored at `revision`.
    pub fn restore(
        keys: impl IntoIterator<Item = KeyValue>,
        revision: i64,
        compact_revision: i64,
    ) -> Self {
        KvState {
            live: keys.into_iter().map(Record::from_kv).collect(),
            revision,
            first: if compact_revision > 0 {
                compact_revision
            } else {
                -1
            },
            leases: LeaseTable::default(),
            alarms: Alarms::default(),
            auth: AuthStore::default(),
        }
    }

    /// Adds the persisted leases and lease clock to a restored state; the
    /// keys attached to each lease come from the live keys.
    pub fn with_leases(
        mut self,
        leases: impl IntoIterator<Item = (i64, Lease)>,
        clock_ms: i64,
    ) -> Self {
        let attached = self
            .live
            .iter()
            .filter(|(_, record)| record.lease != 0)
            .map(|(key, record)| (key.clone(), record.lease));
        self.leases = LeaseTable::restore(leases, clock_ms, attached);
        self
    }

    /// Adds the persisted alarms to a restored state.
    pub fn with_alarms(mut self, alarms: Alarms) -> Self {
        self.alarms = alarms;
        self
    }

    /// Adds the persisted auth store to a restored state.
    pub fn with_auth(mut self, auth: AuthStore) -> Self {
        self.auth = auth;
        self
    }

    /// The auth store.
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    /// The auth store, for the auth commands.
    pub(super) fn auth_mut(&mut self) -> &mut AuthStore {
        &mut self.auth
    }

    /// The active alarms.
    pub fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// The alarm table, for the Alarm command.
    pub(super) fn alarms_mut(&mut self) -> &mut Alarms {
        &mut self.alarms
    }

    /// The lease table.
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// The lease table, for the lease commands.
    pub(super) fn leases_mut(&mut self) -> &mut LeaseTable {
        &mut self.leases
    }

    /// Checks that a put may attach `lease` (0: no lease).
    pub(super) fn check_lease(&self, lease: i64) -> Result<(), MvccError> {
        self.leases.check(lease)
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The compaction revision (0 when nothing was compacted).
    pub fn compact_revision(&self) -> i64 {
        self.first.max(0)
    }

    /// The live key `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.live.get(key).map(|record| record.to_kv(key))
    }

    /// How many keys are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Every live key, in key order.
    pub fn iter(&self) -> impl Iterator<Item = KeyValue> + '_ {
        self.live.iter().map(|(key, record)| record.to_kv(key))
    }

    /// Applies one command. A rejection (compacted, key not found ...) is a
    /// `CommandResponse` carrying an `ApplyError` and changes nothing; only
    /// a failed history read is an `Err`. The changes the command made are
    /// appended to `changes`, which holds the changes of the earlier
    /// commands of the same batch (not yet in `history`).
    pub async fn apply<H: History>(
        &mut self,
        cmd: &Command,
        history: &H,
        changes: &mut Vec<Change>,
    ) -> Result<CommandResponse, HistoryError> {
        apply::apply(self, cmd, history, changes).await
    }

    /// Serves a Range request (outside a transaction) at this state.
    pub async fn range<H: History>(
        &self,
        req: &RangeRequest,
        history: &H,
    ) -> Result<RangeResponse, MvccError> {
        let fetch = Fetch::new(req);
        let revision = resolve_revision(fetch.revision, self.revision, self.first)?;
        let past = Past {
            live: &self.live,
            revision: self.revision,
            pending: &[],
            history,
        };
        let fetched = past.range(&fetch.range, revision, fetch.limit).await?;
        Ok(range::respond(req, fetched, self.revision))
    }

    /// The live keys.
    pub(super) fn live(&self) -> &LiveMap {
        &self.live
    }

    /// etcd's first readable revision: the compaction revision, -1 before
    /// any compaction.
    pub(super) fn first_revision(&self) -> i64 {
        self.first
    }

    /// Replaces the live keys with the result of a command that wrote at
    /// `revision`.
    pub(super) fn install(&mut self, live: LiveMap, revision: i64, changes: &[Change]) {
        self.live = live;
        self.revision = revision;
        self.leases.track(changes);
    }

    /// Moves the compaction revision (checked by the caller).
    pub(super) fn set_compacted(&mut self, revision: i64) {
        self.first = revision;
    }
}

impl Default for KvState {
    fn default() -> Self {
        KvState::new()
    }
}

impl fmt::Debug for KvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys can be many and large: show the counters only.
        f.debug_struct("KvState")
            .field("revision", &self.revision)
            .field("compact_revision", &self.first)
            .field("keys", &self.live.len())
            .field("alarms", &self.alarms)
            .field("auth_revision", &self.auth.revision())
            .finish()
    }
}
