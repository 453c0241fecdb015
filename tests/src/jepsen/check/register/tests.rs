//! Tests of check 1 on hand-made histories, against a brute-force checker on
//! random small ones, and on large simulated ones.

use std::time::Instant;

use super::prepare::prepare;
use super::search::{search, Found, Options};
use super::simulate::{brute_force_linearizable, linearizable_history, random_history, Workload};
use super::{check, check_key, patterns, search_key, shrink, KeyVerdict};
use crate::jepsen::check::describe;
use crate::jepsen::history::{Nanos, Outcome, Recording, RegisterOp, RegisterOperation};

fn op(
    process: usize,
    op: RegisterOp,
    invoke: Nanos,
    complete: Nanos,
    outcome: Outcome,
) -> RegisterOperation {
    RegisterOperation {
        process,
        key: "x".into(),
        op,
        invoke,
        complete,
        outcome,
    }
}

fn w(process: usize, value: u64, invoke: Nanos, complete: Nanos) -> RegisterOperation {
    op(
        process,
        RegisterOp::Write { value },
        invoke,
        complete,
        Outcome::Ok,
    )
}

fn r(process: usize, observed: Option<u64>, invoke: Nanos, complete: Nanos) -> RegisterOperation {
    op(
        process,
        RegisterOp::Read { observed },
        invoke,
        complete,
        Outcome::Ok,
    )
}

fn cas(
    process: usize,
    expected: Option<u64>,
    new: u64,
    invoke: Nanos,
    complete: Nanos,
    outcome: Outcome,
) -> RegisterOperation {
    op(
        process,
        RegisterOp::Cas { expected, new },
        invoke,
        complete,
        outcome,
    )
}

fn unknown(mut o: RegisterOperation) -> RegisterOperation {
    o.outcome = Outcome::Unknown;
    o
}

fn verdict(ops: &[RegisterOperation]) -> KeyVerdict {
    let refs: Vec<&RegisterOperation> = ops.iter().collect();
    check_key(&refs)
}

fn assert_linearizable(ops: &[RegisterOperation]) {
    assert_eq!(verdict(ops), KeyVerdict::Linearizable, "{ops:#?}");
}

/// Asserts a violation and returns its explanation.
fn violation(ops: &[RegisterOperation]) -> String {
    match verdict(ops) {
        KeyVerdict::Violation(text) => text,
        other => panic!("expected a violation, got {other:?} for {ops:#?}"),
    }
}

/// The operation lines an explanation lists (those starting "  p").
fn listed(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.strip_prefix("  p")).collect()
}

#[test]
fn concurrent_writes_with_reads_seeing_either_are_linearizable() {
    for (first, second) in [(1, 2), (2, 1)] {
        assert_linearizable(&[
            w(1, 1, 0, 100),
            w(2, 2, 0, 100),
            r(3, Some(first), 10, 90),
            r(4, Some(second), 10, 90),
            r(3, Some(second), 100, 110),
        ]);
    }
    // Before any write took effect the key is absent.
    assert_linearizable(&[w(1, 1, 0, 100), r(2, None, 50, 60), r(3, Some(1), 70, 80)]);
}

#[test]
fn an_unknown_write_may_take_effect_later() {
    // p1 gave up on writing 1 at 10; it landed after p2's write of 2.
    assert_linearizable(&[
        unknown(w(1, 1, 0, 10)),
        w(2, 2, 20, 30),
        r(3, Some(2), 35, 38),
        r(3, Some(1), 40, 50),
    ]);
    // An unknown cas that was observed must have swapped.
    assert_linearizable(&[
        w(1, 1, 0, 10),
        unknown(cas(2, Some(1), 2, 20, 30, Outcome::Ok)),
        r(3, Some(1), 40, 50),
        r(3, Some(2), 60, 70),
    ]);
}

#[test]
fn an_unknown_write_may_never_take_effect() {
    assert_linearizable(&[
        w(1, 1, 0, 10),
        unknown(w(2, 2, 20, 30)),
        r(3, Some(1), 40, 50),
    ]);
    assert_linearizable(&[unknown(w(1, 1, 0, 10)), r(2, None, 1000, 1010)]);
}

#[test]
fn cas_chains_are_linearizable() {
    assert_linearizable(&[
        cas(1, None, 1, 0, 10, Outcome::Ok),
        cas(2, None, 9, 0, 10, Outcome::Fail),
        cas(1, Some(1), 2, 20, 30, Outcome::Ok),
        // Concurrent compares of the same value: one wins, one fails.
        cas(2, Some(2), 3, 40, 50, Outcome::Ok),
        cas(3, Some(2), 4, 40, 50, Outcome::Fail),
        r(1, Some(3), 60, 70),
        cas(3, Some(3), 5, 60, 70, Outcome::Unknown),
        r(2, Some(5), 80, 90),
    ]);
}

#[test]
fn failed_writes_and_unanswered_reads_carry_no_information() {
    assert_linearizable(&[
        w(1, 1, 0, 10),
        op(2, RegisterOp::Write { value: 2 }, 20, 30, Outcome::Fail),
        op(
            3,
            RegisterOp::Read { observed: Some(2) },
            40,
            50,
            Outcome::Unknown,
        ),
        op(
            3,
            RegisterOp::Read { observed: Some(77) },
            40,
            50,
            Outcome::Fail,
        ),
        r(1, Some(1), 60, 70),
    ]);
}

#[test]
fn a_stale_read_is_shown_with_the_write_that_overwrote_it() {
    let text = violation(&[w(1, 1, 0, 10), w(2, 2, 20, 30), r(3, Some(1), 40, 50)]);
    assert!(
        text.starts_with("key \"x\": not linearizable. No order of these 3 operations"),
        "{text}"
    );
    assert_eq!(
        listed(&text),
        [
            "1 key \"x\" write 1 [0.000000000s .. 0.000000010s] ok",
            "2 key \"x\" write 2 [0.000000020s .. 0.000000030s] ok",
            "3 key \"x\" read -> 1 [0.000000040s .. 0.000000050s] ok",
        ]
    );
    assert!(
        text.ends_with(
            "The longest order that works: p1 write 1, p2 write 2; the key then holds 2. \
             Next must come p3 read -> 1, which does not fit that."
        ),
        "{text}"
    );
}

#[test]
fn a_stale_read_in_a_busy_history_is_shrunk_to_the_operations_that_show_it() {
    let ops = [
        w(1, 1, 0, 10),
        r(2, Some(1), 5, 15),
        w(3, 2, 12, 40),
        r(1, Some(2), 20, 30),
        w(4, 3, 35, 45),
        r(2, Some(3), 50, 60),
        w(1, 4, 55, 70),
        r(3, Some(3), 56, 58),
        r(4, Some(4), 75, 80),
        // Stale: 3 was overwritten by 4, acknowledged at 70.
        r(2, Some(3), 90, 100),
        w(3, 5, 95, 110),
        r(1, Some(5), 120, 130),
    ];
    let text = violation(&ops);
    assert!(
        text.contains("these 3 operations (a smallest failing part of the key's 12)"),
        "{text}"
    );
    let shown = listed(&text);
    assert_eq!(shown.len(), 3, "{text}");
    assert!(shown[0].starts_with("4 key \"x\" write 3"), "{text}");
    assert!(shown[1].starts_with("1 key \"x\" write 4"), "{text}");
    assert!(
        shown[2].starts_with("2 key \"x\" read -> 3 [0.000000090s"),
        "{text}"
    );
}

#[test]
fn a_lost_write_is_not_linearizable() {
    // Acknowledged at 10, yet a read invoked later finds the key absent.
    let text = violation(&[w(1, 1, 0, 10), r(2, None, 20, 30)]);
    assert_eq!(listed(&text).len(), 2, "{text}");
    assert!(
        text.contains("Next must come p2 read -> absent, which does not fit that."),
        "{text}"
    );
    // An acknowledged write lost behind an older value.
    let text = violation(&[
        w(1, 1, 0, 10),
        w(1, 2, 20, 30),
        r(2, Some(2), 35, 38),
        w(2, 3, 40, 50),
        r(3, Some(2), 60, 70),
    ]);
    assert_eq!(listed(&text).len(), 3, "{text}");
    assert!(text.contains("write 3"), "{text}");
}

#[test]
fn a_value_appearing_twice_is_not_linearizable() {
    let text = violation(&[
        w(1, 1, 0, 10),
        r(2, Some(1), 20, 30),
        w(1, 2, 40, 50),
        r(2, Some(2), 60, 70),
        r(3, Some(1), 80, 90),
    ]);
    assert_eq!(listed(&text).len(), 3, "{text}");
    // A cas applied twice: 2 comes back after 3 replaced it.
    let text = violation(&[
        w(1, 1, 0, 10),
        cas(2, Some(1), 2, 20, 30, Outcome::Ok),
        r(3, Some(2), 35, 38),
        w(1, 3, 40, 45),
        r(3, Some(3), 46, 48),
        r(2, Some(2), 50, 60),
    ]);
    assert!(text.contains("cas 1 -> 2"), "{text}");
    // Two acknowledged compares of the same value.
    violation(&[
        w(1, 1, 0, 10),
        cas(2, Some(1), 2, 20, 30, Outcome::Ok),
        cas(3, Some(1), 3, 20, 30, Outcome::Ok),
    ]);
}

#[test]
fn a_read_of_a_value_never_written_is_not_linearizable() {
    let text = violation(&[w(1, 1, 0, 10), r(2, Some(7), 20, 30)]);
    assert!(
        text.contains(
            "needed the key to hold 7, which no operation that could have taken effect wrote"
        ),
        "{text}"
    );
    assert!(text.contains("\n  p2 key \"x\" read -> 7"), "{text}");
    let text = violation(&[
        op(1, RegisterOp::Write { value: 7 }, 0, 10, Outcome::Fail),
        r(2, Some(7), 20, 30),
    ]);
    assert!(
        text.contains("only this failed operation tried to write 7:\n  p1 key \"x\" write 7"),
        "{text}"
    );
    // An unknown cas seen to take effect, whose compare nobody could satisfy.
    let text = violation(&[
        unknown(cas(1, Some(9), 2, 0, 10, Outcome::Ok)),
        r(2, Some(2), 20, 30),
    ]);
    assert!(text.contains("needed the key to hold 9"), "{text}");
    assert!(
        text.contains("since this one saw what it wrote:\n  p2 key \"x\" read -> 2"),
        "{text}"
    );
}

#[test]
fn real_time_order_violations_are_not_linearizable() {
    // A read returning a value before its write was invoked.
    let text = violation(&[r(1, Some(1), 0, 10), w(2, 1, 20, 30)]);
    assert_eq!(listed(&text).len(), 2, "{text}");
    violation(&[r(1, Some(1), 0, 10), unknown(w(2, 1, 20, 30))]);
    // Two sequential writes seen in the opposite order.
    violation(&[
        w(1, 1, 0, 10),
        w(1, 2, 20, 30),
        r(2, Some(2), 40, 50),
        r(2, Some(1), 60, 70),
    ]);
    // Two reads disagreeing with each other's order.
    violation(&[w(1, 1, 0, 100), r(2, Some(1), 10, 20), r(3, None, 30, 40)]);
}

#[test]
fn malformed_histories_fail() {
    let text = violation(&[w(1, 1, 0, 10), w(2, 1, 20, 30)]);
    assert!(
        text.contains("malformed recording, two operations"),
        "{text}"
    );
    let text = violation(&[w(1, 1, 10, 0)]);
    assert!(text.contains("completes before its invoke"), "{text}");
}

#[test]
fn keys_are_checked_separately() {
    let on = |key: &str, mut o: RegisterOperation| {
        o.key = key.into();
        o
    };
    let mut recording = Recording {
        registers: vec![
            on("a", w(1, 1, 0, 10)),
            on("b", w(1, 1, 0, 10)),
            on("b", r(2, Some(1), 20, 30)),
            on("a", w(2, 2, 20, 30)),
            on("a", r(2, Some(2), 40, 50)),
        ],
        ..Recording::default()
    };
    let result = check(&recording);
    assert!(result.passed(), "{result:?}");
    assert_eq!(result.checked, 5);
    recording.registers.push(on("b", r(3, None, 40, 50)));
    let result = check(&recording);
    assert!(!result.passed());
    let text = result.explanation.unwrap_or_default();
    assert!(
        text.starts_with("1 of 2 keys are not linearizable.\n\nkey \"b\""),
        "{text}"
    );
}

#[test]
fn a_search_out_of_budget_gives_up() {
    let ops = linearizable_history(
        3,
        "x",
        Workload {
            processes: 5,
            count: 200,
            unknown_percent: 5,
            slow_percent: 0,
        },
    );
    let refs: Vec<&RegisterOperation> = ops.iter().collect();
    let prepared = prepare(&refs).unwrap();
    let found = search(
        &prepared,
        Options {
            reduce: true,
            budget: 10,
            record_order: false,
        },
    );
    assert!(
        matches!(found, Found::GaveUp { explored: 11, .. }),
        "{found:?}"
    );
}

/// The search, with and without its shortcuts, agrees with trying every
/// order, on random small histories of both kinds; and a violation's
/// smallest failing part is itself a violation.
#[test]
fn the_search_agrees_with_brute_force() {
    let mut violations = 0;
    let mut patterns_found = 0;
    for seed in 0..3000 {
        let ops = random_history(seed, 3 + (seed % 7) as usize, 1 + (seed % 5) as usize);
        let refs: Vec<&RegisterOperation> = ops.iter().collect();
        let expected = brute_force_linearizable(&refs);
        let got = check_key(&refs);
        assert_eq!(
            got == KeyVerdict::Linearizable,
            expected,
            "seed {seed}: {got:?}\n{ops:#?}"
        );
        if let Ok(prepared) = prepare(&refs) {
            if let Some(witness) = patterns::find(&prepared) {
                assert!(
                    !expected,
                    "seed {seed}: a pattern {witness:?} in a linearizable history"
                );
                patterns_found += 1;
            }
            let plain = search(
                &prepared,
                Options {
                    reduce: false,
                    budget: usize::MAX,
                    record_order: true,
                },
            );
            assert_eq!(
                plain == Found::Linearizable,
                expected,
                "seed {seed} without shortcuts"
            );
            if let Found::Violation(deepest) = plain {
                let minimal =
                    shrink::minimal_failing(&refs, prepared.ops[deepest.stuck].source, &[])
                        .unwrap_or_else(|| panic!("seed {seed}: no failing part found"));
                let part: Vec<&RegisterOperation> = minimal.iter().map(|&i| refs[i]).collect();
                assert!(!brute_force_linearizable(&part), "seed {seed}: {part:#?}");
                violations += 1;
            }
        }
    }
    assert!(
        violations > 300,
        "too few violations exercised: {violations}"
    );
    assert!(
        patterns_found > 300,
        "too few patterns exercised: {patterns_found}"
    );
}

#[test]
fn simulated_histories_are_linearizable() {
    for seed in 0..50 {
        let workload = Workload {
            processes: 1 + (seed % 6) as usize,
            count: 300,
            unknown_percent: 10,
            slow_percent: (seed % 3) as u32,
        };
        let ops = linearizable_history(seed, "x", workload);
        assert_linearizable(&ops);
    }
}

/// Picks an Ok read in the middle and makes it return a value that an
/// acknowledged write had overwritten before the read was invoked.
fn make_one_read_stale(ops: &mut [RegisterOperation]) -> usize {
    let mut by_invoke: Vec<usize> = (0..ops.len()).collect();
    by_invoke.sort_by_key(|&i| ops[i].invoke);
    let takes_effect = |o: &RegisterOperation| {
        o.outcome == Outcome::Ok && !matches!(o.op, RegisterOp::Read { .. })
    };
    let read = by_invoke[ops.len() / 2..]
        .iter()
        .copied()
        .find(|&i| ops[i].outcome == Outcome::Ok && matches!(ops[i].op, RegisterOp::Read { .. }))
        .expect("a read");
    let overwriter = (0..ops.len())
        .filter(|&i| takes_effect(&ops[i]) && ops[i].complete < ops[read].invoke)
        .max_by_key(|&i| ops[i].complete)
        .expect("an earlier write");
    let old = (0..ops.len())
        .filter(|&i| matches!(ops[i].op, RegisterOp::Write { .. }) && ops[i].outcome == Outcome::Ok)
        .filter(|&i| ops[i].complete < ops[overwriter].invoke)
        .max_by_key(|&i| ops[i].complete)
        .expect("a write before it");
    let RegisterOp::Write { value } = ops[old].op else {
        unreachable!()
    };
    ops[read].op = RegisterOp::Read {
        observed: Some(value),
    };
    read
}

/// Breaks a linearizable history, returning the index of the culprit.
type Corruption = fn(&mut Vec<RegisterOperation>) -> usize;

/// Adds an acknowledged cas concurrent with an acknowledged cas in the
/// middle, needing the same value: both cannot have seen it.
fn add_twin_cas(ops: &mut Vec<RegisterOperation>) -> usize {
    let mut by_invoke: Vec<usize> = (0..ops.len()).collect();
    by_invoke.sort_by_key(|&i| ops[i].invoke);
    let original = by_invoke[ops.len() / 2..]
        .iter()
        .copied()
        .find(|&i| ops[i].outcome == Outcome::Ok && matches!(ops[i].op, RegisterOp::Cas { .. }))
        .expect("a cas");
    let RegisterOp::Cas { expected, .. } = ops[original].op else {
        unreachable!()
    };
    let twin = RegisterOperation {
        process: 999,
        op: RegisterOp::Cas {
            expected,
            new: u64::MAX,
        },
        ..ops[original].clone()
    };
    ops.push(twin);
    ops.len() - 1
}

/// Checks `ops` (of one key) by search alone, without the quick scans.
fn search_verdict(ops: &[RegisterOperation]) -> KeyVerdict {
    let refs: Vec<&RegisterOperation> = ops.iter().collect();
    let prepared = prepare(&refs).expect("well formed");
    search_key(&refs[0].key, &refs, &prepared)
}

/// 20,000 operations on one key by 10 concurrent clients, 5% of them
/// Unknown: accepted; with one read made stale, or a second cas of the same
/// value added: rejected, by the quick scans and by search alone, and
/// explained by a handful of operations that include the culprit.
#[test]
fn a_large_history_is_checked_in_seconds() {
    let workload = Workload {
        processes: 10,
        count: 20_000,
        unknown_percent: 5,
        slow_percent: 1,
    };
    let ops = linearizable_history(42, "big", workload);
    let started = Instant::now();
    assert_eq!(verdict(&ops), KeyVerdict::Linearizable);
    eprintln!("20,000 operations accepted in {:?}", started.elapsed());

    let corruptions: [(&str, Corruption); 2] = [
        ("a stale read", |ops| make_one_read_stale(ops)),
        ("a twin cas", add_twin_cas),
    ];
    for (what, corrupt) in corruptions {
        let mut bad = ops.clone();
        let culprit = corrupt(&mut bad);
        let culprit_line = describe::register_op(&bad[culprit]);
        for (how, decide) in [
            (
                "quick scans",
                verdict as fn(&[RegisterOperation]) -> KeyVerdict,
            ),
            ("search alone", search_verdict),
        ] {
            let started = Instant::now();
            let KeyVerdict::Violation(text) = decide(&bad) else {
                panic!("{what} not found by {how}");
            };
            eprintln!(
                "{what} rejected by {how} in {:?}:\n{text}",
                started.elapsed()
            );
            let shown = listed(&text);
            assert!(shown.contains(&&culprit_line[1..]), "{text}");
            assert!(shown.len() <= 6, "{text}");
        }
    }
}

/// Far more concurrency than the suite uses: 100 clients. Slow in debug
/// builds (about a minute), so run on demand.
#[test]
#[ignore]
fn highly_concurrent_histories_are_decided() {
    for seed in 0..2 {
        let workload = Workload {
            processes: 100,
            count: 20_000,
            unknown_percent: 10,
            slow_percent: 2,
        };
        let ops = linearizable_history(seed, "big", workload);
        assert_eq!(verdict(&ops), KeyVerdict::Linearizable);
        let corruptions: [Corruption; 2] = [|ops| make_one_read_stale(ops), add_twin_cas];
        for corrupt in corruptions {
            let mut bad = ops.clone();
            corrupt(&mut bad);
            assert!(matches!(verdict(&bad), KeyVerdict::Violation(_)));
            let v = search_verdict(&bad);
            assert!(matches!(v, KeyVerdict::Violation(_)), "{v:?}");
        }
    }
}
