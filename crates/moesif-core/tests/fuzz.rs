//! A small mutation fuzzer that runs on stable Rust, as an ordinary integration test: no
//! cargo-fuzz, no nightly, no new dependencies. See `fuzz/README.md`.
//!
//! Each target runs every file of its seed corpus (`fuzz/corpus/<target>/`), then
//! `MOESIF_FUZZ_CASES` (default 2000) inputs made by mutating the seeds, deterministically from
//! `MOESIF_FUZZ_SEED`. A failing input is printed as hex with the seed and written to
//! `target/fuzz-failures/<target>-<n>.bin`, ready to be copied into the corpus.
//!
//! Every target lives in its own function (`*_target`), taking the raw input bytes, so a target
//! can be retargeted (e.g. at a new queue block format) without touching the driver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use moesif_core::body::{json_text, write_base64_str};
use moesif_core::config::Config;
use moesif_core::forward::{open, Block, Forwarder, Unreadable, READS};
use moesif_core::headers::{client_ip, find, parse_ip, HeaderMap, CLIENT_IP_HEADERS};
use moesif_core::identity::{self, identify, IdentityRules};
use moesif_core::json;
use moesif_core::mask;
use moesif_core::pairs::{self, RawHeaders};
use moesif_core::record::{Record, RecordRef};
use moesif_core::retry::{classify, parse_retry_after, Backoff, Verdict};
use moesif_core::time::iso8601_ms;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

/// Mutated inputs per target when `MOESIF_FUZZ_CASES` is not set: the whole file stays well
/// under 30 s in a debug build on 2 cores.
const DEFAULT_CASES: usize = 2000;
/// RNG seed when `MOESIF_FUZZ_SEED` is not set: a fixed one, so CI runs are reproducible.
const DEFAULT_SEED: u64 = 0x6d6f_6573_6966;
/// Mutated inputs are cut to this size (the bombs in the corpus are run whole).
const MAX_LEN: usize = 128 * 1024;

fn cases() -> usize {
    match std::env::var("MOESIF_FUZZ_CASES") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MOESIF_FUZZ_CASES={v:?} is not a number")),
        Err(_) => DEFAULT_CASES,
    }
}

fn seed() -> u64 {
    match std::env::var("MOESIF_FUZZ_SEED") {
        Ok(v) => {
            let t = v.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => t.parse(),
            }
            .unwrap_or_else(|_| {
                panic!("MOESIF_FUZZ_SEED={v:?} is not a number (decimal or 0x hex)")
            })
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// `target/fuzz-failures`, wherever the target directory is.
fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("fuzz-failures"))
        .unwrap_or_else(|| PathBuf::from("target/fuzz-failures"))
}

/// The seed files of a target, by file name.
fn load_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `target`'s corpus, then the mutated cases. Panics (fails the test) on the first input
/// that makes `run` panic.
fn fuzz(target: &str, dict: &[&[u8]], run: fn(&[u8])) {
    truncate_panic_messages();
    let seed = seed();
    let corpus = load_corpus(target);
    for (name, input) in &corpus {
        let path = corpus_dir(target).join(name);
        check(
            target,
            &format!("corpus file {}", path.display()),
            seed,
            input,
            None,
            run,
        );
    }
    let seeds: Vec<&[u8]> = corpus.iter().map(|(_, b)| b.as_slice()).collect();
    let mut mutator = Mutator {
        rng: fastrand::Rng::with_seed(seed ^ fnv1a(target)),
        seeds: &seeds,
        dict,
    };
    for n in 0..cases() {
        let input = mutator.next_input();
        check(target, &format!("case {n}"), seed, &input, Some(n), run);
    }
}

fn check(target: &str, what: &str, seed: u64, input: &[u8], case: Option<usize>, run: fn(&[u8])) {
    let Err(payload) = catch_unwind(AssertUnwindSafe(|| run(input))) else {
        return;
    };
    let message = payload
        .downcast_ref::<String>()
        .map(|s| cut(s, 2000))
        .or_else(|| payload.downcast_ref::<&str>().map(|s| cut(s, 2000)))
        .unwrap_or("(non-string panic)");
    let saved = match case {
        Some(n) => {
            let dir = failures_dir();
            let path = dir.join(format!("{target}-{n}.bin"));
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
                Ok(()) => format!("written to {}", path.display()),
                Err(e) => format!("could not write {}: {e}", path.display()),
            }
        }
        None => "(a corpus file)".into(),
    };
    let shown = input.len().min(2048);
    let hex: String = input[..shown].iter().map(|b| format!("{b:02x}")).collect();
    let more = if shown < input.len() { "..." } else { "" };
    panic!(
        "fuzz target `{target}` failed on {what}: {message}\n\
         seed: MOESIF_FUZZ_SEED={seed:#x}\n\
         input ({len} bytes) {saved}\n\
         hex: {hex}{more}\n\
         rerun: MOESIF_FUZZ_SEED={seed:#x} MOESIF_FUZZ_CASES={cases} cargo test -p moesif-core --test fuzz {target}",
        len = input.len(),
        cases = case.map_or(0, |n| n + 1),
    );
}

/// At most `max` bytes of `s`, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Assertion messages can hold megabytes (a whole inflated body): print their head only.
fn truncate_panic_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            let thread = std::thread::current();
            let location = info.location().map(ToString::to_string).unwrap_or_default();
            let shown = cut(message, 10_000);
            let more = if shown.len() < message.len() {
                " [...]"
            } else {
                ""
            };
            let backtrace = std::backtrace::Backtrace::capture();
            let backtrace = match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
                _ => String::new(),
            };
            eprintln!(
                "thread '{}' panicked at {location}:\n{shown}{more}{backtrace}",
                thread.name().unwrap_or("?"),
            );
        }));
    });
}

/// Bytes that tend to break parsers: NUL, high bit, quotes, escapes, brackets, MessagePack
/// markers.
const INTERESTING: &[u8] = &[
    0x00, 0xff, 0x80, 0x7f, 0x01, 0x1f, 0x20, b'"', b'\\', b'[', b']', b'{', b'}', b',', b':',
    b'\n', b'\r', b'\t', b'0', b'-', b'e', b'u', b'.', 0xc0, 0xc1, 0xc4, 0xd9, 0xdc, 0xdd, 0x90,
    0x9f, 0xa0,
];

/// Width boundaries for multi-byte integers (lengths, counts).
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
];

struct Mutator<'a> {
    rng: fastrand::Rng,
    seeds: &'a [&'a [u8]],
    dict: &'a [&'a [u8]],
}

impl<'a> Mutator<'a> {
    fn next_input(&mut self) -> Vec<u8> {
        let mut data = self.seed().to_vec();
        let mut ops = 1;
        while ops < 8 && self.rng.bool() {
            ops += 1;
        }
        for _ in 0..ops {
            self.mutate(&mut data);
            data.truncate(MAX_LEN);
        }
        data
    }

    fn seed(&mut self) -> &'a [u8] {
        self.seeds[self.rng.usize(..self.seeds.len())]
    }

    fn pos(&mut self, data: &[u8]) -> usize {
        self.rng.usize(..=data.len())
    }

    /// A range `start..end` of `data`, at most `max` long; empty only if `data` is.
    fn range(&mut self, data: &[u8], max: usize) -> (usize, usize) {
        if data.is_empty() {
            return (0, 0);
        }
        let start = self.rng.usize(..data.len());
        let len = 1 + self.rng.usize(..max.min(data.len() - start));
        (start, start + len)
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        match self.rng.u8(..16) {
            // Flip one bit.
            0 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] ^= 1 << self.rng.u8(..8);
            }
            // Overwrite a byte with a random or an interesting one.
            1 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] = self.rng.u8(..);
            }
            2 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] = INTERESTING[self.rng.usize(..INTERESTING.len())];
            }
            // Insert random or interesting bytes.
            3 => {
                let at = self.pos(data);
                let n = 1 + self.rng.usize(..8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.u8(..)).collect();
                data.splice(at..at, bytes);
            }
            4 => {
                let at = self.pos(data);
                let n = 1 + self.rng.usize(..4);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| INTERESTING[self.rng.usize(..INTERESTING.len())])
                    .collect();
                data.splice(at..at, bytes);
            }
            // Insert or overwrite with a token of the target's dictionary.
            5 if !self.dict.is_empty() => {
                let token = self.dict[self.rng.usize(..self.dict.len())];
                let at = self.pos(data);
                if self.rng.bool() {
                    data.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(data.len());
                    data.splice(at..end, token.iter().copied());
                }
            }
            // Delete a range.
            6 => {
                let (start, end) = self.range(data, 64);
                data.drain(start..end);
            }
            // Truncate.
            7 => {
                let at = self.pos(data);
                data.truncate(at);
            }
            // Splice: this input's head, another seed's tail.
            8 => {
                let other = self.seed();
                let j = self.rng.usize(..=other.len());
                let tail = other[j..].to_vec();
                let at = self.pos(data);
                data.truncate(at);
                data.extend_from_slice(&tail);
            }
            // Repeat a chunk many times.
            9 if !data.is_empty() => {
                let (start, end) = self.range(data, 32);
                let chunk = data[start..end].to_vec();
                let most = if self.rng.u8(..8) == 0 { 4096 } else { 64 };
                let times = 2 + self.rng.usize(..most);
                let repeated = chunk.repeat(times);
                data.splice(start..start, repeated);
            }
            // Deep nesting, balanced or not.
            10 => {
                let (open, close): (&[u8], &[u8]) = match self.rng.u8(..3) {
                    0 => (b"[", b"]"),
                    1 => (b"{\"a\":", b"}"),
                    _ => (b"[{\"a\":", b"}]"),
                };
                let most = if self.rng.bool() { 200 } else { 5000 };
                let depth = 1 + self.rng.usize(..most);
                let at = self.pos(data);
                data.splice(at..at, open.repeat(depth));
                if self.rng.bool() {
                    let at = self.rng.usize(at + open.len() * depth..=data.len());
                    data.splice(at..at, close.repeat(depth));
                }
            }
            // Replace everything with random bytes.
            11 => {
                let n = self.rng.usize(..256);
                *data = (0..n).map(|_| self.rng.u8(..)).collect();
            }
            // Add or subtract a little.
            12 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                let delta = 1 + self.rng.u8(..35);
                data[i] = if self.rng.bool() {
                    data[i].wrapping_add(delta)
                } else {
                    data[i].wrapping_sub(delta)
                };
            }
            // Insert a chunk of another seed.
            13 => {
                let other = self.seed();
                let (start, end) = self.range(other, 256);
                let at = self.pos(data);
                data.splice(at..at, other[start..end].iter().copied());
            }
            // Copy a chunk of this input over another place of it.
            14 if !data.is_empty() => {
                let (start, end) = self.range(data, 64);
                let chunk = data[start..end].to_vec();
                let at = self.rng.usize(..data.len());
                let end = (at + chunk.len()).min(data.len());
                data.splice(at..end, chunk);
            }
            // Overwrite with a boundary integer, big-endian (MessagePack) or little-endian.
            _ => {
                let n = INTERESTING_INTS[self.rng.usize(..INTERESTING_INTS.len())];
                let width = [1, 2, 4, 8][self.rng.usize(..4)];
                let bytes = if self.rng.bool() {
                    n.to_be_bytes()[8 - width..].to_vec()
                } else {
                    n.to_le_bytes()[..width].to_vec()
                };
                let at = self.pos(data);
                let end = (at + width).min(data.len());
                data.splice(at..end, bytes);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target 1: plugin configuration
// ---------------------------------------------------------------------------------------------

/// The keys of the README's configuration table.
const CONFIG_KEYS: &[&str] = moesif_core::config::KNOWN_KEYS;

const CONFIG_DICT: &[&[u8]] = &[
    b"\"moesif_application_id\":",
    b"\"batch_max_size\":",
    b"\"batch_max_wait\":",
    b"\"max_body_size\":",
    b"\"max_in_flight\":",
    b"\"retry_backoff_initial_ms\":",
    b"\"retry_backoff_max_ms\":",
    b"\"user_id_header\":",
    b"\"upstream\":",
    b"\"debug\":",
    b"\"queue_vm_id\":",
    b"\"max_buffer_bytes\":",
    b"\"max_queue_bytes\":",
    b"0",
    b"-1",
    b"1e3",
    b"1.5",
    b"10000",
    b"10001",
    b"600001",
    b"18446744073709551615",
    b"18446744073709551616",
    b"null",
    b"true",
    b"\"\"",
    b"\" \"",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"{}",
    b"[]",
    b"\\\"",
];

fn config_target(bytes: &[u8]) {
    let direct = check_config(bytes);
    // The StringValue form: the same text delivered as a JSON string.
    if let Ok(text) = std::str::from_utf8(bytes) {
        let wrapped = serde_json::to_vec(text).unwrap();
        let via_string = check_config(&wrapped);
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            // A string inside a string is not unwrapped twice.
            Ok(serde_json::Value::String(_)) => {
                let e = via_string.unwrap_err();
                assert_eq!(
                    (e.key.as_str(), e.reason.as_str()),
                    ("(root)", "expected a JSON object")
                );
            }
            Ok(_) => match (&direct, &via_string) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.config, b.config);
                    assert_eq!(a.warnings, b.warnings);
                }
                (Err(a), Err(b)) if a.key == "(root)" => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.key, b.key),
                (a, b) => panic!("direct {a:?} but as a string {b:?}"),
            },
            Err(_) => {
                let e = via_string.unwrap_err();
                assert_eq!(e.key, "(root)");
                assert!(e.reason.starts_with("string is not valid JSON"), "{e}");
            }
        }
    }
}

/// Parses; checks that an error names a key (or says the JSON is invalid) and that an accepted
/// config is within every documented range.
fn check_config(
    bytes: &[u8],
) -> Result<moesif_core::config::Parsed, moesif_core::config::ConfigError> {
    let result = Config::parse(bytes);
    match &result {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.contains(&format!("`{}`", e.key)), "{shown}");
            if e.key == "(root)" {
                assert!(
                    e.reason.starts_with("not valid JSON")
                        || e.reason.starts_with("string is not valid JSON")
                        || e.reason == "expected a JSON object",
                    "{shown}"
                );
            } else {
                assert!(
                    CONFIG_KEYS.contains(&e.key.as_str()),
                    "error names no key: {shown}"
                );
            }
        }
        Ok(p) => {
            assert_config_in_range(&p.config);
            for w in &p.warnings {
                let key = w
                    .strip_prefix("unknown config key `")
                    .and_then(|w| w.strip_suffix("` ignored"))
                    .unwrap_or_else(|| panic!("odd warning {w:?}"));
                assert!(!CONFIG_KEYS.contains(&key), "{w}");
            }
        }
    }
    result
}

/// The README's configuration table, as assertions.
fn assert_config_in_range(c: &Config) {
    assert!(!c.moesif_application_id.trim().is_empty());
    assert!((1..=10_000).contains(&c.batch_max_size));
    assert!((1..=600_000).contains(&c.batch_max_wait));
    assert!((1..=600_000).contains(&c.connection_timeout));
    assert!(c.max_body_size <= 10_000_000);
    assert!((10_000..=1_000_000_000).contains(&c.max_buffer_bytes));
    assert!((1..=64).contains(&c.max_in_flight));
    assert!((100_000..=1_000_000_000).contains(&c.max_queue_bytes));
    assert!((1..=3_600_000).contains(&c.retry_backoff_initial_ms));
    assert!((c.retry_backoff_initial_ms..=3_600_000).contains(&c.retry_backoff_max_ms));
    for s in [&c.upstream, &c.base_uri, &c.queue_name] {
        assert!(!s.trim().is_empty());
    }
    for s in [&c.user_id_header, &c.company_id_header] {
        assert_ne!(s.as_deref().map(str::trim), Some(""));
    }
    // Masking never panics and hides all but 8 characters.
    let masked = c.masked_application_id();
    assert_eq!(
        masked.chars().count(),
        c.moesif_application_id.chars().count()
    );
    assert!(masked.chars().filter(|&ch| ch != '*').count() <= 8);
}

/// What kind of value a config key takes, and its range.
#[derive(Clone, Copy)]
enum Kind {
    RequiredText,
    OptionalText,
    OptionalAnyText,
    Flag,
    Int(u64, u64),
}

/// The kind of a scalar key; `None` for the keys that take lists, objects or enum names (their
/// own unit tests cover them), which this table test leaves out.
fn kind_of(key: &str) -> Option<Kind> {
    Some(match key {
        "moesif_application_id"
        | "upstream"
        | "base_uri"
        | "queue_name"
        | "authorization_header_name"
        | "authorization_user_id_field" => Kind::RequiredText,
        "user_id_header"
        | "company_id_header"
        | "authorization_company_id_field"
        | "session_token_header"
        | "api_version_header" => Kind::OptionalText,
        "queue_vm_id" => Kind::OptionalAnyText,
        "debug"
        | "mask_credentials"
        | "disable_capture_request_body"
        | "disable_capture_response_body" => Kind::Flag,
        "batch_max_size" => Kind::Int(1, 10_000),
        "batch_max_wait" | "connection_timeout" => Kind::Int(1, 600_000),
        "max_body_size" => Kind::Int(0, 10_000_000),
        "max_buffer_bytes" => Kind::Int(10_000, 1_000_000_000),
        "max_in_flight" => Kind::Int(1, 64),
        "max_queue_bytes" => Kind::Int(100_000, 1_000_000_000),
        "retry_backoff_initial_ms" | "retry_backoff_max_ms" => Kind::Int(1, 3_600_000),
        _ => return None,
    })
}

/// Structured config fuzzing: random keys set to boundary values of every JSON type. The
/// verdict must be exactly the README table's: accepted iff every value is valid, and an error
/// names one of the invalid keys.
#[test]
fn config_values_follow_the_documented_table() {
    use serde_json::{json, Value};
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("config_values"));
    let texts = [
        json!("a"),
        json!("eyJhcHAiOiIxMjM0NTY3ODkiLCJ2ZXIiOiIyLjAifQ"),
        json!(""),
        json!(" "),
        json!("\u{a0}\t"),
        json!("X-User-Id"),
        json!("é😀\"\\\u{0}"),
        json!("x".repeat(300)),
    ];
    let others = [
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1.0),
        json!(1e3),
        json!(u64::MAX),
        json!(1e300),
        json!([]),
        json!({}),
        json!(["a"]),
        json!({"a": 1}),
    ];
    let keys: Vec<&str> = CONFIG_KEYS
        .iter()
        .copied()
        .filter(|k| kind_of(k).is_some())
        .collect();
    for case in 0..cases() {
        let mut object = serde_json::Map::new();
        if rng.u8(..4) != 0 {
            // Usually a valid id, so that the other keys get checked.
            object.insert("moesif_application_id".into(), json!("app-id"));
        }
        for _ in 0..rng.usize(..6) {
            let key = keys[rng.usize(..keys.len())];
            let value = match (rng.u8(..3), kind_of(key)) {
                (0, _) => others[rng.usize(..others.len())].clone(),
                (_, Some(Kind::Int(lo, hi))) => {
                    let picks = [
                        lo.saturating_sub(1),
                        lo,
                        lo + 1,
                        hi - 1,
                        hi,
                        hi.saturating_add(1),
                        0,
                    ];
                    json!(picks[rng.usize(..picks.len())])
                }
                (_, Some(Kind::Flag)) => json!(rng.bool()),
                _ => texts[rng.usize(..texts.len())].clone(),
            };
            object.insert(key.into(), value);
        }
        if rng.u8(..8) == 0 {
            object.insert("sampel_rate".into(), json!(5));
        }
        let bad = invalid_keys(&object);
        let bytes = serde_json::to_vec(&Value::Object(object.clone())).unwrap();
        let what = String::from_utf8_lossy(&bytes).into_owned();
        match Config::parse(&bytes) {
            Ok(p) => {
                assert!(
                    bad.is_empty(),
                    "case {case}: {what} accepted, but {bad:?} are invalid"
                );
                assert_config_in_range(&p.config);
                let unknown = object
                    .keys()
                    .filter(|k| !CONFIG_KEYS.contains(&k.as_str()))
                    .count();
                assert_eq!(p.warnings.len(), unknown, "case {case}: {what}");
            }
            Err(e) => assert!(
                bad.contains(&e.key),
                "case {case}: {what} rejected for `{}` ({}), but the invalid keys are {bad:?}",
                e.key,
                e.reason
            ),
        }
    }
}

/// The keys whose values the README's table does not allow.
fn invalid_keys(object: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let mut bad = Vec::new();
    if !object.contains_key("moesif_application_id") {
        bad.push("moesif_application_id".to_string());
    }
    let initial = match object.get("retry_backoff_initial_ms") {
        Some(v) => v.as_u64(),
        None => Some(1000),
    };
    for (key, value) in object {
        let Some(kind) = kind_of(key) else {
            // Unknown keys are warnings, not errors.
            continue;
        };
        let ok = match (kind, value) {
            (Kind::RequiredText, Value::String(s)) | (Kind::OptionalText, Value::String(s)) => {
                !s.trim().is_empty()
            }
            (Kind::OptionalText | Kind::OptionalAnyText, Value::Null) => true,
            (Kind::OptionalAnyText, Value::String(_)) => true,
            (Kind::Flag, Value::Bool(_)) => true,
            (Kind::Int(lo, hi), Value::Number(n)) => n.as_u64().is_some_and(|n| {
                let lo = match key.as_str() {
                    "retry_backoff_max_ms" => initial.unwrap_or(lo).max(lo),
                    _ => lo,
                };
                (lo..=hi).contains(&n)
            }),
            _ => false,
        };
        if !ok {
            bad.push(key.clone());
        }
    }
    // With the default maximum (60 s), a larger initial delay makes the maximum invalid.
    if !object.contains_key("retry_backoff_max_ms") && initial.is_some_and(|i| i > 60_000) {
        bad.push("retry_backoff_max_ms".into());
    }
    bad
}

#[test]
fn fuzz_config() {
    fuzz("config", CONFIG_DICT, config_target);
}

// ---------------------------------------------------------------------------------------------
// Target 2: body presentation (content type, content encoding, inflate cap)
// ---------------------------------------------------------------------------------------------

/// `body.rs` `MAX_INFLATED`: "Decompressed bodies are bounded too". A body inflates to at most
/// this many bytes, or it is not inflated at all.
const MAX_INFLATED: usize = 1_000_000;

const BODY_DICT: &[&[u8]] = &[
    b"json",
    b"JSON",
    b"application/json",
    b"application/problem+json; charset=utf-8",
    b"text/plain",
    b"gzip",
    b"x-gzip",
    b"GZip ",
    b"deflate",
    b"identity",
    b"br",
    b"gzip, deflate",
    b"\n",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    b"\x78\x9c",
    b"\x78\x01",
    b"\x03\x00",
    b"\x00\x00\xff\xff",
    b"{\"a\":[1,2,{\"b\":null}]}",
    b"\xef\xbb\xbf",
    b"\xc2\xa0",
];

/// A body input is `content-type \n content-encoding \n body`; an empty header line is absent.
fn split_body_input(input: &[u8]) -> (Option<String>, Option<String>, &[u8]) {
    let mut parts = input.splitn(3, |&b| b == b'\n');
    let header = |line: Option<&[u8]>| {
        line.filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
    };
    let content_type = header(parts.next());
    let content_encoding = header(parts.next());
    (
        content_type,
        content_encoding,
        parts.next().unwrap_or_default(),
    )
}

/// What `json_text` is documented to do, written independently: JSON content type, then the
/// body undone from its gzip (every member) or deflate (zlib) encoding when the whole body is
/// such a stream and inflates to at most `MAX_INFLATED` bytes, else as received; trimmed text
/// that is [`json::serde_says_valid`]. Returns the text and whether it was inflated.
fn expected_json_text(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Option<(String, bool)> {
    if !content_type?.to_ascii_lowercase().contains("json") {
        return None;
    }
    let inflated = content_encoding.and_then(|ce| reference_inflate(body, ce));
    let was_inflated = inflated.is_some();
    let bytes = inflated.unwrap_or_else(|| body.to_vec());
    let text = std::str::from_utf8(&bytes).ok()?.trim();
    json::serde_says_valid(text).then(|| (text.to_owned(), was_inflated))
}

fn reference_inflate(body: &[u8], encoding: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = MAX_INFLATED as u64 + 1;
    match encoding.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => {
            // Member by member: each must be complete, and nothing else may follow.
            let mut rest = body;
            loop {
                let mut member = flate2::bufread::GzDecoder::new(rest);
                let room = limit - out.len() as u64;
                (&mut member).take(room).read_to_end(&mut out).ok()?;
                if out.len() > MAX_INFLATED {
                    return None;
                }
                rest = member.into_inner();
                if rest.is_empty() {
                    break;
                }
            }
        }
        "deflate" => {
            let mut stream = flate2::bufread::ZlibDecoder::new(body);
            (&mut stream).take(limit).read_to_end(&mut out).ok()?;
            if !stream.get_ref().is_empty() {
                return None;
            }
        }
        _ => return None,
    }
    (out.len() <= MAX_INFLATED).then_some(out)
}

fn body_target(input: &[u8]) {
    let (content_type, content_encoding, body) = split_body_input(input);
    let (ct, ce) = (content_type.as_deref(), content_encoding.as_deref());
    let got = json_text(body, ct, ce);
    if let Some(text) = &got {
        match text {
            Cow::Owned(t) => assert!(t.len() <= MAX_INFLATED, "inflated to {} bytes", t.len()),
            Cow::Borrowed(t) => assert!(t.len() <= body.len()),
        }
        assert_eq!(text.trim(), &**text);
        assert!(json::serde_says_valid(text), "{text}");
    }
    let expected = expected_json_text(body, ct, ce);
    assert_eq!(
        got.as_ref().map(|t| (&**t, matches!(t, Cow::Owned(_)))),
        expected
            .as_ref()
            .map(|(t, inflated)| (t.as_str(), *inflated)),
        "json_text(content-type {ct:?}, content-encoding {ce:?})"
    );
    // The same bytes as plain JSON, and without a JSON content type.
    let plain = json_text(body, Some("application/json"), None);
    assert_eq!(
        plain.is_some(),
        std::str::from_utf8(body).is_ok_and(|t| json::is_valid(t.trim().as_bytes()))
    );
    assert_eq!(json_text(body, Some("text/plain"), ce), None);
    assert_eq!(json_text(body, None, ce), None);
    // Bodies that are not JSON are shipped in base64.
    let mut out = b"x".to_vec();
    write_base64_str(&mut out, body);
    let literal: String = serde_json::from_slice(&out[1..]).unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(literal)
            .unwrap(),
        body
    );
}

#[test]
fn fuzz_body() {
    fuzz("body", BODY_DICT, body_target);
}

/// The bombs of the corpus, against the exact documented bound. Each would present a body of
/// 10 MB or more as JSON if inflating were unbounded.
#[test]
fn body_bombs_stay_within_the_documented_cap() {
    let corpus = load_corpus("body");
    let get = |name: &str| {
        corpus
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_else(|| panic!("corpus file body/{name} is missing"))
    };
    let present = |name: &str| {
        let (ct, ce, body) = split_body_input(get(name));
        json_text(body, ct.as_deref(), ce.as_deref()).map(|t| t.len())
    };
    for bomb in [
        "gen-bomb-json-10mb.bin",
        "gen-bomb-deflate-10mb.bin",
        "gen-bomb-members-12mb.bin",
        "gen-bomb-nested.bin",
        "gen-bomb-zeros-10mb.bin",
    ] {
        assert_eq!(present(bomb), None, "{bomb}");
    }
    // Exactly at the cap is inflated, one byte more is not: gzip, deflate, and gzip members.
    for (exact, over) in [
        ("gen-cap-gzip-exact.bin", "gen-cap-gzip-over.bin"),
        ("gen-cap-deflate-exact.bin", "gen-cap-deflate-over.bin"),
        ("gen-cap-members-exact.bin", "gen-cap-members-over.bin"),
    ] {
        assert_eq!(present(exact), Some(MAX_INFLATED), "{exact}");
        assert_eq!(present(over), None, "{over}");
    }
}

// ---------------------------------------------------------------------------------------------
// Target 3: JSON validation and escaping (json.rs)
// ---------------------------------------------------------------------------------------------

const JSON_DICT: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"\\u",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\udc00",
    b"\\/",
    b"1e400",
    b"-0",
    b"0.5e-3",
    b"12345678901234567890123",
    b"true",
    b"false",
    b"null",
    b",",
    b":",
    b"\"k\":",
    b"\xc2\xa0",
    b"\xe2\x80\xa8",
    b"\xef\xbb\xbf",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
];

/// Whether a batch with `body` where an event's request body goes (3 levels deep) parses.
fn batch_parses(body: &str) -> bool {
    let batch = format!(r#"[{{"request":{{"verb":"POST","body":{body}}}}},{{"request":{{}}}}]"#);
    serde_json::from_str::<serde_json::Value>(&batch).is_ok()
}

fn json_target(bytes: &[u8]) {
    let ours = json::is_valid(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let value = serde_json::from_str::<serde_json::Value>(text);
            if ours {
                // Accepted: serde_json's Value takes it, alone and embedded in a batch.
                assert!(
                    value.is_ok(),
                    "is_valid accepts, serde_json Value says {value:?}"
                );
                assert!(
                    batch_parses(text),
                    "is_valid accepts, but the batch does not parse"
                );
                assert!(serde_json::from_str::<&RawValue>(text).is_ok());
            } else if value.is_ok() {
                // Refused though Value takes it: only ever for the stricter nesting limit.
                let depth = json::nesting(text);
                assert!(
                    depth > json::MAX_DEPTH,
                    "is_valid refuses what serde_json Value takes, nested only {depth} deep"
                );
            }
            assert_eq!(ours, json::serde_says_valid(text));
            // As a body: trimmed, then the same verdict.
            let shown = json_text(bytes, Some("application/json"), None);
            assert_eq!(shown.is_some(), json::is_valid(text.trim().as_bytes()));
        }
        Err(_) => assert_eq!(json_text(bytes, Some("application/json"), None), None),
    }
    // Escaping: byte for byte what serde_json writes, and it reads back.
    let s = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    json::write_str(&mut out, &s);
    assert_eq!(out, serde_json::to_vec(&*s).unwrap());
    assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s);
    // A literal written in two pieces is the same literal.
    let mut cut = s.len() / 2;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut pieces = b"\"".to_vec();
    json::write_str_contents(&mut pieces, &s[..cut]);
    json::write_str_contents(&mut pieces, &s[cut..]);
    pieces.push(b'"');
    assert_eq!(pieces, out);
}

#[test]
fn fuzz_json() {
    fuzz("json", JSON_DICT, json_target);
}

// ---------------------------------------------------------------------------------------------
// Target 4: headers
// ---------------------------------------------------------------------------------------------

const HEADERS_DICT: &[&[u8]] = &[
    b"\n",
    b": ",
    b":method: ",
    b":path: ",
    b":status: ",
    b":authority: ",
    b":scheme: ",
    b":protocol: ",
    b"x-forwarded-for: ",
    b"X-Forwarded-For: ",
    b"forwarded: for=",
    b"x-real-ip: ",
    b"cf-connecting-ip: ",
    b"\"[2001:db8::1]:4711\"",
    b"[::1]:80",
    b"::ffff:192.0.2.1",
    b"fe80::1%eth0",
    b"[fe80::1%25eth0]:80",
    b"203.0.113.7",
    b"10.0.0.1:5555",
    b"unknown",
    b",",
    b";",
    b"=",
    b"\"",
    b"65535",
    b"65536",
    b"+200",
    b"\xc3\xa9",
    b"\xe2\x80\x8b",
];

/// A headers input: the first line is the peer address, each other line a header
/// `name: value` (no `: ` means an empty value). Bytes that are not UTF-8 are replaced, as the
/// plugin does.
fn split_headers_input(input: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let peer = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .map(|line| match line.split_once(": ") {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();
    (peer, headers)
}

fn headers_target(input: &[u8]) {
    let (peer, headers) = split_headers_input(input);
    check_headers(&peer, &headers);
}

fn check_headers(peer: &str, headers: &[(String, String)]) {
    // The raw map a filter keeps: the first of each pseudo-header, the regular headers in
    // order, whatever the bytes.
    let raw = RawHeaders::from_pairs(headers);
    let first = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for pseudo in [":method", ":scheme", ":authority", ":path", ":status"] {
        assert_eq!(raw.get(pseudo), first(pseudo));
    }
    let regular: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(raw.regular(), regular);
    assert_eq!(RawHeaders::from_host(raw.as_bytes().to_vec()), raw);

    // find: the first header of that name (any ASCII case), trimmed, if not empty.
    for (name, _) in headers.iter().take(8) {
        let expected = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        assert_eq!(find(headers, name), expected);
        assert_eq!(find(headers, &name.to_ascii_uppercase()), expected);
    }

    // The header map: lower-case names, repeats joined with ", ", first-seen order, exactly
    // serde_json's escaping.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        match merged.iter_mut().find(|(m, _)| *m == n) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(v);
            }
            None => merged.push((n, v.clone())),
        }
    }
    let mut expected = String::from("{");
    for (i, (n, v)) in merged.iter().enumerate() {
        if i > 0 {
            expected.push(',');
        }
        expected.push_str(&serde_json::to_string(n).unwrap());
        expected.push(':');
        expected.push_str(&serde_json::to_string(v).unwrap());
    }
    expected.push('}');
    assert_eq!(
        serde_json::to_string(&HeaderMap(headers)).unwrap(),
        expected
    );
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        serde_json::to_string(&HeaderMap(&borrowed)).unwrap(),
        expected
    );

    // Client IP: an IP, and when no forwarding header has one, the peer's.
    let ip = client_ip(headers, peer);
    if let Some(ip) = &ip {
        assert!(ip.parse::<IpAddr>().is_ok(), "{ip}");
    }
    if CLIENT_IP_HEADERS.iter().all(|h| find(headers, h).is_none()) {
        assert_eq!(ip, parse_ip(peer).map(|ip| ip.to_string()));
    }
    if ip.is_none() {
        assert_eq!(parse_ip(peer), None);
    }
    // parse_ip on every name and value: what it finds reads back as itself.
    for s in headers
        .iter()
        .flat_map(|(n, v)| [n.as_str(), v.as_str()])
        .take(16)
        .chain([peer])
    {
        if let Some(ip) = parse_ip(s) {
            assert_eq!(parse_ip(&ip.to_string()), Some(ip), "{s:?}");
        }
    }
}

#[test]
fn fuzz_headers() {
    fuzz("headers", HEADERS_DICT, headers_target);
}

/// Huge, many, empty and non-ASCII headers, beyond what the mutator makes.
#[test]
fn headers_of_any_size() {
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("headers_of_any_size"));
    let big = "x".repeat(1 << 20);
    let mut headers = vec![
        (String::new(), String::new()),
        (":status".to_string(), big.clone()),
        ("X-Forwarded-For".to_string(), format!("{big}, 203.0.113.9")),
        ("x-forwarded-for".to_string(), "198.51.100.1".to_string()),
        ("É".to_string(), "é😀\u{0}\"\\".to_string()),
        ("e\u{301}".to_string(), "\u{feff}\u{2028}".to_string()),
    ];
    for i in 0..500 {
        let name: String = (0..rng.usize(..12)).map(|_| rng.alphanumeric()).collect();
        headers.push((
            if i % 7 == 0 {
                name.to_uppercase()
            } else {
                name
            },
            i.to_string(),
        ));
    }
    check_headers(&big, &headers);
    assert_eq!(client_ip(&headers, "").as_deref(), Some("203.0.113.9"));
}

// ---------------------------------------------------------------------------------------------
// Target 5: record decoding
// ---------------------------------------------------------------------------------------------

const RECORD_DICT: &[&[u8]] = &[
    b"\x9f",
    b"\x93",
    b"\x92",
    b"\x90",
    b"\xc0",
    b"\xa5Empty",
    b"\x81\xa8Captured\xc4\x02{}",
    b"\x81\xa7Omitted\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xa0",
    b"\xd9\xff",
    b"\xda\xff\xff",
    b"\xdb\xff\xff\xff\xff",
    b"\xc4\xff",
    b"\xc5\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xdc\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xcd\xff\xff",
    b"\xce\x00\x01\x00\x00",
    b"\xc1",
];

/// Today's record API (a queue message is records back to back). Kept apart so that it can be
/// pointed at the block format.
fn record_target(bytes: &[u8]) {
    let results: Vec<_> = RecordRef::decode_all(bytes).collect();
    // Decoding stops at the first error.
    if let Some(i) = results.iter().position(Result::is_err) {
        assert_eq!(i + 1, results.len(), "decode_all went on after an error");
    }
    let owned: Vec<_> = Record::decode_all(bytes).collect();
    assert_eq!(owned.len(), results.len());
    match (Record::decode(bytes), results.first()) {
        (Ok(a), Some(Ok(b))) => assert_eq!(a, b.to_record()),
        (Err(_), Some(Err(_))) | (Err(_), None) => {}
        (a, b) => panic!("decode {a:?} but decode_all {b:?}"),
    }
    let mut reencoded = Vec::new();
    for (rec, owned) in results.iter().zip(&owned) {
        let (Ok(rec), Ok(owned)) = (rec, owned) else {
            break;
        };
        // Every decoded record encodes and decodes to itself, borrowed and owned alike.
        let record = rec.to_record();
        assert_eq!(&record, owned);
        assert_eq!(&record.view(), rec);
        let bytes = record.encode().unwrap();
        assert_eq!(RecordRef::decode(&bytes).unwrap(), *rec);
        record.encode_into(&mut reencoded).unwrap();
    }
    // The writer picks the smallest encodings, so a message that decoded whole never grows.
    if results.iter().all(Result::is_ok) {
        assert!(reencoded.len() <= bytes.len());
        let again: Vec<_> = RecordRef::decode_all(&reencoded)
            .map(Result::unwrap)
            .collect();
        let first: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(again, first);
    }
}

#[test]
fn fuzz_record() {
    fuzz("record", RECORD_DICT, record_target);
}

// ---------------------------------------------------------------------------------------------
// Target 6: queue blocks (forward.rs)
// ---------------------------------------------------------------------------------------------

const BLOCK_DICT: &[&[u8]] = &[
    b"\xb7\x01",
    b"\xb7\x02",
    b"\xb7\xff",
    b"\x00\x00\x00\x00",
    b"\x01\x00\x00\x00",
    b"\x40\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x9f",
    b"\x90",
    b"\xc0",
    b"\xa0",
    b"\x81\xa8Captured\xc4\x02{}",
    b"\x81\xa7Omitted\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd9\xff",
    b"\xdb\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xc1",
];

/// Bytes of a block's header, `[MAGIC, format, count: u32 LE, policy_len: u32 LE]`
/// (forward.rs); the policy follows, then the records.
const BLOCK_HEADER: usize = 10;

/// The first byte of every block, as the forwarder writes it (the constant is private).
fn block_magic() -> u8 {
    let mut f = Forwarder::new(1 << 20, b"{}".to_vec());
    f.push(&Record::default()).unwrap();
    f.take().unwrap().bytes[0]
}

/// `records` through a forwarder, as a filter sends them: the blocks it closes, then the rest.
fn forward_all(records: &[Record], max_queue_bytes: usize) -> Vec<Block> {
    let mut f = Forwarder::new(max_queue_bytes, b"{}".to_vec());
    let mut blocks: Vec<Block> = records
        .iter()
        .filter_map(|rec| f.push(rec).unwrap())
        .collect();
    blocks.extend(f.take());
    assert_eq!((f.events(), f.bytes()), (0, 0));
    blocks
}

/// The records of blocks the forwarder wrote: each declares its count and holds exactly that
/// many records, all decoding.
fn unblock(blocks: &[Block]) -> Vec<Record> {
    let mut records = Vec::new();
    for block in blocks {
        let opened = open(&block.bytes).unwrap();
        assert_eq!(opened.declared, block.events as u64);
        let before = records.len();
        records.extend(opened.records().map(|r| r.unwrap().to_record()));
        assert_eq!(records.len() - before, block.events);
    }
    records
}

/// `forward::open` and `Opened::records` on any bytes (the queue is shared: another build or a
/// bug may write anything).
fn block_target(bytes: &[u8]) {
    let magic = block_magic();
    let header = (bytes.len() >= BLOCK_HEADER && bytes[0] == magic).then(|| {
        let declared = u32::from_le_bytes(bytes[2..6].try_into().unwrap());
        let policy_len = u32::from_le_bytes(bytes[6..BLOCK_HEADER].try_into().unwrap());
        (bytes[1], u64::from(declared), policy_len as usize)
    });
    let (opened, records_at) = match (open(bytes), header) {
        (Err(Unreadable::Garbled), None) => return,
        (Err(Unreadable::Format { format, declared }), Some((f, d, policy_len))) => {
            assert_eq!((format, declared), (f, d));
            // Either a format this build does not read, or a policy cut short.
            assert!(!READS.contains(&format) || BLOCK_HEADER + policy_len > bytes.len());
            return;
        }
        (Ok(opened), Some((format, declared, policy_len))) => {
            assert!(READS.contains(&format));
            assert_eq!(opened.declared, declared);
            assert_eq!(
                opened.policy,
                &bytes[BLOCK_HEADER..BLOCK_HEADER + policy_len]
            );
            (opened, BLOCK_HEADER + policy_len)
        }
        (opened, header) => panic!("open gave {opened:?} for the header {header:?}"),
    };
    let results: Vec<_> = opened.records().collect();
    assert!(results.len() as u64 <= opened.declared);
    // Reading stops at the first record that does not decode, and reads the records after the
    // header as a message of records back to back.
    if let Some(i) = results.iter().position(Result::is_err) {
        assert_eq!(i + 1, results.len(), "records() went on after an error");
    }
    let direct: Vec<_> = RecordRef::decode_all(&bytes[records_at..])
        .take(results.len())
        .collect();
    assert_eq!(direct.len(), results.len());
    for (a, b) in results.iter().zip(&direct) {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("records() {a:?} but decode_all {b:?}"),
        }
    }
    // Every record that decodes can be encoded again, to itself.
    let records: Vec<Record> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|rec| {
            let record = rec.to_record();
            let bytes = record.encode().unwrap();
            assert_eq!(RecordRef::decode(&bytes).unwrap(), *rec);
            record
        })
        .collect();
    // And they make valid blocks again, which decode to exactly them.
    assert_eq!(unblock(&forward_all(&records, 1_000_000)), records);
}

#[test]
fn fuzz_block() {
    fuzz("block", BLOCK_DICT, block_target);
}

/// Valid blocks of realistic records, as filters write them (64 records or 1/8 of the queue
/// at most, the rest at the end): every block decodes to exactly its records, in order.
#[test]
fn blocks_decode_to_exactly_their_records() {
    use moesif_core::body::Body;
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("blocks"));
    let samples = sample_records();
    let mut records = Vec::new();
    for i in 0..300 {
        let mut rec = samples[rng.usize(..samples.len())].clone();
        rec.start_ns = rng.i64(..);
        rec.path = format!("/items/{i}?q={}", "é".repeat(rng.usize(..40)));
        if rng.u8(..4) == 0 {
            rec.request_body = Body::Captured(vec![b'x'; rng.usize(..20_000)]);
        }
        records.push(rec);
    }
    for max_queue_bytes in [1, 100_000, 1_000_000, 16_000_000] {
        let blocks = forward_all(&records, max_queue_bytes);
        assert!(blocks.iter().all(|b| (1..=64).contains(&b.events)));
        assert_eq!(
            unblock(&blocks),
            records,
            "max_queue_bytes {max_queue_bytes}"
        );
        for block in &blocks {
            block_target(&block.bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target 7: the host's serialized header maps (pairs.rs)
// ---------------------------------------------------------------------------------------------

const PAIRS_DICT: &[&[u8]] = &[
    b"\x00\x00\x00\x00",
    b"\x01\x00\x00\x00",
    b"\x02\x00\x00\x00",
    b"\xff\xff\xff\x7f",
    b"\xff\xff\xff\xff",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98\x80",
    b":authority\x00",
    b"content-type\x00application/json\x00",
    b"\n",
    b":",
];

/// The whole pairs of a serialized map, as bytes: `count: u32`, `count` pairs of lengths
/// `(name: u32, value: u32)`, then each name and value followed by one byte (a NUL), all
/// little-endian. A pair is whole if its lengths and its name and value are there (the byte
/// after the last value may be missing); reading stops at the first pair that is not.
fn reference_pairs(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    let word = |at: u64| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b = bytes.get(at..at + 4)?;
        Some(u64::from(u32::from_le_bytes(b.try_into().unwrap())))
    };
    let mut out = Vec::new();
    let Some(count) = word(0) else {
        return out;
    };
    let mut at = 4 + 8 * count;
    let len = bytes.len() as u64;
    for i in 0..count {
        let (Some(name_len), Some(value_len)) = (word(4 + 8 * i), word(8 + 8 * i)) else {
            break;
        };
        let name_end = at + name_len;
        let value_start = name_end + 1;
        let value_end = value_start + value_len;
        if name_end > len || value_end > len {
            break;
        }
        out.push((
            &bytes[at as usize..name_end as usize],
            &bytes[value_start as usize..value_end as usize],
        ));
        at = value_end + 1;
    }
    out
}

fn lossy_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// `pairs::decode` on any bytes (what the host hands over is trusted by the SDK; not here).
fn pairs_target(bytes: &[u8]) {
    let got = pairs::decode(bytes);
    let declared = bytes
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
    assert!(got.len() as u64 <= u64::from(declared));
    // Each pair takes 8 bytes of lengths and at least 2 of data (its name's NUL and its
    // value's, the last of which may be cut off), after the 4-byte count: n pairs need
    // 10n + 3 bytes. So the input bounds the pairs, however many it declares...
    if !got.is_empty() {
        assert!(got.len() * 10 + 3 <= bytes.len(), "{} pairs", got.len());
    }
    // ...and the memory: a vector grown by pushing, or sized by what the input can hold, but
    // never by the declared count.
    let bound = bytes.len() / 10 + 1;
    assert!(
        got.capacity() <= 2 * bound.max(4),
        "capacity {} for {} bytes",
        got.capacity(),
        bytes.len()
    );
    // Exactly the whole pairs, names and values as they are if UTF-8, else lossily.
    let reference = reference_pairs(bytes);
    assert_eq!(got, lossy_pairs(&reference));
    for ((name, value), (raw_name, raw_value)) in got.iter().zip(&reference) {
        for (text, raw) in [(name, raw_name), (value, raw_value)] {
            match std::str::from_utf8(raw) {
                Ok(raw) => assert_eq!(text, raw),
                Err(_) => assert!(text.contains('\u{fffd}')),
            }
        }
    }
    // They encode as the host writes them and decode back.
    assert_eq!(pairs::decode(&pairs::encode(&reference)), got);
    // The input as pairs (`name:value` lines), which may hold any byte, NUL included.
    let own: Vec<(&[u8], &[u8])> = bytes
        .split(|&b| b == b'\n')
        .take(200)
        .map(|line| match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        })
        .collect();
    let encoded = pairs::encode(&own);
    assert_eq!(pairs::decode(&encoded), lossy_pairs(&own));
    // A map cut short yields the pairs that were whole.
    let cut = encoded.len() / 2;
    let short = pairs::decode(&encoded[..cut]);
    assert_eq!(short, lossy_pairs(&reference_pairs(&encoded[..cut])));
    assert!(short.len() <= own.len());
}

#[test]
fn fuzz_pairs() {
    fuzz("pairs", PAIRS_DICT, pairs_target);
}

// ---------------------------------------------------------------------------------------------
// Target 8: retry backoff, Retry-After and timestamps
// ---------------------------------------------------------------------------------------------

fn words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

/// The input as little-endian u64s: initial and maximum backoff, RNG seed, then one word per
/// failure (odd: a `Retry-After` of `word >> 1` ms; a multiple of 7: a success first). The
/// same words are statuses and timestamps; the bytes as text are a `Retry-After` value.
fn retry_time_target(bytes: &[u8]) {
    let w = words(bytes);
    let at = |i: usize| w.get(i).copied().unwrap_or(0);
    let (initial, max, seed) = (at(0), at(1), at(2));
    let mut backoff = Backoff::new(initial, max, seed);
    let floor = initial.max(1);
    let ceiling = max.max(floor);
    let mut failures = 0u32;
    for &word in w.iter().skip(3).take(100) {
        if word % 7 == 0 {
            backoff.on_success();
            failures = 0;
        }
        let retry_after = (word & 1 == 1).then_some(word >> 1);
        let delay = backoff.on_failure(retry_after);
        failures += 1;
        assert_eq!(backoff.failures(), failures);
        match retry_after {
            Some(ms) => assert_eq!(delay, ms.min(600_000)),
            None => {
                let exp = floor
                    .saturating_mul(1 << (failures - 1).min(32))
                    .min(ceiling);
                assert!(
                    exp - exp / 2 <= delay && delay <= exp,
                    "{delay} not in [{}, {exp}]",
                    exp - exp / 2
                );
            }
        }
    }
    for &word in &w {
        for status in [word as u16, (word >> 16) as u16] {
            let verdict = classify(Some(status));
            assert_eq!(verdict == Verdict::Accepted, (200..300).contains(&status));
        }
        let ns = word as i64;
        assert_eq!(iso8601_ms(ns), reference_iso8601_ms(ns), "{ns}");
    }
    let text = String::from_utf8_lossy(bytes);
    assert_eq!(
        parse_retry_after(&text),
        text.trim()
            .parse::<u64>()
            .ok()
            .map(|s| s.saturating_mul(1000))
    );
}

/// The timestamp computed the slow way: whole years, then whole months.
fn reference_iso8601_ms(ns: i64) -> String {
    let ms = ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let (mut days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let year_len = |y: i64| if leap(y) { 366 } else { 365 };
    let mut year = 1970;
    while days < 0 {
        year -= 1;
        days += year_len(year);
    }
    while days >= year_len(year) {
        days -= year_len(year);
        year += 1;
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        month + 1,
        days + 1,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

#[test]
fn fuzz_retry_time() {
    fuzz("retry_time", &[], retry_time_target);
}

// ---------------------------------------------------------------------------------------------
// Target 9: masking (mask.rs): query parameters, JSON body members, header names
// ---------------------------------------------------------------------------------------------

const MASK_DICT: &[&[u8]] = &[
    b"\n",
    b",",
    b"?",
    b"#",
    b"&",
    b";",
    b"=",
    b"+",
    b"%",
    b"%74",
    b"%zz",
    b"token",
    b"password",
    b"pass\\u0077ord",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\\"",
    b"\"password\":",
    b"\"token\" : ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b"null",
    b"-1.5e3",
    b"http://h/p?",
    b"\xc3\xa9",
];

/// A mask input: line 1 the names (comma-separated; query parameters, JSON members and header
/// names alike), line 2 a request path, the rest a JSON body. Lossy UTF-8.
fn split_mask_input(input: &[u8]) -> (Vec<String>, String, String) {
    let text = String::from_utf8_lossy(input);
    let mut parts = text.splitn(3, '\n');
    let names = parts
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let path = parts.next().unwrap_or_default().to_string();
    let body = parts.next().unwrap_or_default().to_string();
    (names, path, body)
}

fn mask_target(input: &[u8]) {
    let (names, path, body) = split_mask_input(input);
    let fixed: Vec<String> = ["password", "token", "a", "é", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for names in [&names, &fixed, &Vec::new()] {
        check_mask_headers(names, &path);
        check_mask_query(&path, names);
        check_mask_json(&body, names);
    }
}

/// `is_masked_header`: one of the masks, in any ASCII case.
fn check_mask_headers(masks: &[String], other: &str) {
    let candidates = masks
        .iter()
        .map(String::as_str)
        .chain(mask::CREDENTIAL_HEADERS.iter().copied())
        .chain([other, ""])
        .take(32);
    for name in candidates {
        for name in [name.to_string(), name.to_ascii_uppercase()] {
            let expected = masks.iter().any(|m| m.eq_ignore_ascii_case(&name));
            assert_eq!(mask::is_masked_header(&name, masks), expected, "{name:?}");
        }
    }
}

/// Percent-decodes `s` (a `%` without two hex digits is literal), `+` as a space or not.
fn reference_percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn reference_query_name_matches(name: &str, names: &[String]) -> bool {
    let a = reference_percent_decode(name, false);
    let b = reference_percent_decode(name, true);
    names.iter().any(|n| n.as_bytes() == a || n.as_bytes() == b)
}

/// What `mask::query` is documented to do, and how many parameters it masks.
fn reference_query(path: &str, names: &[String]) -> (String, usize) {
    let (before, fragment) = match path.find('#') {
        Some(i) => path.split_at(i),
        None => (path, ""),
    };
    let Some(q) = before.find('?') else {
        return (path.to_string(), 0);
    };
    let (head, query) = before.split_at(q + 1);
    let mut out = head.to_string();
    let mut masked = 0;
    let mut rest = query;
    loop {
        let (param, separator, next) = match rest.find(['&', ';']) {
            Some(i) => (&rest[..i], &rest[i..i + 1], Some(&rest[i + 1..])),
            None => (rest, "", None),
        };
        let name = param.split('=').next().unwrap_or_default();
        if !param.is_empty() && reference_query_name_matches(name, names) {
            out.push_str(name);
            out.push('=');
            out.push_str(mask::MASKED);
            masked += 1;
        } else {
            out.push_str(param);
        }
        out.push_str(separator);
        match next {
            Some(next) => rest = next,
            None => break,
        }
    }
    out.push_str(fragment);
    (out, masked)
}

fn check_mask_query(path: &str, names: &[String]) {
    let got = mask::query(path, names);
    let (expected, masked) = reference_query(path, names);
    assert_eq!(&*got, expected, "query({path:?}, {names:?})");
    assert_eq!(
        matches!(got, Cow::Borrowed(_)),
        masked == 0,
        "borrowed exactly when nothing is masked"
    );
    // Never a masked value in the output: every named parameter's value is the marker.
    if let Some(q) = got.split('#').next().and_then(|b| b.split_once('?')) {
        for param in q.1.split(['&', ';']).filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if reference_query_name_matches(name, names) {
                assert_eq!(value, mask::MASKED, "{param:?} in {got:?}");
            }
        }
    }
}

/// The reference masking over a parsed value, and whether any member was masked.
fn reference_mask_value(
    value: &serde_json::Value,
    fields: &[String],
    masked: &mut bool,
) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if fields.contains(k) {
                        *masked = true;
                        Value::String(mask::MASKED.into())
                    } else {
                        reference_mask_value(v, fields, masked)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| reference_mask_value(v, fields, masked))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn check_mask_json(body: &str, fields: &[String]) {
    // Appends to what `out` holds.
    let mut out = b"prefix".to_vec();
    mask::json_body(body, fields, &mut out);
    assert!(out.starts_with(b"prefix"));
    let out = &out[b"prefix".len()..];
    if fields.is_empty() {
        assert_eq!(out, body.as_bytes());
    }
    let Ok(input) = serde_json::from_str::<serde_json::Value>(body) else {
        return;
    };
    let text = std::str::from_utf8(out).expect("output is UTF-8");
    let output: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("masked output does not parse ({e}): {text}"));
    let mut masked = false;
    let expected = reference_mask_value(&input, fields, &mut masked);
    assert_eq!(output, expected, "fields {fields:?}: {text}");
    if !masked {
        assert_eq!(text, body, "nothing to mask, but the bytes changed");
    }
    if json::is_valid(body.as_bytes()) {
        assert!(json::is_valid(out), "{text}");
    }
}

#[test]
fn fuzz_mask() {
    fuzz("mask", MASK_DICT, mask_target);
}

// ---------------------------------------------------------------------------------------------
// Target 10: identity (identity.rs): explicit headers, JWT claims, Basic credentials
// ---------------------------------------------------------------------------------------------

const IDENTITY_DICT: &[&[u8]] = &[
    b"\n",
    b"|",
    b",",
    b".",
    b": ",
    b"authorization: ",
    b"Authorization: Bearer ",
    b"bearer  ",
    b"Basic ",
    b"x-user-id: ",
    b"x-company-id: ",
    b"=",
    b"==",
    b"+",
    b"/",
    b"-",
    b"_",
    b"eyJ",
    b"eyJzdWIiOiJ1In0",
    b"eyJzdWIiOjF9",
    b"e30",
    b"YTpi",
    b"sub",
    b"user.id",
    b"\t",
    b"\xc3\xa9",
];

/// An identity input: line 1 the rules, `|`-separated: user id header, company id header,
/// authorization header names (comma-separated), user id claim, company id claim. A part left
/// out takes the default, an empty header part is none. The other lines are `name: value`
/// headers, as in the headers target.
fn split_identity_input(input: &[u8]) -> (IdentityRules, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(input);
    let (rules_line, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut parts = rules_line.split('|');
    let optional = |p: Option<&str>| p.filter(|p| !p.is_empty()).map(str::to_string);
    let defaults = IdentityRules::default();
    let rules = IdentityRules {
        user_id_header: optional(parts.next()),
        company_id_header: optional(parts.next()),
        authorization_header_names: match parts.next() {
            Some(names) => names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
            None => defaults.authorization_header_names,
        },
        authorization_user_id_field: parts
            .next()
            .map_or(defaults.authorization_user_id_field, str::to_string),
        authorization_company_id_field: optional(parts.next()),
    };
    let headers = rest
        .split('\n')
        .map(|line| match line.split_once(": ") {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();
    (rules, headers)
}

fn identity_target(input: &[u8]) {
    let (rules, headers) = split_identity_input(input);
    check_identity(&headers, &rules);
    check_identity(&headers, &IdentityRules::default());
}

/// Base64 as documented: one alphabet (standard or URL-safe), with or without padding (a
/// partial one too, as the `base64` crate's `Indifferent` mode takes it), the bits after the
/// last whole byte ignored.
fn reference_base64(s: &str) -> Option<Vec<u8>> {
    if s.contains(['+', '/']) && s.contains(['-', '_']) {
        return None;
    }
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    if body.len() % 4 == 1 || pad > (4 - body.len() % 4) % 4 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

/// What a claim path gives, as a JSON value (a non-empty string or a number), from the parsed
/// payload.
fn reference_claim(
    payload: &serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    let value = match payload.get(path) {
        Some(v) => v,
        None => {
            let mut names = path.split('.');
            let mut v = payload.get(names.next()?)?;
            for name in names {
                v = v.as_object()?.get(name)?;
            }
            v
        }
    };
    match value {
        Value::String(s) if !s.is_empty() => Some(value.clone()),
        Value::Number(_) => Some(value.clone()),
        _ => None,
    }
}

/// `identify` as documented, with claims as JSON values (a number's text is compared by value).
/// `None` when the reference cannot tell: a payload that is valid JSON but more than
/// serde_json's `Value` takes (nested over 128 levels, a number beyond f64).
fn reference_identity(
    headers: &[(String, String)],
    rules: &IdentityRules,
) -> Option<(Option<serde_json::Value>, Option<serde_json::Value>)> {
    use serde_json::Value;
    let explicit = |name: &Option<String>| {
        let name = name.as_ref()?;
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
            .map(|v| Value::String(v.to_string()))
    };
    let user = explicit(&rules.user_id_header);
    let company = explicit(&rules.company_id_header);
    // The token: the first name with a non-empty value; one over the bound counts as present
    // (it is not scanned to see whether it is blank), and gives nothing.
    let token = rules.authorization_header_names.iter().find_map(|name| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .find(|v| v.len() > identity::MAX_TOKEN_LEN || !v.trim().is_empty())
    });
    let Some(token) = token.filter(|t| t.len() <= identity::MAX_TOKEN_LEN) else {
        return Some((user, company));
    };
    let token = token.trim();
    let scheme = |name: &str| -> Option<&str> {
        let head = token.get(..name.len())?;
        let rest = token.get(name.len()..)?;
        (head.to_ascii_lowercase() == name && rest.starts_with([' ', '\t']))
            .then(|| rest.trim_start_matches([' ', '\t']))
    };
    let (token_user, token_company) = if let Some(credentials) = scheme("basic") {
        let user = reference_base64(credentials).and_then(|d| {
            let colon = d.iter().position(|&b| b == b':')?;
            (colon > 0).then(|| Value::String(String::from_utf8_lossy(&d[..colon]).into_owned()))
        });
        (user, None)
    } else {
        let jwt = scheme("bearer").unwrap_or(token);
        let segments: Vec<&str> = jwt.split('.').collect();
        let b64 = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b))
        };
        let payload = match segments[..] {
            [h, p, s] if !h.is_empty() && !p.is_empty() && b64(h) && b64(p) && b64(s) => {
                reference_base64(p)
            }
            _ => None,
        };
        match payload.map(|p| serde_json::from_slice::<Value>(&p)) {
            Some(Ok(Value::Object(claims))) => (
                reference_claim(&claims, &rules.authorization_user_id_field),
                rules
                    .authorization_company_id_field
                    .as_deref()
                    .and_then(|f| reference_claim(&claims, f)),
            ),
            // Valid JSON that `Value` cannot hold: `identify` skips over such parts unparsed.
            Some(Err(e))
                if e.to_string().contains("recursion limit")
                    || e.to_string().contains("number out of range") =>
            {
                return None
            }
            _ => (None, None),
        }
    };
    Some((user.or(token_user), company.or(token_company)))
}

fn check_identity(headers: &[(String, String)], rules: &IdentityRules) {
    let got = identify(headers, rules);
    // Borrowed headers give the same.
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(identify(&borrowed, rules), got);
    for id in [&got.user_id, &got.company_id].into_iter().flatten() {
        assert!(!id.is_empty());
    }
    let Some((user, company)) = reference_identity(headers, rules) else {
        return;
    };
    // A string is that string; a number is JSON text of the same number.
    let same = |got: &Option<String>, expected: &Option<serde_json::Value>| match (got, expected) {
        (None, None) => true,
        (Some(g), Some(serde_json::Value::String(e))) => g == e,
        (Some(g), Some(n @ serde_json::Value::Number(_))) => {
            serde_json::from_str::<serde_json::Value>(g).ok().as_ref() == Some(n)
        }
        _ => false,
    };
    assert!(
        same(&got.user_id, &user) && same(&got.company_id, &company),
        "identify gave {got:?}, the reference {user:?} / {company:?} ({rules:?})"
    );
}

#[test]
fn fuzz_identity() {
    fuzz("identity", IDENTITY_DICT, identity_target);
}

/// Tokens the mutator seldom makes: well-formed JWTs with random claims, in every alphabet and
/// padding, behind schemes in random case and spacing, and tokens around the size bound.
#[test]
fn identity_of_generated_tokens() {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    use serde_json::{json, Value};
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("identity_of_generated_tokens"));
    let values = [
        json!("user-1"),
        json!(""),
        json!(" spaced "),
        json!("é😀\"\\"),
        json!(42),
        json!(-7),
        json!(1.5),
        json!(u64::MAX),
        json!(true),
        Value::Null,
        json!([1, "a"]),
        json!({"id": "inner", "org": {"id": 9}}),
    ];
    let fields = [
        "sub",
        "uid",
        "user.id",
        "user.org.id",
        "a.b",
        "https://x.io/id",
        "",
    ];
    for case in 0..cases() {
        let mut claims = serde_json::Map::new();
        for _ in 0..rng.usize(..6) {
            let key = fields[rng.usize(..fields.len())];
            claims.insert(key.into(), values[rng.usize(..values.len())].clone());
        }
        if rng.bool() {
            claims.insert("user".into(), values[rng.usize(..values.len())].clone());
        }
        if rng.u8(..8) == 0 {
            claims.insert("pad".into(), json!("x".repeat(rng.usize(..20_000))));
        }
        let payload = serde_json::to_vec(&Value::Object(claims)).unwrap();
        let engine = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD][rng.usize(..4)];
        let jwt = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            engine.encode(&payload),
            ["", "c2ln", "abc-_"][rng.usize(..3)]
        );
        let spaces = " \t".repeat(rng.usize(..3)) + " ";
        let scheme: String = "bearer"
            .chars()
            .map(|c| {
                if rng.bool() {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let value = match rng.u8(..4) {
            0 => jwt.clone(),
            1 => format!(" {jwt} "),
            2 => format!("Basic {}", STANDARD.encode(format!("{case}:{jwt}"))),
            _ => format!("{scheme}{spaces}{jwt}"),
        };
        let mut headers = vec![
            ("x-other".to_string(), "1".to_string()),
            (
                ["authorization", "x-token"][rng.usize(..2)].to_string(),
                value,
            ),
        ];
        if rng.u8(..4) == 0 {
            headers.push((
                "x-user-id".into(),
                ["", " u ", "hdr"][rng.usize(..3)].into(),
            ));
        }
        let rules = IdentityRules {
            user_id_header: rng.bool().then(|| "X-User-Id".to_string()),
            company_id_header: None,
            authorization_header_names: match rng.u8(..3) {
                0 => vec!["authorization".into()],
                1 => vec!["x-token".into(), "Authorization".into()],
                _ => vec![],
            },
            authorization_user_id_field: fields[rng.usize(..fields.len())].into(),
            authorization_company_id_field: rng
                .bool()
                .then(|| fields[rng.usize(..fields.len())].into()),
        };
        check_identity(&headers, &rules);
    }
    // Around the bound, and far over it.
    let claims = |pad: usize| format!(r#"{{"sub":"u","pad":"{}"}}"#, "x".repeat(pad));
    let rules = IdentityRules::default();
    for pad in (12_200..12_300).chain([3 << 20]) {
        let jwt = format!("e30.{}.", URL_SAFE_NO_PAD.encode(claims(pad)));
        for value in [jwt.clone(), format!("Bearer {jwt}")] {
            let got = identify(&[("authorization", value.as_str())], &rules).user_id;
            assert_eq!(
                got.is_some(),
                value.len() <= identity::MAX_TOKEN_LEN,
                "{}",
                value.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target 11: Moesif's app config (app_config.rs): parsing and the sampling decision
// ---------------------------------------------------------------------------------------------

const APP_CONFIG_DICT: &[&[u8]] = &[
    b"\"regex_config\":",
    b"\"conditions\":",
    b"\"path\":",
    b"\"value\":",
    b"\"sample_rate\":",
    b"\"user_sample_rate\":",
    b"\"company_sample_rate\":",
    b"\"user_rules\":",
    b"\"company_rules\":",
    b"\"request.verb\"",
    b"\"request.route\"",
    b"\"request.ip_address\"",
    b"\"response.status\"",
    b"\"request.headers.x\"",
    b"\"^/health\"",
    b"\"GET|POST\"",
    b"\"^5\\\\d\\\\d$\"",
    b"\"(unclosed\"",
    b"\"x*\"",
    b"\"\"",
    b"\"a{1000}{1000}\"",
    b"\"[\"",
    b"\"u1\"",
    b"\"c1\"",
    b"{\"conditions\":[{\"path\":\"response.status\",\"value\":\"^5\"}],\"sample_rate\":100}",
    b"{\"conditions\":[{\"path\":\"request.route\",\"value\":\"/\"}],\"sample_rate\":0}",
    b"0",
    b"-1",
    b"100",
    b"101",
    b"12.5",
    b"0.2",
    b"1e300",
    b"-1e300",
    b"18446744073709551616",
    b"\"50\"",
    b"null",
    b"true",
    b"[]",
    b"{}",
];

/// Statuses the consistency check tries at log time (0: no response).
const APP_STATUSES: &[u16] = &[0, 100, 200, 204, 301, 404, 429, 500, 503, 599, 999, 65535];

/// A rate as the module documents it: rounded half away from zero, a positive rate never to 0,
/// clamped to 0..=100.
fn reference_rate(n: &serde_json::Number) -> u8 {
    let f = n.as_f64().unwrap();
    let rounded = f.round().clamp(0.0, 100.0) as u8;
    if rounded == 0 && f > 0.0 {
        1
    } else {
        rounded
    }
}

fn reference_short(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}...", s.chars().take(64).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Every value of the wrong JSON type, by the key an error names.
fn reference_type_errors(root: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let Value::Object(root) = root else {
        return vec!["(root)".into()];
    };
    let mut errors = Vec::new();
    let mut check = |ok: bool, key: String| {
        if !ok {
            errors.push(key);
        }
    };
    let number_or_null = |v: &Value| matches!(v, Value::Null | Value::Number(_));
    let string_or_null = |v: &Value| matches!(v, Value::Null | Value::String(_));
    if let Some(v) = root.get("sample_rate") {
        check(number_or_null(v), "sample_rate".into());
    }
    for key in ["user_sample_rate", "company_sample_rate"] {
        match root.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (id, v) in m {
                    check(number_or_null(v), format!("{key}.{}", reference_short(id)));
                }
            }
            Some(_) => check(false, key.into()),
        }
    }
    for key in ["user_rules", "company_rules"] {
        if let Some(v) = root.get(key) {
            check(matches!(v, Value::Null | Value::Object(_)), key.into());
        }
    }
    match root.get("regex_config") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                let Value::Object(entry) = entry else {
                    check(false, format!("regex_config[{i}]"));
                    continue;
                };
                if let Some(v) = entry.get("sample_rate") {
                    check(number_or_null(v), format!("regex_config[{i}].sample_rate"));
                }
                match entry.get("conditions") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(conds)) => {
                        for (j, cond) in conds.iter().enumerate() {
                            let key = format!("regex_config[{i}].conditions[{j}]");
                            let Value::Object(cond) = cond else {
                                check(false, key);
                                continue;
                            };
                            for field in ["path", "value"] {
                                if let Some(v) = cond.get(field) {
                                    check(string_or_null(v), format!("{key}.{field}"));
                                }
                            }
                        }
                    }
                    Some(_) => check(false, format!("regex_config[{i}].conditions")),
                }
            }
        }
        Some(_) => check(false, "regex_config".into()),
    }
    errors
}

/// The facts of one call.
#[derive(Debug, Clone)]
struct CallFacts {
    verb: String,
    route: String,
    ip: Option<String>,
    user: Option<String>,
    company: Option<String>,
}

/// The rate at log time computed the way moesifapi-python does (`RegexConfigHelper`): a mapping
/// of the call's truthy facts, then the first entry whose every condition's `re.search` gives a
/// non-empty match, then the user's rate, the company's, `sample_rate`; over the raw JSON of a
/// document that parsed.
fn reference_rate_at_log(
    root: &serde_json::Map<String, serde_json::Value>,
    regexes: &mut std::collections::HashMap<String, Option<regex_lite::Regex>>,
    call: &CallFacts,
    status: u16,
) -> u8 {
    use serde_json::Value;
    let mut mapping: std::collections::HashMap<&str, String> = Default::default();
    if !call.verb.is_empty() {
        mapping.insert("request.verb", call.verb.clone());
    }
    let route = call.route.split('?').next().unwrap();
    mapping.insert(
        "request.route",
        if route.is_empty() { "/" } else { route }.to_string(),
    );
    if let Some(ip) = call.ip.as_deref().filter(|ip| !ip.is_empty()) {
        mapping.insert("request.ip_address", ip.to_string());
    }
    if status != 0 {
        mapping.insert("response.status", status.to_string());
    }
    if let Some(Value::Array(entries)) = root.get("regex_config") {
        for entry in entries {
            let rate = match entry.get("sample_rate") {
                Some(Value::Number(n)) => reference_rate(n),
                _ => continue,
            };
            let Some(Value::Array(conds)) = entry.get("conditions") else {
                continue;
            };
            if conds.is_empty() {
                continue;
            }
            // An entry with a condition that can never match is out, whatever the others do.
            let mut compiled = Vec::new();
            for cond in conds {
                let (Some(Value::String(path)), Some(Value::String(value))) =
                    (cond.get("path"), cond.get("value"))
                else {
                    break;
                };
                if ![
                    "request.verb",
                    "request.route",
                    "request.ip_address",
                    "response.status",
                ]
                .contains(&path.as_str())
                {
                    break;
                }
                let regex = regexes.entry(value.clone()).or_insert_with(|| {
                    regex_lite::RegexBuilder::new(value)
                        .size_limit(moesif_core::app_config::MAX_REGEX_SIZE)
                        .build()
                        .ok()
                });
                let Some(regex) = regex.clone() else {
                    break;
                };
                compiled.push((path.as_str(), regex));
            }
            if compiled.len() != conds.len() {
                continue;
            }
            let matched = compiled.iter().all(|(path, regex)| {
                mapping
                    .get(path)
                    .is_some_and(|text| regex.find(text).is_some_and(|m| m.start() != m.end()))
            });
            if matched {
                return rate;
            }
        }
    }
    let lookup = |key: &str, id: &Option<String>| match (root.get(key), id.as_deref()) {
        (Some(Value::Object(m)), Some(id)) if !id.is_empty() => match m.get(id) {
            Some(Value::Number(n)) => Some(reference_rate(n)),
            _ => None,
        },
        _ => None,
    };
    lookup("user_sample_rate", &call.user)
        .or_else(|| lookup("company_sample_rate", &call.company))
        .or_else(|| match root.get("sample_rate") {
            Some(Value::Number(n)) => Some(reference_rate(n)),
            _ => None,
        })
        .unwrap_or(100)
}

/// The parse verdict equals the reference's (an error names a value of the wrong type), and a
/// parsed document's decisions equal the reference's, are 0..=100, and are consistent: a rate
/// known at request headers is the rate at log time whatever the status.
fn app_config_target(bytes: &[u8]) {
    use moesif_core::app_config::{keep, weight, AppConfig, Rate};
    use serde_json::Value;
    let parsed = AppConfig::parse(bytes);
    let Ok(root) = serde_json::from_slice::<Value>(bytes) else {
        let e = parsed.unwrap_err();
        assert!(e.starts_with("not valid JSON: "), "{e}");
        return;
    };
    let type_errors = reference_type_errors(&root);
    let config = match parsed {
        Err(e) => {
            let key = e
                .rsplit_once(": expected ")
                .map(|(key, _)| key)
                .unwrap_or_else(|| panic!("odd error {e:?}"));
            assert!(
                type_errors.iter().any(|k| k == key),
                "{e:?} names no wrong value (the reference found {type_errors:?})"
            );
            return;
        }
        Ok(config) => {
            assert!(type_errors.is_empty(), "accepted, but {type_errors:?}");
            config
        }
    };
    let root = root.as_object().unwrap();
    assert!(config.sample_rate <= 100);
    for rate in config
        .user_sample_rate
        .values()
        .chain(config.company_sample_rate.values())
        .chain(config.regex_rules().iter().map(|r| &r.sample_rate))
    {
        assert!(*rate <= 100);
    }
    for why in config.ignored() {
        assert!(why.starts_with("regex_config["), "{why}");
    }
    let entries = match root.get("regex_config") {
        Some(Value::Array(entries)) => entries.as_slice(),
        _ => &[],
    };
    assert!(config.regex_rules().len() + config.ignored().len() == entries.len());
    let has_status_condition = entries.iter().any(|e| {
        e["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["path"] == "response.status"))
    });

    // Facts: fixed ones, the ids the document names and the text of its patterns (a literal
    // pattern matches itself).
    let mut texts: Vec<String> = ["GET", "POST", "", "get", "/", "/health", "/api/v1/users/42"]
        .iter()
        .chain(&["/items?page=2", "10.0.0.1", "203.0.113.7", "::1", "/ümlaut"])
        .map(|s| s.to_string())
        .collect();
    for e in entries.iter().take(8) {
        for c in e["conditions"].as_array().into_iter().flatten().take(4) {
            if let Some(v) = c["value"].as_str() {
                texts.push(cut(v, 200).to_string());
            }
        }
    }
    let ids = |key: &str| -> Vec<Option<String>> {
        let mut ids = vec![None, Some(String::new()), Some("u1".into())];
        if let Some(Value::Object(m)) = root.get(key) {
            ids.extend(m.keys().take(3).map(|k| Some(k.clone())));
        }
        ids
    };
    let (users, companies) = (ids("user_sample_rate"), ids("company_sample_rate"));
    let mut rng = fastrand::Rng::with_seed(fnv1a(&String::from_utf8_lossy(bytes)));
    let mut pick = |v: &[String]| v[rng.usize(..v.len())].clone();
    let calls: Vec<CallFacts> = (0..(2000 / (1 + entries.len())).clamp(3, 24))
        .map(|_| CallFacts {
            verb: pick(&texts),
            route: pick(&texts),
            ip: Some(pick(&texts)),
            user: None,
            company: None,
        })
        .collect();
    let mut regexes = Default::default();
    for (n, mut call) in calls.into_iter().enumerate() {
        call.user = users[n % users.len()].clone();
        call.company = companies[(n / users.len()) % companies.len()].clone();
        if n % 5 == 0 {
            call.ip = None;
        }
        let at_request = config.sample_rate_at_request(
            &call.verb,
            &call.route,
            call.ip.as_deref(),
            call.user.as_deref(),
            call.company.as_deref(),
        );
        if at_request == Rate::DependsOnStatus {
            assert!(has_status_condition, "{call:?}");
        }
        for &status in APP_STATUSES {
            let rate = config.sample_rate_at_log(
                &call.verb,
                &call.route,
                call.ip.as_deref(),
                status,
                call.user.as_deref(),
                call.company.as_deref(),
            );
            assert!(rate <= 100);
            let expected = reference_rate_at_log(root, &mut regexes, &call, status);
            assert_eq!(rate, expected, "{call:?} status {status}");
            if let Rate::Known(known) = at_request {
                assert_eq!(known, rate, "{call:?} status {status}");
            }
            let w = weight(rate);
            match rate {
                1..=99 => {
                    let r = u32::from(rate);
                    assert!(w * r <= 100 && (w + 1) * r > 100, "weight({rate}) = {w}");
                }
                _ => assert_eq!(w, 1),
            }
            assert_eq!(
                (0..100).filter(|&roll| keep(rate, roll)).count(),
                usize::from(rate)
            );
        }
    }
}

#[test]
fn fuzz_app_config() {
    fuzz("app_config", APP_CONFIG_DICT, app_config_target);
}

/// Documents the mutator seldom makes whole: random well-formed configs of many entries, with
/// valid, invalid and huge patterns, rates of every kind (huge, negative, fractional, null)
/// and now and then a value of the wrong type, through the same checks; the valid ones must
/// parse and exercise every outcome.
#[test]
fn app_config_of_generated_configs() {
    use moesif_core::app_config::{AppConfig, Rate};
    use serde_json::{json, Value};
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("app_config_generated"));
    let paths = [
        "request.verb",
        "request.route",
        "request.ip_address",
        "response.status",
        "request.headers.x",
    ];
    let patterns = [
        "GET",
        "^POST$",
        "GET|HEAD",
        "^/health",
        "users",
        "/api/v\\d+/",
        "^/$",
        "^10\\.",
        "::1",
        "^5",
        "^(4|5)\\d\\d$",
        "404",
        "20[01]",
        "x*",
        "",
        "(unclosed",
        "[",
        "a{1000}{1000}",
        ".*",
        "é",
    ];
    let rate = |rng: &mut fastrand::Rng| -> Value {
        match rng.u8(..12) {
            0 => json!(-5),
            1 => json!(150),
            2 => json!(12.5),
            3 => json!(0.2),
            4 => json!(1e300),
            5 => Value::Null,
            6 => json!(0),
            7 => json!(100),
            _ => json!(rng.u8(..=100)),
        }
    };
    let (mut parsed, mut depends, mut known_by_status_entries) = (0, 0, 0);
    for n in 0..cases().div_ceil(4).max(200) {
        let wrong_type = n % 10 == 9;
        let entries: Vec<Value> = (0..rng.usize(..8))
            .map(|_| {
                let conditions: Vec<Value> = (0..rng.usize(..4))
                    .map(|_| {
                        json!({
                            "path": paths[rng.usize(..paths.len())],
                            "value": patterns[rng.usize(..patterns.len())],
                        })
                    })
                    .collect();
                json!({"conditions": conditions, "sample_rate": rate(&mut rng)})
            })
            .collect();
        let ids = |rng: &mut fastrand::Rng, prefix: &str| -> Value {
            (0..rng.usize(..4))
                .map(|i| (format!("{prefix}{i}"), rate(rng)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let mut doc = json!({
            "sample_rate": rate(&mut rng),
            "user_sample_rate": ids(&mut rng, "u"),
            "company_sample_rate": ids(&mut rng, "c"),
            "regex_config": entries,
            "user_rules": {"u1": [{"rules": "r1", "values": {"0": "gold"}}]},
            "company_rules": {},
        });
        if wrong_type {
            let bad = [
                json!("50"),
                json!(true),
                json!([1]),
                json!({"a": 1}),
                json!(7),
            ];
            let bad = bad[rng.usize(..bad.len())].clone();
            match rng.u8(..4) {
                0 => doc["sample_rate"] = bad,
                1 => doc["user_sample_rate"]["u0"] = bad,
                2 => doc["regex_config"] = bad,
                _ => doc["regex_config"] = json!([{"conditions": [{"path": bad, "value": "a"}]}]),
            }
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        app_config_target(&bytes);
        let result = AppConfig::parse(&bytes);
        if reference_type_errors(&doc).is_empty() {
            let config = result.unwrap();
            parsed += 1;
            for verb in ["GET", "POST"] {
                for route in ["/health", "/api/v1/users", "/"] {
                    let at =
                        config.sample_rate_at_request(verb, route, Some("10.0.0.1"), None, None);
                    if at == Rate::DependsOnStatus {
                        depends += 1;
                    } else if bytes.windows(15).any(|w| w == b"response.status") {
                        known_by_status_entries += 1;
                    }
                }
            }
        } else {
            assert!(result.is_err());
        }
    }
    assert!(
        parsed > 0 && depends > 0 && known_by_status_entries > 0,
        "{parsed} {depends} {known_by_status_entries}"
    );
}

// ---------------------------------------------------------------------------------------------
// Generated seeds
// ---------------------------------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A JSON string of exactly `len` bytes.
fn json_string_of(len: usize) -> Vec<u8> {
    let mut s = vec![b'a'; len];
    s[0] = b'"';
    s[len - 1] = b'"';
    s
}

/// Records as filters encode them: a POST with JSON bodies (the response gzipped), a bare GET
/// without a response, and one with omitted bodies, extreme numbers and many headers.
fn sample_records() -> [Record; 3] {
    use moesif_core::body::Body;
    let json = br#"{"id":42,"name":"Ada","tags":["a","b"],"price":12.5,"ok":true,"next":null}"#;
    use moesif_core::record::Response;
    let h = RawHeaders::from_pairs::<&str>;
    let post = Record {
        start_ns: 1_730_263_542_914_999_999,
        duration_ns: 2_500_000,
        method: "POST".into(),
        scheme: "https".into(),
        authority: "api.acme.com".into(),
        path: "/items?page=2&q=%C3%A9".into(),
        request_headers: h(&[
            ("content-type", "application/json"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
            ("x-user-id", "u-123"),
            ("user-agent", "curl/8.5.0"),
        ]),
        request_body: Body::Captured(json.to_vec()),
        source_address: "10.0.0.1:5555".into(),
        response: Some(Response {
            status: 201,
            headers: h(&[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ]),
            body: Body::Captured(gzip(br#"{"created":true}"#)),
            trailers: h(&[("grpc-status", "0")]),
        }),
        upstream_address: "127.0.0.1:8080".into(),
        route_name: "api".into(),
        cluster_name: "sample_upstream".into(),
        outbound: true,
        weight: 2,
        blocked_by: Some("r-1".into()),
    };
    let get = Record {
        start_ns: 0,
        duration_ns: 0,
        method: "GET".into(),
        scheme: "http".into(),
        authority: "localhost:10000".into(),
        path: "/".into(),
        request_headers: RawHeaders::default(),
        request_body: Body::Empty,
        source_address: "[::1]:40000".into(),
        response: None,
        upstream_address: String::new(),
        route_name: String::new(),
        cluster_name: String::new(),
        outbound: false,
        weight: 1,
        blocked_by: None,
    };
    let omitted = Record {
        start_ns: -1,
        duration_ns: i64::MIN,
        method: "PUT".into(),
        path: "x".repeat(300),
        request_headers: RawHeaders::from_pairs(
            &(0..20)
                .map(|i| (format!("x-h{i}"), "v".repeat(i * 20)))
                .collect::<Vec<_>>(),
        ),
        request_body: Body::Omitted(u64::MAX),
        response: Some(Response {
            status: 65535,
            headers: RawHeaders::default(),
            body: Body::Omitted(100_001),
            trailers: RawHeaders::default(),
        }),
        ..Record::default()
    };
    [post, get, omitted]
}

/// Writes the binary seeds (`gen-*.bin`) into `fuzz/corpus`. The text seeds are written by
/// hand. Run with `cargo test -p moesif-core --test fuzz -- --ignored write_generated_seeds`.
#[test]
#[ignore = "rewrites the generated seed files of fuzz/corpus"]
fn write_generated_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus_dir(target)).unwrap();
        std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
    };
    let body =
        |ct: &str, ce: &str, bytes: &[u8]| [format!("{ct}\n{ce}\n").as_bytes(), bytes].concat();
    let json = br#"{"id":42,"name":"Ada","tags":["a","b"],"price":12.5,"ok":true,"next":null}"#;

    write(
        "body",
        "gen-gzip-json.bin",
        &body("application/json", "gzip", &gzip(json)),
    );
    write(
        "body",
        "gen-xgzip-problem-json.bin",
        &body("application/problem+json", "x-gzip", &gzip(json)),
    );
    write(
        "body",
        "gen-gzip-upper.bin",
        &body(
            "APPLICATION/JSON; charset=UTF-8",
            " GZIP ",
            &gzip(b" [1, 2] "),
        ),
    );
    write(
        "body",
        "gen-deflate-json.bin",
        &body("application/json; charset=utf-8", "deflate", &zlib(json)),
    );
    write(
        "body",
        "gen-gzip-not-json.bin",
        &body("application/json", "gzip", &gzip(b"\x00\xffnot json")),
    );
    write(
        "body",
        "gen-gzip-text-plain.bin",
        &body("text/plain", "gzip", &gzip(json)),
    );
    write(
        "body",
        "gen-gzip-members.bin",
        &body(
            "application/json",
            "gzip",
            &[gzip(b"[1,"), gzip(b"2]")].concat(),
        ),
    );
    write(
        "body",
        "gen-gzip-trailing.bin",
        &body(
            "application/json",
            "gzip",
            &[gzip(b"{\"a\":1}"), b"garbage".to_vec()].concat(),
        ),
    );
    write(
        "body",
        "gen-deflate-trailing.bin",
        &body(
            "application/json",
            "deflate",
            &[zlib(b"{\"a\":1}"), b"{}".to_vec()].concat(),
        ),
    );
    write(
        "body",
        "gen-gzip-truncated.bin",
        &body("application/json", "gzip", &gzip(json)[..30]),
    );

    // Bombs: valid JSON of 10 MB or more if inflated without a bound.
    let spaces = |n: usize| vec![b' '; n];
    let ten_mb = [b"[".as_slice(), &spaces(10_000_000), b"]"].concat();
    write(
        "body",
        "gen-bomb-json-10mb.bin",
        &body("application/json", "gzip", &gzip(&ten_mb)),
    );
    write(
        "body",
        "gen-bomb-deflate-10mb.bin",
        &body("application/json", "deflate", &zlib(&ten_mb)),
    );
    write(
        "body",
        "gen-bomb-zeros-10mb.bin",
        &body("application/json", "gzip", &gzip(&vec![0; 10_000_000])),
    );
    write(
        "body",
        "gen-bomb-nested.bin",
        &body("application/json", "gzip", &gzip(&gzip(&ten_mb))),
    );
    let mut members = gzip(b"[");
    for _ in 0..12 {
        members.extend(gzip(&spaces(1_000_000)));
    }
    members.extend(gzip(b"]"));
    write(
        "body",
        "gen-bomb-members-12mb.bin",
        &body("application/json", "gzip", &members),
    );

    // The cap, exactly and one byte over.
    for (suffix, len) in [("exact", MAX_INFLATED), ("over", MAX_INFLATED + 1)] {
        let s = json_string_of(len);
        write(
            "body",
            &format!("gen-cap-gzip-{suffix}.bin"),
            &body("application/json", "gzip", &gzip(&s)),
        );
        write(
            "body",
            &format!("gen-cap-deflate-{suffix}.bin"),
            &body("application/json", "deflate", &zlib(&s)),
        );
        let (a, b) = s.split_at(len / 2);
        write(
            "body",
            &format!("gen-cap-members-{suffix}.bin"),
            &body("application/json", "gzip", &[gzip(a), gzip(b)].concat()),
        );
    }

    // Records, as filters encode them.
    let [post, get, omitted] = sample_records();
    write("record", "gen-post.bin", &post.encode().unwrap());
    write("record", "gen-get-no-response.bin", &get.encode().unwrap());
    write("record", "gen-omitted-wide.bin", &omitted.encode().unwrap());
    let mut message = Vec::new();
    for rec in [&get, &post, &omitted] {
        rec.encode_into(&mut message).unwrap();
    }
    write("record", "gen-three-records.bin", &message);

    // Queue blocks, as the forwarder writes them, and blocks whose header does not match.
    let block = |records: &[&Record]| {
        let mut f = Forwarder::new(16_000_000, b"{}".to_vec());
        for rec in records {
            assert_eq!(f.push(rec).unwrap(), None);
        }
        f.take().unwrap().bytes
    };
    let three = block(&[&get, &post, &omitted]);
    write("block", "gen-three.bin", &three);
    write(
        "block",
        "gen-one-default.bin",
        &block(&[&Record::default()]),
    );
    let small = Record {
        method: "GET".into(),
        authority: "a".into(),
        path: "/".into(),
        ..Record::default()
    };
    let full = forward_all(&vec![small; 64], 16_000_000);
    assert_eq!(full.len(), 1);
    write("block", "gen-full-64.bin", &full[0].bytes);
    let with_header = |bytes: &[u8], format: u8, count: u32| {
        let mut b = bytes.to_vec();
        b[1] = format;
        b[2..6].copy_from_slice(&count.to_le_bytes());
        b
    };
    write(
        "block",
        "gen-unknown-format.bin",
        &with_header(&three, 0xfe, 3),
    );
    write(
        "block",
        "gen-declares-more.bin",
        &with_header(&three, three[1], 5),
    );
    write(
        "block",
        "gen-declares-fewer.bin",
        &with_header(&three, three[1], 1),
    );
    write(
        "block",
        "gen-declares-u32-max.bin",
        &with_header(&three, three[1], u32::MAX),
    );
    write("block", "gen-truncated.bin", &three[..three.len() - 40]);

    // Header maps, as the host serializes them.
    let request: &[(&[u8], &[u8])] = &[
        (b":authority", b"api.acme.com"),
        (b":path", b"/items?page=2"),
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b"content-type", b"application/json"),
        (b"x-forwarded-for", b"203.0.113.7, 10.0.0.1"),
        (b"user-agent", b"curl/8.5.0"),
    ];
    let encoded = pairs::encode(request);
    write("pairs", "gen-request.bin", &encoded);
    write("pairs", "gen-truncated.bin", &encoded[..encoded.len() - 20]);
    write(
        "pairs",
        "gen-response.bin",
        &pairs::encode(&[
            (b":status", b"503"),
            (b"retry-after", b"120"),
            (b"content-encoding", b"gzip"),
        ]),
    );
    write("pairs", "gen-empty.bin", &pairs::encode(&[]));
    write(
        "pairs",
        "gen-non-utf8.bin",
        &pairs::encode(&[
            (b"retry-after", b"\xff\xfe1"),
            (b"x-\xc3", b""),
            (b"x-surrogate", b"\xed\xa0\x80"),
            (b"x-cut", b"\xf0\x9f\x98"),
        ]),
    );
    write(
        "pairs",
        "gen-nul-and-empty.bin",
        &pairs::encode(&[(b"", b""), (b"x-nul", b"a\x00b"), (b"\x00", b"\x00\x00")]),
    );
    let mut lying = pairs::encode(&[(b"a", b"1")]);
    lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    write("pairs", "gen-count-u32-max.bin", &lying);

    // Backoff settings, seeds, failures, timestamps.
    let le = |ws: &[u64]| ws.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    write(
        "retry_time",
        "gen-defaults.bin",
        &le(&[1000, 60_000, 3, 0, 2, 4, 6, 8, 10, 12, 14]),
    );
    write(
        "retry_time",
        "gen-retry-after.bin",
        &le(&[1000, 60_000, 1, 14_001, 172_800_001, 7, 0]),
    );
    write(
        "retry_time",
        "gen-extremes.bin",
        &le(&[
            u64::MAX,
            0,
            u64::MAX,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
        ]),
    );
    write(
        "retry_time",
        "gen-timestamps.bin",
        &le(&[
            0,
            0,
            0,
            1_730_263_542_914_999_999,
            951_782_400_000_000_000,
            (-1i64) as u64,
            4_102_444_799_999_000_000,
        ]),
    );
}

// ---------------------------------------------------------------------------------------------
// Target 12: Moesif's governance rules (governance.rs): parsing and the decision at request
// headers
// ---------------------------------------------------------------------------------------------

const GOVERNANCE_DICT: &[&[u8]] = &[
    b"\"_id\":",
    b"\"type\":",
    b"\"user\"",
    b"\"company\"",
    b"\"regex\"",
    b"\"block\":",
    b"true",
    b"false",
    b"null",
    b"\"applied_to\":",
    b"\"matching\"",
    b"\"not_matching\"",
    b"\"applied_to_unidentified\":",
    b"\"regex_config\":",
    b"\"conditions\":",
    b"\"path\":",
    b"\"value\":",
    b"\"request.route\"",
    b"\"request.verb\"",
    b"\"request.ip_address\"",
    b"\"response.status\"",
    b"\"response\":",
    b"\"status\":",
    b"\"headers\":",
    b"\"body\":",
    b"\"variables\":",
    b"{{0}}",
    b"{{plan}}",
    b"{{{",
    b"}}}",
    b"\\\"",
    b"\\u0000",
    b"429",
    b"599",
    b"600",
    b"\"Content-Type\"",
    b"\"content-length\"",
];

/// Values the fuzz cohorts hold: quotes, backslashes, control characters, non-ASCII, numbers,
/// nested values, null, and one too big for any body.
fn governance_values(i: usize) -> serde_json::Value {
    use serde_json::json;
    let tricky = [
        json!("gold"),
        json!("q\"uo\\te\n\r\t\u{0}\u{1f}é😀"),
        json!(""),
        json!(12.5),
        json!({"a": [1, "}}"]}),
        json!(null),
        json!("x".repeat(70_000)),
        json!(true),
    ];
    json!({"0": tricky[i % tricky.len()], "plan": tricky[(i + 3) % tricky.len()]})
}

/// The cohorts the target decides with: user `u1` is in the cohort of every even rule (of the
/// first 64), company `c1` of every third; `u3`'s entry is malformed, as are a few entries.
fn governance_cohorts(
    list: &[serde_json::Value],
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    use serde_json::{json, Value};
    let mut u1 = vec![json!({"rules": 5}), json!("x"), json!({"values": {}})];
    let mut c1 = vec![json!(null)];
    for (i, rule) in list.iter().enumerate().take(64) {
        let Some(id) = rule.get("_id").and_then(Value::as_str) else {
            continue;
        };
        let entry = json!({"rules": id, "values": governance_values(i)});
        if i % 2 == 0 {
            u1.push(entry.clone());
        }
        if i % 3 == 0 {
            c1.push(entry);
        }
    }
    let users = json!({"u1": u1, "u2": [], "u3": {"rules": "x"}});
    let companies = json!({"c1": c1, "c2": [{"rules": "nope"}]});
    match (users, companies) {
        (Value::Object(u), Value::Object(c)) => (u, c),
        _ => unreachable!(),
    }
}

/// The label governance.rs gives rule `i` in its messages.
fn governance_label(i: usize, rule: &serde_json::Value) -> String {
    match rule.get("_id").and_then(serde_json::Value::as_str) {
        Some(id) => format!("rules[{i}] (_id {:?})", reference_short(id)),
        None => format!("rules[{i}]"),
    }
}

/// Whether the fuzz cohorts put `id` in `entity`'s cohort (see `governance_cohorts`).
fn governance_in_cohort(list: &[serde_json::Value], kind: &str, entity: &str, id: &str) -> bool {
    let (member, every) = match kind {
        "user" => ("u1", 2),
        _ => ("c1", 3),
    };
    entity == member
        && list.iter().enumerate().take(64).any(|(i, r)| {
            i % every == 0 && r.get("_id").and_then(serde_json::Value::as_str) == Some(id)
        })
}

/// Whether a rule applies to a call, by the module's rules, when its regex_config matches.
fn governance_reference_applies(
    list: &[serde_json::Value],
    rule: &serde_json::Value,
    user: Option<&str>,
    company: Option<&str>,
) -> bool {
    let kind = rule["type"].as_str().unwrap_or("");
    let entity = match kind {
        "regex" => return true,
        "user" => user,
        _ => company,
    };
    match entity.filter(|e| !e.is_empty()) {
        None => rule["applied_to_unidentified"] == true,
        Some(entity) => {
            let in_cohort = governance_in_cohort(list, kind, entity, rule["_id"].as_str().unwrap());
            in_cohort != (rule["applied_to"] == "not_matching")
        }
    }
}

/// Never panics; `Err` exactly for what is not a JSON array; every rule of the first
/// `MAX_RULES` is kept or reported skipped once; decisions are consistent with the document:
/// a block comes from a kept rule with `block: true` and its status (100..=599), of the right
/// cohort, has a bounded body that is valid JSON when the rule's body is JSON, clean headers
/// and no added headers; a kept rule that matches every call (no regex_config) and applies by
/// the cohort rules is never passed over for a later one; added headers come from applicable
/// non-blocking rules, each name once, and every such rule's headers are there.
fn governance_target(bytes: &[u8]) {
    use moesif_core::governance::{
        Call, Cohorts, Rules, FORBIDDEN_HEADERS, JSON_CONTENT_TYPE, MAX_BODY, MAX_HEADER_VALUE,
        MAX_RULES,
    };
    use serde_json::Value;
    let parsed = Rules::parse(bytes);
    let list = match serde_json::from_slice::<Value>(bytes) {
        Err(_) => {
            assert!(parsed.unwrap_err().starts_with("not valid JSON: "));
            return;
        }
        Ok(Value::Array(list)) => list,
        Ok(_) => {
            let e = parsed.unwrap_err();
            assert!(e.starts_with("(root): expected an array, got "), "{e}");
            return;
        }
    };
    let rules = parsed.unwrap();
    let considered = &list[..list.len().min(MAX_RULES)];
    for why in rules.ignored() {
        assert!(why.starts_with("rules["), "{why}");
    }
    // Kept or skipped, exactly one of them.
    let kept: Vec<bool> = considered
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let prefix = format!("{} skipped: ", governance_label(i, rule));
            let skips = rules
                .ignored()
                .iter()
                .filter(|m| m.starts_with(&prefix))
                .count();
            assert!(skips <= 1, "{prefix} {skips} times");
            skips == 0
        })
        .collect();
    assert_eq!(kept.iter().filter(|&&k| k).count(), rules.len());
    assert_eq!(rules.is_empty(), kept.iter().all(|&k| !k));
    assert_eq!(
        rules
            .ignored()
            .iter()
            .any(|m| m.starts_with("rules[1000..]")),
        list.len() > MAX_RULES
    );
    // A kept rule is a well-formed one.
    let kept_rules: Vec<(usize, &Value)> = considered
        .iter()
        .enumerate()
        .filter(|(i, _)| kept[*i])
        .collect();
    for (i, rule) in &kept_rules {
        assert!(rule["_id"].as_str().is_some_and(|s| !s.is_empty()), "{i}");
        assert!(
            ["user", "company", "regex"].contains(&rule["type"].as_str().unwrap()),
            "{i}"
        );
        if rule["block"] == true {
            let status = rule["response"]["status"].as_u64().unwrap();
            assert!((100..=599).contains(&status), "{i}");
        }
    }
    // In order of precedence.
    let rank = |r: &Value| match r["type"].as_str() {
        Some("user") => 0,
        Some("company") => 1,
        _ => 2,
    };
    let mut ordered = kept_rules.clone();
    ordered.sort_by_key(|(i, r)| (rank(r), *i));
    let matches_all = |r: &Value| match &r["regex_config"] {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    };

    let (users, companies) = governance_cohorts(considered);
    let cohorts = Cohorts {
        user_rules: &users,
        company_rules: &companies,
    };
    let mut routes: Vec<String> = ["/", "/api/v1/users/42?x=1", "", "/admin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for rule in considered.iter().take(8) {
        for entry in rule["regex_config"]
            .as_array()
            .into_iter()
            .flatten()
            .take(2)
        {
            for c in entry["conditions"].as_array().into_iter().flatten().take(2) {
                if let Some(v) = c["value"].as_str() {
                    routes.push(cut(v, 100).to_string());
                }
            }
        }
    }
    let verbs = ["GET", "POST", ""];
    let ips = [None, Some("10.0.0.1"), Some("::1")];
    let people = [None, Some(""), Some("u1"), Some("u2"), Some("u3")];
    let orgs = [None, Some("c1"), Some("c2")];
    let mut rng = fastrand::Rng::with_seed(fnv1a(&String::from_utf8_lossy(bytes)));
    let n_calls = (4000 / (1 + considered.len())).clamp(8, 40);
    for n in 0..n_calls {
        let (user, company) = (people[n % people.len()], orgs[(n / 5) % orgs.len()]);
        let route = routes[rng.usize(..routes.len())].clone();
        let call = Call {
            verb: verbs[rng.usize(..verbs.len())],
            route: &route,
            ip: ips[rng.usize(..ips.len())],
            user,
            company,
        };
        let d = rules.decide(&call, &cohorts);
        assert_eq!(d, rules.decide(&call, &cohorts), "deterministic");
        let what = format!("{call:?}");
        let applies_surely = |r: &Value| {
            matches_all(r) && governance_reference_applies(considered, r, user, company)
        };
        let clean = |headers: &[(String, String)]| {
            for (k, (name, value)) in headers.iter().enumerate() {
                assert!(!name.is_empty());
                assert!(
                    name.bytes().all(|b| b.is_ascii_digit()
                        || b.is_ascii_lowercase()
                        || b"!#$%&'*+-.^_`|~".contains(&b)),
                    "{name:?}"
                );
                assert!(!headers[..k].iter().any(|(n, _)| n == name), "{name} twice");
                assert!(value.len() <= MAX_HEADER_VALUE);
                assert!(
                    !value.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)),
                    "{value:?}"
                );
            }
        };
        match &d.block {
            Some(b) => {
                assert!(d.add_headers.is_empty(), "{what}");
                let pos = ordered
                    .iter()
                    .position(|(_, r)| r["_id"] == b.rule_id.as_str())
                    .unwrap_or_else(|| panic!("{} is no kept rule", b.rule_id));
                let (_, rule) = ordered[pos];
                assert_eq!(rule["block"], true);
                assert_eq!(rule["response"]["status"], b.status);
                assert!((100..=599).contains(&b.status));
                let kind = rule["type"].as_str().unwrap();
                if kind != "regex" {
                    assert!(
                        governance_reference_applies(considered, rule, user, company),
                        "{} does not apply to {what}",
                        b.rule_id
                    );
                }
                for (_, earlier) in &ordered[..pos] {
                    assert!(
                        !(earlier["block"] == true && applies_surely(earlier)),
                        "{} blocks {what}, but {} came first",
                        b.rule_id,
                        earlier["_id"]
                    );
                }
                assert!(b.body.len() <= MAX_BODY);
                clean(&b.headers);
                let body = &rule["response"]["body"];
                match body {
                    Value::Null => assert!(b.body.is_empty()),
                    Value::String(_) => assert!(std::str::from_utf8(&b.body).is_ok()),
                    _ => {
                        let parsed = serde_json::from_slice::<Value>(&b.body);
                        assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&b.body));
                        let own_type = rule["response"]["headers"].as_object().is_some_and(|h| {
                            h.iter().any(|(k, v)| {
                                k.eq_ignore_ascii_case("content-type") && !v.is_null()
                            })
                        });
                        if !own_type {
                            assert!(b
                                .headers
                                .contains(&("content-type".into(), JSON_CONTENT_TYPE.into())));
                        }
                    }
                }
            }
            None => {
                for (_, rule) in &ordered {
                    assert!(
                        !(rule["block"] == true && applies_surely(rule)),
                        "{} should block {what}",
                        rule["_id"]
                    );
                }
                clean(&d.add_headers);
                // Each added header comes from a non-blocking rule that may apply.
                for (name, _) in &d.add_headers {
                    assert!(
                        ordered.iter().any(|(_, r)| r["block"] != true
                            && (r["type"] == "regex"
                                || governance_reference_applies(considered, r, user, company))
                            && r["response"]["headers"]
                                .as_object()
                                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)))),
                        "{name} from nowhere, {what}"
                    );
                }
                // Every non-blocking rule that surely applies added its headers.
                for (_, rule) in &ordered {
                    if rule["block"] == true || !applies_surely(rule) {
                        continue;
                    }
                    for (name, value) in rule["response"]["headers"]
                        .as_object()
                        .into_iter()
                        .flatten()
                    {
                        let name = name.to_ascii_lowercase();
                        if value.is_null() || FORBIDDEN_HEADERS.contains(&name.as_str()) {
                            continue;
                        }
                        assert!(
                            d.add_headers.iter().any(|(n, _)| *n == name),
                            "{name} of {} missing, {what}",
                            rule["_id"]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn fuzz_governance() {
    fuzz("governance", GOVERNANCE_DICT, governance_target);
}

/// Documents the mutator seldom makes whole: random well-formed rule lists (every type, both
/// `applied_to`, unidentified or not, blocking or not, regex_config absent, empty or on the
/// route or verb, headers and bodies of every JSON type with placeholders, now and then a
/// malformed rule or a duplicate `_id`) through the same checks. Most must parse, and between
/// them they must block calls and add headers.
#[test]
fn governance_of_generated_rules() {
    use moesif_core::governance::{Call, Cohorts, Rules};
    use serde_json::{json, Value};
    let mut rng = fastrand::Rng::with_seed(seed() ^ fnv1a("governance_generated"));
    let (mut kept, mut total, mut blocks, mut added) = (0, 0, 0, 0);
    for _ in 0..300 {
        let n = rng.usize(0..24);
        let rules: Vec<Value> = (0..n)
            .map(|i| {
                let id = if rng.u8(..20) == 0 {
                    "dup".to_string()
                } else {
                    format!("r{i}")
                };
                let mut rule = json!({
                    "_id": id,
                    "type": (["user", "company", "regex"][rng.usize(..3)]),
                    "block": rng.bool(),
                    "applied_to": (["matching", "not_matching"][rng.usize(..2)]),
                    "applied_to_unidentified": rng.bool(),
                    "variables": [{"name": "0", "path": "user_id"}],
                });
                match rng.u8(..4) {
                    0 => {}
                    1 => rule["regex_config"] = json!([]),
                    2 => {
                        rule["regex_config"] = json!([{"conditions":
                            [{"path": "request.route", "value": (["^/a", "^/$", "b", "x*"][rng.usize(..4)])}]}])
                    }
                    _ => {
                        rule["regex_config"] = json!([
                            {"conditions": [{"path": "request.verb", "value": "^POST$"}]},
                            {"conditions": [{"path": "request.body.query", "value": "x"}]}])
                    }
                }
                let body = match rng.u8(..6) {
                    0 => Value::Null,
                    1 => json!("text {{0}} {{plan}}"),
                    2 => json!({"e": "{{0}}", "p": ["{{plan}}", 1, null], "{{0}}": {"x": "\"{{0}}\""}}),
                    3 => json!([1, 2.5, true]),
                    4 => json!(7),
                    _ => json!("{{{0}}}"),
                };
                let mut headers = json!({"X-Rule": id, "X-V": "{{0}}/{{plan}}", "X-Shared": format!("r{i}")});
                if rng.bool() {
                    headers["Content-Type"] = json!("application/vnd.api+json");
                }
                rule["response"] = json!({"status": ([200, 403, 429, 503][rng.usize(..4)]),
                    "headers": headers, "body": body});
                if rng.u8(..12) == 0 {
                    // Malformed, one way or another.
                    match rng.u8(..4) {
                        0 => rule["type"] = json!("api"),
                        1 => rule["response"]["status"] = json!(700),
                        2 => rule["applied_to"] = json!(1),
                        _ => rule["response"]["headers"]["bad name"] = json!("x"),
                    }
                }
                rule
            })
            .collect();
        let bytes = serde_json::to_vec(&rules).unwrap();
        governance_target(&bytes);

        let parsed = Rules::parse(&bytes).unwrap();
        total += n;
        kept += parsed.len();
        let (users, companies) = governance_cohorts(&rules);
        let cohorts = Cohorts {
            user_rules: &users,
            company_rules: &companies,
        };
        for (user, company) in [
            (Some("u1"), Some("c1")),
            (None, None),
            (Some("u2"), Some("c2")),
        ] {
            let d = parsed.decide(
                &Call {
                    verb: "GET",
                    route: "/a",
                    ip: None,
                    user,
                    company,
                },
                &cohorts,
            );
            blocks += usize::from(d.block.is_some());
            added += usize::from(!d.add_headers.is_empty());
        }
    }
    assert!(kept * 10 > total * 8, "{kept} of {total} kept");
    assert!(
        blocks > 100 && added > 100,
        "{blocks} blocks, {added} with headers"
    );
}
