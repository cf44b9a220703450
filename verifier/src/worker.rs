//! The job loop: lease jobs from the backend, verify each (fetch, extract,
//! sign an observation), post the result; at most `concurrency` jobs at
//! once; stop gracefully (stop leasing, finish and report the jobs in
//! hand) when told to.
//!
//! Judgement calls:
//! - A job whose marketplace breaker is open is answered at once with
//!   `failed` (nothing was fetched) rather than held until the cool-down:
//!   holding it would pin a concurrency slot, and the backend's retry
//!   policy already decides when to try again.
//! - A product page without an offer for the job's condition still yields
//!   an `observed` result: price empty, availability and seller unknown.
//!   "This product has no used offer" is an answer.
//! - If posting a result fails, it is logged and dropped: the lease
//!   expires and the backend hands the job out again.
//! - A job still running at 90% of its lease is abandoned and reported
//!   `failed` while the lease still holds.

use crate::api::{ApiClient, ApiError, Job, JobOutcome};
use crate::clock::unix_ms;
use crate::fetch::{FetchOutcome, Fetcher};
use rand::{Rng, RngCore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use wasm_core::asin::Asin;
use wasm_core::extract::Extraction;
use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{
    b64u_encode, normalize_title, Keypair, Observation, ReportMeta, NONCE_LEN,
};
use wasm_core::types::{Availability, Seller};

/// The `meta.extractor` value of the verifier's reports.
pub const EXTRACTOR_VERSION: &str = concat!("pricewatch-verifier/", env!("CARGO_PKG_VERSION"));

/// Job-loop settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs worked at once.
    pub concurrency: usize,
    /// Lease length asked for, in milliseconds.
    pub lease_ms: u64,
    /// Wait between leases when the queue is empty, in milliseconds.
    pub idle_poll_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            lease_ms: 120_000,
            idle_poll_ms: 2_000,
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Jobs leased.
    pub leased: u64,
    /// Results the backend accepted.
    pub posted: u64,
    /// Results that could not be posted.
    pub post_errors: u64,
    /// Lease calls that failed.
    pub lease_errors: u64,
}

/// A verifier: its key, the backend, the fetcher.
pub struct Verifier {
    api: ApiClient,
    fetcher: Arc<Fetcher>,
    key: Arc<Keypair>,
    config: WorkerConfig,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("api", &self.api)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Assembles a verifier.
    pub fn new(
        api: ApiClient,
        fetcher: Arc<Fetcher>,
        key: Arc<Keypair>,
        config: WorkerConfig,
    ) -> Verifier {
        Verifier {
            api,
            fetcher,
            key,
            config,
        }
    }

    /// The fetcher (for inspection).
    pub fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }

    /// Works one job: fetch, extract, sign. Never fails: every problem is
    /// an outcome.
    pub async fn verify(&self, job: &Job) -> JobOutcome {
        let (Some(m), Some(asin)) = (
            Marketplace::from_domain(&job.marketplace),
            Asin::parse(&job.asin),
        ) else {
            tracing::warn!(job = %job.id, asin = %job.asin, marketplace = %job.marketplace, "job names an unknown marketplace or a malformed ASIN");
            return JobOutcome::Failed;
        };
        let outcome = self.fetcher.fetch_product(m, &asin).await;
        tracing::info!(job = %job.id, asin = %asin, marketplace = %m, outcome = ?outcome_name(&outcome), "verified");
        match outcome {
            FetchOutcome::Product(extraction) => {
                match observation(&self.key, job, m, &asin, &extraction, unix_ms()) {
                    Ok(report) => JobOutcome::Observed(Box::new(report)),
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = %e, "cannot sign the observation");
                        JobOutcome::Failed
                    }
                }
            }
            FetchOutcome::NotFound => JobOutcome::NotFound,
            FetchOutcome::Captcha => JobOutcome::Captcha,
            FetchOutcome::Blocked => JobOutcome::Blocked,
            FetchOutcome::BreakerOpen { .. } | FetchOutcome::Failed(_) => JobOutcome::Failed,
        }
    }

    /// Runs until `stop` turns true, then finishes the jobs in hand.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> RunStats {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks: JoinSet<Result<(), ApiError>> = JoinSet::new();
        let mut stats = RunStats::default();
        let mut lease_failures = 0u32;
        // A dropped sender counts as a stop request (nobody could send one).
        let mut stopping = false;
        while !stopping && !*stop.borrow() {
            while let Some(done) = tasks.try_join_next() {
                count(&mut stats, done);
            }
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    done = tasks.join_next() => if let Some(done) = done { count(&mut stats, done) },
                    changed = stop.changed() => stopping = changed.is_err(),
                }
                continue;
            }
            let wait_ms = match self.api.lease(free, self.config.lease_ms).await {
                Ok(jobs) if jobs.is_empty() => {
                    lease_failures = 0;
                    self.config.idle_poll_ms
                }
                Ok(jobs) => {
                    lease_failures = 0;
                    stats.leased += jobs.len() as u64;
                    for job in jobs {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let this = self.clone();
                        tasks.spawn(async move {
                            // A result after the lease has expired may be
                            // refused (the job is someone else's by then):
                            // give up at 90% of the lease.
                            let budget = Duration::from_millis(this.config.lease_ms / 10 * 9);
                            let outcome = match tokio::time::timeout(budget, this.verify(&job)).await {
                                Ok(outcome) => outcome,
                                Err(_) => {
                                    tracing::warn!(job = %job.id, "job ran out of its lease; reporting failed");
                                    JobOutcome::Failed
                                }
                            };
                            let posted = this.api.post_result(&job.id, &outcome).await;
                            if let Err(e) = &posted {
                                tracing::warn!(job = %job.id, error = %e, "posting the result failed; the lease will expire");
                            }
                            drop(permit);
                            posted
                        });
                    }
                    0
                }
                Err(e) => {
                    stats.lease_errors += 1;
                    lease_failures += 1;
                    // Exponential backoff with full jitter, up to a minute.
                    let ceil = (1000u64 << lease_failures.min(6)).min(60_000);
                    let wait = rand::thread_rng().gen_range(ceil / 2..=ceil);
                    tracing::warn!(error = %e, wait_ms = wait, "leasing failed");
                    wait
                }
            };
            if wait_ms > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                    changed = stop.changed() => stopping = changed.is_err(),
                }
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "stopping: finishing the jobs in hand"
        );
        while let Some(done) = tasks.join_next().await {
            count(&mut stats, done);
        }
        stats
    }
}

/// A verifier running on the current tokio runtime (e.g. the one embedded
/// in `pricewatch serve`).
#[derive(Debug)]
pub struct RunningVerifier {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<RunStats>,
}

impl RunningVerifier {
    /// Starts `verifier`'s job loop as a task.
    pub fn spawn(verifier: Arc<Verifier>) -> RunningVerifier {
        let (stop, rx) = watch::channel(false);
        RunningVerifier {
            stop,
            task: tokio::spawn(verifier.run(rx)),
        }
    }

    /// Stops leasing, waits for the jobs in hand, returns the counters.
    pub async fn stop(self) -> RunStats {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }

    /// Like [`RunningVerifier::stop`], but gives the jobs in hand only
    /// `grace`; then the loop is cancelled (unposted jobs return to the
    /// backend's queue when their leases expire) and `None` is returned.
    pub async fn stop_within(mut self, grace: Duration) -> Option<RunStats> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(done) => Some(done.unwrap_or_default()),
            Err(_) => {
                self.task.abort();
                None
            }
        }
    }
}

fn count(stats: &mut RunStats, done: Result<Result<(), ApiError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => stats.posted += 1,
        _ => stats.post_errors += 1,
    }
}

fn outcome_name(o: &FetchOutcome) -> &'static str {
    match o {
        FetchOutcome::Product(_) => "product",
        FetchOutcome::NotFound => "not_found",
        FetchOutcome::Captcha => "captcha",
        FetchOutcome::Blocked => "blocked",
        FetchOutcome::BreakerOpen { .. } => "breaker_open",
        FetchOutcome::Failed(_) => "failed",
    }
}

/// Builds and signs the observation of `job` from an extraction.
pub fn observation(
    key: &Keypair,
    job: &Job,
    m: Marketplace,
    asin: &Asin,
    extraction: &Extraction,
    now_ms: i64,
) -> Result<wasm_core::protocol::Report, wasm_core::protocol::FieldError> {
    let offer = extraction
        .offers
        .iter()
        .find(|o| o.condition == job.condition);
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let obs = Observation {
        key: key.public_b64u(),
        asin: asin.as_str().to_string(),
        marketplace: m.domain().to_string(),
        condition: job.condition,
        price_minor: offer.and_then(|o| o.price_minor),
        currency: offer
            .and_then(|o| o.currency.clone())
            .unwrap_or_else(|| m.currency().code().to_string()),
        availability: offer.map_or(Availability::Unknown, |o| o.availability),
        seller: offer.map_or(Seller::Unknown, |o| o.seller),
        title: normalize_title(extraction.title.as_deref().unwrap_or("")),
        observed_at: now_ms,
        nonce: b64u_encode(&nonce),
    };
    let mut report = obs.into_report(key)?;
    report.meta = Some(ReportMeta {
        extractor: Some(EXTRACTOR_VERSION.to_string()),
        rule: offer.map(|o| o.rule.to_string()),
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JobId;
    use wasm_core::extract::{Offer, PageKind};
    use wasm_core::types::Condition;

    fn job(condition: Condition) -> Job {
        Job {
            id: JobId("1".into()),
            asin: "B08N5WRWNW".into(),
            marketplace: "amazon.de".into(),
            condition,
            reason: None,
            priority: None,
            enqueued_at: None,
        }
    }

    fn extraction() -> Extraction {
        Extraction {
            page: PageKind::Product,
            asin: Some("B08N5WRWNW".into()),
            marketplace: Some("amazon.de".into()),
            title: Some("  Echo   Dot\n(4. Gen) ".into()),
            offers: vec![Offer {
                condition: Condition::New,
                price_minor: Some(4999),
                currency: Some("EUR".into()),
                availability: Availability::InStock,
                seller: Seller::Amazon,
                rule: "buybox",
            }],
        }
    }

    #[test]
    fn observation_is_signed_and_carries_the_offer() {
        let key = Keypair::from_seed(&[3; 32]);
        let asin = Asin::parse("B08N5WRWNW").expect("asin");
        let report = observation(
            &key,
            &job(Condition::New),
            Marketplace::AMAZON_DE,
            &asin,
            &extraction(),
            1_763_800_000_000,
        )
        .expect("signs");
        report.verify().expect("signature verifies");
        assert_eq!(report.obs.price_minor, Some(4999));
        assert_eq!(report.obs.currency, "EUR");
        assert_eq!(report.obs.title, "Echo Dot (4. Gen)");
        assert_eq!(report.obs.key, key.public_b64u());
        assert_eq!(report.meta.and_then(|m| m.rule).as_deref(), Some("buybox"));
    }

    #[tokio::test]
    async fn stop_within_returns_the_counters_while_leasing_fails() {
        let key = Arc::new(Keypair::from_seed(&[4; 32]));
        // Nothing listens on port 9: every lease fails and backs off.
        let api = ApiClient::new("http://127.0.0.1:9", key.clone()).expect("client");
        let fetcher = Fetcher::new(
            crate::fetch::FetcherConfig::default(),
            Arc::new(crate::clock::SystemClock::new()),
            Arc::new(crate::extract::WasmCoreExtractor),
        )
        .expect("fetcher");
        let v = Arc::new(Verifier::new(
            api,
            Arc::new(fetcher),
            key,
            WorkerConfig::default(),
        ));
        let running = RunningVerifier::spawn(v);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let stats = running
            .stop_within(Duration::from_secs(5))
            .await
            .expect("stops within the grace: nothing in hand");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(stats.lease_errors >= 1, "{stats:?}");
        assert_eq!(stats.leased, 0);
    }

    #[test]
    fn missing_condition_gives_an_empty_price() {
        let key = Keypair::from_seed(&[3; 32]);
        let asin = Asin::parse("B08N5WRWNW").expect("asin");
        let report = observation(
            &key,
            &job(Condition::Used),
            Marketplace::AMAZON_DE,
            &asin,
            &extraction(),
            1,
        )
        .expect("signs");
        report.verify().expect("signature verifies");
        assert_eq!(report.obs.price_minor, None);
        assert_eq!(report.obs.availability, Availability::Unknown);
        assert_eq!(report.obs.currency, "EUR");
    }
}
