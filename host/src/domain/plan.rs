//! Planning a release: every stage, batch and target in order, and which
//! plugins run where, worked out from a flow and an environment's targets
//! before anything runs, so a human can confirm the playbook.

use std::collections::BTreeSet;

use super::flow::{BatchSize, Flow, FlowError, PluginUse, StageKind, Strategy};
use super::plugin::Target;

/// One batch of a deploy stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Target ids, in deploy order.
    pub targets: Vec<String>,
}

/// What one stage will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedStep {
    Precheck {
        plugins: Vec<String>,
    },
    /// Canary and rolling deploys: batches in order, checks after each.
    Deploy {
        deployer: String,
        batches: Vec<PlannedBatch>,
        checks: Vec<String>,
        bake_ms: u64,
    },
    /// Deploy the idle group, then shift traffic to it step by step.
    BlueGreen {
        deployer: String,
        idle_group: String,
        live_group: String,
        targets: Vec<String>,
        steps: Vec<u8>,
        bake_per_step_ms: u64,
        traffic: String,
        checks: Vec<String>,
    },
    Approval {
        roles: Vec<String>,
        approvers: u32,
        expires_after_ms: Option<u64>,
    },
    Verify {
        checks: Vec<String>,
    },
}

/// One stage of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    pub name: String,
    pub reversible: bool,
    pub step: PlannedStep,
}

/// The whole playbook of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<PlannedStage>,
}

fn names(uses: &[PluginUse]) -> Vec<String> {
    uses.iter().map(label).collect()
}

fn label(p: &PluginUse) -> String {
    format!("{}@{}", p.plugin, p.version)
}

/// Plans a release of `flow` over `targets`. `live_group` names the group
/// serving traffic now, for blue-green stages.
pub fn plan(flow: &Flow, targets: &[Target], live_group: Option<&str>) -> Result<Plan, FlowError> {
    if targets.is_empty() {
        return Err(FlowError::worded("", "the environment has no targets"));
    }
    let total = targets.len();
    // Targets a canary already took are not deployed again by later stages.
    let mut deployed: BTreeSet<&str> = BTreeSet::new();
    let mut stages = Vec::with_capacity(flow.stages.len());
    for (i, stage) in flow.stages.iter().enumerate() {
        let at = |field: &str| format!("stages[{i}].{field}");
        let step = match &stage.kind {
            StageKind::Precheck { plugins } => PlannedStep::Precheck {
                plugins: names(plugins),
            },
            StageKind::Verify { checks } => PlannedStep::Verify {
                checks: names(checks),
            },
            StageKind::Approval(a) => PlannedStep::Approval {
                roles: a.roles.clone(),
                approvers: a.approvers,
                expires_after_ms: a.expires_after_ms,
            },
            StageKind::Deploy(deploy) => match &deploy.strategy {
                Strategy::Canary { count, bake_ms, .. } => {
                    let n = BatchSize::Count(*count)
                        .per_batch(total)
                        .map_err(|problem| FlowError::worded(at("count"), problem))?;
                    let chosen: Vec<&Target> = targets
                        .iter()
                        .filter(|t| !deployed.contains(t.id.as_str()))
                        .take(n)
                        .collect();
                    deployed.extend(chosen.iter().map(|t| t.id.as_str()));
                    PlannedStep::Deploy {
                        deployer: label(&deploy.deployer),
                        batches: vec![PlannedBatch {
                            targets: chosen.iter().map(|t| t.id.clone()).collect(),
                        }],
                        checks: names(&deploy.checks),
                        bake_ms: *bake_ms,
                    }
                }
                Strategy::Rolling { batch } => {
                    let per_batch = batch
                        .per_batch(total)
                        .map_err(|problem| FlowError::worded(at("batch"), problem))?;
                    let rest: Vec<&Target> = targets
                        .iter()
                        .filter(|t| !deployed.contains(t.id.as_str()))
                        .collect();
                    deployed.extend(rest.iter().map(|t| t.id.as_str()));
                    PlannedStep::Deploy {
                        deployer: label(&deploy.deployer),
                        batches: rest
                            .chunks(per_batch)
                            .map(|chunk| PlannedBatch {
                                targets: chunk.iter().map(|t| t.id.clone()).collect(),
                            })
                            .collect(),
                        checks: names(&deploy.checks),
                        bake_ms: 0,
                    }
                }
                Strategy::BlueGreen {
                    steps,
                    bake_per_step_ms,
                    traffic,
                } => {
                    let groups: BTreeSet<&str> = targets.iter().map(|t| t.group.as_str()).collect();
                    if groups.len() != 2 || groups.contains("") {
                        return Err(FlowError::worded(
                            at("strategy"),
                            format!(
                                "blue-green needs every target in one of exactly two groups; this environment has {}",
                                if groups.contains("") {
                                    "targets without a group".to_string()
                                } else {
                                    format!("{} group(s)", groups.len())
                                }
                            ),
                        ));
                    }
                    let live = live_group.ok_or_else(|| {
                        FlowError::worded(
                            at("strategy"),
                            "blue-green needs to know which group is live",
                        )
                    })?;
                    if !groups.contains(live) {
                        return Err(FlowError::worded(
                            at("strategy"),
                            format!("the live group `{live}` has no targets"),
                        ));
                    }
                    let idle = groups
                        .iter()
                        .find(|g| **g != live)
                        .copied()
                        .unwrap_or_default();
                    let idle_targets: Vec<String> = targets
                        .iter()
                        .filter(|t| t.group == idle)
                        .map(|t| t.id.clone())
                        .collect();
                    PlannedStep::BlueGreen {
                        deployer: label(&deploy.deployer),
                        idle_group: idle.to_string(),
                        live_group: live.to_string(),
                        targets: idle_targets,
                        steps: steps.clone(),
                        bake_per_step_ms: *bake_per_step_ms,
                        traffic: label(traffic),
                        checks: names(&deploy.checks),
                    }
                }
            },
        };
        stages.push(PlannedStage {
            name: stage.name.clone(),
            reversible: stage.reversible,
            step,
        });
    }
    Ok(Plan { stages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowfile;

    fn fleet(n: usize, groups: &[&str]) -> Vec<Target> {
        (0..n)
            .map(|i| Target {
                id: format!("web-{i}"),
                address: format!("10.0.0.{i}:80"),
                group: groups
                    .get(i % groups.len().max(1))
                    .unwrap_or(&"")
                    .to_string(),
                labels: vec![],
                attributes: vec![],
            })
            .collect()
    }

    fn batches(step: &PlannedStep) -> Vec<usize> {
        match step {
            PlannedStep::Deploy { batches, .. } => {
                batches.iter().map(|b| b.targets.len()).collect()
            }
            other => panic!("not a deploy step: {other:?}"),
        }
    }

    #[test]
    fn canary_then_rolling_covers_every_target_once() {
        let flow = flowfile::parse(include_str!("../../../tests/flows/standard.toml")).unwrap();
        let targets = fleet(10, &[]);
        let plan = plan(&flow, &targets, None).unwrap();
        assert_eq!(plan.stages.len(), 4);
        assert_eq!(batches(&plan.stages[1].step), [1]);
        // 25% of 10 is 3 per batch, over the 9 the canary left.
        assert_eq!(batches(&plan.stages[3].step), [3, 3, 3]);
        let mut all: Vec<String> = [&plan.stages[1], &plan.stages[3]]
            .iter()
            .flat_map(|s| match &s.step {
                PlannedStep::Deploy { batches, .. } => batches
                    .iter()
                    .flat_map(|b| b.targets.clone())
                    .collect::<Vec<_>>(),
                _ => vec![],
            })
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
        let PlannedStep::Deploy { deployer, .. } = &plan.stages[3].step else {
            unreachable!()
        };
        assert_eq!(deployer, "agent@1.0.0");
    }

    #[test]
    fn no_batch_takes_more_than_half_the_fleet() {
        let text = "name = \"f\"\nversion = 1\n[[stages]]\nname = \"r\"\nkind = \"deploy\"\nstrategy = \"rolling\"\ndeployer = { plugin = \"agent\" }\nbatch = 3\n";
        let flow = flowfile::parse(text).unwrap();
        assert_eq!(
            batches(&plan(&flow, &fleet(6, &[]), None).unwrap().stages[0].step),
            [3, 3]
        );
        let err = plan(&flow, &fleet(5, &[]), None).unwrap_err();
        assert_eq!(err.path, "stages[0].batch");
        assert!(
            err.problem.contains("more than 50% of the 5 targets"),
            "{err}"
        );
        // A two-target environment still deploys one at a time.
        let pct = text.replace("batch = 3", "batch = \"50%\"");
        let flow = flowfile::parse(&pct).unwrap();
        assert_eq!(
            batches(&plan(&flow, &fleet(2, &[]), None).unwrap().stages[0].step),
            [1, 1]
        );
    }

    #[test]
    fn blue_green_deploys_the_idle_group() {
        let flow = flowfile::parse(include_str!("../../../tests/flows/blue-green.toml")).unwrap();
        let targets = fleet(4, &["blue", "green"]);
        let plan = plan(&flow, &targets, Some("blue")).unwrap();
        let PlannedStep::BlueGreen {
            idle_group,
            targets: idle,
            steps,
            ..
        } = &plan.stages[0].step
        else {
            panic!("stage 0 is blue-green");
        };
        assert_eq!(idle_group, "green");
        assert_eq!(idle, &["web-1", "web-3"]);
        assert_eq!(steps, &[1, 10, 50, 100]);
        let err = super::plan(&flow, &fleet(4, &[]), Some("blue")).unwrap_err();
        assert!(err.problem.contains("targets without a group"), "{err}");
        let err = super::plan(&flow, &targets, None).unwrap_err();
        assert!(err.problem.contains("which group is live"), "{err}");
    }

    #[test]
    fn an_empty_environment_cannot_be_planned() {
        let flow = flowfile::parse(include_str!("../../../tests/flows/standard.toml")).unwrap();
        assert!(plan(&flow, &[], None).is_err());
    }
}
