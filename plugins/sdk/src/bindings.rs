//! The generated bindings of `greenlight:plugin@0.2.0`, the interface at the
//! root of `wit/`: the `platform` imports once, and one module per plugin
//! world whose imports point back at them, so every world shares one set of
//! types (one `Verdict`, one HTTP client).
//!
//! Each world's export macro is public so that a plugin crate can export its
//! implementation; wit-bindgen then embeds the world's exports only in the
//! crate that expands the macro, and a plugin ends up exporting exactly one
//! world however many this crate describes.

#![allow(missing_docs, clippy::all)]

/// The imports every plugin has: types, log, kv, config, clock and
/// `wasi:http/outgoing-handler` with what it depends on.
pub mod platform {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "greenlight:plugin/platform@0.2.0",
        generate_all,
    });
}

/// Generates the bindings of one plugin world in its own module, reusing the
/// platform's imports.
macro_rules! world {
    ($module:ident, $world:tt, $default:tt, $export:tt) => {
        pub mod $module {
            wit_bindgen::generate!({
                path: "../../wit",
                world: $world,
                with: {
                    "greenlight:plugin/types@0.2.0": crate::bindings::platform::greenlight::plugin0_2_0::types,
                    "greenlight:plugin/log@0.2.0": crate::bindings::platform::greenlight::plugin0_2_0::log,
                    "greenlight:plugin/kv@0.2.0": crate::bindings::platform::greenlight::plugin0_2_0::kv,
                    "greenlight:plugin/config@0.2.0": crate::bindings::platform::greenlight::plugin0_2_0::config,
                    "greenlight:plugin/clock@0.2.0": crate::bindings::platform::greenlight::plugin0_2_0::clock,
                    "wasi:http/outgoing-handler@0.2.12": crate::bindings::platform::wasi::http::outgoing_handler,
                    "wasi:http/types@0.2.12": crate::bindings::platform::wasi::http::types,
                    "wasi:io/error@0.2.12": crate::bindings::platform::wasi::io::error,
                    "wasi:io/poll@0.2.12": crate::bindings::platform::wasi::io::poll,
                    "wasi:io/streams@0.2.12": crate::bindings::platform::wasi::io::streams,
                    "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::platform::wasi::clocks::monotonic_clock,
                },
                pub_export_macro: true,
                default_bindings_module: $default,
                export_macro_name: $export,
            });
        }
    };
}

world!(
    precheck,
    "greenlight:plugin/precheck-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::precheck",
    "__export_precheck_world"
);
world!(
    deployer,
    "greenlight:plugin/deployer-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::deployer",
    "__export_deployer_world"
);
world!(
    traffic,
    "greenlight:plugin/traffic-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::traffic",
    "__export_traffic_world"
);
world!(
    check,
    "greenlight:plugin/check-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::check",
    "__export_check_world"
);
world!(
    policy,
    "greenlight:plugin/rollback-policy-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::policy",
    "__export_policy_world"
);
world!(
    notifier,
    "greenlight:plugin/notifier-plugin@0.2.0",
    "greenlight_plugin_sdk::bindings::notifier",
    "__export_notifier_world"
);
