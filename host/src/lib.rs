//! Greenlight: a release platform whose every decision point is a sandboxed
//! WebAssembly plugin.

pub mod agent;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod fleet;
pub mod flowfile;
pub mod identity;
pub mod metrics;
pub mod plugins;
pub mod registry;
pub mod scheduler;
pub mod secrets_key;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod testbed;
