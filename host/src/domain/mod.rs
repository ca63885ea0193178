//! The release domain: pure types and rules, with no IO, no storage, no wasm and no HTTP.

pub mod flow;
pub mod grant;
pub mod inventory;
pub mod name;
pub mod plan;
pub mod plugin;
pub mod recording;
pub mod redact;
pub mod release;
pub mod schedule;
pub mod train;
