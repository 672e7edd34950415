//! The properties the capture reads at `on_log`. Where Envoy evaluates CEL expressions (its
//! `expr_create` and `expr_evaluate` foreign functions), they all come from one host call: an
//! expression listing them, created once per filter config and evaluated per call, instead of
//! one `get_property` each. Where Envoy has no CEL, or an evaluation fails, each is read on its
//! own when it is needed, as the fallback.

use crate::host;
use moesif_core::log_facts::{LogFacts, EXPRESSION};

/// The expression's token: Envoy keeps it with the filter root that created it.
pub struct Expression(u32);

impl Expression {
    /// Creates the expression in the current root context (at configure). `None`, logged, where
    /// Envoy evaluates no CEL (built without its parser).
    fn create() -> Option<Self> {
        let created = host::foreign("expr_create", EXPRESSION.as_bytes());
        let token = created
            .as_ref()
            .ok()
            .and_then(|b| b.as_deref()?.try_into().ok())
            .map(u32::from_le_bytes);
        if token.is_none() {
            log::info!(
                "moesif: this Envoy evaluates no CEL expression ({:?}): the properties of each call are read one by one",
                created.err()
            );
        }
        token.map(Expression)
    }

    /// [`Expression::create`], unless a test build's config asks for the one-by-one reads.
    pub fn create_for(config: &moesif_core::config::Config) -> Option<Self> {
        #[cfg(feature = "test-faults")]
        if config.test_properties_one_by_one {
            return None;
        }
        let _ = config;
        Self::create()
    }

    fn evaluate(&self) -> Option<LogFacts> {
        let bytes = host::foreign("expr_evaluate", &self.0.to_le_bytes())
            .ok()
            .flatten()?;
        LogFacts::decode(&bytes)
    }
}

/// One call's properties: from one evaluation when there is one, else each from the host.
pub struct Properties(Option<LogFacts>);

impl Properties {
    pub fn read(expression: Option<&Expression>) -> Self {
        Properties(expression.and_then(Expression::evaluate))
    }

    /// Whether each property is read with its own host call (no evaluation, or it failed).
    pub fn one_by_one(&self) -> bool {
        self.0.is_none()
    }

    pub fn start_ns(&self) -> i64 {
        self.int(|f| f.start_ns, "request\0time")
    }

    pub fn duration_ns(&self) -> i64 {
        self.int(|f| f.duration_ns, "request\0duration")
    }

    /// Envoy's enum: 0 unspecified, 1 inbound, 2 outbound.
    pub fn listener_direction(&self) -> i64 {
        self.int(|f| f.listener_direction, "xds\0listener_direction")
    }

    pub fn source_address(&mut self) -> String {
        self.text(|f| &mut f.source_address, "source\0address")
    }

    pub fn route_name(&mut self) -> String {
        self.text(|f| &mut f.route_name, "xds\0route_name")
    }

    pub fn cluster_name(&mut self) -> String {
        self.text(|f| &mut f.cluster_name, "xds\0cluster_name")
    }

    pub fn upstream_address(&mut self) -> String {
        self.text(|f| &mut f.upstream_address, "upstream\0address")
    }

    fn int(&self, field: impl Fn(&LogFacts) -> i64, path: &str) -> i64 {
        match &self.0 {
            Some(facts) => field(facts),
            None => host::i64_property(path).unwrap_or(0),
        }
    }

    fn text(&mut self, field: impl Fn(&mut LogFacts) -> &mut String, path: &str) -> String {
        match &mut self.0 {
            Some(facts) => std::mem::take(field(facts)),
            None => host::string_property(path).unwrap_or_default(),
        }
    }
}
