//! Fault injection: lets tests make the collector fail the way the real one can (error
//! statuses, slowness, being down) to exercise the plugin's retries and timeouts.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The body of `POST /_collector/faults` (and `--faults`); every field is optional.
///
/// `status` answers the next `count` event POSTs, or all of them for `duration_ms`, or all
/// of them until cleared, with that status and without storing anything. `latency_ms`
/// delays every event POST. `refuse_ms` closes the listening socket for that long; it is an
/// action rather than a state, so [`Faults`] does not keep it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_ms: Option<u64>,
}

impl FaultSpec {
    /// Parses and checks a spec, so a typo in a test fails loudly instead of injecting nothing.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let spec: Self =
            serde_json::from_slice(json).map_err(|e| format!("bad fault spec: {e}"))?;
        match spec.status {
            Some(status) if !(100..=599).contains(&status) => Err(format!(
                "bad fault spec: status {status} is not an HTTP status"
            )),
            None if spec.count.is_some()
                || spec.duration_ms.is_some()
                || spec.retry_after_s.is_some() =>
            {
                Err("bad fault spec: count, duration_ms and retry_after_s need a status".to_owned())
            }
            _ => Ok(spec),
        }
    }
}

/// An injected error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub status: u16,
    pub retry_after_s: Option<u64>,
}

/// The faults in force.
#[derive(Debug, Default)]
pub struct Faults {
    status: Option<StatusFault>,
    latency: Option<Duration>,
}

#[derive(Debug)]
struct StatusFault {
    answer: Injected,
    remaining: Option<u64>,
    until: Option<Instant>,
}

impl Faults {
    /// Replaces the faults in force with `spec` (a POST is a whole new spec, not a patch).
    pub fn set(&mut self, spec: &FaultSpec) {
        self.status = spec.status.map(|status| StatusFault {
            answer: Injected {
                status,
                retry_after_s: spec.retry_after_s,
            },
            remaining: spec.count,
            until: spec
                .duration_ms
                .map(|ms| Instant::now() + Duration::from_millis(ms)),
        });
        self.latency = spec.latency_ms.map(Duration::from_millis);
    }

    /// The faults still in force, as a spec whose `count` and `duration_ms` are what is left.
    pub fn current(&mut self) -> FaultSpec {
        self.expire();
        let status = self.status.as_ref();
        FaultSpec {
            status: status.map(|s| s.answer.status),
            count: status.and_then(|s| s.remaining),
            duration_ms: status.and_then(|s| s.until).map(|until| {
                let left = until.saturating_duration_since(Instant::now()).as_millis();
                u64::try_from(left).unwrap_or(u64::MAX)
            }),
            retry_after_s: status.and_then(|s| s.answer.retry_after_s),
            latency_ms: self
                .latency
                .map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            refuse_ms: None,
        }
    }

    /// How long to hold every event POST before handling it.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Decides the fate of one event POST: `Some` means answer with the injected error.
    pub fn take(&mut self) -> Option<Injected> {
        self.expire();
        let fault = self.status.as_mut()?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
        }
        Some(fault.answer)
    }

    fn expire(&mut self) {
        let spent = self.status.as_ref().is_some_and(|s| {
            s.remaining == Some(0) || s.until.is_some_and(|until| Instant::now() >= until)
        });
        if spent {
            self.status = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FaultSpec, Faults, Injected};

    #[test]
    fn count_limits_the_status_fault() -> Result<(), String> {
        let mut faults = Faults::default();
        faults.set(&FaultSpec::parse(
            br#"{"status":503,"count":2,"retry_after_s":1}"#,
        )?);
        let injected = Some(Injected {
            status: 503,
            retry_after_s: Some(1),
        });
        assert_eq!(faults.take(), injected);
        assert_eq!(faults.current().count, Some(1));
        assert_eq!(faults.take(), injected);
        assert_eq!(faults.take(), None);
        assert_eq!(faults.current(), FaultSpec::default());
        Ok(())
    }

    #[test]
    fn duration_and_unbounded() -> Result<(), String> {
        let mut faults = Faults::default();
        faults.set(&FaultSpec::parse(br#"{"status":500,"duration_ms":0}"#)?);
        assert_eq!(faults.take(), None);
        faults.set(&FaultSpec::parse(br#"{"status":429,"latency_ms":5}"#)?);
        for _ in 0..10 {
            assert!(faults.take().is_some());
        }
        assert_eq!(faults.current().latency_ms, Some(5));
        Ok(())
    }

    #[test]
    fn rejects_nonsense() {
        assert!(FaultSpec::parse(br#"{"staus":503}"#).is_err());
        assert!(FaultSpec::parse(br#"{"status":1000}"#).is_err());
        assert!(FaultSpec::parse(br#"{"count":3}"#).is_err());
    }
}
