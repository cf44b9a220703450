//! `pricewatch serve`: minimal placeholder serving `/healthz` (the backend
//! issue replaces it with the full server).

use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PRICEWATCH_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://PATH or postgres://...
    #[arg(
        long,
        env = "PRICEWATCH_DATABASE",
        default_value = "sqlite://data/pricewatch.db"
    )]
    pub database: String,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("pricewatch: listening on http://{}", listener.local_addr()?);
        axum::serve(listener, crate::http::app())
            .await
            .context("server failed")
    })
}
