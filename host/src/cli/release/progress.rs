//! The live view under `release watch` on a terminal: a bar of the steps
//! done, where the release is, and how far its targets have come.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use super::view::batch_suffix;
use crate::api::release_model::ReleaseDto;
use crate::cli::output::Output;

/// How often the spinner turns, so a release waiting at a gate or baking
/// still looks alive.
const TICK: Duration = Duration::from_millis(120);

const TEMPLATE: &str = "{spinner} {prefix}\n  [{bar:40.cyan/blue}] {pos}/{len} steps done\n  {msg}";

/// A progress bar on standard output, with the event lines printed above
/// it.
pub struct Progress {
    bar: ProgressBar,
    shown: bool,
}

impl Progress {
    /// A bar for a terminal. indicatif hides it when standard output is not
    /// one, and JSON output never has one: its lines are for programs.
    pub fn new(output: Output, release: &ReleaseDto) -> Progress {
        let target = match output {
            Output::Human => ProgressDrawTarget::stdout(),
            Output::Json => ProgressDrawTarget::hidden(),
        };
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let shown = !target.is_hidden();
        // Filled in before it is drawn, so the first frame is whole.
        let bar = ProgressBar::hidden()
            .with_style(style)
            .with_finish(ProgressFinish::AndClear);
        let progress = Progress { bar, shown };
        progress.update(release);
        progress.bar.set_draw_target(target);
        if shown {
            progress.bar.enable_steady_tick(TICK);
        }
        progress
    }

    /// Whether the bar is drawn at all.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// Prints a line above the bar. A hidden bar drops what it is given to
    /// print, so without one the line goes straight to standard output.
    pub fn println(&self, line: &str) {
        if self.shown {
            self.bar.println(line);
        } else {
            println!("{line}");
        }
    }

    /// Shows where the release stands now.
    pub fn update(&self, release: &ReleaseDto) {
        let standing = Standing::of(release);
        self.bar.set_length(standing.total);
        self.bar.set_position(standing.done);
        self.bar.set_prefix(standing.place);
        self.bar.set_message(standing.targets);
    }

    /// Takes the bar off the terminal.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// Where a release stands, in the words and numbers the bar shows.
#[derive(Debug, PartialEq, Eq)]
struct Standing {
    done: u64,
    total: u64,
    /// The status and the step under way: `running at canary batch 1 (verify)`.
    place: String,
    /// `3 deployed, 1 verified, 0 rolled back of 4 targets`.
    targets: String,
}

impl Standing {
    fn of(r: &ReleaseDto) -> Standing {
        let steps = || {
            r.stages
                .iter()
                .flat_map(|stage| stage.steps.iter().map(move |step| (stage, step)))
        };
        let place = match steps().find(|(_, step)| super::view::is_place(&step.state)) {
            Some((stage, step)) => {
                let batch = batch_suffix(step.batch);
                format!("{} at {}{batch} ({})", r.status, stage.name, step.kind)
            }
            None => r.status.clone(),
        };
        let count = |state: &str| r.targets.iter().filter(|t| t.state == state).count();
        // A verified target is deployed too.
        let verified = count("verified");
        Standing {
            done: steps().filter(|(_, step)| step.state == "done").count() as u64,
            total: steps().count() as u64,
            place,
            targets: format!(
                "{} deployed, {verified} verified, {} rolled back of {} targets",
                count("deployed") + verified,
                count("rolled-back"),
                r.targets.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn release(status: &str, steps: Value, targets: &[&str]) -> ReleaseDto {
        let targets: Vec<Value> = targets
            .iter()
            .enumerate()
            .map(|(i, state)| json!({"id": format!("web-{i}"), "address": "", "group": "", "state": state}))
            .collect();
        serde_json::from_value(json!({
            "id": "r1", "application": "shop", "environment": "prod", "version": "2.0.0",
            "flow": "standard", "flow_version": 1, "started_by": "admin", "emergency": false,
            "status": status, "forward_only": false, "created_ms": 0, "updated_ms": 0, "step": 0,
            "stages": [
                {"name": "prechecks", "kind": "precheck", "reversible": true, "steps": [
                    {"index": 0, "kind": "precheck", "batch": null, "targets": [], "state": steps[0]}]},
                {"name": "rollout", "kind": "deploy", "reversible": true, "steps": [
                    {"index": 1, "kind": "deploy", "batch": 0, "targets": ["web-0"], "state": steps[1]},
                    {"index": 2, "kind": "verify", "batch": 0, "targets": ["web-0"], "state": steps[2]},
                    {"index": 3, "kind": "deploy", "batch": 1, "targets": ["web-1"], "state": steps[3]}]}
            ],
            "targets": targets, "verdicts": [], "decisions": [], "approvals": [], "events": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_bar_counts_steps_done_and_names_the_step_under_way() {
        let r = release(
            "running",
            json!(["done", "done", "current", "pending"]),
            &["deployed", "pending", "pending"],
        );
        assert_eq!(
            Standing::of(&r),
            Standing {
                done: 2,
                total: 4,
                place: "running at rollout batch 1 (verify)".into(),
                targets: "1 deployed, 0 verified, 0 rolled back of 3 targets".into(),
            }
        );
    }

    #[test]
    fn verified_targets_count_as_deployed_and_an_ended_release_shows_its_status() {
        let r = release(
            "rolled-back",
            json!(["done", "rolled-back", "done", "pending"]),
            &["verified", "rolled-back", "verified"],
        );
        let standing = Standing::of(&r);
        assert_eq!((standing.done, standing.total), (2, 4));
        assert_eq!(standing.place, "rolled-back");
        assert_eq!(
            standing.targets,
            "2 deployed, 2 verified, 1 rolled back of 3 targets"
        );
    }
}
