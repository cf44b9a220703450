//! The fetcher: one product page per call, politely.
//!
//! For each attempt, in this order: the marketplace's circuit breaker must
//! admit it; the marketplace's token bucket must give a token (waiting if
//! need be); a proxy is drawn from the pool (when proxies are configured).
//! The request carries a desktop browser's headers, the marketplace's
//! `Accept-Language` and that marketplace's cookie jar. The answer is
//! classified: robot check or block (no retry: the breaker and the proxy
//! are told), clean 404, transient trouble (5xx, 429, timeout, connection
//! error: retried with backoff), or a page for the extractor.
//!
//! Base-URL overrides (`amazon.com=https://127.0.0.1:9443`) send the
//! request to another origin but keep the store's `Host` header
//! (`www.amazon.com`) and hand the extractor the real store URL, so a test
//! server can serve several marketplaces on one port.

use crate::backoff::{parse_retry_after_ms, Backoff};
use crate::breaker::{Admission, BreakerConfig, CircuitBreaker, Verdict};
use crate::captcha::{self, Refusal};
use crate::clock::Clock;
use crate::cookies::CookieJar;
use crate::extract::Extractor;
use crate::proxy::{NoProxy, ProxyHealth, ProxyOutcome, ProxyPool, ProxyPoolConfig};
use crate::rate::{RateConfig, RateLimiter};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasm_core::asin::Asin;
use wasm_core::extract::{Extraction, PageKind};
use wasm_core::marketplace::Marketplace;

/// A desktop Chrome on Windows, the most common Amazon visitor.
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Largest page body read, in bytes (real product pages are 1-3 MB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Redirects followed per attempt (only within the same store).
const MAX_REDIRECTS: usize = 3;

/// Longest wait for a proxy to come out of its cool-down before giving up
/// on the job.
const MAX_PROXY_WAIT_MS: u64 = 30_000;

/// Fetcher settings. `Debug` leaves out the proxy URLs (they may carry
/// credentials) and the certificates.
#[derive(Clone)]
pub struct FetcherConfig {
    /// Base-URL overrides per marketplace (no trailing slash).
    pub bases: HashMap<Marketplace, String>,
    /// Outgoing proxies; empty means direct connections.
    pub proxies: Vec<String>,
    /// Token buckets.
    pub rates: RateConfig,
    /// Retry policy for transient failures.
    pub backoff: Backoff,
    /// Breaker thresholds.
    pub breaker: BreakerConfig,
    /// Proxy pool tuning.
    pub proxy_pool: ProxyPoolConfig,
    /// Extra trusted root certificates (PEM), e.g. a test server's.
    pub root_certs_pem: Vec<Vec<u8>>,
    /// Per-request timeout, in milliseconds.
    pub request_timeout_ms: u64,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Seed of the random choices (proxy picks, backoff jitter); `None`
    /// seeds from the OS. Tests set it to make proxy choice repeatable.
    pub rng_seed: Option<u64>,
}

impl fmt::Debug for FetcherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetcherConfig")
            .field("bases", &self.bases)
            .field(
                "proxies",
                &format_args!("[{} redacted]", self.proxies.len()),
            )
            .field("rates", &self.rates)
            .field("backoff", &self.backoff)
            .field("breaker", &self.breaker)
            .field("proxy_pool", &self.proxy_pool)
            .field("root_certs", &self.root_certs_pem.len())
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("user_agent", &self.user_agent)
            .field("rng_seed", &self.rng_seed)
            .finish()
    }
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            bases: HashMap::new(),
            proxies: Vec::new(),
            rates: RateConfig {
                // Judgement call: one page per second per store unless told
                // otherwise; a verifier is a guest.
                default: Some(crate::rate::Rate {
                    tokens: 1,
                    per_ms: 1000,
                    burst: 1,
                }),
                per_marketplace: HashMap::new(),
            },
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            proxy_pool: ProxyPoolConfig::default(),
            root_certs_pem: Vec::new(),
            request_timeout_ms: 20_000,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            rng_seed: None,
        }
    }
}

/// What fetching one product page came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A product page, extracted.
    Product(Box<Extraction>),
    /// Amazon says there is no such product.
    NotFound,
    /// A robot check.
    Captcha,
    /// An explicit block (403), or every proxy is retired or cooling down.
    Blocked,
    /// The marketplace's breaker is open: nothing was sent.
    BreakerOpen {
        /// When it may be tried again.
        retry_in_ms: u64,
    },
    /// Anything else, with a short reason.
    Failed(String),
}

/// Why the fetcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// A proxy URL or certificate was refused.
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The fetcher. Cheap to share behind an `Arc`; all state is internal.
pub struct Fetcher {
    config: FetcherConfig,
    clock: Arc<dyn Clock>,
    /// One client per proxy (index = pool index), or one direct client.
    clients: Vec<reqwest::Client>,
    pool: Option<Mutex<ProxyPool>>,
    limiter: RateLimiter,
    breakers: Mutex<HashMap<Marketplace, CircuitBreaker>>,
    jars: Mutex<HashMap<Marketplace, CookieJar>>,
    extractor: Arc<dyn Extractor>,
    rng: Mutex<StdRng>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Releases an admitted half-open probe that ended without a verdict.
struct ProbeGuard<'a> {
    fetcher: &'a Fetcher,
    m: Marketplace,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.fetcher.abandon(self.m);
        }
    }
}

/// How one attempt ended.
enum Attempt {
    Done(FetchOutcome),
    Retry {
        reason: String,
        retry_after_ms: Option<u64>,
    },
}

impl Fetcher {
    /// Builds the fetcher and its HTTP clients.
    pub fn new(
        config: FetcherConfig,
        clock: Arc<dyn Clock>,
        extractor: Arc<dyn Extractor>,
    ) -> Result<Fetcher, FetcherError> {
        let mut certs = Vec::new();
        for pem in &config.root_certs_pem {
            let found = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| FetcherError::Config(format!("invalid CA certificate: {e}")))?;
            if found.is_empty() {
                return Err(FetcherError::Config("no certificate in the CA PEM".into()));
            }
            certs.extend(found);
        }
        let builder = |proxy: Option<&str>| -> Result<reqwest::Client, FetcherError> {
            let mut b = reqwest::Client::builder()
                .timeout(Duration::from_millis(config.request_timeout_ms))
                .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(10_000)))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(config.user_agent.clone());
            for c in &certs {
                b = b.add_root_certificate(c.clone());
            }
            b = match proxy {
                Some(url) => b.proxy(reqwest::Proxy::all(url).map_err(|e| {
                    FetcherError::Config(format!(
                        "invalid proxy {:?}: {e}",
                        crate::proxy::redact(url)
                    ))
                })?),
                None => b.no_proxy(),
            };
            Ok(b.build()?)
        };
        let (clients, pool) = if config.proxies.is_empty() {
            (vec![builder(None)?], None)
        } else {
            let clients = config
                .proxies
                .iter()
                .map(|p| builder(Some(p)))
                .collect::<Result<Vec<_>, _>>()?;
            let pool = ProxyPool::new(config.proxies.iter().cloned(), config.proxy_pool);
            (clients, Some(Mutex::new(pool)))
        };
        let config_seed = config.rng_seed;
        Ok(Fetcher {
            limiter: RateLimiter::new(config.rates.clone(), clock.clone()),
            config,
            clock,
            clients,
            pool,
            breakers: Mutex::new(HashMap::new()),
            jars: Mutex::new(HashMap::new()),
            extractor,
            rng: Mutex::new(config_rng(config_seed)),
        })
    }

    /// The product page URL as the store knows it.
    pub fn store_url(m: Marketplace, asin: &Asin) -> String {
        format!("https://www.{}/dp/{}", m.domain(), asin.as_str())
    }

    /// The breaker state of a marketplace (closed when never used).
    pub fn breaker_state(&self, m: Marketplace) -> crate::breaker::BreakerState {
        lock(&self.breakers)
            .get(&m)
            .map_or(CircuitBreaker::new(self.config.breaker).state(), |b| {
                b.state()
            })
    }

    /// The proxies' health (empty without proxies).
    pub fn proxy_health(&self) -> Vec<ProxyHealth> {
        self.pool
            .as_ref()
            .map(|p| lock(p).health().to_vec())
            .unwrap_or_default()
    }

    /// A copy of a marketplace's cookie jar.
    pub fn cookies(&self, m: Marketplace) -> CookieJar {
        lock(&self.jars).get(&m).cloned().unwrap_or_default()
    }

    /// Fetches and extracts the product page of `asin` on `m`.
    pub async fn fetch_product(&self, m: Marketplace, asin: &Asin) -> FetchOutcome {
        let mut retry = 0u32;
        loop {
            match self.attempt(m, asin).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Retry {
                    reason,
                    retry_after_ms,
                } => {
                    if retry >= self.config.backoff.max_retries {
                        return FetchOutcome::Failed(format!(
                            "{reason} (after {} attempts)",
                            retry + 1
                        ));
                    }
                    let wait = {
                        let mut rng = lock(&self.rng);
                        self.config
                            .backoff
                            .delay_ms(retry, retry_after_ms, &mut *rng)
                    };
                    tracing::debug!(marketplace = %m, asin = %asin, %reason, retry, wait_ms = wait, "retrying");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    retry += 1;
                }
            }
        }
    }

    fn admit(&self, m: Marketplace) -> Admission {
        let now = self.clock.now_ms();
        lock(&self.breakers)
            .entry(m)
            .or_insert_with(|| CircuitBreaker::new(self.config.breaker))
            .admit(now)
    }

    fn record(&self, m: Marketplace, proxy: Option<usize>, verdict: Verdict) {
        let now = self.clock.now_ms();
        if let Some(b) = lock(&self.breakers).get_mut(&m) {
            b.record(verdict, now);
        }
        if let (Some(pool), Some(i)) = (&self.pool, proxy) {
            let outcome = match verdict {
                Verdict::Success => ProxyOutcome::Success,
                Verdict::Failure => ProxyOutcome::Failure,
                Verdict::Captcha => ProxyOutcome::Blocked,
            };
            lock(pool).record(i, outcome, now);
        }
    }

    fn abandon(&self, m: Marketplace) {
        if let Some(b) = lock(&self.breakers).get_mut(&m) {
            b.abandon_probe();
        }
    }

    /// Picks a proxy, waiting a little for a cool-down to end.
    async fn pick_proxy(&self) -> Result<Option<usize>, FetchOutcome> {
        let Some(pool) = &self.pool else {
            return Ok(None);
        };
        loop {
            let now = self.clock.now_ms();
            let choice = {
                let mut rng = lock(&self.rng);
                lock(pool).choose(now, &mut *rng)
            };
            match choice {
                Ok(i) => return Ok(Some(i)),
                Err(NoProxy::CoolingDown { until_ms }) if until_ms - now <= MAX_PROXY_WAIT_MS => {
                    tokio::time::sleep(Duration::from_millis(until_ms - now)).await;
                }
                Err(_) => return Err(FetchOutcome::Blocked),
            }
        }
    }

    async fn attempt(&self, m: Marketplace, asin: &Asin) -> Attempt {
        let admission = self.admit(m);
        if let Admission::Rejected { retry_in_ms } = admission {
            return Attempt::Done(FetchOutcome::BreakerOpen { retry_in_ms });
        }
        // If this future is dropped mid-way (a job timeout), a half-open
        // probe must not hold the breaker's only probe slot forever.
        let mut guard = ProbeGuard {
            fetcher: self,
            m,
            armed: admission == Admission::Probe,
        };
        self.limiter.acquire(m).await;
        let proxy = match self.pick_proxy().await {
            Ok(p) => p,
            Err(outcome) => return Attempt::Done(outcome),
        };
        let client = proxy
            .and_then(|i| self.clients.get(i))
            .or_else(|| self.clients.first());
        let Some(client) = client else {
            return Attempt::Done(FetchOutcome::Failed("no HTTP client".into()));
        };
        let (attempt, verdict) = self.exchange(client, m, asin).await;
        guard.armed = false;
        self.record(m, proxy, verdict);
        attempt
    }

    /// One request (following same-store redirects) and its classification.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        m: Marketplace,
        asin: &Asin,
    ) -> (Attempt, Verdict) {
        let retry = |reason: String, retry_after_ms: Option<u64>| {
            (
                Attempt::Retry {
                    reason,
                    retry_after_ms,
                },
                Verdict::Failure,
            )
        };
        let store_url = Self::store_url(m, asin);
        let mut path = format!("/dp/{}", asin.as_str());
        let mut redirects = 0;
        let (status, headers, body) = loop {
            let resp = match self.send(client, m, &path).await {
                Ok(r) => r,
                Err(e) => return retry(describe(&e), None),
            };
            self.take_cookies(m, resp.headers());
            let status = resp.status();
            if status.is_redirection() && redirects < MAX_REDIRECTS {
                if let Some(next) = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| same_store_path(m, loc))
                {
                    redirects += 1;
                    path = next;
                    continue;
                }
            }
            let headers = resp.headers().clone();
            match read_body(resp).await {
                Ok(body) => break (status.as_u16(), headers, body),
                Err(reason) => return retry(reason, None),
            }
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let done = |outcome, verdict| (Attempt::Done(outcome), verdict);
        match captcha::detect(status, header, &body) {
            Some(Refusal::Captcha) => return done(FetchOutcome::Captcha, Verdict::Captcha),
            Some(Refusal::Blocked) => return done(FetchOutcome::Blocked, Verdict::Captcha),
            None => {}
        }
        match status {
            200..=299 => {}
            404 | 410 => return done(FetchOutcome::NotFound, Verdict::Success),
            429 | 500 | 502 | 503 | 504 => {
                return retry(
                    format!("status {status}"),
                    header("retry-after").and_then(parse_retry_after_ms),
                )
            }
            _ => {
                return done(
                    FetchOutcome::Failed(format!("status {status}")),
                    Verdict::Failure,
                )
            }
        }
        // Extraction is CPU work (about 20 ms for a 3 MB page): keep it off
        // the async worker threads.
        let extractor = self.extractor.clone();
        let extraction = match tokio::task::spawn_blocking(move || {
            extractor.extract(&body, &store_url)
        })
        .await
        {
            Ok(extraction) => extraction,
            Err(e) => {
                tracing::error!(marketplace = %m, asin = %asin, error = %e, "extraction failed");
                return done(
                    FetchOutcome::Failed("extraction failed".into()),
                    Verdict::Success,
                );
            }
        };
        match extraction.page {
            PageKind::Captcha => done(FetchOutcome::Captcha, Verdict::Captcha),
            PageKind::NotFound => done(FetchOutcome::NotFound, Verdict::Success),
            PageKind::Product => done(
                FetchOutcome::Product(Box::new(extraction)),
                Verdict::Success,
            ),
            // The store answered, so the breaker sees a success; a page we
            // cannot read is a layout problem, not a reason to back off.
            PageKind::Unknown => done(
                FetchOutcome::Failed("unrecognised page".into()),
                Verdict::Success,
            ),
        }
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        m: Marketplace,
        path: &str,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let (base, host) = match self.config.bases.get(&m) {
            Some(base) => (base.clone(), Some(format!("www.{}", m.domain()))),
            None => (format!("https://www.{}", m.domain()), None),
        };
        let mut req = client
            .get(format!("{base}{path}"))
            .header(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            )
            .header("accept-language", accept_language(m))
            .header("upgrade-insecure-requests", "1")
            .header("sec-fetch-dest", "document")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-site", "none")
            .header("sec-fetch-user", "?1");
        if let Some(host) = host {
            req = req.header("host", host);
        }
        if let Some(cookie) = lock(&self.jars).get(&m).and_then(CookieJar::header) {
            req = req.header("cookie", cookie);
        }
        req.send().await
    }

    fn take_cookies(&self, m: Marketplace, headers: &reqwest::header::HeaderMap) {
        let mut jars = lock(&self.jars);
        let jar = jars.entry(m).or_default();
        for v in headers.get_all("set-cookie") {
            if let Ok(v) = v.to_str() {
                jar.store(v);
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // The full chain: hyper's "connection closed before message
        // completed" sits in the source.
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<String, String> {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(format!("page larger than {MAX_BODY_BYTES} bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(describe(&e)),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The path of a redirect target when it stays in the same store.
fn same_store_path(m: Marketplace, location: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if Marketplace::from_host(host) != Some(m) {
        return None;
    }
    Some(if path.is_empty() {
        "/".into()
    } else {
        path.into()
    })
}

/// `Accept-Language` a local shopper's browser sends.
pub fn accept_language(m: Marketplace) -> &'static str {
    match m.domain() {
        "amazon.co.uk" => "en-GB,en;q=0.9",
        "amazon.de" => "de-DE,de;q=0.9,en;q=0.8",
        "amazon.fr" => "fr-FR,fr;q=0.9,en;q=0.8",
        "amazon.it" => "it-IT,it;q=0.9,en;q=0.8",
        "amazon.es" => "es-ES,es;q=0.9,en;q=0.8",
        "amazon.nl" => "nl-NL,nl;q=0.9,en;q=0.8",
        "amazon.se" => "sv-SE,sv;q=0.9,en;q=0.8",
        "amazon.pl" => "pl-PL,pl;q=0.9,en;q=0.8",
        "amazon.com.be" => "fr-BE,fr;q=0.9,nl-BE;q=0.8,nl;q=0.7,en;q=0.6",
        "amazon.ca" => "en-CA,en;q=0.9,fr-CA;q=0.8",
        "amazon.com.mx" => "es-MX,es;q=0.9,en;q=0.8",
        "amazon.com.br" => "pt-BR,pt;q=0.9,en;q=0.8",
        "amazon.co.jp" => "ja-JP,ja;q=0.9,en;q=0.8",
        "amazon.in" => "en-IN,en;q=0.9,hi;q=0.8",
        "amazon.com.au" => "en-AU,en;q=0.9",
        "amazon.sg" => "en-SG,en;q=0.9",
        "amazon.ae" => "en-AE,en;q=0.9,ar;q=0.8",
        "amazon.sa" => "ar-SA,ar;q=0.9,en;q=0.8",
        "amazon.com.tr" => "tr-TR,tr;q=0.9,en;q=0.8",
        "amazon.eg" => "ar-EG,ar;q=0.9,en;q=0.8",
        _ => "en-US,en;q=0.9",
    }
}

/// The fetcher's random source: seeded when the config says so.
fn config_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marketplace_has_a_local_language() {
        for m in Marketplace::all() {
            let lang = accept_language(*m);
            assert!(lang.contains(";q="), "{m}: {lang}");
            if *m != Marketplace::AMAZON_COM {
                assert_ne!(lang, "en-US,en;q=0.9", "{m} falls back to the default");
            }
        }
        assert!(accept_language(Marketplace::AMAZON_DE).starts_with("de-DE"));
        assert!(accept_language(Marketplace::AMAZON_CO_JP).starts_with("ja-JP"));
    }

    #[test]
    fn debug_output_hides_proxy_credentials() {
        let config = FetcherConfig {
            proxies: vec!["http://user:secret@proxy.example:8080".into()],
            ..FetcherConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("[1 redacted]"), "{shown}");
    }

    #[test]
    fn redirects_stay_in_the_store() {
        let de = Marketplace::AMAZON_DE;
        assert_eq!(
            same_store_path(de, "/dp/B000000001?th=1").as_deref(),
            Some("/dp/B000000001?th=1")
        );
        assert_eq!(
            same_store_path(de, "https://www.amazon.de/Some-Slug/dp/B000000001").as_deref(),
            Some("/Some-Slug/dp/B000000001")
        );
        assert_eq!(
            same_store_path(de, "https://www.amazon.de").as_deref(),
            Some("/")
        );
        assert_eq!(
            same_store_path(de, "https://www.amazon.com/dp/B000000001"),
            None
        );
        assert_eq!(same_store_path(de, "//evil.example/dp/x"), None);
        assert_eq!(same_store_path(de, "https://evil.example/"), None);
    }
}
