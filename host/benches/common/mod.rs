//! What the benchmarks that drive a daemon share: the daemon started in the
//! bench process on a scratch directory, and its API with the admin token.

use std::path::Path;

use greenlight::config::Config;
use greenlight::server::{ADMIN_TOKEN_FILE, Daemon};
use serde_json::Value;

/// A plugin built from `plugins/` (`http_deployer`, `fixture_check`).
pub fn plugin(name: &str) -> Vec<u8> {
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("plugin {}: {e}", path.display()))
}

/// The daemon's API.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    /// Sends a request with the admin token; a refusal is an error.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{status}: {body}");
        Ok(body)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Applies a flow file.
    pub async fn apply_flow(&self, text: String) -> anyhow::Result<()> {
        let request = self.http.post(self.url("/api/v1/flows"));
        let request = request
            .header("content-type", "application/toml")
            .body(text);
        self.send(request).await.map(drop)
    }

    /// Uploads a plugin as version 1.0.0 under `name`.
    pub async fn upload(&self, name: &str, file: &str) -> anyhow::Result<()> {
        let url = self.url(&format!("/api/v1/plugins?name={name}&version=1.0.0"));
        self.send(self.http.post(url).body(plugin(file))).await?;
        Ok(())
    }
}

/// Starts a daemon on loopback and a scratch directory, `configure`d;
/// returns it, its API and the directory (removed when dropped).
pub async fn daemon(
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<(Daemon, Api, tempfile::TempDir)> {
    let scratch = tempfile::tempdir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: scratch.path().to_path_buf(),
        ..Config::default()
    };
    configure(&mut config);
    let daemon = Daemon::start(config).await?;
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", daemon.addr),
        token: std::fs::read_to_string(scratch.path().join(ADMIN_TOKEN_FILE))?
            .trim()
            .to_string(),
    };
    Ok((daemon, api, scratch))
}
