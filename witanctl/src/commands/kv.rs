//! `put`, `get` and `del`: their flags, the requests they make (shared
//! with `txn`, whose operation lines take the same flags) and their
//! output.

use clap::Args;
use witan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use witan_proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
};

use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::{self, json};

/// `put` options.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value (read from standard input when left out).
    pub value: Option<String>,
    /// Lease ID (in hexadecimal) to attach to the key.
    #[arg(long, default_value = "0")]
    pub lease: String,
    /// Return the previous key-value pair before modification.
    #[arg(long)]
    pub prev_kv: bool,
    /// Updates the key using its current value.
    #[arg(long)]
    pub ignore_value: bool,
    /// Updates the key using its current lease.
    #[arg(long)]
    pub ignore_lease: bool,
}

/// `get` options.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The key (the start of the range).
    pub key: String,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Linearizable(l) or Serializable(s).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default).
    #[arg(long, default_value = "")]
    pub order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION.
    #[arg(long, default_value = "")]
    pub sort_by: String,
    /// Maximum number of results.
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Get keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare.
    #[arg(long)]
    pub from_key: bool,
    /// Specify the kv revision.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get only the keys.
    #[arg(long)]
    pub keys_only: bool,
    /// Get only the count.
    #[arg(long)]
    pub count_only: bool,
    /// Only write values when using the "simple" output format.
    #[arg(long)]
    pub print_value_only: bool,
}

/// `del` options.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// The key (the start of the range).
    pub key: String,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Delete keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Return deleted key-value pairs.
    #[arg(long)]
    pub prev_kv: bool,
    /// Delete keys that are greater than or equal to the given key using byte compare.
    #[arg(long)]
    pub from_key: bool,
}

/// A lease ID as etcdctl takes it: hexadecimal.
pub fn parse_lease(text: &str) -> Result<i64, UsageError> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .map(|id| id as i64)
        .map_err(|_| UsageError::LeaseId(text.to_string()))
}

/// The range end that makes `key` a prefix: its last byte below 0xff
/// incremented; "\0" (every key) when there is none.
pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The (key, range_end) a command's key, range end, `--prefix` and
/// `--from-key` select, with etcdctl's rules and messages.
fn key_range(
    key: &str,
    range_end: Option<&str>,
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), UsageError> {
    if prefix && from_key {
        return Err(UsageError::Missing(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if (prefix || from_key) && range_end.is_some() {
        return Err(UsageError::Missing(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
        ));
    }
    let mut key = key.as_bytes().to_vec();
    let end = if prefix {
        if key.is_empty() {
            key = vec![0];
            vec![0]
        } else {
            prefix_end(&key)
        }
    } else if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        vec![0]
    } else {
        range_end.map(|e| e.as_bytes().to_vec()).unwrap_or_default()
    };
    Ok((key, end))
}

impl PutArgs {
    /// The Put request these options describe (`value` read already).
    pub fn request(&self, value: &str) -> Result<PutRequest, UsageError> {
        Ok(PutRequest {
            key: self.key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            lease: parse_lease(&self.lease)?,
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        })
    }

    /// The value: the argument, or standard input when it is left out
    /// (etcdctl's way to put values that start with `-`), or none with
    /// `--ignore-value`.
    fn value(&self) -> Result<String, CtlError> {
        if let Some(value) = &self.value {
            return Ok(value.clone());
        }
        if self.ignore_value {
            return Ok(String::new());
        }
        let mut value = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut value).map_err(|source| {
            CtlError::Stdio {
                what: "reading the value from standard input",
                source,
            }
        })?;
        Ok(value)
    }
}

impl GetArgs {
    /// The Range request these options describe.
    pub fn request(&self) -> Result<RangeRequest, UsageError> {
        let (key, range_end) = key_range(
            &self.key,
            self.range_end.as_deref(),
            self.prefix,
            self.from_key,
        )?;
        let serializable = match self.consistency.as_str() {
            "l" => false,
            "s" => true,
            other => {
                return Err(UsageError::Choice {
                    flag: "--consistency",
                    value: other.to_string(),
                    expected: "l, s",
                })
            }
        };
        let mut order = match self.order.to_uppercase().as_str() {
            "" => SortOrder::None,
            "ASCEND" => SortOrder::Ascend,
            "DESCEND" => SortOrder::Descend,
            _ => {
                return Err(UsageError::Choice {
                    flag: "--order",
                    value: self.order.clone(),
                    expected: "ASCEND, DESCEND",
                })
            }
        };
        let target = match self.sort_by.to_uppercase().as_str() {
            "" | "KEY" => SortTarget::Key,
            "CREATE" => SortTarget::Create,
            "MODIFY" => SortTarget::Mod,
            "VALUE" => SortTarget::Value,
            "VERSION" => SortTarget::Version,
            _ => {
                return Err(UsageError::Choice {
                    flag: "--sort-by",
                    value: self.sort_by.clone(),
                    expected: "CREATE, KEY, MODIFY, VALUE, VERSION",
                })
            }
        };
        if !self.sort_by.is_empty() && order == SortOrder::None {
            order = SortOrder::Ascend;
        }
        // Keys come sorted ascending anyway; asking for it would make the
        // server sort the whole range before applying the limit (clientv3
        // drops it the same way).
        if target == SortTarget::Key && order == SortOrder::Ascend {
            order = SortOrder::None;
        }
        Ok(RangeRequest {
            key,
            range_end,
            limit: self.limit,
            revision: self.rev,
            sort_order: order as i32,
            sort_target: target as i32,
            serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
            ..Default::default()
        })
    }
}

impl DelArgs {
    /// The DeleteRange request these options describe.
    pub fn request(&self) -> Result<DeleteRangeRequest, UsageError> {
        let (key, range_end) = key_range(
            &self.key,
            self.range_end.as_deref(),
            self.prefix,
            self.from_key,
        )?;
        Ok(DeleteRangeRequest {
            key,
            range_end,
            prev_kv: self.prev_kv,
        })
    }
}

/// `put`.
pub async fn put(ctx: &Ctx, args: &PutArgs) -> Result<(), CtlError> {
    check_kv_format(ctx.format)?;
    let request = args.request(&args.value()?)?;
    let conn = ctx.connect().await?;
    let resp = conn.call("Put", conn.kv().put(request)).await?;
    emit_put(ctx, &resp);
    Ok(())
}

/// `get`.
pub async fn get(ctx: &Ctx, args: &GetArgs) -> Result<(), CtlError> {
    check_kv_format(ctx.format)?;
    let request = args.request()?;
    let conn = ctx.connect().await?;
    let resp = conn.call("Range", conn.kv().range(request)).await?;
    if args.count_only && ctx.format == Format::Simple {
        output::emit(&format!("{}\n", resp.count));
        return Ok(());
    }
    emit_range(ctx, &resp, args.print_value_only);
    Ok(())
}

/// `del`.
pub async fn del(ctx: &Ctx, args: &DelArgs) -> Result<(), CtlError> {
    check_kv_format(ctx.format)?;
    let request = args.request()?;
    let conn = ctx.connect().await?;
    let resp = conn
        .call("DeleteRange", conn.kv().delete_range(request))
        .await?;
    emit_delete(ctx, &resp);
    Ok(())
}

/// The KV commands print simple, json and fields, not table (as etcdctl).
pub fn check_kv_format(format: Format) -> Result<(), CtlError> {
    match format {
        Format::Table => Err(CtlError::UnsupportedFormat { format }),
        _ => Ok(()),
    }
}

/// A Put response's simple lines: `OK`, then the previous key-value.
pub fn put_simple(resp: &PutResponse, hex: bool) -> String {
    let mut text = "OK\n".to_string();
    if let Some(prev) = &resp.prev_kv {
        text.push_str(&output::kv_lines(prev, hex, false));
    }
    text
}

/// A Range response's simple lines.
pub fn range_simple(resp: &RangeResponse, hex: bool, value_only: bool) -> String {
    resp.kvs
        .iter()
        .map(|kv| output::kv_lines(kv, hex, value_only))
        .collect()
}

/// A DeleteRange response's simple lines: the count, then what was deleted.
pub fn delete_simple(resp: &DeleteRangeResponse, hex: bool) -> String {
    let mut text = format!("{}\n", resp.deleted);
    for kv in &resp.prev_kvs {
        text.push_str(&output::kv_lines(kv, hex, false));
    }
    text
}

fn emit_put(ctx: &Ctx, resp: &PutResponse) {
    match ctx.format {
        Format::Json => output::emit_json(&json::put(resp)),
        Format::Fields => {
            let mut text = output::header_fields(resp.header.as_ref());
            if let Some(prev) = &resp.prev_kv {
                text.push_str(&output::kv_fields(prev, ctx.hex));
            }
            output::emit(&text);
        }
        Format::Simple | Format::Table => output::emit(&put_simple(resp, ctx.hex)),
    }
}

fn emit_range(ctx: &Ctx, resp: &RangeResponse, value_only: bool) {
    match ctx.format {
        Format::Json => output::emit_json(&json::range(resp)),
        Format::Fields => {
            let mut text = output::header_fields(resp.header.as_ref());
            for kv in &resp.kvs {
                text.push_str(&output::kv_fields(kv, ctx.hex));
            }
            text.push_str(&format!(
                "\"More\" : {}\n\"Count\" : {}\n",
                resp.more, resp.count
            ));
            output::emit(&text);
        }
        Format::Simple | Format::Table => output::emit(&range_simple(resp, ctx.hex, value_only)),
    }
}

fn emit_delete(ctx: &Ctx, resp: &DeleteRangeResponse) {
    match ctx.format {
        Format::Json => output::emit_json(&json::delete(resp)),
        Format::Fields => {
            let mut text = output::header_fields(resp.header.as_ref());
            text.push_str(&format!("\"Deleted\" : {}\n", resp.deleted));
            for kv in &resp.prev_kvs {
                text.push_str(&output::kv_fields(kv, ctx.hex));
            }
            output::emit(&text);
        }
        Format::Simple | Format::Table => output::emit(&delete_simple(resp, ctx.hex)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Get {
        #[command(flatten)]
        args: GetArgs,
    }

    fn get(args: &[&str]) -> Result<RangeRequest, UsageError> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        Get::parse_from(all).args.request()
    }

    #[test]
    fn prefix_ranges_follow_etcd() {
        let r = get(&["foo", "--prefix"]).unwrap();
        assert_eq!((r.key, r.range_end), (b"foo".to_vec(), b"fop".to_vec()));
        let r = get(&["", "--prefix"]).unwrap();
        assert_eq!((r.key, r.range_end), (vec![0], vec![0]));
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }

    #[test]
    fn from_key_reads_to_the_end() {
        let r = get(&["k", "--from-key"]).unwrap();
        assert_eq!((r.key, r.range_end), (b"k".to_vec(), vec![0]));
        assert!(get(&["k", "--from-key", "--prefix"]).is_err());
        assert!(get(&["k", "z", "--prefix"]).is_err());
    }

    #[test]
    fn sorting_by_key_ascending_is_left_to_the_server() {
        let r = get(&["a", "--sort-by", "KEY"]).unwrap();
        assert_eq!(r.sort_order, SortOrder::None as i32);
        let r = get(&["a", "--sort-by", "MODIFY"]).unwrap();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (SortTarget::Mod as i32, SortOrder::Ascend as i32)
        );
        let r = get(&["a", "--order", "DESCEND"]).unwrap();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (SortTarget::Key as i32, SortOrder::Descend as i32)
        );
        assert!(get(&["a", "--sort-by", "SIZE"]).is_err());
        assert!(get(&["a", "--consistency", "x"]).is_err());
    }

    #[test]
    fn flags_reach_the_request() {
        let r = get(&[
            "a",
            "--rev",
            "7",
            "--limit",
            "3",
            "--keys-only",
            "--consistency",
            "s",
            "--count-only",
        ])
        .unwrap();
        assert_eq!((r.revision, r.limit), (7, 3));
        assert!(r.keys_only && r.serializable && r.count_only);
    }

    #[test]
    fn lease_ids_are_hex() {
        assert_eq!(parse_lease("694d7a8f5e1f3c0b").unwrap(), 0x694d7a8f5e1f3c0b);
        assert_eq!(parse_lease("0").unwrap(), 0);
        assert!(parse_lease("xyz").is_err());
    }

    #[test]
    fn simple_output_matches_etcdctl() {
        let resp = DeleteRangeResponse {
            header: None,
            deleted: 1,
            prev_kvs: vec![witan_proto::mvccpb::KeyValue {
                key: b"foo2".to_vec(),
                value: b"x".to_vec(),
                ..Default::default()
            }],
        };
        assert_eq!(delete_simple(&resp, false), "1\nfoo2\nx\n");
        let put = PutResponse {
            header: None,
            prev_kv: Some(witan_proto::mvccpb::KeyValue {
                key: b"foo".to_vec(),
                value: b"bar".to_vec(),
                ..Default::default()
            }),
        };
        assert_eq!(put_simple(&put, false), "OK\nfoo\nbar\n");
    }
}
