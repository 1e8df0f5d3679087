//! A circuit breaker: after N failures in a row, stop calling for a while, then try once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
}

/// Shared by every call of one remote skill.
#[derive(Debug)]
pub(super) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub(super) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            threshold,
            open_for,
        }
    }

    /// Whether a call may go out now: closed, or open long enough that one try is due (that
    /// try re-arms the wait, so only one call probes at a time).
    pub(super) fn allows(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        match state.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                state.open_until = Some(Instant::now() + self.open_for);
                true
            }
            None => true,
        }
    }

    pub(super) fn succeeded(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::default();
        }
    }

    pub(super) fn failed(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
            if state.failures_in_a_row >= self.threshold {
                state.open_until = Some(Instant::now() + self.open_for);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_in_a_row_and_probes_once_after_the_wait() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            assert!(breaker.allows());
            breaker.failed();
        }
        breaker.succeeded();
        for _ in 0..3 {
            assert!(breaker.allows(), "a success reset the count");
            breaker.failed();
        }
        assert!(!breaker.allows(), "open");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.allows(), "one probe");
        assert!(!breaker.allows(), "only one");
        breaker.succeeded();
        assert!(breaker.allows(), "closed again");
    }
}
