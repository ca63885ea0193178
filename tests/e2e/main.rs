//! End-to-end tests: the real `greenlight` binary, driven over HTTP and from
//! its command line, running real plugins built from `plugins/fixtures`.

mod audit_limits;
mod authz;
mod bundled;
mod cli;
mod conformance;
mod demo;
mod durability;
mod edge;
mod evidence;
mod fleet;
mod flows;
mod fuzz;
mod identity;
mod inventory;
mod names;
mod observability;
mod openapi;
mod plugin_answers;
mod plugin_trust;
mod polyglot;
mod private_tls;
mod registry;
mod release_cli;
mod releases;
mod restart;
mod sandbox;
mod schedules;
mod secrets;
mod session;
mod stream_access;
mod support;
mod trains;
mod ui;
mod way_out;
mod worlds;
