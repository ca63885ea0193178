//! Greenlight: a release platform whose every decision point is a sandboxed
//! WebAssembly plugin.

pub mod clock;
pub mod domain;
pub mod plugins;
pub mod registry;
pub mod store;
pub mod api;
pub mod cli;
pub mod config;
pub mod server;
pub mod telemetry;
