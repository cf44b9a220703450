//! The real `pricewatch serve` on a free loopback port with a temporary
//! SQLite database (or the `--database` given); killed when the handle is
//! dropped.

use crate::{http, Error, Result};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server gets to answer `/healthz` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `pricewatch` binary under test.
///
/// `PRICEWATCH_BIN` when set; otherwise the binary cargo built in the same
/// target dir and profile as this test executable (`<profile>/deps/<test>`
/// next to `<profile>/pricewatch`). `cargo test --workspace` builds it
/// (the backend package has integration tests). A lone `cargo test -p
/// tests` does not rebuild it: run `cargo build -p backend` first there.
pub fn pricewatch_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PRICEWATCH_BIN").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::new(format!(
                "PRICEWATCH_BIN={} is not a file",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| Error::new(format!("unexpected test path {}", exe.display())))?;
    let bin = profile_dir.join(format!("pricewatch{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        warn_if_stale(&bin);
        Ok(bin)
    } else {
        Err(Error::new(format!(
            "{} not found: build it with `cargo build -p backend --bin pricewatch` \
             (cargo test --workspace does), or set PRICEWATCH_BIN",
            bin.display()
        )))
    }
}

/// Prints one line (once per test process) when a source file the binary
/// is built from is newer than the binary: `cargo test -p tests` does not
/// rebuild it, and a stale binary fails tests in confusing ways.
fn warn_if_stale(bin: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
            return;
        };
        let root = crate::workspace_root();
        let newer = [
            "backend/src",
            "backend/migrations",
            "verifier/src",
            "wasm-core/src",
        ]
        .iter()
        .filter_map(|d| newest_file(&root.join(d)))
        .filter(|(t, _)| *t > built)
        .max_by_key(|(t, _)| *t);
        if let Some((_, path)) = newer {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: {} is older than {}: run `cargo build -p backend --bin pricewatch`",
                bin.display(),
                path.display()
            );
        }
    });
}

/// The most recently modified file under `dir` (recursively).
fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(t) = meta.modified() {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}

/// A free TCP port on 127.0.0.1 (bound, read, released). Another process
/// may take it before we use it; [`PricewatchServer::start_with`] retries.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A running `pricewatch serve`.
pub struct PricewatchServer {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    log: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
}

/// Spawns `pricewatch serve` on `addr` with the SQLite database in `dir`,
/// appending its output to `log`.
fn spawn_serve(
    bin: &Path,
    addr: SocketAddr,
    dir: &Path,
    log: &Path,
    extra_args: &[String],
) -> Result<Child> {
    // A `--database` among the extra arguments (e.g. PostgreSQL) replaces
    // the temporary SQLite file.
    let database = format!("sqlite://{}", dir.join("pricewatch.db").display());
    let database_args: &[&str] = if extra_args.iter().any(|a| a == "--database") {
        &[]
    } else {
        &["--database", &database]
    };
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    Command::new(bin)
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .args(database_args)
        .args(extra_args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::new(format!("spawn {}: {e}", bin.display())))
}

impl PricewatchServer {
    /// Starts `pricewatch serve` with a fresh SQLite database and waits until
    /// `GET /healthz` answers 200.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// The same with extra `serve` arguments (e.g. `--pow-difficulty 8`).
    pub fn start_with(extra_args: &[&str]) -> Result<Self> {
        let bin = pricewatch_bin()?;
        // Retry only when the port we picked was taken in the meantime.
        let mut last = Error::new("not started");
        for _ in 0..3 {
            match Self::start_once(&bin, extra_args) {
                Ok(server) => return Ok(server),
                Err((e, port_taken)) => {
                    last = e;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn start_once(bin: &Path, extra_args: &[&str]) -> std::result::Result<Self, (Error, bool)> {
        let fail = |e: Error| (e, false);
        let dir = tempfile::Builder::new()
            .prefix("pricewatch-e2e-")
            .tempdir()
            .map_err(|e| fail(e.into()))?;
        let port = free_port().map_err(fail)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = dir.path().join("server.log");
        let args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let child = spawn_serve(bin, addr, dir.path(), &log, &args).map_err(fail)?;
        let mut server = PricewatchServer {
            child,
            addr,
            dir,
            log,
            bin: bin.to_path_buf(),
            args,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            Err(e) => {
                let log = server.log();
                let port_taken = log.contains("in use");
                Err((e, port_taken))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::new(format!(
                    "pricewatch serve exited with {status} before it was ready; its output:\n{}",
                    self.log()
                )));
            }
            if let Ok(r) = http::get(self.addr, "/healthz") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::new(format!(
                    "pricewatch serve on {} did not answer /healthz with 200 within {:?}; its output:\n{}",
                    self.addr,
                    READY_TIMEOUT,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address it listens on (127.0.0.1:PORT).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The temporary folder holding the database and the log.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on this server.
    pub fn get(&self, path: &str) -> Result<http::Response> {
        http::get(self.addr, path)
    }

    /// Stops the process (the database stays); [`PricewatchServer::restart`]
    /// brings it back on the same port.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same address with the same database
    /// and arguments, and waits until it is ready.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = spawn_serve(&self.bin, self.addr, self.dir.path(), &self.log, &self.args)?;
        self.wait_ready()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for PricewatchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
