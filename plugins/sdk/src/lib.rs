//! Greenlight's guest-side SDK: write a plugin as a plain Rust trait impl and
//! export it with one macro.
//!
//! ```no_run
//! use greenlight_plugin_sdk::{Check, Error, Params, ReleaseContext, Target, Verdict, http};
//!
//! struct Probe;
//!
//! impl Check for Probe {
//!     fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
//!         let path: String = ctx.param_or("path", "/health".to_string())?;
//!         for t in targets {
//!             http::Request::get(format!("http://{}{path}", t.address)).send()?;
//!         }
//!         Ok(Verdict::pass(format!("{} targets answered", targets.len())))
//!     }
//! }
//!
//! greenlight_plugin_sdk::export_check!(Probe);
//! ```
//!
//! The crate holds the bindings of every world of `greenlight:plugin@0.2.0`
//! (see [`bindings`]); a plugin exports exactly one of them through its
//! macro: [`export_precheck!`], [`export_deployer!`], [`export_traffic!`],
//! [`export_check!`], [`export_rollback_policy!`] or [`export_notifier!`].
//! An `Err` from a trait method becomes what the world expects of a plugin
//! that could not do its work: an `error` verdict for checks and prechecks,
//! a `plugin-error` for deployers, traffic and notifiers, and a pause for
//! rollback policies.
//!
//! Since 0.1.0, a deploy, a rollback or a traffic shift that takes longer
//! than one call answers that it is still in progress ([`Work::in_progress`],
//! [`Shift::in_progress`]) and is asked again until it is done (see
//! [`Deployer`] and [`Traffic`]); and a target carries attributes that
//! say how to reach it beyond its address ([`Target::attribute`]). A plugin
//! built with an earlier SDK against 0.1.0 keeps working unchanged: the host
//! serves both versions.

pub mod bindings;
mod context;
mod error;
pub mod http;
pub mod kube;
pub mod platform;
pub mod pods;
pub mod query;
pub mod rollout;
pub mod threshold;
mod types;
mod worlds;

pub use context::Params;
pub use error::Error;
pub use platform::{config, kv, log, time};
pub use types::*;
pub use worlds::{Check, Deployer, Notifier, Precheck, RollbackPolicy, Traffic};

/// Exports a [`Precheck`] implementation as the component's
/// `precheck-plugin` world.
#[macro_export]
macro_rules! export_precheck {
    ($ty:ident) => {
        $crate::bindings::precheck::__export_precheck_world!($ty with_types_in $crate::bindings::precheck);
    };
}

/// Exports a [`Deployer`] implementation as the component's
/// `deployer-plugin` world.
#[macro_export]
macro_rules! export_deployer {
    ($ty:ident) => {
        $crate::bindings::deployer::__export_deployer_world!($ty with_types_in $crate::bindings::deployer);
    };
}

/// Exports a [`Traffic`] implementation as the component's `traffic-plugin`
/// world.
#[macro_export]
macro_rules! export_traffic {
    ($ty:ident) => {
        $crate::bindings::traffic::__export_traffic_world!($ty with_types_in $crate::bindings::traffic);
    };
}

/// Exports a [`Check`] implementation as the component's `check-plugin`
/// world.
#[macro_export]
macro_rules! export_check {
    ($ty:ident) => {
        $crate::bindings::check::__export_check_world!($ty with_types_in $crate::bindings::check);
    };
}

/// Exports a [`RollbackPolicy`] implementation as the component's
/// `rollback-policy-plugin` world.
#[macro_export]
macro_rules! export_rollback_policy {
    ($ty:ident) => {
        $crate::bindings::policy::__export_policy_world!($ty with_types_in $crate::bindings::policy);
    };
}

/// Exports a [`Notifier`] implementation as the component's
/// `notifier-plugin` world.
#[macro_export]
macro_rules! export_notifier {
    ($ty:ident) => {
        $crate::bindings::notifier::__export_notifier_world!($ty with_types_in $crate::bindings::notifier);
    };
}
