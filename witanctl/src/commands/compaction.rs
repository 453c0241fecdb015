//! `compaction`: discards the history before a revision.

use witan_proto::etcdserverpb::CompactionRequest;

use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output::{self, json};

/// `compaction` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactionArgs {
    /// The revision to compact up to.
    pub revision: i64,
    /// Wait until the compacted history is physically removed.
    #[arg(long)]
    pub physical: bool,
}

/// `compaction`.
pub async fn run(ctx: &Ctx, args: &CompactionArgs) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    let request = CompactionRequest {
        revision: args.revision,
        physical: args.physical,
    };
    let resp = conn.call("Compact", conn.kv().compact(request)).await?;
    match ctx.format {
        Format::Json => output::emit_json(
            &json::Obj::new()
                .opt("header", json::header(resp.header.as_ref()))
                .done(),
        ),
        _ => output::emit(&format!("compacted revision {}\n", args.revision)),
    }
    Ok(())
}
