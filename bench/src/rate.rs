//! The `--rate` limit: one pacer shared by every client of a run that
//! hands out evenly spaced start times, `1/rate` apart.
//!
//! A client that asks late gets "now", not a slot in the past: idle time
//! is not saved up for a burst, so the offered load stays steady at or
//! below the rate (what "steady writes" in the failover workload needs).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces operations `1/rate` apart across all the clients sharing it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    /// The earliest start time the next caller may get. A std mutex: it is
    /// held for a few instructions and never across an await.
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter for `per_sec` operations per second (must be positive
    /// and finite; the CLI checks).
    pub fn new(per_sec: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_sec),
            next: Mutex::new(Instant::now()),
        }
    }

    /// The time between two starts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes the next start time without waiting for it.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        // A poisoned lock only means another client panicked mid-update
        // of an Instant; the value is still a valid time.
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(now);
        *next = slot + self.interval;
        slot
    }

    /// Waits until this caller's start time.
    pub async fn wait(&self) {
        let slot = self.reserve();
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_interval() {
        let limiter = RateLimiter::new(100.0);
        assert_eq!(limiter.interval(), Duration::from_millis(10));
        let start = Instant::now();
        for _ in 0..10 {
            limiter.wait().await;
        }
        // The first start is immediate, the tenth 9 intervals later.
        assert_eq!(start.elapsed(), Duration::from_millis(90));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1000.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    limiter.wait().await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // 100 starts at 1,000/s: the last one 99 ms after the first.
        assert_eq!(start.elapsed(), Duration::from_millis(99));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_for_a_burst() {
        let limiter = RateLimiter::new(10.0);
        limiter.wait().await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        // After a long pause the next start is now and the one after that
        // a full interval later, not a catch-up burst.
        assert_eq!(limiter.reserve(), now);
        assert_eq!(limiter.reserve(), now + Duration::from_millis(100));
    }
}
