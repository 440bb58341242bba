//! One scan, two visitors: usage and content read the same bytes once.

use super::json_scan::{Scalar, Visitor};

/// Hands every event to both; a string is kept when either asks, and the
/// scan stops only when both are satisfied.
pub(crate) struct Tee<'a, A, B>(pub &'a mut A, pub &'a mut B);

impl<A: Visitor, B: Visitor> Visitor for Tee<'_, A, B> {
    const CAPTURES: bool = B::CAPTURES;

    fn key(&mut self, key: Option<&[u8]>) {
        self.0.key(key);
        self.1.key(key);
    }

    fn keep_string(&self) -> bool {
        self.0.keep_string() || self.1.keep_string()
    }

    fn begin(&mut self, array: bool) {
        self.0.begin(array);
        self.1.begin(array);
    }

    fn end(&mut self) {
        self.0.end();
        self.1.end();
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        self.0.scalar(value);
        self.1.scalar(value);
    }

    fn satisfied(&self) -> bool {
        self.0.satisfied() && self.1.satisfied()
    }

    // Only the second visitor (content) streams or records values.
    fn stream_string(&self) -> bool {
        self.1.stream_string()
    }

    fn string_piece(&mut self, piece: &[u8]) {
        self.1.string_piece(piece);
    }

    fn record_raw(&self, first: u8) -> bool {
        self.1.record_raw(first)
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.1.raw(bytes);
    }
}
