//! Count-only body parsing: in benchmarks the collector shares the CPU with the proxy being
//! measured, so it reads only each event's `transaction_id`, borrowed from the body, and
//! skips everything else without building a JSON tree or checking fields.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// Reads the transaction ids of a body's events: a JSON array of objects for
/// `/v1/events/batch` (`batch`), one object for `/v1/events`.
///
/// An event whose `transaction_id` is missing or not a string yields `None`. Any other shape
/// of body is an error naming what was wrong and where.
pub fn skim_events(body: &[u8], batch: bool) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    let events = if batch {
        serde_json::from_slice::<Vec<Event<'_>>>(body)
    } else {
        serde_json::from_slice::<Event<'_>>(body).map(|event| vec![event])
    };
    match events {
        Ok(events) => Ok(events.into_iter().map(|Event(id)| id).collect()),
        Err(e) if !e.is_data() => Err(format!("body is not valid JSON: {e}")),
        Err(e) if batch => Err(format!("batch body must be a JSON array of events: {e}")),
        Err(e) => Err(format!("event body must be a JSON object: {e}")),
    }
}

/// One event, of which only the `transaction_id` is kept.
struct Event<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Not derived: a derived struct would also accept a JSON array.
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::TransactionId => {
                    id = match map.next_value()? {
                        Id::Text(text) => Some(text),
                        Id::Other(_) => None,
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Event(id))
    }
}

/// An event's keys, of which only one matters; telling them apart allocates nothing.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    TransactionId,
    #[serde(other)]
    Other,
}

/// A `transaction_id` value. One that is not a string is ignored, as full mode does.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Other(IgnoredAny),
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::skim_events;

    #[test]
    fn reads_ids_and_borrows_plain_ones() {
        let body = br#"[{"request":{"transaction_id":"inner"},"transaction_id":"a"},
            {"user_id":"u"},{"transaction_id":null},{"transaction_id":7},
            {"transaction_id":"b\"c"}]"#;
        let ids = skim_events(body, true).unwrap_or_default();
        assert_eq!(
            ids,
            [Some("a".into()), None, None, None, Some("b\"c".into())]
        );
        assert!(matches!(ids.first(), Some(Some(Cow::Borrowed("a")))));
        assert_eq!(
            skim_events(br#"{"transaction_id":"s"}"#, false),
            Ok(vec![Some("s".into())])
        );
    }

    #[test]
    fn rejects_what_is_not_an_array_of_objects() {
        let error = |body: &[u8], batch| skim_events(body, batch).err().unwrap_or_default();
        assert!(error(b"[1]", true).starts_with("batch body must be a JSON array of events"));
        assert!(error(br#"[["a"]]"#, true).contains("expected an event object"));
        assert!(error(br#"{"transaction_id":"a"}"#, true).starts_with("batch body"));
        assert!(error(b"[{}]", false).starts_with("event body must be a JSON object"));
        assert!(error(b"[{}", true).starts_with("body is not valid JSON"));
        assert!(error(b"[{}] x", true).starts_with("body is not valid JSON"));
    }
}
