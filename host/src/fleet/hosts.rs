//! Hosts run the way a team runs them: each "host" is a `greenlight agent`
//! process with its own state directory, supervising the sample service (a
//! `greenlight sample-service` process run from the unpacked version), and
//! steering its `server` line in a real nginx in front of all of them. The
//! versions come from an [`ArtifactStore`] on loopback. Used by
//! `greenlight demo --agents` and by the agent's end-to-end tests.
//!
//! nginx's upstream includes one file per host (`upstreams/web-N.conf`),
//! which only that host's agent rewrites; every file starts `down`, and a
//! host joins the traffic once its agent deployed and enabled the first
//! version. Dropping [`Hosts`] kills the agents, the services they started
//! and nginx.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::artifacts::ArtifactStore;
use super::{Error, Target};

/// How long an agent, nginx or a bootstrap step may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is looked at.
const POLL: Duration = Duration::from_millis(10);

/// How the hosts are made.
#[derive(Debug, Clone)]
pub struct HostsOptions {
    /// How many hosts.
    pub hosts: usize,
    /// The version each host deploys and enables first.
    pub version: String,
    /// The `greenlight` binary, run as the agents and the services.
    pub greenlight: PathBuf,
    /// The nginx binary.
    pub nginx: PathBuf,
    /// How long the service works on each request.
    pub work_ms: u64,
}

/// One host: its agent and its service.
pub struct Host {
    /// The target id, `web-N`.
    pub id: String,
    /// Where its agent API listens.
    pub agent_addr: SocketAddr,
    /// Where its service listens.
    pub service_addr: SocketAddr,
    /// Its agent's state directory.
    pub state_dir: PathBuf,
    /// The nginx upstream file its agent owns.
    pub server_file: PathBuf,
    config: PathBuf,
    log: PathBuf,
    agent: Option<tokio::process::Child>,
}

/// The hosts, their nginx and their artifact store.
pub struct Hosts {
    /// Where nginx takes the traffic.
    pub addr: SocketAddr,
    pub store: ArtifactStore,
    pub hosts: Vec<Host>,
    token: String,
    greenlight: PathBuf,
    nginx: Option<tokio::process::Child>,
    nginx_args: Vec<String>,
    nginx_binary: PathBuf,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

fn io(e: std::io::Error) -> Error {
    Error::Agent(e.to_string())
}

/// A loopback port nothing listens on now.
fn free_port() -> Result<u16, Error> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::Listen)?;
    Ok(probe.local_addr().map_err(Error::Listen)?.port())
}

impl Hosts {
    /// Publishes the first version, starts nginx and the agents, and has
    /// each agent deploy and enable it.
    pub async fn start(options: &HostsOptions) -> Result<Hosts, Error> {
        let store = ArtifactStore::start().await?;
        store.publish(&options.version)?;
        let dir = tempfile::tempdir().map_err(io)?;
        let root = dir.path().to_path_buf();
        for sub in ["nginx/upstreams", "nginx/tmp"] {
            std::fs::create_dir_all(root.join(sub)).map_err(io)?;
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| Error::Agent(e.to_string()))?;
        let token = format!("hosts-{}", hex::encode(random));
        std::fs::write(root.join("token"), &token).map_err(io)?;
        let nginx_args = nginx_args(&root);
        let mut hosts = Vec::with_capacity(options.hosts);
        for n in 0..options.hosts {
            let host = Host::configure(n, &root, &store, options, &nginx_args)?;
            hosts.push(host);
        }
        let port = free_port()?;
        std::fs::write(root.join("nginx/nginx.conf"), nginx_conf(&root, port)).map_err(io)?;
        let mut this = Hosts {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            store,
            hosts,
            token,
            greenlight: options.greenlight.clone(),
            nginx: None,
            nginx_args,
            nginx_binary: options.nginx.clone(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| Error::Agent(e.to_string()))?,
            dir,
        };
        this.start_nginx().await?;
        for i in 0..this.hosts.len() {
            this.start_agent(i).await?;
        }
        for i in 0..this.hosts.len() {
            let key = format!("bootstrap:{}", this.hosts[i].id);
            this.step(i, "deploy", &key, &options.version).await?;
            this.await_healthy(i, &options.version).await?;
            this.step(i, "enable", &key, &options.version).await?;
        }
        Ok(this)
    }

    async fn start_nginx(&mut self) -> Result<(), Error> {
        let child = tokio::process::Command::new(&self.nginx_binary)
            .args(&self.nginx_args)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Nginx(format!("{}: {e}", self.nginx_binary.display())))?;
        self.nginx = Some(child);
        let url = format!("http://{}/__greenlight/ready", self.addr);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.nginx.as_mut().map(|c| c.try_wait()) {
                return Err(Error::Nginx(format!(
                    "nginx exited with {status}; see {}",
                    self.dir.path().join("nginx/error.log").display()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Nginx("nginx did not start".into()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts host `i`'s agent (again) and waits until it answers.
    pub async fn start_agent(&mut self, i: usize) -> Result<(), Error> {
        let host = &mut self.hosts[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&host.log)
            .map_err(io)?;
        let child = tokio::process::Command::new(&self.greenlight)
            .arg("agent")
            .arg("--config")
            .arg(&host.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io)?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Agent(format!("{}: {e}", self.greenlight.display())))?;
        host.agent = Some(child);
        let url = format!("http://{}/agent/health", host.agent_addr);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if self.http.get(&url).send().await.is_ok() {
                return Ok(());
            }
            let host = &mut self.hosts[i];
            if let Some(Ok(Some(status))) = host.agent.as_mut().map(|c| c.try_wait()) {
                return Err(Error::Agent(format!(
                    "the agent of {} exited with {status}: {}",
                    host.id,
                    tail(&host.log)
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Agent(format!(
                    "the agent of {} did not answer: {}",
                    host.id,
                    tail(&host.log)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills host `i`'s agent with SIGKILL, as a crash of the host's agent
    /// would; its service keeps running.
    pub async fn kill_agent(&mut self, i: usize) {
        if let Some(mut child) = self.hosts[i].agent.take() {
            let _ = child.kill().await;
        }
    }

    /// Asks host `i`'s agent to take a step, as `http-deployer` would.
    pub async fn step(&self, i: usize, step: &str, key: &str, version: &str) -> Result<(), Error> {
        let host = &self.hosts[i];
        let url = format!("http://{}/agent/{step}", host.agent_addr);
        let body = json!({"key": key, "version": version, "operation": "deploy"});
        let answer = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .timeout(READY_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Agent(format!("{} {step}: {e}", host.id)))?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            return Err(Error::Agent(format!("{} {step}: {status} {text}", host.id)));
        }
        Ok(())
    }

    /// Waits until host `i`'s agent says its service is healthy on
    /// `version`, as a deployer does before it enables a host.
    pub async fn await_healthy(&self, i: usize, version: &str) -> Result<(), Error> {
        let host = &self.hosts[i];
        let url = format!("http://{}/agent/health", host.agent_addr);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && let Ok(health) = r.json::<serde_json::Value>().await
            {
                if health["healthy"] == true && health["version"] == version {
                    return Ok(());
                }
                last = health.to_string();
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Agent(format!(
                    "{} is not healthy on {version}: {last}",
                    host.id
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// What host `i`'s agent says at `GET /agent/status`.
    pub async fn status(&self, i: usize) -> Result<serde_json::Value, Error> {
        let url = format!("http://{}/agent/status", self.hosts[i].agent_addr);
        let fail = |e: reqwest::Error| Error::Agent(e.to_string());
        self.http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(fail)?
            .json()
            .await
            .map_err(fail)
    }

    /// The agents' bearer token, for the deployer's `agent_token` secret.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The hosts as an environment's inventory lists them: each addressed
    /// by its agent.
    pub fn targets(&self) -> Vec<Target> {
        self.hosts
            .iter()
            .map(|h| Target {
                id: h.id.clone(),
                address: h.agent_addr.to_string(),
                group: String::new(),
            })
            .collect()
    }

    /// The agents' origins, for the plugins' grants.
    pub fn origins(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| format!("http://{}", h.agent_addr))
            .collect()
    }

    /// Where this test bed keeps its files: configs, state, logs, nginx.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Host {
    /// Writes host `n`'s agent config and its upstream file, `down`.
    fn configure(
        n: usize,
        root: &Path,
        store: &ArtifactStore,
        options: &HostsOptions,
        nginx_args: &[String],
    ) -> Result<Host, Error> {
        let id = format!("web-{n}");
        let agent_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let service_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let state_dir = root.join(&id);
        let server_file = root.join(format!("nginx/upstreams/{id}.conf"));
        std::fs::write(&server_file, format!("server {service_addr} down;\n")).map_err(io)?;
        let mut reload = vec![options.nginx.display().to_string()];
        reload.extend(nginx_args.iter().cloned());
        reload.extend(["-s".to_string(), "reload".to_string()]);
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|s| toml_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let command = [
            options.greenlight.display().to_string(),
            "sample-service".into(),
            "--listen".into(),
            service_addr.to_string(),
            "--work-ms".into(),
            options.work_ms.to_string(),
        ];
        let config = format!(
            r#"listen = "{agent_addr}"
token_file = {token}
state_dir = {state}

[artifact]
url = {url}
sha256_url = {sha}
timeout_ms = 30000

[service]
command = [{command}]
stop_grace_ms = 10000

[health]
url = "http://{service_addr}/health"

[rotation]
kind = "nginx"
server_file = {server_file}
server = "{service_addr}"
reload = [{reload}]
pid_file = {pid}

[drain]
timeout_ms = 10000
"#,
            token = toml_string(&root.join("token").display().to_string()),
            state = toml_string(&state_dir.display().to_string()),
            url = toml_string(&store.url_template()),
            sha = toml_string(&store.sha256_template()),
            command = quoted(&command),
            server_file = toml_string(&server_file.display().to_string()),
            reload = quoted(&reload),
            pid = toml_string(&root.join("nginx/nginx.pid").display().to_string()),
        );
        let config_path = root.join(format!("{id}.toml"));
        std::fs::write(&config_path, config).map_err(io)?;
        Ok(Host {
            log: root.join(format!("{id}.agent.log")),
            id,
            agent_addr,
            service_addr,
            state_dir,
            server_file,
            config: config_path,
            agent: None,
        })
    }

    /// The version the `current` link points at.
    pub fn current(&self) -> Option<String> {
        let target = std::fs::read_link(self.state_dir.join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().to_string())
    }

    /// Whether nginx is told to send this host traffic: its `server` line
    /// is not `down`.
    pub fn in_rotation(&self) -> bool {
        crate::agent::nginx_state(&self.server_file).unwrap_or(false)
    }

    /// Its agent's journal, as stored.
    fn journal(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.state_dir.join("journal.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The version its agent journaled as being deployed, if a deploy is
    /// under way.
    pub fn pending(&self) -> Option<String> {
        Some(self.journal()?["pending"]["version"].as_str()?.to_string())
    }

    /// The pid of the service process its agent journaled.
    fn service_pid(&self) -> Option<i32> {
        i32::try_from(self.journal()?["service"]["pid"].as_i64()?).ok()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            if let Some(child) = host.agent.as_mut() {
                let _ = child.start_kill();
            }
        }
        for host in &self.hosts {
            if let Some(pid) = host.service_pid().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
        // nginx stops its workers before it exits; a killed master would
        // leave them running.
        let _ = std::process::Command::new(&self.nginx_binary)
            .args(&self.nginx_args)
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        if let Some(child) = self.nginx.as_mut() {
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
    }
}

/// nginx from the `PATH` or where Debian puts it.
pub fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path.into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

fn nginx_args(root: &Path) -> Vec<String> {
    let prefix = root.join("nginx");
    vec![
        "-c".into(),
        prefix.join("nginx.conf").display().to_string(),
        "-p".into(),
        prefix.display().to_string(),
        "-e".into(),
        prefix.join("error.log").display().to_string(),
    ]
}

/// nginx in front of the hosts: one upstream including every host's file.
/// Nothing is retried on another host (`proxy_next_upstream off`) and no
/// connection is kept alive, so a request sent to a host that is going
/// away fails and is counted.
fn nginx_conf(root: &Path, port: u16) -> String {
    let prefix = root.join("nginx").display().to_string();
    format!(
        r#"worker_processes 2;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream shop {{
        include {prefix}/upstreams/*.conf;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /__greenlight/ready {{ return 200 "ready"; }}
        location / {{
            proxy_pass http://shop;
            proxy_next_upstream off;
        }}
    }}
}}
"#
    )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The last lines of a log, for an error.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}
