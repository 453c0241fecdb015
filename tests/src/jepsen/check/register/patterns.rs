//! Fast detection of the commonest violations, before any search: in a
//! sweep over the history, each is found in O(n log n) with a witness of two
//! or three operations, however concurrent the history is (where proving
//! them by exhausting every order can blow up).
//!
//! With unique values, a value once replaced never comes back. So an
//! operation `o` needing value `v` is impossible when
//! - `o` completed before `v`'s writer was invoked (a read from the future);
//! - `o` is a cas and another cas that took effect also needed `v`: the
//!   first of them to take effect replaced `v` before the other;
//! - some operation `Y` that puts or needs another value than `v` ran
//!   entirely after an operation `A` that wrote or needed `v`, and entirely
//!   before `o` (`A` ≺ `Y` ≺ `o` in real time): every order puts `A`, `Y`,
//!   `o` in that order, and `Y` proves `v` replaced by then. For `v` the
//!   initial absence, no `A` is needed: anything written or read as present
//!   before `o` began proves the key existed.
//!
//! Everything here works on prepared operations (see `prepare`), whose
//! deadlines every legal order meets. Witnesses are still verified by the
//! search before they are shown.

use std::collections::HashMap;

use super::prepare::{Prepared, Step, ValueId, ABSENT};
use crate::jepsen::history::Nanos;

/// An operation that is impossible with the ones it needs shown, as indices
/// into [`Prepared::ops`].
pub(super) fn find(prepared: &Prepared) -> Option<Vec<usize>> {
    let ops = &prepared.ops;
    let mut writer: HashMap<ValueId, usize> = HashMap::new();
    // For each value, the operation writing or needing it that completes
    // first.
    let mut first_done: HashMap<ValueId, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let written = op.step.writes();
        if let Some(v) = written {
            writer.insert(v, i);
        }
        for v in written.into_iter().chain(op.step.needs()) {
            let first = first_done.entry(v).or_insert(i);
            if op.complete < ops[*first].complete {
                *first = i;
            }
        }
    }
    let mut consumer: HashMap<ValueId, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Step::Cas { expected, .. } = op.step {
            if let Some(&first) = consumer.get(&expected) {
                return Some(vec![first, i]);
            }
            consumer.insert(expected, i);
        }
    }
    let needing: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].step.needs().is_some())
        .collect();
    for &o in &needing {
        let Some(v) = ops[o].step.needs() else {
            continue;
        };
        if let Some(&w) = writer.get(&v) {
            if ops[o].complete < ops[w].invoke {
                return Some(vec![w, o]);
            }
        }
    }

    // Sweep the needing operations by invoke, with every operation that
    // completed before that invoke gathered into the latest-invoked one and
    // the latest-invoked one of another value.
    let mut by_invoke = needing;
    by_invoke.sort_by_key(|&i| ops[i].invoke);
    let mut by_complete: Vec<usize> = (0..ops.len()).collect();
    by_complete.sort_by_key(|&i| ops[i].complete);
    let mut done = by_complete.into_iter().peekable();
    let mut latest = LatestTwo::default();
    for o in by_invoke {
        while let Some(&y) = done.peek() {
            if ops[y].complete >= ops[o].invoke {
                break;
            }
            latest.add(ops[y].invoke, value_of(ops[y].step), y);
            done.next();
        }
        let Some(v) = ops[o].step.needs() else {
            continue;
        };
        let Some((y_invoke, y)) = latest.other_than(v) else {
            continue;
        };
        if v == ABSENT {
            return Some(vec![y, o]);
        }
        if let Some(&a) = first_done.get(&v) {
            if ops[a].complete < y_invoke {
                return Some(vec![a, y, o]);
            }
        }
    }
    None
}

/// The value an operation shows the register held: what it wrote, or for a
/// read, what it saw.
fn value_of(step: Step) -> ValueId {
    match step {
        Step::Read { observed } => observed,
        Step::Write { value } => value,
        Step::Cas { new, .. } => new,
    }
}

/// The latest-invoked operation added, and the latest-invoked one whose
/// value differs from it: enough to answer "the latest one whose value is
/// not `v`" for any `v`.
#[derive(Default)]
struct LatestTwo {
    best: Option<(Nanos, ValueId, usize)>,
    other: Option<(Nanos, ValueId, usize)>,
}

impl LatestTwo {
    fn add(&mut self, invoke: Nanos, value: ValueId, op: usize) {
        let entry = Some((invoke, value, op));
        match self.best {
            Some((b, bv, _)) if invoke <= b => {
                if value != bv && self.other.is_none_or(|(o, _, _)| invoke > o) {
                    self.other = entry;
                }
            }
            Some((_, bv, _)) => {
                if value != bv {
                    self.other = self.best;
                }
                self.best = entry;
            }
            None => self.best = entry,
        }
    }

    fn other_than(&self, v: ValueId) -> Option<(Nanos, usize)> {
        let pick = match self.best {
            Some((_, bv, _)) if bv == v => self.other,
            best => best,
        };
        pick.map(|(invoke, _, op)| (invoke, op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_two_answers_for_any_excluded_value() {
        let mut l = LatestTwo::default();
        assert_eq!(l.other_than(1), None);
        l.add(10, 1, 0);
        assert_eq!(l.other_than(2), Some((10, 0)));
        assert_eq!(l.other_than(1), None);
        l.add(5, 2, 1);
        assert_eq!(l.other_than(1), Some((5, 1)));
        l.add(20, 1, 2);
        assert_eq!(l.other_than(1), Some((5, 1)));
        assert_eq!(l.other_than(3), Some((20, 2)));
        l.add(30, 3, 3);
        assert_eq!(l.other_than(3), Some((20, 2)));
        assert_eq!(l.other_than(1), Some((30, 3)));
        l.add(25, 2, 4);
        assert_eq!(l.other_than(3), Some((25, 4)));
    }
}
