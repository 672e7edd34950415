//! `skip` rules: calls the user does not want captured at all (health checks, metrics scrapes).
//! Decided at request headers from the method, host and path alone, so that a skipped call
//! costs no header map, no body and no record.

use crate::config::SkipRule;
use regex_lite::Regex;

/// One compiled rule; `None` fields match anything.
#[derive(Debug, Clone)]
struct Compiled {
    method: Option<Regex>,
    host: Option<Regex>,
    path: Option<Regex>,
}

#[derive(Debug, Clone, Default)]
pub struct SkipRules(Vec<Compiled>);

impl SkipRules {
    /// Compiles `rules`, each field anchored at both ends. The error names the key, e.g.
    /// `skip[1].path`, and says why.
    pub fn compile(rules: &[SkipRule]) -> Result<SkipRules, (String, String)> {
        let field = |i: usize, name: &str, re: &Option<String>| {
            re.as_deref()
                .map(|re| {
                    Regex::new(&format!("^(?:{re})$")).map_err(|e| {
                        (
                            format!("skip[{i}].{name}"),
                            format!("not a valid regex: {e}"),
                        )
                    })
                })
                .transpose()
        };
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.method.is_none() && r.host.is_none() && r.path.is_none() {
                    return Err((format!("skip[{i}]"), "needs method, host or path".into()));
                }
                Ok(Compiled {
                    method: field(i, "method", &r.method)?,
                    host: field(i, "host", &r.host)?,
                    path: field(i, "path", &r.path)?,
                })
            })
            .collect::<Result<_, _>>()
            .map(SkipRules)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a call is skipped; `path` may carry a query string, which is not matched.
    pub fn matches(&self, method: &str, host: &str, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let ok = |re: &Option<Regex>, value: &str| re.as_ref().is_none_or(|re| re.is_match(value));
        self.0
            .iter()
            .any(|r| ok(&r.method, method) && ok(&r.host, host) && ok(&r.path, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, host: Option<&str>, path: Option<&str>) -> SkipRule {
        SkipRule {
            method: method.map(Into::into),
            host: host.map(Into::into),
            path: path.map(Into::into),
        }
    }

    #[test]
    fn fields_are_anchored_and_anded_rules_ored() {
        let rules = SkipRules::compile(&[
            rule(Some("GET|HEAD"), None, Some("/health")),
            rule(None, Some("metrics\\.internal(:\\d+)?"), None),
        ])
        .unwrap();
        assert!(rules.matches("GET", "api", "/health"));
        assert!(rules.matches("HEAD", "api", "/health?probe=1"));
        assert!(
            !rules.matches("POST", "api", "/health"),
            "method must match too"
        );
        assert!(
            !rules.matches("GET", "api", "/healthz"),
            "anchored at the end"
        );
        assert!(
            !rules.matches("GET", "api", "/v1/health"),
            "anchored at the start"
        );
        assert!(rules.matches("POST", "metrics.internal:9090", "/anything"));
        assert!(!rules.matches("GET", "api", "/items"));
        assert!(SkipRules::default().is_empty());
        assert!(!SkipRules::default().matches("GET", "h", "/"));
    }

    #[test]
    fn bad_rules_name_the_key() {
        let e = SkipRules::compile(&[
            rule(Some("GET"), None, None),
            rule(None, None, Some("(unclosed")),
        ])
        .unwrap_err();
        assert_eq!(e.0, "skip[1].path");
        assert!(e.1.starts_with("not a valid regex"), "{}", e.1);
        assert_eq!(
            SkipRules::compile(&[rule(None, None, None)]).unwrap_err().0,
            "skip[0]"
        );
    }
}
