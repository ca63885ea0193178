//! Test support: the real daemon in a child process on a loopback port with
//! a scratch data directory, an API client, fixture plugins, and loopback
//! HTTP servers that count what reaches them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use greenlight::store::{Role, Store, TokenRecord};
use serde_json::{Value, json};

pub mod browser;
pub mod k8s;
pub mod polyglot;
pub mod releases;
pub mod systemd;

/// How long a daemon may take to start (it may compile plugins on the way).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The bytes of a fixture plugin built from `plugins/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The `greenlight` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_greenlight")
}

/// A daemon running in a child process.
pub struct Daemon {
    child: Child,
    pub base: String,
    pub token: String,
    pub data: PathBuf,
    _scratch: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

impl Daemon {
    /// Starts a daemon on a fresh data directory.
    pub async fn start() -> Daemon {
        Daemon::start_with_config("").await
    }

    /// Starts a daemon with extra TOML configuration.
    pub async fn start_with_config(config: &str) -> Daemon {
        let scratch = tempfile::tempdir().unwrap();
        let data = scratch.path().join("data");
        let mut daemon = Daemon::spawn(&data, config).await;
        daemon._scratch = Some(scratch);
        daemon
    }

    async fn spawn(data: &Path, config: &str) -> Daemon {
        let config_path = data.with_extension("toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "error")
            // The secrets key comes from the test's config or data directory,
            // never from the environment the tests happen to run in.
            .env_remove(greenlight::secrets_key::ENV_VAR)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting greenlight");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT))
            .await
            .unwrap()
            .expect("the daemon did not report its address");
        let token = std::fs::read_to_string(data.join("admin-token"))
            .expect("the daemon wrote no admin token")
            .trim()
            .to_string();
        Daemon {
            child,
            base,
            token,
            data: data.to_path_buf(),
            _scratch: None,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the daemon with SIGTERM and starts a new one on the same data.
    pub async fn restart(mut self) -> Daemon {
        self.terminate();
        self.respawn().await
    }

    /// Kills the daemon with SIGKILL, as a crash would, and starts a new one
    /// on the same data.
    pub async fn crash_and_restart(mut self) -> Daemon {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.respawn().await
    }

    /// Starts a new daemon on this one's data and config file (which may
    /// have been changed meanwhile); this one must have stopped.
    pub async fn respawn(mut self) -> Daemon {
        let scratch = self._scratch.take();
        let config = std::fs::read_to_string(self.data.with_extension("toml")).unwrap();
        let mut next = Daemon::spawn(&self.data, &config).await;
        next._scratch = scratch;
        next
    }

    /// Stops the daemon, adds a token with `role` to its store, and starts
    /// it again; returns the new daemon and the token. There is no API for
    /// tokens yet, so this writes to the store while the daemon is down.
    pub async fn add_token(self, role: Role) -> (Daemon, String) {
        self.add_token_named(role.as_str(), role).await
    }

    /// As `add_token`, under any name, even one the API would refuse today
    /// (as a store from an earlier release may hold).
    pub async fn add_token_named(mut self, name: &str, role: Role) -> (Daemon, String) {
        self.terminate();
        let token = greenlight::identity::new_secret().unwrap();
        {
            let store = Store::open(&self.data.join("db")).unwrap();
            store
                .put_token(
                    &greenlight::identity::hash(&token),
                    &TokenRecord {
                        name: name.to_string(),
                        role,
                        created_at_ms: 0,
                        revoked: false,
                        created_by: None,
                    },
                )
                .unwrap();
            store.flush().unwrap();
        }
        (self.respawn().await, token)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the daemon exited with {status} on SIGTERM"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// Creates a token with `role` through the API; returns its secret.
    pub async fn create_token(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .send(
                self.request(reqwest::Method::POST, "/api/v1/tokens")
                    .json(&json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Sends a request and returns the status and the JSON body (`null` if none).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body)
    }

    /// Uploads a component.
    pub async fn upload(&self, name: &str, version: &str, bytes: Vec<u8>) -> (u16, Value) {
        self.send(
            self.request(reqwest::Method::POST, "/api/v1/plugins")
                .query(&[("name", name), ("version", version)])
                .body(bytes),
        )
        .await
    }

    /// Uploads a component that must be accepted.
    pub async fn upload_ok(&self, name: &str, fixture_name: &str) -> Value {
        let (status, body) = self.upload(name, "1.0.0", fixture(fixture_name)).await;
        assert_eq!(status, 201, "upload of {fixture_name}: {body}");
        body
    }

    /// Replaces a plugin's grant, which must be accepted.
    pub async fn grant(&self, name: &str, grant: Value) {
        let (status, body) = self
            .send(
                self.request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/plugins/{name}/grant"),
                )
                .json(&grant),
            )
            .await;
        assert_eq!(status, 200, "grant for {name}: {body}");
    }

    /// Invokes the latest version of a plugin; the answer must be a 200.
    pub async fn invoke(&self, name: &str, body: Value) -> Value {
        let (status, answer) = self
            .send(
                self.request(
                    reqwest::Method::POST,
                    &format!("/api/v1/plugins/{name}/latest/invoke"),
                )
                .json(&body),
            )
            .await;
        assert_eq!(status, 200, "invoke {name}: {answer}");
        answer
    }

    /// Invokes a check plugin's `verify` with these parameters and one target.
    pub async fn verify(&self, name: &str, parameters: Value) -> Value {
        self.invoke(
            name,
            json!({
                "context": {"application": "shop", "environment": "beta", "version": "2.0.0", "parameters": parameters},
                "targets": [{"id": "web-1", "address": "127.0.0.1:1"}]
            }),
        )
        .await
    }

    /// Asserts that the daemon still answers its health check.
    pub async fn assert_healthy(&self) {
        let r = self.http.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI against a daemon with its admin token; returns whether it
/// succeeded, its stdout and its stderr.
pub fn cli(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("GREENLIGHT_URL", &d.base)
        .env("GREENLIGHT_TOKEN", &d.token)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts a release through `greenlight release start`, which must
/// succeed; returns its id.
pub fn cli_start_release(d: &Daemon, app: &str, env: &str, version: &str, flow: &str) -> String {
    let args = [
        "release",
        "start",
        "--app",
        app,
        "--env",
        env,
        "--version",
        version,
        "--flow",
        flow,
    ];
    let (ok, out, err) = cli(d, &args);
    assert!(ok, "greenlight {args:?}: {out}{err}");
    out.strip_prefix("Started release ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no release id in {out}"))
        .to_string()
}

/// Asserts an API refusal: its status, its code, and a message that
/// contains `needle`.
pub fn assert_refused(status: u16, body: &Value, want: (u16, &str), needle: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (want.0, Some(want.1)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "`{message}` should mention `{needle}`"
    );
}

/// The error code of a failed invocation, or a panic naming what came back.
pub fn error_code(answer: &Value) -> &str {
    assert_eq!(answer["status"], "failed", "expected a failure: {answer}");
    answer["error"]["code"].as_str().unwrap()
}

/// The verdict of a successful check invocation.
pub fn verdict(answer: &Value) -> &Value {
    assert_eq!(answer["status"], "ok", "expected success: {answer}");
    &answer["output"]["verdict"]
}

/// A loopback HTTP server that answers every request with `body` and counts
/// the requests that reach it.
pub struct CountingServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl CountingServer {
    pub async fn start(body: &'static str) -> CountingServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                body
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingServer { addr, hits }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
