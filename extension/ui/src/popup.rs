//! The toolbar popup (issue 8, part 3): the user's watches with each
//! product's current price and status, the recent alerts, links to the
//! product pages, and the settings of the options page (pause/resume
//! reporting, backend URL, delete my data).
//!
//! Loaded by `extension/static/popup.html` (`popup.js` calls
//! [`mount_popup`] with the mount element and the bridge). It is an
//! extension page, so the bridge's `send` goes straight to the service
//! worker: `status`, `watches`, `product` (titles and price status),
//! `alerts_recent` (kept by `sw_alerts.js`: the notification texts, so the
//! popup says exactly what the notification said), `set_paused`,
//! `set_backend_url` and `delete_my_data`. The bridge's
//! `requestOrigin(origin)` asks for a new backend's host permission inside
//! the click, as the options page does.
//!
//! Test ids: `pw-popup` (the root), `pw-popup-watch` (one per watch),
//! `pw-popup-alert` (one per alert, with `data-kind`), `pw-popup-pause`,
//! `pw-popup-backend`, `pw-popup-delete`.
//!
//! The texts are built by the pure functions below (tested natively); the
//! view is wasm32 only.

use crate::format;
use crate::model::Watch;
use serde::Deserialize;
use wasm_core::marketplace::Marketplace;

/// An alert as the service worker keeps it (`alerts_recent`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecentAlert {
    /// Alert id (the feed's).
    pub id: i64,
    /// Product.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// `target_reached`, `price_drop`, `back_in_stock`, `correction`.
    pub kind: String,
    /// When the backend created it (Unix ms).
    #[serde(default)]
    pub created_at: i64,
    /// The notification's title.
    #[serde(default)]
    pub headline: String,
    /// The notification's text.
    #[serde(default)]
    pub message: String,
}

/// `{alerts: [...]}`, newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct RecentAlerts {
    /// The last alerts.
    #[serde(default)]
    pub alerts: Vec<RecentAlert>,
}

/// The service worker's `status` answer (not in the `{ok, data}`
/// envelope: it predates it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Whether the worker answered.
    #[serde(default)]
    pub ok: bool,
    /// Onboarding consent given.
    #[serde(default)]
    pub consent: bool,
    /// Reporting paused.
    #[serde(default)]
    pub paused: bool,
    /// The backend in use.
    #[serde(default)]
    pub backend_url: String,
    /// The build's backend.
    #[serde(default)]
    pub default_backend_url: String,
    /// Reports waiting to be sent.
    #[serde(default)]
    pub queued: u64,
}

/// The answer of a settings message: `{ok, error?: string, backendUrl?}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingAnswer {
    /// Done.
    #[serde(default)]
    pub ok: bool,
    /// Why not (a sentence).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// The backend now in use (`set_backend_url`).
    #[serde(default)]
    pub backend_url: Option<String>,
}

impl SettingAnswer {
    /// The error as a sentence.
    pub fn error_text(&self) -> String {
        match &self.error {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("failed")
                .to_string(),
            _ => "failed".to_string(),
        }
    }
}

/// The product page on its marketplace, or `None` when the marketplace or
/// the ASIN is not one (no link is better than a link somewhere else).
pub fn product_url(marketplace: &str, asin: &str) -> Option<String> {
    Marketplace::from_domain(marketplace)?;
    let asin_ok = asin.len() == 10
        && asin
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    asin_ok.then(|| format!("https://www.{marketplace}/dp/{asin}"))
}

/// The current price as the marketplace writes it, or why there is none.
pub fn current_price(w: &Watch) -> String {
    match (w.current_price_minor, w.availability.as_deref()) {
        (_, Some("out_of_stock")) => "out of stock".to_string(),
        (Some(p), _) => format::price(p, &w.marketplace),
        (None, _) => "no price yet".to_string(),
    }
}

/// What the watch waits for: `below $99.99`, `10% drop`, `back in stock`.
pub fn watch_goal(w: &Watch) -> String {
    let mut parts = Vec::new();
    if let Some(t) = w.target_price_minor {
        parts.push(format!("at or below {}", format::price(t, &w.marketplace)));
    }
    if let Some(p) = w.drop_percent {
        parts.push(format!("{p}% drop"));
    }
    if w.back_in_stock == Some(true) {
        parts.push("back in stock".to_string());
    }
    if parts.is_empty() {
        "any change".to_string()
    } else {
        parts.join(", ")
    }
}

/// Whether the watch waits or already fired.
pub fn watch_state(w: &Watch) -> &'static str {
    if w.armed {
        "watching"
    } else {
        "alerted (watches again once the price goes back up)"
    }
}

/// The price status of the summary's offer for the watch's condition
/// (`verified`, `confirmed`, `provisional`, `corrected`), if known.
pub fn price_status(summary: &crate::model::Summary, condition: &str) -> Option<String> {
    let key = if condition.is_empty() {
        "new"
    } else {
        condition
    };
    summary
        .offers
        .get(key)
        .map(|o| o.status.clone())
        .filter(|s| !s.is_empty())
}

/// The origin (`scheme://host[:port]`) of an http(s) URL, for the host
/// permission the new backend needs; `None` for anything else. The service
/// worker checks the URL again before it takes it.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_ok = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    host_ok.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The reporting state in one sentence.
pub fn status_line(s: &Status) -> String {
    if !s.ok {
        "The extension's worker did not answer.".to_string()
    } else if !s.consent {
        "Reporting is off: you have not agreed on the onboarding page yet.".to_string()
    } else if s.paused {
        "Reporting is paused.".to_string()
    } else if s.queued > 0 {
        format!("Reporting is on ({} waiting to be sent).", s.queued)
    } else {
        "Reporting is on.".to_string()
    }
}

#[cfg(target_arch = "wasm32")]
pub use view::mount_popup;

#[cfg(target_arch = "wasm32")]
mod view {
    use super::*;
    use crate::model::{BridgeError, Summary};
    use leptos::prelude::*;
    use std::cell::RefCell;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    thread_local! {
        // The loader's bridge object (the popup page's own wasm instance).
        // Kept here, not in the views' closures: JS values are not `Send`.
        static POPUP_BRIDGE: RefCell<JsValue> = const { RefCell::new(JsValue::UNDEFINED) };
    }

    fn bridge_call(name: &str, arg: &JsValue) -> Result<js_sys::Promise, BridgeError> {
        POPUP_BRIDGE.with(|b| {
            let this = b.borrow();
            let f = js_sys::Reflect::get(&this, &JsValue::from_str(name))
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| BridgeError::local(format!("the bridge has no {name}()")))?;
            f.call1(&this, arg)
                .map(|p| js_sys::Promise::resolve(&p))
                .map_err(|e| BridgeError::local(format!("{name}: {e:?}")))
        })
    }

    /// Sends a message whose answer is not in the `{ok, data}` envelope
    /// (`status` and the settings messages predate it), parsed into `T`.
    async fn plain<T: for<'de> Deserialize<'de>>(
        message: serde_json::Value,
    ) -> Result<T, BridgeError> {
        let arg = js_sys::JSON::parse(&message.to_string())
            .map_err(|_| BridgeError::local("unencodable message"))?;
        let answer = wasm_bindgen_futures::JsFuture::from(bridge_call("send", &arg)?)
            .await
            .map_err(|e| BridgeError {
                code: "unreachable".into(),
                message: format!("{e:?}"),
            })?;
        let text = js_sys::JSON::stringify(&answer)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| BridgeError::local("no answer"))?;
        serde_json::from_str(&text).map_err(|e| BridgeError::local(format!("{e}")))
    }

    /// One watch row: the watch and what the product summary adds.
    #[derive(Clone, PartialEq)]
    struct Row {
        watch: Watch,
        title: Option<String>,
        status: Option<String>,
    }

    #[derive(Clone, PartialEq)]
    enum Load<T> {
        Loading,
        Ready(T),
        Failed(String),
    }

    /// Mounts the popup into `root` (its content is replaced). `bridge` is
    /// the loader's `{send(message) -> Promise, requestOrigin(origin) ->
    /// Promise<bool>}`.
    #[wasm_bindgen]
    pub fn mount_popup(root: web_sys::HtmlElement, bridge: JsValue) -> Result<(), JsValue> {
        crate::bridge::install(bridge.clone())?;
        POPUP_BRIDGE.with(|b| *b.borrow_mut() = bridge);
        root.set_inner_html("");
        leptos::mount::mount_to(root, Popup).forget();
        Ok(())
    }

    fn message_for(e: &BridgeError) -> String {
        match e.code.as_str() {
            "no_consent" => "Watches need the consent given on the onboarding page.".to_string(),
            "unreachable" => "The pricewatch server cannot be reached right now.".to_string(),
            _ if e.message.is_empty() => format!("Failed ({}).", e.code),
            _ => e.message.clone(),
        }
    }

    fn unanswered() -> Status {
        Status {
            ok: false,
            consent: false,
            paused: false,
            backend_url: String::new(),
            default_backend_url: String::new(),
            queued: 0,
        }
    }

    /// The state of the popup: every piece a signal (all `Copy`).
    #[derive(Clone, Copy)]
    struct State {
        status: RwSignal<Option<Status>>,
        watches: RwSignal<Load<Vec<Row>>>,
        alerts: RwSignal<Load<Vec<RecentAlert>>>,
        note: RwSignal<String>,
        backend_input: RwSignal<String>,
        confirm_delete: RwSignal<bool>,
    }

    impl State {
        fn load_status(self) {
            leptos::task::spawn_local(async move {
                let s = plain::<Status>(serde_json::json!({"type": "status"}))
                    .await
                    .unwrap_or_else(|_| unanswered());
                self.backend_input.set(s.backend_url.clone());
                self.status.set(Some(s));
            });
        }

        fn load_lists(self) {
            leptos::task::spawn_local(async move {
                let answer = crate::bridge::request::<RecentAlerts>(
                    serde_json::json!({"type": "alerts_recent"}),
                )
                .await;
                self.alerts.set(match answer {
                    Ok(a) => Load::Ready(a.alerts),
                    Err(e) => Load::Failed(message_for(&e)),
                });
                let answer = crate::bridge::request::<crate::model::Watches>(
                    serde_json::json!({"type": "watches"}),
                )
                .await;
                let list = match answer {
                    Ok(w) => w.watches,
                    Err(e) => {
                        self.watches.set(Load::Failed(message_for(&e)));
                        return;
                    }
                };
                let mut rows: Vec<Row> = list
                    .into_iter()
                    .map(|watch| Row {
                        watch,
                        title: None,
                        status: None,
                    })
                    .collect();
                self.watches.set(Load::Ready(rows.clone()));
                // Titles and price status from the product summaries, one
                // product at a time (a user has a handful of watches).
                for row in rows.iter_mut() {
                    let msg = serde_json::json!({
                        "type": "product",
                        "marketplace": row.watch.marketplace,
                        "asin": row.watch.asin,
                    });
                    if let Ok(summary) = crate::bridge::request::<Summary>(msg).await {
                        row.title = summary.title.clone().filter(|t| !t.trim().is_empty());
                        row.status = price_status(&summary, &row.watch.condition);
                    }
                }
                self.watches.set(Load::Ready(rows));
            });
        }

        /// Sends a settings message, says how it went, reloads.
        fn setting(self, message: serde_json::Value, done: &'static str, failed: &'static str) {
            leptos::task::spawn_local(async move {
                match plain::<SettingAnswer>(message).await {
                    Ok(a) if a.ok => self.note.set(match a.backend_url {
                        Some(url) => format!("{done} {url}"),
                        None => done.to_string(),
                    }),
                    Ok(a) => self.note.set(format!("{failed}: {}", a.error_text())),
                    Err(e) => self.note.set(format!("{failed}: {}", message_for(&e))),
                }
                self.load_status();
                self.load_lists();
            });
        }
    }

    #[component]
    fn Popup() -> impl IntoView {
        let st = State {
            status: RwSignal::new(None),
            watches: RwSignal::new(Load::Loading),
            alerts: RwSignal::new(Load::Loading),
            note: RwSignal::new(String::new()),
            backend_input: RwSignal::new(String::new()),
            confirm_delete: RwSignal::new(false),
        };
        st.load_status();
        st.load_lists();

        let toggle_pause = move |_| {
            let Some(s) = st.status.get_untracked() else {
                return;
            };
            let verb = if s.paused { "Resumed." } else { "Paused." };
            st.setting(
                serde_json::json!({"type": "set_paused", "paused": !s.paused}),
                verb,
                "Not changed",
            );
        };

        let save_backend = move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let url = st.backend_input.get_untracked().trim().to_string();
            let Some(origin) = origin_of(&url) else {
                st.note
                    .set("Not an http(s) URL like http://127.0.0.1:8787.".to_string());
                return;
            };
            // Asked now, while the click's user gesture holds.
            let permission = match bridge_call("requestOrigin", &JsValue::from_str(&origin)) {
                Ok(p) => p,
                Err(e) => {
                    st.note.set(message_for(&e));
                    return;
                }
            };
            leptos::task::spawn_local(async move {
                let granted = wasm_bindgen_futures::JsFuture::from(permission)
                    .await
                    .ok()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if granted {
                    st.setting(
                        serde_json::json!({"type": "set_backend_url", "url": url}),
                        "Saved:",
                        "Not saved",
                    );
                } else {
                    st.note.set(format!(
                        "Permission to reach {origin} was not granted; keeping the old backend."
                    ));
                }
            });
        };

        let reset_backend = move |_| {
            st.setting(
                serde_json::json!({"type": "set_backend_url", "url": ""}),
                "Using",
                "Not changed",
            );
        };

        let delete = move |_| {
            // Two steps: the first click asks, the second deletes.
            if !st.confirm_delete.get_untracked() {
                st.confirm_delete.set(true);
                return;
            }
            st.confirm_delete.set(false);
            st.note.set("Deleting…".to_string());
            st.setting(
                serde_json::json!({"type": "delete_my_data"}),
                "Deleted.",
                "Not deleted",
            );
        };

        view! {
            <div data-testid="pw-popup" class="pw-popup">
                <h1>"pricewatch"</h1>
                <p class="pw-muted">
                    {move || st.status.get().map(|s| status_line(&s)).unwrap_or_default()}
                </p>
                <h2>"Your watches"</h2>
                {move || match st.watches.get() {
                    Load::Loading => view! { <p class="pw-muted">"Loading…"</p> }.into_any(),
                    Load::Failed(m) => view! { <p class="pw-muted">{m}</p> }.into_any(),
                    Load::Ready(rows) if rows.is_empty() => view! {
                        <p class="pw-muted">
                            "No watches yet: open a product page and use the pricewatch panel."
                        </p>
                    }
                    .into_any(),
                    Load::Ready(rows) => view! {
                        <ul>
                            {rows.into_iter().map(|row| view! { <WatchItem row=row/> }).collect_view()}
                        </ul>
                    }
                    .into_any(),
                }}
                <h2>"Recent alerts"</h2>
                {move || match st.alerts.get() {
                    Load::Loading => view! { <p class="pw-muted">"Loading…"</p> }.into_any(),
                    Load::Failed(m) => view! { <p class="pw-muted">{m}</p> }.into_any(),
                    Load::Ready(list) if list.is_empty() => {
                        view! { <p class="pw-muted">"No alerts yet."</p> }.into_any()
                    }
                    Load::Ready(list) => view! {
                        <ul>
                            {list.into_iter().map(|a| view! { <AlertItem alert=a/> }).collect_view()}
                        </ul>
                    }
                    .into_any(),
                }}
                <h2>"Settings"</h2>
                <div class="pw-settings">
                    <p>
                        <button
                            type="button"
                            data-testid="pw-popup-pause"
                            disabled=move || !st.status.get().is_some_and(|s| s.ok && s.consent)
                            on:click=toggle_pause
                        >
                            {move || {
                                if st.status.get().is_some_and(|s| s.paused) {
                                    "Resume reporting"
                                } else {
                                    "Pause reporting"
                                }
                            }}
                        </button>
                    </p>
                    <form on:submit=save_backend>
                        <label>
                            "Backend URL "
                            <input
                                type="url"
                                data-testid="pw-popup-backend"
                                prop:value=move || st.backend_input.get()
                                placeholder=move || {
                                    st.status.get().map(|s| s.default_backend_url).unwrap_or_default()
                                }
                                on:input=move |ev| st.backend_input.set(event_target_value(&ev))
                            />
                        </label>
                        <p>
                            <button type="submit">"Save"</button>
                            " "
                            <button type="button" on:click=reset_backend>
                                "Use the default"
                            </button>
                        </p>
                    </form>
                    <p>
                        <button type="button" data-testid="pw-popup-delete" on:click=delete>
                            {move || {
                                if st.confirm_delete.get() {
                                    "Really delete everything? Click again"
                                } else {
                                    "Delete my data"
                                }
                            }}
                        </button>
                    </p>
                    <p class="pw-note" role="status">{move || st.note.get()}</p>
                </div>
            </div>
        }
    }

    #[component]
    fn WatchItem(row: Row) -> impl IntoView {
        let w = row.watch;
        let url = product_url(&w.marketplace, &w.asin);
        let name = row.title.unwrap_or_else(|| w.asin.clone());
        let price = current_price(&w);
        let mut details = vec![w.marketplace.clone()];
        if let Some(s) = row.status {
            details.push(s);
        }
        details.push(watch_goal(&w));
        details.push(watch_state(&w).to_string());
        let details = details.join(" · ");
        view! {
            <li data-testid="pw-popup-watch" data-watch-id=w.id.to_string()>
                <div class="pw-row">
                    {match url {
                        Some(href) => view! {
                            <a class="pw-title" href=href target="_blank" rel="noreferrer">{name}</a>
                        }
                        .into_any(),
                        None => view! { <span class="pw-title">{name}</span> }.into_any(),
                    }}
                    <span class="pw-price">{price}</span>
                </div>
                <div class="pw-muted">{details}</div>
            </li>
        }
    }

    #[component]
    fn AlertItem(alert: RecentAlert) -> impl IntoView {
        let url = product_url(&alert.marketplace, &alert.asin);
        // Milliseconds since the epoch fit an i64 exactly (a display
        // value, not a price).
        let when = format::ago(alert.created_at, js_sys::Date::now() as i64);
        let correction = alert.kind == "correction";
        let headline = alert.headline;
        view! {
            <li data-testid="pw-popup-alert" data-kind=alert.kind class:pw-correction=correction>
                <div class="pw-row">
                    {match url {
                        Some(href) => view! {
                            <a class="pw-title" href=href target="_blank" rel="noreferrer">
                                {headline}
                            </a>
                        }
                        .into_any(),
                        None => view! { <span class="pw-title">{headline}</span> }.into_any(),
                    }}
                    <span class="pw-muted">{when}</span>
                </div>
                <div>{alert.message}</div>
            </li>
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        serde_json::from_value(serde_json::json!({
            "id": 7, "asin": "B0PWALRT01", "marketplace": "amazon.de", "condition": "new",
            "target_price_minor": 4500, "drop_percent": null, "current_price_minor": 3999,
            "availability": "in_stock", "armed": false, "currency": "EUR",
            "channels": {"extension": true}
        }))
        .expect("a watch as the API lists it")
    }

    #[test]
    fn watch_texts() {
        let w = watch();
        assert_eq!(current_price(&w), "39,99\u{a0}€");
        assert_eq!(watch_goal(&w), "at or below 45,00\u{a0}€");
        assert!(watch_state(&w).starts_with("alerted"));
        let out = Watch {
            availability: Some("out_of_stock".into()),
            ..w.clone()
        };
        assert_eq!(current_price(&out), "out of stock");
        let unknown = Watch {
            current_price_minor: None,
            target_price_minor: None,
            drop_percent: Some(10),
            armed: true,
            ..w
        };
        assert_eq!(current_price(&unknown), "no price yet");
        assert_eq!(watch_goal(&unknown), "10% drop");
        assert_eq!(watch_state(&unknown), "watching");
    }

    #[test]
    fn product_links_only_for_real_products() {
        assert_eq!(
            product_url("amazon.co.jp", "B0PWALRT02").as_deref(),
            Some("https://www.amazon.co.jp/dp/B0PWALRT02")
        );
        assert_eq!(product_url("evil.example", "B0PWALRT02"), None);
        assert_eq!(product_url("amazon.com", "b0/../x"), None);
    }

    #[test]
    fn origins_of_backend_urls() {
        assert_eq!(
            origin_of("http://127.0.0.1:8787/").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(
            origin_of("HTTPS://Prices.Example.org/api").as_deref(),
            Some("https://prices.example.org")
        );
        assert_eq!(origin_of("ftp://x.org"), None);
        assert_eq!(origin_of("http://user@x.org"), None);
        assert_eq!(origin_of("not a url"), None);
        assert_eq!(origin_of("http://"), None);
    }

    #[test]
    fn status_lines() {
        let mut s: Status = serde_json::from_value(serde_json::json!({
            "ok": true, "consent": true, "paused": false, "backendUrl": "http://127.0.0.1:8787",
            "defaultBackendUrl": "http://127.0.0.1:8787", "registered": true, "queued": 0
        }))
        .expect("status");
        assert_eq!(status_line(&s), "Reporting is on.");
        s.paused = true;
        assert_eq!(status_line(&s), "Reporting is paused.");
        s.consent = false;
        assert!(status_line(&s).contains("onboarding"));
        s.ok = false;
        assert!(status_line(&s).contains("did not answer"));
    }

    #[test]
    fn recent_alerts_and_setting_answers_decode() {
        let a: RecentAlerts = serde_json::from_value(serde_json::json!({"alerts": [{
            "id": 3, "asin": "B0PWALRT03", "marketplace": "amazon.de", "kind": "correction",
            "created_at": 1, "headline": "Correction: X", "message": "m", "extra": 1
        }]}))
        .expect("alerts");
        assert_eq!(a.alerts[0].kind, "correction");
        let e: SettingAnswer =
            serde_json::from_value(serde_json::json!({"ok": false, "error": "no permission"}))
                .expect("answer");
        assert_eq!(e.error_text(), "no permission");
        let e: SettingAnswer = serde_json::from_value(
            serde_json::json!({"ok": false, "error": {"code": "x", "message": "y"}}),
        )
        .expect("answer");
        assert_eq!(e.error_text(), "y");
    }
}
