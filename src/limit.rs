//! A concurrency limit that can change while it is in use (a configuration
//! reload), for connections and for requests in flight.
//!
//! Permits come from a tokio `Semaphore`. Raising the limit adds permits;
//! lowering it forgets the idle ones at once and the rest as they come back
//! (a debt), so the new limit holds as soon as enough exchanges have ended
//! and nothing in flight is cut. Unlimited takes no permit at all: one atomic
//! load per acquisition.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `max` when there is no limit.
const UNLIMITED: usize = 0;

pub struct Limit {
    /// The current maximum; [`UNLIMITED`] when none.
    max: AtomicUsize,
    semaphore: Arc<Semaphore>,
    /// Permits still to be forgotten as they return, after a lowering.
    debt: AtomicUsize,
    /// Serializes `set`: resizing is read-modify-write of `max` and `debt`.
    resizing: Mutex<()>,
}

/// Held while a connection or an exchange runs; dropping it frees its place.
pub struct Permit {
    held: Option<(OwnedSemaphorePermit, Arc<Limit>)>,
}

/// There was no free place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Limit {
    pub fn new(max: Option<usize>) -> Arc<Self> {
        let max = max.unwrap_or(UNLIMITED);
        Arc::new(Self {
            max: AtomicUsize::new(max),
            semaphore: Arc::new(Semaphore::new(max)),
            debt: AtomicUsize::new(0),
            resizing: Mutex::new(()),
        })
    }

    pub fn max(&self) -> Option<usize> {
        match self.max.load(Ordering::Acquire) {
            UNLIMITED => None,
            max => Some(max),
        }
    }

    /// A place now, or [`Full`].
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, Full> {
        if self.max.load(Ordering::Acquire) == UNLIMITED {
            return Ok(Permit { held: None });
        }
        match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(Permit {
                held: Some((permit, self.clone())),
            }),
            Err(_) => Err(Full),
        }
    }

    /// A place, waiting for one to free up.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        if self.max.load(Ordering::Acquire) == UNLIMITED {
            return Permit { held: None };
        }
        match self.semaphore.clone().acquire_owned().await {
            Ok(permit) => Permit {
                held: Some((permit, self.clone())),
            },
            // The semaphore is never closed.
            Err(_) => Permit { held: None },
        }
    }

    /// Changes the maximum; `None` lifts the limit. Places taken under the
    /// old limit stay taken until their holders finish.
    pub fn set(&self, max: Option<usize>) {
        let _serial = self.resizing.lock().unwrap_or_else(|e| e.into_inner());
        let new = max.unwrap_or(UNLIMITED);
        let old = self.max.swap(new, Ordering::AcqRel);
        // Unlimited keeps no permits; a limit starts from its full count.
        let (from, to) = (old, new);
        if to > from {
            let mut grow = to - from;
            let paid = self.pay_debt(grow);
            grow -= paid;
            self.semaphore.add_permits(grow);
        } else if to < from {
            let shrink = from - to;
            let forgotten = self.semaphore.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    /// Cancels up to `n` permits of debt instead of adding new ones.
    fn pay_debt(&self, n: usize) -> usize {
        let mut paid = 0;
        let _ = self
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                paid = debt.min(n);
                Some(debt - paid)
            });
        paid
    }

    /// A returning permit pays one unit of debt, if any, instead of freeing a place.
    fn takes_back(&self) -> bool {
        self.debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                debt.checked_sub(1)
            })
            .is_ok()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((permit, limit)) = self.held.take() {
            if limit.takes_back() {
                permit.forget();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(limit: &Arc<Limit>, n: usize) -> Vec<Permit> {
        (0..n).map(|_| limit.try_acquire().unwrap()).collect()
    }

    #[test]
    fn unlimited_admits_everything_without_permits() {
        let limit = Limit::new(None);
        let held = take(&limit, 10_000);
        assert!(held.iter().all(|p| p.held.is_none()));
        assert_eq!(limit.max(), None);
    }

    #[test]
    fn a_limit_admits_that_many_and_frees_on_drop() {
        let limit = Limit::new(Some(2));
        let mut held = take(&limit, 2);
        assert_eq!(limit.try_acquire().err(), Some(Full));
        held.pop();
        assert!(limit.try_acquire().is_ok());
    }

    #[test]
    fn lowering_takes_effect_as_holders_finish() {
        let limit = Limit::new(Some(4));
        let mut held = take(&limit, 3);
        limit.set(Some(1));
        // One idle permit was forgotten at once; two are owed.
        assert_eq!(limit.try_acquire().err(), Some(Full));
        held.pop();
        held.pop();
        assert_eq!(limit.try_acquire().err(), Some(Full), "debt paid first");
        held.pop();
        let one = limit.try_acquire().expect("the new limit admits one");
        assert_eq!(limit.try_acquire().err(), Some(Full));
        drop(one);
    }

    #[test]
    fn raising_pays_debt_before_adding() {
        let limit = Limit::new(Some(2));
        let held = take(&limit, 2);
        limit.set(Some(1)); // owes 1
        limit.set(Some(3)); // +2: pays 1, adds 1
        let extra = limit.try_acquire().expect("one more place");
        assert_eq!(limit.try_acquire().err(), Some(Full));
        drop(held);
        drop(extra);
        let all = take(&limit, 3);
        assert_eq!(limit.try_acquire().err(), Some(Full));
        drop(all);
    }

    #[test]
    fn lifting_and_setting_again() {
        let limit = Limit::new(Some(1));
        let held = limit.try_acquire().unwrap();
        limit.set(None);
        assert!(take(&limit, 100).iter().all(|p| p.held.is_none()));
        drop(held);
        limit.set(Some(2));
        let two = take(&limit, 2);
        assert_eq!(limit.try_acquire().err(), Some(Full));
        drop(two);
    }
}
