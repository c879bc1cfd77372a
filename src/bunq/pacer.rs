//! The request pacer: spaces calls evenly under a cap and adapts to the limit bunq states in
//! its 429 answers.
//!
//! bunq limits each endpoint per rolling window ("5 POSTs per 3 s", docs/protocol.md §9) and says
//! the exact limit in the 429 text. Spacing calls evenly (one slot every `interval`) never bursts a
//! window. A 429 teaches the real limit: from then on the pacer also keeps its own copy of the
//! rolling window (the send times of its recent calls), so after a burst has filled bunq's
//! window it waits for that window to clear instead of collecting a 429 for every call in the
//! meantime. Quiet stretches creep back toward the cap. governor's quotas are fixed at
//! construction, so this small pacer is written here instead.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::error::RateLimitText;

/// After this many calls without a 429 the pacer tries a slightly shorter interval.
const RECOVERY_EVERY: u32 = 50;
/// How much shorter: 2 % per step, so recovery is slow and 429s stay rare.
const RECOVERY_FACTOR: f64 = 0.98;
/// Spacing kept above a limit bunq stated, so clock skew between us and bunq's window does
/// not turn the exact limit into a stream of 429s.
const STATED_LIMIT_MARGIN: f64 = 1.02;

/// Default pace of provision POSTs: bunq's documented 5 per 3 s (docs/protocol.md §9), with the
/// same margin, so evenly spaced calls never land exactly on the window's edge.
pub const DEFAULT_POST_RATE: f64 = 5.0 / 3.0 / STATED_LIMIT_MARGIN;
/// Default pace of GETs (lookups, status): bunq's documented 3 per 3 s, with the margin.
pub const DEFAULT_GET_RATE: f64 = 1.0 / STATED_LIMIT_MARGIN;
/// Default pace of provision PUTs (`cancel`, `status --reset-expired`): bunq's documented
/// 2 per 3 s (docs/protocol.md §9), with the margin.
pub const DEFAULT_PUT_RATE: f64 = 2.0 / 3.0 / STATED_LIMIT_MARGIN;
/// The slowest spacing a 429 without a readable limit can push a pacer to.
const SLOWEST_GUESS: Duration = Duration::from_secs(30);
/// How many recent send times are kept to emulate bunq's window; a stated limit with more
/// calls per window than this is enforced by spacing alone.
const RECENT_SLOTS: usize = 1024;

/// A call's place in the pacer's copy of bunq's window, handed out by [`Pacer::acquire`];
/// give it back to [`Pacer::answered`] when the answer is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(Instant);

#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    /// The fastest spacing ever allowed (the user's `--rate`).
    cap_interval: Duration,
    /// The fastest spacing bunq's 429 texts allow, once one was seen.
    learned_interval: Option<Duration>,
    interval: Duration,
    next_slot: Instant,
    /// The limit bunq stated in a 429 ("X calls per Y second"), once one was seen.
    stated_window: Option<RateLimitText>,
    /// Send times of the most recent calls, oldest first (slots only grow).
    recent_slots: VecDeque<Instant>,
    calls_since_change: u32,
    /// 429s seen, for the tests' checks.
    #[cfg(test)]
    rate_limited: u64,
}

impl Pacer {
    /// `per_second` is the cap; `None` or a non-positive value means unpaced (tests and
    /// benchmarks against a simulator without limits).
    pub fn new(per_second: Option<f64>) -> Self {
        let cap_interval = match per_second {
            Some(rate) if rate > 0.0 && rate.is_finite() => Duration::from_secs_f64(1.0 / rate),
            _ => Duration::ZERO,
        };
        Self {
            state: Mutex::new(PacerState {
                cap_interval,
                learned_interval: None,
                interval: cap_interval,
                next_slot: Instant::now(),
                stated_window: None,
                recent_slots: VecDeque::new(),
                calls_since_change: 0,
                #[cfg(test)]
                rate_limited: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pacer that knows bunq's limit before any 429 (the documented one), so it keeps its
    /// copy of the window from the first call. For small windows (PUT: 2 per 3 s) the spacing
    /// margin alone is a few tens of milliseconds, less than a request can spend between its
    /// slot and bunq on a busy machine.
    pub fn with_known_limit(per_second: Option<f64>, limit: RateLimitText) -> Self {
        let pacer = Self::new(per_second);
        pacer.lock().stated_window = Some(limit);
        pacer
    }

    /// The pacer of provision POSTs for a `--rate` flag: bunq's documented limit by default,
    /// 0 unpaced.
    pub fn for_posts(rate_flag: Option<f64>) -> Self {
        Self::new(Some(rate_flag.unwrap_or(DEFAULT_POST_RATE)).filter(|r| *r > 0.0))
    }

    /// The pacer of GETs (lookups, list pages, single reads) for a rate flag: bunq's
    /// documented limit by default, 0 unpaced.
    pub fn for_gets(rate_flag: Option<f64>) -> Self {
        Self::new(Some(rate_flag.unwrap_or(DEFAULT_GET_RATE)).filter(|r| *r > 0.0))
    }

    /// The pacer of provision PUTs for a `--rate`/`--put-rate` flag: by default bunq's
    /// documented 2 per 3 s, known from the first call (see [`Pacer::with_known_limit`]); a
    /// rate the operator chose is trusted until bunq states another; 0 is unpaced.
    pub fn for_puts(rate_flag: Option<f64>) -> Self {
        match rate_flag {
            None => Self::with_known_limit(
                Some(DEFAULT_PUT_RATE),
                RateLimitText {
                    calls: 2,
                    per: Duration::from_secs(3),
                },
            ),
            Some(rate) => Self::new(Some(rate).filter(|r| *r > 0.0)),
        }
    }

    /// Waits for the next free slot. Slots are handed out in order, one per interval, and,
    /// once bunq's limit is known, never more than X in any Y seconds, counted from when the
    /// earlier calls were answered where that is known (see [`Pacer::answered`]).
    pub async fn acquire(&self) -> Slot {
        let (slot, now) = {
            let mut state = self.lock();
            let now = Instant::now();
            let mut slot = state.next_slot.max(now);
            if let Some(limit) = state.stated_window {
                let calls = limit.calls as usize;
                if let Some(oldest_in_window) = nth_latest(state.recent_slots.iter().rev(), calls) {
                    slot = slot.max(oldest_in_window + limit.per.mul_f64(STATED_LIMIT_MARGIN));
                }
            }
            state.recent_slots.push_back(slot);
            if state.recent_slots.len() > RECENT_SLOTS {
                state.recent_slots.pop_front();
            }
            state.next_slot = slot + state.interval;
            (slot, now)
        };
        // A slot that is already due needs no timer. Sleeping until `now` anyway registers a
        // timer entry that fires on the next millisecond tick: a wake-up and up to 1 ms of added
        // latency for every call, which is every row when unpaced (`--rate 0`).
        let mut slot = slot;
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
        // Answers that came in while this call waited may have moved earlier calls later (see
        // `answered`): keep a full window clear of them too.
        while let Some(later) = self.recheck(slot) {
            tokio::time::sleep_until(later).await;
            slot = later;
        }
        Slot(slot)
    }

    /// The later time `slot` must move to because earlier calls were answered late, if any;
    /// the move is recorded.
    fn recheck(&self, slot: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let limit = state.stated_window?;
        let position = state.recent_slots.iter().rposition(|s| *s == slot)?;
        let reserved_before = state.recent_slots.range(..position).rev();
        let oldest_in_window = nth_latest(reserved_before, limit.calls as usize)?;
        let earliest = oldest_in_window + limit.per.mul_f64(STATED_LIMIT_MARGIN);
        if earliest <= slot {
            return None;
        }
        state.recent_slots[position] = earliest;
        state.next_slot = state.next_slot.max(earliest + state.interval);
        Some(earliest)
    }

    /// The call of `slot` was answered now. bunq counted it no later than this, so the window
    /// copy moves the call here: a request that spent long between its slot and bunq (a busy
    /// machine, a slow connection) cannot make the next ones land inside bunq's window.
    pub fn answered(&self, slot: Slot) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(entry) = state.recent_slots.iter_mut().rev().find(|s| **s == slot.0) {
            *entry = (*entry).max(now);
        }
    }

    /// A call went through: after a quiet stretch, creep back toward the cap.
    pub fn on_success(&self) {
        let mut state = self.lock();
        state.calls_since_change += 1;
        if state.calls_since_change >= RECOVERY_EVERY {
            state.calls_since_change = 0;
            let floor = state
                .learned_interval
                .unwrap_or(state.cap_interval)
                .max(state.cap_interval);
            state.interval = state.interval.mul_f64(RECOVERY_FACTOR).max(floor);
        }
    }

    /// bunq answered 429. With a stated limit, adopt it: spacing at its even interval (with a
    /// small margin) plus the window check in `acquire`. Without one, halve the rate and pause
    /// one interval, since the window is full right now.
    pub fn on_rate_limited(&self, stated: Option<RateLimitText>) {
        let mut state = self.lock();
        #[cfg(test)]
        {
            state.rate_limited += 1;
        }
        state.calls_since_change = 0;
        match stated {
            Some(limit) => {
                let learned = limit
                    .interval()
                    .mul_f64(STATED_LIMIT_MARGIN)
                    .max(state.cap_interval);
                state.learned_interval = Some(learned);
                state.stated_window = Some(limit);
                state.interval = state.interval.max(learned);
            }
            None => {
                // Never slower than bunq's slowest documented window (session-server: 1 per
                // 30 s), unless the operator's own rate or a limit bunq stated is: twenty
                // unreadable 429s in a row used to double the spacing to hours.
                let slowest = SLOWEST_GUESS
                    .max(state.cap_interval)
                    .max(state.learned_interval.unwrap_or_default());
                let slower = (state.interval * 2)
                    .max(Duration::from_millis(100))
                    .min(slowest);
                state.interval = slower;
                let pause_until = Instant::now() + slower;
                state.next_slot = state.next_slot.max(pause_until);
            }
        }
    }

    #[cfg(test)]
    pub fn current_interval(&self) -> Duration {
        self.lock().interval
    }

    #[cfg(test)]
    pub fn rate_limited_count(&self) -> u64 {
        self.lock().rate_limited
    }
}

/// The `n`-th latest of send times given latest-reserved first (n ≥ 1), if there are `n`.
/// Answers move entries later (see [`Pacer::answered`]), so the order is only nearly by time:
/// a few more than `n` of the latest are sorted to find it.
fn nth_latest<'a>(latest_first: impl Iterator<Item = &'a Instant>, n: usize) -> Option<Instant> {
    let mut latest: Vec<Instant> = latest_first.take(n + 8).copied().collect();
    latest.sort_unstable_by(|a, b| b.cmp(a));
    latest.get(n.checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_at_the_cap() {
        let pacer = Pacer::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.acquire().await;
        }
        // Five slots at 100 ms spacing: the first is immediate, the fifth at 400 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn adopts_the_stated_limit_then_recovers_only_down_to_it() {
        let pacer = Pacer::new(Some(1000.0));
        pacer.on_rate_limited(RateLimitText::parse("maximum of 5 calls per 3 second"));
        let learned = Duration::from_millis(600).mul_f64(STATED_LIMIT_MARGIN);
        assert_eq!(pacer.current_interval(), learned);
        for _ in 0..(RECOVERY_EVERY * 100) {
            pacer.on_success();
        }
        assert_eq!(pacer.current_interval(), learned);
        assert_eq!(pacer.rate_limited_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_burst_filled_the_window_waits_for_it_to_clear() {
        // Unpaced: ten calls go out at once and fill a "5 per 3 s" window twice over.
        let pacer = Pacer::new(None);
        let start = Instant::now();
        for _ in 0..10 {
            pacer.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.on_rate_limited(RateLimitText::parse("maximum of 5 calls per 3 second"));
        // The next call waits until the fifth most recent send is out of bunq's window.
        pacer.acquire().await;
        let window = Duration::from_secs(3).mul_f64(STATED_LIMIT_MARGIN);
        assert_eq!(start.elapsed(), window);
        // Then never more than 5 in any window: the 6th after that waits for the 1st to age out.
        for _ in 0..5 {
            pacer.acquire().await;
        }
        assert!(start.elapsed() >= window * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn regression_a_late_answer_pushes_the_window_so_the_next_call_is_not_a_429() {
        // 2 per 3 s, known up front. The first call reaches bunq late (its answer comes 200 ms
        // after its slot): the third call must wait for a full window after that answer, not
        // after the slot, or bunq sees three calls within 3 s.
        let limit = RateLimitText::parse("maximum of 2 calls per 3 second").unwrap();
        let pacer = Pacer::with_known_limit(Some(2.0 / 3.0 / STATED_LIMIT_MARGIN), limit);
        let start = Instant::now();
        let first = pacer.acquire().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        pacer.answered(first);
        let second = pacer.acquire().await;
        pacer.answered(second);
        pacer.acquire().await;
        let window = Duration::from_secs(3).mul_f64(STATED_LIMIT_MARGIN);
        assert_eq!(start.elapsed(), Duration::from_millis(200) + window);
    }

    #[tokio::test(start_paused = true)]
    async fn regression_concurrent_calls_keep_clear_of_an_answer_that_came_in_while_they_waited() {
        // Three calls reserve their slots at once (0, 1.53 s, 3.06 s); the first is answered
        // 200 ms late, after the third already holds its slot. The third still waits a full
        // window after that answer.
        let limit = RateLimitText::parse("maximum of 2 calls per 3 second").unwrap();
        let pacer = std::sync::Arc::new(Pacer::with_known_limit(
            Some(2.0 / 3.0 / STATED_LIMIT_MARGIN),
            limit,
        ));
        let start = Instant::now();
        let first = pacer.acquire().await;
        let (second, third) = (pacer.clone(), pacer.clone());
        let second = tokio::spawn(async move { second.acquire().await });
        let third = tokio::spawn(async move {
            third.acquire().await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        pacer.answered(first);
        second.await.unwrap();
        let window = Duration::from_secs(3).mul_f64(STATED_LIMIT_MARGIN);
        assert_eq!(
            third.await.unwrap() - start,
            Duration::from_millis(200) + window
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_stated_limit_halves_the_rate_and_recovers_to_the_cap() {
        let pacer = Pacer::new(Some(100.0));
        pacer.on_rate_limited(None);
        assert_eq!(pacer.current_interval(), Duration::from_millis(100));
        for _ in 0..(RECOVERY_EVERY * 200) {
            pacer.on_success();
        }
        assert_eq!(pacer.current_interval(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn regression_unreadable_429s_doubled_the_spacing_to_hours() {
        let pacer = Pacer::new(None);
        for _ in 0..40 {
            pacer.on_rate_limited(None);
        }
        assert_eq!(pacer.current_interval(), SLOWEST_GUESS);
        // An operator's rate slower than the guess stays the floor.
        let slow = Pacer::new(Some(1.0 / 120.0));
        for _ in 0..40 {
            slow.on_rate_limited(None);
        }
        assert_eq!(slow.current_interval(), Duration::from_secs(120));
    }
}
