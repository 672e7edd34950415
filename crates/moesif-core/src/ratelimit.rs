//! Rate-limited logging: a failing collector must not flood Envoy's log.

/// Lets one message through per interval and counts the ones it held back.
#[derive(Debug)]
pub struct LogGate {
    interval_ms: u64,
    last_ms: Option<u64>,
    suppressed: u64,
}

impl LogGate {
    pub fn new(interval_ms: u64) -> Self {
        LogGate {
            interval_ms,
            last_ms: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a message may be logged now, `n` being how many were held back since.
    pub fn allow(&mut self, now_ms: u64) -> Option<u64> {
        match self.last_ms {
            Some(last) if now_ms.saturating_sub(last) < self.interval_ms => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_ms = Some(now_ms);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval() {
        let mut g = LogGate::new(1000);
        assert_eq!(g.allow(0), Some(0));
        assert_eq!(g.allow(10), None);
        assert_eq!(g.allow(999), None);
        assert_eq!(g.allow(1000), Some(2));
        assert_eq!(g.allow(1500), None);
    }
}
