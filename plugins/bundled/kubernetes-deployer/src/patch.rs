//! The patches the deployer sends: a strategic merge patch that sets the
//! image of the chosen containers and records the release on the
//! workload, and a JSON patch that puts back the pod template recorded
//! before it. Pure functions of the workload as read, so they are tested
//! without a cluster.

use greenlight_plugin_sdk::kube::{self, Workload};
use serde_json::{Value, json};

/// The release that last deployed to the workload.
pub const RELEASE: &str = "greenlight.dev/release";
/// The version it deployed (also set on the pod template, so pods show it).
pub const VERSION: &str = "greenlight.dev/version";
/// The idempotency key of the deploy that patched it last.
pub const DEPLOY_KEY: &str = "greenlight.dev/deploy-key";
/// The idempotency key of the rollback that patched it last.
pub const ROLLBACK_KEY: &str = "greenlight.dev/rollback-key";
/// The pod template, as JSON, from before the release changed it.
pub const PREVIOUS_TEMPLATE: &str = "greenlight.dev/previous-template";

/// What a deploy writes, besides the image.
pub struct Deploy<'a> {
    pub release_id: &'a str,
    pub version: &'a str,
    pub key: &'a str,
    /// The image every chosen container gets.
    pub image: &'a str,
}

/// The image for a version: `{version}` in the template replaced.
pub fn image_for(template: &str, version: &str) -> String {
    template.replace("{version}", version)
}

/// The containers a deploy changes: those the target names (each must be
/// in the pod template), or every container of the template.
pub fn chosen_containers(target: &Workload, current: &Value) -> Result<Vec<String>, String> {
    let present: Vec<String> = kube::images(&current["spec"]["template"]["spec"])
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if present.is_empty() {
        return Err(format!(
            "{} has no containers in its pod template",
            target.describe()
        ));
    }
    if target.containers.is_empty() {
        return Ok(present);
    }
    match target.containers.iter().find(|c| !present.contains(c)) {
        Some(missing) => Err(format!(
            "{} has no container `{missing}` (it has {})",
            target.describe(),
            present.join(", ")
        )),
        None => Ok(target.containers.clone()),
    }
}

/// The strategic merge patch of a deploy. The pod template before the
/// patch is recorded, unless this release already deployed this version
/// (an attempt retried under a new key): the template then is already the
/// new one, and the recorded one is kept. The resource version makes the
/// API server refuse the patch if the workload changed since it was read.
pub fn deploy(current: &Value, containers: &[String], d: &Deploy) -> Value {
    let mut annotations = json!({RELEASE: d.release_id, VERSION: d.version, DEPLOY_KEY: d.key});
    let retried = kube::annotation(current, RELEASE) == Some(d.release_id)
        && kube::annotation(current, VERSION) == Some(d.version);
    if !retried {
        annotations[PREVIOUS_TEMPLATE] = json!(current["spec"]["template"].to_string());
    }
    let mut metadata = json!({"annotations": annotations});
    if let Some(rv) = current["metadata"]["resourceVersion"].as_str() {
        metadata["resourceVersion"] = json!(rv);
    }
    let containers: Vec<Value> = containers
        .iter()
        .map(|name| json!({"name": name, "image": d.image}))
        .collect();
    json!({
        "metadata": metadata,
        "spec": {"template": {
            "metadata": {"annotations": {VERSION: d.version}},
            "spec": {"containers": containers},
        }},
    })
}

/// The pod template recorded before the release changed the workload, or
/// `None` when the release did not change it (another release's record
/// is not this release's to restore).
pub fn previous_template(current: &Value, release_id: &str) -> Option<Result<Value, String>> {
    if kube::annotation(current, RELEASE) != Some(release_id) {
        return None;
    }
    let recorded = kube::annotation(current, PREVIOUS_TEMPLATE)?;
    Some(
        serde_json::from_str::<Value>(recorded)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("the annotation {PREVIOUS_TEMPLATE} is not a pod template")),
    )
}

/// The JSON patch of a rollback: the recorded template back, the key
/// recorded, and the version annotation set to the previous version (or
/// removed when there was none).
pub fn rollback(current: &Value, template: Value, key: &str, previous: Option<&str>) -> Value {
    let path = |name: &str| format!("/metadata/annotations/{}", name.replace('/', "~1"));
    let mut ops = vec![
        json!({"op": "replace", "path": "/spec/template", "value": template}),
        json!({"op": "add", "path": path(ROLLBACK_KEY), "value": key}),
    ];
    match previous {
        Some(version) => ops.push(json!({"op": "add", "path": path(VERSION), "value": version})),
        None if kube::annotation(current, VERSION).is_some() => {
            ops.push(json!({"op": "remove", "path": path(VERSION)}))
        }
        None => {}
    }
    Value::Array(ops)
}

#[cfg(test)]
mod tests {
    use greenlight_plugin_sdk::Target;

    use super::*;

    fn workload(containers: &str) -> Workload {
        let target = Target {
            id: "shop-a".into(),
            address: String::new(),
            group: String::new(),
            labels: Vec::new(),
            attributes: [
                ("cluster", "https://k:6443"),
                ("namespace", "shop"),
                ("kind", "Deployment"),
                ("name", "web"),
                ("containers", containers),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        Workload::from_target(&target, "kubernetes-token").unwrap()
    }

    fn current(annotations: Value) -> Value {
        json!({
            "metadata": {"name": "web", "resourceVersion": "41", "annotations": annotations},
            "spec": {"template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "shop:1"}, {"name": "proxy", "image": "envoy:1"}]},
            }},
        })
    }

    const D: Deploy = Deploy {
        release_id: "r2",
        version: "2.0.0",
        key: "k-1",
        image: "registry.example.com/shop:2.0.0",
    };

    #[test]
    fn the_version_goes_into_the_image_template() {
        assert_eq!(
            image_for("registry.example.com/shop:{version}", "2.0.0"),
            "registry.example.com/shop:2.0.0"
        );
        assert_eq!(image_for("shop:latest", "2.0.0"), "shop:latest");
    }

    #[test]
    fn containers_are_the_named_ones_or_all() {
        let c = current(json!({}));
        assert_eq!(
            chosen_containers(&workload(""), &c).unwrap(),
            ["web", "proxy"]
        );
        assert_eq!(chosen_containers(&workload("web"), &c).unwrap(), ["web"]);
        assert_eq!(
            chosen_containers(&workload("web,api"), &c).unwrap_err(),
            "Deployment shop/web has no container `api` (it has web, proxy)"
        );
        assert!(chosen_containers(&workload(""), &json!({})).is_err());
    }

    #[test]
    fn a_deploy_sets_images_annotations_and_records_the_template_before() {
        let c = current(json!({RELEASE: "r1", VERSION: "1.0.0"}));
        let patch = deploy(&c, &["web".to_string()], &D);
        let annotations = &patch["metadata"]["annotations"];
        assert_eq!(annotations[RELEASE], "r2");
        assert_eq!(annotations[VERSION], "2.0.0");
        assert_eq!(annotations[DEPLOY_KEY], "k-1");
        let recorded: Value =
            serde_json::from_str(annotations[PREVIOUS_TEMPLATE].as_str().unwrap()).unwrap();
        assert_eq!(recorded, c["spec"]["template"]);
        assert_eq!(patch["metadata"]["resourceVersion"], "41");
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "registry.example.com/shop:2.0.0"}])
        );
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"][VERSION],
            "2.0.0"
        );
    }

    #[test]
    fn a_retried_attempt_keeps_the_recorded_template() {
        let c = current(json!({RELEASE: "r2", VERSION: "2.0.0", DEPLOY_KEY: "k-0",
                               PREVIOUS_TEMPLATE: "{\"spec\":{}}"}));
        let patch = deploy(&c, &["web".to_string()], &D);
        assert!(patch["metadata"]["annotations"][PREVIOUS_TEMPLATE].is_null());
        assert_eq!(patch["metadata"]["annotations"][DEPLOY_KEY], "k-1");
        // Another version by the same release is a new deploy.
        let c = current(json!({RELEASE: "r2", VERSION: "1.9.0"}));
        assert!(deploy(&c, &[], &D)["metadata"]["annotations"][PREVIOUS_TEMPLATE].is_string());
    }

    #[test]
    fn only_the_releases_own_record_is_restored() {
        let recorded = json!({"spec": {"containers": [{"name": "web", "image": "shop:1"}]}});
        let c = current(json!({RELEASE: "r2", PREVIOUS_TEMPLATE: recorded.to_string()}));
        assert_eq!(previous_template(&c, "r2"), Some(Ok(recorded)));
        assert_eq!(previous_template(&c, "r3"), None);
        assert_eq!(
            previous_template(&current(json!({RELEASE: "r2"})), "r2"),
            None
        );
        let broken = current(json!({RELEASE: "r2", PREVIOUS_TEMPLATE: "[1"}));
        assert!(matches!(previous_template(&broken, "r2"), Some(Err(_))));
    }

    #[test]
    fn a_rollback_replaces_the_template_and_sets_or_removes_the_version() {
        let c = current(json!({VERSION: "2.0.0"}));
        let t = json!({"spec": {}});
        let ops = rollback(&c, t.clone(), "rk", Some("1.0.0"));
        assert_eq!(
            ops,
            json!([
                {"op": "replace", "path": "/spec/template", "value": t},
                {"op": "add", "path": "/metadata/annotations/greenlight.dev~1rollback-key", "value": "rk"},
                {"op": "add", "path": "/metadata/annotations/greenlight.dev~1version", "value": "1.0.0"},
            ])
        );
        let ops = rollback(&c, t.clone(), "rk", None);
        assert_eq!(
            ops[2],
            json!({"op": "remove", "path": "/metadata/annotations/greenlight.dev~1version"})
        );
        assert_eq!(
            rollback(&current(json!({})), t, "rk", None)
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }
}
