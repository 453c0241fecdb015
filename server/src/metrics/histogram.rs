//! A Prometheus histogram with fixed buckets, kept in atomics so that hot
//! paths (an fsync, an apply) record with a few relaxed adds and no lock,
//! and so that process-wide histograms can be `static`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// etcd's disk latency buckets (`etcd_disk_*_duration_seconds`): 1 ms
/// doubling to 8.192 s.
pub const DISK_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];

/// etcd's apply latency buckets (`etcd_server_apply_duration_seconds`):
/// 100 µs doubling to about 52 s.
pub const APPLY_BUCKETS: [f64; 20] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072, 26.2144, 52.4288,
];

/// Prometheus' default buckets, which go-grpc-prometheus uses for
/// `grpc_server_handling_seconds`.
pub const GRPC_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations counted into `N` buckets (upper bounds in seconds) plus the
/// implicit `+Inf` bucket.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    /// Per bucket (not cumulative); index `N` is above every bound.
    counts: [AtomicU64; N],
    above: AtomicU64,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram with these upper bounds (ascending).
    pub const fn new(bounds: [f64; N]) -> Self {
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; N],
            above: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = self.bounds.iter().zip(&self.counts);
        match bucket.into_iter().find(|(bound, _)| seconds <= **bound) {
            Some((_, count)) => count.fetch_add(1, Ordering::Relaxed),
            None => self.above.fetch_add(1, Ordering::Relaxed),
        };
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts timing; the time is recorded when the guard drops.
    pub fn time(&self) -> Timer<'_, N> {
        Timer {
            histogram: self,
            start: Instant::now(),
        }
    }

    /// A consistent-enough copy for exposition: cumulative bucket counts
    /// (with `+Inf` last), the count and the sum in seconds.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(N + 1);
        let mut total = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            total += count.load(Ordering::Relaxed);
            cumulative.push((*bound, total));
        }
        total += self.above.load(Ordering::Relaxed);
        cumulative.push((f64::INFINITY, total));
        HistogramSnapshot {
            buckets: cumulative,
            // The +Inf bucket is the count (an observation racing this
            // read is in neither or only in `count`).
            count: total,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram read for exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, ending with `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

/// Records the time since it was made into its histogram when dropped.
#[must_use = "the time is recorded when the timer drops"]
pub struct Timer<'a, const N: usize> {
    histogram: &'a Histogram<N>,
    start: Instant,
}

impl<const N: usize> Drop for Timer<'_, N> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::new([0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.001, 2), (0.01, 3), (f64::INFINITY, 4)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 1.0065).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn a_timer_records_once_when_dropped() {
        let h = Histogram::new(DISK_BUCKETS);
        {
            let _t = h.time();
        }
        assert_eq!(h.snapshot().count, 1);
    }
}
