//! kv-diff: differential checker of the etcd v3 KV API.
//!
//! Replays one seeded random sequence of KV operations (puts, deletes,
//! ranges with every option, txns with every compare, compactions, bad
//! input, leases and their time to live) against a reference server (a real
//! etcd) and a candidate (witan), both fresh, and stops at the first answer
//! that differs, printing the op number, the request and both answers.
//! Watches stay open on both servers through the whole run; at the end every
//! watch's complete history must agree too (see `watch`). Everything in the answers is
//! compared except cluster_id, member_id and raft_term; see `outcome` for the
//! one relaxation (unstable sorts).
//!
//! ```text
//! cargo run -p witan-tests --bin kv-diff -- --seed 42 --ops 3000 \
//!     --reference http://127.0.0.1:2379 --candidate http://127.0.0.1:22379
//! ```
//! Exit status: 0 when every answer agreed, 1 on the first difference, 2
//! when the run itself could not be done (connection, not-fresh stores).
//!
//! Reached through `etcd-client` 0.21 (not our own protos, so a wire mistake
//! in witan's protos cannot hide itself), which limits the requests a little:
//! a range sorted by KEY in ASCEND order is sent as order NONE (the client
//! rewrites it; same results), and a compare whose target and operand
//! disagree, or a txn op with no request, cannot be built.

// A crate root's modules live beside it, so point into kv_diff/.
#[path = "kv_diff/exec.rs"]
mod exec;
#[path = "kv_diff/generate.rs"]
mod generate;
#[path = "kv_diff/outcome.rs"]
mod outcome;
#[path = "kv_diff/request.rs"]
mod request;
#[path = "kv_diff/watch.rs"]
mod watch;

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;

use clap::Parser;

use exec::Server;
use generate::{Generator, Kind};
use outcome::Outcome;
use request::{Bytes, Op, RangeReq};

/// How many previous operations a mismatch report lists for context.
const CONTEXT_OPS: usize = 8;

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(
    name = "kv-diff",
    about = "Replay seeded random KV operations against two etcd-compatible servers and report the first difference"
)]
struct Args {
    /// Seed of the operation sequence.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of operations to run.
    #[arg(long, default_value_t = 3000)]
    ops: usize,
    /// Client URL of the reference server (a real etcd).
    #[arg(long)]
    reference: String,
    /// Client URL of the server under test.
    #[arg(long)]
    candidate: String,
    /// Do not grant leases (puts then use no lease or a missing one).
    #[arg(long)]
    no_leases: bool,
    /// Do not open watches.
    #[arg(long)]
    no_watches: bool,
    /// Run even when the stores are not fresh (revision 1, no keys); the
    /// run is then not reproducible from the seed alone.
    #[arg(long)]
    allow_dirty: bool,
    /// Print every operation and the reference's answer.
    #[arg(long, short)]
    verbose: bool,
}

/// How a run ended, short of an error of the run itself.
enum Verdict {
    Agree,
    Differ,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(Verdict::Agree) => ExitCode::SUCCESS,
        Ok(Verdict::Differ) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kv-diff: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<Verdict> {
    let reference = Server::connect("reference", &args.reference).await?;
    let candidate = Server::connect("candidate", &args.candidate).await?;
    let mut generator = Generator::new(args.seed, !args.no_leases);
    let mut context: VecDeque<String> = VecDeque::new();

    let mut specs = if args.no_watches {
        Vec::new()
    } else {
        watch::early()
    };
    let mut watches = None;
    if !specs.is_empty() {
        let r = watch::Side::open("reference", reference.watch_client(), &specs).await?;
        let c = watch::Side::open("candidate", candidate.watch_client(), &specs).await?;
        r.wait_created().await.map_err(anyhow::Error::msg)?;
        if let Err(e) = c.wait_created().await {
            eprintln!("kv-diff: MISMATCH in watches (seed {}): {e}", args.seed);
            return Ok(Verdict::Differ);
        }
        watches = Some((r, c));
    }

    // Op #0 looks at the whole store on both sides: it must agree like any
    // other answer, and tells whether the stores are fresh.
    let initial = Op::Range(RangeReq {
        key: Bytes(vec![0]),
        range_end: Bytes(vec![0]),
        ..RangeReq::default()
    });
    let Some(first) = step(0, &initial, &reference, &candidate, &context, args).await? else {
        return Ok(Verdict::Differ);
    };
    let fresh = matches!(
        first,
        Outcome::Range {
            revision: Some(1),
            count: 0,
            ..
        }
    );
    if !fresh && !args.allow_dirty {
        anyhow::bail!(
            "the stores are not fresh (expected revision 1 and no keys, got {first:?}); \
             start both empty or pass --allow-dirty"
        );
    }
    generator.observe(&initial, &first);

    let started = std::time::Instant::now();
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut errors = 0usize;
    let mut coverage = Coverage::default();
    for n in 1..=args.ops {
        let (kind, op) = generator.next_op();
        let Some(answer) = step(n, &op, &reference, &candidate, &context, args).await? else {
            return Ok(Verdict::Differ);
        };
        *by_kind.entry(kind).or_default() += 1;
        if matches!(answer, Outcome::Error { .. }) {
            errors += 1;
        }
        coverage.tally(&answer, true);
        generator.observe(&op, &answer);
        if context.len() == CONTEXT_OPS {
            context.pop_front();
        }
        context.push_back(format!("#{n} {} -> {}", op.summary(), brief(&answer)));
    }

    // The end: late watches, then writes every watch sees, then reads of
    // the whole lease state; all compared like any other op.
    if let Some((r, c)) = watches.as_mut() {
        let late = watch::late(generator.current_rev(), generator.compact_rev());
        r.add(&late).await?;
        c.add(&late).await?;
        specs.extend(late);
    }
    let mut closing_revs = Vec::new();
    let closing_writes = if watches.is_some() {
        watch::closing_writes()
    } else {
        Vec::new()
    };
    let lease_reads = generator.final_lease_reads();
    let mut n = args.ops;
    for op in closing_writes.iter().chain(&lease_reads) {
        n += 1;
        let Some(answer) = step(n, op, &reference, &candidate, &context, args).await? else {
            return Ok(Verdict::Differ);
        };
        if let (Some(w), Some(rev)) = (watch::write_key(op), answer.header_revision()) {
            closing_revs.push((w, rev));
        }
        if context.len() == CONTEXT_OPS {
            context.pop_front();
        }
        context.push_back(format!("#{n} {} -> {}", op.summary(), brief(&answer)));
    }
    let ops_took = started.elapsed();
    let mut watch_summary = String::new();
    if let Some((r, c)) = watches.as_mut() {
        let final_rev = last_closing_rev(&closing_revs).unwrap_or(generator.current_rev());
        match compare_watches(&specs, &closing_revs, final_rev, r, c, args).await? {
            Some(summary) => {
                watch_summary = format!(
                    "{summary}; ops took {:.1} s, watch checks {:.1} s",
                    ops_took.as_secs_f64(),
                    (started.elapsed() - ops_took).as_secs_f64()
                )
            }
            None => return Ok(Verdict::Differ),
        }
    }

    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let final_rev = current_revision(&reference).await?;
    println!(
        "kv-diff: seed {}: {} ops agree ({}; {errors} answered with an error; \
         txns succeeded/failed {}/{}; ranges returning >12 kvs {}); final revision {final_rev}{watch_summary}",
        args.seed,
        args.ops,
        kinds.join(", "),
        coverage.txn_succeeded,
        coverage.txn_failed,
        coverage.big_ranges,
    );
    Ok(Verdict::Agree)
}

/// Runs op `n` on both servers; returns the reference's answer when both
/// agree, or prints the mismatch report and returns `None`.
async fn step(
    n: usize,
    op: &Op,
    reference: &Server,
    candidate: &Server,
    context: &VecDeque<String>,
    args: &Args,
) -> anyhow::Result<Option<Outcome>> {
    let (r, c) = tokio::join!(reference.run(op), candidate.run(op));
    let (r, c) = (r?, c?);
    if args.verbose {
        println!("#{n} {} -> {}", op.summary(), brief(&r));
    }
    if r.is_server_failure() {
        // Two crashed servers answer alike; that is no agreement. A healthy
        // reference is a precondition of the run, so this is a run error,
        // while a failing candidate (below) is a difference like any other.
        anyhow::bail!(
            "the reference ({}) failed on op #{n} (seed {}):\nrequest:\n{op:#?}\nreference:\n{r:#?}\ncandidate:\n{c:#?}",
            reference.endpoint,
            args.seed
        );
    }
    if r.canonical(op) == c.canonical(op) {
        return Ok(Some(r));
    }
    eprintln!("kv-diff: MISMATCH at op #{n} (seed {})", args.seed);
    if !context.is_empty() {
        eprintln!("previous ops (reference answers):");
        for line in context {
            eprintln!("  {line}");
        }
    }
    eprintln!("request #{n}:\n{}", elide(&format!("{op:#?}")));
    eprintln!("reference ({}):\n{r:#?}", reference.endpoint);
    eprintln!("candidate ({}):\n{c:#?}", candidate.endpoint);
    if r.canonical(op) != r || c.canonical(op) != c {
        eprintln!(
            "(compared after ordering unstably sorted kvs by key within equal sort values)\n\
             reference, compared form:\n{:#?}\ncandidate, compared form:\n{:#?}",
            r.canonical(op),
            c.canonical(op)
        );
    }
    Ok(None)
}

/// The revision of the last closing write.
fn last_closing_rev(closing_revs: &[((&[u8], bool), i64)]) -> Option<i64> {
    closing_revs.iter().map(|(_, rev)| *rev).max()
}

/// Waits until both sides delivered the closing writes to every watch and
/// answered a progress request, then compares every watch's history.
/// Returns a summary when all agree, or prints the differences and returns
/// `None`.
async fn compare_watches(
    specs: &[watch::WatchSpec],
    closing_revs: &[((&[u8], bool), i64)],
    final_rev: i64,
    reference: &mut watch::Side,
    candidate: &mut watch::Side,
    args: &Args,
) -> anyhow::Result<Option<String>> {
    let mut problems = Vec::new();
    reference.wait_created().await.map_err(anyhow::Error::msg)?;
    if let Err(e) = candidate.wait_created().await {
        problems.push(e);
    }
    for (i, s) in specs.iter().enumerate() {
        // The last closing write this watch sees; a watch from a compacted
        // revision waits for its cancellation instead.
        let need = if s.compacted {
            None
        } else {
            closing_revs
                .iter()
                .filter(|((key, put), _)| s.sees(key, *put))
                .map(|(_, rev)| *rev)
                .max()
        };
        if !s.compacted && need.is_none() {
            continue;
        }
        reference
            .wait_for(i, need)
            .await
            .map_err(|e| anyhow::anyhow!("{e} (watch \"{}\")", s.name))?;
        if let Err(e) = candidate.wait_for(i, need).await {
            problems.push(format!("{e} (watch \"{}\")", s.name));
        }
    }
    let progress_ref = reference
        .progress(final_rev)
        .await
        .map_err(anyhow::Error::msg)?;
    match candidate.progress(final_rev).await {
        Ok(id) if id != progress_ref => problems.push(format!(
            "a progress request was answered with watch id {id}, the reference's answer has {progress_ref}"
        )),
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    let (ref_h, ref_strays) = reference.histories();
    let (cand_h, cand_strays) = candidate.histories();
    if !ref_strays.is_empty() {
        anyhow::bail!("the reference sent watch responses that fit no watch: {ref_strays:#?}");
    }
    if !cand_strays.is_empty() {
        problems.push(format!("responses that fit no watch: {cand_strays:#?}"));
    }
    let none = watch::History::default();
    let mut events = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let r = ref_h.get(i).unwrap_or(&none);
        let c = cand_h.get(i).unwrap_or(&none);
        if let Err(d) = watch::compare(s, r, c) {
            problems.push(d);
        }
        events.push(match &r.cancel {
            Some(cancel) => format!("cancelled at {}", cancel.compact_revision),
            None => r.events.len().to_string(),
        });
    }
    if problems.is_empty() {
        return Ok(Some(format!(
            "; {} watches agree (events: {})",
            specs.len(),
            events.join("/")
        )));
    }
    eprintln!("kv-diff: MISMATCH in watches (seed {}):", args.seed);
    for p in problems {
        eprintln!("{p}");
    }
    Ok(None)
}

/// Counts of answers that show the run exercised what matters, for the
/// summary line (a run where every txn fails proves little).
#[derive(Default)]
struct Coverage {
    txn_succeeded: usize,
    txn_failed: usize,
    /// Range answers (top level or in txns) with more than 12 kvs.
    big_ranges: usize,
}

impl Coverage {
    fn tally(&mut self, o: &Outcome, top: bool) {
        match o {
            Outcome::Txn {
                succeeded,
                responses,
                ..
            } => {
                if top && *succeeded {
                    self.txn_succeeded += 1;
                } else if top {
                    self.txn_failed += 1;
                }
                for r in responses {
                    self.tally(r, false);
                }
            }
            Outcome::Range { kvs, .. } if kvs.len() > 12 => self.big_ranges += 1,
            _ => {}
        }
    }
}

/// Lines of a pretty-printed request kept at each end of a long dump (the
/// 129-op txns would otherwise bury the answers under 1,300 lines).
const DUMP_HEAD_LINES: usize = 60;
const DUMP_TAIL_LINES: usize = 20;

/// `text` with its middle lines replaced by a marker when it is long.
fn elide(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= DUMP_HEAD_LINES + DUMP_TAIL_LINES {
        return text.to_string();
    }
    let hidden = lines.len() - DUMP_HEAD_LINES - DUMP_TAIL_LINES;
    let mut out = lines[..DUMP_HEAD_LINES].join("\n");
    out.push_str(&format!("\n    ... {hidden} lines elided ...\n"));
    out.push_str(&lines[lines.len() - DUMP_TAIL_LINES..].join("\n"));
    out
}

/// A one-line gist of an answer for context lines.
fn brief(o: &Outcome) -> String {
    match o {
        Outcome::Error { code, message } => format!("error {code}: {message}"),
        other => format!(
            "ok rev={} kvs={}",
            other.header_revision().unwrap_or(0),
            other.kvs().len()
        ),
    }
}

/// The reference's current revision, for the summary line.
async fn current_revision(reference: &Server) -> anyhow::Result<i64> {
    let probe = Op::Range(RangeReq {
        key: Bytes(vec![0]),
        range_end: Bytes(vec![0]),
        count_only: true,
        ..RangeReq::default()
    });
    Ok(reference.run(&probe).await?.header_revision().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elide_keeps_short_text_and_cuts_long_text() {
        assert_eq!(elide("a\nb"), "a\nb");
        let long: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        let out = elide(&long.join("\n"));
        assert!(out.starts_with("0\n1\n"));
        assert!(out.contains("... 120 lines elided ..."));
        assert!(out.ends_with("198\n199"));
        assert_eq!(out.lines().count(), DUMP_HEAD_LINES + DUMP_TAIL_LINES + 1);
    }
}
