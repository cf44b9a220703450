//! Price change to SMTP acceptance of the alert mail, embedded SQLite: a
//! published price change is ingested, the notifier worker (woken by the
//! outbox signal) evaluates it and sends the mail (digest window 0, so it
//! is not held for batching) to a minimal SMTP server on loopback in this
//! process; the time from the ingest call to the server's `250` after the
//! message data is measured over 200 alerts. Prints p50/p99/max.
//!
//! `cargo bench -p backend --bench watch_latency`

mod common;

use backend::notify::{
    ChannelConfig, Channels, DigestConfig, RetryPolicy, SmtpConfig, SmtpUrl, WebhookConfig,
};
use backend::watch::worker::{confirm_hash, unsubscribe_hash, Notifier};
use backend::watch::{NewWatch, WatchSpec};
use common::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wasm_core::types::{Availability, Condition};

const ALERTS: usize = 200;
const ASIN: &str = "B0BENCHL01";
const DAY: i64 = 86_400_000;

/// Accepts mail; sends the acceptance instant of each message.
async fn smtp_server(listener: TcpListener, accepted: mpsc::UnboundedSender<Instant>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            if w.write_all(b"220 bench ESMTP\r\n").await.is_err() {
                return;
            }
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = if in_data {
                    if line == "." {
                        in_data = false;
                        let _ = accepted.send(Instant::now());
                        b"250 accepted\r\n"
                    } else {
                        continue;
                    }
                } else {
                    let cmd = line.to_ascii_uppercase();
                    if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-bench\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    }
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(smtp_server(listener, tx));

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/latency.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    // A fake clock a day ahead per alert (no cooldown or cap in the way),
    // moving with real time in between.
    let offset = Arc::new(AtomicI64::new(0));
    let base = Instant::now();
    let start_ms: i64 = 1_763_800_000_000;
    let o2 = offset.clone();
    let clock: backend::http::Clock =
        Arc::new(move || start_ms + o2.load(Ordering::SeqCst) + base.elapsed().as_millis() as i64);
    let key_id = key(store.as_ref(), 1).await;
    let mut serial = 0u64;
    let t = clock();
    store
        .ingest(
            &[report(
                key_id,
                serial,
                ASIN,
                t,
                Some(5000),
                Availability::InStock,
            )],
            t,
        )
        .await
        .expect("ingest");
    let secret = store.install_secret().await.expect("secret");
    let email = "bench@example.org";
    let nw = NewWatch {
        key_id,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        spec: WatchSpec {
            target_price_minor: Some(4000),
            drop_percent: None,
            back_in_stock: false,
            extension: false,
            email: Some(email.into()),
            webhook: None,
        },
        webhook_secret: None,
        contact_hashes: Some((
            confirm_hash(&secret, key_id, email, t),
            unsubscribe_hash(&secret, key_id, email, t),
        )),
    };
    store.create_watch(&nw, t).await.expect("watch");
    assert!(store
        .confirm_contact(&confirm_hash(&secret, key_id, email, t), t)
        .await
        .expect("confirm"));
    let smtp = SmtpConfig::new(
        SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}?tls=none")).expect("smtp url"),
        "bench <bench@localhost>",
    );
    let channels = Channels::new(
        Some(smtp),
        WebhookConfig::default(),
        ChannelConfig {
            public_url: "http://127.0.0.1:1".into(),
            retry: RetryPolicy::default(),
        },
    )
    .expect("channels");
    let worker = Notifier::new(
        store.clone(),
        Some(Arc::new(channels)),
        DigestConfig {
            window_ms: 0,
            ..Default::default()
        },
        clock.clone(),
    )
    .await
    .expect("worker");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(worker.run(stop_rx));

    let mut lat = Vec::with_capacity(ALERTS);
    for _ in 0..ALERTS {
        for price in [3000, 5000] {
            offset.fetch_add(DAY, Ordering::SeqCst);
            serial += 1;
            let t = clock();
            let started = Instant::now();
            store
                .ingest(
                    &[report(
                        key_id,
                        serial,
                        ASIN,
                        t,
                        Some(price),
                        Availability::InStock,
                    )],
                    t,
                )
                .await
                .expect("ingest");
            if price == 3000 {
                let done = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("mail within 30 s")
                    .expect("server");
                lat.push(done.duration_since(started).as_secs_f64() * 1000.0);
            } else {
                // Let the re-arm be evaluated before the next drop.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = handle.await;
    lat.sort_by(f64::total_cmp);
    println!(
        "price change -> SMTP acceptance (sqlite, {ALERTS} alerts): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    store.close().await;
}
