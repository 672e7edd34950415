//! Fault injection: lets tests make the collector fail the way the real one can (error
//! statuses, slowness, being down), or answer the way a broken collector or a proxy in front
//! of it might (raw bytes in headers, garbage bodies, connections cut mid-answer), to
//! exercise the plugin's retries, timeouts and parsing. Event POSTs, app config fetches and
//! rules fetches each have faults of their own (see [`Target`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde::{Deserialize, Serialize};
use tokio::time::Sleep;

/// Length of a [`garbage_body`].
pub const GARBAGE_BODY_LEN: usize = 300;

/// What a `reset` answer sends of its body before the connection breaks.
pub const RESET_PREFIX: &[u8] = br#"{"partial":""#;

/// The `Content-Length` a `reset` answer announces, more than [`RESET_PREFIX`] it sends.
pub const RESET_ANNOUNCED_LEN: u64 = 1000;

/// Which requests a [`FaultSpec`] tampers with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `POST /v1/events/batch` and `POST /v1/events`.
    #[default]
    Events,
    /// `GET /v1/config`.
    Config,
    /// `GET /v1/rules`.
    Rules,
}

impl Target {
    /// The name a spec gives the target (`"events"`, `"config"`, `"rules"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Config => "config",
            Self::Rules => "rules",
        }
    }
}

/// The body of `POST /_collector/faults` (and `--faults`); every field is optional, and a
/// POST replaces the whole spec of its `target`, leaving the other targets' alone.
///
/// "Answer faults" (`status`, `header_bytes`, `garbage_body`, `reset`) tamper with the
/// answers to the target's requests: the next `count` of them, or all of them for
/// `duration_ms`, or all of them until cleared.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The requests affected: event POSTs (the default, and then not reported), app config
    /// fetches or rules fetches. Every field but `refuse_ms` applies to this target only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Answer with this status (200..=599). A non-2xx answers `{"error":"injected fault"}`
    /// and stores (or serves) nothing. A 2xx is a real success that merely answers strangely:
    /// the events are handled (and stored) as usual, or the document is served, and only a
    /// successful answer's status is replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How many of the target's requests the answer faults affect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// For how long the answer faults affect the target's requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `Retry-After: <seconds>` on the `status` answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// `Retry-After` on the `status` answer with exactly these raw bytes, in hex (`"fffe31"`):
    /// obs-text bytes 0x80-0xff are allowed, so the value need not be UTF-8 or even a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_bytes: Option<String>,
    /// An `x-hostile` header with exactly these raw bytes, in hex, on every affected answer
    /// (an injected status, a reset, or the collector's own answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_bytes: Option<String>,
    /// The affected answers carry [`GARBAGE_BODY_LEN`] non-UTF-8 bytes instead of their
    /// body (with `status` 2xx, or without `status`, the events are still stored; a fetch
    /// gets a 200 whose body is garbage instead of the document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garbage_body: Option<bool>,
    /// The affected answers start (200, `Content-Length: 1000`) and then the connection is
    /// broken after a few bytes of body. The events are not stored: the client cannot know
    /// whether they arrived, so they count as not arrived and a retry delivers them once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Delays every request of the target by this much (not limited by `count` or
    /// `duration_ms`). Events are stored even if the client gives up waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Closes the listening socket for this long, whatever the `target`: all requests are
    /// refused. It is an action rather than a state, so [`Faults`] does not keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_ms: Option<u64>,
}

impl FaultSpec {
    /// Parses and checks a spec, so a typo in a test fails loudly instead of injecting nothing.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let spec: Self =
            serde_json::from_slice(json).map_err(|e| format!("bad fault spec: {e}"))?;
        spec.check().map_err(|e| format!("bad fault spec: {e}"))?;
        Ok(spec)
    }

    /// The requests the spec is for.
    pub fn target(&self) -> Target {
        self.target.unwrap_or_default()
    }

    /// The combinations that make sense; everything else is refused with a reason.
    fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status {
            if !(200..=599).contains(&status) {
                return Err(format!(
                    "status {status} is not a final HTTP status (200..=599)"
                ));
            }
        }
        Injected::from_spec(self)?;
        let retry_after = self.retry_after_s.is_some() || self.retry_after_bytes.is_some();
        if self.retry_after_s.is_some() && self.retry_after_bytes.is_some() {
            return Err("retry_after_s and retry_after_bytes both set Retry-After".to_owned());
        }
        if retry_after && self.status.is_none() {
            return Err("retry_after_s and retry_after_bytes need a status".to_owned());
        }
        let reset = self.reset == Some(true);
        let garbage = self.garbage_body == Some(true);
        if reset && (self.status.is_some() || retry_after || garbage) {
            return Err(
                "reset sends its own 200 answer: it cannot be combined with status, \
                 retry_after_s, retry_after_bytes or garbage_body"
                    .to_owned(),
            );
        }
        if garbage && self.status.is_some_and(|s| matches!(s, 204 | 205 | 304)) {
            return Err(
                "garbage_body needs a status that has a body (not 204, 205 or 304)".to_owned(),
            );
        }
        let answers = self.status.is_some() || self.header_bytes.is_some() || garbage || reset;
        if !answers && (self.count.is_some() || self.duration_ms.is_some()) {
            return Err(
                "count and duration_ms need status, header_bytes, garbage_body or reset".to_owned(),
            );
        }
        Ok(())
    }
}

/// How the answer to one request is tampered with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Injected {
    pub status: Option<u16>,
    pub retry_after: Option<HeaderValue>,
    pub hostile_header: Option<HeaderValue>,
    pub garbage_body: bool,
    pub reset: bool,
}

impl Injected {
    /// The answer faults of `spec`, or `None` if it has none.
    fn from_spec(spec: &FaultSpec) -> Result<Option<Self>, String> {
        let retry_after = match (&spec.retry_after_bytes, spec.retry_after_s) {
            (Some(hex), _) => Some(header_value("retry_after_bytes", hex)?),
            (None, Some(seconds)) => Some(HeaderValue::from(seconds)),
            (None, None) => None,
        };
        let injected = Self {
            status: spec.status,
            retry_after,
            hostile_header: spec
                .header_bytes
                .as_deref()
                .map(|hex| header_value("header_bytes", hex))
                .transpose()?,
            garbage_body: spec.garbage_body == Some(true),
            reset: spec.reset == Some(true),
        };
        Ok((injected != Self::default()).then_some(injected))
    }

    /// Whether the fault answers in place of the collector, so the events are not stored:
    /// a non-2xx status, or a connection broken mid-answer.
    pub fn replaces_handling(&self) -> bool {
        self.reset || self.status.is_some_and(|s| !(200..300).contains(&s))
    }
}

/// Decodes `hex` into a header value, refusing the bytes no header may carry (controls
/// other than tab, and DEL); obs-text 0x80-0xff is fine.
fn header_value(field: &str, hex: &str) -> Result<HeaderValue, String> {
    let bytes = decode_hex(hex)
        .ok_or_else(|| format!("{field}: `{hex}` is not hex (an even number of 0-9, a-f, A-F)"))?;
    HeaderValue::from_bytes(&bytes).map_err(|_| {
        format!(
            "{field}: a header value cannot hold control bytes (only tab, 0x20-0x7e, 0x80-0xff)"
        )
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<Vec<u8>>>()?;
    let pairs = digits.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    Some(
        pairs
            .map(|pair| pair.iter().fold(0, |acc, d| acc << 4 | d))
            .collect(),
    )
}

/// A body no JSON or UTF-8 parser accepts: 0xff 0x00 0xfe, then pseudo-random bytes
/// (a fixed sequence, so failures reproduce).
pub fn garbage_body() -> Bytes {
    let mut state: u32 = 0x9e37_79b9;
    let mut body = vec![0xff, 0x00, 0xfe];
    while body.len() < GARBAGE_BODY_LEN {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        body.extend_from_slice(&state.to_le_bytes());
    }
    body.truncate(GARBAGE_BODY_LEN);
    Bytes::from(body)
}

/// The body of a `reset` answer: [`RESET_PREFIX`], a pause (so hyper sends the head and
/// those bytes), then an error, on which hyper aborts the connection short of the
/// announced `Content-Length`.
#[derive(Debug)]
pub struct BrokenBody {
    prefix: Option<Bytes>,
    pause: Pin<Box<Sleep>>,
}

impl BrokenBody {
    /// Starts the pause's timer, so it must be called within the Tokio runtime.
    pub fn start() -> Self {
        Self {
            prefix: Some(Bytes::from_static(RESET_PREFIX)),
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
        }
    }
}

impl Body for BrokenBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        ready!(self.pause.as_mut().poll(cx));
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "injected reset",
        ))))
    }
}

/// The faults in force for one [`Target`].
#[derive(Debug, Default)]
pub struct Faults {
    answer: Option<AnswerFault>,
    latency: Option<Duration>,
}

#[derive(Debug)]
struct AnswerFault {
    /// The spec's answer fields, as `current` reports them.
    spec: FaultSpec,
    answer: Injected,
    remaining: Option<u64>,
    until: Option<Instant>,
}

impl Faults {
    /// Replaces the faults in force with `spec` (a POST is a whole new spec, not a patch).
    /// `spec` comes from [`FaultSpec::parse`]; parts it would refuse are ignored.
    pub fn set(&mut self, spec: &FaultSpec) {
        self.answer = Injected::from_spec(spec)
            .ok()
            .flatten()
            .map(|answer| AnswerFault {
                spec: FaultSpec {
                    target: None,
                    count: None,
                    duration_ms: None,
                    latency_ms: None,
                    refuse_ms: None,
                    ..spec.clone()
                },
                answer,
                remaining: spec.count,
                until: spec
                    .duration_ms
                    .map(|ms| Instant::now() + Duration::from_millis(ms)),
            });
        self.latency = spec.latency_ms.map(Duration::from_millis);
    }

    /// The faults still in force, as a spec whose `count` and `duration_ms` are what is left
    /// (and without `target`).
    pub fn current(&mut self) -> FaultSpec {
        self.expire();
        let mut current = self
            .answer
            .as_ref()
            .map(|fault| FaultSpec {
                count: fault.remaining,
                duration_ms: fault.until.map(|until| {
                    let left = until.saturating_duration_since(Instant::now()).as_millis();
                    u64::try_from(left).unwrap_or(u64::MAX)
                }),
                ..fault.spec.clone()
            })
            .unwrap_or_default();
        current.latency_ms = self
            .latency
            .map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX));
        current
    }

    /// How long to hold every request before handling it.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Decides the fate of one request: `Some` means tamper with its answer.
    pub fn take(&mut self) -> Option<Injected> {
        self.expire();
        let fault = self.answer.as_mut()?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
        }
        Some(fault.answer.clone())
    }

    fn expire(&mut self) {
        let spent = self.answer.as_ref().is_some_and(|s| {
            s.remaining == Some(0) || s.until.is_some_and(|until| Instant::now() >= until)
        });
        if spent {
            self.answer = None;
        }
    }
}

/// The faults in force for every [`Target`], each independent of the others.
#[derive(Debug, Default)]
pub struct FaultsByTarget {
    events: Faults,
    config: Faults,
    rules: Faults,
}

impl FaultsByTarget {
    /// The faults of `target`.
    pub fn of(&mut self, target: Target) -> &mut Faults {
        match target {
            Target::Events => &mut self.events,
            Target::Config => &mut self.config,
            Target::Rules => &mut self.rules,
        }
    }

    /// Replaces the faults of `spec`'s target (see [`Faults::set`]); the others stay.
    pub fn set(&mut self, spec: &FaultSpec) {
        self.of(spec.target()).set(spec);
    }

    /// The faults still in force for `target`, with `target` named unless it is the default.
    pub fn current(&mut self, target: Target) -> FaultSpec {
        FaultSpec {
            target: (target != Target::Events).then_some(target),
            ..self.of(target).current()
        }
    }

    /// Clears the faults of `target`, or of all targets.
    pub fn clear(&mut self, target: Option<Target>) {
        match target {
            Some(target) => *self.of(target) = Faults::default(),
            None => *self = Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        garbage_body, FaultSpec, Faults, FaultsByTarget, Injected, Target, GARBAGE_BODY_LEN,
    };
    use axum::http::HeaderValue;

    #[test]
    fn target_names_are_the_spec_names() {
        for target in [Target::Events, Target::Config, Target::Rules] {
            assert_eq!(
                serde_json::to_value(target).ok(),
                Some(target.name().into())
            );
        }
    }

    #[test]
    fn count_limits_the_status_fault() -> Result<(), String> {
        let mut faults = Faults::default();
        faults.set(&FaultSpec::parse(
            br#"{"status":503,"count":2,"retry_after_s":1}"#,
        )?);
        let injected = Some(Injected {
            status: Some(503),
            retry_after: Some(HeaderValue::from_static("1")),
            ..Injected::default()
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
    fn hostile_bytes_are_decoded_from_hex() -> Result<(), String> {
        let mut faults = Faults::default();
        let json =
            br#"{"status":503,"retry_after_bytes":"fffe31","header_bytes":"80FF09","count":1}"#;
        let spec = FaultSpec::parse(json)?;
        faults.set(&spec);
        assert_eq!(faults.current(), spec);
        let injected = faults.take().ok_or("no fault")?;
        let bytes = |v: &Option<HeaderValue>| v.as_ref().map(|v| v.as_bytes().to_vec());
        assert_eq!(bytes(&injected.retry_after), Some(vec![0xff, 0xfe, 0x31]));
        assert_eq!(
            bytes(&injected.hostile_header),
            Some(vec![0x80, 0xff, 0x09])
        );
        assert!(injected.replaces_handling());
        assert_eq!(faults.take(), None);
        Ok(())
    }

    #[test]
    fn which_answers_replace_handling() -> Result<(), String> {
        let take = |json: &str| -> Result<Injected, String> {
            let mut faults = Faults::default();
            faults.set(&FaultSpec::parse(json.as_bytes())?);
            faults.take().ok_or_else(|| format!("no fault for {json}"))
        };
        assert!(take(r#"{"reset":true}"#)?.replaces_handling());
        assert!(take(r#"{"status":400}"#)?.replaces_handling());
        assert!(!take(r#"{"status":200,"garbage_body":true}"#)?.replaces_handling());
        assert!(!take(r#"{"garbage_body":true}"#)?.replaces_handling());
        assert!(!take(r#"{"header_bytes":"ff"}"#)?.replaces_handling());
        // Falsy flags alone are no fault at all.
        let mut faults = Faults::default();
        faults.set(&FaultSpec::parse(
            br#"{"reset":false,"garbage_body":false}"#,
        )?);
        assert_eq!(faults.take(), None);
        Ok(())
    }

    #[test]
    fn targets_are_independent() -> Result<(), String> {
        let mut faults = FaultsByTarget::default();
        faults.set(&FaultSpec::parse(br#"{"status":502}"#)?);
        let config = FaultSpec::parse(br#"{"target":"config","status":503,"count":1}"#)?;
        assert_eq!(config.target(), Target::Config);
        faults.set(&config);
        faults.set(&FaultSpec::parse(
            br#"{"target":"rules","garbage_body":true,"latency_ms":7}"#,
        )?);
        assert_eq!(faults.current(Target::Config), config);
        assert_eq!(faults.current(Target::Events).status, Some(502));
        assert_eq!(faults.current(Target::Events).target, None);
        assert_eq!(faults.of(Target::Events).latency(), None);
        assert_eq!(
            faults.of(Target::Config).take().and_then(|i| i.status),
            Some(503)
        );
        assert_eq!(faults.of(Target::Config).take(), None);
        assert_eq!(
            faults.of(Target::Events).take().and_then(|i| i.status),
            Some(502)
        );
        let rules = faults.of(Target::Rules).take().ok_or("no rules fault")?;
        assert!(rules.garbage_body && !rules.replaces_handling());

        // A spec for one target replaces that target's only; "events" is the default.
        faults.set(&FaultSpec::parse(br#"{"target":"events","status":429}"#)?);
        assert_eq!(
            faults.current(Target::Events),
            FaultSpec::parse(br#"{"status":429}"#)?
        );
        assert_eq!(faults.current(Target::Rules).latency_ms, Some(7));
        faults.clear(Some(Target::Rules));
        assert_eq!(
            faults.current(Target::Rules),
            FaultSpec::parse(br#"{"target":"rules"}"#)?
        );
        assert!(faults.of(Target::Events).take().is_some());
        faults.clear(None);
        assert_eq!(faults.current(Target::Events), FaultSpec::default());
        assert_eq!(faults.of(Target::Events).take(), None);
        Ok(())
    }

    #[test]
    fn garbage_is_not_utf8() {
        let body = garbage_body();
        assert_eq!(body.len(), GARBAGE_BODY_LEN);
        assert_eq!(body.get(..3), Some(&[0xff, 0x00, 0xfe][..]));
        assert!(std::str::from_utf8(&body).is_err());
    }

    #[test]
    fn rejects_nonsense() {
        let reason = |json: &str| FaultSpec::parse(json.as_bytes()).err().unwrap_or_default();
        assert!(reason(r#"{"staus":503}"#).starts_with("bad fault spec: unknown field `staus`"));
        assert!(reason(r#"{"target":"cfg","status":503}"#).starts_with(
            "bad fault spec: unknown variant `cfg`, expected one of `events`, `config`, `rules`"
        ));
        for (json, expected) in [
            (
                r#"{"status":1000}"#,
                "status 1000 is not a final HTTP status (200..=599)",
            ),
            (
                r#"{"status":100}"#,
                "status 100 is not a final HTTP status (200..=599)",
            ),
            (
                r#"{"count":3}"#,
                "count and duration_ms need status, header_bytes, garbage_body or reset",
            ),
            (
                r#"{"reset":false,"duration_ms":3}"#,
                "count and duration_ms need status, header_bytes, garbage_body or reset",
            ),
            (
                r#"{"retry_after_s":3}"#,
                "retry_after_s and retry_after_bytes need a status",
            ),
            (
                r#"{"retry_after_bytes":"31"}"#,
                "retry_after_s and retry_after_bytes need a status",
            ),
            (
                r#"{"status":503,"retry_after_s":1,"retry_after_bytes":"31"}"#,
                "retry_after_s and retry_after_bytes both set Retry-After",
            ),
            (
                r#"{"status":503,"retry_after_bytes":"fff"}"#,
                "retry_after_bytes: `fff` is not hex (an even number of 0-9, a-f, A-F)",
            ),
            (
                r#"{"header_bytes":"zz"}"#,
                "header_bytes: `zz` is not hex (an even number of 0-9, a-f, A-F)",
            ),
            (
                r#"{"header_bytes":"410a42"}"#,
                "header_bytes: a header value cannot hold control bytes (only tab, 0x20-0x7e, 0x80-0xff)",
            ),
            (
                r#"{"reset":true,"status":200}"#,
                "reset sends its own 200 answer: it cannot be combined with status, \
                 retry_after_s, retry_after_bytes or garbage_body",
            ),
            (
                r#"{"reset":true,"garbage_body":true}"#,
                "reset sends its own 200 answer: it cannot be combined with status, \
                 retry_after_s, retry_after_bytes or garbage_body",
            ),
            (
                r#"{"status":204,"garbage_body":true}"#,
                "garbage_body needs a status that has a body (not 204, 205 or 304)",
            ),
        ] {
            assert_eq!(reason(json), format!("bad fault spec: {expected}"), "{json}");
        }
    }
}
