//! `pricewatch verifier`: runs the verification crawler (the `verifier`
//! crate) against a backend until SIGINT or SIGTERM, then finishes the
//! jobs in hand and exits.
//!
//! ```text
//! pricewatch verifier --backend http://127.0.0.1:8787 --key-file verifier.key \
//!     [--marketplace-base amazon.com=https://127.0.0.1:9443]... [--proxy URL]... \
//!     [--concurrency N] [--rate amazon.de=1/s]... [--ca-cert PEM]...
//! ```
//!
//! The key file holds the verifier's 32-byte Ed25519 seed, as 32 raw bytes
//! or as `b64u` text; a missing file is created (mode 0600) with a fresh
//! seed. The backend must trust the public key, which `--print-key`
//! prints (then exits). `--rate` takes `N/s`, `N/m`, `N/h` or `N/<k>ms`,
//! optionally `,burst=B`; `*=RATE` sets the rate of every marketplace not
//! named (default 1/s).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use verifier::api::ApiClient;
use verifier::clock::SystemClock;
use verifier::extract::WasmCoreExtractor;
use verifier::fetch::{Fetcher, FetcherConfig};
use verifier::worker::{Verifier, WorkerConfig};

#[derive(Args)]
pub struct VerifierArgs {
    /// The backend's base URL.
    #[arg(
        long,
        env = "PRICEWATCH_BACKEND",
        default_value = "http://127.0.0.1:8787"
    )]
    pub backend: String,
    /// The verifier's key file (created with a fresh key when missing).
    #[arg(long, env = "PRICEWATCH_VERIFIER_KEY_FILE")]
    pub key_file: PathBuf,
    /// Send a marketplace's requests to another origin, keeping its Host header.
    #[arg(long = "marketplace-base", value_name = "MARKETPLACE=URL")]
    pub marketplace_base: Vec<String>,
    /// An outgoing proxy (repeatable; http://[user:pass@]host:port or https://...).
    #[arg(long = "proxy", value_name = "URL")]
    pub proxy: Vec<String>,
    /// Jobs worked at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// A marketplace's request rate, e.g. amazon.de=1/s or *=30/m (repeatable).
    #[arg(long = "rate", value_name = "MARKETPLACE=RATE")]
    pub rate: Vec<String>,
    /// Extra trusted CA certificate, PEM (repeatable).
    #[arg(long = "ca-cert", value_name = "PEM")]
    pub ca_cert: Vec<PathBuf>,
    /// Lease length asked for, in milliseconds.
    #[arg(long, default_value_t = 120_000)]
    pub lease_ms: u64,
    /// Wait between leases when the queue is empty, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub idle_poll_ms: u64,
    /// Timeout of one page request, in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    pub request_timeout_ms: u64,
    /// Print the public key (creating the key file if needed) and exit.
    #[arg(long)]
    pub print_key: bool,
}

/// Proxy URLs may carry credentials: never print them.
impl std::fmt::Debug for VerifierArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierArgs")
            .field("backend", &self.backend)
            .field("key_file", &self.key_file)
            .field("marketplace_base", &self.marketplace_base)
            .field("proxy", &format_args!("[{} redacted]", self.proxy.len()))
            .field("concurrency", &self.concurrency)
            .field("rate", &self.rate)
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

/// The crawl settings `pricewatch verifier` and the verifier embedded in
/// `pricewatch serve` (its `--verifier-*` flags) share, as given.
pub(crate) struct CrawlFlags<'a> {
    /// `MARKETPLACE=URL` specs.
    pub marketplace_base: &'a [String],
    /// Proxy URLs.
    pub proxy: &'a [String],
    /// `MARKETPLACE=RATE` specs.
    pub rate: &'a [String],
    /// PEM files of extra trusted CAs.
    pub ca_cert: &'a [PathBuf],
    /// Timeout of one page request.
    pub request_timeout_ms: u64,
    /// How the flags are named in error messages: `""` or `"verifier-"`.
    pub flag_prefix: &'static str,
}

/// The fetcher settings the flags describe; a bad spec or an unreadable
/// certificate is an error naming the flag.
pub(crate) fn fetcher_config(flags: &CrawlFlags<'_>) -> anyhow::Result<FetcherConfig> {
    let defaults = FetcherConfig::default();
    let p = flags.flag_prefix;
    let rates = verifier::config::parse_rates(flags.rate, defaults.rates.default)
        .with_context(|| format!("--{p}rate"))?;
    let bases = verifier::config::parse_bases(flags.marketplace_base)
        .with_context(|| format!("--{p}marketplace-base"))?;
    let mut root_certs_pem = Vec::new();
    for path in flags.ca_cert {
        root_certs_pem.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read --{p}ca-cert {}", path.display()))?,
        );
    }
    Ok(FetcherConfig {
        bases,
        proxies: flags.proxy.to_vec(),
        rates,
        root_certs_pem,
        request_timeout_ms: flags.request_timeout_ms,
        ..defaults
    })
}

pub fn run(args: VerifierArgs) -> anyhow::Result<()> {
    let (key, created) = verifier::keyfile::load_or_create(&args.key_file)?;
    if args.print_key {
        println!("{}", key.public_b64u());
        return Ok(());
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();

    let config = fetcher_config(&CrawlFlags {
        marketplace_base: &args.marketplace_base,
        proxy: &args.proxy,
        rate: &args.rate,
        ca_cert: &args.ca_cert,
        request_timeout_ms: args.request_timeout_ms,
        flag_prefix: "",
    })?;
    let key = Arc::new(key);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let fetcher = Fetcher::new(
            config,
            Arc::new(SystemClock::new()),
            Arc::new(WasmCoreExtractor),
        )
        .context("setting up the fetcher")?;
        let api =
            ApiClient::new(&args.backend, key.clone()).context("setting up the backend client")?;
        let worker = Arc::new(Verifier::new(
            api,
            Arc::new(fetcher),
            key.clone(),
            WorkerConfig {
                concurrency: usize::from(args.concurrency),
                lease_ms: args.lease_ms,
                idle_poll_ms: args.idle_poll_ms,
            },
        ));
        println!(
            "pricewatch verifier: key {} ({}), backend {}",
            key.public_b64u(),
            if created { "created" } else { "loaded" },
            args.backend
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("pricewatch verifier: stopping, finishing the jobs in hand");
            let _ = stop_tx.send(true);
        });
        let stats = worker.run(stop_rx).await;
        println!(
            "pricewatch verifier: stopped; {} leased, {} posted, {} not posted, {} lease errors",
            stats.leased, stats.posted, stats.post_errors, stats.lease_errors
        );
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
