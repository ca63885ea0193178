//! A bare wasmtime invocation of a check plugin, used by the benchmarks as
//! the baseline Greenlight's own invocation path is measured against: the
//! same engine (pooled allocator), a pre-linked instance, a fresh store and
//! the call, with no grant, no limits and no host context beyond empty WASI.

use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::check::CheckPluginPre;
use super::{Error, Runtime, convert};
use crate::domain::plugin::{ReleaseContext, Target, Verdict};

/// Store data of the baseline: empty WASI and HTTP contexts.
pub struct RawState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RawState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// A check plugin instantiated the bare wasmtime way.
pub struct RawCheck {
    pre: CheckPluginPre<RawState>,
}

impl RawCheck {
    /// Prepares the component on the runtime's engine. The platform imports
    /// are linked as traps: the baseline must only call exports that do not
    /// use them.
    pub fn new(runtime: &Runtime, bytes: &[u8]) -> Result<RawCheck, Error> {
        let err = |e: wasmtime::Error| Error::Invalid(format!("{e:#}"));
        let engine = &runtime.inner.optimising.engine;
        let component = Component::new(engine, bytes).map_err(err)?;
        let mut linker = Linker::<RawState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(err)?;
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(err)?;
        let pre =
            CheckPluginPre::new(linker.instantiate_pre(&component).map_err(err)?).map_err(err)?;
        Ok(RawCheck { pre })
    }

    /// Instantiates the plugin in a fresh store and calls `verify`.
    pub async fn verify(&self, ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let err = |e: wasmtime::Error| Error::Invalid(format!("{e:#}"));
        let state = RawState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        // The engine interrupts on epochs; the baseline never should.
        store.set_epoch_deadline(1 << 40);
        let instance = self.pre.instantiate_async(&mut store).await.map_err(err)?;
        let verdict = instance
            .greenlight_plugin0_1_0_check()
            .call_verify(
                &mut store,
                &convert::v1::context(ctx),
                &convert::v1::targets(targets),
            )
            .await
            .map_err(err)?;
        Ok(convert::v1::verdict(verdict))
    }
}
