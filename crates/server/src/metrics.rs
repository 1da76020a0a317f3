//! Prometheus metrics on `prometheus-client`, rendered in the OpenMetrics text format by
//! `GET /metrics`.
//!
//! [`declare_families`] is the one place that declares every family: its name, help, type and
//! typed label set. The rest of the server records by name (`metrics.increment(
//! "syncline_webhooks_received_total", &[("source", name)])`); a call whose name or label keys
//! do not match a declared family records nothing and is logged, so no call can create a
//! family or a label the declaration does not have. Label values are source and entity names
//! from the configuration and fixed reasons, never request data, so the series count stays
//! bounded.
//!
//! The exact webhook-to-warehouse percentiles of `syncline demo` are not a Prometheus
//! concept: they come from samples kept here beside the registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use syncline_state::Durability;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram bucket bounds in seconds (webhook acknowledgement and webhook-to-warehouse).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Latency samples kept for exact percentiles (`syncline demo`), newest dropped past this.
const MAX_SAMPLES: usize = 500_000;

/// A float gauge (ages, Unix times).
type FloatGauge = Gauge<f64, AtomicU64>;

/// A typed label set that the name-based calls can build from `(key, value)` pairs.
trait LabelSet: Clone + std::fmt::Debug + std::hash::Hash + Eq + EncodeLabelSet + Send + Sync + 'static {
    /// The label keys, in the order they are rendered.
    const KEYS: &'static [&'static str];

    /// The label set of exactly these keys, in any order; `None` when a key is missing or extra.
    fn from_pairs(pairs: &[(&str, &str)]) -> Option<Self>;
}

/// The value of `key` in `pairs`.
fn value_of(pairs: &[(&str, &str)], key: &str) -> Option<String> {
    pairs.iter().find(|(name, _)| *name == key).map(|(_, value)| (*value).to_string())
}

/// Declares a label-set struct whose fields are the label keys (the encoder escapes the
/// values).
macro_rules! label_set {
    ($(#[$doc:meta])* $name:ident { $($key:ident),+ }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct $name {
            $($key: String),+
        }

        impl LabelSet for $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($key)),+];

            fn from_pairs(pairs: &[(&str, &str)]) -> Option<Self> {
                if pairs.len() != Self::KEYS.len() {
                    return None;
                }
                Some(Self { $($key: value_of(pairs, stringify!($key))?),+ })
            }
        }
    };
}

label_set!(
    /// `source`: a configured source name (`unknown` for deliveries to no configured source).
    BySource { source }
);
label_set!(
    /// `source` and a fixed `reason`.
    BySourceReason { source, reason }
);
label_set!(
    /// `source` and a configured `entity`.
    BySourceEntity { source, entity }
);
label_set!(
    /// A fixed `outcome`.
    ByOutcome { outcome }
);
label_set!(
    /// A fixed `part`.
    ByPart { part }
);
label_set!(
    /// `source`, a fixed `mode` and a fixed `outcome`.
    ByReconcile { source, mode, outcome }
);
label_set!(
    /// A fixed durability `level`.
    ByLevel { level }
);

/// What the name-based calls can do to a family. A call the family's type or label set does
/// not fit returns `false` and records nothing.
trait Instrument: Send + Sync + std::fmt::Debug {
    /// Adds to a counter.
    fn add(&self, _pairs: &[(&str, &str)], _amount: u64) -> bool {
        false
    }

    /// Sets a counter kept elsewhere to its absolute value.
    fn set_counter(&self, _pairs: &[(&str, &str)], _value: u64) -> bool {
        false
    }

    /// Sets a gauge.
    fn set_gauge(&self, _pairs: &[(&str, &str)], _value: f64) -> bool {
        false
    }

    /// Records an observation.
    fn observe(&self, _pairs: &[(&str, &str)], _value: f64) -> bool {
        false
    }
}

impl<L: LabelSet> Instrument for Family<L, Counter> {
    fn add(&self, pairs: &[(&str, &str)], amount: u64) -> bool {
        L::from_pairs(pairs)
            .map(|labels| self.get_or_create(&labels).inc_by(amount))
            .is_some()
    }

    fn set_counter(&self, pairs: &[(&str, &str)], value: u64) -> bool {
        L::from_pairs(pairs)
            .map(|labels| self.get_or_create(&labels).inner().store(value, Ordering::Relaxed))
            .is_some()
    }
}

impl<L: LabelSet> Instrument for Family<L, FloatGauge> {
    fn set_gauge(&self, pairs: &[(&str, &str)], value: f64) -> bool {
        L::from_pairs(pairs).map(|labels| self.get_or_create(&labels).set(value)).is_some()
    }
}

impl Instrument for Gauge {
    fn set_gauge(&self, pairs: &[(&str, &str)], value: f64) -> bool {
        if !pairs.is_empty() {
            return false;
        }
        self.set(value.round() as i64);
        true
    }
}

impl Instrument for FloatGauge {
    fn set_gauge(&self, pairs: &[(&str, &str)], value: f64) -> bool {
        if !pairs.is_empty() {
            return false;
        }
        self.set(value);
        true
    }
}

impl Instrument for Histogram {
    fn observe(&self, pairs: &[(&str, &str)], value: f64) -> bool {
        if !pairs.is_empty() {
            return false;
        }
        Histogram::observe(self, value);
        true
    }
}

/// A new histogram with [`BUCKETS`].
fn seconds_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// The registry being declared and the families the name-based calls reach, by sample name.
struct Declarations {
    registry: Registry,
    by_name: HashMap<&'static str, Box<dyn Instrument>>,
}

impl Declarations {
    /// Registers a family the name-based calls can reach under `name`: the name of its samples
    /// (`_total` included for counters, as Prometheus queries spell it). OpenMetrics names a
    /// counter family without `_total` and states a `_seconds` suffix as its unit, so the
    /// registry gets the name that way.
    fn family<M: Metric + Instrument + Clone>(&mut self, name: &'static str, help: &str, metric: M) -> M {
        self.register(name, help, metric.clone());
        self.by_name.insert(name, Box::new(metric.clone()));
        metric
    }

    /// Registers a family no name-based call may change.
    fn register(&mut self, name: &'static str, help: &str, metric: impl Metric) {
        // The registry appends the full stop.
        let help = help.trim_end_matches('.');
        let stem = name.strip_suffix("_total").unwrap_or(name);
        match stem.strip_suffix("_seconds") {
            Some(base) => self.registry.register_with_unit(base, help, Unit::Seconds, metric),
            None => self.registry.register(stem, help, metric),
        }
    }
}

/// Every metric the server exports. `durability` is the `[state] durability` in force: its
/// gauge is set here, once, and its help and the acknowledgement help name it.
fn declare_families(durability: Durability) -> (Declarations, Histogram) {
    let mut families = Declarations {
        registry: Registry::default(),
        by_name: HashMap::new(),
    };
    let in_force = durability_help(durability);

    // Webhook intake.
    families.family(
        "syncline_webhooks_received_total",
        "Webhook deliveries received, per source.",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_webhooks_accepted_total",
        &format!("Webhook deliveries stored in the inbox and acknowledged; {in_force}."),
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_webhooks_rejected_total",
        "Webhook deliveries refused, by reason (unauthorized, malformed, too_large, body_timeout, unknown_source, unavailable).",
        Family::<BySourceReason, Counter>::default(),
    );
    families.family(
        "syncline_webhook_events_total",
        "Events stored in the inbox (duplicates excluded).",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_webhook_duplicate_events_total",
        "Events absorbed as duplicates of stored ones.",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_webhook_unknown_entity_total",
        "Events for entities the connector does not sync, per source (the names are logged, never labels); acknowledged.",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_webhook_ack_seconds",
        "Time from request to acknowledgement (after the durable write).",
        seconds_histogram(),
    );

    // Inbox and worker.
    let durability_gauge = Family::<ByLevel, Gauge>::default();
    durability_gauge
        .get_or_create(&ByLevel {
            level: durability.name().to_string(),
        })
        .set(1);
    families.register(
        "syncline_inbox_durability",
        &format!(
            "1 for the [state] durability named by the level label (crash: an acknowledged webhook \
             survives a crash of the process; power_loss: a power cut too); {in_force}."
        ),
        durability_gauge,
    );
    families.family("syncline_inbox_depth", "Events waiting in the inbox.", Gauge::<i64>::default());
    families.family(
        "syncline_inbox_oldest_age_seconds",
        "Age of the oldest waiting event.",
        FloatGauge::default(),
    );
    families.family(
        "syncline_inbox_dead_letters",
        "Events in the dead-letter list (see `syncline inbox list`).",
        Gauge::<i64>::default(),
    );
    let webhook_to_warehouse = families.family(
        "syncline_webhook_to_warehouse_seconds",
        "Time from receiving a webhook to its version being committed in the warehouse.",
        seconds_histogram(),
    );
    families.family(
        "syncline_worker_batches_total",
        "Inbox batches applied by the worker, by outcome.",
        Family::<ByOutcome, Counter>::default(),
    );
    families.family(
        "syncline_versions_written_total",
        "History versions written, per source and entity.",
        Family::<BySourceEntity, Counter>::default(),
    );
    families.family(
        "syncline_worker_restarts_total",
        "Inbox worker restarts after a panic, by part (worker: the claim loop; lane: one source's batch).",
        Family::<ByPart, Counter>::default(),
    );
    families.family(
        "syncline_last_success_timestamp_seconds",
        "Unix time of the last successful write per source and entity (webhook batch or reconcile).",
        Family::<BySourceEntity, FloatGauge>::default(),
    );

    // Reconciler and upstream APIs.
    families.family(
        "syncline_reconciler_healed_records_total",
        "Records the reconciler corrected that no webhook had delivered (new or changed records whose change is older than the inbox's last event for them, vanished ids, missed deletes), per source and entity.",
        Family::<BySourceEntity, Counter>::default(),
    );
    families.family(
        "syncline_reconcile_runs_total",
        "Reconciler runs per source, mode and outcome.",
        Family::<ByReconcile, Counter>::default(),
    );
    families.family(
        "syncline_api_calls_total",
        "Upstream API requests, retries and token requests included.",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_api_rate_limited_total",
        "Upstream API requests answered 429.",
        Family::<BySource, Counter>::default(),
    );
    families.family(
        "syncline_token_refreshes_total",
        "OAuth2 access tokens fetched.",
        Family::<BySource, Counter>::default(),
    );
    (families, webhook_to_warehouse)
}

/// The words the metric help uses for the durability in force.
fn durability_help(durability: Durability) -> String {
    let promise = match durability {
        Durability::Crash => "an acknowledged webhook survives a crash of the process (SQLite synchronous = NORMAL)",
        Durability::PowerLoss => "an acknowledged webhook survives a power cut too (SQLite synchronous = FULL)",
    };
    format!(
        "durability in force: {} ({promise}; a PostgreSQL state store follows its server's synchronous_commit)",
        durability.name()
    )
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    by_name: HashMap<&'static str, Box<dyn Instrument>>,
    durability: Durability,
    webhook_to_warehouse: Histogram,
    latency_samples: Mutex<Vec<f64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Metrics")
            .field("families", &self.by_name.len())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A whole non-negative count from the `f64` the name-based calls take.
fn count(amount: f64) -> Option<u64> {
    (amount.is_finite() && amount >= 0.0).then(|| amount.round() as u64)
}

impl Metrics {
    /// The registry with every family, for the default durability ([`Durability::Crash`]).
    pub fn new() -> Self {
        Self::with_durability(Durability::default())
    }

    /// The registry with every family; `durability` is the `[state] durability` in force,
    /// reported by `syncline_inbox_durability` and in the help text.
    pub fn with_durability(durability: Durability) -> Self {
        let (families, webhook_to_warehouse) = declare_families(durability);
        Self {
            registry: families.registry,
            by_name: families.by_name,
            durability,
            webhook_to_warehouse,
            latency_samples: Mutex::new(Vec::new()),
        }
    }

    /// The durability the metrics report.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Runs `action` on the family called `name`; logs a call that fits no declared family.
    fn record(&self, call: &str, name: &str, pairs: &[(&str, &str)], action: impl FnOnce(&dyn Instrument) -> bool) {
        let recorded = self.by_name.get(name).is_some_and(|family| action(family.as_ref()));
        if !recorded {
            let keys: Vec<&str> = pairs.iter().map(|(key, _)| *key).collect();
            tracing::error!(
                metric = name,
                call,
                ?keys,
                "metric call matches no declared family; nothing recorded"
            );
        }
    }

    /// Adds to a counter (a whole, non-negative amount).
    pub fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], amount: f64) {
        self.record("add", name, pairs, |family| {
            count(amount).is_some_and(|amount| family.add(pairs, amount))
        });
    }

    /// Adds one to a counter.
    pub fn increment(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 1.0);
    }

    /// Sets a counter to an absolute value (counters kept elsewhere, such as API calls).
    pub fn set_counter(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        self.record("set_counter", name, pairs, |family| {
            count(value).is_some_and(|value| family.set_counter(pairs, value))
        });
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        self.record("set_gauge", name, pairs, |family| family.set_gauge(pairs, value));
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        self.record("observe", name, pairs, |family| family.observe(pairs, seconds));
    }

    /// Records webhook-to-warehouse latencies (histogram and exact samples).
    pub fn observe_webhook_to_warehouse(&self, seconds: &[f64]) {
        for value in seconds {
            self.webhook_to_warehouse.observe(*value);
        }
        let mut samples = self.latency_samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = MAX_SAMPLES.saturating_sub(samples.len());
        samples.extend(seconds.iter().take(room));
    }

    /// Exact webhook-to-warehouse percentiles in seconds over the samples kept (`None` without
    /// samples): `quantiles(&[0.5, 0.99])`.
    pub fn webhook_to_warehouse_quantiles(&self, quantiles: &[f64]) -> Option<Vec<f64>> {
        let mut samples = self.latency_samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        Some(quantiles.iter().map(|quantile| percentile(&samples, *quantile)).collect())
    }

    /// The sum of a counter's series whose labels include `pairs` (0 when never touched), as a
    /// scrape shows it; for tests and the demo summary.
    pub fn counter(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        samples(&self.render())
            .filter(|sample| sample.name == name && pairs.iter().all(|(key, value)| sample.label(key) == Some(value)))
            .map(|sample| sample.value)
            .sum()
    }

    /// The OpenMetrics text exposition of every series ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        out
    }
}

/// One sample line of a text exposition.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }
}

/// The sample lines of a text exposition (comments and unreadable lines skipped).
fn samples(text: &str) -> impl Iterator<Item = Sample> + '_ {
    text.lines().filter(|line| !line.starts_with('#')).filter_map(parse_sample)
}

/// `name{key="value",...} value`, with `\\`, `\"` and `\n` unescaped in label values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inside) = rest.strip_prefix('{') {
        let mut characters = inside.char_indices();
        let mut key = String::new();
        let end = loop {
            let (index, character) = characters.next()?;
            match character {
                '}' => break index,
                ',' => {}
                '=' => {
                    if characters.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match characters.next()?.1 {
                            '"' => break,
                            '\\' => match characters.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        };
        rest = &inside[end + 1..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name, labels, value })
}

/// The value at quantile `q` (nearest rank) of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::new();
        metrics.increment("syncline_webhooks_received_total", &[("source", "crm")]);
        metrics.increment("syncline_webhooks_received_total", &[("source", "crm")]);
        metrics.increment("syncline_webhooks_rejected_total", &[("source", "crm"), ("reason", "unauthorized")]);
        metrics.set_gauge("syncline_inbox_depth", &[], 3.0);
        metrics.set_gauge("syncline_inbox_oldest_age_seconds", &[], 1.5);
        metrics.observe("syncline_webhook_ack_seconds", &[], 0.003);
        metrics.observe("syncline_webhook_ack_seconds", &[], 0.5);
        let text = metrics.render();
        assert!(text.contains("# TYPE syncline_webhooks_received counter\n"), "{text}");
        assert!(
            text.contains("# HELP syncline_webhooks_received Webhook deliveries received, per source.\n"),
            "{text}"
        );
        assert!(text.contains("syncline_webhooks_received_total{source=\"crm\"} 2\n"), "{text}");
        assert!(text.contains("syncline_webhooks_rejected_total{source=\"crm\",reason=\"unauthorized\"} 1\n"));
        assert!(text.contains("syncline_inbox_depth 3\n"), "{text}");
        assert!(text.contains("syncline_inbox_oldest_age_seconds 1.5\n"), "{text}");
        assert!(text.contains("# TYPE syncline_webhook_ack_seconds histogram\n# UNIT syncline_webhook_ack_seconds seconds\n"));
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"0.5\"} 2\n"), "{text}");
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("syncline_webhook_ack_seconds_count 2\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(metrics.counter("syncline_webhooks_received_total", &[("source", "crm")]), 2.0);
        assert_eq!(metrics.counter("syncline_webhooks_received_total", &[("source", "other")]), 0.0);
    }

    #[test]
    fn every_family_is_declared_once_with_help() {
        let text = Metrics::new().render();
        let kinds = [
            ("syncline_inbox_depth", "gauge"),
            ("syncline_inbox_durability", "gauge"),
            ("syncline_webhook_to_warehouse_seconds", "histogram"),
        ];
        for (name, kind) in kinds {
            assert_eq!(text.matches(&format!("# TYPE {name} {kind}\n")).count(), 1, "{text}");
        }
        // A labelled family appears with its first series.
        assert!(!text.contains("syncline_webhooks_received"), "{text}");
        for line in text.lines().filter(|line| line.starts_with("# HELP")) {
            assert!(line.ends_with('.') && !line.ends_with(".."), "{line}");
        }
    }

    #[test]
    fn counters_sum_over_the_labels_not_asked_for() {
        let metrics = Metrics::new();
        metrics.add("syncline_versions_written_total", &[("source", "crm"), ("entity", "deal")], 5.0);
        metrics.add("syncline_versions_written_total", &[("entity", "person"), ("source", "crm")], 2.0);
        metrics.add("syncline_versions_written_total", &[("source", "desk"), ("entity", "ticket")], 1.0);
        assert_eq!(metrics.counter("syncline_versions_written_total", &[("source", "crm")]), 7.0);
        assert_eq!(metrics.counter("syncline_versions_written_total", &[]), 8.0);
        metrics.set_counter("syncline_api_calls_total", &[("source", "crm")], 40.0);
        metrics.set_counter("syncline_api_calls_total", &[("source", "crm")], 42.0);
        assert_eq!(metrics.counter("syncline_api_calls_total", &[("source", "crm")]), 42.0);
        let text = metrics.render();
        assert!(
            text.contains("syncline_versions_written_total{source=\"crm\",entity=\"person\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn calls_that_fit_no_family_record_nothing() {
        let metrics = Metrics::new();
        let before = metrics.render();
        // A label the family does not declare, a missing label, an unknown name, the wrong
        // type, a labelled call on an unlabelled family, a fractional or negative count.
        metrics.increment("syncline_webhooks_received_total", &[("source", "crm"), ("entity", "madeup")]);
        metrics.increment("syncline_webhooks_rejected_total", &[("source", "crm")]);
        metrics.increment("syncline_made_up_total", &[("source", "crm")]);
        metrics.set_gauge("syncline_webhooks_received_total", &[("source", "crm")], 3.0);
        metrics.increment("syncline_inbox_depth", &[]);
        metrics.set_gauge("syncline_inbox_depth", &[("source", "crm")], 3.0);
        metrics.observe("syncline_webhook_ack_seconds", &[("source", "crm")], 0.1);
        metrics.add("syncline_webhook_events_total", &[("source", "crm")], -1.0);
        metrics.set_gauge("syncline_inbox_durability", &[("level", "power_loss")], 1.0);
        assert_eq!(metrics.render(), before);
    }

    #[test]
    fn the_durability_in_force_is_in_the_gauge_and_the_help() {
        let text = Metrics::with_durability(Durability::PowerLoss).render();
        assert!(text.contains("syncline_inbox_durability{level=\"power_loss\"} 1\n"), "{text}");
        assert!(!text.contains("level=\"crash\""), "{text}");
        let help = |name: &str| {
            text.lines()
                .find(|line| line.starts_with(&format!("# HELP {name} ")))
                .unwrap_or_else(|| panic!("no help for {name}: {text}"))
                .to_string()
        };
        assert!(
            help("syncline_inbox_durability").contains("durability in force: power_loss"),
            "{text}"
        );
        assert!(help("syncline_inbox_durability").contains("synchronous = FULL"), "{text}");
        let text = Metrics::new().render();
        assert!(text.contains("syncline_inbox_durability{level=\"crash\"} 1\n"), "{text}");
        assert!(text.contains("durability in force: crash"), "{text}");
        assert!(text.contains("synchronous = NORMAL"), "{text}");
        let metrics = Metrics::with_durability(Durability::PowerLoss);
        metrics.increment("syncline_webhooks_accepted_total", &[("source", "crm")]);
        assert!(metrics.render().contains(
            "# HELP syncline_webhooks_accepted Webhook deliveries stored in the inbox and acknowledged; durability in force: power_loss"
        ));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&samples, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        let metrics = Metrics::new();
        assert!(metrics.webhook_to_warehouse_quantiles(&[0.5]).is_none());
        metrics.observe_webhook_to_warehouse(&[0.2, 0.1, 0.3]);
        assert_eq!(metrics.webhook_to_warehouse_quantiles(&[0.5, 0.99]), Some(vec![0.2, 0.3]));
        assert!(metrics.render().contains("syncline_webhook_to_warehouse_seconds_count 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.increment("syncline_webhooks_received_total", &[("source", "a\"b\\c\nd")]);
        let text = metrics.render();
        assert!(text.contains("source=\"a\\\"b\\\\c\\nd\""), "{text}");
        assert_eq!(
            metrics.counter("syncline_webhooks_received_total", &[("source", "a\"b\\c\nd")]),
            1.0
        );
    }
}
