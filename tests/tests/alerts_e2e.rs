//! Alerts end to end with the real `pricewatch serve` binary, an SMTP sink
//! and a webhook receiver on loopback: HTTP API -> report -> published
//! change -> outbox -> notifier -> SMTP / webhook. Confirmation mail,
//! alert mail content, two alerts batched into one mail, the webhook body
//! and HMAC, the alerts feed's delivery state, one-click unsubscribe.

use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::http;
use tests::smtp_sink::{ReceivedMail, SmtpSink};
use tests::webhook_sink::WebhookSink;
use tests::PricewatchServer;
use wasm_core::protocol::{
    b64u_encode, pow_solve, sign_request, Keypair, Observation, Registration,
};
use wasm_core::types::{Availability, Condition, Seller};

const ASIN: &str = "B08N5WRWNW";
const ASIN2: &str = "B0BSHF7WHW";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Client<'a> {
    server: &'a PricewatchServer,
    kp: Keypair,
    n: std::cell::Cell<u32>,
}

impl Client<'_> {
    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let n = self.n.get();
        self.n.set(n + 1);
        let mut nonce = [9u8; 16];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        let nonce = b64u_encode(&nonce);
        let t = now_ms();
        let sig = sign_request(&self.kp, method, path, t, &nonce, body.as_bytes());
        let ts = t.to_string();
        let key = self.kp.public_b64u();
        let r = http::request(
            self.server.addr(),
            method,
            path,
            &[
                ("content-type", "application/json"),
                ("x-pricewatch-key", &key),
                ("x-pricewatch-timestamp", &ts),
                ("x-pricewatch-nonce", &nonce),
                ("x-pricewatch-signature", &sig),
            ],
            body.as_bytes(),
        )
        .expect("request");
        (
            r.status,
            serde_json::from_str(&r.text()).unwrap_or(Value::Null),
        )
    }

    fn report(&self, asin: &str, price: u64) {
        let n = self.n.get();
        self.n.set(n + 1);
        let mut nonce = [5u8; 16];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        nonce[4] = asin.as_bytes()[9];
        let o = Observation {
            key: self.kp.public_b64u(),
            asin: asin.into(),
            marketplace: "amazon.com".into(),
            condition: Condition::New,
            price_minor: Some(price),
            currency: "USD".into(),
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: format!("Echo Dot {asin}"),
            observed_at: now_ms(),
            nonce: b64u_encode(&nonce),
        };
        let body = json!({"reports": [o.into_report(&self.kp).expect("sign")]}).to_string();
        let r = http::request(
            self.server.addr(),
            "POST",
            "/v1/reports",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .expect("report");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        assert_eq!(v["results"][0]["status"], "accepted", "{v}");
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn link_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {text}"));
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

fn mails_to(sink: &SmtpSink, addr: &str) -> Vec<ReceivedMail> {
    sink.messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == addr))
        .collect()
}

#[test]
fn email_and_webhook_alerts_through_the_real_server() {
    let sink = SmtpSink::start().expect("smtp sink");
    let hooks = WebhookSink::start().expect("webhook sink");
    let smtp_url = sink.url();
    // The reporting key is a trusted verifier key: its reports are ground
    // truth and publish at once (a fresh collector's would be held for a
    // crawl under the trust rules, tested in trust_e2e.rs).
    let kp = Keypair::from_seed(&[11; 32]);
    let verifier_key = kp.public_b64u();
    let server = PricewatchServer::start_with(&[
        "--trusted-verifier-key",
        &verifier_key,
        "--no-embedded-verifier",
        "--pow-difficulty",
        "4",
        "--smtp-url",
        &smtp_url,
        "--webhook-allow-loopback-http",
        "--digest-window-ms",
        "1000",
    ])
    .expect("server");
    let pow = pow_solve(&kp.public_b64u(), 4, 0, u64::MAX).expect("pow");
    let reg = serde_json::to_string(&Registration::new(&kp, &pow)).expect("json");
    let r = http::request(
        server.addr(),
        "POST",
        "/v1/keys",
        &[("content-type", "application/json")],
        reg.as_bytes(),
    )
    .expect("register");
    // 200: trusted verifier keys are registered when the server starts.
    assert_eq!(r.status, 200, "{}", r.text());
    let c = Client {
        server: &server,
        kp,
        n: std::cell::Cell::new(1),
    };
    c.report(ASIN, 5000);
    c.report(ASIN2, 2000);

    let addr = "shopper@example.org";
    let hook_url = hooks.url("/hook");
    let w1 = json!({"asin": ASIN, "marketplace": "amazon.com", "condition": "new",
        "target_price_minor": 4000,
        "channels": {"extension": true, "email": addr, "webhook": hook_url}});
    let (s, v) = c.send("POST", "/v1/watches", &w1.to_string());
    assert_eq!(s, 201, "{v}");
    let secret = v["webhook_secret"].as_str().expect("secret").to_string();
    assert_eq!(v["channels"]["email_confirmed"], false);
    let w2 = json!({"asin": ASIN, "marketplace": "amazon.com", "condition": "new",
        "drop_percent": 10, "channels": {"extension": true, "email": addr}});
    let (s, v) = c.send("POST", "/v1/watches", &w2.to_string());
    assert_eq!(s, 201, "{v}");
    let w3 = json!({"asin": ASIN2, "marketplace": "amazon.com", "condition": "new",
        "target_price_minor": 1500, "channels": {"extension": true, "email": addr}});
    let (s, v) = c.send("POST", "/v1/watches", &w3.to_string());
    assert_eq!(s, 201, "{v}");

    // One confirmation mail for the address; the link confirms it.
    let confirm = wait_for("confirmation mail", || {
        mails_to(&sink, addr).into_iter().next()
    });
    let text = confirm.part("text/plain").expect("text part");
    let link = link_after(&text, "/v1/email/confirm?token=");
    let r = http::get(server.addr(), &link).expect("confirm");
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, v) = c.send("GET", "/v1/watches", "");
    assert_eq!(v["watches"][0]["channels"]["email_confirmed"], true, "{v}");
    assert_eq!(mails_to(&sink, addr).len(), 1, "one confirmation only");

    // The price falls to 39.00: both watches fire; one mail, one webhook.
    let before = now_ms();
    c.report(ASIN, 3900);
    let mail = wait_for("alert mail", || mails_to(&sink, addr).into_iter().nth(1));
    let text = mail.part("text/plain").expect("text part");
    assert!(text.contains("$39.00"), "{text}");
    assert!(text.contains("$50.00"), "{text}");
    assert!(text.contains(&format!("/p/amazon.com/{ASIN}")), "{text}");
    assert!(text.contains(&format!("Echo Dot {ASIN}")), "{text}");
    let unsub = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(unsub.contains("/v1/email/unsubscribe?token="), "{unsub}");
    let req = wait_for("webhook", || hooks.requests().into_iter().next());
    assert_eq!(req.path, "/hook");
    let body: Value = serde_json::from_slice(&req.body).expect("webhook json");
    assert!(req.body_text().contains("39.00"), "{body}");
    let sig = req.header("x-pricewatch-signature").expect("signature");
    assert_eq!(
        backend::notify::webhook::verify_signature(
            secret.as_bytes(),
            sig,
            &req.body,
            now_ms(),
            300_000
        ),
        Ok(())
    );
    assert!(backend::notify::webhook::verify_signature(
        b"wrong",
        sig,
        &req.body,
        now_ms(),
        300_000
    )
    .is_err());
    // Batched: the two alerts went out as one mail (confirmation + 1).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(mails_to(&sink, addr).len(), 2);
    assert_eq!(hooks.requests().len(), 1, "the drop watch has no webhook");
    println!("price change to mail: {} ms", now_ms() - before);

    // The feed shows both alerts and their delivery.
    let (s, v) = c.send("GET", "/v1/alerts?after=0", "");
    assert_eq!(s, 200, "{v}");
    let alerts = v["alerts"].as_array().expect("alerts").clone();
    assert_eq!(alerts.len(), 2, "{v}");
    let kinds: Vec<&str> = alerts.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"target_reached") && kinds.contains(&"price_drop"),
        "{kinds:?}"
    );
    for a in &alerts {
        assert_eq!(a["delivery"]["email"], "delivered", "{a}");
    }
    assert_eq!(alerts[0]["delivery"]["webhook"], "delivered");

    // One-click unsubscribe (RFC 8058 POST); then no more mail.
    let path = link_after(&unsub, "/v1/email/unsubscribe?token=");
    let page = http::get(server.addr(), &path).expect("page");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("<form method=\"post\""),
        "{}",
        page.text()
    );
    let r = http::request(
        server.addr(),
        "POST",
        &path,
        &[("content-type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    )
    .expect("unsubscribe");
    assert_eq!(r.status, 200, "{}", r.text());
    c.report(ASIN2, 1400);
    let (_, v) = wait_for("third alert", || {
        let (s, v) = c.send("GET", "/v1/alerts?after=0", "");
        (v["alerts"].as_array().map(|a| a.len()) == Some(3)).then_some((s, v))
    });
    assert_eq!(v["alerts"][2]["delivery"]["email"], "none", "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(mails_to(&sink, addr).len(), 2, "nothing after unsubscribe");
    let m = server.get("/metrics").expect("metrics");
    assert!(m.text().contains("email"), "{}", m.text());
}
