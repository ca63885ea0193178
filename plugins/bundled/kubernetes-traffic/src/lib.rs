//! `kubernetes-traffic`, a bundled traffic plugin: steers traffic between
//! groups in one Kubernetes cluster, in one of two modes.
//!
//! - `service`: a Service's selector picks the pods of one group, through
//!   the label `group_label` (`greenlight.dev/group` by default). Setting
//!   weights patches `spec.selector[group_label]` to the group that gets
//!   100%; any other split is refused, since a selector switches all
//!   traffic at once (blue-green). Reading answers 100 for the selected
//!   group and 0 for every other group in `groups`.
//! - `httproute`: a Gateway API HTTPRoute whose rules send traffic to one
//!   Service per group (`backends = "blue=shop-blue,green=shop-green"`).
//!   Setting weights writes each group's percent as the `weight` of every
//!   backendRef naming its Service, in every rule (0 for a group not
//!   given); reading answers each group's weight in the first rule naming
//!   it, as percentages.
//!
//! Parameters:
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `cluster` | required | the API server's origin (`https://10.0.0.1:6443`) |
//! | `namespace` | required | the namespace of the Service or HTTPRoute |
//! | `mode` | required | `service` or `httproute` |
//! | `token_secret` | `kubernetes-token` | the grant's secret holding the bearer token; no such secret means no `Authorization` header (client certificates) |
//! | `service` | required in `service` mode | the Service's name |
//! | `group_label` | `greenlight.dev/group` | the pod label that tells the groups apart |
//! | `groups` | none | in `service` mode, every group (`blue,green`), so that reading names the unselected ones with 0 |
//! | `route` | required in `httproute` mode | the HTTPRoute's name |
//! | `backends` | required in `httproute` mode | `group=Service` pairs |
//! | `api_version` | `v1` | the HTTPRoute API version to use (`v1` or `v1beta1`) |
//!
//! An API server applies a Service or an HTTPRoute change as it stores it,
//! so setting weights answers done once the patch is accepted; weights
//! already in force are not written again.

mod weights;

use greenlight_plugin_sdk::kube::{self, Cluster};
use greenlight_plugin_sdk::{Error, GroupWeight, Params, ReleaseContext, Shift, Traffic, log};
use serde_json::{Value, json};

struct KubernetesTraffic;

/// The object being steered, from the parameters.
enum Steered {
    Service {
        name: String,
        label: String,
        groups: Vec<String>,
    },
    Route {
        name: String,
        backends: Vec<(String, String)>,
        api_version: String,
    },
}

/// Where the object lives and how to reach it.
struct Settings {
    cluster: Cluster,
    origin: String,
    namespace: String,
    steered: Steered,
}

impl Settings {
    fn read(ctx: &ReleaseContext) -> Result<Settings, Error> {
        let origin: String = ctx.required("cluster")?;
        let token_secret: String = ctx.param_or("token_secret", "kubernetes-token".to_string())?;
        let mode: String = ctx.required("mode")?;
        let steered = match mode.as_str() {
            "service" => Steered::Service {
                name: ctx.required("service")?,
                label: ctx.param_or("group_label", "greenlight.dev/group".to_string())?,
                groups: ctx.param_list("groups"),
            },
            "httproute" => Steered::Route {
                name: ctx.required("route")?,
                backends: weights::parse_backends(&ctx.required::<String>("backends")?)
                    .map_err(Error::new)?,
                api_version: ctx.param_or("api_version", "v1".to_string())?,
            },
            other => {
                return Err(Error::new(format!(
                    "parameter `mode`: `{other}` is not `service` or `httproute`"
                )));
            }
        };
        Ok(Settings {
            cluster: Cluster::new(&origin, &token_secret),
            origin,
            namespace: ctx.required("namespace")?,
            steered,
        })
    }

    /// The path of the steered object and how errors name it.
    fn object(&self) -> (String, String) {
        let ns = &self.namespace;
        match &self.steered {
            Steered::Service { name, .. } => (
                format!("/api/v1/namespaces/{ns}/services/{name}"),
                format!("Service {ns}/{name}"),
            ),
            Steered::Route {
                name, api_version, ..
            } => (
                format!(
                    "/apis/gateway.networking.k8s.io/{api_version}/namespaces/{ns}/httproutes/{name}"
                ),
                format!("HTTPRoute {ns}/{name}"),
            ),
        }
    }

    fn read_object(&self) -> Result<Value, Error> {
        let (path, what) = self.object();
        self.cluster.get(&path, &what)
    }

    /// Merge-patches the steered object, guarded by the resource version
    /// it was read at.
    fn patch(&self, current: &Value, spec: Value) -> Result<(), Error> {
        let (path, what) = self.object();
        let rv = current["metadata"]["resourceVersion"].clone();
        let body = json!({"metadata": {"resourceVersion": rv}, "spec": spec});
        self.cluster.patch(&path, &what, kube::MERGE_PATCH, &body)?;
        log::info(
            "Traffic steered.",
            &[("object", &what), ("cluster", &self.origin)],
        );
        Ok(())
    }
}

fn set_service(s: &Settings, label: &str, weights: &[GroupWeight]) -> Result<(), Error> {
    let group = weights::sole_group(weights).map_err(Error::new)?;
    let current = s.read_object()?;
    if current["spec"]["selector"][label] == group {
        return Ok(());
    }
    s.patch(&current, json!({"selector": {label: group}}))
}

fn set_route(
    s: &Settings,
    backends: &[(String, String)],
    weights: &[GroupWeight],
) -> Result<(), Error> {
    weights::check(weights, backends).map_err(Error::new)?;
    let current = s.read_object()?;
    let rules = &current["spec"]["rules"];
    let updated = weights::set_route_weights(rules, weights, backends).ok_or_else(|| {
        Error::new(format!(
            "{} has no backendRef naming any of the Services in `backends`",
            s.object().1
        ))
    })?;
    if updated == *rules {
        return Ok(());
    }
    s.patch(&current, json!({"rules": updated}))
}

impl Traffic for KubernetesTraffic {
    fn set_weights(ctx: &ReleaseContext, weights: &[GroupWeight]) -> Result<Shift, Error> {
        let settings = Settings::read(ctx)?;
        match &settings.steered {
            Steered::Service { label, .. } => set_service(&settings, label, weights)?,
            Steered::Route { backends, .. } => set_route(&settings, backends, weights)?,
        }
        Ok(Shift::Done)
    }

    fn current_weights(ctx: &ReleaseContext) -> Result<Vec<GroupWeight>, Error> {
        let settings = Settings::read(ctx)?;
        let current = settings.read_object()?;
        match &settings.steered {
            Steered::Service { label, groups, .. } => {
                let selected = current["spec"]["selector"][label.as_str()]
                    .as_str()
                    .ok_or_else(|| {
                        Error::new(format!(
                            "{} does not select pods by the label `{label}`",
                            settings.object().1
                        ))
                    })?;
                Ok(weights::from_selector(selected, groups))
            }
            Steered::Route { backends, .. } => {
                Ok(weights::route_weights(&current["spec"]["rules"], backends))
            }
        }
    }
}

greenlight_plugin_sdk::export_traffic!(KubernetesTraffic);
