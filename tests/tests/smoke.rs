//! First end-to-end smoke tests: the real `pricewatch serve` binary, and
//! the built extension in headless Chromium.

use std::time::Duration;
use tests::{ExtensionBrowser, PricewatchServer};

const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn serve_answers_healthz_on_a_temporary_sqlite_database() {
    let mut server = PricewatchServer::start().expect("pricewatch serve starts");
    let response = server.get("/healthz").expect("GET /healthz");
    assert_eq!(
        response.status,
        200,
        "GET /healthz answered {}: {}\nserver output:\n{}",
        response.status,
        response.text(),
        server.log()
    );
    assert!(server.is_running(), "the server stays up after a request");
    let missing = server.get("/no/such/route").expect("GET an unknown path");
    assert_eq!(missing.status, 404, "an unknown path is a 404");
}

#[test]
fn two_servers_run_side_by_side_on_their_own_ports() {
    let a = PricewatchServer::start().expect("first server");
    let b = PricewatchServer::start().expect("second server");
    assert_ne!(a.addr(), b.addr());
    assert_eq!(a.get("/healthz").expect("a").status, 200);
    assert_eq!(b.get("/healthz").expect("b").status, 200);
    let addr = a.addr();
    drop(a);
    // Dropping the handle stops the process: nothing answers there any more.
    assert!(
        tests::http::get(addr, "/healthz").is_err(),
        "the server on {addr} still answers after drop"
    );
}

#[test]
fn extension_service_worker_registers_and_runs_the_wasm_core() {
    let Some(browser) = ExtensionBrowser::for_test("extension smoke test") else {
        return;
    };
    let run = browser
        .run_script("extension_smoke.cjs", &[], BROWSER_TIMEOUT)
        .expect("the extension loads and its service worker sets its marker");
    assert!(
        run.errors.is_empty(),
        "console or service worker errors: {:#?}",
        run.errors
    );
    // The marker is the wasm core's version, which is this workspace's.
    assert_eq!(run.result["ready"], env!("CARGO_PKG_VERSION"));
    let sw_url = run.result["serviceWorkerUrl"].as_str().unwrap_or_default();
    assert!(
        sw_url.starts_with("chrome-extension://") && sw_url.ends_with("/service_worker.js"),
        "unexpected service worker URL {sw_url:?}"
    );
    let backend = run.result["backend"].as_str().unwrap_or_default();
    assert!(
        backend.starts_with("http://") || backend.starts_with("https://"),
        "config.js carries the backend URL, got {backend:?}"
    );
}

#[test]
fn service_worker_errors_reach_the_test() {
    // The harness must not be blind: an error thrown inside the service
    // worker has to show up in the collected errors.
    let Some(browser) = ExtensionBrowser::for_test("service worker error collection") else {
        return;
    };
    let run = browser
        .run_script(
            "extension_smoke.cjs",
            &[("PRICEWATCH_SMOKE_THROW", "1")],
            BROWSER_TIMEOUT,
        )
        .expect("the smoke script runs");
    assert!(
        run.errors
            .iter()
            .any(|e| e.contains("pricewatch-smoke-selftest")),
        "the thrown error was not collected: {:#?}",
        run.errors
    );
}
