//! `snapshot status FILE` and `snapshot restore FILE ...`: read a snapshot
//! file and build a new member's data directory from it, through
//! `witan_server::restore` (the server owns the on-disk formats).

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use witan_server::restore::{restore_snapshot, snapshot_status, RestoreOptions, SnapshotStatus};

use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output::json::Json;
use crate::output::{self, human, json, table::Table};

/// `snapshot status` options.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The snapshot file.
    pub file: PathBuf,
}

/// `snapshot restore` options (etcdctl's names and defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Path to the data directory to create (default: `<name>.witan`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Initial cluster configuration for restore bootstrap.
    #[arg(long, default_value = "default=http://localhost:2380")]
    pub initial_cluster: String,
    /// Initial cluster token for the cluster during restore bootstrap.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: Vec<String>,
}

/// `snapshot status`.
pub async fn status(ctx: &Ctx, args: &StatusArgs) -> Result<(), CtlError> {
    let found = snapshot_status(&args.file).await?;
    match ctx.format {
        Format::Json => output::emit_json(&status_json(&found)),
        Format::Table => output::emit(&status_table(&found)),
        Format::Simple | Format::Fields => {
            output::emit(&format!("{}\n", status_cells(&found).join(", ")))
        }
    }
    Ok(())
}

fn status_cells(found: &SnapshotStatus) -> Vec<String> {
    vec![
        format!("{:x}", found.hash),
        found.revision.to_string(),
        found.total_keys.to_string(),
        human::bytes(found.total_size),
    ]
}

fn status_table(found: &SnapshotStatus) -> String {
    let mut table = Table::new(&["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"]);
    table.row(status_cells(found));
    table.render()
}

fn status_json(found: &SnapshotStatus) -> Json {
    json::Obj::new()
        .always("hash", found.hash.into())
        .always("revision", found.revision.into())
        .always("totalKey", found.total_keys.into())
        .always("totalSize", found.total_size.into())
        .done()
}

/// `snapshot restore`: a spinner while it runs (the restore gives no
/// progress of its own), then what was restored.
pub async fn restore(args: &RestoreArgs) -> Result<(), CtlError> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.witan", args.name)));
    let options = RestoreOptions {
        data_dir: data_dir.clone(),
        name: args.name.clone(),
        initial_cluster: args.initial_cluster.clone(),
        initial_cluster_token: args.initial_cluster_token.clone(),
        initial_advertise_peer_urls: args.initial_advertise_peer_urls.clone(),
    };
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_message(format!("restoring {}", args.file.display()));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let summary = restore_snapshot(&args.file, &options).await;
    spinner.finish_and_clear();
    let summary = summary?;
    output::emit(&format!(
        "Restored snapshot {} into {}: revision {} (compacted at {}), {} keys, {}\n",
        args.file.display(),
        data_dir.display(),
        summary.revision,
        summary.compact_revision,
        summary.keys,
        human::bytes(summary.size_bytes)
    ));
    Ok(())
}
