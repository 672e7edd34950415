//! What the collector received: the events (in memory and in a JSON-lines file, unless
//! counting only) and the counters tests and benchmarks assert on, such as duplicates from
//! retries.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::dedup::TransactionIds;
use crate::documents::Document;
use crate::faults::Target;

/// Query of `GET /_collector/events`: exact-match filters, then the last `limit` events.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    pub transaction_id: Option<String>,
    pub user_id: Option<String>,
    pub limit: Option<usize>,
}

/// Why an event POST was turned away, for the `rejected` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Any 4xx the request earned itself (401, 400, 413).
    Status(u16),
    /// An injected fault.
    Fault,
}

/// The accepted events and the counters about them.
#[derive(Debug)]
pub struct Store {
    /// `None` in count-only mode, where events are counted but never kept.
    recording: Option<Recording>,
    events: u64,
    transaction_ids: TransactionIds,
    batches: u64,
    rejected: BTreeMap<String, u64>,
    bytes_wire: u64,
    bytes_raw: u64,
    last_headers: BTreeMap<String, String>,
    config_fetches: u64,
    rules_fetches: u64,
    /// Answers an injected fault tampered with, by target: what a person watching the viewer
    /// needs to tell a plugin retrying on its own from one retrying because it was told to.
    faults_injected: BTreeMap<&'static str, u64>,
}

/// Where accepted events are kept.
#[derive(Debug)]
struct Recording {
    path: PathBuf,
    file: File,
    events: Vec<Value>,
}

impl Recording {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: OpenOptions::new().create(true).append(true).open(path)?,
            events: Vec::new(),
        })
    }
}

impl Store {
    /// Opens (creating, appending to) the events file, so a run never loses an earlier one's.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::new(Some(Recording::open(path)?)))
    }

    /// A store that only counts, for benchmarks: it keeps no events and writes no file.
    pub fn count_only() -> Self {
        Self::new(None)
    }

    fn new(recording: Option<Recording>) -> Self {
        Self {
            recording,
            events: 0,
            transaction_ids: TransactionIds::default(),
            batches: 0,
            rejected: BTreeMap::new(),
            bytes_wire: 0,
            bytes_raw: 0,
            last_headers: BTreeMap::new(),
            config_fetches: 0,
            rules_fetches: 0,
            faults_injected: [Target::Events, Target::Config, Target::Rules]
                .into_iter()
                .map(|target| (target.name(), 0))
                .collect(),
        }
    }

    /// Whether events are only counted, so callers can skip building them.
    pub fn is_count_only(&self) -> bool {
        self.recording.is_none()
    }

    /// Records one accepted request: its events go to the file first, so memory never holds
    /// what the file lacks.
    pub fn accept(
        &mut self,
        events: Vec<Value>,
        headers: BTreeMap<String, String>,
        bytes_wire: usize,
        bytes_raw: usize,
    ) -> io::Result<()> {
        if let Some(recording) = &mut self.recording {
            let mut lines = Vec::new();
            for event in &events {
                serde_json::to_writer(&mut lines, event)?;
                lines.push(b'\n');
            }
            recording.file.write_all(&lines)?;
        }
        let ids = events
            .iter()
            .map(|event| event.get("transaction_id").and_then(Value::as_str));
        self.count(ids, headers, bytes_wire, bytes_raw);
        if let Some(recording) = &mut self.recording {
            recording.events.extend(events);
        }
        Ok(())
    }

    /// Counts one accepted request from just its events' transaction ids, keeping nothing.
    pub fn count<'a>(
        &mut self,
        transaction_ids: impl IntoIterator<Item = Option<&'a str>>,
        headers: BTreeMap<String, String>,
        bytes_wire: usize,
        bytes_raw: usize,
    ) {
        for id in transaction_ids {
            self.events += 1;
            if let Some(id) = id {
                self.transaction_ids.record(id);
            }
        }
        self.batches += 1;
        self.bytes_wire += bytes_wire as u64;
        self.bytes_raw += bytes_raw as u64;
        self.last_headers = headers;
    }

    /// Counts a refused event POST.
    pub fn reject(&mut self, why: Rejection) {
        let key = match why {
            Rejection::Status(status) => status.to_string(),
            Rejection::Fault => "fault".to_owned(),
        };
        *self.rejected.entry(key).or_default() += 1;
    }

    /// Counts a `GET /v1/config` or `GET /v1/rules` (with an app id, faulted or not), so
    /// tests can see how often the plugin fetches, e.g. refetches on a tag change.
    pub fn count_fetch(&mut self, document: Document) {
        match document {
            Document::AppConfig => self.config_fetches += 1,
            Document::Rules => self.rules_fetches += 1,
        }
    }

    /// Counts one answer an injected fault of `target` tampered with (whether it replaced the
    /// answer or only changed it).
    pub fn count_fault(&mut self, target: Target) {
        *self.faults_injected.entry(target.name()).or_default() += 1;
    }

    /// Every stored event, oldest first: event number `n` (counted from 1, reset by
    /// [`Store::clear`]) is at index `n - 1`. Empty when counting only.
    pub fn recorded(&self) -> &[Value] {
        self.recording.as_ref().map_or(&[], |r| &r.events)
    }

    /// The stored events matching `filter`, oldest first; none when counting only.
    pub fn events(&self, filter: &EventFilter) -> Vec<&Value> {
        let Some(recording) = &self.recording else {
            return Vec::new();
        };
        let matches = |event: &&Value, field: &str, wanted: &Option<String>| {
            wanted
                .as_deref()
                .is_none_or(|wanted| event.get(field).and_then(Value::as_str) == Some(wanted))
        };
        let found: Vec<&Value> = recording
            .events
            .iter()
            .filter(|e| matches(e, "transaction_id", &filter.transaction_id))
            .filter(|e| matches(e, "user_id", &filter.user_id))
            .collect();
        let skip = filter
            .limit
            .map_or(0, |limit| found.len().saturating_sub(limit));
        found.into_iter().skip(skip).collect()
    }

    /// The counters as served by `GET /_collector/stats`.
    pub fn stats(&self) -> Value {
        let mut rejected = self.rejected.clone();
        for key in ["401", "400", "fault"] {
            rejected.entry(key.to_owned()).or_default();
        }
        json!({
            "events": self.events,
            "unique_transaction_ids": self.transaction_ids.unique(),
            "duplicate_events": self.transaction_ids.duplicate_events(),
            "duplicate_transaction_ids": self.transaction_ids.listed_duplicates(),
            "batches": self.batches,
            "rejected": rejected,
            "bytes_wire": self.bytes_wire,
            "bytes_raw": self.bytes_raw,
            "last_headers": self.last_headers,
            "config_fetches": self.config_fetches,
            "rules_fetches": self.rules_fetches,
            "faults_injected": self.faults_injected,
            "count_only": self.is_count_only(),
        })
    }

    /// Forgets everything, including the events file's content, so test phases start clean.
    pub fn clear(&mut self) -> io::Result<()> {
        let recording = match &self.recording {
            Some(old) => {
                let fresh = Recording::open(&old.path)?;
                fresh.file.set_len(0)?;
                Some(fresh)
            }
            None => None,
        };
        *self = Self::new(recording);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::{EventFilter, Rejection, Store};
    use crate::documents::Document;
    use crate::faults::Target;

    fn event(tx: &str, user: &str) -> Value {
        json!({"transaction_id": tx, "user_id": user, "request": {}})
    }

    #[test]
    fn counts_duplicates_and_filters() -> std::io::Result<()> {
        let path =
            std::env::temp_dir().join(format!("collector-store-{}.jsonl", std::process::id()));
        let mut store = Store::open(&path)?;
        store.accept(
            vec![event("a", "u1"), event("b", "u2")],
            BTreeMap::new(),
            10,
            20,
        )?;
        store.accept(
            vec![event("a", "u1"), event("a", "u1")],
            BTreeMap::new(),
            5,
            7,
        )?;
        store.reject(Rejection::Status(413));
        store.count_fetch(Document::AppConfig);
        store.count_fetch(Document::Rules);
        store.count_fetch(Document::Rules);
        store.count_fault(Target::Config);
        let stats = store.stats();
        assert_eq!(
            stats["faults_injected"],
            json!({"events": 0, "config": 1, "rules": 0})
        );
        assert_eq!(stats["config_fetches"], 1);
        assert_eq!(stats["rules_fetches"], 2);
        assert_eq!(stats["events"], 4);
        assert_eq!(stats["unique_transaction_ids"], 2);
        assert_eq!(stats["duplicate_events"], 2);
        assert_eq!(stats["duplicate_transaction_ids"], json!(["a"]));
        assert_eq!(stats["bytes_wire"], 15);
        assert_eq!(stats["count_only"], false);
        assert_eq!(
            stats["rejected"],
            json!({"400": 0, "401": 0, "413": 1, "fault": 0})
        );
        let filter = EventFilter {
            user_id: Some("u1".to_owned()),
            limit: Some(2),
            ..EventFilter::default()
        };
        assert_eq!(store.events(&filter).len(), 2);
        let ids: Vec<&Value> = store
            .recorded()
            .iter()
            .map(|e| &e["transaction_id"])
            .collect();
        assert_eq!(ids, ["a", "b", "a", "a"]);
        assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 4);
        store.clear()?;
        assert!(store.recorded().is_empty());
        assert_eq!(store.stats()["faults_injected"]["config"], 0);
        assert_eq!(store.stats()["events"], 0);
        assert_eq!(store.stats()["rules_fetches"], 0);
        assert_eq!(std::fs::read_to_string(&path)?, "");
        std::fs::remove_file(&path)
    }

    #[test]
    fn count_only_counts_and_keeps_nothing() {
        let mut store = Store::count_only();
        store.count([Some("a"), None, Some("a")], BTreeMap::new(), 3, 9);
        let stats = store.stats();
        assert_eq!(stats["events"], 3);
        assert_eq!(stats["unique_transaction_ids"], 1);
        assert_eq!(stats["duplicate_events"], 1);
        assert_eq!(stats["bytes_raw"], 9);
        assert_eq!(stats["count_only"], true);
        assert!(store.events(&EventFilter::default()).is_empty());
        assert!(store.recorded().is_empty());
        assert!(store.clear().is_ok());
        assert_eq!(store.stats()["events"], 0);
        assert_eq!(store.stats()["count_only"], true);
    }
}
