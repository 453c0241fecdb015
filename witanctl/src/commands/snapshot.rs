//! `snapshot save FILE`, and `snapshot status` and `snapshot restore`
//! (see `snapshot_restore`).
//!
//! `save` streams Maintenance.Snapshot from one member into `FILE.part`
//! with a progress bar (the stream's `remaining_bytes` gives the total),
//! checks the sha256 the stream ends with against the bytes before it,
//! fsyncs, and only then renames the file to `FILE`: a `FILE` that exists
//! is whole and verified.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use witan_proto::etcdserverpb::SnapshotRequest;

use crate::conn::{Conn, Ctx};
use crate::error::{CtlError, UsageError};
use crate::output;

/// Bytes of the sha256 a snapshot stream ends with.
const CHECKSUM_LEN: usize = 32;

/// The snapshot commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Stores a snapshot of a member's state to a file.
    Save {
        /// The file to write.
        file: PathBuf,
    },
    /// Gets the status of a snapshot file.
    Status(super::snapshot_restore::StatusArgs),
    /// Restores a snapshot file into a new member's data directory.
    Restore(super::snapshot_restore::RestoreArgs),
}

/// Runs a snapshot command.
pub async fn run(ctx: &Ctx, command: &SnapshotCommand) -> Result<(), CtlError> {
    match command {
        SnapshotCommand::Save { file } => save(ctx, file).await,
        SnapshotCommand::Status(args) => super::snapshot_restore::status(ctx, args).await,
        SnapshotCommand::Restore(args) => super::snapshot_restore::restore(args).await,
    }
}

/// `snapshot save`.
async fn save(ctx: &Ctx, file: &Path) -> Result<(), CtlError> {
    if ctx.endpoints.len() != 1 {
        return Err(UsageError::Missing(
            "snapshot must be requested to one selected node, not multiple",
        )
        .into());
    }
    let conn = ctx.connect().await?;
    let part = part_path(file);
    let result = stream_to(&conn, &part).await;
    if let Err(error) = result {
        let _ = std::fs::remove_file(&part);
        return Err(error);
    }
    std::fs::rename(&part, file).map_err(|source| CtlError::Io {
        what: "could not rename the snapshot to",
        path: file.to_owned(),
        source,
    })?;
    output::emit(&format!("Snapshot saved at {}\n", file.display()));
    Ok(())
}

/// `FILE.part`, where the snapshot is written until it is whole.
fn part_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Streams the snapshot into `part`, verifies it and fsyncs it.
async fn stream_to(conn: &Conn, part: &Path) -> Result<(), CtlError> {
    let io = |what: &'static str| {
        move |source| CtlError::Io {
            what,
            path: part.to_owned(),
            source,
        }
    };
    let mut out = std::fs::File::create(part).map_err(io("could not open"))?;
    let mut stream = conn
        .wait("Snapshot", conn.maintenance().snapshot(SnapshotRequest {}))
        .await?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    let mut verifier = Verifier::default();
    while let Some(message) = stream.next().await {
        let chunk = message.map_err(|status| conn.rpc("Snapshot", status))?;
        out.write_all(&chunk.blob).map_err(io("could not write"))?;
        verifier.update(&chunk.blob);
        bar.set_length(verifier.received + chunk.remaining_bytes);
        bar.set_position(verifier.received);
    }
    bar.finish_and_clear();
    verifier.check(&conn.endpoint, part)?;
    out.sync_all().map_err(io("could not fsync"))?;
    Ok(())
}

/// The sha256 of everything but the last [`CHECKSUM_LEN`] bytes, and
/// those bytes, computed as the stream arrives.
#[derive(Default)]
pub struct Verifier {
    hasher: Sha256,
    /// The last bytes seen: the checksum, once the stream has ended.
    tail: Vec<u8>,
    /// Bytes seen.
    pub received: u64,
}

impl Verifier {
    /// Takes the next bytes of the stream.
    pub fn update(&mut self, chunk: &[u8]) {
        self.received += chunk.len() as u64;
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > CHECKSUM_LEN {
            let spill = self.tail.len() - CHECKSUM_LEN;
            self.hasher.update(&self.tail[..spill]);
            self.tail.drain(..spill);
        }
    }

    /// Whether the stream's last bytes are the sha256 of the rest.
    pub fn check(self, endpoint: &str, path: &Path) -> Result<(), CtlError> {
        if self.tail.len() < CHECKSUM_LEN {
            return Err(CtlError::SnapshotTruncated {
                endpoint: endpoint.to_string(),
                bytes: self.received,
            });
        }
        let actual = self.hasher.finalize();
        if actual.as_slice() != self.tail.as_slice() {
            return Err(CtlError::SnapshotChecksum {
                endpoint: endpoint.to_string(),
                path: path.with_extension(""),
                expected: hex(&self.tail),
                actual: hex(&actual),
            });
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(content: &[u8]) -> Vec<u8> {
        let mut all = content.to_vec();
        all.extend_from_slice(&Sha256::digest(content));
        all
    }

    #[test]
    fn a_whole_stream_verifies_however_it_is_cut() {
        let all = stream_of(b"the state of a member, in some bytes");
        for cut in [1, 5, 31, 32, 33, all.len()] {
            let mut verifier = Verifier::default();
            for chunk in all.chunks(cut) {
                verifier.update(chunk);
            }
            verifier.check("e", Path::new("f")).unwrap();
        }
    }

    #[test]
    fn a_changed_byte_or_a_short_stream_is_refused() {
        let mut all = stream_of(b"the state of a member");
        all[3] ^= 1;
        let mut verifier = Verifier::default();
        verifier.update(&all);
        assert!(matches!(
            verifier.check("e", Path::new("f")),
            Err(CtlError::SnapshotChecksum { .. })
        ));
        let mut short = Verifier::default();
        short.update(b"tiny");
        assert!(matches!(
            short.check("e", Path::new("f")),
            Err(CtlError::SnapshotTruncated { bytes: 4, .. })
        ));
    }

    #[test]
    fn the_part_file_sits_beside_the_target() {
        assert_eq!(
            part_path(Path::new("/tmp/snap.db")),
            PathBuf::from("/tmp/snap.db.part")
        );
    }
}
