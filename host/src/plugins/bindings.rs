//! The one place the WIT package is turned into Rust: one `bindgen!` per world.
//!
//! `platform` generates the shared types and the host imports once; every
//! plugin world reuses them through `with`, so a `Verdict` from a check and an
//! `Observation` for a policy are the same Rust types.

mod platform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "greenlight:plugin/platform@0.1.0",
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

pub use platform::greenlight::plugin0_1_0::{clock, config, kv, log, types};

/// The imports of `greenlight:plugin@0.2.0`: the same platform as 0.1.0,
/// in types of their own (a `target` has `attributes` there).
mod platform_v2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "greenlight:plugin/platform@0.2.0",
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The 0.2.0 interfaces the host implements.
pub mod v2 {
    pub use super::platform_v2::greenlight::plugin0_2_0::{clock, config, kv, log, types};
}

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
                    "greenlight:plugin/types@0.1.0": crate::plugins::bindings::types,
                    "greenlight:plugin/log@0.1.0": crate::plugins::bindings::log,
                    "greenlight:plugin/kv@0.1.0": crate::plugins::bindings::kv,
                    "greenlight:plugin/config@0.1.0": crate::plugins::bindings::config,
                    "greenlight:plugin/clock@0.1.0": crate::plugins::bindings::clock,
                },
            });
        }
    };
}

plugin_world!(precheck, "greenlight:plugin/precheck-plugin@0.1.0");
plugin_world!(deployer, "greenlight:plugin/deployer-plugin@0.1.0");
plugin_world!(traffic, "greenlight:plugin/traffic-plugin@0.1.0");
plugin_world!(check, "greenlight:plugin/check-plugin@0.1.0");
plugin_world!(policy, "greenlight:plugin/rollback-policy-plugin@0.1.0");
plugin_world!(notifier, "greenlight:plugin/notifier-plugin@0.1.0");

/// The worlds of `greenlight:plugin@0.2.0`, reusing its platform's types.
macro_rules! plugin_world_v2 {
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
                    "greenlight:plugin/types@0.2.0": crate::plugins::bindings::v2::types,
                    "greenlight:plugin/log@0.2.0": crate::plugins::bindings::v2::log,
                    "greenlight:plugin/kv@0.2.0": crate::plugins::bindings::v2::kv,
                    "greenlight:plugin/config@0.2.0": crate::plugins::bindings::v2::config,
                    "greenlight:plugin/clock@0.2.0": crate::plugins::bindings::v2::clock,
                },
            });
        }
    };
}

plugin_world_v2!(precheck_v2, "greenlight:plugin/precheck-plugin@0.2.0");
plugin_world_v2!(deployer_v2, "greenlight:plugin/deployer-plugin@0.2.0");
plugin_world_v2!(traffic_v2, "greenlight:plugin/traffic-plugin@0.2.0");
plugin_world_v2!(check_v2, "greenlight:plugin/check-plugin@0.2.0");
plugin_world_v2!(policy_v2, "greenlight:plugin/rollback-policy-plugin@0.2.0");
plugin_world_v2!(notifier_v2, "greenlight:plugin/notifier-plugin@0.2.0");
