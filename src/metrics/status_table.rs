//! Per-status handles, created on first use and then found by indexing with
//! the status code: no hashing, no lock after the first request of a status.

use std::sync::{Arc, OnceLock};

/// Every code `http::StatusCode` admits, 100..=999 (499, a client that left, included).
const FIRST: u16 = 100;
const COUNT: usize = 900;

pub struct StatusTable<T> {
    slots: OnceLock<Box<[OnceLock<T>]>>,
}

impl<T> StatusTable<T> {
    pub const fn new() -> Self {
        Self {
            slots: OnceLock::new(),
        }
    }

    /// The handle for `status`, made by `create` the first time it is seen.
    pub fn get(&self, status: u16, create: impl FnOnce(Arc<str>) -> T) -> &T {
        let slots = self
            .slots
            .get_or_init(|| (0..COUNT).map(|_| OnceLock::new()).collect());
        let index = usize::from(status.clamp(FIRST, FIRST + COUNT as u16 - 1) - FIRST);
        slots[index].get_or_init(|| create(Arc::from(status.to_string())))
    }
}

impl<T> Default for StatusTable<T> {
    fn default() -> Self {
        Self::new()
    }
}
