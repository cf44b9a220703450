//! The in-page price history overlay (issue 8, parts 1 and 2): current
//! price with status and who backs it, lowest / highest / average of the
//! chosen range, a deal verdict, range buttons, an SVG step chart with a
//! tooltip, the shareable link, and the watch form. It collapses to a
//! badge (remembered through the service worker).
//!
//! Keyboard: every control is a native `<button>`, `<a>` or `<input>` in
//! reading order (Enter/Space work natively); the chart is one tab stop
//! whose arrow keys (and Home/End) move the tooltip from point to point;
//! Escape closes the watch form and returns focus to its opener.
//!
//! Test ids (`data-testid`) are a stable contract with the tests and the
//! popup: see `extension_overlay.rs`.

use crate::bridge::request;
use crate::chart::{self, Geometry};
use crate::format;
use crate::model::{
    BridgeError, Channels, History, Summary, UiPrefs, Watch, WatchRequest, Watches,
};
use crate::verdict::{verdict, Tone};
use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

const RANGES: [(&str, &str); 4] = [("1m", "1M"), ("3m", "3M"), ("1y", "1Y"), ("all", "All")];
const CONDITION: &str = "new";

/// A load in flight (`None`), done, or failed.
type Loaded<T> = Option<Result<T, BridgeError>>;

fn now_ms() -> i64 {
    // Whole milliseconds of the JS clock; only used for "how long ago".
    js_sys::Date::now() as i64
}

fn status_label(status: &str) -> &'static str {
    match status {
        "verified" => "Verified by a crawl",
        "confirmed" => "Confirmed by independent reporters",
        "provisional" => "Provisional: not verified yet",
        "corrected" => "Corrected after verification",
        _ => "Status unknown",
    }
}

fn quiet_message(err: &BridgeError) -> String {
    match err.code.as_str() {
        "not_found" => "pricewatch knows nothing about this product yet. Its history starts with the first report.".into(),
        "unreachable" => "The pricewatch server cannot be reached right now.".into(),
        _ => format!("pricewatch could not load this product ({}).", err.message),
    }
}

/// The watch form's fields.
#[derive(Clone, Copy)]
struct Form {
    open: RwSignal<bool>,
    target: RwSignal<String>,
    percent: RwSignal<String>,
    extension: RwSignal<bool>,
    email: RwSignal<String>,
    webhook: RwSignal<String>,
    status: RwSignal<Option<(bool, String)>>,
    busy: RwSignal<bool>,
}

impl Form {
    fn new() -> Self {
        Form {
            open: RwSignal::new(false),
            target: RwSignal::new(String::new()),
            percent: RwSignal::new(String::new()),
            extension: RwSignal::new(true),
            email: RwSignal::new(String::new()),
            webhook: RwSignal::new(String::new()),
            status: RwSignal::new(None),
            busy: RwSignal::new(false),
        }
    }

    /// Fills the fields from an existing watch.
    fn fill(&self, w: &Watch, marketplace: &str) {
        self.target.set(
            w.target_price_minor
                .map(|p| format::amount_for_input(p, marketplace))
                .unwrap_or_default(),
        );
        self.percent
            .set(w.drop_percent.map(|p| p.to_string()).unwrap_or_default());
        self.extension.set(w.channels.extension);
        self.email.set(w.channels.email.clone().unwrap_or_default());
        self.webhook
            .set(w.channels.webhook.clone().unwrap_or_default());
    }

    /// The request body, or what is wrong with the input.
    fn request(&self, marketplace: &str, asin: &str) -> Result<WatchRequest, String> {
        let target = self.target.get_untracked();
        let percent = self.percent.get_untracked();
        let (target, percent) = (target.trim(), percent.trim());
        let (target_price_minor, drop_percent) = match (target.is_empty(), percent.is_empty()) {
            (false, true) => (
                Some(
                    format::parse_amount(target, marketplace)
                        .filter(|p| *p > 0)
                        .ok_or("The target price is not an amount.")?,
                ),
                None,
            ),
            (true, false) => (
                None,
                Some(
                    percent
                        .trim_end_matches('%')
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|p| (1..=99).contains(p))
                        .ok_or("The drop must be a whole percentage from 1 to 99.")?,
                ),
            ),
            (true, true) => return Err("Give a target price or a drop percentage.".into()),
            (false, false) => {
                return Err("Give a target price or a drop percentage, not both.".into())
            }
        };
        let email = self.email.get_untracked().trim().to_string();
        let webhook = self.webhook.get_untracked().trim().to_string();
        let channels = Channels {
            extension: self.extension.get_untracked(),
            email: (!email.is_empty()).then_some(email),
            webhook: (!webhook.is_empty()).then_some(webhook),
        };
        if !channels.extension && channels.email.is_none() && channels.webhook.is_none() {
            return Err("Choose at least one way to be told.".into());
        }
        Ok(WatchRequest {
            asin: asin.to_string(),
            marketplace: marketplace.to_string(),
            condition: CONDITION.to_string(),
            target_price_minor,
            drop_percent,
            channels,
        })
    }
}

fn watch_error(err: &BridgeError) -> String {
    match err.code.as_str() {
        "no_consent" => "Watching needs the consent given in the extension's onboarding page (open the pricewatch extension's options to give it).".into(),
        "unreachable" => "The pricewatch server cannot be reached right now; try again later.".into(),
        _ => err.message.clone(),
    }
}

fn describe_watch(w: &Watch, marketplace: &str) -> String {
    let when = match (w.target_price_minor, w.drop_percent) {
        (Some(p), _) => format!("at or below {}", format::price(p, marketplace)),
        (None, Some(d)) => format!("after a drop of {d}%"),
        (None, None) => "on any change".to_string(),
    };
    let mut ways = Vec::new();
    if w.channels.extension {
        ways.push("notification".to_string());
    }
    if let Some(e) = &w.channels.email {
        ways.push(format!("email to {e}"));
    }
    if w.channels.webhook.is_some() {
        ways.push("webhook".to_string());
    }
    format!("You watch this price: {when} ({}).", ways.join(", "))
}

/// The overlay of one product.
///
/// `marketplace`: the domain (`amazon.com`); `asin`: the product.
#[component]
pub fn Overlay(marketplace: String, asin: String) -> impl IntoView {
    let collapsed = RwSignal::new(false);
    let backend = RwSignal::new(None::<String>);
    let summary: RwSignal<Loaded<Summary>> = RwSignal::new(None);
    let range = RwSignal::new("3m");
    let history: RwSignal<Loaded<History>> = RwSignal::new(None);
    let active = RwSignal::new(None::<usize>);
    let watch: RwSignal<Option<Watch>> = RwSignal::new(None);
    let form = Form::new();

    // Loads. Each answer lands in its signal; the view follows.
    {
        let (mp, asin) = (marketplace.clone(), asin.clone());
        spawn_local(async move {
            if let Ok(p) = request::<UiPrefs>(json!({"type": "ui_pref_get"})).await {
                collapsed.set(p.collapsed);
                backend.set(p.backend);
            }
            let s = request::<Summary>(json!({"type": "product", "marketplace": mp, "asin": asin}))
                .await;
            summary.set(Some(s));
            // Watches need consent and a registered key: their absence is
            // not an error here (the form says so when used).
            if let Ok(w) = request::<Watches>(json!({"type": "watches"})).await {
                watch.set(
                    w.watches.into_iter().find(|w| {
                        w.asin == asin && w.marketplace == mp && w.condition == CONDITION
                    }),
                );
            }
        });
    }
    {
        let (mp, asin) = (marketplace.clone(), asin.clone());
        Effect::new(move |_| {
            let r = range.get();
            let (mp, asin) = (mp.clone(), asin.clone());
            active.set(None);
            spawn_local(async move {
                let h = request::<History>(json!({
                    "type": "history", "marketplace": mp, "asin": asin,
                    "condition": CONDITION, "range": r,
                }))
                .await;
                // A slower answer for a range no longer chosen is dropped.
                if range.get_untracked() == r {
                    history.set(Some(h));
                }
            });
        });
    }

    let set_collapsed = move |value: bool| {
        collapsed.set(value);
        spawn_local(async move {
            let _ = request::<UiPrefs>(json!({"type": "ui_pref_set", "collapsed": value})).await;
        });
    };

    let geometry = Memo::new(move |_| match history.get() {
        Some(Ok(h)) => chart::geometry(&h.points, &h.corrections, now_ms()),
        _ => Geometry::default(),
    });

    let mp = marketplace.clone();
    let offer = move || {
        summary
            .get()
            .and_then(|s| s.ok())
            .and_then(|s| s.offers.get(CONDITION).cloned())
    };

    // --- pieces of the view -------------------------------------------
    let mp_cur = mp.clone();
    let current = move || {
        let mp = mp_cur.clone();
        offer().map(|o| {
            let price = o.price_minor;
            let status = o.status.clone();
            let reporters = o.reporters;
            let crawl = match o.last_verified_at {
                Some(t) => format!("last crawl {}", format::ago(t, now_ms())),
                None => "not crawled yet".to_string(),
            };
            let seen = o.observed_at.map(|t| format!(", seen {}", format::ago(t, now_ms())));
            view! {
                <div class="current">
                    <span class="price" data-testid="pw-current" data-price=price.map(|p| p.to_string()).unwrap_or_default()>
                        {price.map(|p| format::price(p, &mp)).unwrap_or_else(|| "No price offered".into())}
                    </span>
                    <span class=format!("status status-{status}") data-testid="pw-status" data-status=status.clone()>
                        {status_label(&status)}
                    </span>
                </div>
                <div class="muted" data-testid="pw-reporters" data-reporters=reporters.to_string()>
                    {format!(
                        "{reporters} independent {}, {crawl}{}",
                        if reporters == 1 { "reporter" } else { "reporters" },
                        seen.unwrap_or_default()
                    )}
                </div>
            }
        })
    };

    let mp_stats = mp.clone();
    let stats = move || {
        let mp = mp_stats.clone();
        let h = history.get().and_then(|h| h.ok())?;
        let s = h.stats;
        let cell = |id: &'static str, label: &'static str, price: Option<i64>, at: Option<i64>| {
            let text = price
                .map(|p| format::price(p, &mp))
                .unwrap_or_else(|| "–".into());
            let when = at
                .map(|t| format!("on {}", format::date(t)))
                .unwrap_or_default();
            view! {
                <div class="stat" data-testid=id data-price=price.map(|p| p.to_string()).unwrap_or_default()>
                    <span class="label">{label}</span>
                    <span class="value">{text}</span>
                    <span class="when">{when}</span>
                </div>
            }
        };
        let current = offer().and_then(|o| o.price_minor).or(s.current);
        let v = verdict(
            current,
            s.lowest,
            s.highest,
            s.average,
            h.points.len(),
            &h.range,
        );
        Some(view! {
            <div class="stats">
                {cell("pw-lowest", "Lowest", s.lowest, s.lowest_at)}
                {cell("pw-highest", "Highest", s.highest, s.highest_at)}
                {cell("pw-average", "Average", s.average, None)}
            </div>
            <div
                class=move || match v.as_ref().map(|v| v.tone) {
                    Some(Tone::Good) => "verdict good",
                    Some(Tone::Bad) => "verdict bad",
                    _ => "verdict neutral",
                }
                data-testid="pw-verdict"
            >
                {v.as_ref().map(|v| v.text.clone()).unwrap_or_else(|| "Not enough history for a verdict yet".into())}
            </div>
        })
    };

    let ranges = move || {
        RANGES
            .iter()
            .map(|(key, label)| {
                let key: &'static str = key;
                view! {
                    <button
                        type="button"
                        class="range"
                        data-testid=format!("pw-range-{key}")
                        aria-pressed=move || (range.get() == key).to_string()
                        on:click=move |_| range.set(key)
                    >
                        {*label}
                    </button>
                }
            })
            .collect_view()
    };

    let mp_chart = mp.clone();
    let chart_view = move || {
        let mp = mp_chart.clone();
        let g = geometry.get();
        let n = g.vertices.len();
        let move_active = move |delta: i64| {
            if n == 0 {
                return;
            }
            let last = i64::try_from(n - 1).unwrap_or(0);
            let next = match active.get_untracked() {
                Some(i) => (i64::try_from(i).unwrap_or(0) + delta).clamp(0, last),
                None => last,
            };
            active.set(usize::try_from(next).ok());
        };
        let on_key = move |e: ev::KeyboardEvent| match e.key().as_str() {
            "ArrowLeft" => {
                e.prevent_default();
                move_active(-1);
            }
            "ArrowRight" => {
                e.prevent_default();
                move_active(1);
            }
            "Home" => {
                e.prevent_default();
                active.set((n > 0).then_some(0));
            }
            "End" => {
                e.prevent_default();
                active.set(n.checked_sub(1));
            }
            _ => {}
        };
        let low = g.lowest;
        let high = g.highest;
        let circles = g
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut class = String::from("pt");
                if Some(i) == low {
                    class.push_str(" low");
                }
                if Some(i) == high {
                    class.push_str(" high");
                }
                if v.corrected {
                    class.push_str(" corrected");
                }
                let r = if Some(i) == low || Some(i) == high {
                    "6"
                } else {
                    "4"
                };
                view! {
                    <circle
                        class=class
                        cx=v.x.to_string()
                        cy=v.y.to_string()
                        r=r
                        data-t=v.t.to_string()
                        data-price=v.price.to_string()
                        data-corrected=v.corrected.then_some("true")
                        on:mouseenter=move |_| active.set(Some(i))
                    />
                }
            })
            .collect_view();
        let marker = |idx: Option<usize>, cls: &'static str, label: &'static str| {
            idx.and_then(|i| g.vertices.get(i)).map(|v| {
                let y = if cls == "low" { v.y + 14 } else { v.y - 6 };
                let x = v.x.clamp(chart::LEFT + 12, chart::WIDTH - 40);
                view! { <text class=format!("marker {cls}") x=x.to_string() y=y.to_string()>{label}</text> }
            })
        };
        let markers = (marker(high, "high", "high"), marker(low, "low", "low"));
        let empty = n == 0;
        let summary_text = if empty {
            "No price points in this range".to_string()
        } else {
            format!("Price chart, {n} points; arrow keys move between them")
        };
        let tooltip = {
            let mp = mp.clone();
            let vertices = g.vertices.clone();
            move || {
                active.get().and_then(|i| vertices.get(i)).map(|v| {
                    // Percent of the box width, for CSS positioning; kept
                    // off the edges so the tooltip stays inside the panel.
                    let left = ((v.x * 100) / chart::WIDTH).clamp(30, 70);
                    let text = format!(
                        "{} · {}{}",
                        format::date_time(v.t),
                        format::price(v.price, &mp),
                        if v.corrected { " · corrected" } else { "" }
                    );
                    view! {
                        <div class="tooltip" data-testid="pw-tooltip" role="status" style=format!("left: {left}%")>
                            {text}
                        </div>
                    }
                })
            }
        };
        view! {
            <div class="chart-wrap">
                <svg
                    data-testid="pw-chart"
                    class="chart"
                    viewBox=format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT)
                    role="img"
                    tabindex="0"
                    aria-label=summary_text
                    on:keydown=on_key
                    on:focus=move |_| {
                        if active.get_untracked().is_none() {
                            active.set(n.checked_sub(1));
                        }
                    }
                    on:blur=move |_| active.set(None)
                    on:mouseleave=move |_| active.set(None)
                >
                    <line class="guide" x1="0" x2=chart::WIDTH.to_string() y1=g.y_high.to_string() y2=g.y_high.to_string()/>
                    <line class="guide" x1="0" x2=chart::WIDTH.to_string() y1=g.y_low.to_string() y2=g.y_low.to_string()/>
                    <path class="line" d=g.path.clone()/>
                    {circles}
                    {markers}
                </svg>
                {tooltip}
            </div>
        }
    };

    let mp_share = mp.clone();
    let asin_share = asin.clone();
    let share = move || {
        backend.get().map(|b| {
            let href = format!("{}/p/{}/{}", b.trim_end_matches('/'), mp_share, asin_share);
            view! {
                <a class="share" data-testid="pw-share" href=href target="_blank" rel="noopener noreferrer">
                    "Full history and shareable link"
                </a>
            }
        })
    };

    // --- watch form ----------------------------------------------------
    let (mp_w, asin_w) = (mp.clone(), asin.clone());
    let save = move || {
        let req = match form.request(&mp_w, &asin_w) {
            Ok(r) => r,
            Err(msg) => {
                form.status.set(Some((false, msg)));
                return;
            }
        };
        let existing = watch.get_untracked().map(|w| w.id);
        form.busy.set(true);
        form.status.set(None);
        spawn_local(async move {
            let message = match existing {
                Some(id) => json!({"type": "watch_update", "id": id, "watch": req}),
                None => json!({"type": "watch_create", "watch": req}),
            };
            match request::<Watch>(message).await {
                Ok(w) => {
                    watch.set(Some(w));
                    form.status.set(Some((true, "Saved.".into())));
                    form.open.set(false);
                }
                Err(e) => form.status.set(Some((false, watch_error(&e)))),
            }
            form.busy.set(false);
        });
    };
    let remove = move || {
        let Some(id) = watch.get_untracked().map(|w| w.id) else {
            return;
        };
        form.busy.set(true);
        spawn_local(async move {
            match request::<serde_json::Value>(json!({"type": "watch_delete", "id": id})).await {
                Ok(_) => {
                    watch.set(None);
                    form.status.set(Some((true, "Watch removed.".into())));
                    form.open.set(false);
                }
                Err(e) => form.status.set(Some((false, watch_error(&e)))),
            }
            form.busy.set(false);
        });
    };

    let opener = NodeRef::<leptos::html::Button>::new();
    let mp_open = mp.clone();
    let open_form = move |_| {
        form.status.set(None);
        match watch.get_untracked() {
            Some(w) => form.fill(&w, &mp_open),
            None => {
                // A suggestion: 10% under the current price.
                form.target.set(String::new());
                form.percent.set(String::new());
            }
        }
        form.open.set(true);
    };
    let close_form = move || {
        form.open.set(false);
        if let Some(b) = opener.get_untracked() {
            let _ = b.focus();
        }
    };

    let mp_ex = mp.clone();
    let existing = move || {
        watch.get().map(|w| {
            view! { <div class="existing" data-testid="pw-watch-existing" data-watch-id=w.id.to_string()>{describe_watch(&w, &mp_ex)}</div> }
        })
    };

    let currency_hint = Memo::new({
        let mp = mp.clone();
        move |_| format::price(0, &mp)
    });

    let watch_form = move || {
        form.open.get().then(|| {
            let save = save.clone();
            view! {
                <form
                    class="watch-form"
                    on:submit=move |e: ev::SubmitEvent| {
                        e.prevent_default();
                        save();
                    }
                    on:keydown=move |e: ev::KeyboardEvent| {
                        if e.key() == "Escape" {
                            e.prevent_default();
                            close_form();
                        }
                    }
                >
                    <label>
                        "Target price "
                        <input
                            type="text"
                            inputmode="decimal"
                            data-testid="pw-watch-target"
                            placeholder=move || currency_hint.get()
                            prop:value=move || form.target.get()
                            on:input=move |e| form.target.set(event_target_value(&e))
                        />
                    </label>
                    <label>
                        "or a drop of "
                        <input
                            type="text"
                            inputmode="numeric"
                            class="short"
                            data-testid="pw-watch-percent"
                            prop:value=move || form.percent.get()
                            on:input=move |e| form.percent.set(event_target_value(&e))
                        />
                        " %"
                    </label>
                    <fieldset>
                        <legend>"Tell me by"</legend>
                        <label class="check">
                            <input
                                type="checkbox"
                                data-testid="pw-watch-ch-extension"
                                prop:checked=move || form.extension.get()
                                on:change=move |e| form.extension.set(event_target_checked(&e))
                            />
                            " a notification from this extension"
                        </label>
                        <label>
                            "Email "
                            <input
                                type="email"
                                data-testid="pw-watch-ch-email"
                                placeholder="you@example.org"
                                prop:value=move || form.email.get()
                                on:input=move |e| form.email.set(event_target_value(&e))
                            />
                        </label>
                        <label>
                            "Webhook "
                            <input
                                type="url"
                                data-testid="pw-watch-ch-webhook"
                                placeholder="https://..."
                                prop:value=move || form.webhook.get()
                                on:input=move |e| form.webhook.set(event_target_value(&e))
                            />
                        </label>
                    </fieldset>
                    <div class="actions">
                        <button type="submit" class="primary" data-testid="pw-watch-save" disabled=move || form.busy.get()>
                            {move || if watch.get().is_some() { "Save changes" } else { "Watch" }}
                        </button>
                        {move || watch.get().map(|_| {
                            view! {
                                <button type="button" data-testid="pw-watch-remove" disabled=move || form.busy.get() on:click=move |_| remove()>
                                    "Remove watch"
                                </button>
                            }
                        })}
                        <button type="button" on:click=move |_| close_form()>"Cancel"</button>
                    </div>
                </form>
            }
        })
    };

    let form_status = move || {
        form.status.get().map(|(ok, text)| {
            view! {
                <div class=if ok { "form-status ok" } else { "form-status err" } data-testid="pw-watch-status" role="status">
                    {text}
                </div>
            }
        })
    };

    // --- the whole ----------------------------------------------------
    let body = move || {
        match summary.get() {
        None => view! { <div class="muted" data-testid="pw-loading">"Loading price history…"</div> }.into_any(),
        Some(Err(e)) => view! { <div class="message" data-testid="pw-message" role="status">{quiet_message(&e)}</div> }.into_any(),
        Some(Ok(_)) => view! {
            {current.clone()}
            {move || match history.get() {
                Some(Err(e)) => Some(view! { <div class="message" data-testid="pw-message" role="status">{quiet_message(&e)}</div> }.into_any()),
                _ => None,
            }}
            {stats.clone()}
            <div class="ranges" role="group" aria-label="Range">{ranges}</div>
            {chart_view.clone()}
            {share.clone()}
            <div class="watch">
                {existing.clone()}
                <button type="button" node_ref=opener data-testid="pw-watch-open" aria-expanded=move || form.open.get().to_string()
                    on:click=open_form.clone()>
                    {move || if watch.get().is_some() { "Edit watch" } else { "Watch this price" }}
                </button>
                {form_status}
                {watch_form.clone()}
            </div>
        }
        .into_any(),
    }
    };

    let title = asin.clone();
    view! {
        <div class="pw" data-testid="pw-overlay" data-collapsed=move || collapsed.get().to_string()>
            {move || if collapsed.get() {
                view! {
                    <button type="button" class="badge" data-testid="pw-badge" aria-label="Show pricewatch price history"
                        on:click=move |_| set_collapsed(false)>
                        "pricewatch"
                    </button>
                }.into_any()
            } else {
                let body = body.clone();
                view! {
                    <section class="panel" aria-label=format!("pricewatch price history for {title}")>
                        <header>
                            <span class="brand">"pricewatch"</span>
                            <button type="button" class="collapse" data-testid="pw-collapse" aria-label="Collapse to a badge"
                                on:click=move |_| set_collapsed(true)>
                                "–"
                            </button>
                        </header>
                        {body}
                    </section>
                }.into_any()
            }}
        </div>
    }
}
