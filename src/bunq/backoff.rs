//! Retry timing: exponential backoff with full jitter.
//!
//! Full jitter (a random wait between zero and the exponential bound) spreads the retries of
//! many workers that failed together, instead of sending them back in lockstep.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1-based): uniform in [0, min(cap, base·2^(attempt-1))].
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let bound = self.base.saturating_mul(1 << exponent).min(self.cap);
        bound.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_exponential_bound_and_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for attempt in 1..30 {
            let bound = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(backoff.cap);
            assert!(backoff.delay(attempt) <= bound);
        }
    }

    /// The delays really wait, and spread over their range: of 200 draws, none is certain to
    /// fall in the lower quarter (the chance that all do is 0.25^200).
    #[test]
    fn delays_spread_over_the_range_and_grow_with_the_attempt() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        };
        for attempt in 1..=6 {
            let bound = Duration::from_millis(100) * (1 << (attempt - 1));
            let longest = (0..200).map(|_| backoff.delay(attempt)).max().unwrap();
            assert!(
                longest > bound / 4,
                "attempt {attempt}: longest of 200 delays {longest:?}, bound {bound:?}"
            );
            assert!(longest <= bound);
        }
    }
}
