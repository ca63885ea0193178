//! What a plugin answers, checked against what it was asked before the
//! answer becomes a release's data. A deployer that answers for targets it
//! was not given, or leaves some out, has not said what happened to the
//! batch; its answer is a plugin error like any other, so the stage's retry
//! and rollback rules apply to it.

use std::collections::BTreeMap;

use super::PluginRef;
use crate::domain::plugin::{GroupWeight, PluginFault, Target, TargetResult};

/// How many target ids a message names before it only counts the rest.
const NAMED: usize = 5;

/// `` `web-1`, `web-2` and 3 more ``.
fn ids<'a>(list: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = list.len();
    let named: Vec<String> = list.take(NAMED).map(|id| format!("`{id}`")).collect();
    match total.saturating_sub(NAMED) {
        0 => named.join(", "),
        more => format!("{} and {more} more", named.join(", ")),
    }
}

/// Checks that a deployer answered exactly once for each target it was
/// given, in a deploy or a rollback. An answer that does not is a fault
/// naming every target at issue; it is retryable, since a deployer that
/// lost track of a batch may well answer properly when asked again.
pub fn deployer_answer(
    plugin: &PluginRef,
    given: &[Target],
    results: Vec<TargetResult>,
) -> Result<Vec<TargetResult>, PluginFault> {
    let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &results {
        *answered.entry(r.target_id.as_str()).or_default() += 1;
    }
    let is_given = |id: &str| given.iter().any(|t| t.id == id);
    // In the order of the answer, so the message reads like the answer.
    let mut strangers: Vec<&str> = Vec::new();
    let mut repeated: Vec<&str> = Vec::new();
    for r in &results {
        let id = r.target_id.as_str();
        let list = if !is_given(id) {
            &mut strangers
        } else if answered[id] > 1 {
            &mut repeated
        } else {
            continue;
        };
        if !list.contains(&id) {
            list.push(id);
        }
    }
    let missing: Vec<&str> = given
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !answered.contains_key(id))
        .collect();
    if strangers.is_empty() && repeated.is_empty() && missing.is_empty() {
        return Ok(results);
    }
    let mut problems = Vec::new();
    if results.is_empty() {
        problems.push("answered for no target".to_string());
    }
    if !strangers.is_empty() {
        problems.push(format!(
            "answered for {}, which it was not given",
            ids(strangers.into_iter())
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!(
            "answered more than once for {}",
            ids(repeated.into_iter())
        ));
    }
    if !missing.is_empty() {
        problems.push(format!("did not answer for {}", ids(missing.into_iter())));
    }
    Err(PluginFault {
        message: format!("the deployer {} {}", plugin.label(), problems.join("; it ")),
        retryable: true,
    })
}

fn weights_text(weights: &[GroupWeight]) -> String {
    if weights.is_empty() {
        return "no weights".to_string();
    }
    weights
        .iter()
        .map(|w| format!("{} {}%", w.group, w.percent))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the weights a traffic plugin reads back after setting them: each
/// group set is read back once with its percentage, and any other group
/// read back carries no traffic. Anything else means the shift did not take
/// (a router that ignored it, or a plugin that lost track), which is a
/// retryable fault naming both sides.
pub fn traffic_readback(
    plugin: &PluginRef,
    set: &[GroupWeight],
    read: &[GroupWeight],
) -> Result<(), PluginFault> {
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for w in read {
        *seen.entry(w.group.as_str()).or_default() += 1;
    }
    let repeated = seen.values().any(|n| *n > 1);
    let matches = |w: &GroupWeight| {
        let want = set
            .iter()
            .find(|s| s.group == w.group)
            .map_or(0, |s| s.percent);
        w.percent == want
    };
    let all_set_read = set
        .iter()
        .all(|s| s.percent == 0 || read.iter().any(|r| r.group == s.group));
    if !repeated && all_set_read && read.iter().all(matches) {
        return Ok(());
    }
    Err(PluginFault {
        message: format!(
            "the traffic plugin {} reads back {} after being set to {}: the shift did not take",
            plugin.label(),
            weights_text(read),
            weights_text(set)
        ),
        retryable: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> PluginRef {
        PluginRef {
            plugin: "agent".into(),
            version: "1.0.0".into(),
            params: vec![],
            evidence_optional: false,
            shadow: false,
        }
    }

    fn targets(ids: &[&str]) -> Vec<Target> {
        ids.iter()
            .map(|id| Target {
                id: id.to_string(),
                ..Target::default()
            })
            .collect()
    }

    fn answer(ids: &[&str]) -> Vec<TargetResult> {
        ids.iter()
            .map(|id| TargetResult {
                target_id: id.to_string(),
                ok: true,
                message: "deployed".into(),
            })
            .collect()
    }

    fn fault(given: &[&str], answered: &[&str]) -> PluginFault {
        deployer_answer(&agent(), &targets(given), answer(answered))
            .expect_err("the answer is refused")
    }

    #[test]
    fn one_answer_per_target_in_any_order_is_the_answer() {
        let results = answer(&["web-2", "web-1"]);
        assert_eq!(
            deployer_answer(&agent(), &targets(&["web-1", "web-2"]), results.clone()),
            Ok(results)
        );
        assert_eq!(deployer_answer(&agent(), &[], vec![]), Ok(vec![]));
        // A failed target is still an answer for it.
        let mut failed = answer(&["web-1"]);
        failed[0].ok = false;
        assert!(deployer_answer(&agent(), &targets(&["web-1"]), failed).is_ok());
    }

    #[test]
    fn an_answer_for_another_target_names_both() {
        let f = fault(&["web-1"], &["web-9"]);
        assert_eq!(
            f.message,
            "the deployer agent@1.0.0 answered for `web-9`, which it was not given; \
             it did not answer for `web-1`"
        );
        assert!(f.retryable, "a plugin error the stage's retries apply to");
    }

    #[test]
    fn an_empty_answer_names_every_target_left_out() {
        assert_eq!(
            fault(&["web-0", "web-1"], &[]).message,
            "the deployer agent@1.0.0 answered for no target; \
             it did not answer for `web-0`, `web-1`"
        );
    }

    #[test]
    fn twice_for_one_target_or_one_left_out_are_refused() {
        assert_eq!(
            fault(&["web-0", "web-1"], &["web-0", "web-0", "web-1"]).message,
            "the deployer agent@1.0.0 answered more than once for `web-0`"
        );
        assert_eq!(
            fault(&["web-0", "web-1"], &["web-1"]).message,
            "the deployer agent@1.0.0 did not answer for `web-0`"
        );
        assert_eq!(
            fault(&["web-0"], &["web-0", "web-7", "web-7", "web-8"]).message,
            "the deployer agent@1.0.0 answered for `web-7`, `web-8`, which it was not given"
        );
    }

    #[test]
    fn long_lists_are_counted_not_spelled_out() {
        let given: Vec<String> = (0..12).map(|i| format!("web-{i}")).collect();
        let given: Vec<&str> = given.iter().map(String::as_str).collect();
        assert_eq!(
            fault(&given, &[]).message,
            "the deployer agent@1.0.0 answered for no target; it did not answer for \
             `web-0`, `web-1`, `web-2`, `web-3`, `web-4` and 7 more"
        );
    }

    fn weights(list: &[(&str, u8)]) -> Vec<GroupWeight> {
        list.iter()
            .map(|(group, percent)| GroupWeight {
                group: group.to_string(),
                percent: *percent,
            })
            .collect()
    }

    #[test]
    fn weights_read_back_as_set_in_any_order_are_the_shift() {
        let set = weights(&[("blue", 50), ("green", 50)]);
        let read = weights(&[("green", 50), ("blue", 50)]);
        assert_eq!(traffic_readback(&agent(), &set, &read), Ok(()));
        // A group the router also knows, at 0%, is no difference.
        let read = weights(&[("blue", 50), ("green", 50), ("canary", 0)]);
        assert_eq!(traffic_readback(&agent(), &set, &read), Ok(()));
        // A group set to 0% may be left out.
        let set = weights(&[("blue", 100), ("green", 0)]);
        assert_eq!(
            traffic_readback(&agent(), &set, &weights(&[("blue", 100)])),
            Ok(())
        );
    }

    #[test]
    fn weights_that_did_not_take_name_both_sides() {
        let set = weights(&[("blue", 50), ("green", 50)]);
        for read in [
            weights(&[("blue", 100), ("green", 0)]),
            weights(&[]),
            weights(&[("blue", 50), ("green", 50), ("blue", 50)]),
            weights(&[("blue", 50), ("green", 40), ("canary", 10)]),
        ] {
            let fault = traffic_readback(&agent(), &set, &read).expect_err("refused");
            assert!(fault.retryable);
            assert!(
                fault
                    .message
                    .contains("after being set to blue 50%, green 50%"),
                "{}",
                fault.message
            );
        }
        let fault = traffic_readback(&agent(), &set, &weights(&[])).unwrap_err();
        assert_eq!(
            fault.message,
            "the traffic plugin agent@1.0.0 reads back no weights after being set to blue 50%, \
             green 50%: the shift did not take"
        );
    }
}
