//! `txn`: etcdctl's transaction format, read from standard input (with
//! prompts under `-i`): compare lines, a blank line, success operations, a
//! blank line, failure operations, a blank line (or the end of input).
//!
//! A compare is `target("key") op "value"`, target one of `value` (`val`),
//! `create` (`c`), `mod` (`m`), `version` (`ver`), `lease`, op one of `=`,
//! `!=`, `<`, `>`. An operation is a `put`, `get` or `del` command line
//! with the flags of those commands; words may be double-quoted.

use std::io::BufRead;

use clap::{Parser, Subcommand};
use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::{
    request_op, response_op, Compare, RequestOp, TxnRequest, TxnResponse,
};

use super::kv::{self, DelArgs, GetArgs, PutArgs};
use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::{self, json};

/// `txn` options.
#[derive(Debug, Clone, clap::Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode (prompts for each part).
    #[arg(short, long)]
    pub interactive: bool,
}

/// One operation line of a txn, parsed with the commands' own flags.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct OpLine {
    #[command(subcommand)]
    op: Op,
}

#[derive(Debug, Subcommand)]
enum Op {
    Put(PutArgs),
    Get(GetArgs),
    Del(DelArgs),
}

/// `txn`.
pub async fn run(ctx: &Ctx, args: &TxnArgs) -> Result<(), CtlError> {
    kv::check_kv_format(ctx.format)?;
    let stdin = std::io::stdin();
    let request = read_txn(&mut stdin.lock(), args.interactive)?;
    let conn = ctx.connect().await?;
    let resp = conn.call("Txn", conn.kv().txn(request)).await?;
    match ctx.format {
        Format::Json => output::emit_json(&json::txn(&resp)),
        Format::Fields => output::emit(&txn_fields(&resp)),
        Format::Simple | Format::Table => output::emit(&txn_simple(&resp, ctx.hex)),
    }
    Ok(())
}

/// Reads a whole transaction from `input`, printing etcdctl's prompts
/// when `interactive`.
pub fn read_txn(input: &mut dyn BufRead, interactive: bool) -> Result<TxnRequest, CtlError> {
    let prompt = |text: &str| {
        if interactive {
            output::emit(&format!("{text}\n"));
        }
    };
    prompt("compares:");
    let compare = read_section(input)?
        .iter()
        .map(|line| parse_compare(line))
        .collect::<Result<_, _>>()?;
    prompt("success requests (get, put, del):");
    let success = read_section(input)?
        .iter()
        .map(|line| parse_op(line))
        .collect::<Result<_, _>>()?;
    prompt("failure requests (get, put, del):");
    let failure = read_section(input)?
        .iter()
        .map(|line| parse_op(line))
        .collect::<Result<_, _>>()?;
    Ok(TxnRequest {
        compare,
        success,
        failure,
    })
}

/// The lines up to the next blank line (or the end of input).
fn read_section(input: &mut dyn BufRead) -> Result<Vec<String>, CtlError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = input
            .read_line(&mut line)
            .map_err(|source| CtlError::Stdio {
                what: "reading the transaction from standard input",
                source,
            })?;
        let line = line.trim();
        if read == 0 || line.is_empty() {
            return Ok(lines);
        }
        lines.push(line.to_string());
    }
}

/// Parses a compare line.
pub fn parse_compare(line: &str) -> Result<Compare, UsageError> {
    let malformed = || UsageError::Compare(line.to_string());
    let (target, rest) = line.split_once('(').ok_or_else(malformed)?;
    let (key, rest) = unquote(rest.trim_start()).ok_or_else(malformed)?;
    let rest = rest.trim_start().strip_prefix(')').ok_or_else(malformed)?;
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let op = words.next().ok_or_else(malformed)?;
    let value_text = words.next().ok_or_else(malformed)?.trim();
    // etcdctl wants the value quoted; a bare number is taken too.
    let value = match unquote(value_text) {
        Some((value, rest)) if rest.trim().is_empty() => value,
        Some(_) => return Err(malformed()),
        None => value_text.as_bytes().to_vec(),
    };
    let result = match op {
        "=" | "==" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        "<" => CompareResult::Less,
        ">" => CompareResult::Greater,
        _ => return Err(malformed()),
    };
    let number = || -> Result<i64, UsageError> {
        std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(malformed)
    };
    let (target, union) = match target.trim() {
        "value" | "val" => (CompareTarget::Value, TargetUnion::Value(value.clone())),
        "create" | "c" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(number()?),
        ),
        "mod" | "m" => (CompareTarget::Mod, TargetUnion::ModRevision(number()?)),
        "version" | "ver" => (CompareTarget::Version, TargetUnion::Version(number()?)),
        "lease" => {
            let text = String::from_utf8_lossy(&value).into_owned();
            let lease = kv::parse_lease(text.trim()).map_err(|_| malformed())?;
            (CompareTarget::Lease, TargetUnion::Lease(lease))
        }
        _ => return Err(malformed()),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key,
        range_end: Vec::new(),
        target_union: Some(union),
    })
}

/// Parses an operation line.
pub fn parse_op(line: &str) -> Result<RequestOp, UsageError> {
    let bad = |reason: String| UsageError::TxnOp {
        line: line.to_string(),
        reason,
    };
    let words = argify(line).ok_or_else(|| bad("an unterminated quote".into()))?;
    let parsed = OpLine::try_parse_from(words).map_err(|e| {
        let text = e.to_string();
        bad(text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string())
    })?;
    let request = match parsed.op {
        Op::Put(put) => {
            let value = put.value.clone().unwrap_or_default();
            request_op::Request::RequestPut(put.request(&value)?)
        }
        Op::Get(get) => request_op::Request::RequestRange(get.request()?),
        Op::Del(del) => request_op::Request::RequestDeleteRange(del.request()?),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

/// Splits a line into words at whitespace; a double-quoted word may hold
/// spaces and Go escapes. None when a quote is not closed.
pub fn argify(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('"') {
            let (word, after) = unquote(rest)?;
            words.push(String::from_utf8_lossy(&word).into_owned());
            rest = after.trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    Some(words)
}

/// A Go-quoted string at the start of `text` ("..." with escapes, or
/// `...` raw): its bytes and what follows it.
fn unquote(text: &str) -> Option<(Vec<u8>, &str)> {
    if let Some(raw) = text.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw.as_bytes()[..end].to_vec(), &raw[end + 1..]));
    }
    let body = text.strip_prefix('"')?;
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => out.push(b'\n'),
                    't' => out.push(b'\t'),
                    'r' => out.push(b'\r'),
                    '0' => out.push(0),
                    '\\' | '"' | '\'' => out.push(escaped as u8),
                    'x' => {
                        let high = chars.next()?.1.to_digit(16)?;
                        let low = chars.next()?.1.to_digit(16)?;
                        out.push((high * 16 + low) as u8);
                    }
                    _ => return None,
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    None
}

/// A Txn response's simple lines: SUCCESS or FAILURE, then each response
/// after a blank line.
pub fn txn_simple(resp: &TxnResponse, hex: bool) -> String {
    let mut text = if resp.succeeded {
        "SUCCESS\n"
    } else {
        "FAILURE\n"
    }
    .to_string();
    for op in &resp.responses {
        text.push('\n');
        match &op.response {
            Some(response_op::Response::ResponsePut(r)) => text.push_str(&kv::put_simple(r, hex)),
            Some(response_op::Response::ResponseRange(r)) => {
                text.push_str(&kv::range_simple(r, hex, false))
            }
            Some(response_op::Response::ResponseDeleteRange(r)) => {
                text.push_str(&kv::delete_simple(r, hex))
            }
            Some(response_op::Response::ResponseTxn(r)) => text.push_str(&txn_simple(r, hex)),
            None => {}
        }
    }
    text
}

/// A Txn response in the `fields` format.
fn txn_fields(resp: &TxnResponse) -> String {
    let mut text = output::header_fields(resp.header.as_ref());
    text.push_str(&format!("\"Succeeded\" : {}\n", resp.succeeded));
    for op in &resp.responses {
        let header = match &op.response {
            Some(response_op::Response::ResponsePut(r)) => r.header.as_ref(),
            Some(response_op::Response::ResponseRange(r)) => r.header.as_ref(),
            Some(response_op::Response::ResponseDeleteRange(r)) => r.header.as_ref(),
            Some(response_op::Response::ResponseTxn(r)) => r.header.as_ref(),
            None => None,
        };
        text.push_str(&output::header_fields(header));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_parse_every_target_and_operator() {
        let c = parse_compare(r#"value("k1") = "v1""#).unwrap();
        assert_eq!(c.key, b"k1".to_vec());
        assert_eq!(c.target, CompareTarget::Value as i32);
        assert_eq!(c.result, CompareResult::Equal as i32);
        assert_eq!(c.target_union, Some(TargetUnion::Value(b"v1".to_vec())));

        let c = parse_compare(r#"mod("k1") > "0""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(0)));
        assert_eq!(c.result, CompareResult::Greater as i32);
        let c = parse_compare(r#"ver("k") != "3""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::Version(3)));
        assert_eq!(c.result, CompareResult::NotEqual as i32);
        let c = parse_compare(r#"c("k") < 5"#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::CreateRevision(5)));
        let c = parse_compare(r#"lease("k") = "694d""#).unwrap();
        assert_eq!(c.target_union, Some(TargetUnion::Lease(0x694d)));
        let c = parse_compare(r#"value("a \"q\"") = "x y""#).unwrap();
        assert_eq!(c.key, b"a \"q\"".to_vec());
        assert_eq!(c.target_union, Some(TargetUnion::Value(b"x y".to_vec())));
    }

    #[test]
    fn malformed_compares_say_so_like_etcdctl() {
        for line in [
            "bogus",
            r#"mod(k1) > "0""#,
            r#"size("k") = "1""#,
            r#"mod("k") ~ "1""#,
            r#"mod("k") > "x""#,
        ] {
            let error = parse_compare(line).unwrap_err();
            assert_eq!(error.to_string(), format!("malformed comparison: {line}"));
        }
    }

    #[test]
    fn operations_take_the_commands_flags() {
        let op = parse_op(r#"put --prev-kv k2 "hello world""#).unwrap();
        let Some(request_op::Request::RequestPut(put)) = op.request else {
            panic!("a put: {op:?}")
        };
        assert_eq!(
            (put.key, put.value, put.prev_kv),
            (b"k2".to_vec(), b"hello world".to_vec(), true)
        );
        let op = parse_op("get --prefix k").unwrap();
        let Some(request_op::Request::RequestRange(get)) = op.request else {
            panic!("a get: {op:?}")
        };
        assert_eq!((get.key, get.range_end), (b"k".to_vec(), b"l".to_vec()));
        let op = parse_op("del k1 k3").unwrap();
        let Some(request_op::Request::RequestDeleteRange(del)) = op.request else {
            panic!("a del: {op:?}")
        };
        assert_eq!((del.key, del.range_end), (b"k1".to_vec(), b"k3".to_vec()));
        assert!(parse_op("frobnicate k").is_err());
        assert!(parse_op(r#"put "k v"#).is_err());
    }

    #[test]
    fn a_whole_transaction_reads_section_by_section() {
        let text =
            "value(\"k1\") = \"v1\"\nmod(\"k1\") > \"0\"\n\nput k2 v2\nget k1\n\nput k3 v3\n\n";
        let txn = read_txn(&mut text.as_bytes(), false).unwrap();
        assert_eq!(
            (txn.compare.len(), txn.success.len(), txn.failure.len()),
            (2, 2, 1)
        );
        // The end of input ends the last section too.
        let txn = read_txn(&mut "\nput a b\n".as_bytes(), false).unwrap();
        assert_eq!(
            (txn.compare.len(), txn.success.len(), txn.failure.len()),
            (0, 1, 0)
        );
    }

    #[test]
    fn the_simple_output_matches_etcdctl() {
        let resp = TxnResponse {
            header: None,
            succeeded: true,
            responses: vec![
                witan_proto::etcdserverpb::ResponseOp {
                    response: Some(response_op::Response::ResponsePut(Default::default())),
                },
                witan_proto::etcdserverpb::ResponseOp {
                    response: Some(response_op::Response::ResponseRange(
                        witan_proto::etcdserverpb::RangeResponse {
                            kvs: vec![witan_proto::mvccpb::KeyValue {
                                key: b"k1".to_vec(),
                                value: b"v1".to_vec(),
                                ..Default::default()
                            }],
                            count: 1,
                            ..Default::default()
                        },
                    )),
                },
                witan_proto::etcdserverpb::ResponseOp {
                    response: Some(response_op::Response::ResponseDeleteRange(
                        Default::default(),
                    )),
                },
            ],
        };
        assert_eq!(txn_simple(&resp, false), "SUCCESS\n\nOK\n\nk1\nv1\n\n0\n");
    }
}
