//! Latency recording: a [`Recorder`] per client and operation (an HDR
//! histogram in microseconds plus a count of failures), merged at the end
//! of a run into one [`Summary`] per operation.
//!
//! Each client owns its recorders, so recording takes no lock; merging
//! is exact because every histogram has the same bounds.

use std::fmt::Display;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The longest latency kept exactly (one hour, in µs); longer ones are
/// recorded as this.
const HIGHEST_US: u64 = 3_600_000_000;
/// Three significant digits: 0.1% resolution at every scale.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies and failures of one operation, as seen by one or more clients.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            // The bounds are constants that hdrhistogram accepts (low >= 1,
            // high >= 2 * low, digits <= 5), so this cannot fail.
            histogram: Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
            errors: 0,
            first_error: None,
        }
    }

    /// Records one successful operation that took `latency`.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(us.min(HIGHEST_US));
    }

    /// Counts one failed operation; the first failure's text is kept for
    /// the report, since it usually says why the rest failed too.
    pub fn record_error(&mut self, error: &impl Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// Adds `other`'s samples and failures to this one.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot go out of range.
        let _ = self.histogram.add(&other.histogram);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Successful operations recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Failed operations recorded.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Summarises the recording over a run of `elapsed`.
    pub fn summary(&self, name: &str, elapsed: Duration) -> Summary {
        let h = &self.histogram;
        let ms = |us: u64| us as f64 / 1000.0;
        let count = h.len();
        let quantile = |q: f64| {
            if count == 0 {
                0.0
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        let secs = elapsed.as_secs_f64();
        Summary {
            name: name.to_owned(),
            count,
            errors: self.errors,
            ops_per_sec: if secs > 0.0 { count as f64 / secs } else { 0.0 },
            mean_ms: if count == 0 { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: if count == 0 { 0.0 } else { ms(h.max()) },
            first_error: self.first_error.clone(),
        }
    }
}

/// One operation's numbers over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The operation, e.g. `put`.
    pub name: String,
    /// Successful operations.
    pub count: u64,
    /// Failed operations (errors and timeouts).
    pub errors: u64,
    /// Successful operations per second of the run.
    pub ops_per_sec: f64,
    /// Mean latency of successful operations, in milliseconds.
    pub mean_ms: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile latency, ms.
    pub p90_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// The first failure's message, when any failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Summary {
    /// The value of field `field` (`count`, `errors`, `ops_per_sec`,
    /// `mean_ms`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`).
    pub fn field(&self, field: &str) -> Option<f64> {
        Some(match field {
            "count" => self.count as f64,
            "errors" => self.errors as f64,
            "ops_per_sec" => self.ops_per_sec,
            "mean_ms" => self.mean_ms,
            "p50_ms" => self.p50_ms,
            "p90_ms" => self.p90_ms,
            "p99_ms" => self.p99_ms,
            "max_ms" => self.max_ms,
            _ => return None,
        })
    }
}

/// What one client (or, merged, a whole run) measured: a [`Recorder`]
/// per operation and plain counters (CAS conflicts, ...), both in the
/// order first used, which is the order of the report.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    recorders: Vec<(&'static str, Recorder)>,
    counters: Vec<(&'static str, u64)>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// The recorder of operation `name`, created on first use.
    pub fn op(&mut self, name: &'static str) -> &mut Recorder {
        let at = match self.recorders.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                self.recorders.push((name, Recorder::new()));
                self.recorders.len() - 1
            }
        };
        &mut self.recorders[at].1
    }

    /// Adds `by` to counter `name`.
    pub fn count(&mut self, name: &'static str, by: u64) {
        match self.counters.iter_mut().find(|(n, _)| *n == name) {
            Some((_, value)) => *value += by,
            None => self.counters.push((name, by)),
        }
    }

    /// The value of counter `name` (0 when never counted).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Adds everything `other` measured.
    pub fn merge(&mut self, other: &Tally) {
        for (name, recorder) in &other.recorders {
            self.op(name).merge(recorder);
        }
        for (name, value) in &other.counters {
            self.count(name, *value);
        }
    }

    /// One summary per operation, over a run of `elapsed`.
    pub fn summaries(&self, elapsed: Duration) -> Vec<Summary> {
        self.recorders
            .iter()
            .map(|(name, recorder)| recorder.summary(name, elapsed))
            .collect()
    }

    /// The counters, in first-use order.
    pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counters.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_come_from_the_samples() {
        let mut r = Recorder::new();
        for i in 1..=100 {
            r.record(ms(i));
        }
        let s = r.summary("put", Duration::from_secs(2));
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 0);
        assert_eq!(s.ops_per_sec, 50.0);
        // Three significant digits: within 0.1% of the exact value.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(s.p50_ms, 50.0), "p50 {}", s.p50_ms);
        assert!(near(s.p90_ms, 90.0), "p90 {}", s.p90_ms);
        assert!(near(s.p99_ms, 99.0), "p99 {}", s.p99_ms);
        assert!(near(s.max_ms, 100.0), "max {}", s.max_ms);
        assert!(near(s.mean_ms, 50.5), "mean {}", s.mean_ms);
        assert_eq!(s.first_error, None);
    }

    #[test]
    fn zero_and_huge_latencies_are_kept() {
        let mut r = Recorder::new();
        r.record(Duration::ZERO);
        r.record(Duration::from_secs(10 * 3600));
        let s = r.summary("x", Duration::from_secs(1));
        assert_eq!(s.count, 2);
        assert_eq!(s.p50_ms, 0.0);
        // Clamped to the hour the histogram covers.
        assert!((s.max_ms - 3_600_000.0).abs() < 3_600_000.0 * 0.001);
    }

    #[test]
    fn errors_are_counted_and_the_first_is_kept() {
        let mut r = Recorder::new();
        r.record_error(&"no leader");
        r.record_error(&"timed out");
        let s = r.summary("put", Duration::from_secs(1));
        assert_eq!((s.count, s.errors), (0, 2));
        assert_eq!(s.first_error.as_deref(), Some("no leader"));
        // An empty histogram reports zeros, not garbage.
        assert_eq!(
            (s.p50_ms, s.p99_ms, s.max_ms, s.mean_ms),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn merging_adds_samples_and_errors() {
        let mut a = Recorder::new();
        a.record(ms(1));
        let mut b = Recorder::new();
        b.record(ms(3));
        b.record(ms(3));
        b.record_error(&"boom");
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.errors(), 1);
        let s = a.summary("op", Duration::from_secs(3));
        assert_eq!(s.ops_per_sec, 1.0);
        assert_eq!(s.first_error.as_deref(), Some("boom"));
        assert!((s.max_ms - 3.0).abs() < 0.01);
    }

    #[test]
    fn fields_are_found_by_name() {
        let mut r = Recorder::new();
        r.record(ms(2));
        let s = r.summary("op", Duration::from_secs(1));
        assert_eq!(s.field("count"), Some(1.0));
        assert_eq!(s.field("ops_per_sec"), Some(1.0));
        assert!(s.field("p99_ms").is_some_and(|v| (v - 2.0).abs() < 0.01));
        assert_eq!(s.field("p42_ms"), None);
    }
    #[test]
    fn a_tally_keeps_ops_in_first_use_order_and_merges() {
        let mut a = Tally::new();
        a.op("cas").record(ms(2));
        a.op("read").record(ms(1));
        a.count("conflicts", 2);
        let mut b = Tally::new();
        b.op("read").record(ms(1));
        b.op("txn").record_error(&"boom");
        b.count("conflicts", 1);
        b.count("succeeded", 5);
        a.merge(&b);
        let names: Vec<String> = a
            .summaries(Duration::from_secs(1))
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["cas", "read", "txn"]);
        assert_eq!(a.op("read").count(), 2);
        assert_eq!(a.op("txn").errors(), 1);
        assert_eq!(a.counter("conflicts"), 3);
        assert_eq!(a.counter("succeeded"), 5);
        assert_eq!(a.counter("never"), 0);
        assert_eq!(
            a.counters().collect::<Vec<_>>(),
            [("conflicts", 3), ("succeeded", 5)]
        );
    }
}
