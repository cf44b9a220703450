//! The verifier embedded in `pricewatch serve` (issue 6, part 3): its key
//! is generated on first start into the data folder with mode 0600, kept
//! across restarts and trusted automatically; `--no-embedded-verifier`
//! turns it off; `--data-dir` moves the key; SIGTERM stops it with the
//! server; the `--verifier-*` flags reach it (its per-marketplace rate
//! holds with many crawls queued). What its crawls decide is what
//! `trust_e2e.rs` shows.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::PricewatchServer;
use verifier::api::ApiClient;

/// The key file's public key, as the server would load it.
fn key_in(path: &Path) -> Arc<wasm_core::protocol::Keypair> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Arc::new(verifier::keyfile::parse(&bytes).expect("a valid key file"))
}

/// Whether `key` may lease from `url` (the lease endpoint answers 200 to a
/// trusted verifier key, 403 to any other).
fn may_lease(url: &str, key: Arc<wasm_core::protocol::Keypair>) -> bool {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api = ApiClient::new(url, key).expect("client");
    match rt.block_on(api.lease(1, 1_000)) {
        Ok(_) => true,
        Err(verifier::api::ApiError::Status { status: 403, .. }) => false,
        Err(e) => panic!("unexpected lease error: {e:?}"),
    }
}

#[test]
fn the_embedded_verifier_key_is_made_once_kept_private_and_trusted() {
    if let Err(e) = tests::server::pricewatch_bin() {
        tests::skip_or_fail("embedded verifier key", &[e.to_string()]);
        return;
    }
    let mut server = PricewatchServer::start_with(&["--verifier-idle-poll-ms", "100"])
        .expect("pricewatch serve");
    // The database is `pricewatch.db` in the data dir: the key sits beside it.
    let key_file = server.data_dir().join("verifier.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file created on first start")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
    }
    let key = key_in(&key_file);
    assert!(
        server.log().contains(&key.public_b64u()),
        "the log names the key: {}",
        server.log()
    );
    assert!(
        may_lease(&server.url(), key.clone()),
        "trusted automatically"
    );
    let stranger = Arc::new(wasm_core::protocol::Keypair::from_seed(&[42; 32]));
    assert!(!may_lease(&server.url(), stranger), "others are not");

    // A restart loads the same key.
    server.restart().expect("restart");
    assert_eq!(key_in(&key_file).public_b64u(), key.public_b64u());
    assert!(may_lease(&server.url(), key));
}

#[test]
fn no_embedded_verifier_means_no_key_and_data_dir_moves_it() {
    if let Err(e) = tests::server::pricewatch_bin() {
        tests::skip_or_fail("embedded verifier off", &[e.to_string()]);
        return;
    }
    let off = PricewatchServer::start_with(&["--no-embedded-verifier"]).expect("serve");
    assert!(
        !off.data_dir().join("verifier.key").exists(),
        "no key without the embedded verifier"
    );
    drop(off);

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let dir = elsewhere.path().join("state");
    let dir_arg = dir.display().to_string();
    let moved = PricewatchServer::start_with(&["--data-dir", &dir_arg]).expect("serve");
    assert!(!moved.data_dir().join("verifier.key").exists());
    let key = key_in(&dir.join("verifier.key"));
    assert!(may_lease(&moved.url(), key));
}

/// SIGTERM stops the embedded verifier first, then the server; the
/// process exits 0.
#[test]
fn sigterm_stops_the_embedded_verifier_with_the_server() {
    let bin = match tests::server::pricewatch_bin() {
        Ok(b) => b,
        Err(e) => {
            tests::skip_or_fail("embedded verifier SIGTERM", &[e.to_string()]);
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = tests::server::free_port().expect("port");
    let addr = format!("127.0.0.1:{port}");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", &addr, "--database"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .args(["--verifier-idle-poll-ms", "100"])
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let started = Instant::now();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    while !read_log().contains("embedded verifier started") {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "serve exited: {}",
            read_log()
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not started: {}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let it lease (from the empty queue) at least once.
    while !tests::http::get(addr.parse().expect("addr"), "/metrics")
        .map(|r| r.text().contains("route=\"/v1/verification/lease\""))
        .unwrap_or(false)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no lease seen: {}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("serve did not stop on SIGTERM: {}", read_log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = read_log();
    assert!(status.success(), "exit {status}: {text}");
    let verifier_stopped = text
        .find("embedded verifier stopped")
        .unwrap_or_else(|| panic!("{text}"));
    let server_stopped = text
        .rfind("serve: stopped")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        verifier_stopped < server_stopped,
        "the verifier stops before the server: {text}"
    );
}

/// The `--verifier-*` flags reach the embedded verifier: with
/// `--verifier-rate amazon.com=4/s` and twelve crawls queued at once, any
/// five consecutive page requests to the (fake) store span a second.
#[test]
fn verifier_flags_reach_the_embedded_verifier_and_its_rate_holds_under_load() {
    use serde_json::{json, Value};
    use tests::fake_amazon::{FakeAmazon, ProductState};
    use wasm_core::protocol::{b64u_encode, pow_solve, Observation, Registration, NONCE_LEN};
    use wasm_core::types::{Availability, Condition, Seller};
    if let Err(e) = tests::server::pricewatch_bin() {
        tests::skip_or_fail("embedded verifier rate", &[e.to_string()]);
        return;
    }
    let fake = FakeAmazon::start().expect("fake Amazon");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = fake
        .write_ca_pem(dir.path())
        .expect("CA")
        .display()
        .to_string();
    let base = format!("amazon.com={}", fake.base_url());
    let server = PricewatchServer::start_with(&[
        "--pow-difficulty",
        "4",
        "--rate-ip-registrations-per-hour",
        "0",
        "--verifier-marketplace-base",
        &base,
        "--verifier-ca-cert",
        &ca,
        "--verifier-rate",
        "amazon.com=4/s",
        "--verifier-concurrency",
        "8",
        "--verifier-idle-poll-ms",
        "50",
    ])
    .expect("serve");
    // Twelve new products, each first reported by its own fresh key (a key
    // on probation triggers one crawl a day): twelve crawls queued at once.
    // Each key registers from its own /24 on 127/8: fresh keys of one
    // network and day are one independence group, which may trigger only
    // two open crawls (`trust::limits`).
    let mut reports = Vec::new();
    for i in 0..12u64 {
        let asin = format!("B0RATE{i:04}");
        fake.set_product("amazon.com", &asin, ProductState::priced(700 + i, "Rated"));
        let kp = wasm_core::protocol::Keypair::from_seed(&rand::random::<[u8; 32]>());
        let pow = pow_solve(&kp.public_b64u(), 4, 0, u64::MAX).expect("pow");
        let reg = serde_json::to_string(&Registration::new(&kp, &pow)).expect("json");
        let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, i as u8 + 1, 1));
        let r = tests::http::request_from(
            from,
            server.addr(),
            "POST",
            "/v1/keys",
            &[("content-type", "application/json")],
            reg.as_bytes(),
        )
        .expect("register");
        assert_eq!(r.status, 201, "{}", r.text());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        reports.push(
            Observation {
                key: kp.public_b64u(),
                asin,
                marketplace: "amazon.com".into(),
                condition: Condition::New,
                price_minor: Some(700 + i),
                currency: "USD".into(),
                availability: Availability::InStock,
                seller: Seller::Amazon,
                title: "Rated".into(),
                observed_at: now,
                nonce: b64u_encode(&rand::random::<[u8; NONCE_LEN]>()),
            }
            .into_report(&kp)
            .expect("sign"),
        );
    }
    let body = json!({ "reports": reports }).to_string();
    let r = tests::http::request(
        server.addr(),
        "POST",
        "/v1/reports",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .expect("reports");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_str(&r.text()).expect("json");
    assert!(
        v["results"]
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["status"] == "provisional")),
        "{v}"
    );
    let started = Instant::now();
    while fake.requests().len() < 12 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of 12 crawled: {}",
            fake.requests().len(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut at: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    at.sort();
    let spans: Vec<Duration> = at.windows(5).map(|w| w[4].duration_since(w[0])).collect();
    println!(
        "12 crawls at 4/s: first to last request {} ms",
        at[11].duration_since(at[0]).as_millis()
    );
    assert!(
        spans.iter().all(|s| *s >= Duration::from_millis(930)),
        "4/s with a burst of 1: five requests span a second: {spans:?}"
    );
}
