//! The verifier: the crawler that checks suspicious reports and refreshes
//! watched products (`../shared/design/TRUST.md`: "the verification crawl
//! is the only pre-trusted source").
//!
//! It is an HTTP client only: it leases jobs from the backend's verifier
//! endpoints, fetches the Amazon product page, extracts it with
//! `wasm-core` (the same rules the extension runs), signs an observation
//! with its own key and posts the result. It knows no SQL and serves no
//! HTTP.
//!
//! Code map:
//! - [`worker`]: the job loop ([`worker::Verifier`]), bounded concurrency,
//!   graceful stop, observation signing;
//! - [`api`]: the signed client of `POST /v1/verification/lease` and
//!   `POST /v1/verification/{id}/result`;
//! - [`fetch`]: one product page per call: breaker, token bucket, proxy
//!   choice, browser headers, cookie jar, retries, classification;
//! - the policies, each pure and driven by an injected [`clock::Clock`]:
//!   [`rate`] (token buckets), [`backoff`] (exponential, full jitter),
//!   [`breaker`] (circuit breaker per marketplace), [`proxy`] (pool with
//!   health scores), [`captcha`] (robot-check detection), [`cookies`]
//!   (a jar per marketplace);
//! - [`keyfile`]: the verifier's key on disk; [`config`]: parsing of the
//!   command-line specs (`amazon.de=1/s`, `amazon.com=https://...`).

pub mod api;
pub mod backoff;
pub mod breaker;
pub mod captcha;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod extract;
pub mod fetch;
pub mod keyfile;
pub mod proxy;
pub mod rate;
pub mod worker;
