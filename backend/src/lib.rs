//! The pricewatch backend: ingest API for signed reports, storage (SQLite
//! embedded, PostgreSQL scale-out), price history, and the `pricewatch`
//! command line.
//!
//! Invariant: only this crate knows HTTP (server side) and SQL.

pub mod cli;
pub mod http;
pub mod notify;
pub mod store;
pub mod trust;
pub mod watch;
