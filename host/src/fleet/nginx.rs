//! Real nginx in front of the fleet, run in the foreground from a config in
//! a scratch directory, and the small agent beside it that implements the
//! router API by rewriting the upstreams (group weights through
//! `split_clients`, drained instances marked `down`) and reloading nginx
//! gracefully, the way teams run it.
//!
//! A change is in force once the new workers answer with the new config's
//! generation and every worker of the old config has exited: old workers
//! finish the requests they accepted and then go, so after that no request
//! reaches an instance the new config marks `down`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;

use super::{
    Error, Fleet, GroupWeight, Rotation, Shared, Weights, groups_of, refusal, wanted_weights,
};

/// How often a reload's progress is looked at.
const POLL: Duration = Duration::from_millis(5);

/// How long nginx may take to start or to take a new config.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

struct Table {
    weights: Vec<GroupWeight>,
    enabled: Vec<bool>,
    generation: u64,
}

struct Inner {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    backends: Vec<(SocketAddr, String)>,
    groups: Vec<String>,
    table: Mutex<Table>,
    /// One reload at a time, so generations are taken in order.
    reloading: tokio::sync::Mutex<()>,
    master: Mutex<Option<tokio::process::Child>>,
    http: reqwest::Client,
    /// The fleet's record of when it kept a release waiting, which a
    /// change of weights is part of. Weak, as the fleet holds this router.
    fleet: Weak<Shared>,
}

/// nginx and its router agent.
#[derive(Clone)]
pub struct Nginx {
    /// Where nginx takes traffic.
    pub addr: SocketAddr,
    /// Where the agent serves the router API.
    pub api_addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Nginx {
    /// Starts nginx (`binary`, such as `nginx` on the `PATH`) in front of
    /// `fleet` with all traffic on `live_group`, and its agent, and puts it
    /// in charge of the fleet's traffic.
    pub async fn start(binary: &Path, fleet: &Fleet, live_group: &str) -> Result<Nginx, Error> {
        let backends = fleet.backends();
        let dir = tempfile::tempdir().map_err(|e| Error::Nginx(e.to_string()))?;
        std::fs::create_dir_all(dir.path().join("tmp")).map_err(|e| Error::Nginx(e.to_string()))?;
        // nginx binds its own port; a port just released by the kernel is
        // free for it to take.
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::Listen)?;
            probe.local_addr().map_err(Error::Listen)?.port()
        };
        let groups = groups_of(&backends);
        let inner = Arc::new(Inner {
            binary: binary.to_path_buf(),
            port,
            table: Mutex::new(Table {
                weights: vec![GroupWeight {
                    group: live_group.to_string(),
                    percent: 100,
                }],
                enabled: vec![true; backends.len()],
                generation: 1,
            }),
            dir,
            backends,
            groups,
            reloading: tokio::sync::Mutex::new(()),
            fleet: Arc::downgrade(&fleet.shared),
            master: Mutex::new(None),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| Error::Nginx(e.to_string()))?,
        });
        inner.write_config()?;
        let child = tokio::process::Command::new(&inner.binary)
            .args(inner.args())
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Nginx(format!("{}: {e}", inner.binary.display())))?;
        *inner.lock_master() = Some(child);
        inner.await_generation(1).await?;

        let listener = super::bind_loopback().await?;
        let api_addr = listener.local_addr().map_err(Error::Listen)?;
        let app = axum::Router::new()
            .route("/router/weights", get(weights).put(set_weights))
            .with_state(inner.clone());
        super::spawn_server(listener, app);
        let nginx = Nginx {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            api_addr,
            inner,
        };
        fleet.attach(Arc::new(nginx.clone()));
        Ok(nginx)
    }

    /// The base URL of the router API, for `http-traffic`'s `router_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/router", self.api_addr)
    }

    /// How many times nginx took a new config.
    pub fn reloads(&self) -> u64 {
        self.inner.lock().generation - 1
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop nginx and wait for its master to go: it stops its workers
        // first, which a killed master would leave running.
        let _ = std::process::Command::new(&self.binary)
            .args(self.args())
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + RELOAD_TIMEOUT;
        if let Some(child) = self.lock_master().as_mut() {
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_master(&self) -> MutexGuard<'_, Option<tokio::process::Child>> {
        self.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-c".into(),
            self.conf().display().to_string(),
            "-p".into(),
            self.dir.path().display().to_string(),
            "-e".into(),
            self.dir.path().join("error.log").display().to_string(),
        ]
    }

    fn write_config(&self) -> Result<(), Error> {
        let text = render(self.port, self.dir.path(), &self.backends, &self.lock());
        std::fs::write(self.conf(), text).map_err(|e| Error::Nginx(e.to_string()))
    }

    /// Waits until nginx answers with config generation `generation`.
    async fn await_generation(&self, generation: u64) -> Result<(), Error> {
        let url = format!("http://127.0.0.1:{}/__greenlight/generation", self.port);
        let deadline = tokio::time::Instant::now() + RELOAD_TIMEOUT;
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && let Ok(text) = r.text().await
                && text.trim() == generation.to_string()
            {
                return Ok(());
            }
            if let Some(child) = self.lock_master().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Error::Nginx(format!(
                    "nginx exited with {status}; see {}",
                    self.dir.path().join("error.log").display()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Nginx(format!(
                    "nginx did not take config generation {generation} within {RELOAD_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Writes the config from the table, reloads nginx and waits until the
    /// change is in force.
    async fn apply(&self) -> Result<(), Error> {
        let _one = self.reloading.lock().await;
        let generation = {
            let mut t = self.lock();
            t.generation += 1;
            t.generation
        };
        self.write_config()?;
        let master = self.lock_master().as_ref().and_then(|c| c.id());
        let Some(master) = master else {
            return Err(Error::Nginx("nginx is not running".into()));
        };
        let old_workers = children(master);
        let status = tokio::process::Command::new(&self.binary)
            .args(self.args())
            .args(["-s", "reload"])
            .status()
            .await
            .map_err(|e| Error::Nginx(e.to_string()))?;
        if !status.success() {
            return Err(Error::Nginx(format!(
                "nginx -s reload exited with {status}"
            )));
        }
        self.await_generation(generation).await?;
        let deadline = tokio::time::Instant::now() + RELOAD_TIMEOUT;
        while old_workers
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Nginx(
                    "the workers of the old config did not finish".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}

/// The processes whose parent is `pid`: nginx's workers.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // The parent's pid is the second field after the
                    // command, which is in parentheses and may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The name of a group's upstream block.
fn upstream_name(group: &str) -> String {
    let clean: String = group
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("group_{clean}")
}

/// The nginx config for a table: one upstream per group, drained instances
/// `down`, requests split between groups by weight. Nothing is retried on
/// another instance (`proxy_next_upstream off`), and no connection is kept
/// alive, so a reload never races a client's reused connection.
fn render(port: u16, prefix: &Path, backends: &[(SocketAddr, String)], t: &Table) -> String {
    let tmp = prefix.join("tmp").display().to_string();
    let mut upstreams = String::new();
    for group in groups_of(backends) {
        upstreams.push_str(&format!("    upstream {} {{\n", upstream_name(&group)));
        for (i, (addr, g)) in backends.iter().enumerate() {
            if *g == group {
                let down = if t.enabled[i] { "" } else { " down" };
                upstreams.push_str(&format!("        server {addr}{down};\n"));
            }
        }
        upstreams.push_str("    }\n");
    }
    let live: Vec<&GroupWeight> = t.weights.iter().filter(|w| w.percent > 0).collect();
    let mut split = String::new();
    for (n, w) in live.iter().enumerate() {
        let share = if n + 1 == live.len() {
            "*".to_string()
        } else {
            format!("{}%", w.percent)
        };
        split.push_str(&format!("        {share} {};\n", upstream_name(&w.group)));
    }
    format!(
        r#"worker_processes 2;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{upstreams}    split_clients "${{request_id}}" $greenlight_group {{
{split}    }}
    server {{
        listen 127.0.0.1:{port};
        location = /__greenlight/generation {{ return 200 "{generation}"; }}
        location / {{
            proxy_pass http://$greenlight_group;
            proxy_next_upstream off;
        }}
    }}
}}
"#,
        prefix = prefix.display(),
        generation = t.generation,
    )
}

impl Rotation for Nginx {
    fn set_enabled(&self, index: usize, enabled: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            {
                let mut t = self.inner.lock();
                let slot = t
                    .enabled
                    .get_mut(index)
                    .ok_or_else(|| format!("no instance {index}"))?;
                *slot = enabled;
            }
            self.inner.apply().await.map_err(|e| e.to_string())
        })
    }
}

type Agent = State<Arc<Inner>>;

async fn weights(State(inner): Agent) -> axum::Json<Weights> {
    axum::Json(Weights {
        weights: inner.lock().weights.clone(),
    })
}

async fn set_weights(State(inner): Agent, body: Bytes) -> Response {
    let wanted = match wanted_weights(&body, &inner.groups) {
        Ok(w) => w,
        Err(refused) => return *refused,
    };
    inner.lock().weights = wanted.weights.clone();
    let started = std::time::Instant::now();
    let applied = inner.apply().await;
    if let Some(fleet) = inner.fleet.upgrade() {
        fleet.busy(started, std::time::Instant::now());
    }
    match applied {
        Ok(()) => axum::Json(wanted).into_response(),
        Err(e) => refusal(
            StatusCode::BAD_GATEWAY,
            "router.reload_failed",
            e.to_string(),
        ),
    }
}
