//! The daemon's metrics, served in the Prometheus text format at `/metrics`:
//! plugin invocations by plugin and outcome with latency histograms, stage
//! durations, and, computed when scraped, releases by status and approvals
//! waiting.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    plugin: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

fn stage_histogram() -> Histogram {
    // 1 s to about 9 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Every metric the daemon keeps.
pub struct Metrics {
    registry: Mutex<Registry>,
    invocations: Family<InvocationLabels, Counter>,
    invocation_seconds: Family<PluginLabels, Histogram, fn() -> Histogram>,
    stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    releases: Family<StatusLabels, Gauge>,
    approvals_waiting: Gauge,
    schedule_fires: Family<OutcomeLabels, Counter>,
    schedule_skips: Family<ReasonLabels, Counter>,
    http_refusals: Family<ReasonLabels, Counter>,
    http_connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("greenlight");
        let invocations = Family::<InvocationLabels, Counter>::default();
        registry.register(
            "plugin_invocations",
            "Plugin invocations by plugin and outcome (ok or an error code)",
            invocations.clone(),
        );
        let invocation_seconds =
            Family::<PluginLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "plugin_invocation_seconds",
            "Plugin invocation latency",
            invocation_seconds.clone(),
        );
        let stage_seconds =
            Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                stage_histogram,
            );
        registry.register(
            "stage_seconds",
            "How long release stages took, by stage kind",
            stage_seconds.clone(),
        );
        let releases = Family::<StatusLabels, Gauge>::default();
        registry.register("releases", "Releases by status", releases.clone());
        let approvals_waiting = Gauge::default();
        registry.register(
            "approvals_waiting",
            "Releases waiting at an approval gate",
            approvals_waiting.clone(),
        );
        let schedule_fires = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "schedule_fires",
            "Schedule fires that started (or queued) a release or failed to, by outcome",
            schedule_fires.clone(),
        );
        let schedule_skips = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "schedule_skips",
            "Schedule fires skipped, by reason (missed, frozen, overlap)",
            schedule_skips.clone(),
        );
        let http_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_refusals",
            "Connections and requests refused or cut at the HTTP edge, by reason \
             (busy, too_many_connections, rate_limited, header_timeout, idle_timeout, \
             body_timeout, malformed, uri_too_long, headers_too_large)",
            http_refusals.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "Connections being served",
            http_connections.clone(),
        );
        Metrics {
            http_refusals,
            http_connections,
            schedule_fires,
            schedule_skips,
            registry: Mutex::new(registry),
            invocations,
            invocation_seconds,
            stage_seconds,
            releases,
            approvals_waiting,
        }
    }

    /// Counts a connection or request refused or cut at the HTTP edge.
    pub fn http_refused(&self, reason: &str) {
        self.http_refusals
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a connection served (`1`) or ended (`-1`).
    pub fn http_connection(&self, delta: i64) {
        self.http_connections.inc_by(delta);
    }

    /// Counts one plugin invocation and its latency.
    pub fn invocation(&self, plugin: &str, outcome: &str, seconds: f64) {
        self.invocations
            .get_or_create(&InvocationLabels {
                plugin: plugin.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.invocation_seconds
            .get_or_create(&PluginLabels {
                plugin: plugin.to_string(),
            })
            .observe(seconds);
    }

    /// Records how long a stage of some kind took.
    pub fn stage(&self, kind: &str, seconds: f64) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                kind: kind.to_string(),
            })
            .observe(seconds);
    }

    /// Counts a schedule fire that started, queued or failed.
    pub fn schedule_fire(&self, outcome: &str) {
        self.schedule_fires
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a skipped schedule fire.
    pub fn schedule_skip(&self, reason: &str) {
        self.schedule_skips
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Sets the release counts, computed when scraped.
    pub fn set_releases(&self, by_status: &[(&str, i64)]) {
        for (status, count) in by_status {
            self.releases
                .get_or_create(&StatusLabels {
                    status: status.to_string(),
                })
                .set(*count);
        }
        let waiting = by_status
            .iter()
            .find(|(s, _)| *s == "waiting-approval")
            .map_or(0, |(_, n)| *n);
        self.approvals_waiting.set(waiting);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_their_labels() {
        let m = Metrics::new();
        m.invocation("probe", "ok", 0.002);
        m.invocation("probe", "deadline_exceeded", 1.0);
        m.stage("deploy", 600.0);
        m.set_releases(&[("running", 3), ("waiting-approval", 2)]);
        m.schedule_fire("started");
        m.schedule_skip("frozen");
        let text = m.render();
        for needle in [
            "greenlight_plugin_invocations_total{plugin=\"probe\",outcome=\"ok\"} 1",
            "greenlight_plugin_invocations_total{plugin=\"probe\",outcome=\"deadline_exceeded\"} 1",
            "greenlight_plugin_invocation_seconds_count{plugin=\"probe\"} 2",
            "greenlight_stage_seconds_count{kind=\"deploy\"} 1",
            "greenlight_releases{status=\"running\"} 3",
            "greenlight_approvals_waiting 2",
            "greenlight_schedule_fires_total{outcome=\"started\"} 1",
            "greenlight_schedule_skips_total{reason=\"frozen\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
