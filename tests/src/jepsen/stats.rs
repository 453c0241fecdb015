//! What a run did, in numbers: operations by type and outcome, lock holds,
//! watch deliveries, the faults injected with their times, and problems
//! the run itself noticed (outside the checks).

use std::fmt;
use std::time::Duration;

use super::faults::FaultKind;
use super::history::{Outcome, Recording, RegisterOp};
use super::nemesis::FaultRecord;

/// Operations of one type, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Acknowledged.
    pub ok: usize,
    /// Certainly without effect.
    pub fail: usize,
    /// Outcome unknown.
    pub unknown: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }

    /// All of them.
    pub fn total(&self) -> usize {
        self.ok + self.fail + self.unknown
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>7} ({} ok, {} failed, {} unknown)",
            self.total(),
            self.ok,
            self.fail,
            self.unknown
        )
    }
}

/// A run in numbers.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Cluster size.
    pub members: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// How long the workload ran.
    pub workload: Duration,
    /// The fault kinds asked for.
    pub kinds: Vec<FaultKind>,
    /// Register reads.
    pub reads: Tally,
    /// Register puts.
    pub writes: Tally,
    /// Register compare-and-swaps.
    pub cas: Tally,
    /// Fenced writes.
    pub fenced: Tally,
    /// Lock holds.
    pub holds: usize,
    /// Holds where the client played a paused process.
    pub paused_holds: usize,
    /// Sessions or acquisitions that failed.
    pub failed_acquires: usize,
    /// Grants seen only after the lease's deadline.
    pub void_holds: usize,
    /// Per watcher: (member, start revision, events seen).
    pub watches: Vec<(usize, i64, usize)>,
    /// The end marker's revision.
    pub end_revision: i64,
    /// Every fault injected.
    pub faults: Vec<FaultRecord>,
    /// What the run itself found wrong (stalled watches, members that
    /// disagree, ...).
    pub problems: Vec<String>,
}

impl RunStats {
    /// Counts the operations of `recording` into the stats.
    pub fn count(&mut self, recording: &Recording) {
        for op in &recording.registers {
            let tally = match op.op {
                RegisterOp::Read { .. } => &mut self.reads,
                RegisterOp::Write { .. } => &mut self.writes,
                RegisterOp::Cas { .. } => &mut self.cas,
            };
            tally.add(op.outcome);
        }
        for write in &recording.fenced_writes {
            self.fenced.add(write.outcome);
        }
        self.holds = recording.lock_holds.len();
        self.watches = recording
            .watch_logs
            .iter()
            .map(|log| (log.member, log.start_revision, log.events.len()))
            .collect();
    }

    /// Every operation recorded.
    pub fn total_ops(&self) -> usize {
        self.reads.total() + self.writes.total() + self.cas.total() + self.fenced.total()
    }
}

impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        writeln!(
            f,
            "run: {} members, workload {:.1}s, seed {}, faults [{}], end revision {}",
            self.members,
            self.workload.as_secs_f64(),
            self.seed,
            kinds.join(","),
            self.end_revision
        )?;
        writeln!(f, "operations: {}", self.total_ops())?;
        writeln!(f, "  register read  {}", self.reads)?;
        writeln!(f, "  register write {}", self.writes)?;
        writeln!(f, "  register cas   {}", self.cas)?;
        writeln!(f, "  fenced write   {}", self.fenced)?;
        writeln!(
            f,
            "  lock holds     {:>7} ({} as paused processes; {} failed acquisitions, {} grants seen after the lease's deadline)",
            self.holds, self.paused_holds, self.failed_acquires, self.void_holds
        )?;
        for (i, (member, start, events)) in self.watches.iter().enumerate() {
            writeln!(
                f,
                "  watch {i}: opened on m{} from revision {start}, {events} events",
                member + 1
            )?;
        }
        writeln!(f, "faults injected: {}", self.faults.len())?;
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        if self.problems.is_empty() {
            writeln!(f, "run problems: none")?;
        } else {
            writeln!(f, "run problems: {}", self.problems.len())?;
            for problem in &self.problems {
                writeln!(f, "  {problem}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::{FencedWrite, RegisterOperation};

    #[test]
    fn operations_are_counted_by_type_and_outcome() {
        let op = |op, outcome| RegisterOperation {
            process: 0,
            key: "k".into(),
            op,
            invoke: 0,
            complete: 1,
            outcome,
        };
        let recording = Recording {
            registers: vec![
                op(RegisterOp::Read { observed: None }, Outcome::Ok),
                op(RegisterOp::Write { value: 1 }, Outcome::Unknown),
                op(
                    RegisterOp::Cas {
                        expected: None,
                        new: 2,
                    },
                    Outcome::Fail,
                ),
            ],
            fenced_writes: vec![FencedWrite {
                process: 1,
                token: 5,
                seq: 3,
                invoke: 0,
                complete: 1,
                outcome: Outcome::Ok,
            }],
            ..Recording::default()
        };
        let mut stats = RunStats::default();
        stats.count(&recording);
        assert_eq!(stats.reads.ok, 1);
        assert_eq!(stats.writes.unknown, 1);
        assert_eq!(stats.cas.fail, 1);
        assert_eq!(stats.fenced.ok, 1);
        assert_eq!(stats.total_ops(), 4);
        assert!(stats.to_string().contains("operations: 4"));
    }
}
