//! The verification queue of the real backend, worked by real verifiers
//! (API.md "Verifier"; issue 6):
//!
//! - a leased job whose lease expires unanswered goes back to the queue
//!   and is leased again (SQLite);
//! - two `pricewatch verifier` processes against one PostgreSQL-backed
//!   `pricewatch serve` never work the same job: every job is fetched once
//!   and gets exactly one result.
//!
//! Jobs are made the way production makes them: collectors report
//! products nobody has reported yet, and each such "cold start" report
//! queues a crawl. Each collector registers and reports from its own /24
//! on 127/8 (`http::request_from`): fresh keys of one network and day are
//! one independence group, which may trigger only two open crawls. The servers run with `--no-embedded-verifier`, so only
//! the test's verifiers lease.
//!
//! The PostgreSQL test needs `PRICEWATCH_TEST_POSTGRES_URL` (e.g. from
//! `scripts/postgres-start`; the role needs CREATEDB): it creates a
//! throw-away database and drops it afterwards. Without it the test is
//! skipped with a visible line (fails in CI).

use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::fake_amazon::{Failure, FakeAmazon, ProductState};
use tests::http;
use tests::PricewatchServer;
use verifier::api::ApiClient;
use wasm_core::protocol::{b64u_encode, pow_solve, Keypair, Observation, Registration, NONCE_LEN};
use wasm_core::types::{Availability, Condition, Seller};

const DEADLINE: Duration = Duration::from_secs(40);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Flags for a server whose queue only the test's verifiers work.
fn server_args<'a>(verifier_keys: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--pow-difficulty",
        "4",
        "--rate-ip-reports-per-min",
        "0",
        "--rate-key-reports-per-min",
        "0",
        "--rate-ip-registrations-per-hour",
        "0",
        "--rate-ip-requests-per-min",
        "0",
        "--no-embedded-verifier",
    ];
    for k in verifier_keys {
        args.push("--trusted-verifier-key");
        args.push(k);
    }
    args.extend_from_slice(extra);
    args
}

/// A loopback address on its own /24 (`127.0.n.1`, `n` from 1; Linux
/// routes all of 127/8 to loopback): the server sees another network.
fn net(i: usize) -> IpAddr {
    let n = u8::try_from(i + 1).expect("at most 255 networks");
    IpAddr::V4(Ipv4Addr::new(127, 0, n, 1))
}

/// Registers a fresh collector key from `from`.
fn collector(server: &PricewatchServer, from: IpAddr) -> Keypair {
    let kp = Keypair::from_seed(&rand::random::<[u8; 32]>());
    let pow = pow_solve(&kp.public_b64u(), 4, 0, u64::MAX).expect("pow");
    let reg = serde_json::to_string(&Registration::new(&kp, &pow)).expect("json");
    let r = http::request_from(
        from,
        server.addr(),
        "POST",
        "/v1/keys",
        &[("content-type", "application/json")],
        reg.as_bytes(),
    )
    .expect("register");
    assert_eq!(r.status, 201, "{}", r.text());
    kp
}

/// Open verification jobs (queued, leased or holding), from `/metrics`.
fn open_jobs(server: &PricewatchServer) -> i64 {
    let m = server.get("/metrics").expect("metrics").text();
    m.lines()
        .filter(|l| l.starts_with("pricewatch_verification_queue_depth{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

/// Reports each of `asins` once, each from its own fresh key registered
/// and reporting from its own /24 network: new products, so every report
/// comes back `provisional` and queues a crawl. Keys on probation may
/// trigger only one open crawl each, and the fresh keys of one network
/// and registration day (one independence group) only two together
/// (`trust::limits`), so a realistic cold start is many collectors on
/// many networks, not 40 keys from one address.
fn cold_start(server: &PricewatchServer, asins: &[String]) {
    for (i, asin) in asins.iter().enumerate() {
        let from = net(i);
        let kp = collector(server, from);
        let report = Observation {
            key: kp.public_b64u(),
            asin: asin.clone(),
            marketplace: "amazon.com".into(),
            condition: Condition::New,
            price_minor: Some(1_500),
            currency: "USD".into(),
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: format!("Queued {asin}"),
            observed_at: now_ms(),
            nonce: b64u_encode(&rand::random::<[u8; NONCE_LEN]>()),
        }
        .into_report(&kp)
        .expect("sign");
        let body = json!({ "reports": [report] }).to_string();
        let r = http::request_from(
            from,
            server.addr(),
            "POST",
            "/v1/reports",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .expect("reports");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        assert_eq!(v["results"][0]["status"], "provisional", "{v}");
    }
}

/// A leased job that is not answered returns to the queue when its lease
/// expires: a second lease before expiry gets nothing, one after expiry
/// gets the same job; its result is then accepted once.
#[test]
fn an_expired_lease_returns_the_job_to_the_queue() {
    if let Err(e) = tests::server::pricewatch_bin() {
        tests::skip_or_fail("lease expiry", &[e.to_string()]);
        return;
    }
    let key = Arc::new(Keypair::from_seed(&rand::random::<[u8; 32]>()));
    let keys = [key.public_b64u()];
    let server =
        PricewatchServer::start_with(&server_args(&keys, &["--tick-ms", "100"])).expect("serve");
    cold_start(&server, &["B0LEASE001".to_string()]);
    assert_eq!(open_jobs(&server), 1, "the cold start queued one crawl");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api = ApiClient::new(&server.url(), key.clone()).expect("client");
    let first = rt.block_on(api.lease(5, 1_500)).expect("lease");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].asin, "B0LEASE001");
    let leased_at = Instant::now();
    let during = rt.block_on(api.lease(5, 1_500)).expect("lease");
    assert!(
        during.is_empty() || leased_at.elapsed() >= Duration::from_millis(1_500),
        "a leased job is not handed out twice: {during:?}"
    );
    let again = wait_for("the job back after its lease expired", || {
        let jobs = rt.block_on(api.lease(5, 60_000)).expect("lease");
        (!jobs.is_empty()).then_some(jobs)
    });
    let waited = leased_at.elapsed();
    println!(
        "job leased again {} ms after the first lease",
        waited.as_millis()
    );
    assert!(waited >= Duration::from_millis(1_400), "{waited:?}");
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, first[0].id, "the same job");
    // `not_found` closes the job; posting it again changes nothing and is
    // not an error (results are idempotent).
    rt.block_on(api.post_result(&again[0].id, &verifier::api::JobOutcome::NotFound))
        .expect("result accepted");
    rt.block_on(api.post_result(&again[0].id, &verifier::api::JobOutcome::NotFound))
        .expect("repeated result accepted");
    let after = rt.block_on(api.lease(5, 60_000)).expect("lease");
    assert!(after.is_empty(), "a closed job is not leased: {after:?}");
}

/// A throw-away PostgreSQL database, dropped on drop.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Runs one statement on the server `url` names.
fn pg_execute(url: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| format!("connect to PRICEWATCH_TEST_POSTGRES_URL: {e}"))?;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let _ = conn.close().await;
        Ok(())
    })
}

impl PgDatabase {
    fn create(test: &str) -> Option<PgDatabase> {
        let admin_url = match std::env::var("PRICEWATCH_TEST_POSTGRES_URL") {
            Ok(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => {
                tests::skip_or_fail(
                    test,
                    &[
                        "PRICEWATCH_TEST_POSTGRES_URL (export it from scripts/postgres-start)"
                            .to_string(),
                    ],
                );
                return None;
            }
        };
        let name = format!(
            "pricewatch_vq_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        if let Err(e) = pg_execute(&admin_url, &format!("CREATE DATABASE \"{name}\"")) {
            tests::skip_or_fail(test, &[e]);
            return None;
        }
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b.to_string(), format!("?{q}")),
            None => (admin_url.clone(), String::new()),
        };
        let slash = base.rfind('/').expect("database URL with a path");
        let url = format!("{}/{name}{query}", &base[..slash]);
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = pg_execute(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// `pricewatch verifier` with its own key file, aimed at the fake Amazon.
fn spawn_verifier(
    bin: &std::path::Path,
    backend: &str,
    key_file: &std::path::Path,
    fake: &FakeAmazon,
    ca: &std::path::Path,
) -> Child {
    Command::new(bin)
        .arg("verifier")
        .args(["--backend", backend])
        .arg("--key-file")
        .arg(key_file)
        .args([
            "--marketplace-base",
            &format!("amazon.com={}", fake.base_url()),
        ])
        .arg("--ca-cert")
        .arg(ca)
        .args([
            "--rate",
            "*=100/s",
            "--concurrency",
            "4",
            "--idle-poll-ms",
            "50",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pricewatch verifier")
}

/// A verifier process, killed if the test ends without stopping it.
struct Verifier(Option<Child>);

impl Drop for Verifier {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends SIGTERM and returns the verifier's (leased, posted) counts from
/// its last line, with its output for messages; (0, 0) when it printed no
/// summary.
fn stop_verifier(mut v: Verifier) -> (u64, u64, String) {
    let Some(child) = v.0.take() else {
        return (0, 0, String::new());
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(line) = log.lines().find(|l| l.contains(" leased, ")) else {
        return (0, 0, log);
    };
    // "pricewatch verifier: stopped; 12 leased, 12 posted, 0 not posted, ..."
    let num = |word: &str| -> u64 {
        let before = line.split(&format!(" {word}")).next().unwrap_or_default();
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (num("leased"), num("posted"), log)
}

/// Two verifier processes against one PostgreSQL-backed server and 40
/// queued jobs: every product page is fetched exactly once, every job is
/// verified, and the two leased 40 jobs between them (none twice).
#[test]
fn two_verifiers_on_postgres_never_work_the_same_job() {
    let bin = match tests::server::pricewatch_bin() {
        Ok(b) => b,
        Err(e) => {
            tests::skip_or_fail("two verifiers on PostgreSQL", &[e.to_string()]);
            return;
        }
    };
    let Some(db) = PgDatabase::create("two verifiers on PostgreSQL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let key_files = [dir.path().join("v1.key"), dir.path().join("v2.key")];
    let mut keys = Vec::new();
    for f in &key_files {
        let (kp, _) = verifier::keyfile::load_or_create(f).expect("key file");
        keys.push(kp.public_b64u());
    }
    let server = PricewatchServer::start_with(&server_args(&keys, &["--database", &db.url]))
        .expect("serve on PostgreSQL");

    let fake = FakeAmazon::start().expect("fake Amazon");
    let ca = fake.write_ca_pem(dir.path()).expect("CA");
    const N: usize = 40;
    let asins: Vec<String> = (0..N).map(|i| format!("B0PGQ{i:05}")).collect();
    for asin in &asins {
        fake.set_product("amazon.com", asin, ProductState::priced(1_500, "Queued"));
        // Each page takes a moment, so both verifiers hold jobs at once.
        fake.fail_next("amazon.com", asin, Failure::Delay(150), 1);
    }
    cold_start(&server, &asins);
    // Forty collectors on forty networks: each report queued its crawl
    // (none was refused by a crawl-trigger limit).
    assert_eq!(
        open_jobs(&server),
        N as i64,
        "jobs queued by the cold start\n{}",
        server.log()
    );

    let v1 = Verifier(Some(spawn_verifier(
        &bin,
        &server.url(),
        &key_files[0],
        &fake,
        &ca,
    )));
    let v2 = Verifier(Some(spawn_verifier(
        &bin,
        &server.url(),
        &key_files[1],
        &fake,
        &ca,
    )));
    let started = Instant::now();
    let all_verified = || {
        asins.iter().all(|a| {
            let r = server
                .get(&format!("/v1/products/amazon.com/{a}"))
                .expect("summary");
            let v: Value = serde_json::from_str(&r.text()).unwrap_or(Value::Null);
            v["offers"]["new"]["status"] == "verified"
        })
    };
    while !all_verified() {
        if started.elapsed() > DEADLINE {
            let (_, _, log1) = stop_verifier(v1);
            let (_, _, log2) = stop_verifier(v2);
            panic!(
                "not every job verified within {DEADLINE:?}\nverifier 1:\n{log1}\nverifier 2:\n{log2}\nserver:\n{}",
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "{N} jobs verified by two verifiers in {} ms",
        started.elapsed().as_millis()
    );
    let (l1, p1, log1) = stop_verifier(v1);
    let (l2, p2, log2) = stop_verifier(v2);
    println!("verifier 1: {l1} leased, {p1} posted; verifier 2: {l2} leased, {p2} posted");
    let fetched: Vec<usize> = asins
        .iter()
        .map(|a| fake.requests_for("amazon.com", a).len())
        .collect();
    assert!(
        fetched.iter().all(|n| *n == 1),
        "each page fetched once: {fetched:?}"
    );
    assert_eq!(
        (l1 + l2, p1 + p2),
        (N as u64, N as u64),
        "every job leased once and answered once\n{log1}\n{log2}"
    );
    assert!(
        l1 > 0 && l2 > 0,
        "both verifiers worked: {l1} and {l2}\n{log1}\n{log2}"
    );
}
