//! Prometheus text exposition, written by hand (a handful of counters and
//! one histogram do not need a metrics crate).

use super::error::DATABASE_ERRORS;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the ingest latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    reports: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency_counts: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts one HTTP request by route template, method and status.
    pub fn request(&self, route: &str, method: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), method.to_string(), status))
                .or_default() += 1;
        }
    }

    /// Counts one report result (`reason` is "" when there is none).
    pub fn report(&self, status: &'static str, reason: &'static str) {
        if let Ok(mut m) = self.reports.lock() {
            *m.entry((status, reason)).or_default() += 1;
        }
    }

    /// Records the latency of one `POST /v1/reports`.
    pub fn ingest_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP pricewatch_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE pricewatch_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pricewatch_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        out.push_str("# HELP pricewatch_reports_total Reports by result status and reason.\n");
        out.push_str("# TYPE pricewatch_reports_total counter\n");
        if let Ok(m) = self.reports.lock() {
            for ((status, reason), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pricewatch_reports_total{{status=\"{status}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP pricewatch_ingest_duration_seconds Latency of POST /v1/reports.\n");
        out.push_str("# TYPE pricewatch_ingest_duration_seconds histogram\n");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "pricewatch_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency_counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "pricewatch_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "pricewatch_ingest_duration_seconds_sum {sum}");
        let _ = writeln!(out, "pricewatch_ingest_duration_seconds_count {count}");
        out.push_str(
            "# HELP pricewatch_database_errors_total Database errors seen while serving.\n",
        );
        out.push_str("# TYPE pricewatch_database_errors_total counter\n");
        let _ = writeln!(
            out,
            "pricewatch_database_errors_total {}",
            DATABASE_ERRORS.load(Ordering::Relaxed)
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.request("/v1/reports", "POST", 200);
        m.request("/v1/reports", "POST", 200);
        m.report("accepted", "");
        m.ingest_latency(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains(
            "pricewatch_http_requests_total{route=\"/v1/reports\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(text.contains("pricewatch_reports_total{status=\"accepted\",reason=\"\"} 1"));
        assert!(text.contains("pricewatch_ingest_duration_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("pricewatch_ingest_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("pricewatch_ingest_duration_seconds_count 1"));
    }
}
