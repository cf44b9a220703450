//! PostgreSQL statements of the trust decisions and the verification queue
//! (see [`super::verify`] for the rules); the same statements as
//! [`super::trust_sqlite`] in PostgreSQL's dialect.
