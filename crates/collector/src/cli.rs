//! Hand-rolled `--flag value` parsing: both binaries take a few flags, not worth a CLI crate.

use std::collections::HashMap;

/// Parses `--name value` pairs (also `--name=value`), accepting only the names in `known`.
///
/// Returns the values by flag name without the dashes, or a message fit for the user.
pub fn parse_flags(
    args: impl IntoIterator<Item = String>,
    known: &[&str],
) -> Result<HashMap<String, String>, String> {
    let mut flags = HashMap::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), value)
            }
        };
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown flag --{name}"));
        }
        flags.insert(name, value);
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::parse_flags;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_both_forms_and_rejects_unknown() {
        let flags = parse_flags(
            strings(&["--listen", "a:1", "--faults={}"]),
            &["listen", "faults"],
        );
        let flags = flags.unwrap_or_default();
        assert_eq!(flags.get("listen").map(String::as_str), Some("a:1"));
        assert_eq!(flags.get("faults").map(String::as_str), Some("{}"));
        assert!(parse_flags(strings(&["--nope", "x"]), &["listen"]).is_err());
        assert!(parse_flags(strings(&["--listen"]), &["listen"]).is_err());
        assert!(parse_flags(strings(&["stray"]), &["listen"]).is_err());
    }
}
