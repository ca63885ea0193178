//! How releases read on a terminal: the plan when one starts, the table of
//! releases, the summary of one (its checks' evidence from `evidence`), and
//! one line per event.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::api::event_model::CheckVerdictDto;
use crate::api::model::TargetResultDto;
use crate::api::release_model::{
    EventDetailDto, EventDto, ReleaseDto, ReleaseSummaryDto, StageDto, StepDto, WeightDto,
};
use crate::domain::release::batch_number;

/// How many decisions `show` prints.
const LATEST_DECISIONS: usize = 5;
/// Above this many steps a stage is shown as counts and its current step.
const STEPS_SHOWN: usize = 12;
/// Target ids named on one line before the rest are counted.
const TARGETS_NAMED: usize = 3;
/// Batch sizes listed in a plan before they are given as a range.
const BATCHES_LISTED: usize = 6;

/// `2027-01-15 08:00:00 UTC`.
pub fn date_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02} {} UTC", time_of_day(ms))
}

/// `08:00:00`, in UTC.
pub fn time_of_day(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `45s`, `12m`, `3h`, `2d`: how long ago, in the largest whole unit.
pub fn age(since_ms: u64, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(since_ms) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The releases table of `release list`.
pub fn release_table(releases: &[ReleaseSummaryDto], now_ms: u64) -> String {
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.application.clone(),
                r.environment.clone(),
                r.version.clone(),
                r.status.clone(),
                r.started_by.clone(),
                age(r.created_ms, now_ms),
            ]
        })
        .collect();
    table(
        &["ID", "APP", "ENV", "VERSION", "STATUS", "STARTED BY", "AGE"],
        &rows,
    )
}

/// `web-1, web-2, web-3 and 7 more`.
fn target_list(ids: &[String]) -> String {
    let mut out = ids
        .iter()
        .take(TARGETS_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > TARGETS_NAMED {
        let _ = write!(out, " and {} more", ids.len() - TARGETS_NAMED);
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `of 2 targets`, `of 1, 2, 2 targets`, or `of 1 to 3 targets` when
/// there are too many batches to list.
fn batch_sizes(sizes: &[usize]) -> String {
    let (Some(min), Some(max)) = (sizes.iter().min(), sizes.iter().max()) else {
        return String::new();
    };
    let unit = if *max == 1 { "target" } else { "targets" };
    if min == max {
        format!("of {min} {unit}")
    } else if sizes.len() <= BATCHES_LISTED {
        let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
        format!("of {} {unit}", list.join(", "))
    } else {
        format!("of {min} to {max} {unit}")
    }
}

/// What a stage will do, in a few words.
fn stage_plan(stage: &StageDto) -> String {
    let of = |kind: &'static str| stage.steps.iter().filter(move |s| s.kind == kind);
    match stage.kind.as_str() {
        "precheck" => plural(of("precheck").count(), "precheck", "prechecks"),
        "approval" => "approval gate".to_string(),
        "verify" => {
            let targets = of("verify").next().map_or(0, |s| s.targets.len());
            format!("checks on {}", plural(targets, "target", "targets"))
        }
        _ => {
            let sizes: Vec<usize> = of("deploy").map(|s| s.targets.len()).collect();
            let shifts: Vec<String> = of("shift")
                .filter_map(|s| s.percent.map(|p| format!("{p}%")))
                .collect();
            let mut out = format!(
                "{} {}",
                plural(sizes.len(), "batch", "batches"),
                batch_sizes(&sizes)
            );
            if !shifts.is_empty() {
                let _ = write!(out, ", traffic {}", shifts.join(" → "));
            }
            out
        }
    }
}

/// The planned stages of a release that has just started.
pub fn plan(r: &ReleaseDto) -> String {
    let rows: Vec<Vec<String>> = r
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                format!("{}.", i + 1),
                s.name.clone(),
                s.kind.clone(),
                stage_plan(s),
            ]
        })
        .collect();
    let mut out = format!(
        "Started release {}: {}/{} {} with {}@{}{}\n",
        r.id,
        r.application,
        r.environment,
        r.version,
        r.flow,
        r.flow_version,
        if r.emergency { " (emergency)" } else { "" }
    );
    for line in table(&["", "STAGE", "KIND", "PLAN"], &rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = write!(out, "Follow it with `greenlight release watch {}`.", r.id);
    out
}

/// ` batch N` for a step of a batch, numbered from 1 as people count
/// (the API counts from 0); nothing for other steps.
pub fn batch_suffix(batch: Option<u32>) -> String {
    batch
        .map(|b| format!(" batch {}", batch_number(b)))
        .unwrap_or_default()
}

fn step_line(step: &StepDto) -> String {
    let mut out = format!("{:<12} {:<9}", step.state, step.kind);
    out.push_str(&batch_suffix(step.batch));
    if let Some(percent) = step.percent {
        let _ = write!(out, " {percent}% of the traffic");
    }
    if !step.targets.is_empty() {
        let _ = write!(out, "  {}", target_list(&step.targets));
    }
    out.trim_end().to_string()
}

fn counts<'a>(states: impl Iterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in states {
        match counts.iter_mut().find(|(name, _)| *name == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary of `release show`.
pub fn summary(r: &ReleaseDto) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Release {}", r.id);
    let replacing = match &r.previous_version {
        Some(v) => format!("replacing {v}"),
        None => "no version recorded before".to_string(),
    };
    let _ = writeln!(
        w,
        "  {}/{} {} ({replacing}), flow {}@{}",
        r.application, r.environment, r.version, r.flow, r.flow_version
    );
    let _ = writeln!(
        w,
        "  started by {} at {}",
        r.started_by,
        date_time(r.created_ms)
    );
    let _ = writeln!(w, "  status:  {}", r.status);
    if let Some(outcome) = &r.outcome {
        let _ = writeln!(w, "  outcome: {outcome}");
    }
    if let Some(at) = r.finished_ms {
        let _ = writeln!(w, "  finished at {}", date_time(at));
    }
    if r.emergency {
        let _ = writeln!(
            w,
            "  emergency: bake periods and approval gates are skipped"
        );
    }
    if r.forward_only {
        let _ = writeln!(
            w,
            "  forward only: a precheck found a step that cannot be undone"
        );
    }
    if let Some(until) = r.bake_until_ms {
        let _ = writeln!(w, "  baking until {}", date_time(until));
    }

    let _ = writeln!(w, "\nStages");
    for (i, stage) in r.stages.iter().enumerate() {
        let note = if stage.reversible {
            ""
        } else {
            ", cannot be undone"
        };
        let _ = writeln!(w, "  {}. {} ({}{note})", i + 1, stage.name, stage.kind);
        if let Some(unverified) = &stage.unverified {
            let _ = writeln!(w, "       {unverified}");
        }
        if stage.steps.len() > STEPS_SHOWN {
            let _ = writeln!(
                w,
                "       {} steps: {}",
                stage.steps.len(),
                counts(stage.steps.iter().map(|s| s.state.as_str()))
            );
            for step in stage.steps.iter().filter(|s| is_place(&s.state)) {
                let _ = writeln!(w, "       {}", step_line(step));
            }
        } else {
            for step in &stage.steps {
                let _ = writeln!(w, "       {}", step_line(step));
            }
        }
    }

    if let Some(gate) = &r.gate {
        let _ = writeln!(w, "\nGate {}", gate.stage);
        let _ = writeln!(
            w,
            "  {} of {} approvals{}",
            gate.approvals.iter().filter(|a| a.approved).count(),
            gate.approvers_needed,
            if gate.roles.is_empty() {
                String::new()
            } else {
                format!(" from {}", gate.roles.join(" or "))
            }
        );
        let _ = writeln!(w, "  opened at {}", date_time(gate.opened_ms));
        match (gate.expires_at_ms, gate.expired) {
            (_, true) => {
                let _ = writeln!(w, "  expired");
            }
            (Some(at), false) => {
                let _ = writeln!(w, "  expires at {}", date_time(at));
            }
            (None, false) => {}
        }
    }
    if !r.approvals.is_empty() {
        let _ = writeln!(w, "\nApprovals");
        for a in &r.approvals {
            let what = if a.approved { "approved" } else { "rejected" };
            let comment = if a.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", a.comment)
            };
            let _ = writeln!(
                w,
                "  {} {what} {} at {}{comment}",
                a.by,
                a.stage,
                date_time(a.at_ms)
            );
        }
    }
    if let Some(p) = &r.pause {
        let reason = if p.reason.is_empty() {
            "no reason given"
        } else {
            &p.reason
        };
        let _ = writeln!(
            w,
            "\nPaused by {} at {}: {reason}",
            p.by,
            date_time(p.at_ms)
        );
    }
    if let Some(rb) = &r.rollback {
        let force = if rb.force { ", forced" } else { "" };
        // A human's rollback names them in its reason already.
        let by = if rb.reason.starts_with(&rb.by) {
            String::new()
        } else {
            format!(" by {}", rb.by)
        };
        let _ = writeln!(w, "\nRollback ({}{force}){by}: {}", rb.mode, rb.reason);
    }
    if let Some(p) = &r.progress {
        let _ = writeln!(
            w,
            "\nIn progress since {}: {}\n  reported at {}; progress deadline {}",
            date_time(p.since_ms),
            p.note,
            date_time(p.updated_ms),
            date_time(p.deadline_ms)
        );
    }
    if let Some(weights) = &r.weights {
        let ws: Vec<String> = weights
            .iter()
            .map(|g| format!("{} {}%", g.group, g.percent))
            .collect();
        let _ = writeln!(w, "\nTraffic: {}", ws.join(", "));
    }
    w.push_str(&super::evidence::section(r));
    if !r.decisions.is_empty() {
        let shown = r.decisions.len().min(LATEST_DECISIONS);
        let _ = writeln!(w, "\nDecisions (latest {shown} of {})", r.decisions.len());
        for d in &r.decisions[r.decisions.len() - shown..] {
            let batch = batch_suffix(d.batch);
            // A policy plugin's own reason may not say what it stood on.
            let unverified = match &d.unverified {
                Some(note) if !d.reason.contains("verified by nothing") => format!(" ({note})"),
                _ => String::new(),
            };
            let _ = writeln!(
                w,
                "  {}  {:<8} {}{batch}, round {}, by {}: {}{unverified}",
                time_of_day(d.at_ms),
                d.ruling,
                d.stage,
                d.round,
                d.by,
                d.reason
            );
        }
    }
    let _ = write!(
        w,
        "\nTargets ({}): {}",
        r.targets.len(),
        counts(r.targets.iter().map(|t| t.state.as_str()))
    );
    out
}

/// Step names by index (`canary batch 1`), to say where an event happened.
#[derive(Debug, Default)]
pub struct Places {
    steps: BTreeMap<u64, String>,
}

impl Places {
    pub fn new(r: &ReleaseDto) -> Places {
        let mut steps = BTreeMap::new();
        for stage in &r.stages {
            for step in &stage.steps {
                let name = format!("{}{}", stage.name, batch_suffix(step.batch));
                steps.insert(step.index as u64, name);
            }
        }
        Places { steps }
    }

    fn of(&self, pc: usize) -> String {
        self.steps
            .get(&(pc as u64))
            .cloned()
            .unwrap_or_else(|| format!("step {pc}"))
    }

    fn of_all(&self, pcs: &[usize]) -> String {
        let names: Vec<String> = pcs.iter().map(|pc| self.of(*pc)).collect();
        names.join(", ")
    }
}

/// `: text`, or nothing when the text is empty.
fn colon(text: &str) -> String {
    match text {
        "" => String::new(),
        t => format!(": {t}"),
    }
}

/// ` (attempt n)` after the first attempt.
fn attempt(n: u32) -> String {
    if n > 1 {
        format!(" (attempt {n})")
    } else {
        String::new()
    }
}

fn target_results(all: &[TargetResultDto]) -> String {
    let failed: Vec<String> = all
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{} ({})", r.target_id, r.message))
        .collect();
    if failed.is_empty() {
        format!("{} ok", plural(all.len(), "target", "targets"))
    } else {
        format!("failed on {}", failed.join(", "))
    }
}

fn check_verdicts(verdicts: &[CheckVerdictDto]) -> String {
    let parts: Vec<String> = verdicts
        .iter()
        .map(|v| {
            format!(
                "{}{} {}{}",
                v.check,
                if v.shadow { " (shadow)" } else { "" },
                v.verdict.status,
                colon(&v.verdict.summary)
            )
        })
        .collect();
    parts.join("; ")
}

fn weights(weights: &[WeightDto]) -> String {
    let parts: Vec<String> = weights
        .iter()
        .map(|w| format!("{} {}%", w.group, w.percent))
        .collect();
    parts.join(", ")
}

/// A few words on what an event says.
pub fn event_detail(e: &EventDto, places: &Places) -> String {
    use EventDetailDto as D;
    match &e.detail {
        D::Started { by } | D::Resumed { by } => format!("by {by}"),
        D::PrecheckDone {
            pc, check, verdict, ..
        } => format!(
            "{}: {check} {}{}",
            places.of(*pc),
            verdict.status,
            colon(&verdict.summary)
        ),
        D::TargetsChecked { pc, unhealthy } => {
            let names: Vec<String> = unhealthy
                .iter()
                .map(|u| format!("{} ({})", u.target, u.summary))
                .collect();
            if names.is_empty() {
                places.of(*pc)
            } else {
                format!("{}: unhealthy {}", places.of(*pc), names.join(", "))
            }
        }
        D::DeployStarted { pc, attempt: n, .. } => format!("{}{}", places.of(*pc), attempt(*n)),
        D::Deployed { pc, results, .. } => {
            format!("{}: {}", places.of(*pc), target_results(results))
        }
        D::DeployFailed {
            pc,
            attempt: n,
            message,
            ..
        }
        | D::TrafficFailed {
            pc,
            attempt: n,
            message,
            ..
        } => format!("{}{}{}", places.of(*pc), attempt(*n), colon(message)),
        D::Progressed { of, note, .. } => {
            use crate::api::event_model::ProgressOfDto as P;
            let place = match of {
                P::Deploy { pc, .. } => format!("{} deploy", places.of(*pc)),
                P::Shift { pc, .. } => format!("{} traffic", places.of(*pc)),
                P::Rollback { pcs, .. } => format!("{} rollback", places.of_all(pcs)),
                P::RestoreTraffic { .. } => "restoring traffic".to_string(),
            };
            format!("{place}{}", colon(note))
        }
        D::BakeStarted { pc, until_ms } => {
            format!("{}: bake until {}", places.of(*pc), time_of_day(*until_ms))
        }
        D::Verified {
            pc,
            round,
            verdicts,
        } => format!(
            "{} round {round}: {}",
            places.of(*pc),
            check_verdicts(verdicts)
        ),
        D::Decided { pc, decision } => format!(
            "{}: {}{}",
            places.of(*pc),
            decision.ruling,
            colon(&decision.reason)
        ),
        D::TrafficShifted { pc, weights: w } => format!("{}: {}", places.of(*pc), weights(w)),
        D::TrafficRestored { weights: w, .. } => weights(w),
        D::GateOpened { pc, expires_at_ms } => match expires_at_ms {
            Some(until) => format!("{}: expires at {}", places.of(*pc), date_time(*until)),
            None => places.of(*pc),
        },
        D::GateSkipped { pc } | D::GateExpired { pc } => places.of(*pc),
        D::Approved { pc, by, comment } | D::Rejected { pc, by, comment } => {
            format!("{} by {by}{}", places.of(*pc), colon(comment))
        }
        D::Paused { by, reason } => format!("by {by}{}", colon(reason)),
        D::RollbackStarted {
            reason,
            mode,
            force,
            ..
        } => {
            let force = if *force { ", forced" } else { "" };
            format!("({mode}{force}) {reason}")
        }
        D::RollbackBatchStarted {
            pcs, attempt: n, ..
        } => format!("{}{}", places.of_all(pcs), attempt(*n)),
        D::RolledBackBatch { pcs, results, .. } => {
            format!("{}: {}", places.of_all(pcs), target_results(results))
        }
        D::RollbackFailed {
            pcs,
            attempt: n,
            message,
            ..
        } => format!("{}{}{}", places.of_all(pcs), attempt(*n), colon(message)),
        D::RollbackVerified { pcs, verdicts } => {
            format!("{}: {}", places.of_all(pcs), check_verdicts(verdicts))
        }
        D::Blocked { reason } => reason.clone(),
        D::Finished { status, reason } => format!("{status}{}", colon(reason)),
    }
}

/// One line of `release watch`: time, event, status after it, detail.
pub fn event_line(e: &EventDto, places: &Places) -> String {
    let status = e.status.as_deref().unwrap_or("-");
    format!(
        "{}  {:<22} {:<16} {}",
        time_of_day(e.at_ms),
        e.kind,
        status,
        event_detail(e, places)
    )
    .trim_end()
    .to_string()
}

/// Whether a step in `state` is where the release stands: under way, or
/// where it stopped short.
pub fn is_place(state: &str) -> bool {
    matches!(state, "current" | "failed" | "rejected" | "stopped")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_read_as_utc_dates_and_ages_in_whole_units() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_time(1_800_000_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(time_of_day(1_800_000_000_000 + 90_500), "08:01:30");
        assert_eq!(age(1_000, 1_000), "0s");
        assert_eq!(age(0, 59_999), "59s");
        assert_eq!(age(0, 5 * 60_000), "5m");
        assert_eq!(age(0, 3 * 3_600_000), "3h");
        assert_eq!(age(0, 49 * 3_600_000), "2d");
        assert_eq!(age(10_000, 0), "0s", "a start in the future is now");
    }

    #[test]
    fn batch_sizes_are_listed_while_few() {
        assert_eq!(batch_sizes(&[1]), "of 1 target");
        assert_eq!(batch_sizes(&[2, 2]), "of 2 targets");
        assert_eq!(batch_sizes(&[1, 2, 2, 2, 1]), "of 1, 2, 2, 2, 1 targets");
        assert_eq!(batch_sizes(&[1, 2, 2, 2, 2, 2, 1]), "of 1 to 2 targets");
        assert_eq!(batch_sizes(&[]), "");
    }

    #[test]
    fn tables_are_aligned_on_the_widest_cell() {
        let out = table(
            &["ID", "APP", "AGE"],
            &[
                vec!["a".into(), "shop".into(), "5m".into()],
                vec!["abcdef".into(), "s".into(), "10d".into()],
            ],
        );
        assert_eq!(
            out,
            "ID      APP   AGE\na       shop  5m\nabcdef  s     10d"
        );
    }

    /// A release of three checks whose first round measured nothing.
    fn paused_on_nothing() -> ReleaseDto {
        use crate::domain::plugin::{Target, TargetResult, Verdict, VerdictStatus};
        use crate::domain::release::policy::CheckVerdict;
        use crate::domain::release::{Action, State, Work, WorkOutcome};

        let flow = r#"
name = "quiet"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = "50%"
checks = [{ plugin = "latency" }, { plugin = "errors" }, { plugin = "saturation" }]
"#;
        let targets = (0..2)
            .map(|i| Target {
                id: format!("web-{i}"),
                ..Target::default()
            })
            .collect();
        let spec = crate::domain::release::tests::spec_for(flow, targets, None, false);
        let mut state = State::default();
        let now = 1_800_000_000_000;
        loop {
            let events = match state.next(&spec, now) {
                Action::Record(event) => vec![event],
                Action::Call(work) => {
                    let outcome = match &*work {
                        Work::Deploy { targets, .. } => WorkOutcome::Targets(Ok(targets
                            .iter()
                            .map(|t| TargetResult {
                                target_id: t.id.clone(),
                                ok: true,
                                message: String::new(),
                            })
                            .collect())),
                        Work::Verify { checks, .. } => WorkOutcome::Verdicts(
                            checks
                                .iter()
                                .map(|(c, _)| CheckVerdict {
                                    check: c.label(),
                                    verdict: Verdict {
                                        status: VerdictStatus::NoData,
                                        summary: "no requests yet".into(),
                                        metrics: vec![],
                                    },
                                    shadow: false,
                                })
                                .collect(),
                        ),
                        other => panic!("unexpected work {other:?}"),
                    };
                    state.conclude(&spec, &work, outcome, now)
                }
                Action::Wait(_) | Action::Done => break,
            };
            for event in events {
                state.apply(&spec, &event).unwrap();
            }
        }
        ReleaseDto::new(&spec, &state)
    }

    #[test]
    fn a_stage_verified_by_nothing_says_so() {
        let r = paused_on_nothing();
        assert_eq!(r.status, "paused");
        let out = summary(&r);
        assert!(
            out.contains(
                "  1. rollout (deploy)\n       verified by nothing: all 3 checks returned no data\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "by default-policy: verified by nothing at stage rollout, batch 1: \
                 all 3 checks returned no data\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn events_read_with_their_place_and_reason() {
        let places = Places {
            steps: [(3, "canary batch 1".to_string())].into(),
        };
        // Details as the daemon sends them, tagged with their kind.
        let event = |kind: &str, mut detail: serde_json::Value| {
            detail["event"] = json!(kind);
            EventDto {
                release: "r".into(),
                seq: 1,
                kind: kind.into(),
                at_ms: 1_800_000_000_000,
                status: Some("running".into()),
                detail: serde_json::from_value(detail).expect("a detail of its kind"),
            }
        };
        let decided = event(
            "decided",
            json!({"pc": 3, "decision": {
                "ruling": "proceed", "reason": "all checks pass", "by": "default-policy",
                "stage": "canary", "batch": 0, "round": 0, "inputs": [], "observations": 0,
                "at_ms": 0, "unverified": null}}),
        );
        assert_eq!(
            event_line(&decided, &places),
            "08:00:00  decided                running          canary batch 1: proceed: all checks pass"
        );
        let deployed = event(
            "deployed",
            json!({"pc": 3, "attempt": 2, "results": [
                {"target_id": "web-0", "ok": true, "message": ""},
                {"target_id": "web-1", "ok": false, "message": "disk full"}]}),
        );
        assert_eq!(
            event_detail(&deployed, &places),
            "canary batch 1: failed on web-1 (disk full)"
        );
        let unknown = event("approved", json!({"pc": 9, "by": "alice", "comment": ""}));
        assert_eq!(event_detail(&unknown, &places), "step 9 by alice");
    }
}
