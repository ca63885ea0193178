//! Whether the plugins of a flow can call an environment's targets: a
//! grant that names some of an environment's target origins but not all
//! has drifted from the inventory (a target was added, or moved), and the
//! check would fail with `host_denied` on the first release that reaches
//! the missing ones. Flow and inventory changes are warned of it.

use std::collections::BTreeSet;

use super::AppState;
use crate::domain::flow::{Flow, PluginRole};
use crate::domain::grant::Origin;
use crate::domain::inventory::Environment;

/// The most targets a warning names; the rest are counted.
const NAMED: usize = 3;

/// One warning per plugin of `flows` (deployers and checks, which are
/// given targets) and environment whose targets its grant reaches only in
/// part. A grant that reaches none of them is taken as not calling them.
pub fn drift(state: &AppState, flows: &[Flow], environments: &[Environment]) -> Vec<String> {
    let mut warned = BTreeSet::new();
    let mut warnings = Vec::new();
    for flow in flows {
        for (path, role, used) in flow.plugin_uses() {
            if !matches!(role, PluginRole::Check | PluginRole::Deployer) {
                continue;
            }
            let Ok(grant) = state.registry.grant(&used.plugin) else {
                continue;
            };
            if grant.release_targets {
                continue;
            }
            for environment in environments {
                let reached: Vec<(&str, Origin, bool)> = environment
                    .targets
                    .iter()
                    .filter_map(|t| {
                        let origin = Origin::of_address(&t.address)?;
                        let allowed = grant.allows(&origin);
                        Some((t.id.as_str(), origin, allowed))
                    })
                    .collect();
                let allowed = reached.iter().filter(|(_, _, a)| *a).count();
                if allowed == 0 || allowed == reached.len() {
                    continue;
                }
                let place = format!("{}/{}", environment.application, environment.name);
                if !warned.insert((used.plugin.clone(), place.clone())) {
                    continue;
                }
                let missing: Vec<String> = reached
                    .iter()
                    .filter(|(_, _, a)| !*a)
                    .map(|(id, origin, _)| format!("{id} ({origin})"))
                    .collect();
                let mut named = missing[..missing.len().min(NAMED)].join(", ");
                if missing.len() > NAMED {
                    named.push_str(&format!(" and {} more", missing.len() - NAMED));
                }
                warnings.push(format!(
                    "flow {} {path}: plugin `{plugin}` may call {allowed} of the {total} targets \
                     of {place}, not {named}; let it call every target of its releases with \
                     `greenlight plugin grant {plugin} --allow-release-targets`",
                    flow.name,
                    plugin = used.plugin,
                    total = reached.len(),
                ));
            }
        }
    }
    warnings
}
