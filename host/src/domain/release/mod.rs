//! Releases: a flow compiled against an environment's targets into a fixed
//! program of steps, and the state machine that walks it (see [`machine`]).
//!
//! The serde derives here define the release journal's stored form; the API
//! has its own types.

pub mod answers;
mod command;
pub mod event;
pub mod evidence;
pub mod machine;
mod next;
pub mod policy;
pub mod replay;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::flow::{Flow, FlowError, OnExpiry, PluginUse, StageKind, Strategy, Unhealthy};
use super::plan::{PlannedStep, plan};
use super::plugin::{Artifact, ReleaseContext, Target};

pub use command::{Actor, Command, CommandError};
pub use event::{ApprovalRecord, DecisionRecord, Event, ProgressOf, RollbackMode, Status};
pub use machine::{State, TransitionError};
pub use next::{Action, Work, WorkOutcome};

/// A plugin a step calls, pinned to an exact version when the release starts
/// so that a resumed release calls what it started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    pub plugin: String,
    pub version: String,
    pub params: Vec<(String, String)>,
    /// For a check whose flow says `evidence = "optional"`: a round in
    /// which it measured nothing may pass (see [`evidence`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_optional: bool,
    /// For a check whose flow says `shadow = true`: its verdicts are
    /// journaled and shown but never decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

impl PluginRef {
    /// `name@version`, as shown in records.
    pub fn label(&self) -> String {
        format!("{}@{}", self.plugin, self.version)
    }
}

/// An approval gate as the release sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub roles: Vec<String>,
    pub approvers: u32,
    pub starter_may_approve: bool,
    pub expires_after_ms: Option<u64>,
    pub on_expiry: Expiry,
    /// Shown at the gate; absent in specs of releases started before a
    /// flow could say them.
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub links: Vec<crate::domain::flow::Link>,
}

/// What an expired gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expiry {
    Reject,
    Rollback,
    KeepWaiting,
}

/// The verdict policy of a stage: a plugin, or the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub checks: Vec<PluginRef>,
    /// Decides instead of the default policy when set.
    pub policy: Option<PluginRef>,
    /// Failed verdicts tolerated in a stage before rolling back.
    pub failure_limit: u32,
    /// Consecutive errors of one check tolerated before rolling back.
    pub error_limit: u32,
    /// How long to wait before checking again after an error.
    pub retry_ms: u64,
}

/// One stage of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub kind: String,
    pub reversible: bool,
    pub deployer: Option<PluginRef>,
    pub traffic: Option<PluginRef>,
    pub verification: Verification,
    pub gate: Option<Gate>,
    /// For blue-green: the group serving traffic before the release, and the
    /// idle group that receives the new version.
    pub live_group: Option<String>,
    pub idle_group: Option<String>,
    /// A check run on each target of a batch before the batch deploys.
    #[serde(default)]
    pub health_check: Option<PluginRef>,
    /// Whether a target found unhealthy is skipped (or the release pauses).
    #[serde(default)]
    pub skip_unhealthy: bool,
    /// How long a deploy, rollback or traffic shift may stay in progress
    /// after the plugin first answered that it is.
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline_ms: u64,
}

fn default_progress_deadline() -> u64 {
    crate::domain::flow::DEFAULT_PROGRESS_DEADLINE_MS
}

/// One step of a release's program. Targets are indices into the release's
/// target list, which keeps a ten-thousand-target program small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// One precheck plugin; anything but a pass stops the release.
    Precheck { stage: usize, plugin: PluginRef },
    /// Deploy the version to one batch.
    Deploy {
        stage: usize,
        batch: u32,
        targets: Vec<u32>,
    },
    /// Check rounds over targets: one at once, then one per interval until
    /// the bake period is over (a bake of zero is a single round).
    Verify {
        stage: usize,
        batch: Option<u32>,
        targets: Vec<u32>,
        bake_ms: u64,
        interval_ms: u64,
    },
    /// Send `percent` of the traffic to the stage's idle group.
    Shift { stage: usize, percent: u8 },
    /// Wait for approvers.
    Approval { stage: usize },
}

impl Step {
    pub fn stage(&self) -> usize {
        match self {
            Step::Precheck { stage, .. }
            | Step::Deploy { stage, .. }
            | Step::Verify { stage, .. }
            | Step::Shift { stage, .. }
            | Step::Approval { stage } => *stage,
        }
    }

    pub fn batch(&self) -> Option<u32> {
        match self {
            Step::Deploy { batch, .. } => Some(*batch),
            Step::Verify { batch, .. } => *batch,
            _ => None,
        }
    }

    /// The step's kind as the API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Precheck { .. } => "precheck",
            Step::Deploy { .. } => "deploy",
            Step::Verify { .. } => "verify",
            Step::Shift { .. } => "shift",
            Step::Approval { .. } => "approval",
        }
    }
}

/// A batch as people number it: a stage's first batch is batch 1, as the UI
/// shows it. Stored indices, the API and plugins count from 0; only text
/// meant for people uses this.
pub fn batch_number(index: u32) -> u32 {
    index.saturating_add(1)
}

/// Everything fixed about a release when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSpec {
    pub id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub flow: String,
    pub flow_version: u32,
    pub started_by: String,
    pub emergency: bool,
    pub created_ms: u64,
    /// The train the release belongs to, if any.
    #[serde(default)]
    pub train: Option<String>,
    pub targets: Vec<Target>,
    pub artifacts: Vec<Artifact>,
    pub stages: Vec<StageSpec>,
    pub steps: Vec<Step>,
    /// Notifier plugins told of the release's events, and which events.
    #[serde(default)]
    pub notify: Vec<PluginRef>,
    #[serde(default)]
    pub notify_on: Vec<String>,
}

impl ReleaseSpec {
    /// The targets a step names, less those skipped as unhealthy.
    pub fn targets_except(
        &self,
        indices: &[u32],
        skipped: &std::collections::BTreeSet<u32>,
    ) -> Vec<Target> {
        indices
            .iter()
            .filter(|i| !skipped.contains(i))
            .filter_map(|i| self.targets.get(*i as usize).cloned())
            .collect()
    }

    /// The targets a step names.
    pub fn targets_of(&self, indices: &[u32]) -> Vec<Target> {
        indices
            .iter()
            .filter_map(|i| self.targets.get(*i as usize).cloned())
            .collect()
    }

    /// What a plugin is told when called for step `pc`.
    pub fn context(
        &self,
        stage: usize,
        batch: Option<u32>,
        attempt: u32,
        plugin: &PluginRef,
    ) -> ReleaseContext {
        ReleaseContext {
            release_id: self.id.clone(),
            application: self.application.clone(),
            environment: self.environment.clone(),
            version: self.version.clone(),
            previous_version: self.previous_version.clone(),
            stage: self
                .stages
                .get(stage)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            batch,
            attempt,
            parameters: plugin.params.clone(),
            deployed_at_ms: None,
        }
    }

    /// The group serving traffic once the release has succeeded.
    pub fn final_live_group(&self) -> Option<String> {
        self.stages.iter().rev().find_map(|s| s.idle_group.clone())
    }
}

/// What a release is asked to be when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub started_by: String,
    pub emergency: bool,
    pub created_ms: u64,
    pub artifacts: Vec<Artifact>,
    pub train: Option<String>,
}

/// Default consecutive errors of one check before a rollback.
pub const DEFAULT_ERROR_LIMIT: u32 = 4;
/// Default wait before checking again after a check errored.
pub const DEFAULT_RETRY_MS: u64 = 10_000;

/// Compiles `flow` over an environment's targets into a release program.
/// `resolve` pins each plugin use to an exact version.
pub fn compile(
    flow: &Flow,
    start: Start,
    targets: Vec<Target>,
    live_group: Option<&str>,
    resolve: &dyn Fn(&PluginUse) -> Result<String, String>,
) -> Result<ReleaseSpec, FlowError> {
    let planned = plan(flow, &targets, live_group)?;
    let index: BTreeMap<&str, u32> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i as u32))
        .collect();
    let indices = |ids: &[String]| -> Vec<u32> {
        ids.iter()
            .filter_map(|id| index.get(id.as_str()).copied())
            .collect()
    };
    let pin = |at: String, u: &PluginUse| -> Result<PluginRef, FlowError> {
        let version = resolve(u).map_err(|problem| FlowError::missing(at, problem))?;
        Ok(PluginRef {
            plugin: u.plugin.clone(),
            version,
            params: u.params.clone(),
            evidence_optional: u.evidence_optional,
            shadow: u.shadow,
        })
    };
    let pin_all = |at: &str, uses: &[PluginUse]| -> Result<Vec<PluginRef>, FlowError> {
        uses.iter()
            .enumerate()
            .map(|(j, u)| pin(format!("{at}[{j}]"), u))
            .collect()
    };
    let emergency = start.emergency;
    let mut stages = Vec::with_capacity(flow.stages.len());
    let mut steps = Vec::new();
    for (i, (stage, planned)) in flow.stages.iter().zip(&planned.stages).enumerate() {
        let at = |field: &str| format!("stages[{i}].{field}");
        let mut spec = StageSpec {
            name: stage.name.clone(),
            kind: stage.kind.name().to_string(),
            reversible: stage.reversible,
            deployer: None,
            traffic: None,
            verification: Verification {
                checks: Vec::new(),
                policy: None,
                failure_limit: stage.limits.failure_limit,
                error_limit: stage.limits.error_limit,
                retry_ms: stage.limits.retry_after_ms.unwrap_or(DEFAULT_RETRY_MS),
            },
            gate: None,
            live_group: None,
            idle_group: None,
            health_check: None,
            skip_unhealthy: false,
            progress_deadline_ms: default_progress_deadline(),
        };
        match (&stage.kind, &planned.step) {
            (StageKind::Precheck { plugins }, _) => {
                for (j, p) in plugins.iter().enumerate() {
                    steps.push(Step::Precheck {
                        stage: i,
                        plugin: pin(at(&format!("plugins[{j}]")), p)?,
                    });
                }
            }
            (StageKind::Verify { checks }, _) => {
                spec.verification.checks = pin_all(&at("checks"), checks)?;
                steps.push(Step::Verify {
                    stage: i,
                    batch: None,
                    targets: (0..targets.len() as u32).collect(),
                    bake_ms: 0,
                    interval_ms: 0,
                });
            }
            (StageKind::Approval(a), _) => {
                spec.gate = Some(Gate {
                    roles: a.roles.clone(),
                    approvers: a.approvers,
                    starter_may_approve: a.starter_may_approve,
                    expires_after_ms: a.expires_after_ms,
                    on_expiry: match a.on_expiry {
                        OnExpiry::Reject => Expiry::Reject,
                        OnExpiry::Rollback => Expiry::Rollback,
                        OnExpiry::KeepWaiting => Expiry::KeepWaiting,
                    },
                    instructions: a.instructions.clone(),
                    links: a.links.clone(),
                });
                steps.push(Step::Approval { stage: i });
            }
            (StageKind::Deploy(deploy), step) => {
                spec.deployer = Some(pin(at("deployer"), &deploy.deployer)?);
                spec.verification.checks = pin_all(&at("checks"), &deploy.checks)?;
                spec.verification.policy = deploy
                    .policy
                    .as_ref()
                    .map(|p| pin(at("policy"), p))
                    .transpose()?;
                spec.health_check = deploy
                    .health_check
                    .as_ref()
                    .map(|p| pin(at("health_check"), p))
                    .transpose()?;
                spec.skip_unhealthy = deploy.unhealthy == Unhealthy::Skip;
                spec.progress_deadline_ms = deploy
                    .progress_deadline_ms
                    .unwrap_or_else(default_progress_deadline);
                // Emergency releases skip bake periods, never verification.
                let bake = |ms: u64| if emergency { 0 } else { ms };
                match (&deploy.strategy, step) {
                    (
                        Strategy::Canary {
                            check_interval_ms, ..
                        },
                        PlannedStep::Deploy {
                            batches, bake_ms, ..
                        },
                    ) => {
                        if stage.limits.retry_after_ms.is_none() {
                            spec.verification.retry_ms = (*check_interval_ms).max(1);
                        }
                        for (b, batch) in batches.iter().enumerate() {
                            let targets = indices(&batch.targets);
                            steps.push(Step::Deploy {
                                stage: i,
                                batch: b as u32,
                                targets: targets.clone(),
                            });
                            steps.push(Step::Verify {
                                stage: i,
                                batch: Some(b as u32),
                                targets,
                                bake_ms: bake(*bake_ms),
                                interval_ms: *check_interval_ms,
                            });
                        }
                    }
                    (Strategy::Rolling { .. }, PlannedStep::Deploy { batches, .. }) => {
                        for (b, batch) in batches.iter().enumerate() {
                            let targets = indices(&batch.targets);
                            steps.push(Step::Deploy {
                                stage: i,
                                batch: b as u32,
                                targets: targets.clone(),
                            });
                            steps.push(Step::Verify {
                                stage: i,
                                batch: Some(b as u32),
                                targets,
                                bake_ms: 0,
                                interval_ms: 0,
                            });
                        }
                    }
                    (
                        Strategy::BlueGreen { traffic, .. },
                        PlannedStep::BlueGreen {
                            idle_group,
                            live_group,
                            targets: idle,
                            steps: percents,
                            bake_per_step_ms,
                            ..
                        },
                    ) => {
                        spec.traffic = Some(pin(at("traffic"), traffic)?);
                        spec.live_group = Some(live_group.clone());
                        spec.idle_group = Some(idle_group.clone());
                        let idle = indices(idle);
                        steps.push(Step::Deploy {
                            stage: i,
                            batch: 0,
                            targets: idle.clone(),
                        });
                        steps.push(Step::Verify {
                            stage: i,
                            batch: Some(0),
                            targets: idle.clone(),
                            bake_ms: 0,
                            interval_ms: 0,
                        });
                        for percent in percents {
                            steps.push(Step::Shift {
                                stage: i,
                                percent: *percent,
                            });
                            steps.push(Step::Verify {
                                stage: i,
                                batch: None,
                                targets: idle.clone(),
                                bake_ms: bake(*bake_per_step_ms),
                                interval_ms: *bake_per_step_ms,
                            });
                        }
                    }
                    _ => {
                        return Err(FlowError::worded(
                            at("strategy"),
                            "the plan does not match the strategy",
                        ));
                    }
                }
            }
        }
        stages.push(spec);
    }
    Ok(ReleaseSpec {
        id: start.id,
        application: start.application,
        environment: start.environment,
        version: start.version,
        previous_version: start.previous_version,
        flow: flow.name.clone(),
        flow_version: flow.version,
        started_by: start.started_by,
        emergency,
        created_ms: start.created_ms,
        train: start.train,
        targets,
        artifacts: start.artifacts,
        stages,
        steps,
        notify: pin_all("notify", &flow.notify)?,
        notify_on: flow.notify_on.clone(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
