//! The pure part of steering traffic in Kubernetes: which group a Service
//! selector switch sends everything to, the `backends` parameter, the
//! weights written into an HTTPRoute's backendRefs and read back from them
//! as percentages.

use greenlight_plugin_sdk::GroupWeight;
use serde_json::Value;

/// The group weights that a Service selector can carry out: exactly one
/// group at 100 and every other at 0.
pub fn sole_group(weights: &[GroupWeight]) -> Result<&str, String> {
    let full: Vec<&GroupWeight> = weights.iter().filter(|w| w.percent == 100).collect();
    let others_zero = weights.iter().all(|w| w.percent == 100 || w.percent == 0);
    match full.as_slice() {
        [one] if others_zero && !one.group.is_empty() => Ok(&one.group),
        _ => Err(format!(
            "mode `service` cannot give {}: a Service selector sends all traffic to one group \
             at once, so exactly one group may have 100% and the others 0%; use mode \
             `httproute` for stepped weights",
            describe(weights)
        )),
    }
}

/// `blue 90%, green 10%`.
pub fn describe(weights: &[GroupWeight]) -> String {
    let parts: Vec<String> = weights
        .iter()
        .map(|w| format!("{} {}%", w.group, w.percent))
        .collect();
    parts.join(", ")
}

/// The weights a Service's selector gives: the selected group 100, the
/// other groups named 0.
pub fn from_selector(selected: &str, groups: &[String]) -> Vec<GroupWeight> {
    let mut weights = vec![GroupWeight::new(selected, 100)];
    weights.extend(
        groups
            .iter()
            .filter(|g| g.as_str() != selected)
            .map(|g| GroupWeight::new(g.as_str(), 0)),
    );
    weights
}

/// `blue=shop-blue,green=shop-green` as (group, Service) pairs.
pub fn parse_backends(raw: &str) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((g, s)) if !g.trim().is_empty() && !s.trim().is_empty() => {
                Ok((g.trim().to_string(), s.trim().to_string()))
            }
            _ => Err(format!(
                "parameter `backends`: `{pair}` is not group=service, as in \
                 `blue=shop-blue,green=shop-green`"
            )),
        })
        .collect::<Result<_, _>>()?;
    if pairs.is_empty() {
        return Err("parameter `backends` names no group=service pair".into());
    }
    Ok(pairs)
}

/// Checks the weights against the backends: each group known, named once,
/// adding up to 100.
pub fn check(weights: &[GroupWeight], backends: &[(String, String)]) -> Result<(), String> {
    if let Some(w) = weights
        .iter()
        .find(|w| !backends.iter().any(|(g, _)| *g == w.group))
    {
        return Err(format!(
            "group `{}` has no backend in parameter `backends`",
            w.group
        ));
    }
    for (i, w) in weights.iter().enumerate() {
        if weights[..i].iter().any(|o| o.group == w.group) {
            return Err(format!("group `{}` is given twice", w.group));
        }
    }
    let total: u32 = weights.iter().map(|w| u32::from(w.percent)).sum();
    if total != 100 {
        return Err(format!("the weights add up to {total}, not 100"));
    }
    Ok(())
}

/// The route's rules with the weight of every backendRef that is a
/// group's Service set to that group's percent (0 for a group not given).
/// Answers `None` when no rule names any of the backends.
pub fn set_route_weights(
    rules: &Value,
    weights: &[GroupWeight],
    backends: &[(String, String)],
) -> Option<Value> {
    let mut rules = rules.clone();
    let mut touched = false;
    for rule in rules.as_array_mut().into_iter().flatten() {
        for backend in rule["backendRefs"].as_array_mut().into_iter().flatten() {
            let name = backend["name"].as_str().unwrap_or_default();
            let Some((group, _)) = backends.iter().find(|(_, svc)| svc == name) else {
                continue;
            };
            let percent = weights
                .iter()
                .find(|w| w.group == *group)
                .map_or(0, |w| w.percent);
            if let Some(obj) = backend.as_object_mut() {
                obj.insert("weight".into(), Value::from(percent));
                touched = true;
            }
        }
    }
    touched.then_some(rules)
}

/// Every group's weight in the first rule that names its Service (a
/// backendRef without a weight weighs 1, as the Gateway API defines), as
/// percentages adding up to 100 (largest remainders round up); groups no
/// rule names are left out. All zero when every weight is zero.
pub fn route_weights(rules: &Value, backends: &[(String, String)]) -> Vec<GroupWeight> {
    let raw: Vec<(&str, u64)> = backends
        .iter()
        .filter_map(|(group, svc)| {
            let backend = rules
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
                .find(|b| b["name"] == svc.as_str())?;
            Some((group.as_str(), backend["weight"].as_u64().unwrap_or(1)))
        })
        .collect();
    percentages(&raw)
}

/// Weights scaled to percentages that add up to 100.
fn percentages(raw: &[(&str, u64)]) -> Vec<GroupWeight> {
    let total: u64 = raw.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return raw.iter().map(|(g, _)| GroupWeight::new(*g, 0)).collect();
    }
    let mut shares: Vec<(u64, u64)> = raw
        .iter()
        .map(|(_, w)| (w.saturating_mul(100) / total, w.saturating_mul(100) % total))
        .collect();
    let given: u64 = shares.iter().map(|(p, _)| p).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1));
    for &i in order.iter().take(100usize.saturating_sub(given as usize)) {
        shares[i].0 += 1;
    }
    raw.iter()
        .zip(shares)
        .map(|((g, _), (p, _))| GroupWeight::new(*g, u8::try_from(p).unwrap_or(100)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn w(group: &str, percent: u8) -> GroupWeight {
        GroupWeight::new(group, percent)
    }

    fn pairs(ws: &[GroupWeight]) -> Vec<(String, u8)> {
        ws.iter().map(|w| (w.group.clone(), w.percent)).collect()
    }

    #[test]
    fn a_service_switches_all_traffic_to_one_group() {
        assert_eq!(sole_group(&[w("blue", 0), w("green", 100)]), Ok("green"));
        assert_eq!(sole_group(&[w("green", 100)]), Ok("green"));
        let e = sole_group(&[w("blue", 90), w("green", 10)]).unwrap_err();
        assert!(e.starts_with("mode `service` cannot give blue 90%, green 10%"));
        assert!(e.contains("use mode `httproute`"));
        assert!(sole_group(&[w("blue", 100), w("green", 100)]).is_err());
        assert!(sole_group(&[]).is_err());
    }

    #[test]
    fn a_selector_reads_as_all_to_the_selected_group() {
        let groups = ["blue".to_string(), "green".to_string()];
        assert_eq!(
            pairs(&from_selector("green", &groups)),
            [("green".to_string(), 100), ("blue".to_string(), 0)]
        );
        assert_eq!(
            pairs(&from_selector("red", &[])),
            [("red".to_string(), 100)]
        );
    }

    #[test]
    fn backends_map_groups_to_services() {
        assert_eq!(
            parse_backends(" blue=shop-blue, green = shop-green ,").unwrap(),
            [
                ("blue".to_string(), "shop-blue".to_string()),
                ("green".to_string(), "shop-green".to_string())
            ]
        );
        assert!(
            parse_backends("blue")
                .unwrap_err()
                .contains("`blue` is not group=service")
        );
        assert!(parse_backends("=x").is_err());
        assert!(parse_backends("").is_err());
    }

    fn backends() -> Vec<(String, String)> {
        parse_backends("blue=shop-blue,green=shop-green").unwrap()
    }

    #[test]
    fn weights_must_name_known_groups_once_and_add_up_to_100() {
        assert_eq!(check(&[w("blue", 90), w("green", 10)], &backends()), Ok(()));
        assert_eq!(
            check(&[w("red", 100)], &backends()),
            Err("group `red` has no backend in parameter `backends`".into())
        );
        assert_eq!(
            check(&[w("blue", 50), w("blue", 50)], &backends()),
            Err("group `blue` is given twice".into())
        );
        assert_eq!(
            check(&[w("blue", 50)], &backends()),
            Err("the weights add up to 50, not 100".into())
        );
    }

    #[test]
    fn every_rule_gets_the_weights_and_other_backends_are_left_alone() {
        let rules = json!([
            {"backendRefs": [{"name": "shop-blue", "port": 80, "weight": 100}, {"name": "shop-green", "port": 80}]},
            {"matches": [{"path": {"value": "/api"}}],
             "backendRefs": [{"name": "shop-green", "port": 80}, {"name": "other", "weight": 5}]}
        ]);
        let set = set_route_weights(&rules, &[w("blue", 90), w("green", 10)], &backends()).unwrap();
        assert_eq!(
            set[0]["backendRefs"][0],
            json!({"name": "shop-blue", "port": 80, "weight": 90})
        );
        assert_eq!(set[0]["backendRefs"][1]["weight"], 10);
        assert_eq!(set[1]["backendRefs"][0]["weight"], 10);
        assert_eq!(
            set[1]["backendRefs"][1],
            json!({"name": "other", "weight": 5})
        );
        assert_eq!(set[1]["matches"], rules[1]["matches"]);
        let only_green = set_route_weights(&rules, &[w("green", 100)], &backends()).unwrap();
        assert_eq!(only_green[0]["backendRefs"][0]["weight"], 0);
        assert_eq!(
            set_route_weights(&json!([{"backendRefs": [{"name": "x"}]}]), &[], &backends()),
            None
        );
        assert_eq!(set_route_weights(&json!("garbage"), &[], &backends()), None);
    }

    #[test]
    fn route_weights_read_back_as_percentages() {
        let rules = json!([{"backendRefs": [{"name": "shop-blue", "weight": 90}, {"name": "shop-green", "weight": 10}]},
                           {"backendRefs": [{"name": "shop-green", "weight": 100}]}]);
        assert_eq!(
            pairs(&route_weights(&rules, &backends())),
            [("blue".to_string(), 90), ("green".to_string(), 10)]
        );
        let thirds =
            json!([{"backendRefs": [{"name": "shop-blue", "weight": 2}, {"name": "shop-green"}]}]);
        assert_eq!(
            pairs(&route_weights(&thirds, &backends())),
            [("blue".to_string(), 67), ("green".to_string(), 33)]
        );
        let zero = json!([{"backendRefs": [{"name": "shop-blue", "weight": 0}, {"name": "shop-green", "weight": 0}]}]);
        assert!(
            route_weights(&zero, &backends())
                .iter()
                .all(|w| w.percent == 0)
        );
        assert!(route_weights(&json!(null), &backends()).is_empty());
    }
}
