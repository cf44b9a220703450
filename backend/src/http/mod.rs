//! The HTTP API of API.md: [`app`] builds the router from an [`AppState`];
//! tests drive it with `tower::ServiceExt::oneshot`, `serve` binds it.
//!
//! Layout: `error` (the one error type), `json` (strict JSON extractor),
//! `ingest` (keys and reports), `read` (products, history, search, config,
//! health), `page` (the HTML chart page), `signed` (PROTOCOL.md §3 signed
//! requests, `/v1/me`, verification endpoints), `metrics`, `limits` (rate
//! limits and the network-prefix hash).

pub mod alerts;
pub mod email;
pub mod error;
pub mod history_cache;
pub mod ingest;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod page;
pub mod read;
pub mod signed;
pub mod watches;

use crate::store::Storage;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashSet;
use std::sync::Arc;

/// Settings of the API (from `serve`'s flags; tests build them directly).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Leading zero bits required of a registration's proof of work.
    pub pow_difficulty: u32,
    /// Most reports in one `POST /v1/reports`.
    pub max_batch: usize,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Raw public keys whose reports are ground truth and who may use the
    /// verification endpoints.
    pub trusted_verifier_keys: HashSet<[u8; 32]>,
    /// Base URL used in links of the HTML page (e.g. `https://pw.example`);
    /// relative links when `None`.
    pub public_url: Option<String>,
    /// Rate limits.
    pub limits: limits::LimitConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            pow_difficulty: wasm_core::protocol::DEFAULT_POW_DIFFICULTY,
            max_batch: 100,
            max_body_bytes: 512 * 1024,
            trusted_verifier_keys: HashSet::new(),
            public_url: None,
            limits: limits::LimitConfig::default(),
        }
    }
}

/// A clock in Unix milliseconds (injectable for tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The storage.
    pub store: Arc<dyn Storage>,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Rate limiters.
    pub limiters: Arc<limits::Limiters>,
    /// Per-install secret for hashing network prefixes.
    pub net_secret: Arc<[u8; 32]>,
    /// Current time.
    pub clock: Clock,
    /// Alert delivery channels (watch API webhook checks, `/metrics`);
    /// `None` until `with_channels` (tests without delivery).
    pub channels: Option<Arc<crate::notify::Channels>>,
    /// Recent history bodies (see [`history_cache`]).
    pub history_cache: Arc<history_cache::HistoryCache>,
}

impl AppState {
    /// Builds the state: loads the install secret and registers the trusted
    /// verifier keys (so their reports count without a proof of work).
    pub async fn new(
        store: Arc<dyn Storage>,
        config: ApiConfig,
        clock: Clock,
    ) -> Result<Self, crate::store::StoreError> {
        let secret = store.install_secret().await?;
        let now = clock();
        for key in &config.trusted_verifier_keys {
            store.register_key(key, now, None).await?;
        }
        Ok(AppState {
            store,
            limiters: Arc::new(limits::Limiters::new(&config.limits)),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::default()),
            net_secret: Arc::new(secret),
            clock,
            channels: None,
            history_cache: Arc::default(),
        })
    }

    /// The same state with alert delivery channels.
    pub fn with_channels(mut self, channels: Arc<crate::notify::Channels>) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Now, in Unix ms.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    state
        .metrics
        .request(&route, &method, resp.status().as_u16());
    resp
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("not_found", "no such endpoint")
}

/// The router of API.md.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(read::healthz))
        .route("/metrics", get(read::metrics))
        .route("/v1/config", get(read::config))
        .route("/v1/keys", post(ingest::register))
        .route("/v1/reports", post(ingest::reports))
        .route("/v1/products/search", get(read::search))
        .route("/v1/products/{marketplace}/{asin}", get(read::summary))
        .route(
            "/v1/products/{marketplace}/{asin}/history",
            get(read::history),
        )
        .route("/p/{marketplace}/{asin}", get(page::product_page))
        .route("/v1/me", get(signed::me).delete(signed::erase_me))
        .route("/v1/watches", post(watches::create).get(watches::list))
        .route(
            "/v1/watches/{id}",
            axum::routing::put(watches::replace).delete(watches::delete),
        )
        .route("/v1/alerts", get(alerts::feed))
        .route("/v1/email/confirm", get(email::confirm))
        .route(
            "/v1/email/unsubscribe",
            get(email::unsubscribe_page).post(email::unsubscribe),
        )
        .route("/v1/verification/lease", post(signed::lease))
        .route("/v1/verification/{id}/result", post(signed::result))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
