//! The SMTP channel: the `--smtp-url` setting and a lettre transport
//! (tokio, rustls) that sends composed mail.
//!
//! # URL forms
//! - `smtp://host:port`: plain SMTP, upgraded with STARTTLS when the
//!   server offers it (opportunistic). Default port 25.
//! - `smtp://host:port?tls=starttls`: STARTTLS required. Default port 587.
//! - `smtp://host:port?tls=none`: never TLS (a relay on loopback).
//! - `smtps://user:pass@host:465`: TLS from the first byte. Default port 465.
//!
//! User and password are percent-decoded. Judgement call: credentials are
//! accepted only with `smtps` or `tls=starttls`, so a password never goes
//! over a connection that might stay plain. [`SmtpUrl`]'s `Debug` and
//! `Display` never show the password.
//!
//! # Failures (judgement calls)
//! The server we talk to is the operator's relay, not the recipient's.
//! - 4xx, timeouts, connection and TLS errors: transient, retried.
//! - 550, 551, 553 (mailbox unavailable, user not local, mailbox name not
//!   allowed): permanent, the address is the problem; dead letter at once.
//! - any other 5xx: usually the relay's own setup (relay denied, auth,
//!   policy), which an operator can fix, so it is retried until the last
//!   attempt, then dead-lettered.
//! - a malformed address or message: permanent.

use super::compose::Email;
use super::retry::Failure;
use super::token::hex;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::time::Duration;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (`smtps://`).
    Wrapper,
    /// STARTTLS, required (`?tls=starttls`).
    StartTls,
    /// STARTTLS when offered (`smtp://` default).
    Opportunistic,
    /// Never (`?tls=none`).
    None,
}

/// A parsed `--smtp-url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    password: Option<String>,
}

/// The SMTP channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("invalid From address {0:?}: {1}")]
    From(String, String),
    #[error("TLS setup for {0}: {1}")]
    Tls(String, String),
    #[error("the SMTP connection pool needs a running tokio runtime")]
    NoRuntime,
}

impl SmtpUrl {
    /// Parses `smtp://` and `smtps://` URLs (see the module docs).
    pub fn parse(s: &str) -> Result<SmtpUrl, SmtpSetupError> {
        // The error never repeats the input: it may hold a password.
        let url = url::Url::parse(s).map_err(|e| SmtpSetupError::Url(e.to_string()))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(SmtpSetupError::Url(format!(
                    "scheme must be smtp or smtps, not {other:?}"
                )))
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(SmtpSetupError::Url("no host".into())),
        };
        if !(url.path().is_empty() || url.path() == "/") || url.fragment().is_some() {
            return Err(SmtpSetupError::Url("no path or fragment allowed".into()));
        }
        let mut tls_param = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "starttls") => tls_param = Some(SmtpTls::StartTls),
                ("tls", "none") => tls_param = Some(SmtpTls::None),
                ("tls", "opportunistic") => tls_param = Some(SmtpTls::Opportunistic),
                ("tls", other) => {
                    return Err(SmtpSetupError::Url(format!(
                        "tls must be starttls, none or opportunistic, not {other:?}"
                    )))
                }
                (other, _) => {
                    return Err(SmtpSetupError::Url(format!("unknown parameter {other:?}")))
                }
            }
        }
        let tls = match (implicit_tls, tls_param) {
            (true, None) => SmtpTls::Wrapper,
            (true, Some(_)) => {
                return Err(SmtpSetupError::Url(
                    "smtps is always TLS; the tls parameter is for smtp".into(),
                ))
            }
            (false, t) => t.unwrap_or(SmtpTls::Opportunistic),
        };
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Wrapper => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::Opportunistic | SmtpTls::None => 25,
        });
        let decode = |s: &str| -> Result<String, SmtpSetupError> {
            percent_decode(s).ok_or_else(|| {
                SmtpSetupError::Url("bad percent-encoding in user or password".into())
            })
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?;
        if password.is_some() && username.is_none() {
            return Err(SmtpSetupError::Url("a password needs a user".into()));
        }
        if username.is_some() && !matches!(tls, SmtpTls::Wrapper | SmtpTls::StartTls) {
            return Err(SmtpSetupError::Url(
                "credentials need smtps:// or ?tls=starttls".into(),
            ));
        }
        Ok(SmtpUrl {
            host,
            port,
            tls,
            username,
            password,
        })
    }

    /// Whether a password was given.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for SmtpUrl {
    /// The URL without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == SmtpTls::Wrapper {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.username {
            write!(f, "{u}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        match self.tls {
            SmtpTls::StartTls => f.write_str("?tls=starttls"),
            SmtpTls::None => f.write_str("?tls=none"),
            SmtpTls::Wrapper | SmtpTls::Opportunistic => Ok(()),
        }
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = SmtpSetupError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SmtpUrl::parse(s)
    }
}

/// Everything the SMTP channel needs.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub url: SmtpUrl,
    /// The From header and envelope sender, e.g.
    /// `pricewatch <alerts@pricewatch.example>`.
    pub from: String,
    /// Per SMTP command.
    pub timeout: Duration,
    /// A PEM CA certificate to trust besides the public roots (a relay
    /// with a private CA; the tests' TLS sink).
    pub extra_root_pem: Option<String>,
}

impl SmtpConfig {
    /// A config with a 30 s command timeout.
    pub fn new(url: SmtpUrl, from: impl Into<String>) -> Self {
        SmtpConfig {
            url,
            from: from.into(),
            timeout: Duration::from_secs(30),
            extra_root_pem: None,
        }
    }
}

/// Sends composed mail through one relay (connections are pooled).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    url: SmtpUrl,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("url", &self.url)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// One send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    #[error("could not build the message: {0}")]
    Message(String),
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SendError {
    /// Classifies the failure for the retry policy (see the module docs).
    pub fn into_failure(self) -> Failure {
        let reason = self.to_string();
        match &self {
            SendError::Recipient(_) | SendError::Message(_) => Failure::Permanent { reason },
            SendError::Smtp(e) => {
                let code = e.status().map(|c| c.to_string());
                let mailbox_problem = matches!(code.as_deref(), Some("550" | "551" | "553"));
                if e.is_client() || (e.is_permanent() && mailbox_problem) {
                    Failure::Permanent { reason }
                } else {
                    Failure::Transient {
                        reason,
                        retry_after_ms: None,
                    }
                }
            }
        }
    }
}

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

impl SmtpMailer {
    /// Sets up the transport (no connection is made yet). Must run inside
    /// a tokio runtime: the connection pool spawns its cleanup task here.
    pub fn new(config: SmtpConfig) -> Result<Self, SmtpSetupError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SmtpSetupError::NoRuntime);
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                SmtpSetupError::From(config.from.clone(), e.to_string())
            })?;
        let url = config.url;
        let params = || -> Result<TlsParameters, SmtpSetupError> {
            let err = |e: lettre::transport::smtp::Error| {
                SmtpSetupError::Tls(url.host.clone(), e.to_string())
            };
            match &config.extra_root_pem {
                None => TlsParameters::new(url.host.clone()).map_err(err),
                Some(pem) => TlsParameters::builder(url.host.clone())
                    .add_root_certificate(Certificate::from_pem(pem.as_bytes()).map_err(err)?)
                    .build_rustls()
                    .map_err(err),
            }
        };
        let tls = match url.tls {
            SmtpTls::Wrapper => Tls::Wrapper(params()?),
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let (Some(user), Some(pass)) = (&url.username, &url.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            url,
        })
    }

    /// Builds the MIME message: multipart/alternative (plain text, HTML),
    /// `List-Unsubscribe` + `List-Unsubscribe-Post` (RFC 8058) when the
    /// mail has an unsubscribe URL, and `Auto-Submitted: auto-generated`
    /// (RFC 3834) so that vacation responders stay quiet.
    pub fn build_message(&self, to: &str, email: &Email) -> Result<Message, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Recipient(e.to_string()))?;
        // Message-ID under the sender's domain (judgement call: the
        // machine's host name, lettre's default, is often not a public
        // domain, which spam filters hold against a message).
        let mut random = [0u8; 16];
        let message_id = getrandom::getrandom(&mut random)
            .ok()
            .map(|()| format!("<{}@{}>", hex(&random), self.from.email.domain()));
        let mut builder = Message::builder()
            .message_id(message_id)
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
        if let Some(url) = &email.list_unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")))
                .raw_header(HeaderValue::new(
                    LIST_UNSUBSCRIBE_POST,
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SendError::Message(e.to_string()))
    }

    /// Sends one mail to one address; `Ok` once the relay accepted it.
    pub async fn send(&self, to: &str, email: &Email) -> Result<(), SendError> {
        let message = self.build_message(to, email)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SmtpUrl {
        SmtpUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn url_forms() {
        let u = ok("smtp://mail.example:2525");
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("mail.example", 2525, SmtpTls::Opportunistic)
        );
        let u = ok("smtp://127.0.0.1:2525?tls=none");
        assert_eq!((u.host.as_str(), u.tls), ("127.0.0.1", SmtpTls::None));
        let u = ok("smtp://mail.example?tls=starttls");
        assert_eq!((u.port, u.tls), (587, SmtpTls::StartTls));
        let u = ok("smtps://us%40er:p%3Ass@mail.example");
        assert_eq!((u.port, u.tls), (465, SmtpTls::Wrapper));
        assert_eq!(u.username.as_deref(), Some("us@er"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(ok("smtp://h").port, 25);
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "http://h",
            "smtp://",
            "smtp://h?tls=maybe",
            "smtp://h?tsl=none",
            "smtps://h?tls=none",
            "smtp://u:p@h",
            "smtp://u:p@h?tls=none",
            "smtp://h/path",
            "smtps://u:%zz@h",
            "not a url",
        ] {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn password_is_never_shown() {
        let u = ok("smtps://user:hunter2@mail.example:465");
        assert!(u.has_password());
        let debug = format!("{u:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert_eq!(u.to_string(), "smtps://user@mail.example:465");
        let err = SmtpUrl::parse("smtp://user:hunter2@h")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let mailer = SmtpMailer::new(SmtpConfig::new(u, "pw <a@b.example>")).unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }

    #[test]
    fn needs_a_runtime() {
        let u = ok("smtp://h?tls=none");
        assert!(matches!(
            SmtpMailer::new(SmtpConfig::new(u, "a@b.example")),
            Err(SmtpSetupError::NoRuntime)
        ));
    }

    #[tokio::test]
    async fn bad_from_address() {
        let u = ok("smtp://h?tls=none");
        assert!(matches!(
            SmtpMailer::new(SmtpConfig::new(u, "not an address")),
            Err(SmtpSetupError::From(..))
        ));
    }

    #[tokio::test]
    async fn message_headers() {
        let mailer = SmtpMailer::new(SmtpConfig::new(
            ok("smtp://h?tls=none"),
            "pricewatch <alerts@pw.example>",
        ))
        .unwrap();
        let email = Email {
            subject: "Price down 20%: Wïdget".into(),
            text: "plain 39,99\u{a0}€".into(),
            html: "<p>html</p>".into(),
            list_unsubscribe: Some("https://pw.example/v1/email/unsubscribe?token=abc".into()),
        };
        let raw = String::from_utf8(
            mailer
                .build_message("u@x.example", &email)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            raw.contains(
                "List-Unsubscribe: <https://pw.example/v1/email/unsubscribe?token=abc>\r\n"
            ),
            "{raw}"
        );
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(raw.contains("\r\nDate: "), "{raw}");
        assert!(raw.contains("@pw.example>\r\n"), "Message-ID: {raw}");
        assert!(raw.starts_with("Message-ID: <"), "{raw}");
        assert!(
            raw.contains("From: pricewatch <alerts@pw.example>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.is_ascii());
        assert!(matches!(
            mailer.build_message("no-at-sign", &email),
            Err(SendError::Recipient(_))
        ));
    }
}
