//! Sliding-window rate limiting per (method, endpoint), with bunq's 429 text.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::options::RateLimit;

/// Admitted-call timestamps per endpoint key (e.g. `POST partner-user-provision`).
///
/// docs/protocol.md §9.1: limits are "within any 3 consecutive seconds" (classic page) / a
/// "rolling window" (newer page), per endpoint. The simulator has one client, so the
/// per-IP/per-device part of bunq's rule collapses to per endpoint.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<&'static str, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Admit a call now, or return the 429 text. Rejected calls are not recorded, so a
    /// client that keeps hammering still gets in once the window has room.
    pub fn check(
        &mut self,
        endpoint: &'static str,
        limit: RateLimit,
        now: Instant,
    ) -> Result<(), String> {
        let window = limit.window();
        let q = self.windows.entry(endpoint).or_default();
        while let Some(&front) = q.front() {
            if now.duration_since(front) >= window {
                q.pop_front();
            } else {
                break;
            }
        }
        if q.len() >= limit.count as usize {
            return Err(too_many_text(limit));
        }
        q.push_back(now);
        Ok(())
    }
}

/// docs/protocol.md §9.2 (observed in the wild): singular "second" even for 3.
pub fn too_many_text(limit: RateLimit) -> String {
    format!(
        "Too many requests. You can do a maximum of {} calls per {} second to this endpoint.",
        limit.count, limit.window_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn window_slides_and_rejections_do_not_count() {
        let mut rl = RateLimiter::default();
        let lim = RateLimit::new(2, 1.0);
        let t0 = Instant::now();
        assert!(rl.check("GET x", lim, t0).is_ok());
        assert!(
            rl.check("GET x", lim, t0 + Duration::from_millis(100))
                .is_ok()
        );
        let err = rl
            .check("GET x", lim, t0 + Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(
            err,
            "Too many requests. You can do a maximum of 2 calls per 1 second to this endpoint."
        );
        // Other endpoints have their own window.
        assert!(
            rl.check("GET y", lim, t0 + Duration::from_millis(200))
                .is_ok()
        );
        // First call leaves the window at t0+1s; the rejected one at 200 ms did not count.
        assert!(
            rl.check("GET x", lim, t0 + Duration::from_millis(1000))
                .is_ok()
        );
        assert!(
            rl.check("GET x", lim, t0 + Duration::from_millis(1050))
                .is_err()
        );
        assert_eq!(
            too_many_text(RateLimit::new(1, 0.2)),
            "Too many requests. You can do a maximum of 1 calls per 0.2 second to this endpoint."
        );
    }
}
