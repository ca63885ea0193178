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
    /// The API token. Without this option or --token-file, the token is
    /// taken from GREENLIGHT_TOKEN, else from the file GREENLIGHT_TOKEN_FILE
    /// names: an option on the command line always wins over the
    /// environment.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// A file holding the API token (such as DATA/admin-token).
    #[arg(long, global = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// Print the daemon's answers as JSON instead of tables and summaries
    /// (`release watch`: one event per line; `plugin test`: the local
    /// result).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The API token: `--token`, then `--token-file`, then `GREENLIGHT_TOKEN`,
/// then the file `GREENLIGHT_TOKEN_FILE` names. Options given on the command
/// line come before the environment, so that a token file passed for one
/// command is not overridden by a token exported for the shell.
fn resolve_token(
    args: &ServerArgs,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> anyhow::Result<String> {
    let read = |path: &std::path::Path| -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?
            .trim()
            .to_string())
    };
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    if let Some(path) = &args.token_file {
        return read(path);
    }
    if let Some(token) = env("GREENLIGHT_TOKEN").filter(|t| !t.is_empty()) {
        return token
            .into_string()
            .map_err(|_| anyhow::anyhow!("GREENLIGHT_TOKEN is not valid UTF-8"));
    }
    if let Some(path) = env("GREENLIGHT_TOKEN_FILE").filter(|p| !p.is_empty()) {
        return read(std::path::Path::new(&path));
    }
    bail!(
        "no API token: pass --token or --token-file, or set GREENLIGHT_TOKEN or GREENLIGHT_TOKEN_FILE"
    )
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
        let token = resolve_token(args, |name| std::env::var_os(name))?;
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

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::{ServerArgs, resolve_token};

    fn args(token: Option<&str>, token_file: Option<&std::path::Path>) -> ServerArgs {
        ServerArgs {
            server: "http://127.0.0.1:1".into(),
            token: token.map(str::to_string),
            token_file: token_file.map(std::path::Path::to_path_buf),
            json: false,
        }
    }

    #[test]
    fn options_on_the_command_line_win_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (flag_file, env_file) = (dir.path().join("flag"), dir.path().join("env"));
        std::fs::write(&flag_file, "from-flag-file\n").unwrap();
        std::fs::write(&env_file, "from-env-file\n").unwrap();
        let env: HashMap<&str, OsString> = [
            ("GREENLIGHT_TOKEN", OsString::from("from-env")),
            ("GREENLIGHT_TOKEN_FILE", env_file.clone().into_os_string()),
        ]
        .into();
        let full = |name: &str| env.get(name).cloned();
        let only_file =
            |name: &str| (name == "GREENLIGHT_TOKEN_FILE").then(|| env_file.clone().into());
        let none = |_: &str| None;

        let resolve = |a: &ServerArgs, e: &dyn Fn(&str) -> Option<OsString>| {
            resolve_token(a, e).map_err(|e| e.to_string())
        };
        assert_eq!(
            resolve(&args(Some("flag"), Some(&flag_file)), &full).unwrap(),
            "flag"
        );
        assert_eq!(
            resolve(&args(None, Some(&flag_file)), &full).unwrap(),
            "from-flag-file"
        );
        assert_eq!(resolve(&args(None, None), &full).unwrap(), "from-env");
        assert_eq!(
            resolve(&args(None, None), &only_file).unwrap(),
            "from-env-file"
        );
        let missing = resolve(&args(None, None), &none).unwrap_err();
        assert!(missing.contains("GREENLIGHT_TOKEN_FILE"), "{missing}");
        let unreadable = resolve(&args(None, Some(&dir.path().join("absent"))), &full).unwrap_err();
        assert!(
            unreadable.contains("cannot read the token file"),
            "{unreadable}"
        );
    }
}
