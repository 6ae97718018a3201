//! Replaced policies are freed on the reload thread, not by the request that happens to
//! drop the last reference: dropping a 10,000-route policy takes about a millisecond and
//! a half, which would stall every connection on that request's worker.

use std::sync::Arc;

/// Snapshots taken out of service, kept until no request holds them.
#[derive(Debug)]
pub(super) struct Retired<T> {
    held: Vec<Arc<T>>,
}

impl<T> Default for Retired<T> {
    fn default() -> Self {
        Retired { held: Vec::new() }
    }
}

impl<T> Retired<T> {
    /// Takes a replaced snapshot; requests deciding on it keep their copies.
    pub(super) fn keep(&mut self, old: Arc<T>) {
        self.held.push(old);
    }

    /// Frees, here, every snapshot no request holds any more. Nothing can take a new
    /// reference to one that is out of service, so a count of one stays one.
    pub(super) fn release(&mut self) {
        self.held.retain(|old| Arc::strong_count(old) > 1);
    }

    /// Whether some snapshot still waits for its last request.
    pub(super) fn waiting(&self) -> bool {
        !self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Sender, channel};
    use std::thread::{self, ThreadId};

    use super::*;

    /// Reports the thread it is dropped on.
    struct Snapshot(Sender<ThreadId>);

    impl Drop for Snapshot {
        fn drop(&mut self) {
            let _ = self.0.send(thread::current().id());
        }
    }

    #[test]
    fn the_last_request_does_not_free_a_retired_snapshot_the_releaser_does() {
        let (tx, dropped) = channel();
        let in_service = Arc::new(Snapshot(tx));
        let request = Arc::clone(&in_service);
        let mut retired = Retired::default();
        retired.keep(in_service);
        retired.release();
        assert!(retired.waiting(), "a request still holds it");
        thread::spawn(move || drop(request)).join().unwrap();
        assert!(dropped.try_recv().is_err(), "freed by the request's thread");
        retired.release();
        assert!(!retired.waiting());
        assert_eq!(dropped.try_recv(), Ok(thread::current().id()));
    }
}
