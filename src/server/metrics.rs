//! Counters and an ack-latency histogram, rendered as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the ack latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 3.0,
];

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String), u64>,
    signature_failures: BTreeMap<String, u64>,
    duplicates: BTreeMap<String, u64>,
    ack_buckets: [u64; BUCKETS.len()],
    ack_count: u64,
    ack_sum: f64,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single increment, so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request to `route` that ended as `outcome`, with its ack time.
    pub fn request(&self, route: &str, outcome: &str, ack: Duration) {
        let mut inner = self.inner();
        *inner
            .requests
            .entry((route.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        let seconds = ack.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                inner.ack_buckets[i] += 1;
            }
        }
        inner.ack_count += 1;
        inner.ack_sum += seconds;
    }

    /// Counts a refused signature.
    pub fn signature_failure(&self, route: &str) {
        *self
            .inner()
            .signature_failures
            .entry(route.to_owned())
            .or_default() += 1;
    }

    /// Counts a repeated delivery.
    pub fn duplicate(&self, route: &str) {
        *self.inner().duplicates.entry(route.to_owned()).or_default() += 1;
    }

    /// Renders every metric, plus request counts by state given by the caller.
    pub fn render(&self, by_state: &BTreeMap<&'static str, u64>, in_flight: u64) -> String {
        let inner = self.inner();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP gantry_http_requests_total Inbound requests by route and outcome."
        );
        let _ = writeln!(out, "# TYPE gantry_http_requests_total counter");
        for ((route, outcome), n) in &inner.requests {
            let _ = writeln!(
                out,
                "gantry_http_requests_total{{route=\"{route}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP gantry_signature_failures_total Requests refused for their signature."
        );
        let _ = writeln!(out, "# TYPE gantry_signature_failures_total counter");
        for (route, n) in &inner.signature_failures {
            let _ = writeln!(
                out,
                "gantry_signature_failures_total{{route=\"{route}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP gantry_duplicates_total Deliveries seen before and not acted on again."
        );
        let _ = writeln!(out, "# TYPE gantry_duplicates_total counter");
        for (route, n) in &inner.duplicates {
            let _ = writeln!(out, "gantry_duplicates_total{{route=\"{route}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP gantry_ack_seconds Time from request to acknowledgement."
        );
        let _ = writeln!(out, "# TYPE gantry_ack_seconds histogram");
        for (bound, n) in BUCKETS.iter().zip(inner.ack_buckets) {
            let _ = writeln!(out, "gantry_ack_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "gantry_ack_seconds_bucket{{le=\"+Inf\"}} {}",
            inner.ack_count
        );
        let _ = writeln!(out, "gantry_ack_seconds_sum {}", inner.ack_sum);
        let _ = writeln!(out, "gantry_ack_seconds_count {}", inner.ack_count);
        let _ = writeln!(out, "# HELP gantry_requests Delivery requests by state.");
        let _ = writeln!(out, "# TYPE gantry_requests gauge");
        for (state, n) in by_state {
            let _ = writeln!(out, "gantry_requests{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP gantry_rollouts_in_flight Requests deploying or verifying now."
        );
        let _ = writeln!(out, "# TYPE gantry_rollouts_in_flight gauge");
        let _ = writeln!(out, "gantry_rollouts_in_flight {in_flight}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/slack/commands", "accepted", Duration::from_micros(700));
        m.request("/slack/commands", "accepted", Duration::from_millis(20));
        m.signature_failure("/slack/commands");
        m.duplicate("/slack/commands");
        let text = m.render(&BTreeMap::from([("succeeded", 2)]), 1);
        assert!(text.contains(
            "gantry_http_requests_total{route=\"/slack/commands\",outcome=\"accepted\"} 2"
        ));
        assert!(text.contains("gantry_ack_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("gantry_ack_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("gantry_ack_seconds_bucket{le=\"0.025\"} 2"));
        assert!(text.contains("gantry_ack_seconds_count 2"));
        assert!(text.contains("gantry_signature_failures_total{route=\"/slack/commands\"} 1"));
        assert!(text.contains("gantry_duplicates_total{route=\"/slack/commands\"} 1"));
        assert!(text.contains("gantry_requests{state=\"succeeded\"} 2"));
        assert!(text.contains("gantry_rollouts_in_flight 1"));
    }
}
