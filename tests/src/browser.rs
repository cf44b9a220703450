//! Headless Chromium with the built extension, driven by Playwright
//! scripts in `tests/js/` (run with node; `tests/js/harness.cjs` is the
//! shared JS side: launch flags, waiting for the service worker, console
//! error collection).
//!
//! Contract with a script: it gets `PRICEWATCH_EXTENSION_DIR`,
//! `PRICEWATCH_CHROMIUM`, `PRICEWATCH_USER_DATA_DIR` (fresh and empty) and
//! whatever the test adds, and prints as its last stdout line one JSON
//! object `{"result": ..., "errors": [...]}`; exit status 0 means it ran
//! to the end.

use crate::env::{path_from_env, skip_or_fail, workspace_root};
use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the browser tests find their pieces.
#[derive(Debug, Clone)]
pub struct ExtensionBrowser {
    /// The unpacked extension (`dist/extension`).
    pub extension_dir: PathBuf,
    /// The Chromium binary (not the `/usr/bin/chromium` wrapper, which adds
    /// its own extension flags).
    pub chromium: PathBuf,
    /// A `node_modules` folder holding `playwright-core`.
    pub node_modules: PathBuf,
}

/// What a script run gave back.
#[derive(Debug, Clone)]
pub struct BrowserRun {
    /// The script's `result` value.
    pub result: serde_json::Value,
    /// Console errors of pages and workers, uncaught page errors, and the
    /// errors the service worker kept; empty when all went well.
    pub errors: Vec<String>,
    /// The script's stderr (Playwright's own messages, diagnostics).
    pub stderr: String,
}

impl Default for ExtensionBrowser {
    fn default() -> Self {
        Self::locate()
    }
}

impl ExtensionBrowser {
    /// The default locations, overridable by `PRICEWATCH_EXTENSION_DIR`,
    /// `PRICEWATCH_CHROMIUM` and `PRICEWATCH_NODE_MODULES`.
    pub fn locate() -> Self {
        let root = workspace_root();
        ExtensionBrowser {
            extension_dir: path_from_env(
                "PRICEWATCH_EXTENSION_DIR",
                root.join("dist").join("extension"),
            ),
            chromium: path_from_env(
                "PRICEWATCH_CHROMIUM",
                PathBuf::from("/usr/lib/chromium/chromium"),
            ),
            node_modules: path_from_env(
                "PRICEWATCH_NODE_MODULES",
                root.join("scripts").join("node").join("node_modules"),
            ),
        }
    }

    /// What is missing to run a browser test (empty: nothing).
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.extension_dir.join("manifest.json").is_file() {
            missing.push(format!(
                "the built extension {} (run scripts/build-extension)",
                self.extension_dir.display()
            ));
        }
        if !self.chromium.is_file() {
            missing.push(format!(
                "Chromium at {} (apt-get install chromium)",
                self.chromium.display()
            ));
        }
        if !self.node_modules.join("playwright-core").is_dir() {
            missing.push(format!(
                "playwright-core in {} (npm ci in scripts/node)",
                self.node_modules.display()
            ));
        }
        if Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            missing.push("node (Node.js 20+)".to_string());
        }
        missing
    }

    /// The browser pieces, or `None` after printing a skip line (never in
    /// CI: there a missing piece fails the test). See [`skip_or_fail`].
    pub fn for_test(test: &str) -> Option<Self> {
        let browser = Self::locate();
        skip_or_fail(test, &browser.missing()).then_some(browser)
    }

    /// Total raw and `gzip -9` sizes in bytes of every wasm file the
    /// package ships (each `*.wasm` anywhere under the extension folder,
    /// whatever module layout the build uses).
    pub fn wasm_sizes(&self) -> Result<(u64, u64)> {
        let mut raw = 0;
        let mut gz = 0;
        let mut files = 0;
        let mut dirs = vec![self.extension_dir.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "wasm") {
                    continue;
                }
                files += 1;
                raw += std::fs::metadata(&path)?.len();
                let out = Command::new("gzip")
                    .arg("-9")
                    .arg("-c")
                    .arg(&path)
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| Error::new(format!("gzip {}: {e}", path.display())))?;
                if !out.status.success() {
                    return Err(Error::new(format!("gzip {} failed", path.display())));
                }
                gz += out.stdout.len() as u64;
            }
        }
        if files == 0 {
            return Err(Error::new(format!(
                "no wasm under {}",
                self.extension_dir.display()
            )));
        }
        Ok((raw, gz))
    }

    /// A copy of the built extension talking to `backend_url` instead of
    /// the URL it was built with: `config.js` and the manifest's
    /// `host_permissions` rewritten, the wasm untouched (so tests need no
    /// wasm rebuild per backend). The copy lives in the returned folder.
    pub fn with_backend(&self, backend_url: &str) -> Result<(ExtensionBrowser, tempfile::TempDir)> {
        let dir = tempfile::Builder::new()
            .prefix("pricewatch-extension-")
            .tempdir()?;
        let copy = dir.path().join("extension");
        copy_dir(&self.extension_dir, &copy)?;
        let url = backend_url.trim_end_matches('/');
        if url.contains(['"', '\\', '\n']) {
            return Err(Error::new(format!("unusable backend URL {url:?}")));
        }
        std::fs::write(
            copy.join("config.js"),
            format!("// Rewritten by the test harness.\nexport const BACKEND_URL = \"{url}\";\n"),
        )?;
        let manifest_path = copy.join("manifest.json");
        let mut manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path)?)
                .map_err(|e| Error::new(format!("{}: {e}", manifest_path.display())))?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::new(format!("not a URL: {url}")))?;
        let host_port = rest.split('/').next().unwrap_or_default();
        // Chrome's match patterns ignore the port.
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        manifest["host_permissions"] = serde_json::json!([format!("{scheme}://{host}/*")]);
        std::fs::write(
            &manifest_path,
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::new(e.to_string()))?,
        )?;
        Ok((
            ExtensionBrowser {
                extension_dir: copy,
                ..self.clone()
            },
            dir,
        ))
    }

    /// Runs `tests/js/<script>` with node, with a fresh Chromium profile and
    /// the extra environment `env`, killing it after `timeout`.
    pub fn run_script(
        &self,
        script: &str,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<BrowserRun> {
        let script_path = workspace_root().join("tests").join("js").join(script);
        if !script_path.is_file() {
            return Err(Error::new(format!(
                "no such script {}",
                script_path.display()
            )));
        }
        let work = tempfile::Builder::new()
            .prefix("pricewatch-browser-")
            .tempdir()?;
        let profile = work.path().join("profile");
        std::fs::create_dir(&profile)?;
        let stdout_path = work.path().join("stdout");
        let stderr_path = work.path().join("stderr");

        let mut child = Command::new("node")
            .arg(&script_path)
            .env("NODE_PATH", &self.node_modules)
            .env("PRICEWATCH_EXTENSION_DIR", &self.extension_dir)
            .env("PRICEWATCH_CHROMIUM", &self.chromium)
            .env("PRICEWATCH_USER_DATA_DIR", &profile)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path)?)
            .stderr(File::create(&stderr_path)?)
            .spawn()
            .map_err(|e| Error::new(format!("spawn node {}: {e}", script_path.display())))?;

        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::new(format!(
                    "{script} did not finish within {timeout:?}; stderr:\n{}",
                    read_lossy(&stderr_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = read_lossy(&stdout_path);
        let stderr = read_lossy(&stderr_path);
        if !status.success() {
            return Err(Error::new(format!(
                "{script} failed ({status}); stderr:\n{stderr}\nstdout:\n{stdout}"
            )));
        }
        let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
        let parsed: serde_json::Value = last
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                Error::new(format!(
                    "{script} printed no JSON result line; stdout:\n{stdout}\nstderr:\n{stderr}"
                ))
            })?;
        let errors = parsed
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|list| {
                list.iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(BrowserRun {
            result: parsed
                .get("result")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            errors,
            stderr,
        })
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
