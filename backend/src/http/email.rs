//! Email address confirmation and unsubscribe links (see `crate::notify`):
//! `GET /v1/email/confirm?token=`, `GET /v1/email/unsubscribe?token=` (a
//! page with a button, since link scanners prefetch GETs) and `POST
//! /v1/email/unsubscribe?token=` (RFC 8058 one-click: unsubscribes at
//! once). Tokens are looked up by hash only.

use super::error::ApiError;
use super::AppState;
use crate::notify::compose::escape_html;
use crate::notify::token::token_hash;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

/// The `token` query parameter.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><h1>{t}</h1>{body}</body></html>",
            t = escape_html(title)
        )),
    )
        .into_response()
}

fn usable(token: &str) -> bool {
    !token.is_empty() && token.len() <= 128
}

/// `GET /v1/email/confirm?token=`.
pub async fn confirm(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    if usable(&q.token)
        && state
            .store
            .confirm_contact(&token_hash(&q.token), state.now())
            .await?
    {
        return Ok(page(
            StatusCode::OK,
            "Address confirmed",
            "<p>Price alerts will now be sent to this address.</p>",
        ));
    }
    Ok(page(
        StatusCode::NOT_FOUND,
        "Unknown link",
        "<p>This confirmation link is not valid.</p>",
    ))
}

/// `GET /v1/email/unsubscribe?token=`: a page whose button POSTs.
pub async fn unsubscribe_page(Query(q): Query<TokenQuery>) -> Response {
    if !usable(&q.token) {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown link",
            "<p>This unsubscribe link is not valid.</p>",
        );
    }
    let action = format!(
        "/v1/email/unsubscribe?token={}",
        url::form_urlencoded::byte_serialize(q.token.as_bytes()).collect::<String>()
    );
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" \
             name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">\
             Stop all price alert mail to this address</button></form>",
            escape_html(&action)
        ),
    )
}

/// `POST /v1/email/unsubscribe?token=` (one-click).
pub async fn unsubscribe(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    if usable(&q.token)
        && state
            .store
            .unsubscribe_contact(&token_hash(&q.token), state.now())
            .await?
    {
        return Ok(page(
            StatusCode::OK,
            "Unsubscribed",
            "<p>No more price alert mail will be sent to this address.</p>",
        ));
    }
    Ok(page(
        StatusCode::NOT_FOUND,
        "Unknown link",
        "<p>This unsubscribe link is not valid.</p>",
    ))
}
