//! Disaster recovery: checking snapshot files and building data
//! directories of a new cluster from one (`witanctl snapshot status` and
//! `witanctl snapshot restore` call these).
//!
//! A snapshot file is what `Maintenance.Snapshot` streams and `etcdctl
//! snapshot save` / `witanctl snapshot save` write: a sqlite copy of a
//! member's `state.db` followed by the sha256 of those bytes (32 bytes), as
//! etcd appends to its bolt database.
//!
//! Restoring a cluster (every member lost):
//! 1. for each member of the new cluster, call [`restore_snapshot`] with
//!    the same snapshot, the same `initial_cluster` and
//!    `initial_cluster_token`, and that member's `name`, `data_dir` and
//!    `initial_advertise_peer_urls`;
//! 2. start every member with `witan --initial-cluster-state new` and the
//!    same `--name`, `--data-dir`, `--initial-cluster`,
//!    `--initial-cluster-token` and `--initial-advertise-peer-urls`.
//!
//! The new cluster holds every key at the saved revision, with its
//! versions and create / mod revisions, the history that compaction had
//! kept, the compaction revision and the leases (kept, like etcd: their
//! remaining TTLs continue from the saved lease clock once a leader ticks
//! it). It has a new membership and a new raft log; the old cluster's
//! alarms are dropped.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, ConfigError};
use crate::storage::{self, DbError};

/// Length of the sha256 trailer of a snapshot file.
const HASH_BYTES: u64 = 32;
/// Name of the temporary copy of the database inside the new data dir.
const TEMP_NAME: &str = "restore-snapshot.db.tmp";

/// Where and as whom to restore: one member of the new cluster. The names
/// match etcd's and witan's flags of the same meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The member's data directory to create (`--data-dir`); must not
    /// exist or be empty.
    pub data_dir: PathBuf,
    /// The member's name (`--name`).
    pub name: String,
    /// Every member of the new cluster, `name=peer-url,...`
    /// (`--initial-cluster`).
    pub initial_cluster: String,
    /// The new cluster's token (`--initial-cluster-token`).
    pub initial_cluster_token: String,
    /// This member's peer URLs (`--initial-advertise-peer-urls`); must be
    /// its URLs in `initial_cluster`.
    pub initial_advertise_peer_urls: Vec<String>,
}

/// What a restore installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The revision the snapshot was taken at (the new cluster's first).
    pub revision: i64,
    /// The compaction revision it carries.
    pub compact_revision: i64,
    /// Live keys at `revision`.
    pub keys: u64,
    /// Size of the snapshot's database, in bytes.
    pub size_bytes: u64,
}

/// What a snapshot file holds (`snapshot status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// Hash of the saved state: equals `Maintenance.Hash` of the member it
    /// was taken from, at that revision.
    pub hash: u32,
    /// The revision it was taken at.
    pub revision: i64,
    /// Live keys at `revision`.
    pub total_keys: u64,
    /// Size of the snapshot's database, in bytes.
    pub total_size: u64,
}

/// Why a snapshot could not be read or restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Reading the snapshot or writing the data directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is too short to hold a database and its checksum.
    #[error("{0}: not a snapshot file (too short to hold a database and its sha256)")]
    TooShort(PathBuf),
    /// The sha256 trailer does not match the data: the file is truncated
    /// or damaged.
    #[error("{0}: snapshot checksum mismatch (the file is damaged or incomplete; save it again)")]
    BadChecksum(PathBuf),
    /// The data is not a witan state database (an etcd bolt snapshot, or
    /// some other file).
    #[error(
        "{path}: not a witan snapshot ({source}); etcd's snapshots restore with etcdctl, not witan"
    )]
    NotWitanSnapshot {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: DbError,
    },
    /// The data directory exists and holds files.
    #[error("data dir {0} exists and is not empty; restore into a new directory")]
    DataDirNotEmpty(PathBuf),
    /// The options do not describe a valid member of a new cluster.
    #[error("invalid restore options: {0}")]
    Options(#[from] ConfigError),
    /// `initial_advertise_peer_urls` differ from this member's URLs in
    /// `initial_cluster`.
    #[error("--initial-advertise-peer-urls {advertised:?} do not match {name}'s URLs in --initial-cluster {in_cluster:?}")]
    PeerUrlsMismatch {
        /// The member's name.
        name: String,
        /// The advertised URLs.
        advertised: Vec<String>,
        /// Its URLs in the initial cluster.
        in_cluster: Vec<String>,
    },
    /// Writing the new state database failed.
    #[error("writing the restored state into {path}: {source}")]
    Install {
        /// The data directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: DbError,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a snapshot file (checksum, database integrity, schema) and
/// describes what it holds.
pub async fn snapshot_status(snapshot: &Path) -> Result<SnapshotStatus, RestoreError> {
    let temp = std::env::temp_dir().join(format!("{TEMP_NAME}-{}", uuid::Uuid::new_v4().simple()));
    let result = async {
        let size = extract(snapshot, &temp).await?;
        let saved = inspect(snapshot, &temp).await?;
        Ok(SnapshotStatus {
            hash: saved.hash,
            revision: saved.revision,
            total_keys: saved.keys,
            total_size: size,
        })
    }
    .await;
    remove_quietly(&temp).await;
    result
}

/// Builds `options.data_dir` for member `options.name` of a new cluster
/// from the snapshot file `snapshot` (see the module docs for the whole
/// procedure). Verifies the sha256 trailer and the database first; on
/// failure nothing is left in the data directory.
pub async fn restore_snapshot(
    snapshot: &Path,
    options: &RestoreOptions,
) -> Result<RestoreSummary, RestoreError> {
    check_options(options)?;
    let data_dir = &options.data_dir;
    let created = prepare_data_dir(data_dir).await?;
    let temp = data_dir.join(TEMP_NAME);
    let result = async {
        let size = extract(snapshot, &temp).await?;
        let saved = inspect(snapshot, &temp).await?;
        storage::install_saved_state(&temp, data_dir)
            .await
            .map_err(|source| RestoreError::Install {
                path: data_dir.clone(),
                source,
            })?;
        Ok(RestoreSummary {
            revision: saved.revision,
            compact_revision: saved.compact_revision,
            keys: saved.keys,
            size_bytes: size,
        })
    }
    .await;
    remove_quietly(&temp).await;
    match &result {
        Ok(summary) => tracing::info!(
            data_dir = %data_dir.display(),
            revision = summary.revision,
            keys = summary.keys,
            "restored snapshot"
        ),
        Err(_) => clean_up(data_dir, created).await,
    }
    result
}

/// Validates the options as the member's flags would be.
fn check_options(options: &RestoreOptions) -> Result<(), RestoreError> {
    let mut config = Config::defaults();
    config.name = options.name.clone();
    config.initial_cluster = Some(options.initial_cluster.clone());
    config.initial_cluster_token = options.initial_cluster_token.clone();
    config.initial_advertise_peer_urls = options.initial_advertise_peer_urls.clone();
    config.validate()?;
    let members = config.initial_members()?;
    let in_cluster = members
        .get(&options.name)
        .map(|m| m.peer_urls.clone())
        .unwrap_or_default();
    let mut advertised = options.initial_advertise_peer_urls.clone();
    let mut listed = in_cluster.clone();
    advertised.sort();
    listed.sort();
    if advertised != listed {
        return Err(RestoreError::PeerUrlsMismatch {
            name: options.name.clone(),
            advertised: options.initial_advertise_peer_urls.clone(),
            in_cluster,
        });
    }
    Ok(())
}

/// Creates the data dir (or accepts an empty one); whether it was created.
async fn prepare_data_dir(dir: &Path) -> Result<bool, RestoreError> {
    match tokio::fs::read_dir(dir).await {
        Ok(mut entries) => {
            if entries.next_entry().await.map_err(io_error(dir))?.is_some() {
                return Err(RestoreError::DataDirNotEmpty(dir.to_path_buf()));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io_error(dir))?;
            Ok(true)
        }
        Err(e) => Err(io_error(dir)(e)),
    }
}

/// Copies the database part of the snapshot file into `out`, checking the
/// sha256 trailer on the way; returns the database's size.
/// How much of the snapshot file one read copies.
const RESTORE_CHUNK_BYTES: usize = 256 * 1024;

async fn extract(snapshot: &Path, out: &Path) -> Result<u64, RestoreError> {
    let mut input = tokio::fs::File::open(snapshot)
        .await
        .map_err(io_error(snapshot))?;
    let len = input.metadata().await.map_err(io_error(snapshot))?.len();
    if len <= HASH_BYTES {
        return Err(RestoreError::TooShort(snapshot.to_path_buf()));
    }
    let data_len = len - HASH_BYTES;
    let mut output = tokio::fs::File::create(out).await.map_err(io_error(out))?;
    let mut hasher = Sha256::new();
    let mut chunk = Vec::with_capacity(RESTORE_CHUNK_BYTES);
    let mut left = data_len;
    while left > 0 {
        chunk.clear();
        // `take` stops the read before the trailing hash, without slicing.
        let n = (&mut input)
            .take(left.min(RESTORE_CHUNK_BYTES as u64))
            .read_to_end(&mut chunk)
            .await
            .map_err(io_error(snapshot))?;
        if n == 0 {
            return Err(RestoreError::TooShort(snapshot.to_path_buf()));
        }
        hasher.update(&chunk);
        output.write_all(&chunk).await.map_err(io_error(out))?;
        left = left.saturating_sub(n as u64);
    }
    let mut trailer = [0u8; HASH_BYTES as usize];
    input
        .read_exact(&mut trailer)
        .await
        .map_err(io_error(snapshot))?;
    if hasher.finalize().as_slice() != trailer {
        return Err(RestoreError::BadChecksum(snapshot.to_path_buf()));
    }
    output.flush().await.map_err(io_error(out))?;
    output.sync_all().await.map_err(io_error(out))?;
    Ok(data_len)
}

async fn inspect(snapshot: &Path, db: &Path) -> Result<storage::SavedState, RestoreError> {
    storage::inspect_saved_state(db)
        .await
        .map_err(|source| RestoreError::NotWitanSnapshot {
            path: snapshot.to_path_buf(),
            source,
        })
}

async fn remove_quietly(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = tokio::fs::remove_file(PathBuf::from(name)).await;
    }
}

/// Removes what a failed restore wrote: the whole directory if it created
/// it, else its contents.
async fn clean_up(dir: &Path, created: bool) {
    if created {
        if let Err(e) = tokio::fs::remove_dir_all(dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a failed restore");
        }
        return;
    }
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let removed = if path.is_dir() {
                tokio::fs::remove_dir_all(&path).await
            } else {
                tokio::fs::remove_file(&path).await
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a failed restore's file");
            }
        }
    }
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
