//! Hashes of the stored state, for corruption checks across members
//! (etcd's Hash and HashKV).
//!
//! Both read `state.db` itself, in one read transaction, in a fixed order
//! (history by revision and sub-revision, leases by id), so two members
//! holding the same data on disk get the same hash and a member whose file
//! diverged does not: the in-memory state is not consulted. Every field of
//! a row goes into the hash with its length, so no two different row
//! sequences feed the hash the same bytes. The checksum is CRC-32C
//! (Castagnoli), etcd's choice for the same job.

use futures::TryStreamExt;
use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use super::error::DbError;
use super::sqlite;
use super::state_db::{load_meta, META_ALARMS, META_AUTH, META_LEASE_CLOCK};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A hash and the revisions it was taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateHash {
    /// The CRC-32C of the hashed data.
    pub hash: u32,
    /// The revision hashed (HashKV: the requested one, or the current one
    /// for 0; Hash: the stored state's current revision).
    pub revision: i64,
    /// The stored state's current revision.
    pub current_revision: i64,
    /// The compaction revision of the stored state.
    pub compact_revision: i64,
}

/// Why a HashKV could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashKvError {
    /// The revision is at or below the compaction revision (etcd refuses
    /// it: part of what it covered is gone).
    #[error("required revision has been compacted")]
    Compacted,
    /// The revision is above the current revision.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// Reading the state failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The stored current and compaction revisions (0, 0 for a fresh file).
async fn revisions(conn: &mut SqliteConnection) -> Result<(i64, i64), DbError> {
    let meta = load_meta(conn).await?;
    Ok(meta
        .revisions
        .map_or((1, 0), |r| (r.revision, r.compact_revision)))
}

/// etcd's HashKV: a hash of every key-value version with a revision up to
/// `revision` (0: the current one) that compaction kept. Run inside a read
/// transaction.
pub(crate) async fn hash_kv(
    conn: &mut SqliteConnection,
    revision: i64,
) -> Result<StateHash, HashKvError> {
    let (current, compact) = revisions(conn).await?;
    if revision > 0 && revision <= compact {
        return Err(HashKvError::Compacted);
    }
    if revision > current {
        return Err(HashKvError::FutureRevision);
    }
    let revision = if revision == 0 { current } else { revision };
    let mut digest = CRC.digest();
    digest.update(b"kv");
    hash_history(conn, revision, &mut digest).await?;
    Ok(StateHash {
        hash: digest.finalize(),
        revision,
        current_revision: current,
        compact_revision: compact,
    })
}

/// etcd's Hash: a hash of the whole replicated state as stored (every
/// history row, every lease, the revisions, the lease clock and the
/// alarms). Members that applied the same entries agree. Run inside a read
/// transaction.
pub(crate) async fn hash_state(conn: &mut SqliteConnection) -> Result<StateHash, DbError> {
    let (current, compact) = revisions(conn).await?;
    let mut digest = CRC.digest();
    digest.update(b"state");
    hash_history(conn, current, &mut digest).await?;
    let mut leases = sqlx::query("SELECT id, ttl, expires_at, refreshed FROM leases ORDER BY id")
        .fetch(&mut *conn);
    while let Some(row) = leases.try_next().await? {
        let id: i64 = row.try_get(0)?;
        let ttl: i64 = row.try_get(1)?;
        let expires: Option<i64> = row.try_get(2)?;
        let refreshed: i64 = row.try_get(3)?;
        digest.update(&id.to_le_bytes());
        digest.update(&ttl.to_le_bytes());
        digest.update(&expires.map_or([0xff; 9], tagged));
        digest.update(&refreshed.to_le_bytes());
    }
    drop(leases);
    digest.update(&current.to_le_bytes());
    digest.update(&compact.to_le_bytes());
    let clock = sqlite::meta_int(&mut *conn, META_LEASE_CLOCK)
        .await?
        .unwrap_or(0);
    digest.update(&clock.to_le_bytes());
    let alarms = sqlite::meta_blob(&mut *conn, META_ALARMS)
        .await?
        .unwrap_or_default();
    field(&mut digest, &alarms);
    // Only once auth was used, so the hash of a store that never had it
    // stays what earlier versions computed.
    if let Some(auth) = sqlite::meta_blob(&mut *conn, META_AUTH).await? {
        field(&mut digest, &auth);
    }
    Ok(StateHash {
        hash: digest.finalize(),
        revision: current,
        current_revision: current,
        compact_revision: compact,
    })
}

fn tagged(value: i64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[1..].copy_from_slice(&value.to_le_bytes());
    out
}

/// A variable-length field: its length first.
fn field(digest: &mut crc::Digest<'_, u32>, bytes: &[u8]) {
    digest.update(&(bytes.len() as u64).to_le_bytes());
    digest.update(bytes);
}

async fn hash_history(
    conn: &mut SqliteConnection,
    revision: i64,
    digest: &mut crc::Digest<'_, u32>,
) -> Result<(), DbError> {
    let mut rows = sqlx::query(
        "SELECT revision, sub, key, create_revision, version, lease, value, deleted
         FROM history WHERE revision <= ? ORDER BY revision, sub",
    )
    .bind(revision)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        for i in [0, 1] {
            digest.update(&row.try_get::<i64, _>(i)?.to_le_bytes());
        }
        field(digest, row.try_get::<&[u8], _>(2)?);
        for i in [3, 4, 5] {
            digest.update(&row.try_get::<i64, _>(i)?.to_le_bytes());
        }
        field(digest, row.try_get::<&[u8], _>(6)?);
        digest.update(&[u8::from(row.try_get::<bool, _>(7)?)]);
    }
    Ok(())
}
