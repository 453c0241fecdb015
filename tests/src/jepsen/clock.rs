//! The run's one clock: every invoke, completion, hold and fault of a run
//! is stamped in nanoseconds since the run started, on one monotonic clock
//! (every client of a run lives in this process).

use std::time::{Duration, Instant};

use super::history::Nanos;

/// A monotonic clock started at the beginning of a run. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
}

impl RunClock {
    /// A clock reading zero now.
    pub fn start() -> RunClock {
        RunClock {
            start: Instant::now(),
        }
    }

    /// Now, on the run's clock.
    pub fn now(&self) -> Nanos {
        self.at(Instant::now())
    }

    /// `instant` on the run's clock (zero if it came before the start).
    pub fn at(&self, instant: Instant) -> Nanos {
        nanos(instant.saturating_duration_since(self.start))
    }
}

/// A duration in nanoseconds, saturating (a run does not last 584 years).
pub fn nanos(duration: Duration) -> Nanos {
    u64::try_from(duration.as_nanos()).unwrap_or(Nanos::MAX)
}

/// A time on the run's clock as seconds with milliseconds, for reports.
pub fn secs(at: Nanos) -> String {
    format!("{:.3}s", Duration::from_nanos(at).as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_count_from_the_start_and_never_go_back() {
        let clock = RunClock::start();
        let first = clock.now();
        let second = clock.now();
        assert!(second >= first);
        let before = clock.start.checked_sub(Duration::from_millis(5));
        if let Some(before) = before {
            assert_eq!(clock.at(before), 0);
        }
        assert_eq!(
            clock.at(clock.start + Duration::from_millis(1500)),
            1_500_000_000
        );
        assert_eq!(secs(1_500_000_000), "1.500s");
    }
}
