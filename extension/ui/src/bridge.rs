//! The bridge to the service worker: the JS object the loader passes to
//! the entry point, with `send(message) -> Promise<answer>`. The UI never
//! calls `chrome.*` itself (see the crate docs). Messages and answers
//! cross as JSON text (`JSON.parse` / `JSON.stringify`), so no serde glue
//! for JS values is needed.
//!
//! One bridge per wasm instance, kept in a thread-local: JS values are not
//! `Send`, and Leptos's reactive closures want `Send` captures.

use crate::model::{decode, BridgeError};
use js_sys::{Function, Promise, Reflect, JSON};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

struct Bridge {
    this: JsValue,
    send: Function,
}

thread_local! {
    static BRIDGE: RefCell<Option<Bridge>> = const { RefCell::new(None) };
}

/// Installs `object` (which must have a `send` function) as the bridge.
pub fn install(object: JsValue) -> Result<(), JsValue> {
    let send = Reflect::get(&object, &JsValue::from_str("send"))?
        .dyn_into::<Function>()
        .map_err(|_| JsValue::from_str("the bridge has no send(message) function"))?;
    BRIDGE.with(|b| *b.borrow_mut() = Some(Bridge { this: object, send }));
    Ok(())
}

fn describe(err: &JsValue) -> String {
    err.as_string()
        .or_else(|| {
            Reflect::get(err, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| "unknown error".to_string())
}

/// Sends `message` and decodes the answer's `data` into `T`.
pub async fn request<T: DeserializeOwned>(message: serde_json::Value) -> Result<T, BridgeError> {
    let js_message = JSON::parse(&message.to_string())
        .map_err(|e| BridgeError::local(format!("message: {}", describe(&e))))?;
    let promise = BRIDGE.with(|b| {
        let b = b.borrow();
        let bridge = b
            .as_ref()
            .ok_or_else(|| BridgeError::local("no bridge installed"))?;
        bridge
            .send
            .call1(&bridge.this, &js_message)
            .map_err(|e| BridgeError::local(describe(&e)))
    })?;
    let answer = JsFuture::from(Promise::resolve(&promise))
        .await
        .map_err(|e| BridgeError {
            code: "unreachable".into(),
            message: describe(&e),
        })?;
    let text = JSON::stringify(&answer)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| BridgeError::local("the answer is not JSON"))?;
    decode(&text)
}
