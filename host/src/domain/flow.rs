//! Flows: the named, versioned playbooks a release follows, and the rules a
//! flow must obey before it may be applied.

use std::collections::BTreeSet;
use std::fmt;

/// A problem in a flow, with the path of the field at fault
/// (`stages[2].batch`), and which kind of rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub path: String,
    pub problem: String,
    pub rule: Rule,
}

/// The kind of rule a problem breaks. The API answers each kind with its
/// own status, so a client (or a fuzzer reading the OpenAPI document) can
/// tell a malformed request from a well-formed one the daemon refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A thing the request names does not exist (no flow `web`).
    Missing,
    /// A rule only words can state: a cron expression that parses, the end
    /// of a window after its start, target ids used once.
    Worded,
    /// A rule a schema states: a name's pattern, a length, a field that is
    /// needed.
    Stated,
}

impl FlowError {
    /// A problem with a rule a schema states.
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> FlowError {
        FlowError {
            path: path.into(),
            problem: problem.into(),
            rule: Rule::Stated,
        }
    }

    /// A problem with a rule only words can state.
    pub fn worded(path: impl Into<String>, problem: impl Into<String>) -> FlowError {
        FlowError {
            rule: Rule::Worded,
            ..FlowError::new(path, problem)
        }
    }

    /// A thing the request names that does not exist.
    pub fn missing(path: impl Into<String>, problem: impl Into<String>) -> FlowError {
        FlowError {
            rule: Rule::Missing,
            ..FlowError::new(path, problem)
        }
    }
}

/// The kind of rule that decides how a list of problems is answered: a
/// stated rule broken anywhere makes the request malformed, else a worded
/// rule makes it refused, else only missing things are named.
pub fn strictest(errors: &[FlowError]) -> Rule {
    errors.iter().map(|e| e.rule).max().unwrap_or(Rule::Stated)
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// Every error, in order, as one line.
pub fn join_errors(errors: &[FlowError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plugin a stage uses, with the parameters the stage gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUse {
    pub plugin: String,
    /// An exact version, or `latest`.
    pub version: String,
    pub params: Vec<(String, String)>,
    /// For a check: whether the flow lets a round in which it measured
    /// nothing (`no-data` or `error`) pass without a human, as
    /// `evidence = "optional"` says. Checks need evidence by default.
    pub evidence_optional: bool,
    /// For a check: it runs and its verdicts are journaled and shown, but
    /// never decide (`shadow = true`), to try an analysis out.
    pub shadow: bool,
}

/// How many targets a rolling batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Count(u32),
    Percent(u8),
}

/// The largest share of an environment one batch may take.
pub const MAX_BATCH_PERCENT: u8 = 50;

impl BatchSize {
    /// Parses `3` (a count) or `25%` (a share of the targets).
    pub fn parse(text: &str) -> Result<BatchSize, String> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            let p: u8 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{text}` is not a percentage from 1% to 50%"))?;
            if p == 0 || p > MAX_BATCH_PERCENT {
                return Err(format!(
                    "{p}% is not allowed: a batch takes from 1% to {MAX_BATCH_PERCENT}% of the targets"
                ));
            }
            return Ok(BatchSize::Percent(p));
        }
        match text.parse::<u32>() {
            Ok(0) | Err(_) => Err(format!(
                "`{text}` is not a batch size: use a count such as 2 or a share such as 25%"
            )),
            Ok(n) => Ok(BatchSize::Count(n)),
        }
    }

    /// The number of targets in each batch for an environment of `total`
    /// targets, or why the size is too large for it.
    pub fn per_batch(self, total: usize) -> Result<usize, String> {
        let max = (total * MAX_BATCH_PERCENT as usize / 100).max(1);
        match self {
            BatchSize::Percent(p) => Ok((total * p as usize).div_ceil(100).clamp(1, max)),
            BatchSize::Count(n) if n as usize > max => Err(format!(
                "a batch of {n} is more than {MAX_BATCH_PERCENT}% of the {total} targets (at most {max})"
            )),
            BatchSize::Count(n) => Ok(n as usize),
        }
    }
}

/// What happens when an approval gate expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    Reject,
    Rollback,
    KeepWaiting,
}

/// An approval gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Roles allowed to approve; any one suffices.
    pub roles: Vec<String>,
    /// How many distinct approvers are needed.
    pub approvers: u32,
    /// Whether the release's starter may be one of them.
    pub starter_may_approve: bool,
    pub expires_after_ms: Option<u64>,
    pub on_expiry: OnExpiry,
    /// What approvers should check, shown at the gate.
    pub instructions: Option<String>,
    /// Dashboards, runbooks and the like, shown at the gate.
    pub links: Vec<Link>,
}

/// A link shown at an approval gate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// How a deploy stage rolls a version out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// A few targets first, then a bake period during which checks run.
    Canary {
        count: u32,
        bake_ms: u64,
        check_interval_ms: u64,
    },
    /// The rest in batches, each drained, deployed, verified and enabled.
    Rolling { batch: BatchSize },
    /// Deploy the idle group, then shift traffic to it in steps.
    BlueGreen {
        steps: Vec<u8>,
        bake_per_step_ms: u64,
        traffic: PluginUse,
    },
}

/// What a target found unhealthy before its batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// The batch goes on without it; it is recorded.
    Skip,
    /// The release pauses before the batch for a human.
    Block,
}

/// A deploy stage: the version goes out with a strategy, verified by the
/// checks after every batch, with the policy deciding what a verdict means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub deployer: PluginUse,
    pub strategy: Strategy,
    pub checks: Vec<PluginUse>,
    pub policy: Option<PluginUse>,
    /// A check run on each target of a batch before the batch deploys.
    pub health_check: Option<PluginUse>,
    pub unhealthy: Unhealthy,
    /// How long a deploy, a rollback or a traffic shift of the stage may
    /// stay in progress after the plugin first answered that it is
    /// (default [`DEFAULT_PROGRESS_DEADLINE_MS`]).
    pub progress_deadline_ms: Option<u64>,
}

/// How long work may stay in progress when a stage does not say: ten
/// minutes, as Kubernetes allows a rollout by default.
pub const DEFAULT_PROGRESS_DEADLINE_MS: u64 = 600_000;

/// How the default verdict policy counts in a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictLimits {
    /// Failed verdicts tolerated before rolling back (default 0).
    pub failure_limit: u32,
    /// Consecutive errors of one check tolerated before rolling back
    /// (default 4).
    pub error_limit: u32,
    /// How long to wait before checking again after an error.
    pub retry_after_ms: Option<u64>,
}

impl Default for VerdictLimits {
    fn default() -> VerdictLimits {
        VerdictLimits {
            failure_limit: 0,
            error_limit: 4,
            retry_after_ms: None,
        }
    }
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageKind {
    /// Plugins that must all pass before anything is deployed.
    Precheck { plugins: Vec<PluginUse> },
    /// Deploy the version with a strategy, verifying after every batch.
    Deploy(Box<Deploy>),
    /// Wait for humans.
    Approval(Approval),
    /// Run checks against the whole environment.
    Verify { checks: Vec<PluginUse> },
}

impl StageKind {
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Precheck { .. } => "precheck",
            StageKind::Deploy { .. } => "deploy",
            StageKind::Approval(_) => "approval",
            StageKind::Verify { .. } => "verify",
        }
    }
}

/// One stage of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
    /// Whether the stage can be undone; automatic rollback stops before a
    /// stage that cannot and asks a human.
    pub reversible: bool,
    /// How the default policy counts verdicts in deploy and verify stages.
    pub limits: VerdictLimits,
}

/// What a second start for a busy application and environment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    Refuse,
    Queue,
}

/// The release events notifiers are told of unless a flow says otherwise:
/// the ones a person acts on, not every batch.
pub const DEFAULT_NOTIFY_ON: &[&str] = &[
    "started",
    "gate-opened",
    "approved",
    "rejected",
    "gate-expired",
    "paused",
    "resumed",
    "rollback-started",
    "blocked",
    "finished",
];

/// Every event name a flow may ask notifiers to be told of: the name of
/// every `Event` variant, which a test in `release/event.rs` checks.
pub const EVENT_NAMES: &[&str] = &[
    "started",
    "precheck-done",
    "targets-checked",
    "deploy-started",
    "deployed",
    "deploy-failed",
    "progressed",
    "bake-started",
    "verified",
    "decided",
    "traffic-shifted",
    "traffic-failed",
    "gate-opened",
    "gate-skipped",
    "approved",
    "rejected",
    "gate-expired",
    "paused",
    "resumed",
    "rollback-started",
    "traffic-restored",
    "rollback-batch-started",
    "rolled-back-batch",
    "rollback-failed",
    "rollback-verified",
    "blocked",
    "finished",
];

/// A validated flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub name: String,
    pub version: u32,
    pub description: String,
    pub when_busy: WhenBusy,
    pub stages: Vec<Stage>,
    /// Notifier plugins told of the release's events.
    pub notify: Vec<PluginUse>,
    /// The events they are told of.
    pub notify_on: Vec<String>,
}

impl Flow {
    /// Every plugin the flow uses, with where it is used, for checking that
    /// they exist and are of the right kind.
    pub fn plugin_uses(&self) -> Vec<(String, PluginRole, &PluginUse)> {
        let mut uses = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let at = |field: &str| format!("stages[{i}].{field}");
            match &stage.kind {
                StageKind::Precheck { plugins } => {
                    for (j, p) in plugins.iter().enumerate() {
                        uses.push((at(&format!("plugins[{j}]")), PluginRole::Precheck, p));
                    }
                }
                StageKind::Deploy(deploy) => {
                    uses.push((at("deployer"), PluginRole::Deployer, &deploy.deployer));
                    if let Strategy::BlueGreen { traffic, .. } = &deploy.strategy {
                        uses.push((at("traffic"), PluginRole::Traffic, traffic));
                    }
                    for (j, p) in deploy.checks.iter().enumerate() {
                        uses.push((at(&format!("checks[{j}]")), PluginRole::Check, p));
                    }
                    if let Some(p) = &deploy.health_check {
                        uses.push((at("health_check"), PluginRole::Check, p));
                    }
                    if let Some(p) = &deploy.policy {
                        uses.push((at("policy"), PluginRole::RollbackPolicy, p));
                    }
                }
                StageKind::Verify { checks } => {
                    for (j, p) in checks.iter().enumerate() {
                        uses.push((at(&format!("checks[{j}]")), PluginRole::Check, p));
                    }
                }
                StageKind::Approval(_) => {}
            }
        }
        for (j, p) in self.notify.iter().enumerate() {
            uses.push((format!("notify[{j}]"), PluginRole::Notifier, p));
        }
        uses
    }

    /// Checks the rules no single field can: stage names are unique, the
    /// flow has stages, blue-green steps climb to 100.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut errors = Vec::new();
        if self.stages.is_empty() {
            errors.push(FlowError::new("stages", "a flow needs at least one stage"));
        }
        let mut seen = BTreeSet::new();
        for (i, stage) in self.stages.iter().enumerate() {
            if !seen.insert(stage.name.as_str()) {
                errors.push(FlowError::new(
                    format!("stages[{i}].name"),
                    format!("stage name `{}` is used twice", stage.name),
                ));
            }
            match &stage.kind {
                StageKind::Deploy(deploy) => {
                    if let Strategy::BlueGreen { steps, .. } = &deploy.strategy {
                        let climbing = steps.windows(2).all(|w| w[0] < w[1]);
                        if !climbing
                            || steps.first().is_none_or(|s| *s == 0)
                            || steps.last() != Some(&100)
                        {
                            errors.push(FlowError::new(
                                format!("stages[{i}].steps"),
                                "traffic steps must rise from above 0 to exactly 100, such as [1, 10, 50, 100]",
                            ));
                        }
                    }
                }
                StageKind::Approval(a) if a.approvers == 0 => errors.push(FlowError::new(
                    format!("stages[{i}].approvers"),
                    "an approval needs at least one approver",
                )),
                StageKind::Precheck { plugins } if plugins.is_empty() => {
                    errors.push(FlowError::new(
                        format!("stages[{i}].plugins"),
                        "a precheck stage needs at least one plugin",
                    ))
                }
                StageKind::Verify { checks } if checks.is_empty() => errors.push(FlowError::new(
                    format!("stages[{i}].checks"),
                    "a verify stage needs at least one check",
                )),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The kind of plugin a use in a flow requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginRole {
    Precheck,
    Deployer,
    Traffic,
    Check,
    RollbackPolicy,
    Notifier,
}

impl PluginRole {
    /// The plugin kind that can fill this role.
    pub fn kind(self) -> super::plugin::PluginKind {
        use super::plugin::PluginKind;
        match self {
            PluginRole::Precheck => PluginKind::Precheck,
            PluginRole::Deployer => PluginKind::Deployer,
            PluginRole::Traffic => PluginKind::Traffic,
            PluginRole::Check => PluginKind::Check,
            PluginRole::RollbackPolicy => PluginKind::RollbackPolicy,
            PluginRole::Notifier => PluginKind::Notifier,
        }
    }
}

/// Parses a duration such as `500ms`, `30s`, `10m`, `2h` or `1h30m`.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad =
        || format!("`{text}` is not a duration: use forms such as 500ms, 30s, 10m, 2h or 1h30m");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total = value
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        for bad in ["", "10", "m", "10x", "1.5h", "-3s", "99999999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batch_sizes_never_pass_half_the_fleet() {
        assert_eq!(BatchSize::parse("25%"), Ok(BatchSize::Percent(25)));
        assert_eq!(BatchSize::parse("3"), Ok(BatchSize::Count(3)));
        let err = BatchSize::parse("60%").unwrap_err();
        assert!(err.contains("60%"), "{err}");
        assert!(BatchSize::parse("0").is_err());
        assert!(BatchSize::parse("0%").is_err());
        assert_eq!(BatchSize::Percent(25).per_batch(10), Ok(3));
        assert_eq!(BatchSize::Percent(50).per_batch(3), Ok(1));
        assert_eq!(BatchSize::Percent(10).per_batch(1), Ok(1));
        assert_eq!(BatchSize::Count(2).per_batch(4), Ok(2));
        let err = BatchSize::Count(3).per_batch(4).unwrap_err();
        assert!(err.contains("more than 50% of the 4 targets"), "{err}");
    }
}
