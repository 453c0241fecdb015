//! Check 1: the register operations are linearizable. Keys are independent
//! registers and linearizability is compositional, so each key is checked on
//! its own: prepared (see `prepare`), scanned for the commonest violations
//! (see `patterns`), searched for a legal order (see `search`), and on
//! failure shrunk to a small failing part (see `shrink`) that the
//! explanation shows.

mod patterns;
mod prepare;
mod search;
mod shrink;
#[cfg(test)]
mod simulate;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use self::prepare::{prepare, Prepared, PreparedOp, Rejection, Step, ValueId, UNOBSERVED};
use self::search::{search, Deepest, Found, Options};
use super::report::CheckResult;
use super::{describe, LINEARIZABLE_REGISTERS as NAME};
use crate::jepsen::history::{Recording, RegisterOperation};

/// Search states the first pass over a key may explore, per operation and
/// at least: linearizable histories need one to ten per operation (more
/// with more concurrency), while proving a violation by exhausting every
/// order before it can take far more than finding a small failing window.
const FIRST_PASS_PER_OP: usize = 16;
/// The first pass's budget for short histories.
const FIRST_PASS_MIN: usize = 100_000;

/// Search states one key's search may explore before giving up: each is
/// remembered in some 60 bytes, so this bounds a search to about 120 MB.
const KEY_BUDGET: usize = 2_000_000;

/// At most this many failing keys are explained in full.
const EXPLAINED_KEYS: usize = 3;

/// What one key's history turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyVerdict {
    /// Some legal order exists.
    Linearizable,
    /// None does (or the recording is malformed); the text shows why.
    Violation(String),
    /// The search gave up; the text says where.
    Inconclusive(String),
}

/// Checks every key's register operations.
pub(crate) fn check(recording: &Recording) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<&RegisterOperation>> = BTreeMap::new();
    for op in &recording.registers {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut violations = Vec::new();
    let mut inconclusive = Vec::new();
    for ops in by_key.values() {
        match check_key(ops) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Violation(why) => violations.push(why),
            KeyVerdict::Inconclusive(why) => inconclusive.push(why),
        }
    }
    let checked = recording.registers.len();
    let unit = "operations";
    if !violations.is_empty() {
        let failed = violations.len();
        let mut why = format!("{failed} of {} keys are not linearizable.", by_key.len());
        for text in violations.iter().chain(&inconclusive).take(EXPLAINED_KEYS) {
            why.push_str("\n\n");
            why.push_str(text);
        }
        let rest = (violations.len() + inconclusive.len()).saturating_sub(EXPLAINED_KEYS);
        if rest > 0 {
            let _ = write!(why, "\n\n({rest} more keys not shown.)");
        }
        CheckResult::fail(NAME, checked, unit, why)
    } else if !inconclusive.is_empty() {
        CheckResult::inconclusive(NAME, checked, unit, inconclusive.join("\n\n"))
    } else {
        CheckResult::pass(NAME, checked, unit)
    }
}

/// Checks one key's operations (all of one key).
pub(super) fn check_key(ops: &[&RegisterOperation]) -> KeyVerdict {
    let key = ops.first().map(|op| op.key.as_str()).unwrap_or_default();
    let prepared = match prepare(ops) {
        Ok(prepared) => prepared,
        Err(rejection) => return KeyVerdict::Violation(explain_rejection(key, ops, &rejection)),
    };
    if let Some(witness) = patterns::find(&prepared) {
        let witness = with_deadlines(&prepared, &witness);
        if let Some(minimal) = shrink::shrink_witness(ops, &witness) {
            return KeyVerdict::Violation(explain_violation(key, ops, Some(minimal)));
        }
    }
    search_key(key, ops, &prepared)
}

/// Decides one key by searching, after the quick scans found nothing.
fn search_key(key: &str, ops: &[&RegisterOperation], prepared: &Prepared) -> KeyVerdict {
    let source = |deepest: &Deepest| prepared.ops.get(deepest.stuck).map(|op| op.source);
    let shrink = |deepest: &Deepest| {
        let stuck = prepared.ops.get(deepest.stuck)?;
        // Where the search stuck, the register held a value and could not
        // place an operation: the reason usually lies with what needs that
        // value or the operation's own, however far in the future.
        let mut related = needing(prepared, deepest.state);
        let own = [stuck.step.needs(), stuck.step.writes()];
        for v in own.into_iter().flatten().filter(|&v| v != deepest.state) {
            related.extend(needing(prepared, v));
        }
        shrink::minimal_failing(ops, stuck.source, &related)
    };
    let first_pass = Options {
        reduce: true,
        budget: (FIRST_PASS_PER_OP * prepared.ops.len()).max(FIRST_PASS_MIN),
        record_order: false,
    };
    let deepest = match search(prepared, first_pass) {
        Found::Linearizable => return KeyVerdict::Linearizable,
        Found::Violation(deepest) => {
            return KeyVerdict::Violation(explain_violation(key, ops, shrink(&deepest)));
        }
        Found::GaveUp { deepest, .. } => deepest,
    };
    // A closed window around where the search got stuck that fails by
    // itself proves the whole key fails (see `shrink`).
    if let Some(minimal) = shrink(&deepest) {
        return KeyVerdict::Violation(explain_violation(key, ops, Some(minimal)));
    }
    let full = Options {
        budget: KEY_BUDGET,
        ..first_pass
    };
    match search(prepared, full) {
        Found::Linearizable => KeyVerdict::Linearizable,
        Found::Violation(_) => KeyVerdict::Violation(explain_violation(key, ops, None)),
        Found::GaveUp { explored, deepest } => {
            let at = source(&deepest)
                .map(|i| describe::register_op(ops[i]))
                .unwrap_or_default();
            KeyVerdict::Inconclusive(format!(
                "key {key:?}: gave up after {explored} search states ({} of {} operations \
                 placed at best, stuck at: {at}).",
                deepest.depth,
                prepared.ops.len(),
            ))
        }
    }
}

/// The sources of `witness` (indices into `prepared.ops`) and of the
/// observations their deadlines came from, transitively: the witness relies
/// on those deadlines.
fn with_deadlines(prepared: &Prepared, witness: &[usize]) -> Vec<usize> {
    let by_source: HashMap<usize, &PreparedOp> =
        prepared.ops.iter().map(|op| (op.source, op)).collect();
    let mut sources: Vec<usize> = witness.iter().map(|&i| prepared.ops[i].source).collect();
    let mut next = 0;
    while next < sources.len() {
        let from = by_source
            .get(&sources[next])
            .and_then(|op| op.deadline_from);
        if let Some(from) = from.filter(|f| !sources.contains(f)) {
            sources.push(from);
        }
        next += 1;
    }
    sources
}

/// The operations (indices into the key's slice) that need the register to
/// hold `state`.
fn needing(prepared: &Prepared, state: ValueId) -> Vec<usize> {
    prepared
        .ops
        .iter()
        .filter(|op| op.step.needs() == Some(state))
        .map(|op| op.source)
        .collect()
}

fn explain_rejection(key: &str, ops: &[&RegisterOperation], rejection: &Rejection) -> String {
    let line = |i: usize| format!("\n  {}", describe::register_op(ops[i]));
    match *rejection {
        Rejection::Backwards { op } => {
            format!(
                "key {key:?}: malformed recording, an operation completes before its invoke:{}",
                line(op)
            )
        }
        Rejection::DuplicateValue {
            value,
            first,
            second,
        } => format!(
            "key {key:?}: malformed recording, two operations that may both have taken effect \
             wrote {value} (values must be unique per key):{}{}",
            line(first),
            line(second)
        ),
        Rejection::NeverWritten {
            observer,
            value,
            failed_writer,
            required_by,
        } => {
            let mut why = format!(
                "key {key:?}: not linearizable, an operation that took effect needed the key to \
                 hold {value}, which no operation that could have taken effect wrote:{}",
                line(observer)
            );
            if let Some(by) = required_by {
                let _ = write!(
                    why,
                    "\n(it took effect, since this one saw what it wrote:{})",
                    line(by)
                );
            }
            if let Some(w) = failed_writer {
                let _ = write!(
                    why,
                    "\n(only this failed operation tried to write {value}:{})",
                    line(w)
                );
            }
            why
        }
    }
}

/// Explains a violation by its smallest failing part, when one was found.
fn explain_violation(key: &str, ops: &[&RegisterOperation], minimal: Option<Vec<usize>>) -> String {
    let relevant = ops.iter().filter(|op| prepare::relevant(op)).count();
    let Some(minimal) = minimal else {
        return format!(
            "key {key:?}: not linearizable (no order of its {relevant} operations works; no \
             smaller failing part was found within the search budgets)."
        );
    };
    let mut subset: Vec<&RegisterOperation> = minimal.iter().map(|&i| ops[i]).collect();
    subset.sort_by_key(|op| (op.invoke, op.complete));
    let mut why = format!(
        "key {key:?}: not linearizable. No order of these {} operations (a smallest failing \
         part of the key's {relevant}) agrees with both a register and real time:",
        subset.len()
    );
    for op in &subset {
        let _ = write!(why, "\n  {}", describe::register_op(op));
    }
    if let Some(text) = longest_order(&subset) {
        why.push('\n');
        why.push_str(&text);
    }
    why
}

/// Orders placed in an explanation are cut to their last this many.
const SHOWN_ORDER: usize = 12;

/// Describes how far a plain search (no shortcuts, so it goes as far as it
/// can) gets through a small failing history, and what stops it.
fn longest_order(subset: &[&RegisterOperation]) -> Option<String> {
    let prepared = prepare(subset).ok()?;
    let options = Options {
        reduce: false,
        budget: 1_000_000,
        record_order: true,
    };
    let Found::Violation(deepest) = search(&prepared, options) else {
        return None;
    };
    Some(describe_deepest(subset, &prepared, &deepest))
}

fn describe_deepest(
    subset: &[&RegisterOperation],
    prepared: &Prepared,
    deepest: &Deepest,
) -> String {
    let short = |i: usize| {
        let op = subset[prepared.ops[i].source];
        format!("p{} {}", op.process, describe::register_op_kind(&op.op))
    };
    let holds = if deepest.state == UNOBSERVED {
        "a value nobody observes".to_string()
    } else {
        describe::value(prepared.values[deepest.state as usize])
    };
    let mut text = String::from("The longest order that works: ");
    let skipped = deepest.order.len().saturating_sub(SHOWN_ORDER);
    if deepest.order.is_empty() {
        text.push_str("none (not even a first operation)");
    } else if skipped > 0 {
        let _ = write!(text, "({skipped} earlier), ");
    }
    let shown: Vec<String> = deepest.order[skipped..].iter().map(|&i| short(i)).collect();
    text.push_str(&shown.join(", "));
    let _ = write!(text, "; the key then holds {holds}. Next must come ");
    let stuck = &prepared.ops[deepest.stuck];
    let fits = match stuck.step {
        Step::Read { observed } => observed == deepest.state,
        Step::Cas { expected, .. } => expected == deepest.state,
        Step::Write { .. } => true,
    };
    let _ = write!(text, "{}", short(deepest.stuck));
    if fits {
        text.push_str(", but no order of the rest works after it.");
    } else {
        text.push_str(", which does not fit that.");
    }
    text
}
