//! The checks a Jepsen-style run's [`Recording`] must pass, as pure code over
//! the recording: the register operations are linearizable, acknowledged
//! writes survive, watches deliver exactly the history, fenced writes never
//! interleave two holders, and no lock is held twice. [`check_all`] runs them
//! all into a [`Report`].
//!
//! Nothing here talks to a cluster or reads a clock.

mod acknowledged;
mod describe;
mod fencing;
mod locks;
mod register;
mod report;
mod watches;

pub use report::{CheckResult, Report, Verdict};

use super::history::Recording;

/// Name of check 1: every key's register operations are linearizable.
pub const LINEARIZABLE_REGISTERS: &str = "linearizable registers";
/// Name of check 2: acknowledged writes are among the final versions, failed
/// ones are not, and versions follow real time.
pub const ACKNOWLEDGED_WRITES: &str = "acknowledged writes present";
/// Name of check 3: every watch delivered exactly the reference events.
pub const WATCHES: &str = "watches deliver the history";
/// Name of check 4: fenced writes never interleave two holders.
pub const FENCED_WRITES: &str = "fenced writes ordered";
/// Name of check 5: no two lock holds overlap.
pub const LOCKS: &str = "locks held once";

/// Runs every check over `recording`.
pub fn check_all(recording: &Recording) -> Report {
    Report {
        results: vec![
            register::check(recording),
            acknowledged::check(recording),
            watches::check(recording),
            fencing::check(recording),
            locks::check(recording),
        ],
    }
}

/// At most this many problems of one check are listed in its explanation;
/// the first ones are the useful ones, the rest often follow from them.
const SHOWN_PROBLEMS: usize = 10;

/// Joins a check's problems into one explanation, listing the first few.
fn list_problems(summary: &str, problems: &[String]) -> String {
    let mut text = format!("{summary} ({} found):", problems.len());
    for p in problems.iter().take(SHOWN_PROBLEMS) {
        text.push_str("\n- ");
        text.push_str(&p.replace('\n', "\n  "));
    }
    if problems.len() > SHOWN_PROBLEMS {
        text.push_str(&format!(
            "\n({} more not shown.)",
            problems.len() - SHOWN_PROBLEMS
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::{Outcome, RegisterOp, RegisterOperation};

    #[test]
    fn an_empty_recording_passes_every_check() {
        let report = check_all(&Recording::default());
        assert!(report.passed(), "{report}");
        let names: Vec<&str> = report.results.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                LINEARIZABLE_REGISTERS,
                ACKNOWLEDGED_WRITES,
                WATCHES,
                FENCED_WRITES,
                LOCKS
            ]
        );
    }

    #[test]
    fn a_stale_read_fails_the_report_and_is_shown() {
        let op = |process, op, invoke, complete| RegisterOperation {
            process,
            key: "x".into(),
            op,
            invoke,
            complete,
            outcome: Outcome::Ok,
        };
        let recording = Recording {
            registers: vec![
                op(1, RegisterOp::Write { value: 1 }, 0, 10),
                op(2, RegisterOp::Write { value: 2 }, 20, 30),
                op(3, RegisterOp::Read { observed: Some(1) }, 40, 50),
            ],
            final_register_versions: [("x".to_string(), vec![(2, 1), (3, 2)])].into(),
            ..Recording::default()
        };
        let report = check_all(&recording);
        assert!(!report.passed());
        let text = report.to_string();
        assert!(
            text.starts_with("FAIL    linearizable registers (3 operations)\n"),
            "{text}"
        );
        assert!(text.contains("p3 key \"x\" read -> 1"), "{text}");
        assert_eq!(
            report.result(ACKNOWLEDGED_WRITES).map(|r| r.passed()),
            Some(true)
        );
    }

    #[test]
    fn problem_lists_are_cut_after_the_first_few() {
        let problems: Vec<String> = (0..12).map(|i| format!("problem {i}\ndetail")).collect();
        let text = list_problems("bad", &problems);
        assert!(text.starts_with("bad (12 found):\n- problem 0\n  detail\n- problem 1"));
        assert!(text.contains("problem 9"));
        assert!(!text.contains("problem 10"));
        assert!(text.ends_with("(2 more not shown.)"));
    }
}
