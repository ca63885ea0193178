//! The flow file format (TOML) and its translation into a validated
//! [`Flow`], with every error naming the field path at fault.
//!
//! TOML because flows are written by hand and reviewed in pull requests:
//! it has no implicit typing surprises (`no` stays a string), comments, and
//! the same format as the daemon's configuration.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::flow::{
    Approval, BatchSize, DEFAULT_NOTIFY_ON, Deploy, EVENT_NAMES, Flow, FlowError, Link, OnExpiry,
    PluginUse, Stage, StageKind, Strategy, Unhealthy, VerdictLimits, WhenBusy, parse_duration_ms,
};
use crate::domain::name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    name: String,
    version: u32,
    #[serde(default)]
    description: String,
    #[serde(default)]
    when_busy: Option<String>,
    #[serde(default)]
    stages: Vec<RawStage>,
    /// Notifier plugins told of the release's events.
    #[serde(default)]
    notify: Option<Vec<RawPlugin>>,
    /// Which events; the notable ones by default.
    #[serde(default)]
    notify_on: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    plugin: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    /// For a check: `required` (the default) or `optional`. Read as any
    /// value so that a wrong one is reported with its field path.
    #[serde(default)]
    evidence: Option<toml::Value>,
    /// For a check: `true` to run it without letting it decide.
    #[serde(default)]
    shadow: Option<toml::Value>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum RawBatch {
    Count(i64),
    Text(String),
}

/// A link an approval stage shows its approvers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    title: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Option<String>,
    kind: Option<String>,
    reversible: Option<bool>,
    plugins: Option<Vec<RawPlugin>>,
    deployer: Option<RawPlugin>,
    strategy: Option<String>,
    count: Option<u32>,
    bake: Option<String>,
    check_interval: Option<String>,
    batch: Option<RawBatch>,
    steps: Option<Vec<u8>>,
    bake_per_step: Option<String>,
    traffic: Option<RawPlugin>,
    checks: Option<Vec<RawPlugin>>,
    policy: Option<RawPlugin>,
    roles: Option<Vec<String>>,
    approvers: Option<u32>,
    starter_may_approve: Option<bool>,
    expires_after: Option<String>,
    on_expiry: Option<String>,
    instructions: Option<String>,
    links: Option<Vec<RawLink>>,
    failure_limit: Option<u32>,
    error_limit: Option<u32>,
    retry_after: Option<String>,
    health_check: Option<RawPlugin>,
    unhealthy: Option<String>,
    progress_deadline: Option<String>,
}

impl RawStage {
    /// The fields that are set, by name, to refuse those a kind does not use.
    fn set_fields(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut add = |name, present: bool| {
            if present {
                set.push(name);
            }
        };
        add("plugins", self.plugins.is_some());
        add("deployer", self.deployer.is_some());
        add("strategy", self.strategy.is_some());
        add("count", self.count.is_some());
        add("bake", self.bake.is_some());
        add("check_interval", self.check_interval.is_some());
        add("batch", self.batch.is_some());
        add("steps", self.steps.is_some());
        add("bake_per_step", self.bake_per_step.is_some());
        add("traffic", self.traffic.is_some());
        add("checks", self.checks.is_some());
        add("policy", self.policy.is_some());
        add("roles", self.roles.is_some());
        add("approvers", self.approvers.is_some());
        add("starter_may_approve", self.starter_may_approve.is_some());
        add("expires_after", self.expires_after.is_some());
        add("on_expiry", self.on_expiry.is_some());
        add("instructions", self.instructions.is_some());
        add("links", self.links.is_some());
        add("failure_limit", self.failure_limit.is_some());
        add("error_limit", self.error_limit.is_some());
        add("retry_after", self.retry_after.is_some());
        add("health_check", self.health_check.is_some());
        add("unhealthy", self.unhealthy.is_some());
        add("progress_deadline", self.progress_deadline.is_some());
        set
    }
}

/// Collects errors while translating, so a file reports all its problems.
struct Errors(Vec<FlowError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FlowError::new(path, problem));
    }

    /// Keeps the problem of a check, if it found one.
    fn note(&mut self, checked: Result<(), FlowError>) {
        self.0.extend(checked.err());
    }

    fn required<T: Clone>(&mut self, value: &Option<T>, path: String, what: &str) -> Option<T> {
        if value.is_none() {
            self.push(path, format!("is required for {what}"));
        }
        value.clone()
    }

    fn duration(&mut self, value: &Option<String>, path: String) -> Option<u64> {
        let text = value.as_ref()?;
        match parse_duration_ms(text) {
            Ok(ms) => Some(ms),
            Err(problem) => {
                self.push(path, problem);
                None
            }
        }
    }
}

/// The shortest and longest progress deadline a stage may set.
const MIN_PROGRESS_DEADLINE_MS: u64 = 1_000;
const MAX_PROGRESS_DEADLINE_MS: u64 = 24 * 3_600_000;

fn param_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plugin other than a stage's checks, which has no say about evidence
/// and cannot be a shadow.
fn plugin_use(raw: &RawPlugin, path: &str, errors: &mut Errors) -> PluginUse {
    for (field, set) in [
        ("evidence", raw.evidence.is_some()),
        ("shadow", raw.shadow.is_some()),
    ] {
        if set {
            errors.push(
                format!("{path}.{field}"),
                "applies only to a stage's checks",
            );
        }
    }
    any_plugin(raw, path, errors)
}

fn any_plugin(raw: &RawPlugin, path: &str, errors: &mut Errors) -> PluginUse {
    errors.note(name::check_name(format!("{path}.plugin"), &raw.plugin));
    PluginUse {
        plugin: raw.plugin.clone(),
        version: raw.version.clone().unwrap_or_else(|| "latest".into()),
        params: raw
            .params
            .iter()
            .map(|(k, v)| (k.clone(), param_text(v)))
            .collect(),
        evidence_optional: false,
        shadow: false,
    }
}

/// One of a stage's checks, which may say that a round in which it
/// measured nothing may pass (`evidence = "optional"`), or that it only
/// runs in the shadow (`shadow = true`).
fn check_use(raw: &RawPlugin, path: &str, errors: &mut Errors) -> PluginUse {
    let mut check = any_plugin(raw, path, errors);
    check.evidence_optional = match raw.evidence.as_ref().map(param_text).as_deref() {
        None | Some("required") => false,
        Some("optional") => true,
        Some(other) => {
            errors.push(
                format!("{path}.evidence"),
                format!("`{other}` is not `required` or `optional`"),
            );
            false
        }
    };
    check.shadow = match &raw.shadow {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            errors.push(
                format!("{path}.shadow"),
                format!("`{}` is not true or false", param_text(other)),
            );
            false
        }
    };
    check
}

fn plugin_list(raw: &Option<Vec<RawPlugin>>, path: &str, errors: &mut Errors) -> Vec<PluginUse> {
    raw.iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| plugin_use(p, &format!("{path}[{i}]"), errors))
        .collect()
}

fn check_list(raw: &Option<Vec<RawPlugin>>, path: &str, errors: &mut Errors) -> Vec<PluginUse> {
    raw.iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| check_use(p, &format!("{path}[{i}]"), errors))
        .collect()
}

/// Reads a flow file, naming every problem with its field path.
pub fn parse(text: &str) -> Result<Flow, Vec<FlowError>> {
    let raw: RawFlow = toml::from_str(text).map_err(|e| {
        let path = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("line {line}")
            })
            .unwrap_or_default();
        vec![FlowError::new(path, e.message().trim().to_string())]
    })?;
    let mut errors = Errors(Vec::new());
    errors.note(name::check_name("name", &raw.name));
    errors.note(name::check_text(
        "description",
        &raw.description,
        name::MAX_TEXT_LEN,
    ));
    if raw.version == 0 {
        errors.push("version", "must be 1 or more");
    }
    let when_busy = match raw.when_busy.as_deref() {
        None | Some("refuse") => WhenBusy::Refuse,
        Some("queue") => WhenBusy::Queue,
        Some(other) => {
            errors.push("when_busy", format!("`{other}` is not `refuse` or `queue`"));
            WhenBusy::Refuse
        }
    };
    let stages = raw
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| stage(s, i, &mut errors))
        .collect();
    let notify = plugin_list(&raw.notify, "notify", &mut errors);
    let notify_on = match &raw.notify_on {
        None => DEFAULT_NOTIFY_ON.iter().map(|e| e.to_string()).collect(),
        Some(events) => {
            for (i, event) in events.iter().enumerate() {
                if !EVENT_NAMES.contains(&event.as_str()) {
                    errors.push(
                        format!("notify_on[{i}]"),
                        format!(
                            "`{event}` is not a release event ({})",
                            EVENT_NAMES.join(", ")
                        ),
                    );
                }
            }
            events.clone()
        }
    };
    let flow = Flow {
        name: raw.name,
        version: raw.version,
        description: raw.description,
        when_busy,
        stages,
        notify,
        notify_on,
    };
    if let Err(more) = flow.validate() {
        errors.0.extend(more);
    }
    if errors.0.is_empty() {
        Ok(flow)
    } else {
        Err(errors.0)
    }
}

/// The most text an approval stage's instructions may hold.
const MAX_INSTRUCTIONS: usize = 4_000;

/// The most links an approval stage may show.
const MAX_LINKS: usize = 10;

fn approval_instructions(raw: &Option<String>, at: &str, errors: &mut Errors) -> Option<String> {
    let text = raw.as_ref()?.trim();
    if text.is_empty() {
        errors.push(
            at.to_string(),
            "is empty: leave it out, or say what approvers check",
        );
        return None;
    }
    if text.chars().count() > MAX_INSTRUCTIONS {
        errors.push(
            at.to_string(),
            format!("is longer than {MAX_INSTRUCTIONS} characters; link to a runbook instead"),
        );
        return None;
    }
    Some(text.to_string())
}

fn approval_links(raw: &Option<Vec<RawLink>>, at: &str, errors: &mut Errors) -> Vec<Link> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.len() > MAX_LINKS {
        errors.push(
            at.to_string(),
            format!("has {} links; at most {MAX_LINKS}", raw.len()),
        );
        return Vec::new();
    }
    let mut links = Vec::new();
    for (i, link) in raw.iter().enumerate() {
        let title = link.title.as_deref().map(str::trim).unwrap_or_default();
        let url = link.url.as_deref().map(str::trim).unwrap_or_default();
        if title.is_empty() {
            errors.push(
                format!("{at}[{i}].title"),
                "is required: the words approvers click",
            );
        }
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !web || url.len() > 2_000 || url.chars().any(char::is_whitespace) {
            errors.push(
                format!("{at}[{i}].url"),
                format!("`{url}` is not an http(s) URL"),
            );
        }
        if !title.is_empty() && web {
            links.push(Link {
                title: title.to_string(),
                url: url.to_string(),
            });
        }
    }
    links
}

/// The fields each stage kind (and deploy strategy) may set.
fn allowed_fields(kind: &str, strategy: Option<&str>) -> &'static [&'static str] {
    match (kind, strategy) {
        ("precheck", _) => &["plugins"],
        ("verify", _) => &["checks", "failure_limit", "error_limit", "retry_after"],
        ("approval", _) => &[
            "roles",
            "approvers",
            "starter_may_approve",
            "expires_after",
            "on_expiry",
            "instructions",
            "links",
        ],
        ("deploy", Some("canary")) => &[
            "deployer",
            "strategy",
            "count",
            "bake",
            "check_interval",
            "checks",
            "policy",
            "failure_limit",
            "error_limit",
            "retry_after",
            "health_check",
            "unhealthy",
            "progress_deadline",
        ],
        ("deploy", Some("rolling")) => &[
            "deployer",
            "strategy",
            "batch",
            "checks",
            "policy",
            "failure_limit",
            "error_limit",
            "retry_after",
            "health_check",
            "unhealthy",
            "progress_deadline",
        ],
        ("deploy", Some("blue-green")) => &[
            "deployer",
            "strategy",
            "steps",
            "bake_per_step",
            "traffic",
            "checks",
            "policy",
            "failure_limit",
            "error_limit",
            "retry_after",
            "health_check",
            "unhealthy",
            "progress_deadline",
        ],
        _ => &["deployer", "strategy", "checks", "policy"],
    }
}

fn stage(raw: &RawStage, i: usize, errors: &mut Errors) -> Option<Stage> {
    let at = |field: &str| format!("stages[{i}].{field}");
    let name = match &raw.name {
        Some(n) => {
            errors.note(name::check_name(at("name"), n));
            n.clone()
        }
        None => {
            errors.push(at("name"), "is required");
            String::new()
        }
    };
    let Some(kind) = raw.kind.as_deref() else {
        errors.push(
            at("kind"),
            "is required: precheck, deploy, approval or verify",
        );
        return None;
    };
    for field in raw.set_fields() {
        if !allowed_fields(kind, raw.strategy.as_deref()).contains(&field) {
            let what = match (kind, raw.strategy.as_deref()) {
                ("deploy", Some(s)) => format!("{s} deploy stages"),
                _ => format!("{kind} stages"),
            };
            errors.push(at(field), format!("does not apply to {what}"));
        }
    }
    let stage_kind = match kind {
        "precheck" => StageKind::Precheck {
            plugins: plugin_list(&raw.plugins, &at("plugins"), errors),
        },
        "verify" => StageKind::Verify {
            checks: check_list(&raw.checks, &at("checks"), errors),
        },
        "approval" => StageKind::Approval(Approval {
            roles: raw
                .roles
                .clone()
                .unwrap_or_else(|| vec!["release-manager".into()]),
            approvers: raw.approvers.unwrap_or(1),
            starter_may_approve: raw.starter_may_approve.unwrap_or(false),
            expires_after_ms: errors.duration(&raw.expires_after, at("expires_after")),
            on_expiry: match raw.on_expiry.as_deref() {
                None | Some("reject") => OnExpiry::Reject,
                Some("rollback") => OnExpiry::Rollback,
                Some("wait") => OnExpiry::KeepWaiting,
                Some(other) => {
                    errors.push(
                        at("on_expiry"),
                        format!("`{other}` is not `reject`, `rollback` or `wait`"),
                    );
                    OnExpiry::Reject
                }
            },
            instructions: approval_instructions(&raw.instructions, &at("instructions"), errors),
            links: approval_links(&raw.links, &at("links"), errors),
        }),
        "deploy" => {
            let deployer = errors.required(&raw.deployer, at("deployer"), "deploy stages");
            let deployer = deployer.map(|d| plugin_use(&d, &at("deployer"), errors));
            let strategy = deploy_strategy(raw, i, errors);
            let checks = check_list(&raw.checks, &at("checks"), errors);
            let policy = raw
                .policy
                .as_ref()
                .map(|p| plugin_use(p, &at("policy"), errors));
            let health_check = raw
                .health_check
                .as_ref()
                .map(|p| plugin_use(p, &at("health_check"), errors));
            let unhealthy = match raw.unhealthy.as_deref() {
                None | Some("block") => Unhealthy::Block,
                Some("skip") => Unhealthy::Skip,
                Some(other) => {
                    errors.push(
                        at("unhealthy"),
                        format!("`{other}` is not `skip` or `block`"),
                    );
                    Unhealthy::Block
                }
            };
            if raw.unhealthy.is_some() && raw.health_check.is_none() {
                errors.push(
                    at("unhealthy"),
                    "needs a health_check to find unhealthy targets",
                );
            }
            let progress_deadline_ms =
                errors.duration(&raw.progress_deadline, at("progress_deadline"));
            if let Some(ms) = progress_deadline_ms
                && !(MIN_PROGRESS_DEADLINE_MS..=MAX_PROGRESS_DEADLINE_MS).contains(&ms)
            {
                errors.push(at("progress_deadline"), "must be between 1s and 24h");
            }
            StageKind::Deploy(Box::new(Deploy {
                deployer: deployer?,
                strategy: strategy?,
                checks,
                policy,
                health_check,
                unhealthy,
                progress_deadline_ms,
            }))
        }
        other => {
            errors.push(
                at("kind"),
                format!("`{other}` is not a stage kind: precheck, deploy, approval or verify"),
            );
            return None;
        }
    };
    let defaults = VerdictLimits::default();
    let limits = VerdictLimits {
        failure_limit: raw.failure_limit.unwrap_or(defaults.failure_limit),
        error_limit: raw.error_limit.unwrap_or(defaults.error_limit),
        retry_after_ms: errors.duration(&raw.retry_after, at("retry_after")),
    };
    Some(Stage {
        name,
        kind: stage_kind,
        reversible: raw.reversible.unwrap_or(true),
        limits,
    })
}

fn deploy_strategy(raw: &RawStage, i: usize, errors: &mut Errors) -> Option<Strategy> {
    let at = |field: &str| format!("stages[{i}].{field}");
    match raw.strategy.as_deref() {
        Some("canary") => {
            let count = raw.count.unwrap_or(1);
            if count == 0 {
                errors.push(at("count"), "a canary needs at least one target");
            }
            Some(Strategy::Canary {
                count,
                bake_ms: errors.duration(&raw.bake, at("bake")).unwrap_or(0),
                check_interval_ms: errors
                    .duration(&raw.check_interval, at("check_interval"))
                    .unwrap_or(60_000),
            })
        }
        Some("rolling") => {
            let batch = errors.required(&raw.batch, at("batch"), "rolling deploys")?;
            let parsed = match batch {
                RawBatch::Count(n) => u32::try_from(n)
                    .map_err(|_| format!("`{n}` is not a batch size"))
                    .and_then(|n| BatchSize::parse(&n.to_string())),
                RawBatch::Text(t) => BatchSize::parse(&t),
            };
            match parsed {
                Ok(batch) => Some(Strategy::Rolling { batch }),
                Err(problem) => {
                    errors.push(at("batch"), problem);
                    None
                }
            }
        }
        Some("blue-green") => {
            let steps = raw.steps.clone().unwrap_or_else(|| vec![10, 50, 100]);
            let traffic = errors.required(&raw.traffic, at("traffic"), "blue-green deploys")?;
            Some(Strategy::BlueGreen {
                steps,
                bake_per_step_ms: errors
                    .duration(&raw.bake_per_step, at("bake_per_step"))
                    .unwrap_or(0),
                traffic: plugin_use(&traffic, &at("traffic"), errors),
            })
        }
        Some(other) => {
            errors.push(
                at("strategy"),
                format!("`{other}` is not a strategy: canary, rolling or blue-green"),
            );
            None
        }
        None => {
            errors.push(
                at("strategy"),
                "is required for deploy stages: canary, rolling or blue-green",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `tests/flows` states what applying it must give on its
    /// first line: `# expect: ok`, or `# expect: ` and text the error contains.
    #[test]
    fn flow_files_give_their_expected_outcome() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            seen += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()))
                .trim();
            match (parse(&text), expect) {
                (Ok(_), "ok") => {}
                (Ok(_), _) => panic!("{}: accepted, expected `{expect}`", path.display()),
                (Err(errors), _) => {
                    let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                    assert!(
                        expect != "ok" && all.iter().any(|e| e.contains(expect)),
                        "{}: expected `{expect}`, got {all:?}",
                        path.display()
                    );
                }
            }
        }
        assert!(
            seen >= 10,
            "only {seen} flow files found in {}",
            dir.display()
        );
    }

    #[test]
    fn the_standard_flow_reads_as_written() {
        let text = include_str!("../../tests/flows/standard.toml");
        let flow = parse(text).unwrap();
        assert_eq!((flow.name.as_str(), flow.version), ("standard", 1));
        assert_eq!(flow.stages.len(), 4);
        let StageKind::Deploy(deploy) = &flow.stages[3].kind else {
            panic!("stage 3 is a deploy stage");
        };
        assert_eq!(
            &deploy.strategy,
            &Strategy::Rolling {
                batch: BatchSize::Percent(25)
            }
        );
        let StageKind::Approval(gate) = &flow.stages[2].kind else {
            panic!("stage 2 is an approval");
        };
        assert_eq!(gate.expires_after_ms, Some(86_400_000));
        assert_eq!(gate.on_expiry, OnExpiry::Rollback);
        assert!(!gate.starter_may_approve);
        assert!(gate.instructions.as_deref().unwrap().starts_with("Compare"));
        assert_eq!(gate.links[0].title, "Shop dashboard");
        let StageKind::Precheck { plugins } = &flow.stages[0].kind else {
            panic!("stage 0 is a precheck");
        };
        assert_eq!(
            plugins[0].params,
            vec![("max_rows".to_string(), "1000".to_string())]
        );
        assert_eq!(plugins[0].version, "latest");
    }

    #[test]
    fn a_check_may_be_allowed_to_measure_nothing() {
        let text = include_str!("../../tests/flows/evidence-optional.toml");
        let StageKind::Deploy(deploy) = &parse(text).unwrap().stages[0].kind else {
            panic!("stage 0 is a deploy stage");
        };
        let optional: Vec<bool> = deploy.checks.iter().map(|c| c.evidence_optional).collect();
        assert_eq!(optional, [false, true]);

        let bad = |evidence: &str| {
            let text = format!(
                "name = \"f\"\nversion = 1\n[[stages]]\nname = \"v\"\nkind = \"verify\"\n\
                 checks = [{{ plugin = \"health\" }}, {{ plugin = \"health\", evidence = {evidence} }}]\n\
                 [[stages]]\nname = \"p\"\nkind = \"precheck\"\n\
                 plugins = [{{ plugin = \"lint\", evidence = \"optional\" }}]\n"
            );
            let errors = parse(&text).unwrap_err();
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            bad("\"maybe\""),
            [
                "stages[0].checks[1].evidence: `maybe` is not `required` or `optional`",
                "stages[1].plugins[0].evidence: applies only to a stage's checks",
            ]
        );
        assert_eq!(
            bad("true")[0],
            "stages[0].checks[1].evidence: `true` is not `required` or `optional`"
        );
    }

    #[test]
    fn a_check_may_run_in_the_shadow() {
        let text = "name = \"f\"\nversion = 1\n[[stages]]\nname = \"v\"\nkind = \"verify\"\n\
                    checks = [{ plugin = \"health\" }, { plugin = \"judge\", shadow = true }]\n";
        let StageKind::Verify { checks } = &parse(text).unwrap().stages[0].kind else {
            panic!("stage 0 is a verify stage");
        };
        let shadow: Vec<bool> = checks.iter().map(|c| c.shadow).collect();
        assert_eq!(shadow, [false, true]);

        let text = "name = \"f\"\nversion = 1\n[[stages]]\nname = \"v\"\nkind = \"verify\"\n\
                    checks = [{ plugin = \"judge\", shadow = \"yes\" }]\n\
                    [[stages]]\nname = \"d\"\nkind = \"deploy\"\nstrategy = \"rolling\"\nbatch = 1\n\
                    deployer = { plugin = \"agent\", shadow = true }\n";
        let errors: Vec<String> = parse(text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "stages[0].checks[0].shadow: `yes` is not true or false",
                "stages[1].deployer.shadow: applies only to a stage's checks",
            ]
        );
    }

    #[test]
    fn several_problems_are_reported_together() {
        let text = "name = \"\"\nversion = 0\n[[stages]]\nkind = \"verify\"\nchecks = []\n";
        let errors = parse(text).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["name", "version", "stages[0].name", "stages[0].checks"]
        );
    }
}
