//! What to do with a batch the collector did not accept, and how long to wait before trying
//! again: exponential backoff with jitter, `Retry-After` honoured. Time is passed in, never read,
//! so the state machine is testable with a fake clock.

/// How a collector answer is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Transient: keep the batch and send it again later.
    Retry,
    /// The collector will never accept this batch (bad request, bad app id, too large, ...).
    Reject,
}

/// `None` means no HTTP answer at all (dispatch refused, connection failure surfaced as such).
pub fn classify(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Accepted,
        None | Some(408 | 425 | 429 | 500..=599) => Verdict::Retry,
        Some(_) => Verdict::Reject,
    }
}

/// Longest `Retry-After` obeyed; a misconfigured server must not park delivery for hours.
const MAX_RETRY_AFTER_MS: u64 = 600_000;

/// Exponential backoff shared by all batches of one shipper: a failing collector is backed off
/// as a whole rather than per batch.
#[derive(Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(initial_ms: u64, max_ms: u64, seed: u64) -> Self {
        Backoff {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            failures: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Records a failure; returns how long to wait before the next attempt. The delay doubles
    /// per consecutive failure up to the maximum, jittered into its upper half so that many
    /// proxies do not retry in lockstep. `Retry-After` (ms), when given, wins.
    pub fn on_failure(&mut self, retry_after_ms: Option<u64>) -> u64 {
        self.failures = self.failures.saturating_add(1);
        if let Some(ms) = retry_after_ms {
            return ms.min(MAX_RETRY_AFTER_MS);
        }
        let exp = self
            .initial_ms
            .saturating_mul(1u64 << (self.failures - 1).min(32))
            .min(self.max_ms);
        exp - self.rng.u64(0..=exp / 2)
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// `Retry-After` in delta-seconds form (the HTTP-date form is not used by collectors).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(Some(200)), Verdict::Accepted);
        assert_eq!(classify(Some(201)), Verdict::Accepted);
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(classify(Some(s)), Verdict::Retry, "{s}");
        }
        assert_eq!(classify(None), Verdict::Retry);
        for s in [400, 401, 402, 404, 413] {
            assert_eq!(classify(Some(s)), Verdict::Reject, "{s}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(1000, 60_000, 3);
        let bounds = [
            1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000,
        ];
        for (i, hi) in bounds.iter().enumerate() {
            let d = b.on_failure(None);
            assert!(
                d >= hi / 2 && d <= *hi,
                "attempt {i}: {d} not in [{}, {hi}]",
                hi / 2
            );
        }
        b.on_success();
        assert_eq!(b.failures(), 0);
        let d = b.on_failure(None);
        assert!((500..=1000).contains(&d), "{d}");
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::HashSet<u64> = (0..20)
            .map(|seed| Backoff::new(1000, 60_000, seed).on_failure(None))
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let mut b = Backoff::new(1000, 60_000, 1);
        assert_eq!(b.on_failure(Some(7000)), 7000);
        assert_eq!(b.on_failure(Some(86_400_000)), MAX_RETRY_AFTER_MS);
        assert_eq!(parse_retry_after(" 3 "), Some(3000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let mut b = Backoff::new(1000, 60_000, 1);
        for _ in 0..200 {
            assert!(b.on_failure(None) <= 60_000);
        }
    }
}
