//! A fake Amazon for tests: an HTTPS server on 127.0.0.1 serving product
//! pages whose price, availability and title the test sets, and failing on
//! demand (robot-check page, any status, slow answers, dropped connections).
//!
//! - TLS: a throw-away CA and a leaf certificate valid for every
//!   marketplace host (`amazon.de`, `www.amazon.de`, ...), `localhost` and
//!   `127.0.0.1`, generated at start. Clients trust [`FakeAmazon::ca_pem`]
//!   (rustls/webpki refuse a self-signed leaf as its own root, hence the CA);
//!   Chromium runs with `--ignore-certificate-errors` and maps the real
//!   hosts onto [`FakeAmazon::port`] with `--host-resolver-rules`.
//! - Routing: the marketplace comes from the `Host` header (a loopback
//!   host means [`FakeAmazon::set_default_host`], amazon.com unless
//!   changed); the ASIN from Amazon's URL shapes (`/dp/{asin}`,
//!   `/{slug}/dp/{asin}`, `/gp/product/{asin}`, `/gp/aw/d/{asin}`).
//!   A page set with [`FakeAmazon::set_page`] for an exact path wins over a
//!   product; an unknown product gets Amazon's 404 page.
//! - Like Amazon, it hands out a `session-id` cookie (scoped to the store's
//!   domain) to any request that does not send one, and it records every
//!   request (host, path, user agent, cookies, time) for assertions.
//! - It runs on its own thread with its own tokio runtime, so sync and
//!   async tests use it alike; dropping the handle stops it.
//!
//! ```no_run
//! use tests::fake_amazon::{Failure, FakeAmazon, ProductState};
//! let fake = FakeAmazon::start()?;
//! fake.set_product("amazon.de", "B0PWTEST01", ProductState::priced(4_999, "Echo Dot"));
//! fake.fail_next("amazon.de", "B0PWTEST01", Failure::Status(503), 2);
//! // Chromium: --host-resolver-rules="MAP www.amazon.de 127.0.0.1:{port}"
//! // and --ignore-certificate-errors; Rust clients trust `fake.ca_pem()`.
//! let port = fake.port();
//! # let _ = port;
//! assert!(fake.requests_for("amazon.de", "B0PWTEST01").is_empty());
//! # Ok::<(), tests::Error>(())
//! ```
//!
//! Page templates are this project's own, in the 2024 desktop layout
//! (`#corePriceDisplay_desktop_feature_div .priceToPay`, `#availability`,
//! `#merchantInfoFeature_feature_div`), with a list-price distractor, and
//! localised for the marketplaces the corpus covers.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;
use wasm_core::marketplace::Marketplace;
use wasm_core::price::format_price;
use wasm_core::types::{Availability, Seller};

/// What a product page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductState {
    /// The price to pay, in minor units; `None` shows no price.
    pub price_minor: Option<u64>,
    /// A struck-through list price shown beside it (a distractor).
    pub list_price_minor: Option<u64>,
    /// Stock status text.
    pub availability: Availability,
    /// Who sells the buy-box offer.
    pub seller: Seller,
    /// Product title.
    pub title: String,
    /// Extra response headers (e.g. a `Content-Security-Policy`).
    pub headers: Vec<(String, String)>,
    /// Variation swatches (size, colour). Clicking one (in a browser)
    /// swaps the buy-box price, `input#ASIN` and the URL to the child's,
    /// as Amazon's twister does, through the same-origin script
    /// [`TWISTER_JS_PATH`] (so it also runs under `script-src 'self'`).
    pub variations: Vec<Variation>,
}

/// One variation swatch of a product page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variation {
    /// The child ASIN.
    pub asin: String,
    /// Button text ("Large", "Blue").
    pub label: String,
    /// The child's price; `None` removes the price block when chosen.
    pub price_minor: Option<u64>,
}

/// Where the fake serves its twister script.
pub const TWISTER_JS_PATH: &str = "/fake-amazon/twister.js";

const TWISTER_JS: &str = r#"// pricewatch fake Amazon: variation swatches swap the buy box in place.
document.addEventListener('click', function (event) {
  var button = event.target.closest('[data-pw-variation]');
  if (!button) { return; }
  var block = document.querySelector('#corePriceDisplay_desktop_feature_div .priceToPay');
  var price = button.getAttribute('data-price');
  if (block && price) {
    block.querySelector('.a-offscreen').textContent = price;
    var shown = block.querySelector('[aria-hidden]');
    if (shown) { shown.textContent = price; }
  } else if (block) {
    block.remove();
  }
  var asin = document.getElementById('ASIN');
  if (asin) { asin.value = button.getAttribute('data-asin'); }
  document.querySelectorAll('[data-pw-variation]').forEach(function (b) {
    b.classList.toggle('pw-selected', b === button);
  });
  history.replaceState(null, '', '/dp/' + button.getAttribute('data-asin'));
});
"#;

impl Default for ProductState {
    fn default() -> Self {
        ProductState {
            price_minor: None,
            list_price_minor: None,
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: "Pricewatch Test Product".to_string(),
            headers: Vec::new(),
            variations: Vec::new(),
        }
    }
}

impl ProductState {
    /// An in-stock product sold by Amazon at `price_minor`.
    pub fn priced(price_minor: u64, title: &str) -> ProductState {
        ProductState {
            price_minor: Some(price_minor),
            title: title.to_string(),
            ..ProductState::default()
        }
    }
}

/// A failure to answer with, instead of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Amazon's robot check ("Type the characters you see"), status 200.
    Captcha,
    /// This status with a short error page, plus `Retry-After` when
    /// [`FakeAmazon::set_retry_after`] asked for one.
    Status(u16),
    /// Wait this many milliseconds, then answer normally.
    Delay(u64),
    /// Close the connection without answering.
    Drop,
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// When it arrived.
    pub at: Instant,
    /// `Host` header as sent.
    pub host: String,
    /// The marketplace domain it was routed to.
    pub marketplace: String,
    /// Path and query.
    pub path: String,
    /// ASIN found in the path.
    pub asin: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Accept-Language` header.
    pub accept_language: Option<String>,
    /// `Cookie` header.
    pub cookies: Option<String>,
    /// What the server answered: status, or 0 for a dropped connection.
    pub status: u16,
}

impl RecordedRequest {
    /// The value of cookie `name` the request sent.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.as_deref().and_then(|c| cookie_value(c, name))
    }
}

fn cookie_value(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

struct FailRule {
    marketplace: String,
    asin: Option<String>,
    failure: Failure,
    remaining: u32,
}

/// A whole page served at a path: its HTML and extra headers.
type Page = (String, Vec<(String, String)>);

#[derive(Default)]
struct State {
    default_marketplace: String,
    products: HashMap<(String, String), ProductState>,
    pages: HashMap<(String, String), Page>,
    failures: Vec<FailRule>,
    requests: Vec<RecordedRequest>,
    retry_after: Option<u32>,
    session_counter: u64,
}

/// The running server. Dropping it stops the server.
pub struct FakeAmazon {
    port: u16,
    ca_pem: String,
    cert_pem: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeAmazon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAmazon")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The marketplace key of a host: `www.amazon.de:443` -> `amazon.de`;
/// anything that is not a store host (loopback) -> `None`.
fn store_of(host: &str) -> Option<String> {
    Marketplace::from_host(host).map(|m| m.domain().to_string())
}

/// Every host name the certificate covers.
pub fn certificate_hosts() -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for m in Marketplace::all() {
        hosts.push(m.domain().to_string());
        hosts.push(format!("www.{}", m.domain()));
        hosts.push(format!("smile.{}", m.domain()));
    }
    hosts
}

impl FakeAmazon {
    /// Starts the server on a free loopback port.
    pub fn start() -> crate::Result<FakeAmazon> {
        let (ca_pem, cert_pem, tls) =
            make_tls().map_err(|e| crate::Error::new(format!("fake Amazon TLS setup: {e}")))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            default_marketplace: "amazon.com".to_string(),
            ..State::default()
        }));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-amazon".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    serve(listener, TlsAcceptor::from(tls), thread_state, rx).await;
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(crate::Error::new(format!(
                    "fake Amazon failed to start: {e}"
                )))
            }
            Err(_) => return Err(crate::Error::new("fake Amazon thread died at start")),
        }
        Ok(FakeAmazon {
            port,
            ca_pem,
            cert_pem,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `https://127.0.0.1:port` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// PEM of the CA that signed the server certificate: what clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// PEM of the server (leaf) certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the CA PEM into `dir` and returns its path (for
    /// `pricewatch verifier --ca-cert`).
    pub fn write_ca_pem(&self, dir: &std::path::Path) -> crate::Result<std::path::PathBuf> {
        let path = dir.join("fake-amazon-ca.pem");
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }

    /// Which marketplace a loopback `Host` (127.0.0.1, localhost) means.
    pub fn set_default_host(&self, host: &str) {
        if let Some(m) = store_of(host) {
            lock(&self.state).default_marketplace = m;
        }
    }

    fn key(&self, host: &str) -> String {
        store_of(host).unwrap_or_else(|| lock(&self.state).default_marketplace.clone())
    }

    /// Sets what `/dp/{asin}` shows on `host` (`amazon.de` or `www.amazon.de`).
    pub fn set_product(&self, host: &str, asin: &str, product: ProductState) {
        let key = (self.key(host), asin.to_string());
        lock(&self.state).products.insert(key, product);
    }

    /// Changes only the price of a product (creating it if needed).
    pub fn set_price(&self, host: &str, asin: &str, price_minor: Option<u64>) {
        let key = (self.key(host), asin.to_string());
        lock(&self.state)
            .products
            .entry(key)
            .or_default()
            .price_minor = price_minor;
    }

    /// Serves `html` with `headers` at exactly `path` (query ignored) on `host`.
    pub fn set_page(&self, host: &str, path: &str, html: &str, headers: &[(&str, &str)]) {
        let path = path.split('?').next().unwrap_or(path).to_string();
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let key = (self.key(host), path);
        lock(&self.state)
            .pages
            .insert(key, (html.to_string(), headers));
    }

    /// The next `times` requests for `asin` on `host` fail with `failure`.
    /// Rules queue up: a second call for the same product applies after the
    /// first is used up.
    pub fn fail_next(&self, host: &str, asin: &str, failure: Failure, times: u32) {
        let rule = FailRule {
            marketplace: self.key(host),
            asin: Some(asin.to_string()),
            failure,
            remaining: times,
        };
        lock(&self.state).failures.push(rule);
    }

    /// The next `times` requests for any path on `host` fail with `failure`.
    pub fn fail_host(&self, host: &str, failure: Failure, times: u32) {
        let rule = FailRule {
            marketplace: self.key(host),
            asin: None,
            failure,
            remaining: times,
        };
        lock(&self.state).failures.push(rule);
    }

    /// Sends `Retry-After: secs` with failure statuses (none by default).
    pub fn set_retry_after(&self, secs: Option<u32>) {
        lock(&self.state).retry_after = secs;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Requests so far for `asin` on `host`.
    pub fn requests_for(&self, host: &str, asin: &str) -> Vec<RecordedRequest> {
        let m = self.key(host);
        self.requests()
            .into_iter()
            .filter(|r| r.marketplace == m && r.asin.as_deref() == Some(asin))
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }
}

impl Drop for FakeAmazon {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn make_tls() -> Result<(String, String, Arc<rustls::ServerConfig>), Box<dyn std::error::Error>> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pricewatch fake Amazon test CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(certificate_hosts())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "www.amazon.com");
    leaf_params.distinguished_name = dn;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;

    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), leaf.pem(), Arc::new(config)))
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<Mutex<State>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, _)) = accepted else {
            // Out of file descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection unanswered.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// The ASIN in an Amazon path.
pub fn asin_in_path(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_asin = |s: &str| {
        s.len() == 10
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    };
    for (i, s) in segs.iter().enumerate() {
        let candidate = match *s {
            "dp" => segs.get(i + 1),
            "product" if i > 0 && segs[i - 1] == "gp" => segs.get(i + 1),
            "d" if i > 1 && segs[i - 1] == "aw" && segs[i - 2] == "gp" => segs.get(i + 1),
            _ => None,
        };
        if let Some(c) = candidate.filter(|c| is_asin(c)) {
            return Some(c.to_string());
        }
    }
    None
}

type Answer = Result<Response<Full<Bytes>>, DropConnection>;

async fn handle(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Answer {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = header("host").unwrap_or_default();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let cookies = header("cookie");
    let asin = asin_in_path(&path);
    let (marketplace, failure, index) = {
        let mut s = lock(&state);
        let marketplace = store_of(&host).unwrap_or_else(|| s.default_marketplace.clone());
        let failure = s
            .failures
            .iter_mut()
            .find(|r| {
                r.remaining > 0
                    && r.marketplace == marketplace
                    && (r.asin.is_none() || r.asin == asin)
            })
            .map(|r| {
                r.remaining -= 1;
                r.failure
            });
        s.failures.retain(|r| r.remaining > 0);
        s.requests.push(RecordedRequest {
            at: Instant::now(),
            host: host.clone(),
            marketplace: marketplace.clone(),
            path: path.clone(),
            asin: asin.clone(),
            user_agent: header("user-agent"),
            accept_language: header("accept-language"),
            cookies: cookies.clone(),
            status: 0,
        });
        (marketplace, failure, s.requests.len() - 1)
    };
    let set_status = |status: u16| {
        if let Some(r) = lock(&state).requests.get_mut(index) {
            r.status = status;
        }
    };
    let m = Marketplace::from_domain(&marketplace).unwrap_or(Marketplace::AMAZON_COM);
    let mut extra: Vec<(String, String)> = Vec::new();
    let (status, body) = match failure {
        Some(Failure::Drop) => {
            set_status(0);
            return Err(DropConnection);
        }
        Some(Failure::Captcha) => (200, robot_check_page(m, &path)),
        Some(Failure::Status(code)) => {
            if let Some(secs) = lock(&state).retry_after {
                extra.push(("retry-after".into(), secs.to_string()));
            }
            (code, error_page(code))
        }
        Some(Failure::Delay(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            page_for(&state, m, &marketplace, &path, asin.as_deref(), &mut extra)
        }
        None => page_for(&state, m, &marketplace, &path, asin.as_deref(), &mut extra),
    };
    set_status(status);
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("cache-control", "no-cache");
    if !extra
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header("content-type", "text/html;charset=UTF-8");
    }
    let has_session = cookies
        .as_deref()
        .and_then(|c| cookie_value(c, "session-id"))
        .is_some();
    if !has_session {
        let n = {
            let mut s = lock(&state);
            s.session_counter += 1;
            s.session_counter
        };
        let id = format!(
            "{:03}-{:07}-{:07}",
            100 + n % 900,
            rand::random::<u32>() % 10_000_000,
            n % 10_000_000
        );
        builder = builder.header(
            "set-cookie",
            format!("session-id={id}; Domain=.{marketplace}; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Path=/; Secure"),
        );
        builder = builder.header(
            "set-cookie",
            format!(
                "i18n-prefs={}; Domain=.{marketplace}; Path=/",
                m.currency().code()
            ),
        );
    }
    for (k, v) in &extra {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| DropConnection)
}

fn page_for(
    state: &Mutex<State>,
    m: Marketplace,
    marketplace: &str,
    path: &str,
    asin: Option<&str>,
    extra: &mut Vec<(String, String)>,
) -> (u16, String) {
    let s = lock(state);
    let bare = path.split('?').next().unwrap_or(path);
    if bare == TWISTER_JS_PATH {
        extra.push((
            "content-type".into(),
            "text/javascript; charset=utf-8".into(),
        ));
        return (200, TWISTER_JS.to_string());
    }
    if let Some((html, headers)) = s.pages.get(&(marketplace.to_string(), bare.to_string())) {
        extra.extend(headers.iter().cloned());
        return (200, html.clone());
    }
    if let Some(asin) = asin {
        if let Some(p) = s.products.get(&(marketplace.to_string(), asin.to_string())) {
            extra.extend(p.headers.iter().cloned());
            return (200, product_page(m, asin, p));
        }
    }
    (404, not_found_page(m))
}

/// Texts of the page templates in a marketplace's language.
struct Texts {
    lang: &'static str,
    store: &'static str,
    in_stock: &'static str,
    out_of_stock: &'static str,
    preorder: &'static str,
    sold_by_amazon: &'static str,
    sold_by_other: &'static str,
    list_price: &'static str,
}

fn texts(m: Marketplace) -> Texts {
    let en = Texts {
        lang: "en-us",
        store: "Amazon.com",
        in_stock: "In Stock",
        out_of_stock:
            "Currently unavailable. We don't know when or if this item will be back in stock.",
        preorder: "Pre-order now.",
        sold_by_amazon: "Ships from and sold by Amazon.",
        sold_by_other: "Ships from Amazon. Sold by Pricewatch Test Shop.",
        list_price: "List Price:",
    };
    match m.domain() {
        "amazon.de" => Texts {
            lang: "de-de",
            store: "Amazon.de",
            in_stock: "Auf Lager",
            out_of_stock: "Derzeit nicht verfügbar. Ob und wann dieser Artikel wieder vorrätig sein wird, ist unbekannt.",
            preorder: "Dieser Artikel erscheint bald. Jetzt vorbestellen.",
            sold_by_amazon: "Verkauf und Versand durch Amazon.",
            sold_by_other: "Verkauf durch Pricewatch Testladen. Versand durch Amazon.",
            list_price: "Unverb. Preisempf.:",
        },
        "amazon.fr" => Texts {
            lang: "fr-fr",
            store: "Amazon.fr",
            in_stock: "En stock",
            out_of_stock: "Actuellement indisponible.",
            preorder: "Précommande.",
            sold_by_amazon: "Expédié et vendu par Amazon.",
            sold_by_other: "Vendu par Boutique Pricewatch. Expédié par Amazon.",
            list_price: "Prix conseillé :",
        },
        "amazon.co.jp" => Texts {
            lang: "ja-jp",
            store: "Amazon.co.jp",
            in_stock: "在庫あり。",
            out_of_stock: "現在お取り扱いできません。",
            preorder: "予約受付中。",
            sold_by_amazon: "この商品は、Amazon.co.jp が販売、発送します。",
            sold_by_other: "販売元: Pricewatch テスト店",
            list_price: "参考価格:",
        },
        "amazon.co.uk" => Texts {
            lang: "en-gb",
            store: "Amazon.co.uk",
            list_price: "RRP:",
            ..en
        },
        _ => Texts { store: "Amazon", ..en },
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s: Vec<&str> = s.split('-').filter(|p| !p.is_empty()).take(6).collect();
    if s.is_empty() {
        "product".into()
    } else {
        s.join("-")
    }
}

/// A product page in the 2024 desktop layout.
pub fn product_page(m: Marketplace, asin: &str, p: &ProductState) -> String {
    let t = texts(m);
    let domain = m.domain();
    let title = escape(&p.title);
    let price_block = match p.price_minor {
        Some(minor) if p.availability != Availability::OutOfStock => {
            let shown = escape(&format_price(minor, m));
            let list = p.list_price_minor.map_or(String::new(), |l| {
                format!(
                    r#"<div class="a-section a-spacing-small"><span class="a-size-small a-color-secondary aok-align-center basisPrice">{} <span class="a-price a-text-price" data-a-strike="true"><span class="a-offscreen">{}</span><span aria-hidden="true">{}</span></span></span></div>"#,
                    escape(t.list_price),
                    escape(&format_price(l, m)),
                    escape(&format_price(l, m)),
                )
            });
            format!(
                r#"<div id="corePriceDisplay_desktop_feature_div" class="celwidget"><div class="a-section a-spacing-none aok-align-center aok-relative"><span class="a-price aok-align-center reinventPricePriceToPayMargin priceToPay"><span class="a-offscreen">{shown}</span><span aria-hidden="true">{shown}</span></span></div>{list}</div>"#
            )
        }
        _ => String::new(),
    };
    let availability = match p.availability {
        Availability::InStock => t.in_stock,
        Availability::OutOfStock => t.out_of_stock,
        Availability::Preorder => t.preorder,
        Availability::Unknown => "",
    };
    let seller = match p.seller {
        Seller::Amazon => t.sold_by_amazon,
        Seller::ThirdParty => t.sold_by_other,
        Seller::Unknown => "",
    };
    format!(
        r#"<!doctype html>
<html lang="{lang}" class="a-no-js">
<head>
<meta charset="utf-8">
<title>{store}: {title}</title>
<link rel="canonical" href="https://www.{domain}/{slug}/dp/{asin}">
<script>var ue_sn = 'www.{domain}', ue_pti = '{asin}';</script>
</head>
<body>
<div id="a-page">
<div id="dp" class="a-container" data-asin="{asin}">
<div id="dp-container">
<div id="centerCol" class="centerColAlign">
<div id="titleSection"><h1 id="title" class="a-size-large"><span id="productTitle" class="a-size-large product-title-word-break">  {title}  </span></h1></div>
<div id="averageCustomerReviews"><span class="a-icon-alt">4.5 out of 5 stars</span></div>
{price_block}
{twister}
<div id="feature-bullets"><ul><li><span class="a-list-item">A product served by the pricewatch fake Amazon.</span></li></ul></div>
</div>
<div id="rightCol">
<div id="buybox">
<div id="availability" class="a-section a-spacing-base"><span class="a-size-medium a-color-success">{availability}</span></div>
<div id="merchantInfoFeature_feature_div"><span class="a-size-small">{seller}</span></div>
<input type="hidden" id="ASIN" name="ASIN" value="{asin}">
<span id="submit.add-to-cart"><input type="submit" value="Add to Cart"></span>
</div>
</div>
</div>
</div>
</div>
</body>
</html>
"#,
        lang = t.lang,
        store = t.store,
        slug = slug(&p.title),
        twister = twister(m, &p.variations),
    )
}

fn twister(m: Marketplace, variations: &[Variation]) -> String {
    if variations.is_empty() {
        return String::new();
    }
    let buttons: String = variations
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                r#"<li><button type="button" class="a-button-text" data-pw-variation="{i}" data-testid="variation-{i}" data-asin="{asin}" data-price="{price}">{label}</button></li>"#,
                asin = escape(&v.asin),
                price = v.price_minor.map_or(String::new(), |p| escape(&format_price(p, m))),
                label = escape(&v.label),
            )
        })
        .collect();
    format!(
        r#"<div id="twister_feature_div"><ul id="variation_size_name" class="a-unordered-list">{buttons}</ul></div>
<script src="{TWISTER_JS_PATH}"></script>"#
    )
}

/// Amazon's robot check, in this project's own words and markup.
pub fn robot_check_page(m: Marketplace, path: &str) -> String {
    let path = escape(path.split('?').next().unwrap_or("/"));
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title dir="ltr">{store}</title></head>
<body><div class="a-container a-padding-double-large">
<h4>Enter the characters you see below</h4>
<p class="a-last">Sorry, we just need to make sure you're not a robot. For best results, please make sure your browser is accepting cookies.</p>
<form method="get" action="/errors/validateCaptcha" name="">
<input type=hidden name="amzn" value="pwtest"><input type=hidden name="amzn-r" value="{path}">
<img src="/captcha/pwtest/Captcha_test.jpg" alt="captcha">
<input autocomplete="off" placeholder="Type characters" id="captchacharacters" name="field-keywords" type="text">
<button type="submit">Continue shopping</button>
</form></div></body></html>
"#,
        store = texts(m).store,
    )
}

/// Amazon's "page not found" page.
pub fn not_found_page(m: Marketplace) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{store} Page Not Found</title></head>
<body><a href="/ref=cs_404_logo"><img alt="{store}" src="/logo.png"></a>
<p>Looking for something? We're sorry. The Web address you entered is not a functioning page on our site.</p>
<a href="/dogsofamazon/ref=cs_404_link"><img alt="Dogs of Amazon" src="/error/dog.jpg"></a>
</body></html>
"#,
        store = texts(m).store,
    )
}

fn error_page(status: u16) -> String {
    format!(
        "<!doctype html><html><head><title>Error {status}</title></head><body><p>Sorry! Something went wrong on our end (status {status}).</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_asins_in_amazon_url_shapes() {
        for (path, want) in [
            ("/dp/B08N5WRWNW", Some("B08N5WRWNW")),
            ("/dp/B08N5WRWNW/", Some("B08N5WRWNW")),
            ("/Echo-Dot/dp/B08N5WRWNW?th=1&psc=1", Some("B08N5WRWNW")),
            ("/gp/product/3453319036/ref=x", Some("3453319036")),
            ("/gp/aw/d/B08N5WRWNW", Some("B08N5WRWNW")),
            ("/dp/b08n5wrwnw", None),
            ("/s?k=echo", None),
            ("/", None),
        ] {
            assert_eq!(asin_in_path(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn stores_come_from_host_headers() {
        assert_eq!(store_of("www.amazon.de:8443").as_deref(), Some("amazon.de"));
        assert_eq!(store_of("amazon.co.jp").as_deref(), Some("amazon.co.jp"));
        assert_eq!(store_of("127.0.0.1:9443"), None);
        assert!(certificate_hosts().contains(&"www.amazon.com.br".to_string()));
    }
}
