//! The linearizability search over one key's prepared operations, in the
//! manner of Wing & Gong as improved by Lowe (and used by Porcupine): walk
//! the history's invoke and complete entries in time order, place (linearize)
//! some invoked operation as the next effect on the register, and back up
//! when an operation's completion is reached before it could be placed.
//! Every state reached — which operations are placed, what the register
//! holds — is remembered, so no state is searched twice.
//!
//! With `reduce` on, the search also uses two exact shortcuts that keep it
//! near linear on real histories (both rest on values being unique, so a
//! value once overwritten never comes back):
//! - A read that may be placed now and sees what the register holds is
//!   placed at once, with no alternative tried: if any order succeeds, the
//!   one moving that read forward to now does too, since between now and
//!   its old place only reads of the same value can occur.
//! - The register may not move off a value while an unplaced operation still
//!   needs it: that operation could never be placed after.
//!
//! It also merges all values nobody observes into one state.

use std::collections::HashSet;

use super::prepare::{Prepared, Step, ValueId, ABSENT, UNOBSERVED};

/// How to search.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// Use the exact shortcuts described in the module docs.
    pub reduce: bool,
    /// Give up after this many distinct search states.
    pub budget: usize,
    /// Keep the order of the deepest dead end found, for explanations.
    pub record_order: bool,
}

/// Where the search got furthest before failing: a dead end with the most
/// operations placed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Deepest {
    /// How many operations were placed.
    pub depth: usize,
    /// Those operations in order (indices into [`Prepared::ops`]), when
    /// `record_order` was asked.
    pub order: Vec<usize>,
    /// What the register held then.
    pub state: ValueId,
    /// The unplaced operation whose completion the search could not pass.
    pub stuck: usize,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// Some order of the operations is legal.
    Linearizable,
    /// No order is.
    Violation(Deepest),
    /// The budget ran out first.
    GaveUp {
        /// Search states explored.
        explored: usize,
        /// The deepest dead end so far.
        deepest: Deepest,
    },
}

/// Searches for a legal order of `prepared`'s operations.
pub(super) fn search(prepared: &Prepared, options: Options) -> Found {
    Search::new(prepared, options).run()
}

/// The list node before the first entry.
const HEAD: usize = 0;
/// No node.
const NIL: usize = usize::MAX;

/// An operation placed on the current path, with what placing it changed.
struct Frame {
    op: usize,
    state: ValueId,
    lo: usize,
    hi: usize,
    /// Placed by the read shortcut: backing up past it tries no alternative.
    forced: bool,
}

struct Search<'a> {
    prepared: &'a Prepared,
    options: Options,
    /// A doubly linked list of the entries of unplaced operations, in time
    /// order; placing an operation unlinks its two entries and backing up
    /// relinks them (in reverse order, so their own links are still right).
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each entry: its operation, and whether it is the invoke.
    entry_op: Vec<usize>,
    entry_is_call: Vec<bool>,
    call_entry: Vec<usize>,
    return_entry: Vec<usize>,
    /// Which operations are placed, as a bitset.
    placed: Vec<u64>,
    /// Every operation below `lo` is placed, none from `hi` on: the part of
    /// `placed` in between is all a search state needs to name it.
    lo: usize,
    hi: usize,
    state: ValueId,
    /// For each value, how many unplaced operations need it.
    observers: Vec<u32>,
    remaining: usize,
    visited: HashSet<Box<[u64]>>,
    path: Vec<Frame>,
    deepest: Option<Deepest>,
}

impl<'a> Search<'a> {
    fn new(prepared: &'a Prepared, options: Options) -> Self {
        let n = prepared.ops.len();
        // Invokes sort before completions at the same instant: operations
        // that touch are concurrent, the lenient reading of equal times.
        let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
        for (i, op) in prepared.ops.iter().enumerate() {
            entries.push((op.invoke, false, i));
            entries.push((op.complete, true, i));
        }
        entries.sort_unstable();
        let len = entries.len() + 1;
        let mut search = Search {
            prepared,
            options,
            next: vec![NIL; len],
            prev: vec![NIL; len],
            entry_op: vec![0; len],
            entry_is_call: vec![false; len],
            call_entry: vec![0; n],
            return_entry: vec![0; n],
            placed: vec![0; n.div_ceil(64)],
            lo: 0,
            hi: 0,
            state: ABSENT,
            observers: prepared.observers.clone(),
            remaining: n,
            visited: HashSet::new(),
            path: Vec::new(),
            deepest: None,
        };
        for (k, &(_, is_return, op)) in entries.iter().enumerate() {
            let node = k + 1;
            search.prev[node] = k;
            search.next[k] = node;
            search.entry_op[node] = op;
            search.entry_is_call[node] = !is_return;
            if is_return {
                search.return_entry[op] = node;
            } else {
                search.call_entry[op] = node;
            }
        }
        search
    }

    fn run(&mut self) -> Found {
        // `None`: a new state was just reached; `Some(e)`: go on trying the
        // invokes from entry `e` in the current state.
        let mut cursor: Option<usize> = None;
        loop {
            if self.visited.len() > self.options.budget {
                return Found::GaveUp {
                    explored: self.visited.len(),
                    deepest: self.deepest.take().unwrap_or_default(),
                };
            }
            let mut e = match cursor {
                Some(e) => e,
                None => {
                    if self.remaining == 0 {
                        return Found::Linearizable;
                    }
                    if let Some(op) = self.forced_read() {
                        if !self.place(op, self.state, true) {
                            // Placing it leads to a state already searched
                            // (and failed), and nothing else is worth trying.
                            match self.back_up() {
                                Some(e) => cursor = Some(e),
                                None => return self.violation(),
                            }
                        }
                        continue;
                    }
                    self.next[HEAD]
                }
            };
            cursor = None;
            let mut moved = false;
            while e != NIL && self.entry_is_call[e] {
                let op = self.entry_op[e];
                if let Some(state) = self.effect(op) {
                    if self.place(op, state, false) {
                        moved = true;
                        break;
                    }
                }
                e = self.next[e];
            }
            if moved {
                continue;
            }
            if e != NIL {
                self.dead_end(self.entry_op[e]);
            }
            match self.back_up() {
                Some(e) => cursor = Some(e),
                None => return self.violation(),
            }
        }
    }

    fn violation(&mut self) -> Found {
        Found::Violation(self.deepest.take().unwrap_or_default())
    }

    /// With `reduce`: an invoked read that sees what the register holds.
    fn forced_read(&self) -> Option<usize> {
        if !self.options.reduce {
            return None;
        }
        let mut e = self.next[HEAD];
        while e != NIL && self.entry_is_call[e] {
            let op = self.entry_op[e];
            if self.prepared.ops[op].step
                == (Step::Read {
                    observed: self.state,
                })
            {
                return Some(op);
            }
            e = self.next[e];
        }
        None
    }

    /// What the register holds after `op` is placed now, if it can be.
    fn effect(&self, op: usize) -> Option<ValueId> {
        let reduce = self.options.reduce;
        let still_needed = |v: ValueId| v != UNOBSERVED && self.observers[v as usize] > 0;
        match self.prepared.ops[op].step {
            Step::Read { observed } => (observed == self.state).then_some(self.state),
            Step::Write { value } => {
                if reduce && still_needed(self.state) {
                    None
                } else if reduce {
                    Some(self.prepared.canonical(value))
                } else {
                    Some(value)
                }
            }
            Step::Cas { expected, new } => {
                if expected != self.state || (reduce && self.observers[expected as usize] > 1) {
                    None
                } else if reduce {
                    Some(self.prepared.canonical(new))
                } else {
                    Some(new)
                }
            }
        }
    }

    /// Places `op`, leaving the register at `state`, unless the resulting
    /// search state was reached before.
    fn place(&mut self, op: usize, state: ValueId, forced: bool) -> bool {
        let frame = Frame {
            op,
            state: self.state,
            lo: self.lo,
            hi: self.hi,
            forced,
        };
        self.placed[op / 64] |= 1 << (op % 64);
        self.hi = self.hi.max(op + 1);
        if op == self.lo {
            self.advance_lo();
        }
        if !self.visited.insert(self.key(state)) {
            self.placed[op / 64] &= !(1 << (op % 64));
            self.lo = frame.lo;
            self.hi = frame.hi;
            return false;
        }
        self.state = state;
        if let Some(v) = self.prepared.ops[op].step.needs() {
            self.observers[v as usize] -= 1;
        }
        self.remaining -= 1;
        self.unlink(self.call_entry[op]);
        self.unlink(self.return_entry[op]);
        self.path.push(frame);
        true
    }

    /// Undoes placements back to the last one that has alternatives left,
    /// and returns the entry after it, where trying alternatives resumes.
    fn back_up(&mut self) -> Option<usize> {
        while let Some(frame) = self.path.pop() {
            let op = frame.op;
            self.relink(self.return_entry[op]);
            self.relink(self.call_entry[op]);
            self.remaining += 1;
            if let Some(v) = self.prepared.ops[op].step.needs() {
                self.observers[v as usize] += 1;
            }
            self.placed[op / 64] &= !(1 << (op % 64));
            self.state = frame.state;
            self.lo = frame.lo;
            self.hi = frame.hi;
            if !frame.forced {
                return Some(self.next[self.call_entry[op]]);
            }
        }
        None
    }

    fn advance_lo(&mut self) {
        let n = self.prepared.ops.len();
        while self.lo < n {
            let bit = self.lo % 64;
            let run =
                ((!(self.placed[self.lo / 64] >> bit)).trailing_zeros() as usize).min(64 - bit);
            self.lo += run;
            if run < 64 - bit {
                break;
            }
        }
        self.lo = self.lo.min(n);
    }

    /// Names the current set of placed operations plus `state` exactly.
    fn key(&self, state: ValueId) -> Box<[u64]> {
        let mut key = vec![(u64::from(state) << 32) | self.lo as u64];
        if self.hi > self.lo {
            key.extend_from_slice(&self.placed[self.lo / 64..=(self.hi - 1) / 64]);
        }
        key.into_boxed_slice()
    }

    fn dead_end(&mut self, stuck: usize) {
        let depth = self.path.len();
        if self.deepest.as_ref().is_some_and(|d| d.depth >= depth) {
            return;
        }
        let order = if self.options.record_order {
            self.path.iter().map(|f| f.op).collect()
        } else {
            Vec::new()
        };
        self.deepest = Some(Deepest {
            depth,
            order,
            state: self.state,
            stuck,
        });
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }
}
