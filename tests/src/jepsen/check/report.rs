//! The verdicts of a run's checks: one [`CheckResult`] per check, gathered in
//! a [`Report`] that prints as a short text a person reads after a run.

use std::fmt;

/// What one check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The history satisfies the property.
    Passed,
    /// The history violates the property (or is malformed, so the check
    /// cannot vouch for it).
    Failed,
    /// The check gave up before deciding (a search ran out of its budget);
    /// counts as not passed, since nothing was shown.
    Inconclusive,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so a report can align verdicts with a width.
        f.pad(match self {
            Verdict::Passed => "PASS",
            Verdict::Failed => "FAIL",
            Verdict::Inconclusive => "UNKNOWN",
        })
    }
}

/// The result of one check over a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name, as printed.
    pub name: &'static str,
    /// What it decided.
    pub verdict: Verdict,
    /// How many items it examined (see `unit`), so a pass over nothing is
    /// visible as such.
    pub checked: usize,
    /// What `checked` counts ("operations", "events", ...).
    pub unit: &'static str,
    /// When not passed: what was found, naming the smallest part of the
    /// history that shows it.
    pub explanation: Option<String>,
}

impl CheckResult {
    /// A passed check.
    pub fn pass(name: &'static str, checked: usize, unit: &'static str) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Passed,
            checked,
            unit,
            explanation: None,
        }
    }

    /// A failed check with its explanation.
    pub fn fail(name: &'static str, checked: usize, unit: &'static str, why: String) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Failed,
            checked,
            unit,
            explanation: Some(why),
        }
    }

    /// A check that could not decide, with what stopped it.
    pub fn inconclusive(
        name: &'static str,
        checked: usize,
        unit: &'static str,
        why: String,
    ) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Inconclusive,
            checked,
            unit,
            explanation: Some(why),
        }
    }

    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// Every check's result for one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One result per check, in the order they ran.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(CheckResult::passed)
    }

    /// The result of the check called `name`, if it ran.
    pub fn result(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            writeln!(f, "{:<7} {} ({} {})", r.verdict, r.name, r.checked, r.unit)?;
        }
        for r in &self.results {
            if let Some(why) = &r.explanation {
                writeln!(f, "\n{} {}:", r.verdict, r.name)?;
                for line in why.lines() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_passes_only_when_every_check_passes() {
        let mut report = Report {
            results: vec![
                CheckResult::pass("a", 3, "operations"),
                CheckResult::pass("b", 0, "events"),
            ],
        };
        assert!(report.passed());
        report.results.push(CheckResult::inconclusive(
            "c",
            1,
            "operations",
            "budget".into(),
        ));
        assert!(!report.passed());
        report.results[2] = CheckResult::fail("c", 1, "operations", "broken".into());
        assert!(!report.passed());
        assert_eq!(report.result("c").map(|r| r.verdict), Some(Verdict::Failed));
        assert!(report.result("d").is_none());
    }

    #[test]
    fn display_lists_every_check_then_the_details_of_failures() {
        let report = Report {
            results: vec![
                CheckResult::pass("locks", 4, "holds"),
                CheckResult::fail("watches", 9, "events", "line one\nline two".into()),
            ],
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PASS    locks (4 holds)");
        assert_eq!(lines[1], "FAIL    watches (9 events)");
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], "FAIL watches:");
        assert_eq!(lines[4], "  line one");
        assert_eq!(lines[5], "  line two");
        assert_eq!(lines.len(), 6);
    }
}
