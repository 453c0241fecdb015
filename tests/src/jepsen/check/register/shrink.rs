//! Finds a small part of a key's history that is still not linearizable, so
//! a person can see the violation: first a window of operations around where
//! the search got stuck, grown until it fails on its own, then shrunk by
//! removing operations as long as what is left still fails.
//!
//! Subsets are always *closed*: an operation that needs a value keeps the
//! operation that wrote it. Linearizability is monotone on closed subsets (a
//! legal order of the whole, with the other operations deleted, stays legal:
//! each kept observation still follows its kept writer with only reads in
//! between), so a failing closed subset proves the whole fails, and removing
//! a writer can never fake a violation ("read of a value never written").

use std::collections::{BTreeSet, HashMap};

use super::prepare::{needed, prepare, relevant, written, Rejection};
use super::search::{search, Found, Options};
use crate::jepsen::history::RegisterOperation;

/// Search states a test of one subset may explore: subsets are small, and a
/// subset that needs more is simply kept rather than removed.
const SUBSET_BUDGET: usize = 200_000;

/// A smallest failing closed subset of `ops` found around `stuck` and
/// `related` (indices into `ops`; the result ascending), or `None` if no
/// subset could be shown to fail within the budgets.
pub(super) fn minimal_failing(
    ops: &[&RegisterOperation],
    stuck: usize,
    related: &[usize],
) -> Option<Vec<usize>> {
    let shrinker = Shrinker::new(ops);
    let window = shrinker.failing_window(stuck, related)?;
    Some(shrinker.minimize(window))
}

/// The smallest failing closed subset of `witness` (indices into `ops`)
/// and what it needs, if the witness does fail.
pub(super) fn shrink_witness(ops: &[&RegisterOperation], witness: &[usize]) -> Option<Vec<usize>> {
    let shrinker = Shrinker::new(ops);
    let window = shrinker.close(witness.iter().copied().collect());
    shrinker.fails(&window).then(|| shrinker.minimize(window))
}

struct Shrinker<'a> {
    ops: &'a [&'a RegisterOperation],
    /// The operation that may have written each value.
    writer: HashMap<u64, usize>,
    /// Relevant operations by invoke time.
    by_invoke: Vec<usize>,
}

impl<'a> Shrinker<'a> {
    fn new(ops: &'a [&'a RegisterOperation]) -> Self {
        let mut by_invoke: Vec<usize> = (0..ops.len()).filter(|&i| relevant(ops[i])).collect();
        by_invoke.sort_by_key(|&i| (ops[i].invoke, i));
        let writer = by_invoke
            .iter()
            .filter_map(|&i| written(ops[i]).map(|v| (v, i)))
            .collect();
        Shrinker {
            ops,
            writer,
            by_invoke,
        }
    }

    /// `stuck`, `related` and the operations within `k` places of `stuck`
    /// (by invoke), closed, for `k` = 0, 8, 16, ... until the window fails
    /// by itself.
    fn failing_window(&self, stuck: usize, related: &[usize]) -> Option<BTreeSet<usize>> {
        let at = self.by_invoke.iter().position(|&i| i == stuck).unwrap_or(0);
        let len = self.by_invoke.len();
        let mut k = 0;
        loop {
            let from = at.saturating_sub(k);
            let to = (at + k + 1).min(len);
            let near = self.by_invoke[from..to].iter();
            let window = self.close(near.chain(related).copied().collect());
            if self.fails(&window) {
                return Some(window);
            }
            if from == 0 && to == len {
                return None;
            }
            k = (2 * k).max(8);
        }
    }

    /// Removes chunks of halving size while what is left still fails, then
    /// single operations until none can go.
    fn minimize(&self, window: BTreeSet<usize>) -> Vec<usize> {
        let mut current: Vec<usize> = window.into_iter().collect();
        let mut chunk = (current.len() / 2).max(1);
        loop {
            let mut removed_any = false;
            let mut i = 0;
            while i < current.len() {
                let end = (i + chunk).min(current.len());
                let rest = current[..i]
                    .iter()
                    .chain(&current[end..])
                    .copied()
                    .collect();
                let candidate = self.close(rest);
                if candidate.len() < current.len() && self.fails(&candidate) {
                    current = candidate.into_iter().collect();
                    removed_any = true;
                } else {
                    i += chunk;
                }
            }
            if chunk > 1 {
                chunk /= 2;
            } else if !removed_any {
                return current;
            }
        }
    }

    /// Adds the writer of every value an operation of `set` needs, until
    /// nothing is missing.
    fn close(&self, mut set: BTreeSet<usize>) -> BTreeSet<usize> {
        let mut todo: Vec<usize> = set.iter().copied().collect();
        while let Some(i) = todo.pop() {
            if let Some(Some(v)) = needed(self.ops[i]) {
                if let Some(&w) = self.writer.get(&v) {
                    if set.insert(w) {
                        todo.push(w);
                    }
                }
            }
        }
        set
    }

    fn fails(&self, set: &BTreeSet<usize>) -> bool {
        let subset: Vec<&RegisterOperation> = set.iter().map(|&i| self.ops[i]).collect();
        match prepare(&subset) {
            Err(Rejection::NeverWritten { .. }) => true,
            Err(_) => false,
            Ok(prepared) => matches!(
                search(
                    &prepared,
                    Options {
                        reduce: true,
                        budget: SUBSET_BUDGET,
                        record_order: false,
                    },
                ),
                Found::Violation(_)
            ),
        }
    }
}
