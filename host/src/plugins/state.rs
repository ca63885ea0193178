//! Per-invocation store data: the WASI and HTTP contexts, the memory cap and
//! everything the host imports need to answer a plugin.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::http::GrantedHttp;
use super::tape::ClockTape;
use super::{KvBackend, LogLine};
use crate::clock::Clock;
use crate::domain::grant::Grant;
use crate::domain::redact::Redactor;

/// The most bytes of a plugin's stderr kept to explain a trap.
pub(super) const STDERR_CAPTURE_BYTES: usize = 16 * 1024;
/// The most log lines kept per invocation.
pub(super) const MAX_LOG_LINES: usize = 200;
/// The most bytes of one log line (message and fields) kept.
pub(super) const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// Everything one invocation's `Store` holds.
pub(super) struct InvocationState {
    pub plugin: Arc<str>,
    pub grant: Arc<Grant>,
    pub kv: Arc<dyn KvBackend>,
    pub kv_quota_bytes: u64,
    pub clock: Arc<dyn Clock>,
    /// Whether clock readings are recorded, or given from a recording.
    pub clock_tape: ClockTape,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: GrantedHttp,
    pub table: ResourceTable,
    pub memory: MemoryCap,
    pub stderr: MemoryOutputPipe,
    pub logs: Vec<LogLine>,
    pub dropped_logs: u32,
    pub deadline: Instant,
    /// The grant's secret values, replaced in everything the plugin says.
    pub redactor: Redactor,
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Caps the total linear memory of one invocation and remembers whether the
/// plugin ran into the cap, so a failure can be reported as memory exhaustion.
pub(super) struct MemoryCap {
    limit_bytes: usize,
    in_use_bytes: usize,
    pub exhausted: bool,
}

/// The most table elements one invocation may have; tables hold function
/// references, and interpreters built to wasm have large ones.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl MemoryCap {
    pub fn new(limit_bytes: usize) -> MemoryCap {
        MemoryCap {
            limit_bytes,
            in_use_bytes: 0,
            exhausted: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.in_use_bytes - current.min(self.in_use_bytes) + desired;
        if total > self.limit_bytes {
            // Refusing the growth makes `memory.grow` return -1, as the wasm
            // specification allows; a plugin that copes with that may still
            // finish, one that does not traps and is reported as exhausted.
            self.exhausted = true;
            return Ok(false);
        }
        self.in_use_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
