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
    /// Verification jobs handed out by `POST /v1/verification/lease`.
    jobs_leased: AtomicU64,
    /// Verification results by outcome (`confirmed`, `refuted`, `failed`,
    /// `not_found`, `retry`, `duplicate`).
    job_results: Mutex<BTreeMap<&'static str, u64>>,
    /// Enqueue-to-result latencies (ms) of the last finished jobs.
    job_latencies: Mutex<std::collections::VecDeque<i64>>,
}

/// Finished-job latencies kept for the p50/p99 gauges.
const LATENCY_WINDOW: usize = 1024;

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

    /// Counts leased verification jobs.
    pub fn jobs_leased(&self, n: usize) {
        self.jobs_leased
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one verification result; a finished job also records its
    /// queue latency (enqueue to result).
    pub fn job_result(&self, outcome: &'static str, latency_ms: Option<i64>) {
        if let Ok(mut m) = self.job_results.lock() {
            *m.entry(outcome).or_default() += 1;
        }
        if let (Some(ms), Ok(mut l)) = (latency_ms, self.job_latencies.lock()) {
            if l.len() >= LATENCY_WINDOW {
                l.pop_front();
            }
            l.push_back(ms.max(0));
        }
    }

    /// p50 and p99 (ms) of the recorded verification latencies.
    pub fn job_latency_quantiles(&self) -> Option<(i64, i64)> {
        let mut v: Vec<i64> = self.job_latencies.lock().ok()?.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let q = |p: usize| v[((v.len() - 1) * p).div_ceil(100)];
        Some((q(50), q(99)))
    }

    /// The verification part of the exposition: queue depth (from the
    /// store), leases, results, latency, and the trust decisions.
    pub fn render_verification(&self, depth: Option<&crate::store::verify::QueueDepth>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP pricewatch_verification_queue_depth Open verification jobs by state and criticality.\n",
        );
        out.push_str("# TYPE pricewatch_verification_queue_depth gauge\n");
        if let Some(d) = depth {
            use crate::store::verify::JobState;
            for state in [JobState::Queued, JobState::Leased, JobState::Holding] {
                for critical in [false, true] {
                    let n = d
                        .open
                        .iter()
                        .filter(|(s, c, _)| *s == state && *c == critical)
                        .map(|e| e.2)
                        .sum::<i64>();
                    let _ = writeln!(
                        out,
                        "pricewatch_verification_queue_depth{{state=\"{}\",critical=\"{critical}\"}} {n}",
                        state.as_str()
                    );
                }
            }
        }
        out.push_str("# HELP pricewatch_verification_leased_total Verification jobs leased.\n");
        out.push_str("# TYPE pricewatch_verification_leased_total counter\n");
        let _ = writeln!(
            out,
            "pricewatch_verification_leased_total {}",
            self.jobs_leased.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP pricewatch_verification_results_total Verification results by outcome.\n",
        );
        out.push_str("# TYPE pricewatch_verification_results_total counter\n");
        if let Ok(m) = self.job_results.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pricewatch_verification_results_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP pricewatch_verification_latency_seconds Enqueue-to-result latency of the last 1024 finished jobs.\n",
        );
        out.push_str("# TYPE pricewatch_verification_latency_seconds summary\n");
        if let Some((p50, p99)) = self.job_latency_quantiles() {
            for (q, v) in [("0.5", p50), ("0.99", p99)] {
                let _ = writeln!(
                    out,
                    "pricewatch_verification_latency_seconds{{quantile=\"{q}\"}} {}",
                    v as f64 / 1000.0
                );
            }
        }
        out.push_str(
            "# HELP pricewatch_trust_decisions_total Stored reports by trust decision status and reason.\n",
        );
        out.push_str("# TYPE pricewatch_trust_decisions_total counter\n");
        for ((status, reason), n) in crate::store::verify::decision_counts() {
            let _ = writeln!(
                out,
                "pricewatch_trust_decisions_total{{status=\"{status}\",reason=\"{reason}\"}} {n}"
            );
        }
        out
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
