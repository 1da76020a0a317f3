//! Prometheus metrics, rendered in the text exposition format by `GET /metrics`.
//!
//! A small registry of its own (counters, gauges, histograms keyed by name and labels) rather
//! than a metrics framework: the server has a dozen series, and the rendering is a few lines.
//! Label values are source and entity names from the configuration and fixed reasons, never
//! request data, so the series count stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Histogram bucket bounds in seconds (webhook acknowledgement and webhook-to-warehouse).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Latency samples kept for exact percentiles (`syncline demo`), newest dropped past this.
const MAX_SAMPLES: usize = 500_000;

/// Every metric the server exports: name, type, help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "syncline_webhooks_received_total",
        "counter",
        "Webhook deliveries received, per source.",
    ),
    (
        "syncline_webhooks_accepted_total",
        "counter",
        "Webhook deliveries stored in the inbox and acknowledged.",
    ),
    (
        "syncline_webhooks_rejected_total",
        "counter",
        "Webhook deliveries refused, by reason (unauthorized, malformed, too_large, body_timeout, unknown_source, unavailable).",
    ),
    (
        "syncline_webhook_events_total",
        "counter",
        "Events stored in the inbox (duplicates excluded).",
    ),
    (
        "syncline_webhook_duplicate_events_total",
        "counter",
        "Events absorbed as duplicates of stored ones.",
    ),
    (
        "syncline_webhook_unknown_entity_total",
        "counter",
        "Events for entities the connector does not sync, per source (the names are logged, never labels); acknowledged.",
    ),
    (
        "syncline_webhook_ack_seconds",
        "histogram",
        "Time from request to acknowledgement (after the durable write).",
    ),
    (
        "syncline_inbox_durability",
        "gauge",
        "1 for the durability in force ([state] durability): crash = an acknowledged webhook survives a process crash; power_loss = also a power cut.",
    ),
    ("syncline_inbox_depth", "gauge", "Events waiting in the inbox."),
    ("syncline_inbox_oldest_age_seconds", "gauge", "Age of the oldest waiting event."),
    (
        "syncline_inbox_dead_letters",
        "gauge",
        "Events in the dead-letter list (see `syncline inbox list`).",
    ),
    (
        "syncline_webhook_to_warehouse_seconds",
        "histogram",
        "Time from receiving a webhook to its version being committed in the warehouse.",
    ),
    (
        "syncline_worker_batches_total",
        "counter",
        "Inbox batches applied by the worker, by outcome.",
    ),
    (
        "syncline_versions_written_total",
        "counter",
        "History versions written, per source and entity.",
    ),
    (
        "syncline_reconciler_healed_records_total",
        "counter",
        "Records the reconciler corrected that no webhook had delivered (new or changed records whose change is older than the inbox's last event for them, vanished ids, missed deletes), per source and entity.",
    ),
    (
        "syncline_worker_restarts_total",
        "counter",
        "Inbox worker restarts after a panic, by part (worker: the claim loop; lane: one source's batch).",
    ),
    (
        "syncline_reconcile_runs_total",
        "counter",
        "Reconciler runs per source, mode and outcome.",
    ),
    (
        "syncline_api_calls_total",
        "counter",
        "Upstream API requests, retries and token requests included.",
    ),
    ("syncline_api_rate_limited_total", "counter", "Upstream API requests answered 429."),
    ("syncline_token_refreshes_total", "counter", "OAuth2 access tokens fetched."),
    (
        "syncline_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful write per source and entity (webhook batch or reconcile).",
    ),
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| value <= *bound) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), f64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
    latency_samples: Vec<f64>,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(name, value)| (*name, value.to_string())).collect()
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, action: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        action(&mut registry)
    }

    /// Adds to a counter.
    pub fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], amount: f64) {
        self.with(|registry| *registry.counters.entry((name, labels(pairs))).or_default() += amount);
    }

    /// Adds one to a counter.
    pub fn increment(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 1.0);
    }

    /// Sets a counter to an absolute value (counters kept elsewhere, such as API calls).
    pub fn set_counter(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        self.with(|registry| registry.counters.insert((name, labels(pairs)), value));
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        self.with(|registry| registry.gauges.insert((name, labels(pairs)), value));
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        self.with(|registry| {
            registry
                .histograms
                .entry((name, labels(pairs)))
                .or_insert_with(Histogram::new)
                .observe(seconds)
        });
    }

    /// Records webhook-to-warehouse latencies (histogram and exact samples).
    pub fn observe_webhook_to_warehouse(&self, seconds: &[f64]) {
        self.with(|registry| {
            let histogram = registry
                .histograms
                .entry(("syncline_webhook_to_warehouse_seconds", Vec::new()))
                .or_insert_with(Histogram::new);
            for value in seconds {
                histogram.observe(*value);
            }
            let room = MAX_SAMPLES.saturating_sub(registry.latency_samples.len());
            registry.latency_samples.extend(seconds.iter().take(room));
        });
    }

    /// Exact webhook-to-warehouse percentiles in seconds over the samples kept (`None` without
    /// samples): `quantiles(&[0.5, 0.99])`.
    pub fn webhook_to_warehouse_quantiles(&self, quantiles: &[f64]) -> Option<Vec<f64>> {
        let mut samples = self.with(|registry| registry.latency_samples.clone());
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        Some(quantiles.iter().map(|quantile| percentile(&samples, *quantile)).collect())
    }

    /// The value of a counter (0 when never touched); for tests and the demo summary.
    pub fn counter(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        self.with(|registry| {
            registry
                .counters
                .iter()
                .filter(|((key, series), _)| {
                    *key == name && pairs.iter().all(|pair| series.iter().any(|(k, v)| k == &pair.0 && v == pair.1))
                })
                .map(|(_, value)| *value)
                .sum()
        })
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.with(|registry| {
            let mut out = String::new();
            for (family, kind, help) in FAMILIES {
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
                for ((name, series), value) in registry.counters.iter().chain(registry.gauges.iter()) {
                    if name == family {
                        let _ = writeln!(out, "{name}{} {}", render_labels(series, None), number(*value));
                    }
                }
                for ((name, series), histogram) in &registry.histograms {
                    if name != family {
                        continue;
                    }
                    let mut cumulative = 0;
                    for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                        cumulative += count;
                        let le = number(*bound);
                        let _ = writeln!(out, "{name}_bucket{} {cumulative}", render_labels(series, Some(&le)));
                    }
                    let _ = writeln!(out, "{name}_bucket{} {}", render_labels(series, Some("+Inf")), histogram.count);
                    let _ = writeln!(out, "{name}_sum{} {}", render_labels(series, None), number(histogram.sum));
                    let _ = writeln!(out, "{name}_count{} {}", render_labels(series, None), histogram.count);
                }
            }
            out
        })
    }
}

/// The value at quantile `q` (nearest rank) of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn render_labels(series: &Labels, le: Option<&str>) -> String {
    if series.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = series.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value))).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
        metrics.observe("syncline_webhook_ack_seconds", &[], 0.003);
        metrics.observe("syncline_webhook_ack_seconds", &[], 0.5);
        let text = metrics.render();
        assert!(text.contains("# TYPE syncline_webhooks_received_total counter"), "{text}");
        assert!(text.contains("syncline_webhooks_received_total{source=\"crm\"} 2\n"), "{text}");
        assert!(text.contains("syncline_webhooks_rejected_total{source=\"crm\",reason=\"unauthorized\"} 1\n"));
        assert!(text.contains("syncline_inbox_depth 3\n"));
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"0.5\"} 2\n"), "{text}");
        assert!(text.contains("syncline_webhook_ack_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("syncline_webhook_ack_seconds_count 2\n"));
        assert_eq!(metrics.counter("syncline_webhooks_received_total", &[("source", "crm")]), 2.0);
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
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.increment("syncline_webhooks_received_total", &[("source", "a\"b")]);
        assert!(metrics.render().contains("source=\"a\\\"b\""));
    }
}
