//! The extension's backend setting and its sending across a service-worker
//! kill, end to end: the real `pricewatch serve` (temporary SQLite,
//! `--pow-difficulty 8`), the fake Amazon over HTTPS, and headless Chromium
//! with a copy of `dist/extension` built for the first backend. Scenarios
//! run in `tests/js/extension_backend.cjs` (its header says how each one
//! works and why the host-permission prompt is not shown); this side
//! checks what reached which backend.

use serde_json::Value;
use std::time::Duration;
use tests::fake_amazon::{FakeAmazon, ProductState};
use tests::{BrowserRun, ExtensionBrowser, PricewatchServer};
use wasm_core::protocol::Report;

const TIMEOUT: Duration = Duration::from_secs(120);

struct Setup {
    server: PricewatchServer,
    fake: FakeAmazon,
    browser: ExtensionBrowser,
    _copy: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    let browser = ExtensionBrowser::for_test(test)?;
    let server =
        PricewatchServer::start_with(&["--pow-difficulty", "8"]).expect("pricewatch serve");
    let fake = FakeAmazon::start().expect("fake Amazon");
    let (browser, copy) = browser
        .with_backend(&server.url())
        .expect("extension copy for this backend");
    for (asin, price) in [("B0PWTEST01", 1_111), ("B0PWTEST02", 2_222)] {
        fake.set_product(
            "www.amazon.com",
            asin,
            ProductState::priced(price, "Pricewatch Backend Test"),
        );
    }
    Some(Setup {
        server,
        fake,
        browser,
        _copy: copy,
    })
}

fn run(
    setup: &Setup,
    scenario: &str,
    extra: &[(&str, &str)],
    logs: &[&PricewatchServer],
) -> BrowserRun {
    let port = setup.fake.port().to_string();
    let url = setup.server.url();
    let mut env = vec![
        ("PRICEWATCH_FAKE_PORT", port.as_str()),
        ("PRICEWATCH_BACKEND_URL", url.as_str()),
        ("PRICEWATCH_SCENARIO", scenario),
    ];
    env.extend_from_slice(extra);
    let run = setup
        .browser
        .run_script("extension_backend.cjs", &env, TIMEOUT)
        .unwrap_or_else(|e| {
            let logs: Vec<String> = logs.iter().map(|s| s.log()).collect();
            panic!("{scenario}: {e}\nserver logs:\n{}", logs.join("\n---\n"))
        });
    // The extension's own errors only (its pages and worker, and what the
    // content script logs); not the fake pages' unreachable resources.
    let ours: Vec<&String> = run
        .errors
        .iter()
        .filter(|e| e.contains("chrome-extension://") || e.contains("pricewatch"))
        .collect();
    assert!(
        ours.is_empty(),
        "{scenario}: the extension logged errors: {ours:#?}"
    );
    run
}

/// The sent-log entries (report verified) with their backend status.
fn sent(r: &Value) -> Vec<(Report, String)> {
    r["sent"]
        .as_array()
        .expect("sent log is a list")
        .iter()
        .map(|entry| {
            let report = Report::from_json(&entry["report"].to_string())
                .unwrap_or_else(|e| panic!("sent report does not parse: {e}: {entry}"));
            report
                .verify()
                .unwrap_or_else(|e| panic!("sent report does not verify: {e}: {entry}"));
            (
                report,
                entry["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn status_of(server: &PricewatchServer, path: &str) -> u16 {
    server.get(path).expect("GET").status
}

#[test]
fn a_backend_url_set_in_the_options_page_receives_the_next_report() {
    let Some(setup) = setup("extension backend switch") else {
        return;
    };
    let second =
        PricewatchServer::start_with(&["--pow-difficulty", "8"]).expect("second pricewatch serve");
    let second_url = second.url();
    assert_ne!(second_url, setup.server.url());
    let run = run(
        &setup,
        "switch",
        &[("PRICEWATCH_SECOND_BACKEND", second_url.as_str())],
        &[&setup.server, &second],
    );
    let r = &run.result;
    assert_eq!(
        r["before"]["backendUrl"],
        setup.server.url().as_str(),
        "{r}"
    );
    assert_eq!(
        r["note"],
        format!("Saved: {second_url}").as_str(),
        "the options page saved the new URL: {r}"
    );
    assert_eq!(r["after"]["backendUrl"], second_url.as_str(), "{r}");
    assert_eq!(r["field"], second_url.as_str(), "{r}");

    let reports = sent(r);
    assert_eq!(reports.len(), 2, "{r}");
    let (one, two) = (&reports[0].0, &reports[1].0);
    assert_eq!(one.obs.asin, "B0PWTEST01");
    assert_eq!(two.obs.asin, "B0PWTEST02");
    assert_eq!(two.obs.price_minor, Some(2_222));
    // The same key, registered anew at the second backend (it took the
    // report, which it only does from a key registered there).
    assert_eq!(one.obs.key, two.obs.key);
    assert!(
        ["accepted", "provisional", "held", "stored"].contains(&reports[1].1.as_str()),
        "{r}"
    );

    // The first report went to the first backend only, the second to the
    // second backend only.
    let one_path = "/v1/products/amazon.com/B0PWTEST01";
    let two_path = "/v1/products/amazon.com/B0PWTEST02";
    assert_eq!(status_of(&setup.server, one_path), 200);
    assert_eq!(
        status_of(&setup.server, two_path),
        404,
        "the old backend got the report after the switch"
    );
    assert_eq!(status_of(&second, two_path), 200, "{}", second.log());
    assert_eq!(status_of(&second, one_path), 404);
    let summary: Value =
        serde_json::from_str(&second.get(two_path).expect("summary").text()).expect("json");
    assert_eq!(summary["offers"]["new"]["price_minor"], 2_222, "{summary}");
}

#[test]
fn a_report_in_flight_when_the_worker_is_killed_arrives_exactly_once() {
    let Some(setup) = setup("extension worker killed mid-send") else {
        return;
    };
    let run = run(&setup, "kill", &[], &[&setup.server]);
    let r = &run.result;
    assert!(
        r["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("Saved: http://127.0.0.1:")),
        "the extension was pointed at the proxy: {r}"
    );
    // Mid-send: the report was still queued while its POST was held, and
    // still queued after the worker died (its answer never arrived).
    assert_eq!(r["queuedWhileHeld"], 1, "{r}");
    assert_eq!(r["queuedAfterKill"], 1, "{r}");
    assert_eq!(r["sentBeforeRestart"], 0, "{r}");
    // The dead worker's request did reach the backend, which stored it.
    assert_eq!(r["heldAnswer"]["status"], 200, "{r}");
    let first_status = r["heldAnswer"]["body"]["results"][0]["status"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ["accepted", "provisional", "held", "stored"].contains(&first_status),
        "{r}"
    );
    // The restarted worker sent it again (two POSTs in all) and the
    // backend knew it: `duplicate` (a batch of one duplicate is answered
    // with HTTP 409 and the per-report results; PROTOCOL.md §4).
    assert_eq!(r["reportPosts"], 2, "{r}");
    assert_eq!(
        r["resent"]["body"]["results"][0]["status"], "duplicate",
        "{r}"
    );
    assert!(
        r["resent"]["status"] == 409 || r["resent"]["status"] == 200,
        "{r}"
    );
    assert_eq!(r["queuedAfter"], 0, "the queue emptied: {r}");
    // The worker's log never shows the report as stored a second time.
    for (report, status) in sent(r) {
        assert_eq!(report.obs.asin, "B0PWTEST01");
        assert_eq!(status, "duplicate", "{r}");
    }
    // The worker stopped and started again in between.
    let statuses: Vec<&str> = r["workerStatuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let stopped = statuses.iter().position(|s| *s == "stopped");
    assert!(
        stopped.is_some_and(|i| statuses[i..].contains(&"running")),
        "{statuses:?}"
    );

    // Exactly once at the backend: one observation in the raw history.
    let history = setup
        .server
        .get("/v1/products/amazon.com/B0PWTEST01/history?condition=new&range=all&granularity=raw")
        .expect("history");
    assert_eq!(history.status, 200, "{}", history.text());
    let history: Value = serde_json::from_str(&history.text()).expect("history json");
    let observations: u64 = history["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["n"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(observations, 1, "{history}");
}
