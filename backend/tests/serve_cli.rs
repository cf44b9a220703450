//! `pricewatch serve` as a real process: one-line startup errors with a
//! non-zero exit, and a graceful SIGTERM that keeps every accepted report.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use wasm_core::protocol::{b64u_encode, pow_solve, Keypair, Observation, Registration};
use wasm_core::types::{Availability, Condition, Seller};

const BIN: &str = env!("CARGO_BIN_EXE_pricewatch");

fn serve(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("PRICEWATCH_DATABASE")
        .env_remove("PRICEWATCH_LISTEN")
        .output()
        .expect("run pricewatch")
}

fn one_error_line(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {err:?}");
    assert!(lines[0].starts_with("pricewatch: error: "), "{err:?}");
    lines[0].to_string()
}

#[test]
fn port_in_use_is_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let db = format!("sqlite://{}/x.db", dir.path().display());
    let out = serve(&["--listen", &addr, "--database", &db]);
    let line = one_error_line(&out);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
}

#[test]
fn unreachable_database_is_one_line() {
    // A folder that cannot be created (a file is in the way).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let db = format!("sqlite://{}/sub/x.db", file.display());
    let out = serve(&["--listen", "127.0.0.1:0", "--database", &db]);
    let line = one_error_line(&out);
    assert!(line.contains("cannot open database"), "{line}");
    // A PostgreSQL server that is not there; the password is not printed.
    let out = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--database",
        "postgres://pricewatch:secret@127.0.0.1:9/none",
    ]);
    let line = one_error_line(&out);
    assert!(line.contains("cannot open database"), "{line}");
    assert!(!line.contains("secret"), "{line}");
}

#[test]
fn bad_flags_are_one_line() {
    let out = serve(&["--pow-difficulty", "many"]);
    assert!(!out.status.success());
    let out = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--trusted-verifier-key",
        "not-a-key",
    ]);
    let line = one_error_line(&out);
    assert!(line.contains("--trusted-verifier-key"), "{line}");
    let out = serve(&["--database", "mysql://x"]);
    let line = one_error_line(&out);
    assert!(line.contains("unsupported database URL"), "{line}");
}

#[test]
fn sigterm_keeps_accepted_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/data/pw.db", dir.path().display());
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--pow-difficulty", "4"])
        .args(["--database", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let base = line
        .trim()
        .strip_prefix("pricewatch: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let accepted = rt.block_on(async {
        let client = reqwest::Client::new();
        let health = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200);
        let kp = Keypair::from_seed(&[3; 32]);
        let key = kp.public_b64u();
        let pow = pow_solve(&key, 4, 0, u64::MAX).expect("pow");
        let reg = client
            .post(format!("{base}/v1/keys"))
            .json(&Registration::new(&kp, &pow))
            .send()
            .await
            .expect("register");
        assert_eq!(reg.status(), 201);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_millis() as i64;
        // Batches in flight while SIGTERM arrives: every batch answered 200
        // must be in the database afterwards.
        let mut tasks = Vec::new();
        let mut before = 0i64;
        for b in 0..20u8 {
            let (client, base, kp, key) = (
                client.clone(),
                base.clone(),
                Keypair::from_seed(&[3; 32]),
                key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let reports: Vec<_> = (0..20u8)
                    .map(|i| {
                        let mut nonce = [0u8; 16];
                        nonce[0] = b;
                        nonce[1] = i;
                        Observation {
                            key: key.clone(),
                            asin: format!("B0000000{b:02}"),
                            marketplace: "amazon.com".into(),
                            condition: Condition::New,
                            price_minor: Some(1000 + u64::from(i)),
                            currency: "USD".into(),
                            availability: Availability::InStock,
                            seller: Seller::Amazon,
                            title: String::new(),
                            observed_at: now + i64::from(i),
                            nonce: b64u_encode(&nonce),
                        }
                        .into_report(&kp)
                        .expect("sign")
                    })
                    .collect();
                let resp = client
                    .post(format!("{base}/v1/reports"))
                    .json(&serde_json::json!({ "reports": reports }))
                    .send()
                    .await;
                // Count the reports the server says it stored: a 200
                // batch can still hold per-report rejections (the per-key
                // rate limit, 120 a minute by default, rejects some of
                // these 400 reports from one key, more or fewer depending
                // on timing).
                let Ok(r) = resp else { return 0 };
                if r.status() != 200 {
                    return 0;
                }
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                body["results"].as_array().map_or(0, |results| {
                    results
                        .iter()
                        .filter(|x| {
                            matches!(
                                x["status"].as_str(),
                                Some("accepted" | "provisional" | "held" | "stored")
                            )
                        })
                        .count() as i64
                })
            }));
            if b < 5 {
                // The first five batches complete before anything else: at
                // least these are accepted for sure.
                let t = tasks.pop().expect("task");
                let n = t.await.expect("task");
                assert_eq!(n, 20, "batch {b} before the signal");
                before += n;
            }
            if b == 10 {
                let pid = child.id().to_string();
                let killed = Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill");
                assert!(killed.success());
            }
        }
        let mut accepted = before;
        for t in tasks {
            accepted += t.await.expect("task");
        }
        accepted
    });
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(accepted >= 100, "the batches sent before the signal count");
    // The audit log holds every stored report (held ones too: they enter
    // the history runs only once a crawl confirms them, trust issue).
    let stored = rt.block_on(async {
        let store = backend::store::connect(&db).await.expect("reopen");
        let pk = Keypair::from_seed(&[3; 32]).public_bytes();
        let rec = store.keys_by_public(&[pk]).await.expect("key")[0]
            .clone()
            .expect("registered");
        store.key_activity(rec.id).await.expect("activity").reports
    });
    assert_eq!(
        stored, accepted,
        "every batch answered 200 is in the database"
    );
}

fn wait_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("server did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
