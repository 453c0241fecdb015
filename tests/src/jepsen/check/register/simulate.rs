//! Test histories: a real register driven by concurrent simulated clients,
//! so the histories are linearizable by construction, plus a brute-force
//! checker to compare the search against on small ones.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::jepsen::history::{Nanos, Outcome, RegisterOp, RegisterOperation};

/// What kind of operation a simulated client runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
}

/// The shape of a simulated workload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Workload {
    /// Concurrent clients.
    pub processes: usize,
    /// Operations in all.
    pub count: usize,
    /// Percentage of operations that end Unknown: half of those take effect
    /// anyway, possibly after the client gave up; the rest never do.
    pub unknown_percent: u32,
    /// Percentage of operations that take a hundred times longer than
    /// usual (as behind a partition), overlapping many others.
    pub slow_percent: u32,
}

/// A history of `workload` on `key`: each client runs one operation at a
/// time with random durations and gaps; each operation takes effect at a
/// random instant within its interval, and applying them in that order to a
/// register decides what reads saw and which compares held.
pub(super) fn linearizable_history(
    seed: u64,
    key: &str,
    workload: Workload,
) -> Vec<RegisterOperation> {
    let Workload {
        processes,
        count,
        unknown_percent,
        slow_percent,
    } = workload;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock: Vec<Nanos> = vec![0; processes];
    struct Plan {
        process: usize,
        kind: Kind,
        invoke: Nanos,
        complete: Nanos,
        unknown: bool,
        effect_at: Option<Nanos>,
    }
    let mut plans = Vec::with_capacity(count);
    for _ in 0..count {
        let process = (0..processes).min_by_key(|&p| clock[p]).unwrap_or(0);
        let invoke = clock[process] + rng.gen_range(0..20);
        let slow = if rng.gen_range(0..100) < slow_percent {
            100
        } else {
            1
        };
        let complete = invoke + slow * rng.gen_range(1..200);
        clock[process] = complete;
        let kind = match rng.gen_range(0..10) {
            0..=3 => Kind::Read,
            4..=6 => Kind::Write,
            _ => Kind::Cas,
        };
        let unknown = rng.gen_range(0..100) < unknown_percent;
        let effect_at = match (unknown, rng.gen_bool(0.5)) {
            (false, _) => Some(rng.gen_range(invoke..=complete)),
            (true, true) => Some(rng.gen_range(invoke..=complete + 1000)),
            (true, false) => None,
        };
        plans.push(Plan {
            process,
            kind,
            invoke,
            complete,
            unknown,
            effect_at,
        });
    }
    let mut order: Vec<usize> = (0..count)
        .filter(|&i| plans[i].effect_at.is_some())
        .collect();
    order.sort_by_key(|&i| (plans[i].effect_at, i));
    let mut state: Option<u64> = None;
    let mut next_value = 1u64;
    let mut ops: Vec<Option<RegisterOperation>> = vec![None; count];
    let mut record = |i: usize, op: RegisterOp, outcome: Outcome| {
        let p = &plans[i];
        ops[i] = Some(RegisterOperation {
            process: p.process,
            key: key.to_string(),
            op,
            invoke: p.invoke,
            complete: p.complete,
            outcome: if p.unknown { Outcome::Unknown } else { outcome },
        });
    };
    let fresh = |next: &mut u64| {
        *next += 1;
        *next - 1
    };
    for &i in &order {
        match plans[i].kind {
            Kind::Read => record(i, RegisterOp::Read { observed: state }, Outcome::Ok),
            Kind::Write => {
                let value = fresh(&mut next_value);
                state = Some(value);
                record(i, RegisterOp::Write { value }, Outcome::Ok);
            }
            Kind::Cas => {
                let new = fresh(&mut next_value);
                let expected = if rng.gen_bool(0.7) || new == 1 {
                    state
                } else {
                    Some(rng.gen_range(1..new))
                };
                let swapped = expected == state;
                if swapped {
                    state = Some(new);
                }
                let outcome = if swapped { Outcome::Ok } else { Outcome::Fail };
                record(i, RegisterOp::Cas { expected, new }, outcome);
            }
        }
    }
    let never: Vec<(usize, Kind)> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.effect_at.is_none())
        .map(|(i, p)| (i, p.kind))
        .collect();
    for (i, kind) in never {
        let op = match kind {
            Kind::Read => RegisterOp::Read {
                observed: Some(rng.gen_range(1..next_value.max(2))),
            },
            Kind::Write => RegisterOp::Write {
                value: fresh(&mut next_value),
            },
            Kind::Cas => RegisterOp::Cas {
                expected: state,
                new: fresh(&mut next_value),
            },
        };
        record(i, op, Outcome::Unknown);
    }
    ops.into_iter().flatten().collect()
}

/// A small random history of `count` operations by `processes` clients,
/// linearizable or not: reads and compares see random values.
pub(super) fn random_history(seed: u64, count: usize, processes: usize) -> Vec<RegisterOperation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock = vec![0u64; processes];
    let mut ops = Vec::with_capacity(count);
    for value in 1..=count as u64 {
        let process = rng.gen_range(0..processes);
        let invoke = clock[process] + rng.gen_range(0..5);
        let complete = invoke + rng.gen_range(0..10);
        clock[process] = complete + 1;
        let seen = |rng: &mut StdRng| match rng.gen_range(0..=count as u64) {
            0 => None,
            v => Some(v),
        };
        let op = match rng.gen_range(0..3) {
            0 => RegisterOp::Read {
                observed: seen(&mut rng),
            },
            1 => RegisterOp::Write { value },
            _ => RegisterOp::Cas {
                expected: seen(&mut rng),
                new: value,
            },
        };
        let outcome = match rng.gen_range(0..10) {
            0..=5 => Outcome::Ok,
            6..=7 => Outcome::Fail,
            _ => Outcome::Unknown,
        };
        ops.push(RegisterOperation {
            process,
            key: "k".into(),
            op,
            invoke,
            complete,
            outcome,
        });
    }
    ops
}

/// Whether some order of `ops` is legal, by trying every order: each Ok
/// operation takes effect once within its interval, each Unknown write or
/// cas at some time after its invoke or never, failed ones and reads that
/// did not return Ok never. Exponential; for a dozen operations at most.
pub(super) fn brute_force_linearizable(ops: &[&RegisterOperation]) -> bool {
    let ops: Vec<&RegisterOperation> = ops
        .iter()
        .copied()
        .filter(|op| match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Unknown => !matches!(op.op, RegisterOp::Read { .. }),
        })
        .collect();
    let mut placed = vec![false; ops.len()];
    place_rest(&ops, &mut placed, None)
}

fn place_rest(ops: &[&RegisterOperation], placed: &mut [bool], state: Option<u64>) -> bool {
    // Done once every Ok operation is placed (Unknown ones may never be).
    if (0..ops.len()).all(|i| placed[i] || ops[i].outcome != Outcome::Ok) {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // Every Ok operation that completed before this one's invoke must
        // already be placed (an Unknown one may also never happen).
        let blocked = (0..ops.len()).any(|j| {
            !placed[j] && j != i && ops[j].outcome == Outcome::Ok && ops[j].complete < ops[i].invoke
        });
        if blocked {
            continue;
        }
        let next = match ops[i].op {
            RegisterOp::Read { observed } => (observed == state).then_some(state),
            RegisterOp::Write { value } => Some(Some(value)),
            RegisterOp::Cas { expected, new } => (expected == state).then_some(Some(new)),
        };
        if let Some(next) = next {
            placed[i] = true;
            let ok = place_rest(ops, placed, next);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}
