//! Two compilers, so that a large component is callable soon after it
//! arrives. wasmtime's optimising compiler (Cranelift) takes seconds per
//! megabyte: an 18 MB component built by componentize-py, most of it the
//! Python interpreter, takes about 14 s on two cores. Its baseline compiler
//! (Winch) translates each function in one pass, about ten times faster, into
//! slower code. A component at least `quick_compile_above_kib` large is
//! compiled quickly first and served at once, and one worker thread compiles
//! it optimised in the background; its calls move to the optimised code as
//! soon as it is ready. A call that started on the quick code finishes on it.
//!
//! The optimised artifact lands in the artifact cache, and a marker beside
//! it says so: the next load of the same bytes (a restart, another upload)
//! reads it without compiling at all.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak, mpsc};

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::inspect::{self, InterfaceVersion};
use super::state::InvocationState;
use super::worlds::KindPre;
use super::{Error, LoadedPlugin};
use crate::domain::plugin::PluginKind;

/// Which compiler produced the code a plugin runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The baseline compiler's code, served while the optimised code is
    /// compiled.
    Quick,
    /// The optimising compiler's code.
    Optimised,
}

/// A plugin's code at one tier: its pre-linked instance and the engine that
/// compiled it, which every store it runs in must come from.
pub(super) struct Code {
    pub engine: Engine,
    pub pre: KindPre,
    pub tier: Tier,
}

/// The code a loaded plugin runs now; the optimiser replaces it.
pub(super) type Slot = watch::Sender<Arc<Code>>;

/// What an engine is for.
pub(super) enum Role {
    /// Small components, compiled optimised at once.
    Optimising,
    /// Large components, first.
    Quick,
    /// Large components, optimised on the background thread, or read from
    /// the cache when they were before.
    Background,
}

impl Role {
    pub fn tier(&self) -> Tier {
        match self {
            Role::Quick => Tier::Quick,
            Role::Optimising | Role::Background => Tier::Optimised,
        }
    }
}

/// The compilers of large components.
pub(super) struct Large {
    pub quick: Compiler,
    pub background: Compiler,
    /// None where quick code is the last code (a one-off local test).
    pub optimiser: Option<Optimiser>,
    pub markers: Option<Markers>,
}

/// An engine and the linker made for it.
#[derive(Clone)]
pub(super) struct Compiler {
    pub engine: Engine,
    pub linker: Linker<InvocationState>,
    pub tier: Tier,
}

/// What loading a component learns about it besides its code.
pub(super) struct Compiled {
    pub code: Code,
    pub kind: PluginKind,
    pub version: InterfaceVersion,
    pub imports: Vec<String>,
}

impl Compiler {
    /// Compiles a component (or reads its artifact), checks its world and
    /// imports, and pre-links it.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, Error> {
        let component = self.component(bytes)?;
        let (kind, version) = inspect::detect_kind(&self.engine, &component)?;
        let imports = inspect::check_imports(&self.engine, &component, version)?;
        Ok(Compiled {
            code: self.link(&component, kind, version)?,
            kind,
            version,
            imports,
        })
    }

    /// Compiles a component already checked by the other compiler.
    fn recompile(
        &self,
        bytes: &[u8],
        kind: PluginKind,
        version: InterfaceVersion,
    ) -> Result<Code, Error> {
        self.link(&self.component(bytes)?, kind, version)
    }

    /// Compiles a component, or reads its artifact from the cache.
    fn component(&self, bytes: &[u8]) -> Result<Component, Error> {
        Component::new(&self.engine, bytes).map_err(|e| Error::Invalid(format!("{e:#}")))
    }

    /// Pre-links a component as the world it was found to implement.
    fn link(
        &self,
        component: &Component,
        kind: PluginKind,
        version: InterfaceVersion,
    ) -> Result<Code, Error> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| Error::Unlinkable(format!("{e:#}")))?;
        let pre = KindPre::new(kind, version, instance_pre).map_err(|e| Error::WorldMismatch {
            kind,
            message: format!("{e:#}"),
        })?;
        Ok(Code {
            engine: self.engine.clone(),
            pre,
            tier: self.tier,
        })
    }
}

/// Counters of the two tiers, for the API and metrics.
#[derive(Default)]
pub(super) struct TierCounters {
    pub quick_compiles: AtomicU64,
    pub optimising: AtomicU64,
    pub optimised: AtomicU64,
}

/// Files saying which components' optimised artifacts are in the cache, one
/// per component and engine configuration, so that a restart or a new
/// wasmtime never trusts a stale one.
#[derive(Clone)]
pub(super) struct Markers {
    dir: PathBuf,
    engine: String,
}

impl Markers {
    pub fn new(artifact_dir: &Path, optimising: &Engine) -> Markers {
        let mut hasher = DefaultHasher::new();
        optimising.precompile_compatibility_hash().hash(&mut hasher);
        Markers {
            dir: artifact_dir.join("optimised"),
            engine: format!("{:016x}", hasher.finish()),
        }
    }

    pub fn of(&self, bytes: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(bytes));
        self.dir.join(format!("{}-{digest}", self.engine))
    }

    fn write(&self, marker: &Path) {
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(marker, b""));
        if let Err(e) = written {
            tracing::warn!(path = %marker.display(), error = %e, "Cannot mark an optimised artifact; the next load compiles quickly again.");
        }
    }
}

/// One component waiting for its optimised code.
pub(super) struct Job {
    pub bytes: Arc<[u8]>,
    pub kind: PluginKind,
    pub version: InterfaceVersion,
    pub slot: Weak<Slot>,
    pub marker: Option<PathBuf>,
}

/// The background worker compiling quickly-compiled components optimised,
/// one at a time, oldest first. It stops when the runtime is dropped.
pub(super) struct Optimiser {
    jobs: mpsc::Sender<Job>,
}

impl Optimiser {
    pub fn start(
        compiler: Compiler,
        markers: Option<Markers>,
        counters: Arc<TierCounters>,
    ) -> Result<Optimiser, Error> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("greenlight-optimise".into())
            .spawn(move || {
                lower_priority();
                for job in queue {
                    let code = optimise(&compiler, markers.as_ref(), &job);
                    // Counted before the swap, so that whoever sees the new
                    // code sees the counters agree.
                    counters.optimising.fetch_sub(1, Ordering::Relaxed);
                    if let (Some(code), Some(slot)) = (code, job.slot.upgrade()) {
                        counters.optimised.fetch_add(1, Ordering::Relaxed);
                        slot.send_replace(Arc::new(code));
                    }
                }
            })
            .map_err(|e| Error::Setup(format!("cannot start the optimising thread: {e}")))?;
        Ok(Optimiser { jobs })
    }

    pub fn queue(&self, job: Job, counters: &TierCounters) {
        counters.optimising.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(job).is_err() {
            counters.optimising.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Lets serving go first: the optimiser's thread is the last to run on a
/// busy machine.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::warn!(error = %e, "The optimising thread keeps its priority.");
    }
}

/// Compiles one job optimised, unless nobody holds its plugin any more.
fn optimise(compiler: &Compiler, markers: Option<&Markers>, job: &Job) -> Option<Code> {
    // A plugin nobody holds any more (its runtime gone, its load replaced)
    // is not worth the compile.
    if job.slot.strong_count() == 0 {
        return None;
    }
    let started = std::time::Instant::now();
    match compiler.recompile(&job.bytes, job.kind, job.version) {
        Ok(code) => {
            if let (Some(markers), Some(marker)) = (markers, &job.marker) {
                markers.write(marker);
            }
            tracing::info!(
                kind = %job.kind,
                size = job.bytes.len(),
                seconds = started.elapsed().as_secs_f64(),
                "Optimised code of a plugin is ready."
            );
            Some(code)
        }
        Err(e) => {
            tracing::error!(
                kind = %job.kind,
                error = %e,
                "The optimising compiler refused a component the quick one took; it keeps its quick code."
            );
            None
        }
    }
}

impl LoadedPlugin {
    /// Which compiler's code the plugin runs now.
    pub fn tier(&self) -> Tier {
        self.code.borrow().tier
    }

    /// Waits until the plugin runs optimised code.
    pub async fn optimised(&self) {
        let mut changes = self.code.subscribe();
        // The sender lives as long as `self`, so this only waits.
        let _ = changes.wait_for(|code| code.tier == Tier::Optimised).await;
    }

    /// The code a call starts on.
    pub(super) fn code(&self) -> Arc<Code> {
        self.code.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::grant::{Grant, LimitOverrides};
    use crate::domain::plugin::{Call, Output, ReleaseContext, Target, VerdictStatus};
    use crate::plugins::{ErrorKind, Invocation, InvokeError, Options, Runtime};

    fn fixture() -> Arc<[u8]> {
        let path = format!("{}/fixture_check.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
        std::fs::read(path).unwrap().into()
    }

    /// A runtime that compiles every component quickly first, keeping its
    /// artifacts in `dir` and its data in `dir/DB`.
    fn runtime(dir: &Path, db: &str, optimise_after_quick: bool) -> Runtime {
        let store = crate::store::Store::open(&dir.join(db)).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        let options = Options {
            artifact_dir: Some(dir.join("artifacts")),
            quick_compile_above_kib: 0,
            optimise_after_quick,
            ..Default::default()
        };
        Runtime::new(options, Arc::new(store), clock).unwrap()
    }

    async fn verify(
        runtime: &Runtime,
        plugin: &LoadedPlugin,
        mode: &str,
    ) -> Result<Invocation, InvokeError> {
        let grant = Grant {
            limits: LimitOverrides {
                deadline_ms: Some(1000),
                memory_mib: Some(32),
                ..Default::default()
            },
            ..Default::default()
        };
        let ctx = ReleaseContext {
            parameters: vec![("mode".into(), mode.into())],
            ..Default::default()
        };
        let targets = vec![Target {
            id: "web-1".into(),
            ..Default::default()
        }];
        let call = Call::Verify { ctx, targets };
        runtime.invoke(plugin, "probe", Arc::new(grant), call).await
    }

    fn passed(answer: Result<Invocation, InvokeError>) -> bool {
        matches!(answer, Ok(Invocation { output: Output::Verdict(v), .. }) if v.status == VerdictStatus::Pass)
    }

    #[tokio::test]
    async fn quick_code_answers_at_once_and_the_optimised_code_takes_over_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = runtime(dir.path(), "first", true);
        let plugin = first.load(fixture()).await.unwrap();
        assert_eq!(plugin.tier(), Tier::Quick);
        assert!(passed(verify(&first, &plugin, "pass").await));

        tokio::time::timeout(Duration::from_secs(120), plugin.optimised())
            .await
            .expect("the optimised code takes over");
        assert_eq!(plugin.tier(), Tier::Optimised);
        assert!(passed(verify(&first, &plugin, "pass").await));
        let stats = first.stats();
        assert_eq!(
            (stats.quick_compiles, stats.optimising, stats.optimised),
            (1, 0, 1)
        );

        // Another daemon on the same artifacts reads the optimised code.
        let second = runtime(dir.path(), "second", true);
        let again = second.load(fixture()).await.unwrap();
        assert_eq!(again.tier(), Tier::Optimised);
        assert!(passed(verify(&second, &again, "pass").await));
        let stats = second.stats();
        assert_eq!((stats.quick_compiles, stats.artifact_cache_hits), (0, 1));
    }

    #[tokio::test]
    async fn quick_code_is_held_to_the_same_limits() {
        let dir = tempfile::tempdir().unwrap();
        // Without the optimiser the plugin stays on its quick code.
        let runtime = runtime(dir.path(), "db", false);
        let plugin = runtime.load(fixture()).await.unwrap();
        assert_eq!(plugin.tier(), Tier::Quick);
        let kind =
            |answer: Result<Invocation, InvokeError>| answer.err().map(|e| (e.kind, e.message));

        let (k, message) = kind(verify(&runtime, &plugin, "loop").await).unwrap();
        assert_eq!(k, ErrorKind::DeadlineExceeded, "{message}");
        let (k, message) = kind(verify(&runtime, &plugin, "membomb").await).unwrap();
        assert_eq!(k, ErrorKind::MemoryExhausted, "{message}");
        assert!(message.contains("32 MiB"), "{message}");
        let (k, message) = kind(verify(&runtime, &plugin, "recursion").await).unwrap();
        assert_eq!(k, ErrorKind::Trap, "{message}");
        assert!(message.contains("call stack"), "{message}");
        let (k, message) = kind(verify(&runtime, &plugin, "panic").await).unwrap();
        assert_eq!(k, ErrorKind::Trap, "{message}");
        assert!(message.contains("fixture panic"), "{message}");
        // And it still answers after all of that.
        assert!(passed(verify(&runtime, &plugin, "pass").await));
        assert_eq!(plugin.tier(), Tier::Quick);
        assert_eq!(runtime.stats().optimising, 0);
    }
}
