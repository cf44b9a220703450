//! The wasm entry points the loaders call (wasm-bindgen exports).

use crate::overlay::Overlay;
use crate::STYLE;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Mounts the overlay into `root` (an element inside a closed shadow root,
/// or the iframe page's body): the style sheet first, then the view.
/// `bridge` is the loader's `{send(message) -> Promise}`; `marketplace`
/// and `asin` name the product. Fails (a JS exception the loader logs)
/// when the bridge or the document is unusable.
#[wasm_bindgen]
pub fn mount_overlay(
    root: web_sys::HtmlElement,
    bridge: JsValue,
    marketplace: String,
    asin: String,
) -> Result<(), JsValue> {
    crate::bridge::install(bridge)?;
    let document = root
        .owner_document()
        .ok_or_else(|| JsValue::from_str("the mount element has no document"))?;
    let style = document.create_element("style")?;
    style.set_text_content(Some(STYLE));
    root.append_child(&style)?;
    let container = document
        .create_element("div")?
        .dyn_into::<web_sys::HtmlElement>()
        .map_err(|_| JsValue::from_str("a div is not an HtmlElement"))?;
    root.append_child(&container)?;
    leptos::mount::mount_to(
        container,
        move || view! { <Overlay marketplace=marketplace asin=asin/> },
    )
    .forget();
    Ok(())
}
