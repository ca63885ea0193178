//! Trains: one release of several applications with dependencies between
//! them. Members start in dependency order once what they depend on has
//! succeeded; a failure stops every member not yet started and unwinds the
//! others in reverse dependency order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::flow::FlowError;
use super::release::Status;

/// One application of a train.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub flow_version: Option<u32>,
    /// Applications of the same train that must succeed first.
    pub depends_on: Vec<String>,
}

impl Member {
    /// Every field of the member that breaks its rule, under `at`.
    fn problems(&self, at: &str) -> Vec<FlowError> {
        use super::name::{check_name, check_version};
        let mut checks = vec![
            check_name(format!("{at}.application"), &self.application),
            check_name(format!("{at}.environment"), &self.environment),
            check_name(format!("{at}.flow"), &self.flow),
            check_version(format!("{at}.version"), &self.version),
        ];
        for (j, dep) in self.depends_on.iter().enumerate() {
            checks.push(check_name(format!("{at}.depends_on[{j}]"), dep));
        }
        checks.into_iter().filter_map(Result::err).collect()
    }
}

/// Checks a train's members and returns them in dependency order, or every
/// problem with the path of the field at fault.
pub fn order(members: &[Member]) -> Result<Vec<usize>, Vec<FlowError>> {
    let mut errors = Vec::new();
    if members.is_empty() {
        errors.push(FlowError::new(
            "members",
            "a train needs at least one member",
        ));
    }
    for (i, m) in members.iter().enumerate() {
        errors.extend(m.problems(&format!("members[{i}]")));
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        if index.insert(m.application.as_str(), i).is_some() {
            errors.push(FlowError::worded(
                format!("members[{i}].application"),
                format!("`{}` is in the train twice", m.application),
            ));
        }
    }
    for (i, m) in members.iter().enumerate() {
        for (j, dep) in m.depends_on.iter().enumerate() {
            let at = format!("members[{i}].depends_on[{j}]");
            if dep == &m.application {
                errors.push(FlowError::worded(
                    at,
                    format!("`{dep}` cannot depend on itself"),
                ));
            } else if !index.contains_key(dep.as_str()) {
                errors.push(FlowError::worded(
                    at,
                    format!("`{dep}` is not a member of the train"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Depth-first search, reporting the first cycle found with its path.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        members: &[Member],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<(), FlowError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Open => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..]
                    .iter()
                    .map(|p| members[*p].application.as_str())
                    .collect();
                cycle.push(members[i].application.as_str());
                return Err(FlowError::worded(
                    format!("members[{i}].depends_on"),
                    format!("the dependencies form a cycle: {}", cycle.join(" → ")),
                ));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        path.push(i);
        for dep in &members[i].depends_on {
            if let Some(&d) = index.get(dep.as_str()) {
                visit(d, members, index, marks, path, out)?;
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; members.len()];
    let mut out = Vec::with_capacity(members.len());
    for i in 0..members.len() {
        visit(i, members, &index, &mut marks, &mut Vec::new(), &mut out).map_err(|e| vec![e])?;
    }
    Ok(out)
}

/// Where a member of a train stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberStatus {
    /// Waiting for what it depends on.
    Waiting,
    /// Never started because the train failed first.
    Skipped,
    /// Its release, with the release's status.
    Release(Status),
}

/// A train's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainStatus {
    Running,
    /// A member failed or a human asked for a rollback; members unwind.
    RollingBack,
    Succeeded,
    RolledBack,
}

impl TrainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainStatus::Running => "running",
            TrainStatus::RollingBack => "rolling-back",
            TrainStatus::Succeeded => "succeeded",
            TrainStatus::RolledBack => "rolled-back",
        }
    }
}

/// What a train does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainStep {
    /// Start the release of member `i`.
    Start(usize),
    /// Roll back member `i`'s release.
    Rollback(usize),
}

/// What the train decides, given each member's release status (`None` for
/// not started) and whether a human asked for a rollback.
pub fn decide(
    members: &[Member],
    releases: &[Option<Status>],
    rollback_requested: bool,
) -> (TrainStatus, Vec<MemberStatus>, Vec<TrainStep>) {
    let failed = |s: &Option<Status>| {
        matches!(
            s,
            Some(Status::Failed | Status::RolledBack | Status::Rejected | Status::Abandoned)
        )
    };
    let unwinding = rollback_requested || releases.iter().any(failed);
    let index: BTreeMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.application.as_str(), i))
        .collect();
    let statuses: Vec<MemberStatus> = releases
        .iter()
        .map(|r| match r {
            Some(s) => MemberStatus::Release(*s),
            None if unwinding => MemberStatus::Skipped,
            None => MemberStatus::Waiting,
        })
        .collect();
    let mut steps = Vec::new();
    if !unwinding {
        for (i, m) in members.iter().enumerate() {
            let ready = releases[i].is_none()
                && m.depends_on.iter().all(|d| {
                    index
                        .get(d.as_str())
                        .is_some_and(|&j| releases[j] == Some(Status::Succeeded))
                });
            if ready {
                steps.push(TrainStep::Start(i));
            }
        }
        let all_done = releases.iter().all(|r| *r == Some(Status::Succeeded));
        let status = if all_done {
            TrainStatus::Succeeded
        } else {
            TrainStatus::Running
        };
        return (status, statuses, steps);
    }
    // Unwinding: stop what runs; undo what succeeded once everything that
    // depends on it is undone or never ran.
    let settled = |s: &Option<Status>| s.is_none() || failed(s);
    for (i, release) in releases.iter().enumerate() {
        match release {
            Some(Status::Succeeded) => {
                let dependents_settled = members.iter().enumerate().all(|(j, m)| {
                    !m.depends_on.contains(&members[i].application) || settled(&releases[j])
                });
                if dependents_settled {
                    steps.push(TrainStep::Rollback(i));
                }
            }
            Some(Status::Running | Status::WaitingApproval | Status::Paused) => {
                steps.push(TrainStep::Rollback(i));
            }
            _ => {}
        }
    }
    let over = releases.iter().all(settled);
    let status = if over {
        TrainStatus::RolledBack
    } else {
        TrainStatus::RollingBack
    };
    (status, statuses, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(app: &str, deps: &[&str]) -> Member {
        Member {
            application: app.to_string(),
            environment: "prod".to_string(),
            version: "1.0.0".to_string(),
            flow: "quick".to_string(),
            flow_version: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn members_come_in_dependency_order() {
        let train = [
            member("web", &["api"]),
            member("api", &["db"]),
            member("db", &[]),
        ];
        assert_eq!(order(&train).unwrap(), [2, 1, 0]);
    }

    #[test]
    fn bad_trains_name_the_field() {
        let cyclic = [
            member("a", &["c"]),
            member("b", &["a"]),
            member("c", &["b"]),
        ];
        let errors = order(&cyclic).unwrap_err();
        assert_eq!(errors[0].path, "members[0].depends_on");
        assert!(errors[0].problem.contains("a → c → b → a"), "{}", errors[0]);
        let errors = order(&[member("a", &["ghost"]), member("a", &[])]).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["members[1].application", "members[0].depends_on[0]"]
        );
        assert!(order(&[member("a", &["a"])]).is_err());
        assert!(order(&[]).is_err());
    }

    #[test]
    fn a_failure_skips_dependents_and_unwinds_in_reverse() {
        let train = [
            member("db", &[]),
            member("api", &["db"]),
            member("web", &["api"]),
        ];
        let (status, _, steps) = decide(&train, &[None, None, None], false);
        assert_eq!(
            (status, steps),
            (TrainStatus::Running, vec![TrainStep::Start(0)])
        );
        let (_, _, steps) = decide(&train, &[Some(Status::Succeeded), None, None], false);
        assert_eq!(steps, [TrainStep::Start(1)]);

        // The middle one fails: web never starts, db is undone.
        let releases = [Some(Status::Succeeded), Some(Status::RolledBack), None];
        let (status, members, steps) = decide(&train, &releases, false);
        assert_eq!(status, TrainStatus::RollingBack);
        assert_eq!(members[2], MemberStatus::Skipped);
        assert_eq!(steps, [TrainStep::Rollback(0)]);
        let releases = [Some(Status::RolledBack), Some(Status::RolledBack), None];
        assert_eq!(decide(&train, &releases, false).0, TrainStatus::RolledBack);

        // A rollback asked for after success unwinds web, then api, then db.
        let all = [Some(Status::Succeeded); 3];
        assert_eq!(decide(&train, &all, false).0, TrainStatus::Succeeded);
        assert_eq!(decide(&train, &all, true).2, [TrainStep::Rollback(2)]);
        let releases = [
            Some(Status::Succeeded),
            Some(Status::Succeeded),
            Some(Status::RolledBack),
        ];
        assert_eq!(decide(&train, &releases, true).2, [TrainStep::Rollback(1)]);
    }

    #[test]
    fn an_abandoned_member_stops_the_train_and_the_rest_unwind() {
        let train = [member("db", &[]), member("api", &["db"])];
        // api's rollback blocked for good and an admin abandoned it: the
        // train does not wait on it as running, and db is undone.
        let releases = [Some(Status::Succeeded), Some(Status::Abandoned)];
        let (status, _, steps) = decide(&train, &releases, false);
        assert_eq!(status, TrainStatus::RollingBack);
        assert_eq!(steps, [TrainStep::Rollback(0)]);
        let releases = [Some(Status::RolledBack), Some(Status::Abandoned)];
        assert_eq!(decide(&train, &releases, false).0, TrainStatus::RolledBack);
    }
}
