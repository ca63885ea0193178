//! The plugin runtime: the only module that knows wasmtime.
//!
//! One shared [`Engine`] with a pooling allocator and epoch interruption, one
//! [`Linker`] with the full WASI 0.2 set, `wasi:http` and the platform
//! imports, a cached `InstancePre` per plugin version, and a fresh `Store`
//! per invocation with its own deadline, memory cap and grant. Compiled
//! artifacts are kept by wasmtime's cache in the data directory, keyed by the
//! component's content and the engine's compilation settings, so a restart
//! loads them without compiling again.

#[doc(hidden)]
pub mod baseline;
mod bindings;
mod convert;
mod host_clock;
mod host_config;
mod host_kv;
mod host_log;
mod host_v2;
mod http;
mod inspect;
mod invoke;
mod state;
mod tape;
mod tiers;
pub mod tls;
mod traceback;
mod worlds;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::clock::Clock;
use crate::domain::grant::{LimitBounds, Limits};
use crate::domain::plugin::PluginKind;
pub use http::Denial;
pub use invoke::{ErrorKind, Fix, Invocation, InvokeError};
use state::InvocationState;
pub use tape::{Tape, Taped};
pub use tiers::Tier;
use tiers::{Compiler, Job, Large, Markers, Optimiser, Role, Slot, TierCounters};

/// The plugin runtime's settings, from the `[plugins]` table of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// How many invocations run at once; more wait for a slot. Also sizes
    /// the pooling allocator.
    pub max_concurrent_invocations: u32,
    /// Default wall-clock deadline of an invocation.
    pub default_deadline_ms: u64,
    /// The most a grant may raise the deadline to.
    pub max_deadline_ms: u64,
    /// Default memory cap of an invocation.
    pub default_memory_mib: u64,
    /// The most a grant may raise the memory cap to.
    pub max_memory_mib: u64,
    /// Default cap on what a plugin returns.
    pub default_max_output_bytes: u64,
    /// The most a grant may raise the output cap to.
    pub max_output_bytes: u64,
    /// Default cap on outbound HTTP requests per invocation.
    pub default_max_outbound_requests: u32,
    /// The most a grant may raise the request cap to.
    pub max_outbound_requests: u32,
    /// Connect timeout of outbound HTTP requests.
    pub connect_timeout_ms: u64,
    /// The largest component that may be uploaded.
    pub max_upload_bytes: u64,
    /// How many uploads are read and compiled at once; the others wait,
    /// unread, so that concurrent uploads cost a bounded amount of memory.
    pub max_concurrent_uploads: u32,
    /// How often the epoch ticks; plugins yield to other work at every tick.
    pub epoch_tick_ms: u64,
    /// Use the pooling allocator (fast instantiation); off means on-demand.
    pub pooling: bool,
    /// How much of the bottom of a pooled memory is reset in place between
    /// calls rather than returned to the kernel (and faulted in again). A
    /// component linked with its stack first and a small stack (the plugins
    /// workspace links 64 KiB) keeps its stack, static data and first heap
    /// pages here, so a call takes no page faults and its reset no `madvise`:
    /// about 40% off an invocation (`cargo bench --bench invoke`).
    pub keep_resident_kib: u64,
    /// How much of a pooled table is reset in place between calls.
    pub table_keep_resident_kib: u64,
    /// How much of a pooled call stack stays resident between calls.
    pub stack_keep_resident_kib: u64,
    /// The most a plugin's key-value store may hold in all (keys and
    /// values), per plugin name.
    pub kv_quota_mib: u64,
    /// Where compiled artifacts are kept; none means compile every time.
    pub artifact_dir: Option<PathBuf>,
    /// Components at least this large (most built from Python or
    /// JavaScript) are compiled first by wasmtime's baseline compiler, about
    /// ten times faster, and served at once; the optimised code is compiled
    /// in the background and takes over when ready. 0 compiles every
    /// component quickly first.
    pub quick_compile_above_kib: u64,
    /// Whether a large component is compiled quickly first at all.
    pub quick_compile: bool,
    /// Whether quickly compiled code is then compiled optimised in the
    /// background. A one-off local test does not need it.
    #[serde(skip)]
    pub optimise_after_quick: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_concurrent_invocations: 64,
            default_deadline_ms: 5_000,
            max_deadline_ms: 120_000,
            default_memory_mib: 128,
            max_memory_mib: 1024,
            default_max_output_bytes: 256 * 1024,
            max_output_bytes: 8 * 1024 * 1024,
            default_max_outbound_requests: 32,
            max_outbound_requests: 1024,
            connect_timeout_ms: 3_000,
            max_upload_bytes: 64 * 1024 * 1024,
            max_concurrent_uploads: 2,
            epoch_tick_ms: 5,
            pooling: true,
            keep_resident_kib: 192,
            table_keep_resident_kib: 16,
            stack_keep_resident_kib: 128,
            kv_quota_mib: 64,
            artifact_dir: None,
            quick_compile_above_kib: 4 * 1024,
            quick_compile: true,
            optimise_after_quick: true,
        }
    }
}

impl Options {
    /// The limits an invocation gets when its grant sets none.
    pub fn default_limits(&self) -> Limits {
        Limits {
            deadline_ms: self.default_deadline_ms,
            memory_mib: self.default_memory_mib,
            max_output_bytes: self.default_max_output_bytes,
            max_outbound_requests: self.default_max_outbound_requests,
        }
    }

    /// The bounds a grant's limits must stay within.
    pub fn limit_bounds(&self) -> LimitBounds {
        LimitBounds {
            max_deadline_ms: self.max_deadline_ms,
            max_memory_mib: self.max_memory_mib,
            max_output_bytes: self.max_output_bytes,
            max_outbound_requests: self.max_outbound_requests,
        }
    }
}

/// Why a component was refused or could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the upload is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("the upload is not a WebAssembly binary")]
    NotWasm,
    #[error(
        "the upload is a core WebAssembly module; plugins are components (build for wasm32-wasip2 or run `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("the component is invalid: {0}")]
    Invalid(String),
    #[error("the component implements no known plugin world: {0}")]
    UnknownWorld(String),
    #[error(
        "the component imports `{0}`, which Greenlight does not provide; plugins may import only greenlight:plugin@0.1.0 platform interfaces and WASI 0.2"
    )]
    UnknownImport(String),
    #[error("the component cannot be linked: {0}")]
    Unlinkable(String),
    #[error("the component's exports do not match the {kind} world: {message}")]
    WorldMismatch { kind: PluginKind, message: String },
    #[error("the plugin runtime could not start: {0}")]
    Setup(String),
}

/// The level of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line a plugin logged during an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// Where plugins' key-value data lives; the store implements it.
pub trait KvBackend: Send + Sync + 'static {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Writes a value unless the plugin's keys and values would then take
    /// more than `quota_bytes` in all.
    fn set(&self, plugin: &str, key: &str, value: &[u8], quota_bytes: u64)
    -> Result<(), KvRefusal>;
    fn delete(&self, plugin: &str, key: &str) -> Result<(), String>;
    /// The bytes of keys and values the plugin keeps.
    fn used_bytes(&self, plugin: &str) -> Result<u64, String>;
}

/// Why a key-value write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvRefusal {
    /// The write would take the plugin past its total.
    Full { used: u64, needed: u64, quota: u64 },
    /// The store failed.
    Unavailable(String),
}

/// A compiled, validated plugin ready to be invoked; cheap to clone. Its
/// clones share its code, which moves from quick to optimised once.
#[derive(Clone)]
pub struct LoadedPlugin {
    kind: PluginKind,
    imports: Arc<[String]>,
    stack_bytes: Option<u64>,
    code: Arc<Slot>,
}

impl LoadedPlugin {
    /// The world the plugin implements.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// The size of the component's stack in linear memory, when its modules
    /// say: read at load from a stack-first module's `__stack_pointer`.
    pub fn stack_bytes(&self) -> Option<u64> {
        self.stack_bytes
    }

    /// The interfaces the plugin imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Counters of the runtime, for the API and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Components loaded from compiled artifacts without compiling.
    pub artifact_cache_hits: u64,
    /// Components that had to be compiled.
    pub artifact_cache_misses: u64,
    /// Invocations running now.
    pub in_flight: u64,
    /// Components compiled quickly first.
    pub quick_compiles: u64,
    /// Quickly compiled components whose optimised code is being compiled
    /// or waits its turn.
    pub optimising: u64,
    /// Quickly compiled components now running their optimised code.
    pub optimised: u64,
}

struct Inner {
    /// The optimising compiler of small components (and of all, when large
    /// ones are not compiled quickly first).
    optimising: Compiler,
    /// The compilers of large components, when they are compiled quickly
    /// first.
    large: Option<Large>,
    tiers: Arc<TierCounters>,
    options: Options,
    kv: Arc<dyn KvBackend>,
    clock: Arc<dyn Clock>,
    permits: Semaphore,
    in_flight: AtomicU64,
    ticker_stop: Arc<AtomicBool>,
    cache: Option<Cache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A handle to the plugin runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(
        options: Options,
        kv: Arc<dyn KvBackend>,
        clock: Arc<dyn Clock>,
    ) -> Result<Runtime, Error> {
        let setup = |e: wasmtime::Error| Error::Setup(e.to_string());
        for (field, kib) in [
            ("keep_resident_kib", options.keep_resident_kib),
            ("table_keep_resident_kib", options.table_keep_resident_kib),
        ] {
            if kib > MAX_RESIDENT_KIB {
                return Err(Error::Setup(format!(
                    "plugins.{field} is {kib} KiB, above the {MAX_RESIDENT_KIB} KiB allowed: \
                     the window is reset byte by byte after every call"
                )));
            }
        }
        let cache = match &options.artifact_dir {
            Some(dir) => {
                // wasmtime's cache takes only an absolute directory; a
                // relative one is taken from where the process started.
                let dir = std::path::absolute(dir)
                    .map_err(|e| Error::Setup(format!("cannot resolve {}: {e}", dir.display())))?;
                // wasmtime's cache removes whatever it does not recognise
                // in its directory, so it has one of its own, beside the
                // markers of optimised artifacts. Its artifacts used to lie
                // at the top; they are compiled again, once.
                let old = dir.join("modules");
                if old.is_dir() {
                    let _ = std::fs::remove_dir_all(&old);
                }
                let dir = dir.join("cache");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Setup(format!("cannot create {}: {e}", dir.display())))?;
                let mut cache_config = CacheConfig::new();
                cache_config.with_directory(&dir);
                Some(Cache::new(cache_config).map_err(setup)?)
            }
            None => None,
        };
        let optimising = compiler(&options, cache.clone(), Role::Optimising).map_err(setup)?;
        let tiers = Arc::new(TierCounters::default());
        let large = match options.quick_compile {
            true => large_compilers(&options, cache.clone(), &tiers)?,
            false => None,
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let engines = std::iter::once(&optimising)
            .chain(large.iter().flat_map(|l| [&l.quick, &l.background]))
            .map(|c| c.engine.clone())
            .collect();
        spawn_ticker(
            engines,
            Duration::from_millis(options.epoch_tick_ms.max(1)),
            ticker_stop.clone(),
        )?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                optimising,
                large,
                tiers,
                permits: Semaphore::new(options.max_concurrent_invocations as usize),
                options,
                kv,
                clock,
                in_flight: AtomicU64::new(0),
                ticker_stop,
                cache,
            }),
        })
    }

    /// The runtime's settings.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Checks a component's header and size without compiling it.
    pub fn precheck_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        let limit = self.inner.options.max_upload_bytes;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        inspect::check_header(bytes)
    }

    /// Validates and compiles a component, or loads its compiled artifact.
    /// A large component is compiled quickly first and optimised in the
    /// background (see [`tiers`]). Blocking and CPU-heavy: call it from a
    /// blocking thread ([`Runtime::load`] does).
    pub fn load_blocking(&self, bytes: Arc<[u8]>) -> Result<LoadedPlugin, Error> {
        self.precheck_bytes(&bytes)?;
        let inner = &self.inner;
        let is_large =
            bytes.len() as u64 >= inner.options.quick_compile_above_kib.saturating_mul(1024);
        let Some(large) = inner.large.as_ref().filter(|_| is_large) else {
            return Ok(loaded(inner.optimising.compile(&bytes)?, &bytes));
        };
        let marker = large.markers.as_ref().map(|m| m.of(&bytes));
        // Optimised before: its artifact is read from the cache.
        if marker.as_ref().is_some_and(|m| m.exists()) {
            return Ok(loaded(large.background.compile(&bytes)?, &bytes));
        }
        let compiled = match large.quick.compile(&bytes) {
            Ok(compiled) => compiled,
            // A component the baseline compiler cannot take (a proposal it
            // lacks) is compiled optimised at once.
            Err(e) => {
                tracing::info!(error = %e, "The quick compiler refused a component; compiling it optimised.");
                return Ok(loaded(inner.optimising.compile(&bytes)?, &bytes));
            }
        };
        inner.tiers.quick_compiles.fetch_add(1, Ordering::Relaxed);
        let (kind, version) = (compiled.kind, compiled.version);
        let plugin = loaded(compiled, &bytes);
        if let Some(optimiser) = &large.optimiser {
            let job = Job {
                bytes,
                kind,
                version,
                slot: Arc::downgrade(&plugin.code),
                marker,
            };
            optimiser.queue(job, &inner.tiers);
        }
        Ok(plugin)
    }

    /// Validates and compiles a component on a blocking thread, so the
    /// daemon keeps serving while a large component compiles.
    pub async fn load(&self, bytes: Arc<[u8]>) -> Result<LoadedPlugin, Error> {
        let runtime = self.clone();
        tokio::task::spawn_blocking(move || runtime.load_blocking(bytes))
            .await
            .map_err(|e| Error::Setup(format!("the compile task failed: {e}")))?
    }

    /// Counters for the API and metrics.
    pub fn stats(&self) -> RuntimeStats {
        let cache = self.inner.cache.as_ref();
        RuntimeStats {
            artifact_cache_hits: cache.map_or(0, |c| c.cache_hits() as u64),
            artifact_cache_misses: cache.map_or(0, |c| c.cache_misses() as u64),
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            quick_compiles: self.inner.tiers.quick_compiles.load(Ordering::Relaxed),
            optimising: self.inner.tiers.optimising.load(Ordering::Relaxed),
            optimised: self.inner.tiers.optimised.load(Ordering::Relaxed),
        }
    }
}

/// Advice for a plugin author whose component's stack reaches beyond the
/// memory kept resident between calls, where each call faults its stack in
/// again; `None` when the stack fits or the component does not say.
pub fn stack_advice(stack_bytes: Option<u64>, options: &Options) -> Option<String> {
    hint_for_stack(stack_bytes, options.keep_resident_kib)
}

fn hint_for_stack(stack_bytes: Option<u64>, keep_resident_kib: u64) -> Option<String> {
    let stack_kib = stack_bytes? / 1024;
    (stack_kib > keep_resident_kib / 2).then(|| {
        format!(
            "this component's stack is {stack_kib} KiB, and the daemon keeps only the bottom \
             {keep_resident_kib} KiB of a plugin's memory resident between calls, so every call \
             faults its stack pages in again. Linked with a 64 KiB stack \
             (`-C link-arg=-zstack-size=65536`, see the README's plugin guide) its calls cost \
             about 40% less."
        )
    })
}

/// The largest resident window a memory or table may keep between calls.
const MAX_RESIDENT_KIB: u64 = 64 * 1024;

/// Sizes the pooling allocator from the concurrency limit. Components built
/// from Python or JavaScript hold several core instances, memories and large
/// tables, so the per-component allowances are generous.
fn pooling_config(options: &Options) -> PoolingAllocationConfig {
    // One extra slot per invocation for components being validated.
    let slots = options.max_concurrent_invocations.max(1) + 8;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 16)
        .total_memories(slots * 4)
        .total_tables(slots * 8)
        .total_stacks(slots)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(200_000)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        .max_memory_size((options.max_memory_mib as usize) << 20)
        // Reusing a slot resets what the last call touched: up to this much
        // is zeroed in place, the rest given back to the kernel.
        .linear_memory_keep_resident((options.keep_resident_kib as usize) << 10)
        .table_keep_resident((options.table_keep_resident_kib as usize) << 10)
        .async_stack_keep_resident((options.stack_keep_resident_kib as usize) << 10);
    pool
}

/// A plugin loaded from what a compiler made of `bytes`.
fn loaded(compiled: tiers::Compiled, bytes: &[u8]) -> LoadedPlugin {
    LoadedPlugin {
        kind: compiled.kind,
        imports: compiled.imports.into(),
        stack_bytes: inspect::stack_bytes(bytes),
        code: Arc::new(Slot::new(Arc::new(compiled.code))),
    }
}

/// An engine and linker for one role. Every engine interrupts at epochs.
/// Only the engine of small components pools instances: large ones are few,
/// and pools reserve address space for every slot.
fn compiler(options: &Options, cache: Option<Cache>, role: Role) -> wasmtime::Result<Compiler> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    config.cache(cache);
    match role {
        Role::Optimising if options.pooling => {
            config
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(options)));
        }
        Role::Optimising => {}
        Role::Quick => {
            config.strategy(wasmtime::Strategy::Winch);
        }
        // One thread, at low priority, so that serving goes first.
        Role::Background => {
            config.parallel_compilation(false);
        }
    }
    let engine = Engine::new(&config)?;
    let linker = build_linker(&engine)?;
    Ok(Compiler {
        engine,
        linker,
        tier: role.tier(),
    })
}

/// The compilers of large components, where wasmtime has a baseline
/// compiler for this machine. Quick code is cached only where it is the
/// last code: a daemon keeps the optimised artifact instead, and writing
/// the quick one would only delay the first call.
fn large_compilers(
    options: &Options,
    cache: Option<Cache>,
    tiers: &Arc<TierCounters>,
) -> Result<Option<Large>, Error> {
    let setup = |e: wasmtime::Error| Error::Setup(e.to_string());
    let quick_cache = cache.clone().filter(|_| !options.optimise_after_quick);
    let quick = match compiler(options, quick_cache, Role::Quick) {
        Ok(quick) => quick,
        Err(e) => {
            tracing::warn!(error = %e, "No baseline compiler here; every component is compiled optimised.");
            return Ok(None);
        }
    };
    let background = compiler(options, cache, Role::Background).map_err(setup)?;
    let markers = options
        .artifact_dir
        .as_deref()
        .map(|dir| Markers::new(dir, &background.engine));
    let optimiser = match options.optimise_after_quick {
        true => Some(Optimiser::start(
            background.clone(),
            markers.clone(),
            tiers.clone(),
        )?),
        false => None,
    };
    Ok(Some(Large {
        quick,
        background,
        optimiser,
        markers,
    }))
}

/// The linker every plugin is instantiated with: the whole WASI 0.2 set and
/// `wasi:http` (components built from Python and JavaScript import them
/// even when unused; the empty `WasiCtx` denies what they would reach) plus
/// the platform interfaces.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<InvocationState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    type Data = HasSelf<InvocationState>;
    bindings::types::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::log::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::kv::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::config::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::clock::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::v2::types::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::v2::log::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::v2::kv::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::v2::config::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    bindings::v2::clock::add_to_linker::<_, Data>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Advances the engines' epoch on a plain thread until the runtime is
/// dropped.
fn spawn_ticker(engines: Vec<Engine>, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("greenlight-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                for engine in &engines {
                    engine.increment_epoch();
                }
            }
        })
        .map(drop)
        .map_err(|e| Error::Setup(format!("cannot start the epoch thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resident_window_too_large_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(0));
        for (options, field) in [
            (
                Options {
                    keep_resident_kib: MAX_RESIDENT_KIB + 1,
                    ..Default::default()
                },
                "plugins.keep_resident_kib",
            ),
            (
                Options {
                    table_keep_resident_kib: u64::MAX,
                    ..Default::default()
                },
                "plugins.table_keep_resident_kib",
            ),
        ] {
            let err = Runtime::new(options, Arc::new(store.clone()), clock.clone())
                .err()
                .expect("refused");
            assert!(
                matches!(&err, Error::Setup(m) if m.contains(field)),
                "{err}"
            );
        }
        let fits = Options {
            keep_resident_kib: MAX_RESIDENT_KIB,
            ..Default::default()
        };
        assert!(Runtime::new(fits, Arc::new(store), clock).is_ok());
    }

    #[test]
    fn the_stack_of_a_component_is_read_from_its_stack_pointer() {
        let read = |name: &str| {
            let path = format!("{}/{name}.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
            inspect::stack_bytes(&std::fs::read(path).unwrap())
        };
        // The plugins workspace links every plugin with a 64 KiB stack.
        assert_eq!(read("fixture_check"), Some(65536));
        assert_eq!(read("fixture_no_std_check"), Some(65536));
        assert_eq!(read("http_deployer"), Some(65536));
        // One fixture keeps Rust's default.
        assert_eq!(read("fixture_big_stack"), Some(1 << 20));
        assert_eq!(inspect::stack_bytes(b"not wasm"), None);
    }

    #[test]
    fn only_a_stack_reaching_past_the_resident_window_gets_a_hint() {
        assert_eq!(hint_for_stack(Some(65536), 192), None);
        assert_eq!(hint_for_stack(None, 192), None);
        let hint = hint_for_stack(Some(1 << 20), 192).expect("a hint");
        assert!(hint.contains("stack is 1024 KiB"), "{hint}");
        assert!(hint.contains("-zstack-size=65536"), "{hint}");
    }
}
