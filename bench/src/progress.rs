//! The progress bar on stderr during a run: operations done against the
//! total, or time elapsed against the duration. A ticker task redraws it
//! from the run's counter a few times a second, so clients never touch
//! the bar itself. Hidden with `--json`, `--no-progress`, or when stderr
//! is not a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::pace::{Pace, Stop};

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A progress bar following one run; drop or [`Progress::finish`] it.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

/// Whether a bar would be seen: wanted, and stderr is a terminal.
pub fn visible(wanted: bool) -> bool {
    wanted && std::io::stderr().is_terminal()
}

impl Progress {
    /// A bar for `pace`, labelled `what`; a hidden one when `show` is
    /// false.
    pub fn start(pace: &Arc<Pace>, what: &str, show: bool) -> Progress {
        if !show {
            return Progress {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let (length, template) = match pace.stop() {
            Stop::Total(total) => (total, "{prefix} [{bar:30}] {pos}/{len} ops {elapsed}"),
            Stop::After(d) => (
                d.as_millis() as u64,
                "{prefix} [{bar:30}] {percent:>3}% {msg} ops",
            ),
        };
        let bar = ProgressBar::new(length);
        // The templates are constants; a bad one would only lose styling.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_owned());
        let ticker = tokio::spawn(tick(bar.clone(), pace.clone(), pace.finished_counter()));
        Progress {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn tick(bar: ProgressBar, pace: Arc<Pace>, finished: Arc<AtomicU64>) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let done = finished.load(Ordering::Relaxed);
        match pace.stop() {
            Stop::Total(_) => bar.set_position(done),
            Stop::After(_) => {
                bar.set_message(done.to_string());
                bar.set_position(pace.elapsed().as_millis() as u64);
            }
        }
    }
}
