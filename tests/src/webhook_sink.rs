//! An HTTP receiver for webhook tests: it listens on 127.0.0.1, records
//! every request (method, path, headers, body) and answers a scripted
//! status (200 unless told otherwise).
//!
//! Like the other servers here it runs on its own thread with its own
//! tokio runtime; dropping the handle stops it.
//!
//! ```no_run
//! use tests::webhook_sink::WebhookSink;
//! let sink = WebhookSink::start()?;
//! sink.respond(500, &[], 1); // the first request gets 500, then 200
//! let url = sink.url("/hook");
//! # let _ = url;
//! assert!(sink.requests().is_empty());
//! # Ok::<(), tests::Error>(())
//! ```

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One received request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(String, String)>,
    remaining: usize,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<ReceivedRequest>,
    script: VecDeque<Scripted>,
}

/// A running receiver.
pub struct WebhookSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookSink {
    /// Starts the receiver on a free loopback port.
    pub fn start() -> crate::Result<WebhookSink> {
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
            .name("webhook-sink".into())
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
                                tokio::spawn(async move {
                                    let svc = service_fn(move |req| handle(state.clone(), req));
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })?;
        Ok(WebhookSink {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Answers the next `times` requests with `status` and these headers
    /// (`usize::MAX`: for ever). Calls queue up in order; after the script
    /// runs out, requests get 200.
    pub fn respond(&self, status: u16, headers: &[(&str, &str)], times: usize) {
        self.lock().script.push_back(Scripted {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            remaining: times,
        });
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let answer = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests.push(ReceivedRequest {
            method,
            path,
            headers,
            body,
        });
        match st.script.front_mut() {
            Some(s) => {
                let answer = (s.status, s.headers.clone());
                if s.remaining != usize::MAX {
                    s.remaining = s.remaining.saturating_sub(1);
                    if s.remaining == 0 {
                        st.script.pop_front();
                    }
                }
                answer
            }
            None => (200, Vec::new()),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = StatusCode::from_u16(answer.0).unwrap_or(StatusCode::OK);
    for (k, v) in answer.1 {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}
