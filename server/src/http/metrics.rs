//! Prometheus metrics (`GET /metrics`): requests and latencies by route, ingest totals,
//! profiles, segment evaluation time. Labels are route templates, never values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub ingested_records: Counter,
    pub rejected_records: Counter,
    pub profiles: Gauge,
    pub evaluation: Histogram,
    /// `POST /v1/segments/count` answered from the count cache (no evaluation).
    pub count_cache_hits: Counter,
    /// `POST /v1/segments/count` evaluated (the cache had no exact answer).
    pub count_cache_misses: Counter,
    /// Identifiers (adds and removes) pushed and acknowledged, per destination.
    pub pushed_identifiers: Family<DestinationLabels, Counter>,
    /// Retries after transient platform failures, per destination.
    pub push_retries: Family<DestinationLabels, Counter>,
    /// Pushes that failed, per destination.
    pub push_failures: Family<DestinationLabels, Counter>,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 50 µs to about 1.6 s.
    exponential_buckets(0.000_05, 2.0, 16)
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cidb");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        let ingested_records = Counter::default();
        let rejected_records = Counter::default();
        let profiles = Gauge::default();
        let evaluation = Histogram::new(seconds_buckets());
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "ingested_records",
            "Records accepted by POST /v1/records",
            ingested_records.clone(),
        );
        registry.register(
            "rejected_records",
            "Records rejected by POST /v1/records",
            rejected_records.clone(),
        );
        registry.register("profiles", "Live unified profiles", profiles.clone());
        registry.register(
            "segment_evaluation_seconds",
            "Time to plan and evaluate a segment expression",
            evaluation.clone(),
        );
        let count_cache_hits = Counter::default();
        let count_cache_misses = Counter::default();
        registry.register(
            "segment_count_cache_hits",
            "Segment counts answered from the cache (same expression, data generation, and an evaluation time it is exact for)",
            count_cache_hits.clone(),
        );
        registry.register(
            "segment_count_cache_misses",
            "Segment counts evaluated because the cache had no exact answer",
            count_cache_misses.clone(),
        );
        let pushed_identifiers = Family::<DestinationLabels, Counter>::default();
        let push_retries = Family::<DestinationLabels, Counter>::default();
        let push_failures = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "pushed_identifiers",
            "Identifiers (adds and removes) pushed to a platform and acknowledged",
            pushed_identifiers.clone(),
        );
        registry.register(
            "push_retries",
            "Retries of push requests after transient platform failures",
            push_retries.clone(),
        );
        registry.register(
            "push_failures",
            "Pushes that stopped without acknowledging",
            push_failures.clone(),
        );
        Metrics {
            pushed_identifiers,
            push_retries,
            push_failures,
            registry,
            requests,
            latency,
            ingested_records,
            rejected_records,
            profiles,
            evaluation,
            count_cache_hits,
            count_cache_misses,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
