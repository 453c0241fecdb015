//! `watch`: streams events on a key, a range or a prefix, from a revision
//! on; with `-i`, reads `watch [options] key [range_end]` lines from
//! standard input and adds each to the same stream.

use clap::Parser;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use witan_proto::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest, WatchResponse};
use witan_proto::mvccpb::event::EventType;

use super::kv::prefix_end;
use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::json::Json;
use crate::output::{self, json};

/// `watch` options.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// The key (or prefix) to watch; none with `-i`.
    pub key: Option<String>,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Watch on a prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Revision to start watching from.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get the previous key-value pair before the event happens.
    #[arg(long)]
    pub prev_kv: bool,
    /// Get periodic watch progress notifications from the server.
    #[arg(long)]
    pub progress_notify: bool,
    /// Interactive mode: read watch commands from standard input.
    #[arg(short, long)]
    pub interactive: bool,
}

/// One `watch ...` line of `watch -i`.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct Line {
    #[command(subcommand)]
    command: LineCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LineCommand {
    Watch(WatchArgs),
}

impl WatchArgs {
    /// The create request these options describe.
    pub fn request(&self) -> Result<WatchRequest, UsageError> {
        let key = self
            .key
            .clone()
            .ok_or(UsageError::Missing("watch needs a key (or -i)"))?;
        let mut key = key.into_bytes();
        let range_end = if self.prefix {
            if self.range_end.is_some() {
                return Err(UsageError::Missing(
                    "too many arguments, only accept one argument when `--prefix` is set",
                ));
            }
            if key.is_empty() {
                key = vec![0];
                vec![0]
            } else {
                prefix_end(&key)
            }
        } else {
            self.range_end
                .clone()
                .map(String::into_bytes)
                .unwrap_or_default()
        };
        Ok(WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key,
                    range_end,
                    start_revision: self.rev,
                    progress_notify: self.progress_notify,
                    prev_kv: self.prev_kv,
                    ..Default::default()
                },
            )),
        })
    }
}

/// `watch`.
pub async fn run(ctx: &Ctx, args: &WatchArgs) -> Result<(), CtlError> {
    if ctx.format == Format::Table || ctx.format == Format::Fields {
        return Err(CtlError::UnsupportedFormat { format: ctx.format });
    }
    let conn = ctx.connect().await?;
    let (tx, rx) = mpsc::channel(16);
    if args.interactive {
        if args.key.is_some() {
            let _ = tx.send(args.request()?).await;
        }
        tokio::spawn(read_watch_lines(tx.clone()));
    } else {
        let _ = tx.send(args.request()?).await;
    }
    let mut responses = conn
        .wait("Watch", conn.watch().watch(ReceiverStream::new(rx)))
        .await?;
    loop {
        let next = tokio::select! {
            next = responses.next() => next,
            _ = super::hold::until_signal() => return Ok(()),
        };
        let resp = match next {
            Some(Ok(resp)) => resp,
            Some(Err(status)) => return Err(conn.rpc("Watch", status)),
            None => {
                return Err(CtlError::StreamEnded {
                    endpoint: conn.endpoint.clone(),
                    what: "Watch",
                })
            }
        };
        if resp.created && resp.events.is_empty() && !resp.canceled {
            continue;
        }
        match ctx.format {
            Format::Json => output::emit_json(&response_json(&resp)),
            _ => output::emit(&response_simple(&resp, ctx.hex)),
        }
        if resp.canceled && !args.interactive {
            return Err(conn.rpc(
                "Watch",
                tonic::Status::cancelled(format!("watch was canceled ({})", resp.cancel_reason)),
            ));
        }
    }
}

/// Reads `watch ...` lines from stdin and sends their create requests;
/// a line that does not parse is reported and skipped.
async fn read_watch_lines(tx: mpsc::Sender<WatchRequest>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match parse_watch_line(&line) {
            Ok(request) => {
                if tx.send(request).await.is_err() {
                    return;
                }
            }
            Err(error) => eprintln!("Error: {error}"),
        }
    }
    // Keep the stream open after stdin ends: the watches go on.
    tx.closed().await;
}

/// Parses one `watch -i` line.
fn parse_watch_line(line: &str) -> Result<WatchRequest, UsageError> {
    let bad = |reason: String| UsageError::WatchLine {
        line: line.to_string(),
        reason,
    };
    let words = super::txn::argify(line).ok_or_else(|| bad("an unterminated quote".into()))?;
    let parsed = Line::try_parse_from(words).map_err(|e| {
        let text = e.to_string();
        bad(text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string())
    })?;
    let LineCommand::Watch(args) = parsed.command;
    args.request()
}

/// A watch response's simple lines: per event its type, the previous
/// key-value (with `--prev-kv`), then the key-value.
pub fn response_simple(resp: &WatchResponse, hex: bool) -> String {
    let mut text = String::new();
    if resp.canceled {
        text.push_str(&format!("watch was canceled ({})\n", resp.cancel_reason));
    }
    for event in &resp.events {
        let kind = if event.r#type == EventType::Delete as i32 {
            "DELETE"
        } else {
            "PUT"
        };
        text.push_str(kind);
        text.push('\n');
        if let Some(prev) = &event.prev_kv {
            text.push_str(&output::kv_lines(prev, hex, false));
        }
        if let Some(kv) = &event.kv {
            text.push_str(&output::kv_lines(kv, hex, false));
        }
    }
    text
}

/// A watch response as etcdctl's JSON (clientv3's `WatchResponse` struct).
fn response_json(resp: &WatchResponse) -> Json {
    json::Obj::new()
        .always(
            "Header",
            json::header(resp.header.as_ref()).unwrap_or_else(|| json::Obj::new().done()),
        )
        .always(
            "Events",
            Json::Arr(resp.events.iter().map(json::event).collect()),
        )
        .always("CompactRevision", resp.compact_revision.into())
        .always("Canceled", resp.canceled.into())
        .always("Created", resp.created.into())
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use witan_proto::mvccpb::{Event, KeyValue};

    fn kv(key: &str, value: &str) -> Option<KeyValue> {
        Some(KeyValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
    }

    #[test]
    fn events_print_like_etcdctl() {
        let resp = WatchResponse {
            events: vec![
                Event {
                    r#type: EventType::Put as i32,
                    kv: kv("w1", "b"),
                    prev_kv: kv("w1", "a"),
                },
                Event {
                    r#type: EventType::Delete as i32,
                    kv: kv("w1", ""),
                    prev_kv: None,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            response_simple(&resp, false),
            "PUT\nw1\na\nw1\nb\nDELETE\nw1\n\n"
        );
    }

    #[test]
    fn interactive_lines_take_the_watch_flags() {
        let request = parse_watch_line("watch --prefix --rev 4 --prev-kv foo").unwrap();
        let Some(watch_request::RequestUnion::CreateRequest(create)) = request.request_union else {
            panic!("a create request")
        };
        assert_eq!(
            (
                create.key,
                create.range_end,
                create.start_revision,
                create.prev_kv
            ),
            (b"foo".to_vec(), b"fop".to_vec(), 4, true)
        );
        assert!(parse_watch_line("unwatch foo").is_err());
        assert!(parse_watch_line("watch").is_err());
    }
}
