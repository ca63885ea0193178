//! One invocation: a fresh store with the grant's limits, a call into the
//! plugin's export, and every way it can end turned into data for the flow.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpCtx;

use super::http::{Denial, GrantedHttp, HttpTape};
use super::state::{InvocationState, MemoryCap, STDERR_CAPTURE_BYTES};
use super::tape::{ClockTape, Tape, Taped};
use super::{LoadedPlugin, LogLine, Runtime};
use crate::domain::grant::Grant;
use crate::domain::plugin::{Call, Output};
use crate::domain::redact::Redactor;

/// How an invocation failed; each is a distinct outcome a flow can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The call does not match the plugin's kind.
    WrongKind,
    /// The plugin did not finish within its deadline.
    DeadlineExceeded,
    /// The plugin needed more memory than its cap.
    MemoryExhausted,
    /// The plugin tried to reach a host its grant does not allow, or made
    /// more requests than it may.
    HostDenied,
    /// An HTTPS request to an origin whose TLS the grant sets up (its own
    /// CA, a client certificate) failed its handshake.
    TlsFailed,
    /// The plugin returned more than its output cap.
    OutputTooLarge,
    /// The plugin returned something the WIT contract forbids.
    MalformedOutput,
    /// The plugin trapped (panicked, hit `unreachable`, overflowed its stack).
    Trap,
    /// The plugin could not be instantiated.
    Instantiation,
}

impl ErrorKind {
    /// A stable code for the API and the logs.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::WrongKind => "wrong_kind",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::MemoryExhausted => "memory_exhausted",
            ErrorKind::HostDenied => "host_denied",
            ErrorKind::TlsFailed => "tls_failed",
            ErrorKind::OutputTooLarge => "output_too_large",
            ErrorKind::MalformedOutput => "malformed_output",
            ErrorKind::Trap => "trap",
            ErrorKind::Instantiation => "instantiation_failed",
        }
    }
}

/// A failed invocation, with what the plugin said before it failed.
#[derive(Debug, Clone)]
pub struct InvokeError {
    pub kind: ErrorKind,
    pub message: String,
    /// The wasm backtrace of a trap, when there is one.
    pub backtrace: Option<String>,
    /// What the plugin wrote to stdout and stderr (capped).
    pub stderr: String,
    pub logs: Vec<LogLine>,
    pub duration: Duration,
    /// Outbound HTTP requests the plugin made before it failed.
    pub http_requests: u32,
    /// The refused request a `host_denied` failure is about (boxed: the
    /// error travels in every failed call's `Result`).
    pub denial: Option<Box<Denial>>,
}

/// Where the plugin ran, which decides how a refused request is put right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// In the daemon, under the plugin's grant. `target` names the target
    /// of the release whose address the refused origin is, if it is one.
    Daemon { target: Option<String> },
    /// In the daemon, as a version no admin approved: with the empty grant.
    Unapproved { version: String },
    /// In `greenlight plugin test`, under the grant file it was given.
    GrantFile,
}

impl InvokeError {
    /// Says, right after a refused request, how to allow it.
    pub fn name_fix(&mut self, plugin: &str, fix: &Fix) {
        let Some(denial) = &self.denial else {
            return;
        };
        let grant = format!("greenlight plugin grant {plugin}");
        let text = match (&**denial, fix) {
            (Denial::NotGranted(_), Fix::Unapproved { version }) => format!(
                "version {version} is not approved, so it runs with an empty grant; \
                 an admin approves it with `greenlight plugin approve {plugin} {version}`"
            ),
            (
                Denial::NotGranted(origin),
                Fix::Daemon {
                    target: Some(id), ..
                },
            ) => format!(
                "it is the address of target {id}: an admin lets the plugin call every \
                 target of its releases with `{grant} --allow-release-targets`, or this \
                 origin alone with `{grant} --allow-host {origin}`"
            ),
            (Denial::NotGranted(origin), Fix::Daemon { .. }) => {
                format!("an admin grants it with `{grant} --allow-host {origin}`")
            }
            (Denial::NotGranted(origin), Fix::GrantFile) => {
                format!("add \"{origin}\" to allowed_hosts in the --grant file")
            }
            (Denial::RequestLimit(_), Fix::GrantFile) => {
                "raise limits.max_outbound_requests in the --grant file".to_string()
            }
            (Denial::RequestLimit(_), _) => format!(
                "an admin raises it with `{grant} --max-outbound-requests N`, up to the \
                 daemon's bound"
            ),
            (Denial::BadUri(_), _) => {
                "send the request to a full URL, such as http://host:port/path".to_string()
            }
        };
        let said = denial.to_string();
        if let Some(rest) = self.message.strip_prefix(&said) {
            self.message = format!("{said}; {text}{rest}");
        }
    }
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for InvokeError {}

/// A successful invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub output: Output,
    pub logs: Vec<LogLine>,
    /// Log lines dropped beyond the per-invocation budget.
    pub dropped_logs: u32,
    /// What the plugin wrote to stdout and stderr (capped).
    pub stderr: String,
    /// Outbound HTTP requests made.
    pub http_requests: u32,
    pub duration: Duration,
}

/// Decrements the in-flight counter however the invocation ends.
struct InFlight<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Invokes a loaded plugin under its grant. Never panics and never
    /// returns until the plugin has finished or its deadline has passed.
    pub async fn invoke(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        grant: Arc<Grant>,
        call: Call,
    ) -> Result<Invocation, InvokeError> {
        self.invoke_taped(plugin, name, grant, call, Tape::Live)
            .await
            .0
    }

    /// [`Runtime::invoke`], recording what the call sees of the world or
    /// answering it from a recording, as `tape` says.
    #[tracing::instrument(skip_all, fields(plugin = name, function = call.function()))]
    pub async fn invoke_taped(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        grant: Arc<Grant>,
        call: Call,
        tape: Tape,
    ) -> (Result<Invocation, InvokeError>, Taped) {
        let queued = Instant::now();
        if call.kind() != plugin.kind {
            let wrong = Err(InvokeError {
                kind: ErrorKind::WrongKind,
                message: format!(
                    "`{}` is a {} plugin and cannot answer `{}`",
                    name,
                    plugin.kind,
                    call.function()
                ),
                backtrace: None,
                stderr: String::new(),
                logs: Vec::new(),
                duration: Duration::ZERO,
                http_requests: 0,
                denial: None,
            });
            return (wrong, Taped::default());
        }
        let inner = &self.inner;
        let limits = inner.options.default_limits().with_overrides(&grant.limits);
        // The semaphore is never closed, so acquiring only waits.
        let _permit = inner.permits.acquire().await.ok();
        inner.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&inner.in_flight);

        let started = Instant::now();
        let deadline = started + Duration::from_millis(limits.deadline_ms);
        let output_pipe = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdout(output_pipe.clone())
            .stderr(output_pipe.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let hooks = GrantedHttp::new(
            grant.clone(),
            limits.max_outbound_requests,
            Duration::from_millis(inner.options.connect_timeout_ms),
            deadline,
        );
        let redactor = Redactor::new(&grant.secrets);
        let (http_tape, clock_tape, recording) = tapes(tape, inner.clock.now_ms());
        let hooks = hooks.taped(http_tape, redactor.clone());
        let state = InvocationState {
            clock_tape,
            redactor: redactor.clone(),
            plugin: Arc::from(name),
            grant,
            kv: inner.kv.clone(),
            kv_quota_bytes: inner.options.kv_quota_mib.saturating_mul(1 << 20),
            clock: inner.clock.clone(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            table: Default::default(),
            memory: MemoryCap::new((limits.memory_mib as usize).saturating_mul(1 << 20)),
            stderr: output_pipe,
            logs: Vec::new(),
            dropped_logs: 0,
            deadline,
        };
        // A call runs to its end on the code it started on, even if the
        // optimised code takes over meanwhile.
        let code = plugin.code();
        let mut store = Store::new(&code.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        // At every tick the plugin yields to other tasks; past its deadline
        // it is interrupted. Host calls are covered by the timeout below.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let result = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            code.pre.dispatch(&mut store, call),
        )
        .await;
        let duration = started.elapsed();
        let mut state = store.into_data();
        let unrecorded = match &mut state.hooks.tape {
            HttpTape::Replay { unrecorded, .. } => std::mem::take(unrecorded),
            _ => Vec::new(),
        };
        let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
        let fail = |kind: ErrorKind, message: String, backtrace: Option<String>| InvokeError {
            kind,
            message,
            backtrace,
            stderr: stderr.clone(),
            logs: state.logs.clone(),
            duration,
            http_requests: state.hooks.sent,
            denial: match kind {
                ErrorKind::HostDenied => state.hooks.denials.first().cloned().map(Box::new),
                _ => None,
            },
        };

        let outcome = match result {
            Err(_elapsed) => Err(fail(
                ErrorKind::DeadlineExceeded,
                format!("the plugin did not finish within {} ms", limits.deadline_ms),
                None,
            )),
            Ok(Err(error)) => Err(classify(&error, &state, &stderr, &limits, &fail)),
            Ok(Ok(output)) => {
                if let Some(denial) = state.hooks.denials.first() {
                    Err(fail(ErrorKind::HostDenied, denial.to_string(), None))
                } else if let Some(failure) = first_tls_failure(&state) {
                    Err(fail(ErrorKind::TlsFailed, failure, None))
                } else if output.size_bytes() as u64 > limits.max_output_bytes {
                    Err(fail(
                        ErrorKind::OutputTooLarge,
                        format!(
                            "the plugin returned {} bytes, above its cap of {} bytes",
                            output.size_bytes(),
                            limits.max_output_bytes
                        ),
                        None,
                    ))
                } else if let Err(problem) = output.validate() {
                    Err(fail(ErrorKind::MalformedOutput, problem, None))
                } else {
                    Ok(Invocation {
                        output,
                        logs: state.logs.clone(),
                        dropped_logs: state.dropped_logs,
                        stderr: stderr.clone(),
                        http_requests: state.hooks.sent,
                        duration,
                    })
                }
            }
        };
        let outcome = redact(&redactor, outcome);
        match &outcome {
            Ok(_) => tracing::debug!(
                duration_us = duration.as_micros() as u64,
                queued_us = (started - queued).as_micros() as u64,
                "Plugin call succeeded."
            ),
            Err(e) => tracing::warn!(
                code = e.kind.code(),
                error = %e.message,
                duration_ms = duration.as_millis() as u64,
                "Plugin call failed."
            ),
        }
        // The bodies being read hold the recording too: they go with the
        // store's data, and what they kept is read after.
        drop(state);
        let recording = recording.map(|shared| {
            let mut recording = shared.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *recording)
        });
        let taped = Taped {
            recording,
            unrecorded,
        };
        (outcome, taped)
    }
}

/// The HTTP and clock sides of a tape, and the recording a recorded call
/// fills in.
fn tapes(tape: Tape, now_ms: u64) -> (HttpTape, ClockTape, Option<super::tape::Shared>) {
    match tape {
        Tape::Live => (HttpTape::Live, ClockTape::Live, None),
        Tape::Record => {
            let shared = Arc::new(std::sync::Mutex::new(
                crate::domain::recording::CallRecording {
                    at_ms: now_ms,
                    ..Default::default()
                },
            ));
            (
                HttpTape::Record(shared.clone()),
                ClockTape::Record(shared.clone()),
                Some(shared),
            )
        }
        Tape::Replay { recording, release } => {
            let clock = ClockTape::Replay {
                reads: recording.clock_reads.clone(),
                next: 0,
                at_ms: recording.at_ms,
            };
            let http = HttpTape::Replay {
                recording,
                release,
                served: Vec::new(),
                unrecorded: Vec::new(),
            };
            (http, clock, None)
        }
    }
}

/// The first failed handshake with a private origin, in words.
fn first_tls_failure(state: &InvocationState) -> Option<String> {
    let failures = state
        .hooks
        .tls_failures
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    failures.first().map(ToString::to_string)
}

/// Replaces the grant's secret values in everything an invocation says,
/// before it is logged, stored or shown. Log lines were redacted as written.
#[expect(
    clippy::result_large_err,
    reason = "one result per invocation, passed through once; the public API returns it in a tuple"
)]
fn redact(
    redactor: &Redactor,
    outcome: Result<Invocation, InvokeError>,
) -> Result<Invocation, InvokeError> {
    if redactor.is_empty() {
        return outcome;
    }
    match outcome {
        Ok(mut invocation) => {
            redactor.output(&mut invocation.output);
            redactor.in_place(&mut invocation.stderr);
            Ok(invocation)
        }
        Err(mut e) => {
            redactor.in_place(&mut e.message);
            redactor.in_place(&mut e.stderr);
            if let Some(backtrace) = &mut e.backtrace {
                redactor.in_place(backtrace);
            }
            Err(e)
        }
    }
}

/// Turns a wasmtime error into the outcome a flow can act on. The store's
/// state says what the plugin ran into; the trap code says how it ended.
fn classify(
    error: &wasmtime::Error,
    state: &InvocationState,
    stderr: &str,
    limits: &crate::domain::grant::Limits,
    fail: &dyn Fn(ErrorKind, String, Option<String>) -> InvokeError,
) -> InvokeError {
    let trap = error.downcast_ref::<Trap>().copied();
    let backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(|b| b.to_string())
        .filter(|b| !b.trim().is_empty());
    let said = last_lines(stderr, 5);
    let with_output = |message: String| {
        if said.is_empty() {
            message
        } else {
            format!("{message}; the plugin wrote: {said}")
        }
    };
    if trap == Some(Trap::Interrupt) {
        return fail(
            ErrorKind::DeadlineExceeded,
            format!("the plugin did not finish within {} ms", limits.deadline_ms),
            backtrace,
        );
    }
    if state.memory.exhausted {
        return fail(
            ErrorKind::MemoryExhausted,
            format!(
                "the plugin needed more than its {} MiB of memory",
                limits.memory_mib
            ),
            backtrace,
        );
    }
    if let Some(denial) = state.hooks.denials.first() {
        return fail(
            ErrorKind::HostDenied,
            with_output(denial.to_string()),
            backtrace,
        );
    }
    if let Some(failure) = first_tls_failure(state) {
        return fail(ErrorKind::TlsFailed, with_output(failure), backtrace);
    }
    let overflowed = trap == Some(Trap::StackOverflow)
        || (trap == Some(Trap::MemoryOutOfBounds) && ran_below_address_zero(error));
    // A Python or JavaScript exception: its own line first, where it was
    // raised, then its traceback before the wasm frames.
    if !overflowed
        && (trap.is_some() || backtrace.is_some())
        && let Some(raised) = super::traceback::raised(stderr)
    {
        let at = raised.at.map(|at| format!(" ({at})")).unwrap_or_default();
        let frames = match backtrace {
            Some(wasm) => format!("{}\n\n{wasm}", raised.traceback),
            None => raised.traceback,
        };
        return fail(
            ErrorKind::Trap,
            format!("the plugin raised {}{at}", raised.exception),
            Some(frames),
        );
    }
    match trap {
        Some(_) if overflowed => fail(
            ErrorKind::Trap,
            with_output("the plugin overflowed its call stack (runaway recursion)".into()),
            backtrace,
        ),
        Some(code) => fail(
            ErrorKind::Trap,
            with_output(format!("the plugin trapped: {code}")),
            backtrace,
        ),
        None if backtrace.is_some() => fail(
            ErrorKind::Trap,
            with_output(format!("the plugin failed: {}", root_message(error))),
            backtrace,
        ),
        None => fail(
            ErrorKind::Instantiation,
            with_output(format!("the plugin could not run: {}", root_message(error))),
            None,
        ),
    }
}

/// Whether a memory fault was at an address a stack pointer reaches by
/// running below zero. Compilers for wasm32 put the stack first in linear
/// memory, growing down towards address 0, so an overflowing stack wraps to
/// the top of the 32-bit address space and faults there. wasmtime names the
/// faulting address in the error's context.
fn ran_below_address_zero(error: &wasmtime::Error) -> bool {
    const PREFIX: &str = "memory fault at wasm address 0x";
    error.chain().any(|cause| {
        let text = cause.to_string();
        text.strip_prefix(PREFIX)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .is_some_and(|address| (0xFFFF_0000..=0xFFFF_FFFF).contains(&address))
    })
}

/// The innermost message of an error chain.
fn root_message(error: &wasmtime::Error) -> String {
    error
        .chain()
        .last()
        .map(|e| e.to_string())
        .unwrap_or_else(|| error.to_string())
}

/// The last `n` lines of `text` worth showing, joined with ` | `: blank
/// lines and the Rust runtime's hint about `RUST_BACKTRACE` (which plugins
/// cannot set) are left out.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::ran_below_address_zero;

    fn fault_at(address: u64) -> wasmtime::Error {
        wasmtime::Error::msg("wasm trap: out of bounds memory access").context(format!(
            "memory fault at wasm address 0x{address:x} in linear memory of size 0x20000"
        ))
    }

    #[test]
    fn a_fault_just_below_the_top_of_the_address_space_is_a_stack_run_below_zero() {
        assert!(ran_below_address_zero(&fault_at(0xffff_fff0)));
        assert!(ran_below_address_zero(&fault_at(0xffff_0000)));
        assert!(!ran_below_address_zero(&fault_at(0x3_0000)));
        assert!(!ran_below_address_zero(&fault_at(0xfffe_ffff)));
        assert!(!ran_below_address_zero(&wasmtime::Error::msg(
            "wasm trap: out of bounds memory access"
        )));
    }
}
