//! Message composition: pure functions from alerts to mail and webhook
//! bodies. No IO; every text here is tested as is.
//!
//! Prices are shown the way the product's marketplace shows them
//! ([`wasm_core::price::format_price`]): `$1,234.56` on amazon.com,
//! `1.234,56 €` on amazon.de, `￥1,598` on amazon.co.jp.
//!
//! One alert mail and a digest are the same thing: [`alert_email`] is a
//! digest of one. Product titles come from crawled pages, so they are
//! cleaned of control characters, shortened, and HTML-escaped in the HTML
//! part.

use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;
use wasm_core::price::format_price;
use wasm_core::types::Condition;

/// Why an alert fired (`kind` in `API.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The price fell to the watch's target or below.
    TargetReached,
    /// The price fell by at least the watch's percentage.
    PriceDrop,
    /// The product is available again.
    BackInStock,
    /// An earlier alert's price was refuted; `new_price_minor` is the
    /// verified price, `old_price_minor` the wrong one we reported.
    Correction,
}

impl AlertKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::TargetReached => "target_reached",
            AlertKind::PriceDrop => "price_drop",
            AlertKind::BackInStock => "back_in_stock",
            AlertKind::Correction => "correction",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AlertKind::TargetReached,
            AlertKind::PriceDrop,
            AlertKind::BackInStock,
            AlertKind::Correction,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One alert, as the worker hands it to a channel (the `API.md` alert plus
/// the product title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNotice {
    pub alert_id: i64,
    pub watch_id: i64,
    pub asin: Asin,
    pub marketplace: Marketplace,
    pub condition: Condition,
    pub kind: AlertKind,
    /// The product title as published (may be empty).
    pub title: String,
    /// The price before (for a correction: the wrong price we reported).
    pub old_price_minor: Option<u64>,
    /// The price now (for a correction: the verified price).
    pub new_price_minor: Option<u64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A composed mail, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-click unsubscribe URL for the `List-Unsubscribe` header
    /// (RFC 8058); `None` for mail that is not a subscription (confirmation).
    pub list_unsubscribe: Option<String>,
}

/// The longest title shown, in characters.
const MAX_TITLE_CHARS: usize = 120;

/// `{public_url}/p/{marketplace}/{asin}`.
pub fn product_url(public_url: &str, notice: &AlertNotice) -> String {
    format!(
        "{public_url}/p/{}/{}",
        notice.marketplace.domain(),
        notice.asin
    )
}

/// `{public_url}/v1/email/unsubscribe?token=...`.
pub fn unsubscribe_url(public_url: &str, token: &str) -> String {
    format!(
        "{public_url}/v1/email/unsubscribe?token={}",
        encode_query(token)
    )
}

/// `{public_url}/v1/email/confirm?token=...`.
pub fn confirm_url(public_url: &str, token: &str) -> String {
    format!(
        "{public_url}/v1/email/confirm?token={}",
        encode_query(token)
    )
}

/// The title as shown: control characters become spaces, runs of
/// whitespace collapse, long titles are cut with an ellipsis.
pub fn display_title(title: &str) -> String {
    let cleaned: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.is_empty() {
        return "(untitled product)".to_string();
    }
    if joined.chars().count() > MAX_TITLE_CHARS {
        let cut: String = joined.chars().take(MAX_TITLE_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        joined
    }
}

/// The drop in whole percent, rounded down: 5000 -> 3999 is 20 %.
pub fn drop_percent(old: u64, new: u64) -> Option<u64> {
    if old == 0 || new >= old {
        return None;
    }
    let pct = (u128::from(old - new) * 100) / u128::from(old);
    u64::try_from(pct).ok()
}

fn price(minor: Option<u64>, marketplace: Marketplace) -> Option<String> {
    minor.map(|m| format_price(m, marketplace))
}

/// The alert in a few words: "Target price reached", "Price down 20%",
/// "Back in stock", "Price correction".
pub fn headline(notice: &AlertNotice) -> String {
    match notice.kind {
        AlertKind::TargetReached => "Target price reached".into(),
        AlertKind::PriceDrop => {
            match notice
                .old_price_minor
                .zip(notice.new_price_minor)
                .and_then(|(o, n)| drop_percent(o, n))
            {
                Some(p) => format!("Price down {p}%"),
                None => "Price drop".into(),
            }
        }
        AlertKind::BackInStock => "Back in stock".into(),
        AlertKind::Correction => "Price correction".into(),
    }
}

/// One sentence about the alert, title included.
pub fn sentence(notice: &AlertNotice) -> String {
    let title = display_title(&notice.title);
    let old = price(notice.old_price_minor, notice.marketplace);
    let new = price(notice.new_price_minor, notice.marketplace);
    match (notice.kind, old, new) {
        (AlertKind::TargetReached, Some(o), Some(n)) => {
            format!("Target price reached: {title} is now {n} (was {o}).")
        }
        (AlertKind::TargetReached, None, Some(n)) => {
            format!("Target price reached: {title} is now {n}.")
        }
        (AlertKind::PriceDrop, Some(o), Some(n)) => {
            let pct = notice
                .old_price_minor
                .zip(notice.new_price_minor)
                .and_then(|(o, n)| drop_percent(o, n));
            match pct {
                Some(p) => format!("Price drop of {p}%: {title} went from {o} to {n}."),
                None => format!("Price drop: {title} went from {o} to {n}."),
            }
        }
        (AlertKind::BackInStock, _, Some(n)) => {
            format!("Back in stock: {title} is available again at {n}.")
        }
        (AlertKind::BackInStock, _, None) => format!("Back in stock: {title} is available again."),
        (AlertKind::Correction, Some(o), Some(n)) => format!(
            "Correction for {title}: the price we reported was wrong; the verified price is {n} (we reported {o})."
        ),
        (AlertKind::Correction, None, Some(n)) => format!(
            "Correction for {title}: the price we reported was wrong; the verified price is {n}."
        ),
        (AlertKind::Correction, _, None) => format!(
            "Correction for {title}: the price we reported was wrong and no verified price is known yet."
        ),
        (_, _, None) | (AlertKind::PriceDrop, None, Some(_)) => {
            let mut s = format!("{}: {title}", headline(notice));
            if let Some(n) = price(notice.new_price_minor, notice.marketplace) {
                s.push_str(&format!(" is now {n}"));
            }
            s.push('.');
            s
        }
    }
}

/// The mail for one alert (a digest of one).
pub fn alert_email(public_url: &str, unsubscribe_token: &str, notice: &AlertNotice) -> Email {
    digest_email(public_url, unsubscribe_token, std::slice::from_ref(notice))
}

/// One mail listing several alerts for one address, oldest first as given.
pub fn digest_email(public_url: &str, unsubscribe_token: &str, notices: &[AlertNotice]) -> Email {
    let unsubscribe = unsubscribe_url(public_url, unsubscribe_token);
    let subject = match notices {
        [one] => format!("{}: {}", headline(one), display_title(&one.title)),
        many => format!("{} price alerts from pricewatch", many.len()),
    };

    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n");
    if notices.len() > 1 {
        text.push_str(&format!("{} price alerts for you:\n\n", notices.len()));
        html.push_str(&format!("<p>{} price alerts for you:</p>\n", notices.len()));
    }
    for notice in notices {
        let url = product_url(public_url, notice);
        let title = display_title(&notice.title);
        let new = price(notice.new_price_minor, notice.marketplace);
        let old = price(notice.old_price_minor, notice.marketplace);
        let (now_label, before_label) = if notice.kind == AlertKind::Correction {
            ("Verified price", "We reported")
        } else {
            ("Now", "Before")
        };

        text.push_str(&format!("{}\n{}\n", headline(notice), sentence(notice)));
        if let Some(n) = &new {
            text.push_str(&format!("{now_label}: {n}\n"));
        }
        if let Some(o) = &old {
            text.push_str(&format!("{before_label}: {o}\n"));
        }
        text.push_str(&format!(
            "{} · {} · {}\nPrice history: {url}\n\n",
            notice.marketplace.domain(),
            notice.condition.as_str(),
            notice.asin
        ));

        html.push_str(&format!(
            "<h2>{}</h2>\n<p><a href=\"{}\">{}</a></p>\n<p>{}</p>\n<ul>\n",
            escape_html(&headline(notice)),
            escape_html(&url),
            escape_html(&title),
            escape_html(&sentence(notice)),
        ));
        if let Some(n) = &new {
            html.push_str(&format!(
                "<li>{now_label}: <b>{}</b></li>\n",
                escape_html(n)
            ));
        }
        if let Some(o) = &old {
            html.push_str(&format!("<li>{before_label}: {}</li>\n", escape_html(o)));
        }
        html.push_str(&format!(
            "<li>{} · {} · {}</li>\n</ul>\n",
            notice.marketplace.domain(),
            notice.condition.as_str(),
            notice.asin
        ));
    }
    text.push_str(&format!(
        "-- \nYou get this mail because you watch these products on pricewatch.\nUnsubscribe: {unsubscribe}\n"
    ));
    html.push_str(&format!(
        "<hr>\n<p style=\"font-size:small\">You get this mail because you watch these products on pricewatch. <a href=\"{}\">Unsubscribe</a></p>\n</body></html>\n",
        escape_html(&unsubscribe)
    ));
    Email {
        subject,
        text,
        html,
        list_unsubscribe: Some(unsubscribe),
    }
}

/// The "confirm this address" mail.
pub fn confirmation_email(public_url: &str, confirm_token: &str) -> Email {
    let link = confirm_url(public_url, confirm_token);
    let text = format!(
        "Someone, hopefully you, asked pricewatch to send price alerts to this address.\n\n\
         To confirm this address for pricewatch alerts, open this link:\n{link}\n\n\
         If it was not you, ignore this mail: nothing will be sent to this address.\n"
    );
    let html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n\
         <p>Someone, hopefully you, asked pricewatch to send price alerts to this address.</p>\n\
         <p><a href=\"{}\">Confirm this address for pricewatch alerts</a></p>\n\
         <p>If it was not you, ignore this mail: nothing will be sent to this address.</p>\n\
         </body></html>\n",
        escape_html(&link)
    );
    Email {
        subject: "Confirm this address for pricewatch alerts".into(),
        text,
        html,
        list_unsubscribe: None,
    }
}

/// The webhook JSON body. One shape that Discord (`content`), Slack
/// (`text`) and ntfy-style receivers (`title`, `message`) all accept; they
/// ignore the fields they do not know. `alert` carries the structured
/// `API.md` alert plus `title` and `product_url` for programs.
pub fn webhook_body(public_url: &str, notice: &AlertNotice) -> String {
    let url = product_url(public_url, notice);
    let line = format!("{} {url}", sentence(notice));
    let body = json!({
        "content": line,
        "text": line,
        "title": headline(notice),
        "message": line,
        "alert": {
            "id": notice.alert_id,
            "watch_id": notice.watch_id,
            "asin": notice.asin.as_str(),
            "marketplace": notice.marketplace.domain(),
            "condition": notice.condition.as_str(),
            "kind": notice.kind.as_str(),
            "old_price_minor": notice.old_price_minor,
            "new_price_minor": notice.new_price_minor,
            "currency": notice.marketplace.currency().code(),
            "created_at": notice.created_at,
            "title": display_title(&notice.title),
            "product_url": url,
        }
    });
    body.to_string()
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://pw.example";

    fn notice(kind: AlertKind, mp: Marketplace, old: Option<u64>, new: Option<u64>) -> AlertNotice {
        AlertNotice {
            alert_id: 7,
            watch_id: 3,
            asin: Asin::parse("B0TESTASIN").expect("asin"),
            marketplace: mp,
            condition: Condition::New,
            kind,
            title: "Widget <Pro>\n  & more".into(),
            old_price_minor: old,
            new_price_minor: new,
            created_at: 1_763_800_000_000,
        }
    }

    #[test]
    fn sentences_per_kind() {
        let com = Marketplace::AMAZON_COM;
        let check = |n: AlertNotice, expected: &str| assert_eq!(sentence(&n), expected);
        check(
            notice(AlertKind::TargetReached, com, Some(5000), Some(3999)),
            "Target price reached: Widget <Pro> & more is now $39.99 (was $50.00).",
        );
        check(
            notice(AlertKind::PriceDrop, com, Some(5000), Some(3999)),
            "Price drop of 20%: Widget <Pro> & more went from $50.00 to $39.99.",
        );
        check(
            notice(AlertKind::BackInStock, com, None, Some(123_456)),
            "Back in stock: Widget <Pro> & more is available again at $1,234.56.",
        );
        check(
            notice(
                AlertKind::Correction,
                Marketplace::AMAZON_DE,
                Some(999),
                Some(123_456),
            ),
            "Correction for Widget <Pro> & more: the price we reported was wrong; \
             the verified price is 1.234,56\u{a0}€ (we reported 9,99\u{a0}€).",
        );
        check(
            notice(
                AlertKind::PriceDrop,
                Marketplace::AMAZON_CO_JP,
                None,
                Some(1598),
            ),
            "Price drop: Widget <Pro> & more is now ￥1,598.",
        );
    }

    #[test]
    fn headlines_and_percent() {
        let n = notice(
            AlertKind::PriceDrop,
            Marketplace::AMAZON_COM,
            Some(1000),
            Some(667),
        );
        assert_eq!(headline(&n), "Price down 33%");
        assert_eq!(drop_percent(1000, 1000), None);
        assert_eq!(drop_percent(0, 0), None);
        assert_eq!(drop_percent(u64::MAX, 0), Some(100));
        assert_eq!(
            AlertKind::parse("back_in_stock"),
            Some(AlertKind::BackInStock)
        );
        assert_eq!(AlertKind::parse("Back_in_stock"), None);
    }

    #[test]
    fn alert_email_parts() {
        let n = notice(
            AlertKind::TargetReached,
            Marketplace::AMAZON_DE,
            Some(5000),
            Some(3999),
        );
        let e = alert_email(URL, "tok/en+1", &n);
        assert_eq!(e.subject, "Target price reached: Widget <Pro> & more");
        assert!(
            e.text.contains("Now: 39,99\u{a0}€\nBefore: 50,00\u{a0}€\n"),
            "{}",
            e.text
        );
        assert!(e
            .text
            .contains("Price history: https://pw.example/p/amazon.de/B0TESTASIN\n"));
        assert!(e
            .text
            .contains("Unsubscribe: https://pw.example/v1/email/unsubscribe?token=tok%2Fen%2B1\n"));
        assert_eq!(
            e.list_unsubscribe.as_deref(),
            Some("https://pw.example/v1/email/unsubscribe?token=tok%2Fen%2B1")
        );
        assert!(
            e.html.contains("Widget &lt;Pro&gt; &amp; more"),
            "{}",
            e.html
        );
        assert!(!e.html.contains("<Pro>"));
    }

    #[test]
    fn digest_lists_every_alert() {
        let a = notice(
            AlertKind::TargetReached,
            Marketplace::AMAZON_COM,
            Some(5000),
            Some(3999),
        );
        let mut b = notice(
            AlertKind::BackInStock,
            Marketplace::AMAZON_CO_JP,
            None,
            Some(1598),
        );
        b.title = "Other".into();
        let e = digest_email(URL, "t", &[a, b]);
        assert_eq!(e.subject, "2 price alerts from pricewatch");
        assert!(e.text.starts_with("2 price alerts for you:\n\n"));
        assert!(e.text.contains("Target price reached\n"));
        assert!(e
            .text
            .contains("Back in stock: Other is available again at ￥1,598."));
        assert_eq!(e.text.matches("Price history: ").count(), 2);
    }

    #[test]
    fn confirmation_mail() {
        let e = confirmation_email(URL, "abc");
        assert!(e
            .text
            .contains("confirm this address for pricewatch alerts"));
        assert!(e
            .text
            .contains("https://pw.example/v1/email/confirm?token=abc\n"));
        assert_eq!(e.list_unsubscribe, None);
    }

    #[test]
    fn titles_are_cleaned_and_cut() {
        assert_eq!(display_title(" a\r\nb\tc "), "a b c");
        assert_eq!(display_title("\n"), "(untitled product)");
        let long = "x".repeat(500);
        let shown = display_title(&long);
        assert_eq!(shown.chars().count(), MAX_TITLE_CHARS);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn webhook_body_shape() {
        let n = notice(
            AlertKind::PriceDrop,
            Marketplace::AMAZON_COM,
            Some(5000),
            Some(3999),
        );
        let v: serde_json::Value = serde_json::from_str(&webhook_body(URL, &n)).unwrap();
        let line = "Price drop of 20%: Widget <Pro> & more went from $50.00 to $39.99. \
                    https://pw.example/p/amazon.com/B0TESTASIN";
        assert_eq!(v["content"], line);
        assert_eq!(v["text"], line);
        assert_eq!(v["message"], line);
        assert_eq!(v["title"], "Price down 20%");
        assert_eq!(v["alert"]["kind"], "price_drop");
        assert_eq!(v["alert"]["currency"], "USD");
        assert_eq!(v["alert"]["old_price_minor"], 5000);
        assert_eq!(v["alert"]["marketplace"], "amazon.com");
    }
}
