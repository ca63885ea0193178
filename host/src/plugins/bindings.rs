//! The one place the WIT package is turned into Rust: one `bindgen!` per world.
//!
//! `platform` generates the shared types and the host imports once; every
//! plugin world reuses them through `with`, so a `Verdict` from a check and an
//! `Observation` for a policy are the same Rust types.

mod platform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "greenlight:plugin/platform",
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

pub use platform::greenlight::plugin::{clock, config, kv, log, types};

macro_rules! plugin_world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit",
                world: $world,
                exports: { default: async },
                require_store_data_send: true,
                with: {
                    "wasi:io": wasmtime_wasi::p2::bindings::io,
                    "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                    "greenlight:plugin/types": crate::plugins::bindings::types,
                    "greenlight:plugin/log": crate::plugins::bindings::log,
                    "greenlight:plugin/kv": crate::plugins::bindings::kv,
                    "greenlight:plugin/config": crate::plugins::bindings::config,
                    "greenlight:plugin/clock": crate::plugins::bindings::clock,
                },
            });
        }
    };
}

plugin_world!(precheck, "greenlight:plugin/precheck-plugin");
plugin_world!(deployer, "greenlight:plugin/deployer-plugin");
plugin_world!(traffic, "greenlight:plugin/traffic-plugin");
plugin_world!(check, "greenlight:plugin/check-plugin");
plugin_world!(policy, "greenlight:plugin/rollback-policy-plugin");
plugin_world!(notifier, "greenlight:plugin/notifier-plugin");
