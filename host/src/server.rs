//! Starting and stopping the daemon: store, runtime, registry and API.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::catalog::Catalog;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::engine::Engine;
use crate::identity::Identity;
use crate::plugins::Runtime;
use crate::registry::Registry;
use crate::scheduler;
use crate::secrets_key;
use crate::store::Store;

/// The name of the file the first admin token is written to.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The release engine's threads. Every release task has ended (or been
/// abandoned with the process) by the time they go, so they are let go
/// without waiting, which is also the only way a runtime may end inside
/// another one.
struct WorkThreads(Option<tokio::runtime::Runtime>);

impl WorkThreads {
    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for WorkThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A running daemon.
pub struct Daemon {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Opens the data directory, loads plugins and starts serving.
    pub async fn start(mut config: Config) -> anyhow::Result<Daemon> {
        // A relative data directory is taken from where the daemon starts;
        // everything below it is then addressed absolutely.
        config.data_dir = std::path::absolute(&config.data_dir).with_context(|| {
            format!(
                "cannot resolve the data directory {}",
                config.data_dir.display()
            )
        })?;
        config
            .check()
            .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
        allow_descriptors(config.http.max_connections);
        let clock: Arc<dyn Clock> = match config.manual_clock_ms {
            Some(start) => Arc::new(ManualClock::new(start)),
            None => Arc::new(SystemClock),
        };
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        let store = Store::open(&config.data_dir.join("db"))
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let store = unseal(&config, store)?;
        let retention = config.audit.retention();
        let removed = store
            .set_audit_retention(retention, clock.now_ms())
            .context("cannot apply the audit log's retention")?;
        if removed > 0 {
            tracing::info!(removed, "Removed audit entries beyond the retention.");
        }
        let identity = Identity::new(store.clone(), clock.clone());
        let path = config.data_dir.join(ADMIN_TOKEN_FILE);
        let made = identity
            .bootstrap_admin(|secret| write_private(&path, &format!("{secret}\n")))
            .with_context(|| {
                format!("cannot create the first admin token in {}", path.display())
            })?;
        if made {
            store.flush()?;
            tracing::info!(path = %path.display(), "Created the first admin token.");
        }
        keep_private(&config.data_dir)
            .with_context(|| format!("cannot restrict {}", config.data_dir.display()))?;
        let mut options = config.plugins.clone();
        if options.artifact_dir.is_none() {
            options.artifact_dir = Some(config.data_dir.join("artifacts"));
        }
        let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone())?;
        let registry = Registry::new(store.clone(), runtime, clock.clone());
        let catalog = Catalog::new(store.clone(), registry.clone(), clock.clone());
        let (shutdown, stop) = watch::channel(false);
        // Release work runs on threads of its own: plugin calls and journal
        // commits of many releases at once must not hold up API requests,
        // which the operating system then schedules beside them.
        let nice = config.engine_nice.clamp(0, 19);
        let workers = config.engine_threads.max(1);
        let lowered = Arc::new(Lowered::default());
        let counted = lowered.clone();
        let work = WorkThreads(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .on_thread_start(move || {
                    yield_to_requests(nice);
                    counted.one_more();
                })
                .thread_name("greenlight-engine")
                .enable_all()
                .build()
                .context("cannot start the release engine's threads")?,
        ));
        // The daemon serves only once its release threads run behind the
        // API, so no release work ever starts at the API's priority.
        if !lowered.wait_for(workers, std::time::Duration::from_secs(10)) {
            tracing::warn!("The release threads did not all start in time.");
        }
        tokio::spawn(sweep_audit(store.clone(), clock.clone(), stop.clone()));
        let engine = Engine::start(
            store.clone(),
            registry.clone(),
            catalog.clone(),
            clock,
            stop.clone(),
            work.handle(),
        )
        .context("cannot start the release engine")?;
        let (mut service, scheduler) = scheduler::Service::new(
            config.scheduler.clone(),
            store.clone(),
            engine.clone(),
            registry.metrics().clone(),
        );
        let schedules = service.load().context("cannot load the schedules")?;
        tracing::info!(schedules, "Scheduler started.");
        let scheduler_task = tokio::spawn(service.run(stop.clone()));
        tokio::spawn({
            let registry = registry.clone();
            async move { registry.warm().await }
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let metrics = registry.metrics().clone();
        let http = config.http.clone();
        let app = api::router(AppState {
            registry,
            catalog,
            store: store.clone(),
            engine: engine.clone(),
            scheduler,
            answer_before_durable: config.answer_before_durable,
            identity,
            http: http.clone(),
        });
        let task = tokio::spawn(async move {
            api::serve(listener, app, http, metrics, stop).await;
            let _ = scheduler_task.await;
            engine.stopped().await;
            store.flush()?;
            drop(work);
            Ok(())
        });
        tracing::info!(%addr, data = %config.data_dir.display(), "Greenlight is serving.");
        Ok(Daemon {
            addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting, lets running requests finish, and flushes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await?
    }

    /// Serves until the task ends (or fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }

    /// A sender that stops the daemon when `true` is sent.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Gives the store the key that seals plugin secrets, and seals with it
/// every secret an earlier release stored in the clear. A key that does
/// not open every stored secret stops the start: a daemon that started
/// without them would fail every plugin that needs one, and a grant
/// written then would replace them for good.
fn unseal(config: &Config, store: Store) -> anyhow::Result<Store> {
    let sealed = store
        .sealed_key_ids()
        .context("cannot read the stored grants")?;
    let loaded = secrets_key::load(
        &config.security,
        &config.data_dir,
        secrets_key::from_env(),
        &sealed,
    )?;
    if loaded.created {
        tracing::info!(
            key = %loaded.key,
            "Created a secrets key in {}. Back it up apart from the data directory, \
             or move it out and name it in [security] secrets_key_file.",
            loaded.source
        );
    }
    let store = store.with_secrets_key(loaded.key.clone());
    let done = store.reseal_secrets(&loaded.key).with_context(|| {
        format!(
            "the secrets key {} from {} does not open the stored plugin secrets; \
             start with the key they were sealed with",
            loaded.key, loaded.source
        )
    })?;
    if done.were_clear > 0 {
        store.flush()?;
        tracing::info!(
            secrets = done.were_clear,
            "Sealed the plugin secrets an earlier release stored in the clear."
        );
    }
    tracing::info!(
        key = %loaded.key,
        from = %loaded.source,
        secrets = done.secrets,
        "Plugin secrets open."
    );
    Ok(store)
}

/// How often entries past the audit log's age are looked for when nothing
/// is appended (appending removes them too).
const AUDIT_SWEEP: std::time::Duration = std::time::Duration::from_secs(600);

async fn sweep_audit(store: Store, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(AUDIT_SWEEP) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = store.sweep_audit(clock.now_ms()) {
            tracing::warn!(error = %e, "Cannot remove old audit entries.");
        }
    }
}

/// Raises the limit of open files to what `max_connections` connections
/// need beside the store, plugins and outbound calls, as far as the hard
/// limit allows; says so when it cannot, since the daemon would then run
/// out of descriptors before it refuses connections clearly.
fn allow_descriptors(max_connections: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let needed = max_connections as u64 + 512;
        let limit = getrlimit(Resource::Nofile);
        let current = limit.current.unwrap_or(u64::MAX);
        if current >= needed {
            return;
        }
        let raised = limit.maximum.map_or(needed, |max| max.min(needed));
        if raised > current
            && setrlimit(
                Resource::Nofile,
                rustix::process::Rlimit {
                    current: Some(raised),
                    maximum: limit.maximum,
                },
            )
            .is_ok()
            && raised >= needed
        {
            return;
        }
        tracing::warn!(
            open_files = raised.max(current),
            needed,
            "The limit of open files is low for http.max_connections: lower it, or raise the \
             limit (ulimit -n)."
        );
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

/// Makes the data directory and what it holds so far the daemon's user's
/// alone: directories 0700, files 0600. Files made later sit inside the
/// 0700 directory, out of other users' reach whatever their own mode.
#[cfg(unix)]
fn keep_private(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            keep_private(&entry.path())?;
        } else if kind.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_private(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Lowers the calling thread's scheduling priority by `nice`: release work
/// runs behind API requests when both want the processor. On Linux the
/// nice value of a thread id applies to that thread alone.
/// How many release threads have set their priority.
#[derive(Default)]
struct Lowered {
    count: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
}

impl Lowered {
    fn one_more(&self) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count += 1;
        self.changed.notify_all();
    }

    /// Waits until `n` threads have; false if they have not in `within`.
    fn wait_for(&self, n: usize, within: std::time::Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        self.changed
            .wait_timeout_while(count, within, |count| *count < n)
            .map(|(count, _)| *count >= n)
            .unwrap_or(false)
    }
}

fn yield_to_requests(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::warn!(error = %e, "A release thread keeps its priority.");
    }
}
