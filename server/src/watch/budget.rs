//! `WatchBudget`: how many watches one client connection holds, over all
//! its watch streams, against `--max-watches-per-connection`; and the
//! `BudgetHold` by which one stream holds part of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The watches of one connection, shared by its streams.
#[derive(Debug)]
pub struct WatchBudget {
    held: AtomicUsize,
    max: usize,
}

impl WatchBudget {
    /// A budget of `max` watches.
    pub fn new(max: usize) -> Self {
        WatchBudget {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// The most watches the connection may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Watches held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(n))
            });
    }
}

/// The part of a budget one stream holds; given back when dropped (the
/// stream ended), so a stream that dies never leaks its watches.
#[derive(Debug)]
pub struct BudgetHold {
    budget: Arc<WatchBudget>,
    held: usize,
}

impl BudgetHold {
    /// A stream's hold on `budget`, holding nothing yet.
    pub fn new(budget: Arc<WatchBudget>) -> Self {
        BudgetHold { budget, held: 0 }
    }

    /// Takes one watch; false when the connection holds its maximum.
    pub fn take(&mut self) -> bool {
        let taken = self.budget.take();
        if taken {
            self.held += 1;
        }
        taken
    }

    /// Gives one watch back (a watch of this stream ended).
    pub fn give_back(&mut self) {
        if self.held > 0 {
            self.held -= 1;
            self.budget.give_back(1);
        }
    }

    /// The connection's maximum.
    pub fn max(&self) -> usize {
        self.budget.max()
    }
}

impl Drop for BudgetHold {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_share_the_budget_and_give_it_back() {
        let budget = Arc::new(WatchBudget::new(3));
        let mut a = BudgetHold::new(budget.clone());
        let mut b = BudgetHold::new(budget.clone());
        assert!(a.take() && a.take() && b.take());
        assert!(!b.take());
        a.give_back();
        assert!(b.take());
        assert_eq!(budget.held(), 3);
        drop(b);
        assert_eq!(budget.held(), 1);
        drop(a);
        assert_eq!(budget.held(), 0);
    }
}
