//! `pricewatch serve`: the backend HTTP server.
//!
//! Every flag also reads a `PRICEWATCH_*` environment variable. Startup
//! problems (a bad flag value, a database that cannot be opened, a port in
//! use) end the process with one line on stderr and a non-zero exit.
//! Ctrl-C or SIGTERM stops accepting connections, lets requests in flight
//! finish (a report is accepted only once its transaction committed, so
//! nothing accepted is lost), then closes the database.

use crate::http::limits::LimitConfig;
use crate::http::{app, system_clock, ApiConfig, AppState};
use crate::store::{self, redact_url, Storage, MIN_AUDIT_RETENTION_MS};
use anyhow::{anyhow, Context};
use clap::Args;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `serve`.
#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PRICEWATCH_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://PATH (folder and file are created) or postgres://...
    #[arg(
        long,
        env = "PRICEWATCH_DATABASE",
        default_value = "sqlite://data/pricewatch.db"
    )]
    pub database: String,
    /// Leading zero bits required of a key registration's proof of work.
    #[arg(long, env = "PRICEWATCH_POW_DIFFICULTY", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=64))]
    pub pow_difficulty: u32,
    /// A verifier public key (base64url) whose observations are ground
    /// truth; repeatable (comma-separated in the environment variable).
    #[arg(
        long = "trusted-verifier-key",
        env = "PRICEWATCH_TRUSTED_VERIFIER_KEYS",
        value_delimiter = ','
    )]
    pub trusted_verifier_keys: Vec<String>,
    /// Public base URL used in links (e.g. https://prices.example.org).
    #[arg(long, env = "PRICEWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Days the raw signed reports are kept for audit (at least 2).
    #[arg(long, env = "PRICEWATCH_AUDIT_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(2..=3650))]
    pub audit_retention_days: u32,
    /// Most reports per POST /v1/reports.
    #[arg(long, env = "PRICEWATCH_MAX_BATCH", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_batch: u32,
    /// Largest request body in bytes.
    #[arg(long, env = "PRICEWATCH_MAX_BODY_BYTES", default_value_t = 512 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u32,
    /// Reports per minute per client address (IPv4, IPv6 /64); 0 = no limit.
    #[arg(
        long,
        env = "PRICEWATCH_RATE_IP_REPORTS_PER_MIN",
        default_value_t = 2_400
    )]
    pub rate_ip_reports_per_min: u32,
    /// Reports per minute per key; 0 = no limit.
    #[arg(
        long,
        env = "PRICEWATCH_RATE_KEY_REPORTS_PER_MIN",
        default_value_t = 120
    )]
    pub rate_key_reports_per_min: u32,
    /// Key registrations per hour per client address; 0 = no limit.
    #[arg(
        long,
        env = "PRICEWATCH_RATE_IP_REGISTRATIONS_PER_HOUR",
        default_value_t = 20
    )]
    pub rate_ip_registrations_per_hour: u32,
    /// Signed requests per minute per client address; 0 = no limit.
    #[arg(
        long,
        env = "PRICEWATCH_RATE_IP_REQUESTS_PER_MIN",
        default_value_t = 600
    )]
    pub rate_ip_requests_per_min: u32,
    /// SMTP relay for alert mail (smtp://, smtps://, user:password@ allowed);
    /// without it no mail is sent (alerts still reach the extension feed
    /// and webhooks).
    #[arg(long, env = "PRICEWATCH_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// From address of alert mail.
    #[arg(
        long,
        env = "PRICEWATCH_SMTP_FROM",
        default_value = "pricewatch <alerts@localhost>"
    )]
    pub smtp_from: String,
    /// Do not run the notifier worker (alerts are then neither created nor
    /// delivered by this process).
    #[arg(long, env = "PRICEWATCH_NO_NOTIFIER")]
    pub no_notifier: bool,
    /// Allow http:// webhooks to loopback addresses (tests).
    #[arg(long, env = "PRICEWATCH_WEBHOOK_ALLOW_LOOPBACK_HTTP", hide = true)]
    pub webhook_allow_loopback_http: bool,
    /// How long alert mails to one address are collected into one digest (ms).
    #[arg(long, env = "PRICEWATCH_DIGEST_WINDOW_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u32).range(0..=3_600_000))]
    pub digest_window_ms: u32,
}

impl fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The database URL may hold a password.
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database))
            .field("pow_difficulty", &self.pow_difficulty)
            .field("trusted_verifier_keys", &self.trusted_verifier_keys)
            .field("public_url", &self.public_url)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("max_batch", &self.max_batch)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl ServeArgs {
    /// The API settings these flags describe.
    pub fn api_config(&self) -> anyhow::Result<ApiConfig> {
        let mut keys = HashSet::new();
        for k in &self.trusted_verifier_keys {
            let pk = wasm_core::protocol::PublicKey::from_b64u(k.trim())
                .map_err(|e| anyhow!("invalid --trusted-verifier-key {k:?}: {e}"))?;
            keys.insert(*pk.as_bytes());
        }
        Ok(ApiConfig {
            pow_difficulty: self.pow_difficulty,
            max_batch: self.max_batch as usize,
            max_body_bytes: self.max_body_bytes as usize,
            trusted_verifier_keys: keys,
            public_url: self.public_url.clone(),
            limits: LimitConfig {
                ip_reports_per_min: self.rate_ip_reports_per_min,
                key_reports_per_min: self.rate_key_reports_per_min,
                ip_registrations_per_hour: self.rate_ip_registrations_per_hour,
                ip_requests_per_min: self.rate_ip_requests_per_min,
            },
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: finishing requests in flight");
}

/// The maintenance job: purges audit rows past the retention and expired
/// request nonces, and forgets idle rate-limiter entries. Every 10 minutes.
async fn maintenance(store: Arc<dyn Storage>, state: AppState, retention_ms: i64) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = state.now();
        match store.purge(now - retention_ms, now).await {
            Ok(s) if s.reports > 0 || s.request_nonces > 0 => {
                tracing::info!(
                    reports = s.reports,
                    request_nonces = s.request_nonces,
                    "purged"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        state.limiters.shrink();
    }
}

/// The alert delivery channels from the flags.
fn notify_channels(
    args: &ServeArgs,
    state: &AppState,
    local: SocketAddr,
) -> anyhow::Result<Arc<crate::notify::Channels>> {
    use crate::notify::{ChannelConfig, Channels, RetryPolicy, SmtpConfig, SmtpUrl, WebhookConfig};
    let smtp = match &args.smtp_url {
        Some(u) => Some(SmtpConfig::new(
            SmtpUrl::parse(u).map_err(|e| anyhow!("invalid --smtp-url: {e}"))?,
            args.smtp_from.clone(),
        )),
        None => None,
    };
    let public_url = state
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"))
        .trim_end_matches('/')
        .to_string();
    let channels = Channels::new(
        smtp,
        WebhookConfig {
            allow_loopback_http: args.webhook_allow_loopback_http,
            ..WebhookConfig::default()
        },
        ChannelConfig {
            public_url,
            retry: RetryPolicy::default(),
        },
    )
    .map_err(|e| anyhow!("cannot set up alert delivery: {e}"))?;
    Ok(Arc::new(channels))
}

/// Runs the server until Ctrl-C / SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let config = args.api_config()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = store::connect(&args.database)
            .await
            .map_err(|e| anyhow!("cannot open database {}: {e}", redact_url(&args.database)))?;
        let state = AppState::new(store.clone(), config, system_clock())
            .await
            .map_err(|e| anyhow!("cannot initialise the database: {e}"))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr()?;
        let channels = notify_channels(&args, &state, local)?;
        let state = state.with_channels(channels.clone());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let notifier = if args.no_notifier {
            None
        } else {
            let digest = crate::notify::DigestConfig {
                window_ms: i64::from(args.digest_window_ms),
                ..Default::default()
            };
            let worker =
                crate::watch::worker::Notifier::new(store.clone(), Some(channels), digest, state.clock.clone())
                    .await
                    .map_err(|e| anyhow!("cannot start the notifier: {e}"))?;
            Some(tokio::spawn(worker.run(stop_rx)))
        };
        println!("pricewatch: listening on http://{local}");
        tracing::info!(database = %redact_url(&args.database), backend = store.backend(), "serving");
        let retention_ms = (i64::from(args.audit_retention_days) * 86_400_000).max(MIN_AUDIT_RETENTION_MS);
        let job = tokio::spawn(maintenance(store.clone(), state.clone(), retention_ms));
        let served = axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        job.abort();
        let _ = stop_tx.send(true);
        if let Some(n) = notifier {
            let _ = n.await;
        }
        store.close().await;
        tracing::info!("stopped");
        served.context("server failed")
    })
}
