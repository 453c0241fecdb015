//! Turns one key's recorded operations into the search's input: it drops what
//! carries no information, decides which uncertain operations must have
//! taken effect and by when, and names every value by a small id.
//!
//! Every reduction here keeps the answer exact (a history is linearizable
//! iff its prepared form is); the argument for each sits beside it. They all
//! rest on the workload's promise that no two operations write the same
//! value to a key, so a value names the one operation that wrote it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::jepsen::history::{Nanos, Outcome, RegisterOp, RegisterOperation};

/// A register value as the search knows it: an index into
/// [`Prepared::values`].
pub(super) type ValueId = u32;

/// The id of "the key does not exist", the register's initial state.
pub(super) const ABSENT: ValueId = 0;

/// The id standing for every value no remaining operation observes. Such
/// values are interchangeable for the rest of a search (no read or compare
/// can match any of them), so merging them makes more search states equal.
pub(super) const UNOBSERVED: ValueId = ValueId::MAX;

/// What a prepared operation does to the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Needs the register to hold `observed`.
    Read {
        /// The value read.
        observed: ValueId,
    },
    /// Sets the register to `value`.
    Write {
        /// The value written.
        value: ValueId,
    },
    /// Needs the register to hold `expected`, then sets it to `new`.
    Cas {
        /// The value the compare required.
        expected: ValueId,
        /// The value put.
        new: ValueId,
    },
}

impl Step {
    /// The value this step needs the register to hold, if any.
    pub(super) fn needs(self) -> Option<ValueId> {
        match self {
            Step::Read { observed } => Some(observed),
            Step::Cas { expected, .. } => Some(expected),
            Step::Write { .. } => None,
        }
    }

    /// The value this step puts, if any.
    pub(super) fn writes(self) -> Option<ValueId> {
        match self {
            Step::Read { .. } => None,
            Step::Write { value } => Some(value),
            Step::Cas { new, .. } => Some(new),
        }
    }
}

/// An operation that must take effect, within `[invoke, complete]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PreparedOp {
    /// Its index in the slice given to [`prepare`].
    pub source: usize,
    /// When it was invoked.
    pub invoke: Nanos,
    /// The latest time it can take effect: its completion, or for an
    /// operation that must precede an observation of its value, that
    /// observation's latest time if earlier.
    pub complete: Nanos,
    /// What it does.
    pub step: Step,
    /// When `complete` is an observation's deadline rather than its own
    /// completion: that observer (an index like `source`). A part of the
    /// history relying on this deadline must keep that observer too.
    pub deadline_from: Option<usize>,
}

/// One key's history, ready for the search.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    /// The operations that must take effect, by invoke time.
    pub ops: Vec<PreparedOp>,
    /// Each id's value; `values[ABSENT]` is `None`.
    pub values: Vec<Option<u64>>,
    /// For each id, how many operations of `ops` need the register to hold
    /// it.
    pub observers: Vec<u32>,
}

impl Prepared {
    /// The id a search that merges unobserved values uses for `id`.
    pub(super) fn canonical(&self, id: ValueId) -> ValueId {
        if self.observers[id as usize] == 0 {
            UNOBSERVED
        } else {
            id
        }
    }
}

/// Why a key's history cannot be prepared; indices are into the slice given
/// to [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rejection {
    /// The operation completed before it was invoked: a malformed recording.
    Backwards {
        /// The operation.
        op: usize,
    },
    /// Two operations that may both have taken effect wrote the same value,
    /// breaking the workload's promise: a malformed recording.
    DuplicateValue {
        /// The value.
        value: u64,
        /// The first operation writing it.
        first: usize,
        /// The second.
        second: usize,
    },
    /// An operation that must have taken effect needed the register to hold
    /// a value no operation that could have taken effect wrote: not
    /// linearizable.
    NeverWritten {
        /// The operation.
        observer: usize,
        /// The value it needed.
        value: u64,
        /// A failed operation that tried to write the value, if any.
        failed_writer: Option<usize>,
        /// When `observer` itself did not complete: the operation whose
        /// observation shows it took effect.
        required_by: Option<usize>,
    },
}

/// The value an operation writes if it takes effect.
pub(super) fn written(op: &RegisterOperation) -> Option<u64> {
    match op.op {
        RegisterOp::Read { .. } => None,
        RegisterOp::Write { value } => Some(value),
        RegisterOp::Cas { new, .. } => Some(new),
    }
}

/// The value an operation needs the register to hold to take effect
/// (`Some(None)`: needs the key absent), if any.
pub(super) fn needed(op: &RegisterOperation) -> Option<Option<u64>> {
    match op.op {
        RegisterOp::Read { observed } => Some(observed),
        RegisterOp::Cas { expected, .. } => Some(expected),
        RegisterOp::Write { .. } => None,
    }
}

/// Whether an operation can matter to linearizability at all. A failed
/// write or cas took no effect and a read that did not return Ok saw
/// nothing, so dropping them leaves the same set of legal orders.
pub(super) fn relevant(op: &RegisterOperation) -> bool {
    match op.outcome {
        Outcome::Ok => true,
        Outcome::Fail => false,
        Outcome::Unknown => !matches!(op.op, RegisterOp::Read { .. }),
    }
}

/// Prepares one key's operations (all of the same key) for the search.
pub(super) fn prepare(ops: &[&RegisterOperation]) -> Result<Prepared, Rejection> {
    let (writers, failed_writers) = writers(ops)?;

    // Which operations must take effect, and by when. An Ok operation must,
    // by its completion. An Unknown write or cas may take effect at any time
    // after its invoke or never; but once an operation that must take effect
    // needs its value, it must have taken effect (only it wrote that value),
    // and before that observer: so it joins the required set with the
    // observer's deadline. Any writer (Ok ones too) gains the same tighter
    // deadline, which every legal order meets anyway. Deadlines only shrink,
    // so settling them cheapest first (as shortest paths) visits each
    // operation's final deadline once.
    //
    // Unknown operations left out are exactly those whose value no required
    // operation needs. Dropping them is exact: take a legal order of the
    // full history and delete them; every remaining read or cas needed a
    // value written by a kept operation, and between that write and the
    // observation only reads happened (the value, being unique, cannot come
    // back once overwritten), so each still sees what it saw.
    let mut deadline: Vec<Option<Nanos>> = ops
        .iter()
        .map(|op| (op.outcome == Outcome::Ok).then_some(op.complete))
        .collect();
    let mut required_by: Vec<Option<usize>> = vec![None; ops.len()];
    let mut deadline_from: Vec<Option<usize>> = vec![None; ops.len()];
    let mut queue: BinaryHeap<Reverse<(Nanos, usize)>> = deadline
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.map(|d| Reverse((d, i))))
        .collect();
    while let Some(Reverse((by, i))) = queue.pop() {
        if deadline[i] != Some(by) {
            continue;
        }
        let Some(Some(value)) = needed(ops[i]) else {
            continue;
        };
        let Some(&w) = writers.get(&value) else {
            return Err(Rejection::NeverWritten {
                observer: i,
                value,
                failed_writer: failed_writers.get(&value).copied(),
                required_by: required_by[i],
            });
        };
        // An observer that completed before its writer was invoked leaves an
        // empty interval; clamping keeps the search's entries ordered and it
        // still finds the violation (the observer cannot be placed).
        let by = by.max(ops[w].invoke);
        if deadline[w].is_none_or(|d| by < d) {
            if deadline[w].is_none() {
                required_by[w] = Some(i);
            }
            deadline[w] = Some(by);
            deadline_from[w] = Some(i);
            queue.push(Reverse((by, w)));
        }
    }

    let mut ids: HashMap<Option<u64>, ValueId> = HashMap::from([(None, ABSENT)]);
    let mut values: Vec<Option<u64>> = vec![None];
    let mut id_of = |v: Option<u64>| -> ValueId {
        *ids.entry(v).or_insert_with(|| {
            values.push(v);
            (values.len() - 1) as ValueId
        })
    };
    let mut kept: Vec<PreparedOp> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Some(complete) = deadline[i] else {
            continue;
        };
        let step = match op.op {
            RegisterOp::Read { observed } => Step::Read {
                observed: id_of(observed),
            },
            RegisterOp::Write { value } => Step::Write {
                value: id_of(Some(value)),
            },
            RegisterOp::Cas { expected, new } => Step::Cas {
                expected: id_of(expected),
                new: id_of(Some(new)),
            },
        };
        kept.push(PreparedOp {
            source: i,
            invoke: op.invoke,
            complete,
            step,
            deadline_from: deadline_from[i],
        });
    }
    kept.sort_by_key(|op| (op.invoke, op.complete, op.source));
    let mut observers = vec![0u32; values.len()];
    for op in &kept {
        if let Some(id) = op.step.needs() {
            observers[id as usize] += 1;
        }
    }
    Ok(Prepared {
        ops: kept,
        values,
        observers,
    })
}

/// Which operation wrote each value: those that may have taken effect, and
/// (for explanations) failed ones. Also rejects malformed operations.
type Writers = (HashMap<u64, usize>, HashMap<u64, usize>);

fn writers(ops: &[&RegisterOperation]) -> Result<Writers, Rejection> {
    let mut writers: HashMap<u64, usize> = HashMap::new();
    let mut failed: HashMap<u64, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.complete < op.invoke {
            return Err(Rejection::Backwards { op: i });
        }
        let Some(value) = written(op) else {
            continue;
        };
        if op.outcome == Outcome::Fail {
            failed.entry(value).or_insert(i);
        } else if let Some(&first) = writers.get(&value) {
            return Err(Rejection::DuplicateValue {
                value,
                first,
                second: i,
            });
        } else {
            writers.insert(value, i);
        }
    }
    Ok((writers, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: RegisterOp, invoke: Nanos, complete: Nanos, outcome: Outcome) -> RegisterOperation {
        RegisterOperation {
            process: 0,
            key: "k".into(),
            op,
            invoke,
            complete,
            outcome,
        }
    }

    fn read(v: Option<u64>, i: Nanos, c: Nanos) -> RegisterOperation {
        op(RegisterOp::Read { observed: v }, i, c, Outcome::Ok)
    }

    fn write(v: u64, i: Nanos, c: Nanos, o: Outcome) -> RegisterOperation {
        op(RegisterOp::Write { value: v }, i, c, o)
    }

    fn refs(ops: &[RegisterOperation]) -> Vec<&RegisterOperation> {
        ops.iter().collect()
    }

    #[test]
    fn failed_and_unanswered_operations_without_consequence_are_dropped() {
        let ops = [
            write(1, 0, 10, Outcome::Ok),
            write(2, 0, 10, Outcome::Fail),
            write(3, 0, 10, Outcome::Unknown),
            op(
                RegisterOp::Read { observed: Some(2) },
                0,
                10,
                Outcome::Unknown,
            ),
            read(Some(1), 20, 30),
        ];
        let p = prepare(&refs(&ops)).unwrap();
        let sources: Vec<usize> = p.ops.iter().map(|o| o.source).collect();
        assert_eq!(sources, vec![0, 4]);
        assert_eq!(p.ops[0].step, Step::Write { value: 1 });
        assert_eq!(p.values[1], Some(1));
        assert_eq!(p.observers, vec![0, 1]);
        assert_eq!(p.canonical(1), 1);
        assert_eq!(p.canonical(ABSENT), UNOBSERVED);
    }

    #[test]
    fn an_unknown_write_that_was_read_must_precede_the_read() {
        let ops = [write(7, 5, 10, Outcome::Unknown), read(Some(7), 100, 200)];
        let p = prepare(&refs(&ops)).unwrap();
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.ops[0].source, 0);
        assert_eq!(p.ops[0].complete, 200, "the write's deadline is the read's");
        assert_eq!(p.ops[0].deadline_from, Some(1));
        assert_eq!(p.ops[1].deadline_from, None);
    }

    #[test]
    fn requirements_follow_chains_of_unknown_compare_and_sets() {
        let ops = [
            write(1, 0, 10, Outcome::Unknown),
            op(
                RegisterOp::Cas {
                    expected: Some(1),
                    new: 2,
                },
                20,
                30,
                Outcome::Unknown,
            ),
            op(
                RegisterOp::Cas {
                    expected: Some(2),
                    new: 3,
                },
                40,
                50,
                Outcome::Unknown,
            ),
            read(Some(2), 60, 70),
        ];
        let p = prepare(&refs(&ops)).unwrap();
        let kept: Vec<(usize, Nanos)> = p.ops.iter().map(|o| (o.source, o.complete)).collect();
        // The second cas (2 -> 3) is needed by nobody, so it is dropped; the
        // first and the write it needs must precede the read.
        assert_eq!(kept, vec![(0, 70), (1, 70), (3, 70)]);
    }

    #[test]
    fn a_read_of_a_value_only_a_failed_write_wrote_is_rejected() {
        let ops = [write(9, 0, 10, Outcome::Fail), read(Some(9), 20, 30)];
        assert_eq!(
            prepare(&refs(&ops)).unwrap_err(),
            Rejection::NeverWritten {
                observer: 1,
                value: 9,
                failed_writer: Some(0),
                required_by: None,
            }
        );
    }

    #[test]
    fn malformed_recordings_are_rejected() {
        let ops = [
            write(1, 0, 10, Outcome::Ok),
            write(1, 20, 30, Outcome::Unknown),
        ];
        assert_eq!(
            prepare(&refs(&ops)).unwrap_err(),
            Rejection::DuplicateValue {
                value: 1,
                first: 0,
                second: 1
            }
        );
        let ops = [write(1, 10, 5, Outcome::Ok)];
        assert_eq!(
            prepare(&refs(&ops)).unwrap_err(),
            Rejection::Backwards { op: 0 }
        );
    }
}
