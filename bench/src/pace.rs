//! How long a run lasts and how fast it goes: [`Pace`] hands out operation
//! numbers to the clients until `--total` operations have started or
//! `--duration` has passed, each at its `--rate` slot, and counts finished
//! operations for the progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::rate::RateLimiter;

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many operations have started.
    Total(u64),
    /// When this much time has passed since the start.
    After(Duration),
}

/// The clock, budget and rate of one measured run, shared by its clients.
#[derive(Debug)]
pub struct Pace {
    stop: Stop,
    started: Instant,
    issued: AtomicU64,
    finished: Arc<AtomicU64>,
    limiter: Option<RateLimiter>,
}

impl Pace {
    /// Starts the clock now.
    pub fn start(stop: Stop, rate: Option<f64>) -> Arc<Pace> {
        Arc::new(Pace {
            stop,
            started: Instant::now(),
            issued: AtomicU64::new(0),
            finished: Arc::new(AtomicU64::new(0)),
            limiter: rate.map(RateLimiter::new),
        })
    }

    /// When the run ends.
    pub fn stop(&self) -> Stop {
        self.stop
    }

    /// The number of the next operation to start, once its rate slot has
    /// come; `None` when the run is over.
    pub async fn next(&self) -> Option<u64> {
        match self.stop {
            Stop::Total(total) => {
                let op = self.issued.fetch_add(1, Ordering::Relaxed);
                if op >= total {
                    return None;
                }
                if let Some(limiter) = &self.limiter {
                    limiter.wait().await;
                }
                Some(op)
            }
            Stop::After(duration) => {
                let deadline = self.started + duration;
                if let Some(limiter) = &self.limiter {
                    let slot = limiter.reserve();
                    if slot >= deadline {
                        return None;
                    }
                    tokio::time::sleep_until(slot).await;
                }
                if Instant::now() >= deadline {
                    return None;
                }
                Some(self.issued.fetch_add(1, Ordering::Relaxed))
            }
        }
    }

    /// Counts one finished operation (for the progress bar).
    pub fn finished(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter [`Pace::finished`] increments.
    pub fn finished_counter(&self) -> Arc<AtomicU64> {
        self.finished.clone()
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_total_hands_out_each_number_once() {
        let pace = Pace::start(Stop::Total(100), None);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let pace = pace.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(op) = pace.next().await {
                    got.push(op);
                    pace.finished();
                }
                got
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(pace.finished_counter().load(Ordering::Relaxed), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_with_a_rate_runs_rate_times_duration_ops() {
        let pace = Pace::start(Stop::After(Duration::from_secs(1)), Some(50.0));
        let mut count = 0;
        while pace.next().await.is_some() {
            count += 1;
        }
        // Slots at 0, 20, ..., 980 ms.
        assert_eq!(count, 50);
        // The run ended at the last slot, not by sleeping past the end.
        assert!(pace.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_ends_on_time_without_a_rate() {
        let pace = Pace::start(Stop::After(Duration::from_millis(100)), None);
        let mut count = 0u64;
        while pace.next().await.is_some() {
            count += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_total_with_a_rate_is_paced() {
        let pace = Pace::start(Stop::Total(5), Some(10.0));
        let start = Instant::now();
        while pace.next().await.is_some() {}
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }
}
