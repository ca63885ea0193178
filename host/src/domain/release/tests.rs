//! The release state machine, driven through data-driven scenarios: each
//! file in `tests/releases/` gives a flow, a fleet, scripted plugin
//! outcomes and human commands, and the exact event sequence expected.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde::Deserialize;

use super::policy::CheckVerdict;
use super::{Action, Actor, Command, Event, RollbackMode, State, Work, WorkOutcome};
use super::{ReleaseSpec, Start, compile};
use crate::domain::plugin::{
    Decision, DecisionKind, PluginFault, PrecheckResult, Progress, Target, TargetResult, Verdict,
    VerdictStatus,
};
use crate::flowfile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    flow: String,
    targets: usize,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    live_group: Option<String>,
    #[serde(default)]
    emergency: bool,
    #[serde(default)]
    outcomes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    commands: Vec<ScriptedCommand>,
    expect: Vec<String>,
    status: String,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ScriptedCommand {
    /// Apply when the release waits in this status.
    #[serde(default)]
    when: Option<String>,
    /// Apply right after the first unused event of this name.
    #[serde(default)]
    after: Option<String>,
    #[serde(default = "default_actor")]
    by: String,
    #[serde(default = "default_role")]
    role: String,
    #[serde(rename = "do")]
    action: String,
    #[serde(default)]
    comment: String,
    /// The refusal code expected instead of an event.
    #[serde(default)]
    refused: Option<String>,
}

fn default_actor() -> String {
    "alice".into()
}

fn default_role() -> String {
    "release-manager".into()
}

const START_MS: u64 = 1_000_000;

fn fleet(n: usize, groups: &[String]) -> Vec<Target> {
    (0..n)
        .map(|i| Target {
            id: format!("t{i}"),
            address: format!("10.0.0.{i}:80"),
            group: if groups.is_empty() {
                String::new()
            } else {
                groups[i % groups.len()].clone()
            },
            labels: vec![],
            attributes: vec![],
        })
        .collect()
}

pub(crate) fn spec_for(
    flow_text: &str,
    targets: Vec<Target>,
    live: Option<&str>,
    emergency: bool,
) -> ReleaseSpec {
    let flow = flowfile::parse(flow_text).expect("scenario flow parses");
    compile(
        &flow,
        Start {
            id: "r1".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0".into(),
            previous_version: Some("1.0.0".into()),
            started_by: "sam".into(),
            emergency,
            created_ms: START_MS,
            artifacts: vec![],
            train: None,
        },
        targets,
        live,
        &|_| Ok("1.0.0".to_string()),
    )
    .expect("scenario flow compiles")
}

/// A small compiled release for store tests.
pub(crate) fn sample_spec(id: &str) -> ReleaseSpec {
    let mut spec = spec_for(
        include_str!("../../../../tests/flows/standard.toml"),
        fleet(4, &[]),
        None,
        false,
    );
    spec.id = id.to_string();
    spec
}

struct Outcomes(BTreeMap<String, VecDeque<String>>);

impl Outcomes {
    fn next(&mut self, kind: &str, default: &str) -> String {
        self.0
            .get_mut(kind)
            .and_then(|q| q.pop_front())
            .unwrap_or_else(|| default.to_string())
    }
}

fn verdict(status: &str) -> Verdict {
    Verdict {
        status: status.parse().expect("verdict status"),
        summary: format!("scripted {status}"),
        metrics: vec![],
    }
}

fn fault(outcome: &str) -> Option<PluginFault> {
    match outcome {
        "ok" | "fail" | "stranger" => None,
        "retry" => Some(PluginFault {
            message: "scripted transient fault".into(),
            retryable: true,
        }),
        _ => Some(PluginFault {
            message: "scripted fault".into(),
            retryable: false,
        }),
    }
}

/// `ok`, `fail` (the first target fails), `retry`, `fault`, or an answer
/// that does not fit the call: `stranger` (the first target answered for
/// under another id) or `empty` (no target answered for).
fn targets_outcome(outcome: String, targets: &[Target]) -> WorkOutcome {
    if let Some(progress) = scripted_progress(&outcome) {
        return progress;
    }
    if outcome == "empty" {
        return WorkOutcome::Targets(Ok(Vec::new()));
    }
    if let Some(f) = fault(&outcome) {
        return WorkOutcome::Targets(Err(f));
    }
    WorkOutcome::Targets(Ok(targets
        .iter()
        .enumerate()
        .map(|(i, t)| TargetResult {
            target_id: if outcome == "stranger" && i == 0 {
                "stranger".to_string()
            } else {
                t.id.clone()
            },
            ok: !(outcome == "fail" && i == 0),
            message: outcome.clone(),
        })
        .collect()))
}

/// `progress:NOTE`: the work is still under way, asked about again in a
/// second.
fn scripted_progress(outcome: &str) -> Option<WorkOutcome> {
    let note = outcome.strip_prefix("progress:")?;
    Some(WorkOutcome::InProgress(Progress {
        note: note.to_string(),
        ask_again_after_ms: 1_000,
    }))
}

fn perform(work: &Work, outcomes: &mut Outcomes) -> WorkOutcome {
    match work {
        Work::HealthCheck { targets, .. } => {
            // `ok`, or the id of the one unhealthy target.
            let sick = outcomes.next("health", "ok");
            WorkOutcome::TargetVerdicts(
                targets
                    .iter()
                    .map(|t| {
                        let status = if t.id == sick { "fail" } else { "pass" };
                        (t.id.clone(), verdict(status))
                    })
                    .collect(),
            )
        }
        Work::Precheck { .. } => {
            let o = outcomes.next("precheck", "pass");
            let (status, forward_only) = match o.as_str() {
                "forward-only" => ("pass", true),
                other => (other, false),
            };
            WorkOutcome::Precheck(Ok(PrecheckResult {
                verdict: verdict(status),
                forward_only,
            }))
        }
        Work::Deploy { targets, .. } => targets_outcome(outcomes.next("deploy", "ok"), targets),
        Work::Rollback { targets, .. } => targets_outcome(outcomes.next("rollback", "ok"), targets),
        Work::Verify { checks, .. } | Work::RollbackVerify { checks, .. } => {
            // Checks after a batch know when it was deployed (or rolled
            // back); a verify stage's checks are about no batch.
            for (c, ctx) in checks {
                assert_eq!(
                    ctx.deployed_at_ms.is_some(),
                    ctx.batch.is_some(),
                    "{}: batch {:?}, deployed at {:?}",
                    c.label(),
                    ctx.batch,
                    ctx.deployed_at_ms
                );
            }
            // `verify` scripts every check of a round; `verify.NAME` one
            // check by its plugin's name.
            let status = outcomes.next("verify", "pass");
            WorkOutcome::Verdicts(
                checks
                    .iter()
                    .map(|(c, _)| CheckVerdict {
                        check: c.label(),
                        verdict: verdict(&outcomes.next(&format!("verify.{}", c.plugin), &status)),
                        shadow: c.shadow,
                    })
                    .collect(),
            )
        }
        Work::Decide { .. } => {
            let kind = match outcomes.next("policy", "proceed").as_str() {
                "pause" => DecisionKind::Pause,
                "rollback" => DecisionKind::Rollback,
                _ => DecisionKind::Proceed,
            };
            WorkOutcome::Decision(Ok(Decision {
                kind,
                reason: "scripted decision".into(),
            }))
        }
        Work::Shift { .. } | Work::RestoreTraffic { .. } => {
            let o = outcomes.next("traffic", "ok");
            if let Some(progress) = scripted_progress(&o) {
                return progress;
            }
            WorkOutcome::Done(fault(&o).map_or(Ok(()), Err))
        }
    }
}

fn to_command(c: &ScriptedCommand) -> Command {
    match c.action.as_str() {
        "approve" => Command::Approve {
            comment: c.comment.clone(),
        },
        "reject" => Command::Reject {
            comment: c.comment.clone(),
        },
        "pause" => Command::Pause {
            reason: c.comment.clone(),
        },
        "resume" => Command::Resume,
        "rollback" | "rollback-force" | "rollback-emergency" => Command::Rollback {
            mode: if c.action == "rollback-emergency" {
                RollbackMode::Emergency
            } else {
                RollbackMode::Regular
            },
            force: c.action == "rollback-force",
            reason: c.comment.clone(),
        },
        other => panic!("unknown scripted command {other}"),
    }
}

/// How an event shows in expectations: its name, with the ruling of a
/// decision and the status of an ending.
pub(crate) fn label(event: &Event) -> String {
    match event {
        Event::Decided { decision, .. } => format!("decided:{}", decision.ruling.as_str()),
        Event::Finished { status, .. } => format!("finished:{}", status.as_str()),
        Event::Deployed { pc, .. } => format!("deployed:{pc}"),
        Event::Progressed { note, .. } => format!("progressed:{note}"),
        Event::RolledBackBatch { pcs, .. } => format!(
            "rolled-back:{}",
            pcs.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("+")
        ),
        other => other.name().to_string(),
    }
}

struct Run {
    events: Vec<Event>,
    state: State,
    /// Every state the release passed through, for the transition test.
    states: Vec<State>,
    refusals: Vec<String>,
}

fn run(
    spec: &ReleaseSpec,
    scenario_outcomes: &BTreeMap<String, Vec<String>>,
    commands: &[ScriptedCommand],
) -> Run {
    let mut outcomes = Outcomes(
        scenario_outcomes
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect(),
    );
    let mut commands: VecDeque<ScriptedCommand> = commands.iter().cloned().collect();
    let mut state = State::default();
    let mut now = START_MS;
    let mut events = Vec::new();
    let mut states = vec![state.clone()];
    let mut refusals = Vec::new();
    let apply =
        |state: &mut State, event: Event, events: &mut Vec<Event>, states: &mut Vec<State>| {
            state
                .apply(spec, &event)
                .unwrap_or_else(|e| panic!("{event:?} refused: {e}"));
            events.push(event);
            states.push(state.clone());
        };
    let command = |state: &mut State,
                   c: ScriptedCommand,
                   now: u64,
                   events: &mut Vec<Event>,
                   states: &mut Vec<State>,
                   refusals: &mut Vec<String>| {
        let actor = Actor {
            name: c.by.clone(),
            role: c.role.clone(),
            admin: c.role == "admin",
        };
        match (state.command(spec, &actor, to_command(&c), now), &c.refused) {
            (Ok(event), None) => apply(state, event, events, states),
            (Err(e), Some(code)) if e.code == code => refusals.push(e.code.to_string()),
            (result, expected) => panic!(
                "command {} gave {result:?}, expected refusal {expected:?}",
                c.action
            ),
        }
    };
    for _ in 0..10_000 {
        // Commands scripted to follow an event go first.
        if let Some(pos) = commands.iter().position(|c| {
            c.after.as_ref().is_some_and(|after| {
                events
                    .last()
                    .is_some_and(|e| label(e) == *after || e.name() == after)
            })
        }) {
            let c = commands.remove(pos).expect("position is valid");
            command(&mut state, c, now, &mut events, &mut states, &mut refusals);
            continue;
        }
        match state.next(spec, now) {
            Action::Done => break,
            Action::Record(event) => apply(&mut state, event, &mut events, &mut states),
            Action::Call(work) => {
                let outcome = perform(&work, &mut outcomes);
                for event in state.conclude(spec, &work, outcome, now) {
                    apply(&mut state, event, &mut events, &mut states);
                }
            }
            Action::Wait(until) => {
                let status = state.status().as_str();
                if let Some(pos) = commands
                    .iter()
                    .position(|c| c.when.as_deref() == Some(status))
                {
                    let c = commands.remove(pos).expect("position is valid");
                    command(&mut state, c, now, &mut events, &mut states, &mut refusals);
                    continue;
                }
                match until {
                    Some(at) => {
                        assert!(at > now, "waiting for a past instant {at} at {now}");
                        now = at;
                    }
                    None => break,
                }
            }
        }
    }
    assert!(
        commands.is_empty(),
        "scripted commands never applied: {:?}",
        commands.iter().map(|c| &c.action).collect::<Vec<_>>()
    );
    Run {
        events,
        state,
        states,
        refusals,
    }
}

fn scenarios() -> Vec<(String, Scenario)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/releases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("scenario readable");
            let scenario: Scenario =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                scenario,
            )
        })
        .collect()
}

fn spec_of(s: &Scenario) -> ReleaseSpec {
    spec_for(
        &s.flow,
        fleet(s.targets, &s.groups),
        s.live_group.as_deref(),
        s.emergency,
    )
}

#[test]
fn scenarios_produce_their_expected_events() {
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        let spec = spec_of(&scenario);
        let run = run(&spec, &scenario.outcomes, &scenario.commands);
        let got: Vec<String> = run.events.iter().map(label).collect();
        if got != scenario.expect || run.state.status().as_str() != scenario.status {
            failures.push(format!(
                "{name}:\n  expected {:?} ending {}\n  got      {:?} ending {} ({:?})",
                scenario.expect,
                scenario.status,
                got,
                run.state.status().as_str(),
                run.state.outcome
            ));
        }
        let _ = run.refusals;
        // Replaying the journal gives the same state: a restart loses nothing.
        let replayed = State::replay(&spec, &run.events).expect("journal replays");
        assert_eq!(replayed, run.state, "{name}: replay differs");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every event the machine can see, in every state any scenario reached:
/// applying it either fits or is refused with an error, never a panic, and
/// a refused event leaves the state as it was.
#[test]
fn impossible_transitions_are_errors() {
    for (name, scenario) in scenarios() {
        let spec = spec_of(&scenario);
        let run = run(&spec, &scenario.outcomes, &scenario.commands);
        let mut samples = run.events.clone();
        samples.push(Event::Finished {
            status: super::Status::Running,
            reason: String::new(),
            at_ms: 0,
        });
        for state in &run.states {
            for event in &samples {
                let mut probe = state.clone();
                if probe.apply(&spec, event).is_err() {
                    assert_eq!(
                        &probe, state,
                        "{name}: a refused {event:?} changed the state"
                    );
                }
            }
        }
    }
}

/// Every command a human may give, as an admin (who may give them all).
fn every_command() -> Vec<Command> {
    let mut all = vec![
        Command::Approve {
            comment: "ok".into(),
        },
        Command::Reject {
            comment: "no".into(),
        },
        Command::Pause {
            reason: "wait".into(),
        },
        Command::Resume,
        Command::Abandon {
            reason: "stuck".into(),
        },
    ];
    for mode in [RollbackMode::Regular, RollbackMode::Emergency] {
        for force in [false, true] {
            all.push(Command::Rollback {
                mode,
                force,
                reason: "undo".into(),
            });
        }
    }
    all
}

/// Whether commands alone can end the release from `state`: it has ended,
/// or abandoning it ends it. (Rolling back and rejecting end a release too,
/// but only once the engine has done the work they start.)
fn has_a_way_out(spec: &ReleaseSpec, state: &State, admin: &Actor) -> bool {
    if state.status().is_terminal() {
        return true;
    }
    let abandon = Command::Abandon {
        reason: "stuck".into(),
    };
    let Ok(event) = state.command(spec, admin, abandon, START_MS) else {
        return false;
    };
    let mut next = state.clone();
    next.apply(spec, &event).is_ok() && next.status().is_terminal()
}

/// Every release has a way out: from every state any scenario reached, some
/// human command ends it, and no command the machine accepts leads to a
/// state without one.
#[test]
fn every_reached_state_has_a_way_out_and_no_command_removes_it() {
    let admin = Actor {
        name: "ops".into(),
        role: "admin".into(),
        admin: true,
    };
    for (name, scenario) in scenarios() {
        let spec = spec_of(&scenario);
        let run = run(&spec, &scenario.outcomes, &scenario.commands);
        for state in &run.states {
            let status = state.status().as_str();
            assert!(
                has_a_way_out(&spec, state, &admin),
                "{name}: no way out of a {status} release"
            );
            for command in every_command() {
                let Ok(event) = state.command(&spec, &admin, command.clone(), START_MS) else {
                    continue;
                };
                let mut next = state.clone();
                next.apply(&spec, &event).unwrap_or_else(|e| {
                    panic!("{name}: {command:?} on a {status} release gave {event:?}, refused: {e}")
                });
                assert!(
                    has_a_way_out(&spec, &next, &admin),
                    "{name}: {command:?} on a {status} release leaves no way out"
                );
            }
        }
    }
}

#[test]
fn only_an_admin_abandons_and_only_an_unfinished_release() {
    let spec = sample_spec("r");
    let mut state = State::default();
    let abandon = || Command::Abandon {
        reason: "the deployer cannot undo a first release".into(),
    };
    let manager = Actor {
        name: "rita".into(),
        role: "release-manager".into(),
        admin: false,
    };
    let admin = Actor {
        name: "ops".into(),
        role: "admin".into(),
        admin: true,
    };
    let refused = state
        .command(&spec, &manager, abandon(), START_MS)
        .unwrap_err();
    assert_eq!(refused.code, "release.forbidden");
    let unexplained = Command::Abandon { reason: " ".into() };
    let refused = state
        .command(&spec, &admin, unexplained, START_MS)
        .unwrap_err();
    assert_eq!(refused.code, "release.comment_required");
    let event = state.command(&spec, &admin, abandon(), START_MS).unwrap();
    state.apply(&spec, &event).unwrap();
    assert_eq!(state.status().as_str(), "abandoned");
    let outcome = state.outcome.clone().unwrap_or_default();
    assert!(
        outcome.contains("ops abandoned") && outcome.contains("unknown"),
        "{outcome}"
    );
    let refused = state
        .command(&spec, &admin, abandon(), START_MS)
        .unwrap_err();
    assert_eq!(refused.code, "release.finished");
}

#[test]
fn a_refused_event_names_the_problem() {
    let spec = sample_spec("r");
    let mut state = State::default();
    let early = Event::Resumed {
        by: "x".into(),
        at_ms: 1,
    };
    let err = state.apply(&spec, &early).unwrap_err();
    assert!(err.0.contains("before the release started"), "{err}");
    state
        .apply(
            &spec,
            &Event::Started {
                by: "sam".into(),
                at_ms: 1,
            },
        )
        .unwrap();
    let err = state.apply(&spec, &early).unwrap_err();
    assert!(
        err.0.contains("cannot resume a release that is running"),
        "{err}"
    );
    let _ = VerdictStatus::Pass;
}

#[test]
fn reasons_number_batches_from_one_as_people_do() {
    let spec = sample_spec("r1");
    let batches: Vec<(usize, u32)> = spec
        .steps
        .iter()
        .enumerate()
        .filter(|(_, step)| matches!(step, super::Step::Deploy { .. }))
        .filter_map(|(pc, step)| Some((pc, step.batch()?)))
        .collect();
    // A canary of one target, then the rollout of the other three, one
    // at a time; stored indices count from 0 within each stage.
    let indices: Vec<u32> = batches.iter().map(|(_, b)| *b).collect();
    assert_eq!(indices, [0, 0, 1, 2]);
    let places: Vec<String> = batches
        .iter()
        .map(|(pc, _)| State::place(&spec, *pc))
        .collect();
    assert_eq!(
        places,
        [
            "at stage canary, batch 1",
            "at stage rollout, batch 1",
            "at stage rollout, batch 2",
            "at stage rollout, batch 3",
        ]
    );
    assert_eq!(super::batch_number(u32::MAX), u32::MAX);
}
