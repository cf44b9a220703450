//! `pricewatch serve`: the backend HTTP server.
//!
//! Every flag also reads a `PRICEWATCH_*` environment variable. Startup
//! problems (a bad flag value, a database that cannot be opened, a port in
//! use) end the process with one line on stderr and a non-zero exit.
//! Ctrl-C or SIGTERM stops accepting connections, lets requests in flight
//! finish (a report is accepted only once its transaction committed, so
//! nothing accepted is lost), then closes the database.
//!
//! The embedded verifier: unless `--no-embedded-verifier` is given, `serve`
//! runs one verification crawler in-process (the `verifier` crate's job
//! loop, the same one `pricewatch verifier` runs) against its own loopback
//! URL. Its Ed25519 key lives in `verifier.key` in the data folder
//! (`--data-dir`; by default the SQLite file's folder, or `data` in the
//! working directory with PostgreSQL), created with mode 0600 on first
//! start, and is added to the trusted verifier keys automatically. The
//! `--verifier-*` flags are `pricewatch verifier`'s crawl flags.
//!
//! Judgement calls:
//! - On SIGTERM the embedded verifier stops first (no new leases; the jobs
//!   in hand finish and post their results through the still-open server),
//!   bounded by [`VERIFIER_STOP_GRACE`]; a job still running then is
//!   dropped, its lease expires and the job returns to the queue. Only then
//!   does the server stop accepting connections.
//! - The verifier talks HTTP to its own server rather than calling the
//!   store directly: one code path for embedded and remote verifiers, and
//!   the lease/result endpoints stay the only way jobs are handed out.

use crate::http::limits::LimitConfig;
use crate::http::{app, system_clock, ApiConfig, AppState};
use crate::store::{self, redact_url, Storage, MIN_AUDIT_RETENTION_MS};
use anyhow::{anyhow, Context};
use clap::Args;
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping server waits for the embedded verifier's jobs in
/// hand before it drops them (their leases expire and they are worked again).
pub const VERIFIER_STOP_GRACE: Duration = Duration::from_secs(10);

/// The embedded verifier's key file, inside the data folder.
pub const VERIFIER_KEY_FILE: &str = "verifier.key";

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
    /// Folder for the server's own files (the embedded verifier's key,
    /// verifier.key). Default: the SQLite database's folder; with
    /// PostgreSQL, `data` in the working directory.
    #[arg(long, env = "PRICEWATCH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not run the embedded verifier (then run `pricewatch verifier`
    /// with a --trusted-verifier-key, or no crawl ever verifies a price).
    #[arg(long, env = "PRICEWATCH_NO_EMBEDDED_VERIFIER")]
    pub no_embedded_verifier: bool,
    /// Embedded verifier: send a marketplace's requests to another origin,
    /// keeping its Host header (repeatable; as `pricewatch verifier
    /// --marketplace-base`).
    #[arg(long = "verifier-marketplace-base", value_name = "MARKETPLACE=URL")]
    pub verifier_marketplace_base: Vec<String>,
    /// Embedded verifier: an extra trusted CA certificate, PEM (repeatable).
    #[arg(long = "verifier-ca-cert", value_name = "PEM")]
    pub verifier_ca_cert: Vec<PathBuf>,
    /// Embedded verifier: an outgoing proxy (repeatable;
    /// http://[user:pass@]host:port or https://...).
    #[arg(long = "verifier-proxy", value_name = "URL")]
    pub verifier_proxy: Vec<String>,
    /// Embedded verifier: a marketplace's request rate, e.g. amazon.de=1/s
    /// or *=30/m (repeatable; default 1/s per marketplace).
    #[arg(long = "verifier-rate", value_name = "MARKETPLACE=RATE")]
    pub verifier_rate: Vec<String>,
    /// Embedded verifier: jobs worked at once.
    #[arg(long, env = "PRICEWATCH_VERIFIER_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub verifier_concurrency: u16,
    /// Embedded verifier: lease length asked for (ms).
    #[arg(long, default_value_t = 120_000,
          value_parser = clap::value_parser!(u64).range(1_000..=3_600_000))]
    pub verifier_lease_ms: u64,
    /// Embedded verifier: wait between leases while the queue is empty (ms);
    /// it bounds how long a queued crawl waits before it starts.
    #[arg(long, default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub verifier_idle_poll_ms: u64,
    /// Embedded verifier: timeout of one page request (ms).
    #[arg(long, default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub verifier_request_timeout_ms: u64,
    /// Period of the trust ticks (hold expiry and crawl retries, scheduled
    /// refresh crawls, the drift check), in ms.
    #[arg(long, env = "PRICEWATCH_TICK_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub tick_ms: u64,
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
            .field("data_dir", &self.data_dir)
            .field("no_embedded_verifier", &self.no_embedded_verifier)
            .field(
                "verifier_proxy",
                &format_args!("[{} redacted]", self.verifier_proxy.len()),
            )
            .finish_non_exhaustive()
    }
}

impl ServeArgs {
    /// The folder holding the server's own files: `--data-dir`, else the
    /// SQLite database's folder, else `data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if self.database.starts_with("sqlite:") {
            if let Ok(path) = store::sqlite::sqlite_path(&self.database) {
                return match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
            }
        }
        PathBuf::from("data")
    }

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

/// The trust ticks, every `period`: the store's periodic work of
/// TRUST.md (expired holds and crawl retries, scheduled refresh crawls of
/// watched products, the drift check). A failing tick is logged and tried
/// again next period.
async fn trust_ticks(store: Arc<dyn Storage>, state: AppState, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.verification_tick(state.now()).await {
            Ok(s)
                if s.expired_holds > 0
                    || s.refresh_queued > 0
                    || s.drift_queued > 0
                    || s.judge_queued > 0
                    || s.waiting_purged > 0 =>
            {
                tracing::info!(
                    expired_holds = s.expired_holds,
                    refresh_queued = s.refresh_queued,
                    drift_queued = s.drift_queued,
                    judge_queued = s.judge_queued,
                    waiting_purged = s.waiting_purged,
                    "verification tick"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "verification tick failed"),
        }
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

/// The embedded verifier's pieces, prepared before the runtime starts so
/// that a bad flag or an unusable key file fails startup at once.
struct Embedded {
    key: Arc<wasm_core::protocol::Keypair>,
    key_path: PathBuf,
    created: bool,
    fetcher: verifier::fetch::FetcherConfig,
    worker: verifier::worker::WorkerConfig,
}

/// Reads the embedded verifier's flags (no side effects: the key file is
/// made only once the database has opened, see [`load_key`]); `None` with
/// `--no-embedded-verifier`.
fn embedded_settings(
    args: &ServeArgs,
) -> anyhow::Result<
    Option<(
        verifier::fetch::FetcherConfig,
        verifier::worker::WorkerConfig,
    )>,
> {
    if args.no_embedded_verifier {
        return Ok(None);
    }
    let fetcher = super::verifier::fetcher_config(&super::verifier::CrawlFlags {
        marketplace_base: &args.verifier_marketplace_base,
        proxy: &args.verifier_proxy,
        rate: &args.verifier_rate,
        ca_cert: &args.verifier_ca_cert,
        request_timeout_ms: args.verifier_request_timeout_ms,
        flag_prefix: "verifier-",
    })?;
    let worker = verifier::worker::WorkerConfig {
        concurrency: usize::from(args.verifier_concurrency),
        lease_ms: args.verifier_lease_ms,
        idle_poll_ms: args.verifier_idle_poll_ms,
    };
    Ok(Some((fetcher, worker)))
}

/// Loads (or creates, mode 0600) the embedded verifier's key in the data
/// folder.
fn load_key(
    args: &ServeArgs,
    (fetcher, worker): (
        verifier::fetch::FetcherConfig,
        verifier::worker::WorkerConfig,
    ),
) -> anyhow::Result<Embedded> {
    let key_path = args.data_dir().join(VERIFIER_KEY_FILE);
    let (key, created) = verifier::keyfile::load_or_create(&key_path)
        .map_err(|e| anyhow!("embedded verifier: {e}"))?;
    owner_only(&key_path)?;
    Ok(Embedded {
        key: Arc::new(key),
        key_path,
        created,
        fetcher,
        worker,
    })
}

/// Judgement call: a key file others can read (copied in by hand, say) is
/// narrowed to 0600 with a warning rather than refused: the key is this
/// server's own and can be rotated by deleting the file.
fn owner_only(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("embedded verifier key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "verifier key file readable by others: setting 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod 600 {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The loopback URL of a listening address (`0.0.0.0` and `::` are
/// reached through 127.0.0.1 and ::1).
fn loopback_url(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, local.port()))
}

/// Starts the embedded verifier's job loop against `url`.
fn start_embedded(e: Embedded, url: &str) -> anyhow::Result<verifier::worker::RunningVerifier> {
    use verifier::worker::{RunningVerifier, Verifier};
    let fetcher = verifier::fetch::Fetcher::new(
        e.fetcher,
        Arc::new(verifier::clock::SystemClock::new()),
        Arc::new(verifier::extract::WasmCoreExtractor),
    )
    .map_err(|err| anyhow!("embedded verifier: {err}"))?;
    let api = verifier::api::ApiClient::new(url, e.key.clone())
        .map_err(|err| anyhow!("embedded verifier: {err}"))?;
    tracing::info!(
        key = %e.key.public_b64u(),
        key_file = %e.key_path.display(),
        created = e.created,
        backend = url,
        "embedded verifier started"
    );
    Ok(RunningVerifier::spawn(Arc::new(Verifier::new(
        api,
        Arc::new(fetcher),
        e.key,
        e.worker,
    ))))
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
    let mut config = args.api_config()?;
    let embedded = embedded_settings(&args)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = store::connect(&args.database)
            .await
            .map_err(|e| anyhow!("cannot open database {}: {e}", redact_url(&args.database)))?;
        // The key file only once the database is known to work: a bad
        // --database leaves no stray data folder behind.
        let embedded = match embedded {
            Some(settings) => Some(load_key(&args, settings)?),
            None => None,
        };
        if let Some(e) = &embedded {
            config.trusted_verifier_keys.insert(e.key.public_bytes());
        } else if config.trusted_verifier_keys.is_empty() {
            tracing::warn!(
                "no embedded verifier and no --trusted-verifier-key: held reports expire unverified and nothing is ever verified"
            );
        }
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
        let embedded = match embedded {
            Some(e) => Some(start_embedded(e, &loopback_url(local))?),
            None => None,
        };
        println!("pricewatch: listening on http://{local}");
        tracing::info!(database = %redact_url(&args.database), backend = store.backend(), "serving");
        let retention_ms = (i64::from(args.audit_retention_days) * 86_400_000).max(MIN_AUDIT_RETENTION_MS);
        let job = tokio::spawn(maintenance(store.clone(), state.clone(), retention_ms));
        let ticks = tokio::spawn(trust_ticks(store.clone(), state.clone(), Duration::from_millis(args.tick_ms)));
        // The signal stops the embedded verifier first (its results still
        // reach the open server), then the server.
        let shutdown = async move {
            shutdown_signal().await;
            if let Some(v) = embedded {
                match v.stop_within(VERIFIER_STOP_GRACE).await {
                    Some(stats) => tracing::info!(
                        leased = stats.leased,
                        posted = stats.posted,
                        not_posted = stats.post_errors,
                        "embedded verifier stopped"
                    ),
                    None => tracing::warn!(
                        "embedded verifier still busy after {VERIFIER_STOP_GRACE:?}: its jobs in hand return to the queue when their leases expire"
                    ),
                }
            }
        };
        let served = axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        job.abort();
        ticks.abort();
        let _ = stop_tx.send(true);
        if let Some(n) = notifier {
            let _ = n.await;
        }
        store.close().await;
        tracing::info!("stopped");
        served.context("server failed")
    })
}
