//! One trait per plugin world, in plain Rust, and the glue that makes every
//! implementation of one the generated `Guest` of its world.

use crate::bindings::{check, deployer, notifier, policy, precheck, traffic};
use crate::error::Error;
use crate::types::{
    Artifact, Decision, GroupWeight, Observation, PluginError, PrecheckResult, ReleaseContext,
    ReleaseEvent, Shift, Target, Verdict, Work,
};

/// A plugin that gates a release before anything is deployed.
pub trait Precheck {
    /// Examines the release and its artifacts. An `Err` becomes an `error`
    /// verdict, which stops the release.
    fn run(ctx: &ReleaseContext, artifacts: &[Artifact]) -> Result<PrecheckResult, Error>;
}

/// A plugin that deploys versions to targets and rolls them back.
///
/// # Work that takes longer than one call
///
/// A deploy that cannot finish within one call (a Kubernetes rollout that
/// takes minutes, say) starts the work and answers
/// [`Work::in_progress`] with a note and when to ask again. The host then
/// asks again, with the same idempotency key, after that time (which it
/// keeps between 100 ms and 60 s), and keeps asking until the answer is
/// [`Work::Done`] or the stage's progress deadline passes.
///
/// So a deployer is idempotent per key: the first call with a key starts
/// the work; every later call with that key looks at the work already
/// started and reports on it, and never starts it again. The same key
/// also comes back after a crash of the daemon, in the middle of the work
/// or after it; a deployer finds where the work stands in what it is
/// deploying to (or in its key-value store) and answers from there.
///
/// A deployer whose work always fits in one call just returns
/// `Ok(results.into())`.
///
/// ```no_run
/// use std::time::Duration;
///
/// use greenlight_plugin_sdk::{
///     Deployer, Error, ReleaseContext, Target, TargetResult, Work, kv,
/// };
///
/// struct Rollout;
///
/// impl Rollout {
///     /// Starts or reports on the rollout of `version` under `key`.
///     fn work(targets: &[Target], key: &str, version: &str) -> Result<Work, Error> {
///         if kv::get(key)?.is_none() {
///             // The first call with this key starts the work. Starting must
///             // itself be harmless to repeat (applying the same manifest),
///             // for a crash may come before the key is recorded.
///             start(targets, version)?;
///             kv::set(key, b"started")?;
///         }
///         // Every call, the first included, reports how far it has come.
///         let (ready, total) = replicas_ready(targets, version)?;
///         if ready < total {
///             let note = format!("{ready} of {total} replicas ready on {version}");
///             return Ok(Work::in_progress(note, Duration::from_secs(5)));
///         }
///         let results: Vec<TargetResult> = targets
///             .iter()
///             .map(|t| TargetResult::ok(t, format!("runs {version}")))
///             .collect();
///         Ok(results.into())
///     }
/// }
///
/// impl Deployer for Rollout {
///     fn deploy(ctx: &ReleaseContext, targets: &[Target], key: &str) -> Result<Work, Error> {
///         Rollout::work(targets, key, &ctx.version)
///     }
///
///     fn rollback(ctx: &ReleaseContext, targets: &[Target], key: &str) -> Result<Work, Error> {
///         let previous = ctx
///             .previous_version
///             .as_deref()
///             .ok_or_else(|| Error::new("there is no previous version to roll back to"))?;
///         Rollout::work(targets, key, previous)
///     }
/// }
/// # fn start(_: &[Target], _: &str) -> Result<(), Error> { Ok(()) }
/// # fn replicas_ready(_: &[Target], _: &str) -> Result<(u32, u32), Error> { Ok((0, 0)) }
///
/// greenlight_plugin_sdk::export_deployer!(Rollout);
/// ```
pub trait Deployer {
    /// Deploys `ctx.version` to the targets, or reports how far the deploy
    /// started under `idempotency_key` has come. The key is the same every
    /// time the host asks about the same batch attempt: again after
    /// [`Work::InProgress`], or after a crash. An `Err` becomes a
    /// `plugin-error`.
    fn deploy(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error>;

    /// Puts `ctx.previous_version` back on the targets, or reports how far
    /// the rollback started under `idempotency_key` has come. The key and
    /// [`Work::InProgress`] behave as for [`Deployer::deploy`].
    fn rollback(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error>;
}

/// A plugin that shifts traffic between groups of targets.
///
/// A shift that a load balancer takes time to apply answers
/// [`Shift::in_progress`] with a note and when to ask again; the host asks
/// again with the same weights after that time (kept between 100 ms and
/// 60 s) until the answer is [`Shift::Done`] or the stage's progress
/// deadline passes. Setting the same weights again must therefore be
/// harmless: a later call reports on the shift under way rather than
/// starting another.
pub trait Traffic {
    /// Sets the weights of the groups (they add up to 100), or reports how
    /// far setting these same weights has come. An `Err` becomes a
    /// `plugin-error`.
    fn set_weights(ctx: &ReleaseContext, weights: &[GroupWeight]) -> Result<Shift, Error>;

    /// Reads the weights in force now.
    fn current_weights(ctx: &ReleaseContext) -> Result<Vec<GroupWeight>, Error>;
}

/// A plugin that verifies a stage, a batch or a bake period.
pub trait Check {
    /// Examines the targets. An `Err` becomes an `error` verdict.
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error>;
}

/// A plugin that decides between proceeding, pausing and rolling back.
pub trait RollbackPolicy {
    /// Decides from every observation so far, oldest first. An `Err`
    /// pauses the release with the error as the reason, so that a
    /// misconfigured policy never lets a release carry on unseen.
    fn decide(ctx: &ReleaseContext, observations: &[Observation]) -> Result<Decision, Error>;
}

/// A plugin that is told of release events.
pub trait Notifier {
    /// Delivers one event.
    fn notify(ctx: &ReleaseContext, event: &ReleaseEvent) -> Result<(), Error>;
}

impl<T: Precheck> precheck::exports::greenlight::plugin0_2_0::precheck::Guest for T {
    fn run(ctx: ReleaseContext, artifacts: Vec<Artifact>) -> PrecheckResult {
        <T as Precheck>::run(&ctx, &artifacts).unwrap_or_else(|e| PrecheckResult {
            verdict: Verdict::error(e.to_string()),
            forward_only: false,
        })
    }
}

impl<T: Deployer> deployer::exports::greenlight::plugin0_2_0::deployer::Guest for T {
    fn deploy(
        ctx: ReleaseContext,
        targets: Vec<Target>,
        idempotency_key: String,
    ) -> Result<Work, PluginError> {
        <T as Deployer>::deploy(&ctx, &targets, &idempotency_key).map_err(Into::into)
    }

    fn rollback(
        ctx: ReleaseContext,
        targets: Vec<Target>,
        idempotency_key: String,
    ) -> Result<Work, PluginError> {
        <T as Deployer>::rollback(&ctx, &targets, &idempotency_key).map_err(Into::into)
    }
}

impl<T: Traffic> traffic::exports::greenlight::plugin0_2_0::traffic::Guest for T {
    fn set_weights(ctx: ReleaseContext, weights: Vec<GroupWeight>) -> Result<Shift, PluginError> {
        <T as Traffic>::set_weights(&ctx, &weights).map_err(Into::into)
    }

    fn current_weights(ctx: ReleaseContext) -> Result<Vec<GroupWeight>, PluginError> {
        <T as Traffic>::current_weights(&ctx).map_err(Into::into)
    }
}

impl<T: Check> check::exports::greenlight::plugin0_2_0::check::Guest for T {
    fn verify(ctx: ReleaseContext, targets: Vec<Target>) -> Verdict {
        <T as Check>::verify(&ctx, &targets).unwrap_or_else(|e| Verdict::error(e.to_string()))
    }
}

impl<T: RollbackPolicy> policy::exports::greenlight::plugin0_2_0::rollback_policy::Guest for T {
    fn decide(ctx: ReleaseContext, observations: Vec<Observation>) -> Decision {
        <T as RollbackPolicy>::decide(&ctx, &observations)
            .unwrap_or_else(|e| Decision::pause(format!("the policy could not decide: {e}")))
    }
}

impl<T: Notifier> notifier::exports::greenlight::plugin0_2_0::notifier::Guest for T {
    fn notify(ctx: ReleaseContext, event: ReleaseEvent) -> Result<(), PluginError> {
        <T as Notifier>::notify(&ctx, &event).map_err(Into::into)
    }
}
