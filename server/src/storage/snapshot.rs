//! `SnapshotStore`: the snapshot files under `<data_dir>/snapshots/`.
//!
//! A snapshot is a complete sqlite copy of `state.db` (`snapshot-<n>.db`)
//! plus its openraft metadata as a protobuf `witan.raft.v1.SnapshotMeta`
//! (`snapshot-<n>.meta`, which also carries the snapshot id). Files are
//! written under a temporary name, fsynced, and renamed; the `.meta` is
//! renamed last, so a snapshot exists exactly when its `.meta` does, and a
//! crash at any point leaves either the old snapshot or the new one (plus
//! temporary files that the next start removes).
//!
//! All changes go through [`SnapshotStore::lock`], so building, receiving
//! and installing never interleave their file operations.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use openraft::Snapshot;
use prost::Message;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{Mutex, MutexGuard};
use witan_proto::raftpb;

use super::error::DbError;
use super::sqlite::sync_dir;
use crate::raft::convert::{snapshot_meta_from_pb, snapshot_meta_to_pb};
use crate::raft::{SnapshotMeta, TypeConfig};

const TEMP_SUFFIX: &str = ".tmp";
const DATA_SUFFIX: &str = ".db";
const META_SUFFIX: &str = ".meta";
const PREFIX: &str = "snapshot-";

/// The snapshot directory.
#[derive(Debug)]
pub(crate) struct SnapshotStore {
    dir: PathBuf,
    state: Mutex<Snapshots>,
}

/// The snapshot files, under the store's lock.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: PathBuf,
    current: Option<StoredSnapshot>,
    /// Files handed out to receive a snapshot, not yet installed.
    receiving: Vec<PathBuf>,
}

/// A complete snapshot on disk.
#[derive(Debug, Clone)]
pub(crate) struct StoredSnapshot {
    pub meta: SnapshotMeta,
    /// The sqlite copy.
    pub data: PathBuf,
    meta_path: PathBuf,
}

impl SnapshotStore {
    /// Opens the directory (creating it), removes what an interrupted
    /// build, receive or publish left behind, and finds the current
    /// snapshot.
    pub async fn open(dir: &Path) -> Result<Self, DbError> {
        tokio::fs::create_dir_all(dir).await?;
        let mut found: Vec<StoredSnapshot> = Vec::new();
        let mut data_files: Vec<PathBuf> = Vec::new();
        let mut entries = tokio::fs::read_dir(dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(TEMP_SUFFIX) {
                tracing::info!(path = %path.display(), "removing an unfinished snapshot file");
                tokio::fs::remove_file(&path).await?;
            } else if name.ends_with(META_SUFFIX) {
                let bytes = tokio::fs::read(&path).await?;
                let meta = snapshot_meta_from_pb(&raftpb::SnapshotMeta::decode(bytes.as_slice())?)?;
                found.push(StoredSnapshot {
                    meta,
                    data: path.with_extension(&DATA_SUFFIX[1..]),
                    meta_path: path,
                });
            } else if name.ends_with(DATA_SUFFIX) {
                data_files.push(path);
            }
        }
        found.sort_by_key(|s| s.meta.last_log_id);
        let current = found.pop();
        if let Some(current) = &current {
            if !tokio::fs::try_exists(&current.data).await? {
                return Err(DbError::Missing("the data file of the current snapshot"));
            }
        }
        for old in found {
            remove_snapshot(&old).await?;
        }
        for data in data_files {
            if current.as_ref().is_none_or(|c| c.data != data)
                && tokio::fs::try_exists(&data).await?
            {
                tracing::info!(path = %data.display(), "removing a snapshot without metadata");
                tokio::fs::remove_file(&data).await?;
            }
        }
        if let Some(current) = &current {
            tracing::info!(meta = %current.meta, "found snapshot");
        }
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(Snapshots {
                dir: dir.to_path_buf(),
                current,
                receiving: Vec::new(),
            }),
        })
    }

    /// Takes the lock over the snapshot files.
    pub async fn lock(&self) -> MutexGuard<'_, Snapshots> {
        self.state.lock().await
    }

    /// A fresh temporary file name (removed on the next start if left).
    pub fn temp_path(&self, kind: &str) -> PathBuf {
        temp_path(&self.dir, kind)
    }
}

fn temp_path(dir: &Path, kind: &str) -> PathBuf {
    dir.join(format!(
        "{kind}-{}{TEMP_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ))
}

async fn remove_snapshot(s: &StoredSnapshot) -> Result<(), DbError> {
    // The metadata first: without it the data file is garbage that the
    // next start removes.
    remove_if_exists(&s.meta_path).await?;
    remove_if_exists(&s.data).await
}

async fn remove_if_exists(path: &Path) -> Result<(), DbError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

impl Snapshots {
    /// The current snapshot, if any.
    pub fn current(&self) -> Option<&StoredSnapshot> {
        self.current.as_ref()
    }

    /// Opens the current snapshot for reading.
    pub async fn open_current(&self) -> Result<Option<Snapshot<TypeConfig>>, DbError> {
        match &self.current {
            Some(current) => {
                let file = tokio::fs::File::open(&current.data).await?;
                Ok(Some(Snapshot {
                    meta: current.meta.clone(),
                    snapshot: Box::new(file),
                }))
            }
            None => Ok(None),
        }
    }

    /// Creates an empty file to receive a snapshot into.
    pub async fn begin_receiving(&mut self) -> Result<tokio::fs::File, DbError> {
        let path = temp_path(&self.dir, "receive");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        self.receiving.push(path);
        Ok(file)
    }

    /// Takes a received snapshot file and makes it durable under a
    /// temporary name. A file from [`Self::begin_receiving`] is kept where
    /// it is; any other handle is copied.
    pub async fn take_received(&mut self, mut file: tokio::fs::File) -> Result<PathBuf, DbError> {
        file.flush().await?;
        let identity = file.metadata().await?;
        let mut ours = None;
        for (i, path) in self.receiving.iter().enumerate() {
            if let Ok(candidate) = tokio::fs::metadata(path).await {
                if same_file(&candidate, &identity) {
                    ours = Some(i);
                    break;
                }
            }
        }
        let path = match ours {
            Some(i) => {
                file.sync_all().await?;
                self.receiving.swap_remove(i)
            }
            None => {
                let path = temp_path(&self.dir, "receive");
                let mut copy = tokio::fs::File::create_new(&path).await?;
                file.seek(SeekFrom::Start(0)).await?;
                tokio::io::copy(&mut file, &mut copy).await?;
                copy.flush().await?;
                copy.sync_all().await?;
                path
            }
        };
        // Other receive files belong to abandoned transfers.
        for stale in self.receiving.drain(..) {
            remove_if_exists(&stale).await?;
        }
        Ok(path)
    }

    /// Makes the fsynced sqlite file `data` (a temporary file) the current
    /// snapshot with `meta`, and removes the previous one. Unless `force`,
    /// a snapshot not newer than the current one is dropped instead (a
    /// build that raced with an install): then `None` is returned.
    pub async fn publish(
        &mut self,
        data: PathBuf,
        meta: SnapshotMeta,
        force: bool,
    ) -> Result<Option<PathBuf>, DbError> {
        if !force {
            if let Some(current) = &self.current {
                if current.meta.last_log_id >= meta.last_log_id {
                    tracing::info!(new = %meta, current = %current.meta, "dropping a snapshot older than the current one");
                    remove_if_exists(&data).await?;
                    return Ok(None);
                }
            }
        }
        let stem = match meta.last_log_id {
            Some(id) => format!("{PREFIX}{:020}-{}", id.index, uuid::Uuid::new_v4().simple()),
            None => format!("{PREFIX}empty-{}", uuid::Uuid::new_v4().simple()),
        };
        let data_path = self.dir.join(format!("{stem}{DATA_SUFFIX}"));
        let meta_path = self.dir.join(format!("{stem}{META_SUFFIX}"));
        tokio::fs::rename(&data, &data_path).await?;
        // The data file's name must be durable before the metadata that
        // points at it.
        sync_dir(&self.dir).await?;

        let meta_tmp = temp_path(&self.dir, "meta");
        let bytes = snapshot_meta_to_pb(&meta).encode_to_vec();
        let mut file = tokio::fs::File::create_new(&meta_tmp).await?;
        file.write_all(&bytes).await?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&meta_tmp, &meta_path).await?;
        sync_dir(&self.dir).await?;

        let new = StoredSnapshot {
            meta,
            data: data_path.clone(),
            meta_path,
        };
        tracing::info!(meta = %new.meta, "saved snapshot");
        if let Some(old) = self.current.replace(new) {
            remove_snapshot(&old).await?;
        }
        Ok(Some(data_path))
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    // Without inode identity, always copy: slower, still correct.
    false
}

/// fsyncs a file by path.
pub(crate) async fn sync_file(path: &Path) -> Result<(), DbError> {
    let file = tokio::fs::File::open(path).await?;
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
