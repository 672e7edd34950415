//! Duplicate detection by transaction id: a retried batch shows up as events whose id was
//! already seen, and tests and benchmarks assert on how many.

use std::collections::HashSet;

/// How many duplicated transaction ids are listed, to keep the stats readable.
const MAX_LISTED_DUPLICATES: usize = 100;

/// The transaction ids seen so far and the duplicates among them.
#[derive(Debug, Default)]
pub struct TransactionIds {
    /// Canonical UUIDs, the plugin's ids, kept as numbers so checking one allocates nothing.
    uuids: HashSet<u128>,
    /// Any other id, verbatim.
    others: HashSet<String>,
    duplicate_events: u64,
    listed_duplicates: Vec<String>,
}

impl TransactionIds {
    /// Notes one event's id, counting it as a duplicate if it was seen before.
    pub fn record(&mut self, id: &str) {
        let new = match parse_uuid(id) {
            Some(uuid) => self.uuids.insert(uuid),
            None if self.others.contains(id) => false,
            None => self.others.insert(id.to_owned()),
        };
        if new {
            return;
        }
        self.duplicate_events += 1;
        if self.listed_duplicates.len() < MAX_LISTED_DUPLICATES
            && !self.listed_duplicates.iter().any(|d| d == id)
        {
            self.listed_duplicates.push(id.to_owned());
        }
    }

    /// How many distinct ids were seen.
    pub fn unique(&self) -> usize {
        self.uuids.len() + self.others.len()
    }

    /// How many events carried an id seen before.
    pub fn duplicate_events(&self) -> u64 {
        self.duplicate_events
    }

    /// The first [`MAX_LISTED_DUPLICATES`] ids seen more than once, in order of detection.
    pub fn listed_duplicates(&self) -> &[String] {
        &self.listed_duplicates
    }
}

/// Reads a lower-case hyphenated UUID as a number. Only that one spelling is accepted, so
/// distinct strings never map to the same number and counts match comparing the strings.
fn parse_uuid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (index, byte) in bytes.iter().enumerate() {
        let hyphen = matches!(index, 8 | 13 | 18 | 23);
        let digit = match byte {
            b'-' if hyphen => continue,
            b'0'..=b'9' if !hyphen => byte - b'0',
            b'a'..=b'f' if !hyphen => byte - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::{parse_uuid, TransactionIds};

    #[test]
    fn uuids_parse_in_their_canonical_spelling_only() {
        assert_eq!(
            parse_uuid("00000000-0000-0000-0000-00000000001f"),
            Some(0x1f)
        );
        assert_eq!(
            parse_uuid("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            Some(0xf81d_4fae_7dec_11d0_a765_00a0_c91e_6bf6)
        );
        for other in [
            "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
            "f81d4fae7dec11d0a76500a0c91e6bf6",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf",
            "f81d4fae-7dec-11d0-a765+00a0c91e6bf6",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bfg",
            "a",
        ] {
            assert_eq!(parse_uuid(other), None, "{other}");
        }
    }

    #[test]
    fn counts_duplicates_of_uuids_and_other_ids() {
        let uuid = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        let upper = "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6";
        let mut ids = TransactionIds::default();
        for id in [uuid, "a", upper, uuid, "a", "a", upper] {
            ids.record(id);
        }
        assert_eq!(ids.unique(), 3);
        assert_eq!(ids.duplicate_events(), 4);
        assert_eq!(ids.listed_duplicates(), [uuid, "a", upper]);
    }
}
