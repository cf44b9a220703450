//! `GET /p/{marketplace}/{asin}`: a plain server-rendered HTML page with an
//! SVG step chart (no JavaScript), meant to be shared as a link. Prices are
//! formatted the marketplace's way (`wasm_core::price::format_price`), times
//! are shown in UTC.

use super::read::{history_query, load_history, params, product_path, Params};
use super::AppState;
use crate::store::history::Point;
use crate::store::{OfferSummary, ProductSummary};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use wasm_core::marketplace::{Currency, Marketplace};

const W: i64 = 800;
const H: i64 = 300;
const PAD_L: i64 = 90;
const PAD_R: i64 = 20;
const PAD_T: i64 = 20;
const PAD_B: i64 = 40;

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// `YYYY-MM-DD` (UTC) of Unix ms (days-from-civil inverse, H. Hinnant).
pub fn date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{} {:02}:{:02} UTC",
        date(ms),
        secs / 3600,
        (secs / 60) % 60
    )
}

/// A price the way `marketplace` writes it; amounts in another currency
/// than the marketplace's are shown as `12.34 CHF`.
pub fn money(minor: i64, m: Marketplace, currency: &str) -> String {
    let Ok(minor_u) = u64::try_from(minor) else {
        return minor.to_string();
    };
    if m.currency().code() == currency {
        return wasm_core::price::format_price(minor_u, m);
    }
    let exp = Currency::from_code(currency)
        .map(|c| u32::from(c.exponent()))
        .unwrap_or(2);
    let scale = 10u64.pow(exp);
    if exp == 0 {
        format!("{minor_u} {currency}")
    } else {
        format!(
            "{}.{:0w$} {currency}",
            minor_u / scale,
            minor_u % scale,
            w = exp as usize
        )
    }
}

fn offer_row(out: &mut String, o: &OfferSummary, m: Marketplace, currency: &str) {
    let price = o
        .offer
        .price_minor
        .map(|p| money(p, m, currency))
        .unwrap_or_else(|| "no price".into());
    let verified = o
        .offer
        .last_verified_at
        .map(datetime)
        .unwrap_or_else(|| "never".into());
    let _ = write!(
        out,
        "<tr><td>{}</td><td class=price>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        o.condition.as_str(),
        esc(&price),
        o.offer.availability.as_str().replace('_', " "),
        o.offer.seller.as_str().replace('_', " "),
        o.offer.status.as_str(),
        datetime(o.offer.observed_at),
        verified
    );
}

struct Scale {
    from: i64,
    to: i64,
    lo: i64,
    hi: i64,
}

impl Scale {
    fn x(&self, t: i64) -> i64 {
        let span = (self.to - self.from).max(1);
        PAD_L
            + i64::try_from(
                i128::from(t.clamp(self.from, self.to) - self.from) * i128::from(W - PAD_L - PAD_R)
                    / i128::from(span),
            )
            .unwrap_or(0)
    }
    fn y(&self, p: i64) -> i64 {
        let span = (self.hi - self.lo).max(1);
        H - PAD_B
            - i64::try_from(
                i128::from(p - self.lo) * i128::from(H - PAD_T - PAD_B) / i128::from(span),
            )
            .unwrap_or(0)
    }
}

/// The SVG step chart of `points` (closing prices held until the next
/// point, extended to `to`; each bucket's low-high range as a light bar),
/// with the lowest and highest prices marked.
pub fn chart(
    points: &[Point],
    from: i64,
    to: i64,
    lowest: Option<(i64, i64)>,
    highest: Option<(i64, i64)>,
    fmt: &dyn Fn(i64) -> String,
) -> String {
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"price chart\">"
    );
    let Some(first) = points.first() else {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"muted\">no prices in this range</text></svg>",
            W / 2,
            H / 2
        ));
        return svg;
    };
    let lo = points.iter().map(|p| p.low).min().unwrap_or(first.low);
    let hi = points.iter().map(|p| p.high).max().unwrap_or(first.high);
    let margin = ((hi - lo) / 10).max(1);
    let from = from.max(first.t);
    let sc = Scale {
        from,
        to: to.max(from + 1),
        lo: (lo - margin).max(0),
        hi: hi + margin,
    };
    // Grid and y labels.
    for i in 0..=4 {
        let p = sc.lo + (sc.hi - sc.lo) * i / 4;
        let y = sc.y(p);
        let _ = write!(
            svg,
            "<line x1=\"{PAD_L}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" class=\"grid\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">{}</text>",
            W - PAD_R,
            PAD_L - 6,
            y + 4,
            esc(&fmt(p))
        );
    }
    for (t, anchor) in [
        (sc.from, "start"),
        ((sc.from + sc.to) / 2, "middle"),
        (sc.to, "end"),
    ] {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"axis\">{}</text>",
            sc.x(t),
            H - PAD_B + 20,
            date(t)
        );
    }
    // Low-high bars.
    for p in points.iter().filter(|p| p.high != p.low) {
        let x = sc.x(p.t);
        let _ = write!(
            svg,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" class=\"range\"/>",
            sc.y(p.high),
            sc.y(p.low)
        );
    }
    // Step line.
    let mut d = format!("M{} {}", sc.x(first.t), sc.y(first.open));
    let mut prev = first.open;
    for p in points {
        let x = sc.x(p.t);
        if p.open != prev {
            let _ = write!(d, " H{x} V{}", sc.y(p.open));
        }
        let _ = write!(d, " H{x} V{}", sc.y(p.close));
        prev = p.close;
    }
    let _ = write!(d, " H{}", sc.x(sc.to));
    let _ = write!(svg, "<path d=\"{d}\" class=\"line\"/>");
    for (mark, class, dy) in [(lowest, "low", 18), (highest, "high", -10)] {
        if let Some((price, at)) = mark {
            let (x, y) = (sc.x(at), sc.y(price));
            let anchor = if x > W / 2 { "end" } else { "start" };
            let _ = write!(
                svg,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"5\" class=\"{class}\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"{class}\">{} {}</text>",
                y + dy,
                if class == "low" { "lowest" } else { "highest" },
                esc(&fmt(price))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.4em;margin-bottom:.2em}.muted{color:#777;fill:#777}.price{font-weight:600}\
table{border-collapse:collapse;margin:1em 0}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}\
nav a{margin-right:.8em}nav a.on{font-weight:700;text-decoration:none;color:#222}\
svg{width:100%;height:auto;background:#fafafa;border:1px solid #eee}.grid{stroke:#e4e4e4}\
.axis{font-size:12px;fill:#666}.line{fill:none;stroke:#1769aa;stroke-width:2}.range{stroke:#9cc3e6;stroke-width:3}\
circle.low{fill:#2e7d32}circle.high{fill:#c62828}text.low{fill:#2e7d32;font-size:13px}text.high{fill:#c62828;font-size:13px}";

fn not_found_page(marketplace: &str, asin: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Unknown product</title><style>{STYLE}</style>\
         <h1>Nothing known yet</h1><p>No price has been reported for {} on {}.</p></html>",
        esc(asin),
        esc(marketplace)
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /p/{marketplace}/{asin}?range=&condition=`.
pub async fn product_page(
    State(state): State<AppState>,
    Path((marketplace, asin)): Path<(String, String)>,
    query: Params,
) -> Result<Response, super::error::ApiError> {
    let m = product_path(&marketplace, &asin)?;
    let mut p = params(query)?;
    if !p.contains_key("range") {
        p.insert("range".into(), "3m".into());
    }
    let q = history_query(&p)?;
    let Some(h) = load_history(&state, &marketplace, &asin, &q, true).await? else {
        return Ok(not_found_page(&marketplace, &asin));
    };
    let Some(s) = h.summary.as_ref() else {
        return Ok(not_found_page(&marketplace, &asin));
    };
    let s: &ProductSummary = s;
    let currency = s.currency.clone();
    let fmt = |v: i64| money(v, m, &currency);
    let base = state.config.public_url.clone().unwrap_or_default();
    let base = base.trim_end_matches('/');
    let title = if s.title.is_empty() {
        asin.clone()
    } else {
        s.title.clone()
    };
    let current = s
        .offers
        .iter()
        .find(|o| o.condition == q.condition)
        .and_then(|o| o.offer.price_minor)
        .map(fmt);
    let mut html = String::with_capacity(16_384);
    let _ = write!(
        html,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{t} – price history</title>\
         <meta property=\"og:title\" content=\"{t}\"><meta property=\"og:description\" content=\"{d}\">\
         <style>{STYLE}</style></head><body>\
         <h1>{t}</h1><p class=muted>{asin} · {mk} · {cond}</p>",
        t = esc(&title),
        d = esc(&format!(
            "{} price history on {}{}",
            q.condition.as_str(),
            marketplace,
            current.as_deref().map(|c| format!(", now {c}")).unwrap_or_default()
        )),
        asin = esc(&asin),
        mk = esc(&marketplace),
        cond = q.condition.as_str(),
    );
    html.push_str("<table><tr><th>offer</th><th>price</th><th>availability</th><th>seller</th><th>status</th><th>seen</th><th>last verified</th></tr>");
    for o in &s.offers {
        offer_row(&mut html, o, m, &s.currency);
    }
    html.push_str("</table><nav>");
    let link = |range: &str, cond: &str| {
        format!("{base}/p/{marketplace}/{asin}?range={range}&amp;condition={cond}")
    };
    for r in ["1w", "1m", "3m", "1y", "all"] {
        let class = if r == q.range { " class=on" } else { "" };
        let _ = write!(
            html,
            "<a{class} href=\"{}\">{r}</a>",
            link(r, q.condition.as_str())
        );
    }
    if s.offers.len() > 1 {
        html.push_str(" · ");
        for o in &s.offers {
            let c = o.condition.as_str();
            let class = if o.condition == q.condition {
                " class=on"
            } else {
                ""
            };
            let _ = write!(html, "<a{class} href=\"{}\">{c}</a>", link(q.range, c));
        }
    }
    html.push_str("</nav>");
    let st = h.stats;
    let lowest = st.lowest.zip(st.lowest_at);
    let highest = st.highest.zip(st.highest_at);
    html.push_str(&chart(&h.points, h.from, h.to, lowest, highest, &fmt));
    html.push_str("<table>");
    let row = |label: &str, v: Option<i64>, at: Option<i64>| {
        format!(
            "<tr><td>{label}</td><td class=price>{}</td><td class=muted>{}</td></tr>",
            v.map(|v| esc(&fmt(v))).unwrap_or_else(|| "–".into()),
            at.map(date).unwrap_or_default()
        )
    };
    html.push_str(&row("current", st.current, None));
    html.push_str(&row("lowest", st.lowest, st.lowest_at));
    html.push_str(&row("highest", st.highest, st.highest_at));
    html.push_str(&row("average (time-weighted)", st.average, None));
    let _ = write!(
        html,
        "<tr><td>changes</td><td>{} drops, {} increases</td><td></td></tr></table>",
        st.drops, st.increases
    );
    let _ = write!(
        html,
        "<p class=muted>Crowdsourced by pricewatch collectors; granularity {}. \
         <a href=\"{base}/v1/products/{marketplace}/{asin}/history?range={}&amp;condition={}\">JSON</a></p></body></html>",
        h.granularity.as_str(),
        q.range,
        q.condition.as_str()
    );
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_763_800_000_000), "2025-11-22");
        assert_eq!(datetime(1_763_800_000_000), "2025-11-22 08:26 UTC");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn money_formats() {
        assert_eq!(money(4999, Marketplace::AMAZON_COM, "USD"), "$49.99");
        assert_eq!(money(1234, Marketplace::AMAZON_COM, "CHF"), "12.34 CHF");
    }

    #[test]
    fn chart_marks_extremes() {
        let pts = [
            Point {
                t: 0,
                open: 100,
                high: 100,
                low: 100,
                close: 100,
                n: 1,
            },
            Point {
                t: 50,
                open: 80,
                high: 120,
                low: 80,
                close: 120,
                n: 2,
            },
        ];
        let svg = chart(&pts, 0, 100, Some((80, 50)), Some((120, 60)), &|v| {
            v.to_string()
        });
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("lowest 80"));
        assert!(svg.contains("highest 120"));
        assert!(svg.contains("<path d=\"M90 "));
        let empty = chart(&[], 0, 100, None, None, &|v| v.to_string());
        assert!(empty.contains("no prices in this range"));
    }
}
