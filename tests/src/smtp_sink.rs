//! A small SMTP server for tests: it speaks enough RFC 5321 for a real
//! client (EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT), records every accepted message, and answers a chosen
//! 4xx/5xx at a chosen stage on demand so tests can exercise retries.
//!
//! It listens on 127.0.0.1 on its own thread with its own tokio runtime, so
//! sync and async tests use it alike; dropping the handle stops it. No
//! AUTH. [`SmtpSink::start`] speaks plain SMTP (clients use
//! `smtp://127.0.0.1:{port}?tls=none`); [`SmtpSink::start_tls`] speaks it
//! inside TLS from the first byte (`smtps://127.0.0.1:{port}`) with a
//! certificate from a throw-away CA that clients trust through
//! [`SmtpSink::ca_pem`]. STARTTLS is not implemented.
//!
//! [`ReceivedMail`] has just enough MIME reading for assertions: headers
//! (unfolded, RFC 2047 words decoded), and the text parts of a multipart
//! message decoded from quoted-printable or base64.
//!
//! ```no_run
//! use tests::smtp_sink::{SmtpSink, Stage};
//! let sink = SmtpSink::start()?;
//! sink.fail(Stage::Data, 451, 1); // the next message gets 451 after DATA
//! // ... send to sink.url() ...
//! assert!(sink.messages().is_empty());
//! # Ok::<(), tests::Error>(())
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The longest line or message accepted (bytes); longer closes the session.
const MAX_LINE: usize = 64 * 1024;
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// Where in the transaction a scripted failure is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// In reply to `MAIL FROM`.
    Mail,
    /// In reply to `RCPT TO`.
    Rcpt,
    /// In reply to the end of the message (after the lone `.`).
    Data,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address, without angle brackets.
    pub mail_from: String,
    /// The `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
    /// The message as received, dot-unstuffed, CRLF line ends.
    pub data: String,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<ReceivedMail>,
    /// Scripted failures: (stage, code, remaining; `None` = for ever).
    failures: Vec<(Stage, u16, Option<usize>)>,
    /// Transactions started (`MAIL FROM` commands received).
    transactions: usize,
    /// Every command line received, in order (DATA content excluded).
    commands: Vec<String>,
}

/// A running SMTP sink.
pub struct SmtpSink {
    addr: SocketAddr,
    ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a plain-SMTP sink on a free loopback port.
    pub fn start() -> crate::Result<SmtpSink> {
        SmtpSink::start_with(None)
    }

    /// Starts an implicit-TLS (smtps) sink on a free loopback port.
    pub fn start_tls() -> crate::Result<SmtpSink> {
        let (ca_pem, config) =
            make_tls().map_err(|e| crate::Error::new(format!("sink TLS setup: {e}")))?;
        SmtpSink::start_with(Some((ca_pem, config)))
    }

    fn start_with(tls: Option<(String, Arc<rustls::ServerConfig>)>) -> crate::Result<SmtpSink> {
        let (ca_pem, acceptor) = match tls {
            Some((pem, config)) => (Some(pem), Some(tokio_rustls::TlsAcceptor::from(config))),
            None => (None, None),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let state = shared.clone();
                                match acceptor.clone() {
                                    None => {
                                        tokio::spawn(session(stream, state));
                                    }
                                    Some(acceptor) => {
                                        tokio::spawn(async move {
                                            if let Ok(tls) = acceptor.accept(stream).await {
                                                session(tls, state).await;
                                            }
                                        });
                                    }
                                }
                            }
                        }
                    }
                });
            })?;
        Ok(SmtpSink {
            addr,
            ca_pem,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL for `--smtp-url`: `smtp://127.0.0.1:{port}?tls=none`, or
    /// `smtps://127.0.0.1:{port}` for a TLS sink.
    pub fn url(&self) -> String {
        if self.ca_pem.is_some() {
            format!("smtps://127.0.0.1:{}", self.addr.port())
        } else {
            format!("smtp://127.0.0.1:{}?tls=none", self.addr.port())
        }
    }

    /// The PEM of the CA that signed a TLS sink's certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Answers `code` at `stage` for the next `times` transactions that
    /// reach it (`usize::MAX`: for ever). Several calls queue up in order.
    pub fn fail(&self, stage: Stage, code: u16, times: usize) {
        let remaining = (times != usize::MAX).then_some(times);
        self.lock().failures.push((stage, code, remaining));
    }

    /// Stops failing.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// The accepted messages, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.lock().messages.clone()
    }

    /// How many transactions were started (`MAIL FROM` received).
    pub fn transactions(&self) -> usize {
        self.lock().transactions
    }

    /// Every command line received (the verb and arguments).
    pub fn commands(&self) -> Vec<String> {
        self.lock().commands.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking session thread must not hide the recorded state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The scripted failure for `stage`, if any, used up by one.
fn take_failure(state: &Mutex<State>, stage: Stage) -> Option<u16> {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let i = st.failures.iter().position(|(s, _, _)| *s == stage)?;
    let (_, code, remaining) = st.failures[i];
    match remaining {
        None => {}
        Some(n) if n <= 1 => {
            st.failures.remove(i);
        }
        Some(n) => st.failures[i].2 = Some(n - 1),
    }
    Some(code)
}

fn failure_reply(code: u16) -> String {
    let text = if code < 500 {
        "4.0.0 try again later (scripted)"
    } else {
        "5.0.0 refused (scripted)"
    };
    format!("{code} {text}\r\n")
}

/// `<addr>` (with optional parameters after it) -> `addr`.
fn path_arg(rest: &str) -> Option<String> {
    let rest = rest.trim();
    let start = rest.find('<')?;
    let end = rest[start..].find('>')? + start;
    Some(rest[start + 1..end].to_string())
}

/// A CA and a leaf certificate for `127.0.0.1` and `localhost`.
fn make_tls() -> Result<(String, Arc<rustls::ServerConfig>), Box<dyn std::error::Error>> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    Ok((ca.pem(), Arc::new(config)))
}

async fn session<S>(stream: S, state: Arc<Mutex<State>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    if write
        .write_all(b"220 127.0.0.1 pricewatch test sink ESMTP\r\n")
        .await
        .is_err()
        || write.flush().await.is_err()
    {
        return;
    }
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            let _ = write.write_all(b"500 5.5.6 line too long\r\n").await;
            let _ = write.flush().await;
            return;
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commands
            .push(text.clone());
        let upper = text.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            mail_from = None;
            rcpt_to.clear();
            "250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n".to_string()
        } else if upper.starts_with("HELO") {
            mail_from = None;
            rcpt_to.clear();
            "250 127.0.0.1\r\n".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            state.lock().unwrap_or_else(|e| e.into_inner()).transactions += 1;
            if mail_from.is_some() {
                "503 5.5.1 nested MAIL command\r\n".to_string()
            } else if let Some(code) = take_failure(&state, Stage::Mail) {
                failure_reply(code)
            } else {
                match path_arg(&text[10..]) {
                    Some(from) => {
                        mail_from = Some(from);
                        "250 2.1.0 ok\r\n".to_string()
                    }
                    None => "501 5.5.4 syntax: MAIL FROM:<address>\r\n".to_string(),
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            if mail_from.is_none() {
                "503 5.5.1 need MAIL first\r\n".to_string()
            } else if let Some(code) = take_failure(&state, Stage::Rcpt) {
                failure_reply(code)
            } else {
                match path_arg(&text[8..]) {
                    Some(to) if !to.is_empty() => {
                        rcpt_to.push(to);
                        "250 2.1.5 ok\r\n".to_string()
                    }
                    _ => "501 5.5.4 syntax: RCPT TO:<address>\r\n".to_string(),
                }
            }
        } else if upper == "DATA" {
            if mail_from.is_none() || rcpt_to.is_empty() {
                "503 5.5.1 need MAIL and RCPT first\r\n".to_string()
            } else {
                if write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                    || write.flush().await.is_err()
                {
                    return;
                }
                let Some(data) = read_data(&mut reader).await else {
                    return;
                };
                let from = mail_from.take().unwrap_or_default();
                let to = std::mem::take(&mut rcpt_to);
                if let Some(code) = take_failure(&state, Stage::Data) {
                    failure_reply(code)
                } else {
                    state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .messages
                        .push(ReceivedMail {
                            mail_from: from,
                            rcpt_to: to,
                            data,
                        });
                    "250 2.0.0 queued\r\n".to_string()
                }
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpt_to.clear();
            "250 2.0.0 ok\r\n".to_string()
        } else if upper == "NOOP" {
            "250 2.0.0 ok\r\n".to_string()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            let _ = write.flush().await;
            return;
        } else {
            "502 5.5.2 command not implemented\r\n".to_string()
        };
        if write.write_all(reply.as_bytes()).await.is_err() || write.flush().await.is_err() {
            return;
        }
    }
}

/// Reads message lines up to the lone `.`, undoing dot-stuffing.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .ok()?;
        if n == 0 || !line.ends_with(b"\n") {
            return None;
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
        if data.len() > MAX_MESSAGE {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&data).into_owned())
}

/// One decoded MIME part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimePart {
    /// The media type, lower case, without parameters: `text/plain`.
    pub content_type: String,
    /// The body, transfer-decoded (quoted-printable, base64), as UTF-8.
    pub body: String,
}

impl ReceivedMail {
    /// The header section and the body.
    fn split(&self) -> (&str, &str) {
        match self.data.split_once("\r\n\r\n") {
            Some((h, b)) => (h, b),
            None => (self.data.as_str(), ""),
        }
    }

    /// A header's value (first occurrence), unfolded, with RFC 2047
    /// encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(self.split().0, name).map(|v| decode_words(&v))
    }

    /// The raw header value (unfolded, not decoded).
    pub fn raw_header(&self, name: &str) -> Option<String> {
        header_in(self.split().0, name)
    }

    /// The parts of the message: each part of a multipart body, or the
    /// single body.
    pub fn parts(&self) -> Vec<MimePart> {
        let (headers, body) = self.split();
        parts_of(headers, body)
    }

    /// The decoded body of the first part of this media type.
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|p| p.content_type == content_type)
            .map(|p| p.body)
    }
}

fn header_in(headers: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in headers.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line);
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(name) {
                value = Some(v.trim_start().to_string());
            }
        }
    }
    value.map(|v| {
        // Unfolding: CRLF + whitespace is removed; runs of folding
        // whitespace become the single whitespace char that followed.
        v.trim().to_string()
    })
}

fn parts_of(headers: &str, body: &str) -> Vec<MimePart> {
    let content_type = header_in(headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let Some(boundary) = param(&content_type, "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut out = Vec::new();
        for chunk in body.split(delimiter.as_str()).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
            let (h, b) = chunk.split_once("\r\n\r\n").unwrap_or((chunk, ""));
            out.extend(parts_of(h, b));
        }
        return out;
    }
    let encoding = header_in(headers, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .unwrap_or_default(),
        "quoted-printable" => decode_qp(body),
        _ => body.as_bytes().to_vec(),
    };
    vec![MimePart {
        content_type: media,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }]
}

fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Quoted-printable (RFC 2045): `=XX` escapes and `=` soft line breaks.
fn decode_qp(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1..i + 3) == Some(b"\r\n") {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`);
/// whitespace between two encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    let mut pending_space = String::new();
    for token in value.split_inclusive([' ', '\t']) {
        let word = token.trim_end_matches([' ', '\t']);
        let trailing = &token[word.len()..];
        match decode_word(word) {
            Some(decoded) => {
                if !last_was_word {
                    out.push_str(&pending_space);
                }
                out.push_str(&decoded);
                last_was_word = true;
            }
            None => {
                out.push_str(&pending_space);
                out.push_str(word);
                last_was_word = false;
            }
        }
        pending_space = trailing.to_string();
    }
    out.push_str(&pending_space);
    out
}

fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut it = inner.splitn(3, '?');
    let _charset = it.next()?;
    let encoding = it.next()?;
    let text = it.next()?;
    let bytes = match encoding {
        "b" | "B" => STANDARD.decode(text).ok()?,
        "q" | "Q" => decode_qp(&text.replace('_', " ")),
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_and_qp() {
        assert_eq!(
            decode_words("=?utf-8?b?w6k=?= =?utf-8?q?t=C3=A9?= x"),
            "été x"
        );
        assert_eq!(decode_words("plain words"), "plain words");
        assert_eq!(decode_qp("a=3Db=\r\nc"), b"a=bc");
    }

    #[test]
    fn multipart_parts() {
        let data = "Content-Type: multipart/alternative;\r\n boundary=\"XX\"\r\n\r\n\
                    --XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naMOp\r\n\
                    --XX\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--XX--\r\n";
        let mail = ReceivedMail {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            data: data.into(),
        };
        assert_eq!(mail.part("text/plain").as_deref(), Some("hé"));
        assert_eq!(mail.part("text/html").as_deref(), Some("<p>x</p>"));
    }
}
