//! Snapshot: streams a consistent copy of this member's state the way etcd
//! streams its bolt database: chunks of the file, each with the bytes still
//! to come in `remaining_bytes`, then the file's sha256 as a last 32-byte
//! message, which `etcdctl snapshot save` writes after the data (its
//! restore checks it; so does `witan_server::restore`).
//!
//! The copy is `VACUUM INTO` a temporary file (one read transaction, so
//! writes go on meanwhile); it is removed once the stream ends, however it
//! ends.

use std::pin::Pin;

use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, info, warn};
use witan_proto::etcdserverpb::SnapshotResponse;

use super::{storage_failure, MaintenanceParts};
use crate::api::ApiError;
use crate::storage::StateCopy;

/// Bytes per message (etcd's chunk size).
pub const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;
/// Length of the sha256 trailer.
pub const SNAPSHOT_HASH_BYTES: usize = 32;
/// Messages buffered ahead of a slow client.
const BUFFER: usize = 8;

/// The response stream.
pub type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

/// Copies the state and starts streaming it.
pub(super) async fn stream(parts: &MaintenanceParts) -> Result<SnapshotStream, ApiError> {
    let revision = parts.core.state.current().kv.revision();
    let copy = parts
        .storage
        .copy_state(revision)
        .await
        .map_err(storage_failure)?;
    info!(revision, bytes = copy.len(), "streaming a snapshot");
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        if let Err(e) = send(copy, &tx).await {
            warn!(error = %e, "snapshot stream failed");
            let _ = tx
                .send(Err(Status::internal(format!(
                    "witan: reading the snapshot copy failed: {e}"
                ))))
                .await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Sends the file then its hash; stops early (fine) when the client left.
async fn send(
    copy: StateCopy,
    tx: &mpsc::Sender<Result<SnapshotResponse, Status>>,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(copy.path()).await?;
    let total = copy.len() + SNAPSHOT_HASH_BYTES as u64;
    let mut sent = 0u64;
    let mut hasher = Sha256::new();
    while sent < copy.len() {
        // A chunk is whatever the file holds up to the chunk size: `take`
        // bounds the read, so no buffer is ever sliced.
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES);
        let filled = (&mut file)
            .take(SNAPSHOT_CHUNK_BYTES as u64)
            .read_to_end(&mut chunk)
            .await?;
        if filled == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the snapshot copy is shorter than it was",
            ));
        }
        hasher.update(&chunk);
        sent += filled as u64;
        let message = SnapshotResponse {
            header: None,
            remaining_bytes: total.saturating_sub(sent),
            blob: chunk,
            version: String::new(),
        };
        if tx.send(Ok(message)).await.is_err() {
            debug!("snapshot client went away");
            return Ok(());
        }
    }
    let trailer = SnapshotResponse {
        header: None,
        remaining_bytes: 0,
        blob: hasher.finalize().to_vec(),
        version: String::new(),
    };
    let _ = tx.send(Ok(trailer)).await;
    Ok(())
}
