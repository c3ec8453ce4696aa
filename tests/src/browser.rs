//! Headless Chromium, driven over the DevTools protocol: pages run their own
//! JavaScript, keep cookies and hold event streams, as in a person's browser.
//! Tests click and type by evaluating JavaScript in the page, and wait for
//! what the page shows (never for a fixed time).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One headless Chromium with one page (its own profile: its own cookies).
pub struct Browser {
    child: tokio::process::Child,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The browser target's DevTools URL (for `Browser.close`).
    endpoint: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

/// Debian's Chromium, which `cargo xtask ci` installs.
pub fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Chromium is needed for the page tests: apt-get install chromium (.ci/run does)")
}

/// How the tests run Chromium: headless, as root in a container.
pub const HEADLESS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
];

/// Where screenshots go: `target/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("creating target/test-artifacts");
    dir
}

impl Browser {
    /// Starts Chromium on `about:blank` and attaches to its page.
    pub async fn launch() -> Self {
        Self::launch_with(&[]).await
    }

    /// [`launch`](Self::launch) with more Chromium flags (e.g.
    /// `--ignore-certificate-errors` for a development CA it cannot be told of).
    pub async fn launch_with(flags: &[&str]) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(chromium())
            .args(HEADLESS)
            .args([
                "--no-default-browser-check",
                "--disable-extensions",
                "--window-size=1280,1000",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited without opening its DevTools endpoint");
        })
        .await
        .expect("chromium did not open its DevTools endpoint within 30 s");
        // Keep draining stderr, so that Chromium never blocks writing to it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http_base = endpoint
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .map(|host| format!("http://{host}"))
            .unwrap();
        let page_url = crate::eventually("Chromium's page target", Duration::from_secs(10), || {
            let url = format!("{http_base}/json/list");
            async move {
                let client = airlock_sim::LoopbackClient::new();
                let request = http::Request::get(&url).body(bytes::Bytes::new()).ok()?;
                let response = airlock_core::HttpClient::send(&client, request)
                    .await
                    .ok()?;
                let targets: Value = serde_json::from_slice(response.body()).ok()?;
                targets
                    .as_array()?
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_owned)
            }
        })
        .await;
        let (page, _) = tokio_tungstenite::connect_async(page_url.as_str())
            .await
            .expect("attaching to Chromium's page");
        let mut browser = Self {
            child,
            page,
            endpoint,
            next_id: 0,
            _profile: profile,
        };
        browser.command("Page.enable", json!({})).await;
        browser.command("Runtime.enable", json!({})).await;
        browser
    }

    /// Sends one DevTools command and waits for its answer (events that
    /// arrive meanwhile are skipped).
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        self.try_command(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// [`Browser::command`], handing back DevTools' error instead of panicking.
    async fn try_command(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.page.send(Message::text(message)).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let frame = self.page.next().await.expect("DevTools closed").unwrap();
                let Message::Text(text) = frame else { continue };
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["id"] == id {
                    return value;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"));
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// Navigates and waits until the page (after any redirects) has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.command("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
            .await;
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|error| panic!("Runtime.evaluate: {error}"))
    }

    /// [`Browser::eval`], handing back DevTools' error (e.g. the page
    /// navigated while the expression ran) instead of panicking.
    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self
            .try_command(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        Ok(result["result"]["value"].clone())
    }

    /// Waits (up to 30 s) until `condition` is truthy in the page; its value.
    pub async fn wait_for(&mut self, condition: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let guarded = format!(
            "(() => {{ try {{ return ({condition}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            // A page that navigates (a form post, a redirect) while the
            // condition is evaluated has no answer yet: ask the next page.
            let value = match self.try_eval(&guarded).await {
                Ok(value) => value,
                Err(error) if navigated(&error) => Value::Null,
                Err(error) => panic!("Runtime.evaluate: {error}"),
            };
            if !matches!(value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("")
            {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let html = self.eval("document.documentElement.outerHTML").await;
                panic!("waited 30 s for `{condition}`; the page is:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG of the page as `target/test-artifacts/{name}.png`.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let shot = self
            .command(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Closes Chromium as a person would (`Browser.close`: it closes its
    /// connections, event streams included), and waits for it to exit.
    pub async fn close(mut self) {
        let _ = self.page.close(None).await;
        if let Ok((mut browser, _)) = tokio_tungstenite::connect_async(self.endpoint.as_str()).await
        {
            let close = json!({ "id": 1, "method": "Browser.close" }).to_string();
            let _ = browser.send(Message::text(close)).await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Whether DevTools refused an evaluation because the page went away under
/// it (navigation, reload), which a later evaluation in the new page fixes.
fn navigated(error: &Value) -> bool {
    let message = error["message"].as_str().unwrap_or_default();
    [
        "Inspected target navigated or closed",
        "Execution context was destroyed",
        "Cannot find context with specified id",
    ]
    .iter()
    .any(|known| message.contains(known))
}
