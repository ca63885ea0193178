//! The inventory: applications, their environments, and the targets each
//! environment runs on, with the rules an environment must satisfy.

use std::collections::BTreeSet;

use super::flow::FlowError;
use super::name;
use super::plugin::Target;

/// Where an application runs: one environment (beta, prod, …) and its targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Environment {
    pub application: String,
    pub name: String,
    pub targets: Vec<Target>,
    /// The group serving traffic now, for blue-green releases.
    pub live_group: Option<String>,
    /// The version running here, as the last successful release left it.
    pub current_version: Option<String>,
    /// Why the version running here is not known (a release was abandoned
    /// midway), until a release finishes here again.
    pub version_unknown: Option<String>,
}

/// The longest value of a target's label.
pub const MAX_LABEL_VALUE_LEN: usize = 255;

/// The longest value of a target's attribute (a cluster's origin, a list
/// of containers).
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 1024;

impl Target {
    /// Every problem of one target, each with its field under `at`
    /// (`targets[2]`): the id, the group (or none) and the label keys are
    /// names, the address is an address, label values are short text;
    /// attribute keys are names and their values text.
    pub fn problems(&self, at: &str) -> Vec<FlowError> {
        let mut problems = Vec::new();
        let mut note = |r: Result<(), FlowError>| problems.extend(r.err());
        note(name::check_name(format!("{at}.id"), &self.id));
        if !self.group.is_empty() {
            note(name::check_name(format!("{at}.group"), &self.group));
        }
        note(name::check_address(format!("{at}.address"), &self.address));
        for (key, value) in &self.labels {
            // A key that is not a name is not put in the path it breaks.
            match name::check_name(format!("{at}.labels"), key) {
                Ok(()) => note(name::check_text(
                    format!("{at}.labels.{key}"),
                    value,
                    MAX_LABEL_VALUE_LEN,
                )),
                Err(e) => note(Err(e)),
            }
        }
        for (key, value) in &self.attributes {
            match name::check_name(format!("{at}.attributes"), key) {
                Ok(()) => note(name::check_text(
                    format!("{at}.attributes.{key}"),
                    value,
                    MAX_ATTRIBUTE_VALUE_LEN,
                )),
                Err(e) => note(Err(e)),
            }
        }
        problems
    }
}

/// Every problem of a list of targets given to a plugin or a plan: each
/// target's own, and an id used twice.
pub fn target_problems(targets: &[Target]) -> Vec<FlowError> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, target) in targets.iter().enumerate() {
        let at = format!("targets[{i}]");
        let own = target.problems(&at);
        if own.is_empty() && !ids.insert(target.id.as_str()) {
            problems.push(FlowError::worded(
                format!("{at}.id"),
                format!("target id `{}` is used twice", target.id),
            ));
        }
        problems.extend(own);
    }
    problems
}

impl Environment {
    /// The distinct groups of the targets, in order; targets without a
    /// group are in none.
    pub fn groups(&self) -> Vec<&str> {
        let groups: BTreeSet<&str> = self
            .targets
            .iter()
            .map(|t| t.group.as_str())
            .filter(|g| !g.is_empty())
            .collect();
        groups.into_iter().collect()
    }

    /// Checks every rule and reports every problem with its field path.
    pub fn validate(&self) -> Result<(), Vec<FlowError>> {
        let mut errors = Vec::new();
        for (path, value) in [
            ("application", &self.application),
            ("environment", &self.name),
        ] {
            errors.extend(name::check_name(path, value).err());
        }
        if self.targets.is_empty() {
            errors.push(FlowError::new(
                "targets",
                "an environment needs at least one target",
            ));
        }
        errors.extend(target_problems(&self.targets));
        for (i, target) in self.targets.iter().enumerate() {
            if target.address.is_empty() {
                errors.push(FlowError::new(
                    format!("targets[{i}].address"),
                    "must not be empty",
                ));
            }
        }
        if let Some(live) = &self.live_group {
            let groups = self.groups();
            if !groups.contains(&live.as_str()) {
                let known = if groups.is_empty() {
                    "no target has a group".to_string()
                } else {
                    format!("the groups are {}", groups.join(", "))
                };
                errors.push(FlowError::worded(
                    "live_group",
                    format!("`{live}` is not the group of any target; {known}"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, group: &str) -> Target {
        Target {
            id: id.into(),
            address: format!("{id}:8080"),
            group: group.into(),
            labels: vec![],
            attributes: vec![],
        }
    }

    fn prod() -> Environment {
        Environment {
            application: "shop".into(),
            name: "prod".into(),
            targets: vec![target("web-1", "blue"), target("web-2", "green")],
            live_group: Some("blue".into()),
            current_version: None,
            version_unknown: None,
        }
    }

    fn paths(env: &Environment) -> Vec<String> {
        env.validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn a_valid_environment_passes() {
        assert_eq!(prod().validate(), Ok(()));
        assert_eq!(prod().groups(), ["blue", "green"]);
    }

    #[test]
    fn names_are_checked() {
        let env = Environment {
            application: "Shop".into(),
            name: String::new(),
            ..prod()
        };
        assert_eq!(paths(&env), ["application", "environment"]);
    }

    #[test]
    fn every_target_problem_is_named_by_its_path() {
        let mut env = prod();
        env.targets.push(target("web-1", "blue"));
        env.targets.push(Target {
            address: String::new(),
            ..target(" ", "blue")
        });
        let errors = env.validate().unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "targets[2].id: target id `web-1` is used twice",
                format!("targets[3].id: ` ` is not a name: {}", name::RULE).as_str(),
                "targets[3].address: must not be empty",
            ]
        );
    }

    #[test]
    fn an_environment_needs_targets() {
        let env = Environment {
            targets: vec![],
            live_group: None,
            ..prod()
        };
        assert_eq!(paths(&env), ["targets"]);
    }

    #[test]
    fn the_live_group_must_be_a_targets_group() {
        let env = Environment {
            live_group: Some("red".into()),
            ..prod()
        };
        let errors = env.validate().unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "live_group: `red` is not the group of any target; the groups are blue, green"
        );
        let ungrouped = Environment {
            targets: vec![target("web-1", "")],
            live_group: Some(String::new()),
            ..prod()
        };
        assert_eq!(paths(&ungrouped), ["live_group"]);
        let no_live = Environment {
            live_group: None,
            ..prod()
        };
        assert_eq!(no_live.validate(), Ok(()));
    }
}
