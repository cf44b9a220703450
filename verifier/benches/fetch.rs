//! Verifier throughput on loopback: the whole fetch path (breaker, token
//! bucket, HTTP request with browser headers and cookies, body read,
//! CAPTCHA check, `wasm-core` extraction) of a real 3 MB amazon.com page
//! (`../shared/fixtures/amazon`, when present; a small synthetic page
//! otherwise), served by a minimal HTTP/1.1 server in this process.
//! Prints pages per second and milliseconds per page at concurrency 1
//! and 4. Run: `cargo bench -p verifier --bench fetch`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verifier::clock::SystemClock;
use verifier::extract::WasmCoreExtractor;
use verifier::fetch::{FetchOutcome, Fetcher, FetcherConfig};
use verifier::rate::RateConfig;
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;

const ASIN: &str = "B0057OC5O8";

fn page() -> (String, &'static str) {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/amazon/metascraper_com_B0057OC5O8_coreprice_2024.html");
    match std::fs::read(&corpus) {
        Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), "corpus page"),
        Err(_) => (
            format!(
                r#"<html><head><title>Amazon.com: Bench</title></head><body><div id="dp-container">
<span id="productTitle">Bench</span>
<div id="corePriceDisplay_desktop_feature_div"><span class="a-price priceToPay"><span class="a-offscreen">$12.34</span></span></div>
<div id="availability">In Stock</div><input type="hidden" id="ASIN" value="{ASIN}"></div></body></html>"#
            ),
            "synthetic page",
        ),
    }
}

/// Answers every request with `body` (keep-alive, Content-Length).
async fn serve(body: Arc<Vec<u8>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut have = Vec::new();
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have.extend_from_slice(&buf[..n]);
                    while let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                        have.drain(..end + 4);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nset-cookie: session-id=1; Path=/\r\n\r\n",
                            body.len()
                        );
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(&body).await.is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (html, what) = page();
        let port = serve(Arc::new(html.clone().into_bytes())).await;
        let mut config = FetcherConfig {
            rates: RateConfig::default(),
            ..FetcherConfig::default()
        };
        config
            .bases
            .insert(Marketplace::AMAZON_COM, format!("http://127.0.0.1:{port}"));
        let fetcher = Arc::new(
            Fetcher::new(config, Arc::new(SystemClock::new()), Arc::new(WasmCoreExtractor))
                .expect("fetcher"),
        );
        let asin = Asin::parse(ASIN).expect("asin");
        // Warm up (connection, caches) and check the page reads.
        match fetcher.fetch_product(Marketplace::AMAZON_COM, &asin).await {
            FetchOutcome::Product(e) => println!(
                "{what}: {} bytes, price {:?}",
                html.len(),
                e.offers.first().and_then(|o| o.price_minor)
            ),
            other => panic!("warm-up fetch: {other:?}"),
        }
        for concurrency in [1usize, 4] {
            let pages = 40usize;
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for worker in 0..concurrency {
                let fetcher = fetcher.clone();
                tasks.spawn(async move {
                    for _ in (worker..pages).step_by(concurrency) {
                        let out = fetcher.fetch_product(Marketplace::AMAZON_COM, &asin).await;
                        assert!(matches!(out, FetchOutcome::Product(_)), "{out:?}");
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.expect("task");
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "concurrency {concurrency}: {pages} pages in {secs:.2} s = {:.1} pages/s, {:.1} ms/page",
                pages as f64 / secs,
                secs * 1000.0 / pages as f64
            );
        }
    });
}
