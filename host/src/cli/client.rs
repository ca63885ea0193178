//! A small client of the daemon's API for the CLI.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

use super::output::{Answer, Output};

/// Where the daemon is, how to authenticate and how to print. Every option
/// is global, so it is accepted anywhere on the command line; `serve` and
/// `demo` start a daemon of their own and ignore them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection and output")]
pub struct ServerArgs {
    /// The daemon's base URL.
    #[arg(
        long = "url",
        value_name = "URL",
        alias = "server",
        env = "GREENLIGHT_URL",
        default_value = "http://127.0.0.1:7878",
        global = true
    )]
    pub server: String,
    /// The API token.
    #[arg(long, env = "GREENLIGHT_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A file holding the API token (such as DATA/admin-token).
    #[arg(long, env = "GREENLIGHT_TOKEN_FILE", global = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// Print the daemon's answers as JSON instead of tables and summaries
    /// (`release watch`: one event per line; `plugin test`: the local
    /// result).
    #[arg(long, global = true)]
    pub json: bool,
}

/// An authenticated connection to the daemon.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    output: Output,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .trim()
                .to_string(),
            (None, None) => {
                bail!("no API token: pass --token, --token-file or set GREENLIGHT_TOKEN")
            }
        };
        Ok(Client {
            base: args.server.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
            output: Output::new(args.json),
        })
    }

    /// How this command prints.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Prints an answer: the daemon's JSON with `--json`, otherwise what
    /// `human` makes of it.
    pub fn print<T>(&self, answer: &Answer<T>, human: impl FnOnce(&T)) -> anyhow::Result<()> {
        self.output.print(answer, human)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and returns the response if it succeeded, turning
    /// API errors into their `code (status): message`.
    pub async fn response(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await?;
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(v) => bail!(
                "{} ({}): {}",
                v["code"].as_str().unwrap_or("error"),
                status.as_u16(),
                v["message"].as_str().unwrap_or("")
            ),
            None => bail!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
        }
    }

    /// Sends a request and returns the answer as sent and decoded, turning
    /// API errors into their `code (status): message`.
    pub async fn fetch<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<Answer<T>> {
        let body = self.response(request).await?.bytes().await?;
        let json = serde_json::from_slice(&body)
            .context("the daemon's answer is not what this CLI expects")?;
        Answer::decode(json)
    }

    /// Sends a request and decodes the JSON answer, turning API errors into
    /// their `code (status): message`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        Ok(self.fetch(request).await?.value)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path)).bearer_auth(&self.token)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(self.url(path))
    }
}
