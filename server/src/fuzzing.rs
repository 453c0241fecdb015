//! The harness of the fuzz targets (`**/fuzz_tests.rs`): proptest runs
//! bounded to a few seconds inside `cargo test`, no corpus kept on disk,
//! and each target prints how many inputs it executed (run with
//! `--nocapture` to see them; `PROPTEST_CASES=100000` for a longer run).

use std::cell::Cell;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `target` on `default_cases` inputs drawn from `strategy` (or
/// `PROPTEST_CASES` of them); a panic or an error inside `target` fails
/// the test with the smallest input proptest can shrink it to.
pub(crate) fn run<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    target: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let config = Config {
        cases,
        // Corpora are none: failures are reported, then kept as
        // regression tests written by hand.
        failure_persistence: None,
        ..Config::default()
    };
    let executions = Cell::new(0u64);
    let result = TestRunner::new(config).run(&strategy, |input| {
        executions.set(executions.get() + 1);
        target(input)
    });
    eprintln!("fuzz {name}: {} executions", executions.get());
    if let Err(err) = result {
        panic!("fuzz {name}: {err}");
    }
}
