//! The command line of the tools: hand-rolled flag parsing (each takes a few flags, not worth
//! a CLI crate), help, and the exit code.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

/// The command line after the program name; `None`, after printing `usage`, when it asks for
/// help.
pub fn args_or_help(usage: &str) -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{usage}");
        return None;
    }
    Some(args)
}

/// What a tool's `main` returns for its `run`: an error is printed with the tool's name.
pub fn exit_code(tool: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{tool}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The flags given on the command line.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
    switches: HashSet<String>,
}

impl Flags {
    /// The value of `--name VALUE`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the switch `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.contains(name)
    }
}

/// Parses `--name value` pairs (also `--name=value`) for the names in `valued`, and bare
/// `--name` for the names in `switches`.
///
/// Flag names are given without the dashes. Errors are messages fit for the user.
pub fn parse_flags(
    args: impl IntoIterator<Item = String>,
    valued: &[&str],
    switches: &[&str],
) -> Result<Flags, String> {
    let mut flags = Flags::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        if switches.contains(&name) {
            if inline.is_some() {
                return Err(format!("--{name} takes no value"));
            }
            flags.switches.insert(name.to_owned());
            continue;
        }
        if !valued.contains(&name) {
            return Err(format!("unknown flag --{name}"));
        }
        let value = match inline {
            Some(value) => value.to_owned(),
            None => args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?,
        };
        flags.values.insert(name.to_owned(), value);
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
            &[],
        );
        let flags = flags.unwrap_or_default();
        assert_eq!(flags.value("listen"), Some("a:1"));
        assert_eq!(flags.value("faults"), Some("{}"));
        assert!(parse_flags(strings(&["--nope", "x"]), &["listen"], &[]).is_err());
        assert!(parse_flags(strings(&["--listen"]), &["listen"], &[]).is_err());
        assert!(parse_flags(strings(&["stray"]), &["listen"], &[]).is_err());
    }

    #[test]
    fn switches_take_no_value() {
        let flags = parse_flags(
            strings(&["--quiet", "--listen", "a:1"]),
            &["listen"],
            &["quiet"],
        );
        let flags = flags.unwrap_or_default();
        assert!(flags.has("quiet"));
        assert!(!flags.has("listen"));
        assert_eq!(flags.value("listen"), Some("a:1"));
        assert!(parse_flags(strings(&["--quiet=yes"]), &[], &["quiet"]).is_err());
        assert!(!parse_flags(strings(&[]), &[], &["quiet"])
            .unwrap_or_default()
            .has("quiet"));
    }
}
