//! The host agent, `greenlight agent`: run on each machine beside the
//! service, it implements the agent API `http-deployer` drives (see
//! `plugins/README.md`) for a real service: out of the traffic, drained,
//! the version fetched, checked and switched to, the service restarted,
//! health awaited, back in the traffic.
//!
//! It knows the host only: files, processes, its hooks and its own HTTP
//! API. Every step is journaled before it is acknowledged; one step runs at
//! a time; a step already done under its operation key is answered from the
//! journal, and a deploy the agent was killed in the middle of is finished
//! when it starts again, so a release retried after any crash does nothing
//! twice.

mod artifact;
mod config;
mod journal;
mod rotation;
mod server;
mod service;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OwnedMutexGuard;

pub use artifact::{ArtifactError, digest_for, valid_version};
pub use config::{AgentConfig, ConfigError};
pub use journal::{Install, Step};
pub use rotation::nginx_state;

use artifact::Versions;
use journal::{Journal, JournalError, JournalState, PendingDeploy};
use rotation::Rotation;
use service::{Service, ServiceError};

/// How often the agent looks whether the service it runs still runs.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Setup(String),
}

/// Why a step failed: a stable code and a reason for the operator.
#[derive(Debug, Clone, Serialize)]
pub struct StepError {
    pub code: &'static str,
    pub message: String,
}

impl StepError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> StepError {
        StepError {
            code,
            message: message.into(),
        }
    }
}

impl From<ArtifactError> for StepError {
    fn from(e: ArtifactError) -> StepError {
        StepError::new(e.code(), e.to_string())
    }
}

impl From<ServiceError> for StepError {
    fn from(e: ServiceError) -> StepError {
        StepError::new(e.code(), e.to_string())
    }
}

impl From<JournalError> for StepError {
    fn from(e: JournalError) -> StepError {
        StepError::new("agent.journal_failed", e.to_string())
    }
}

/// One request of the agent API.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub key: String,
    pub version: String,
    /// `deploy` or `rollback`.
    pub operation: String,
}

/// What `GET /agent/health` says.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub healthy: bool,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `GET /agent/status` says: where the host stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub current: Option<String>,
    pub in_rotation: bool,
    pub running: bool,
    pub pending: Option<String>,
    pub installed: Vec<String>,
    pub installs: Vec<Install>,
}

struct Inner {
    config: AgentConfig,
    token: String,
    journal: Journal,
    state: Mutex<JournalState>,
    /// One step at a time, whatever its key.
    steps: Arc<tokio::sync::Mutex<()>>,
    versions: Versions,
    service: Service,
    rotation: Rotation,
    http: reqwest::Client,
}

/// A running agent; cheap to clone.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Agent {
    /// Opens the agent's state, finds the service again (or starts it),
    /// and finishes a deploy a previous run was killed in.
    pub async fn open(config: AgentConfig) -> Result<Agent, StartError> {
        let setup = |what: &str, e: std::io::Error| StartError::Setup(format!("{what}: {e}"));
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| setup(&format!("cannot create {}", config.state_dir.display()), e))?;
        let token = std::fs::read_to_string(&config.token_file)
            .map_err(|e| setup(&format!("cannot read {}", config.token_file.display()), e))?
            .trim()
            .to_string();
        if token.len() < 16 {
            return Err(StartError::Setup(format!(
                "the token in {} is {} characters; at least 16 are needed",
                config.token_file.display(),
                token.len()
            )));
        }
        let journal = Journal::new(&config.state_dir);
        let mut state = journal.load()?;
        if !journal.exists() {
            // A first start on a host already serving: its version is in
            // the traffic until the first drain takes it out.
            state.in_rotation = std::fs::symlink_metadata(config.state_dir.join("current")).is_ok();
        }
        let kind = config
            .service_kind()
            .map_err(|(field, problem)| StartError::Setup(format!("`{field}` {problem}")))?;
        let agent = Agent {
            inner: Arc::new(Inner {
                versions: Versions::new(&config.state_dir, config.artifact.clone()),
                service: Service::new(kind, config.service.clone(), config.log_file()),
                rotation: Rotation::new(config.rotation.clone()),
                // No idle connection is kept: one would count as a request
                // in flight to the service when the host drains.
                http: reqwest::Client::builder()
                    .timeout(Duration::from_millis(config.health.timeout_ms))
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap_or_default(),
                token,
                journal,
                state: Mutex::new(state),
                steps: Arc::default(),
                config,
            }),
        };
        let guard = agent.inner.steps.clone().lock_owned().await;
        let pending = agent.state().pending.clone();
        match pending {
            Some(pending) => {
                // The deploy finishes before any request is served: a
                // request for its key waits for the step lock.
                tracing::info!(key = %pending.key, version = %pending.version, "Finishing the deploy a previous run was stopped in.");
                let resumed = agent.clone();
                tokio::spawn(async move { resumed.resume(pending, guard).await });
            }
            None => {
                agent.keep_running().await;
                drop(guard);
            }
        }
        Ok(agent)
    }

    fn state(&self) -> MutexGuard<'_, JournalState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to the journal and writes it durably.
    fn journaled(&self, change: impl FnOnce(&mut JournalState)) -> Result<(), JournalError> {
        let mut state = self.state();
        change(&mut state);
        self.inner.journal.save(&state)
    }

    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn max_body_bytes(&self) -> usize {
        self.inner.config.max_body_bytes
    }

    pub fn listen(&self) -> std::net::SocketAddr {
        self.inner.config.listen
    }

    /// The last step done under `key`, its version, and the error of the
    /// last step tried, if it failed.
    pub fn operation(&self, key: &str) -> Option<journal::OperationRecord> {
        self.state().operation(key).cloned()
    }

    async fn resume(&self, pending: PendingDeploy, guard: OwnedMutexGuard<()>) {
        let request = StepRequest {
            key: pending.key,
            version: pending.version,
            operation: pending.operation,
        };
        if let Err(e) = self.deploy_locked(&request).await {
            tracing::warn!(key = %request.key, code = e.code, error = %e.message, "The interrupted deploy failed.");
        }
        drop(guard);
    }

    /// Takes the host out of the traffic and waits for its requests.
    pub async fn drain(&self, request: &StepRequest) -> Result<Step, StepError> {
        let _one = self.inner.steps.lock().await;
        if let Some(done) = self.done(&request.key, Step::Drained) {
            return Ok(done);
        }
        let outcome = self.take_out().await;
        self.finish(request, outcome.map(|()| Step::Drained))
    }

    /// Puts `version` in place and starts it (taking the host out first if
    /// it is still in).
    pub async fn deploy(&self, request: &StepRequest) -> Result<Step, StepError> {
        let _one = self.inner.steps.lock().await;
        self.deploy_locked(request).await
    }

    async fn deploy_locked(&self, request: &StepRequest) -> Result<Step, StepError> {
        if let Some(done) = self.done(&request.key, Step::Deployed) {
            self.journaled(|s| s.pending = None)?;
            return Ok(done);
        }
        let outcome = async {
            if self.state().in_rotation {
                self.take_out().await?;
            }
            // The host is out of the traffic: say so under the key, should
            // the deploy fail.
            self.journaled(|s| {
                s.record(
                    &request.key,
                    &request.version,
                    &request.operation,
                    Ok(Step::Drained),
                    now_ms(),
                )
            })?;
            let pending = PendingDeploy {
                key: request.key.clone(),
                version: request.version.clone(),
                operation: request.operation.clone(),
            };
            self.journaled(|s| s.pending = Some(pending))?;
            self.install(request).await
        }
        .await;
        let _ = self.journaled(|s| s.pending = None);
        self.finish(request, outcome.map(|()| Step::Deployed))
    }

    /// Puts the host back in the traffic, once its service is healthy.
    pub async fn enable(&self, request: &StepRequest) -> Result<Step, StepError> {
        let _one = self.inner.steps.lock().await;
        if let Some(done) = self.done(&request.key, Step::Enabled) {
            return Ok(done);
        }
        let outcome = async {
            let health = self.health().await;
            if !health.healthy {
                return Err(StepError::new(
                    "enable.unhealthy",
                    format!(
                        "the service is not healthy on {}: {}; the host stays out of the traffic",
                        health.version,
                        health.reason.unwrap_or_default()
                    ),
                ));
            }
            self.inner
                .rotation
                .set(true)
                .await
                .map_err(|e| StepError::new("rotation.enable_failed", e))?;
            self.journaled(|s| s.in_rotation = true)?;
            Ok(())
        }
        .await;
        self.finish(request, outcome.map(|()| Step::Enabled))
    }

    /// The step already done under `key`, if it is `step` or later.
    fn done(&self, key: &str, step: Step) -> Option<Step> {
        self.state()
            .operation(key)
            .and_then(|o| o.step)
            .filter(|done| *done >= step)
    }

    /// Journals the outcome of a step under its key.
    fn finish(
        &self,
        request: &StepRequest,
        outcome: Result<Step, StepError>,
    ) -> Result<Step, StepError> {
        let recorded = outcome
            .as_ref()
            .map(|s| *s)
            .map_err(|e| format!("{}: {}", e.code, e.message));
        self.journaled(|s| {
            s.record(
                &request.key,
                &request.version,
                &request.operation,
                recorded,
                now_ms(),
            )
        })?;
        match &outcome {
            Ok(step) => {
                tracing::info!(key = %request.key, version = %request.version, step = step.as_str(), "Step done.")
            }
            Err(e) => {
                tracing::warn!(key = %request.key, version = %request.version, code = e.code, error = %e.message, "Step failed.")
            }
        }
        outcome
    }

    async fn take_out(&self) -> Result<(), StepError> {
        if self.state().in_rotation {
            self.inner
                .rotation
                .set(false)
                .await
                .map_err(|e| StepError::new("rotation.disable_failed", e))?;
            self.journaled(|s| s.in_rotation = false)?;
        }
        let drain = &self.inner.config.drain;
        if drain.settle_ms > 0 {
            tokio::time::sleep(Duration::from_millis(drain.settle_ms)).await;
        }
        let port = self.inner.config.drain_port();
        if let Err(open) = rotation::drained(port, Duration::from_millis(drain.timeout_ms)).await {
            tracing::warn!(
                port,
                open,
                timeout_ms = drain.timeout_ms,
                "Requests were still in flight when the drain timed out; going on."
            );
        }
        Ok(())
    }

    /// Fetches and checks the version, then switches to it and restarts
    /// the service, unless it already runs.
    async fn install(&self, request: &StepRequest) -> Result<(), StepError> {
        let version = &request.version;
        self.inner.versions.ensure(version).await?;
        let known = self.state().service.clone();
        let current = self.inner.versions.current();
        if current.as_deref() == Some(version.as_str())
            && self.inner.service.running(known.as_ref()).await
        {
            return Ok(());
        }
        self.inner.service.stop(known.as_ref()).await?;
        self.journaled(|s| s.service = None)?;
        self.inner.versions.switch(version)?;
        let process = self
            .inner
            .service
            .start(version, &self.inner.versions.current_link())
            .await?;
        let install = journal::Install {
            version: version.clone(),
            key: request.key.clone(),
            operation: request.operation.clone(),
            at_ms: now_ms(),
        };
        self.journaled(|s| {
            s.service = process;
            s.installed(install);
        })?;
        let mut protect = vec![version.as_str()];
        if let Some(previous) = current.as_deref() {
            protect.push(previous);
        }
        let removed = self.inner.versions.prune(&protect);
        if !removed.is_empty() {
            tracing::info!(removed = ?removed, "Old versions removed.");
        }
        Ok(())
    }

    /// The service's health on the current version.
    pub async fn health(&self) -> Health {
        let version = self.inner.versions.current().unwrap_or_default();
        let known = self.state().service.clone();
        if !self.inner.service.running(known.as_ref()).await {
            let reason = self.inner.service.why_not_running().await;
            return Health {
                healthy: false,
                version,
                reason: Some(reason),
            };
        }
        let url = &self.inner.config.health.url;
        let reason = match self.inner.http.get(url).send().await {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("{url} answered {}", r.status())),
            Err(e) => Some(format!("{url}: {}", e.without_url())),
        };
        Health {
            healthy: reason.is_none(),
            version,
            reason,
        }
    }

    pub async fn status(&self) -> Status {
        let known = self.state().service.clone();
        let running = self.inner.service.running(known.as_ref()).await;
        let state = self.state().clone();
        let mut installed: Vec<String> =
            std::fs::read_dir(self.inner.config.state_dir.join("versions"))
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .filter(|n| !n.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default();
        installed.sort();
        Status {
            current: self.inner.versions.current(),
            in_rotation: state.in_rotation,
            running,
            pending: state.pending.map(|p| p.version),
            installed,
            installs: state.installs,
        }
    }

    /// Starts the current version when nothing runs it (after a reboot of
    /// the host, or when the command exited).
    async fn keep_running(&self) {
        if self.inner.service.is_systemd() {
            return;
        }
        let Some(version) = self.inner.versions.current() else {
            return;
        };
        let known = self.state().service.clone();
        if self.inner.service.running(known.as_ref()).await {
            return;
        }
        if let Some(how) = self.inner.service.exit_status() {
            tracing::warn!(version = %version, exited = %how, "The service is not running; starting it again.");
        }
        match self
            .inner
            .service
            .start(&version, &self.inner.versions.current_link())
            .await
        {
            Ok(process) => {
                if let Err(e) = self.journaled(|s| s.service = process) {
                    tracing::warn!(error = %e, "Cannot journal the restarted service.");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot start the service."),
        }
    }

    /// Restarts the command whenever it stops outside a step, backing off
    /// while it keeps failing.
    async fn supervise(self) {
        let mut backoff = SUPERVISE_EVERY;
        loop {
            tokio::time::sleep(backoff).await;
            let Ok(_one) = self.inner.steps.try_lock() else {
                continue;
            };
            let known = self.state().service.clone();
            if known.is_none() || self.inner.service.running(known.as_ref()).await {
                backoff = SUPERVISE_EVERY;
                continue;
            }
            self.keep_running().await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Serves the agent API until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tokio::spawn(self.clone().supervise());
        let app = server::router(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Runs the agent configured in `config_path` until `shutdown` resolves.
pub async fn run(
    config_path: PathBuf,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = AgentConfig::load(&config_path)?;
    let listen = config.listen;
    let agent = Agent::open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "Agent API listening.");
    agent.serve(listener, shutdown).await?;
    Ok(())
}
