//! Reaching a Kubernetes workload from a plugin: the workload a target
//! names in its attributes, requests to its cluster's API server with
//! errors a release manager can act on, and the pods of its current pod
//! template. The bundled `kubernetes-*` plugins share it, so they read
//! targets and report a refused token or a missing workload alike.
//!
//! A workload target carries the attributes `cluster` (the API server's
//! origin, `https://10.0.0.1:6443`), `namespace`, `kind` (`Deployment`,
//! `StatefulSet` or `DaemonSet`) and `name`, and optionally `containers`
//! (comma-separated; every container of the pod template when absent) and
//! `token_secret` (the grant's secret holding the cluster's bearer token).
//! TLS is the host's business: the grant names the CA of each cluster and,
//! for client-certificate authentication, the certificate to present.

use serde_json::Value;

use crate::error::Error;
use crate::http::{self, HttpError, Response};
use crate::platform::config;
use crate::types::Target;

/// The content type of a strategic merge patch (lists of containers merge
/// by name).
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
/// The content type of a JSON merge patch (RFC 7386).
pub const MERGE_PATCH: &str = "application/merge-patch+json";
/// The content type of a JSON patch (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";

/// The kinds of workload whose rollout can be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl Kind {
    /// The kind as the API spells it, or `None` for any other word.
    pub fn parse(kind: &str) -> Option<Kind> {
        match kind {
            "Deployment" => Some(Kind::Deployment),
            "StatefulSet" => Some(Kind::StatefulSet),
            "DaemonSet" => Some(Kind::DaemonSet),
            _ => None,
        }
    }

    /// The kind's name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
        }
    }

    /// The resource in the API's paths.
    fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
        }
    }
}

/// The workload a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The id of the target that names it.
    pub target_id: String,
    /// The API server's origin, without a trailing slash.
    pub cluster: String,
    /// The workload's namespace.
    pub namespace: String,
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The containers a deploy changes; empty for every container.
    pub containers: Vec<String>,
    /// The grant's secret holding the cluster's bearer token.
    pub token_secret: String,
}

impl Workload {
    /// The workload `target` names in its attributes. `token_secret` is the
    /// secret used when the target names none. A missing or invalid
    /// attribute is an error naming the target and the attribute.
    pub fn from_target(target: &Target, token_secret: &str) -> Result<Workload, Error> {
        let required = |key: &str| {
            target
                .attribute(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::new(format!(
                        "target `{}` lacks the attribute `{key}`, which a Kubernetes workload \
                         target must carry",
                        target.id
                    ))
                })
        };
        let cluster = required("cluster")?.trim_end_matches('/');
        if !cluster.starts_with("https://") && !cluster.starts_with("http://") {
            return Err(Error::new(format!(
                "target `{}`: attribute `cluster` must be the API server's origin, such as \
                 `https://10.0.0.1:6443`, not `{cluster}`",
                target.id
            )));
        }
        let namespace = required("namespace")?.to_string();
        let kind = required("kind")?;
        let kind = Kind::parse(kind).ok_or_else(|| {
            Error::new(format!(
                "target `{}`: attribute `kind` is `{kind}`; use Deployment, StatefulSet or \
                 DaemonSet",
                target.id
            ))
        })?;
        let containers = target
            .attribute("containers")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Workload {
            target_id: target.id.clone(),
            cluster: cluster.to_string(),
            namespace,
            kind,
            name: required("name")?.to_string(),
            containers,
            token_secret: target
                .attribute("token_secret")
                .unwrap_or(token_secret)
                .to_string(),
        })
    }

    /// The workload's path on the API server.
    pub fn path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.resource(),
            self.name
        )
    }

    /// `Deployment shop/web`.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }

    /// The client for its cluster, with the token of its secret if granted.
    pub fn client(&self) -> Cluster {
        Cluster::new(&self.cluster, &self.token_secret)
    }

    /// The path listing the workload's pods, selected by the labels of
    /// `spec.selector.matchLabels` of the workload as read.
    pub fn pods_path(&self, workload: &Value) -> Result<String, Error> {
        let selector = label_selector(workload).ok_or_else(|| {
            Error::new(format!(
                "{} has no spec.selector.matchLabels to find its pods by",
                self.describe()
            ))
        })?;
        Ok(format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}",
            self.namespace,
            http::encode_query(&selector)
        ))
    }
}

/// A cluster's API server, and the token to present to it.
#[derive(Debug, Clone)]
pub struct Cluster {
    origin: String,
    /// The grant's secret the token comes from, named in refusals.
    token_secret: String,
    token: Option<String>,
}

impl Cluster {
    /// The API server at `origin`, with the bearer token the grant's secret
    /// `token_secret` holds; when the grant holds no such secret, requests
    /// carry no `Authorization` header (client-certificate authentication).
    pub fn new(origin: &str, token_secret: &str) -> Cluster {
        Cluster {
            origin: origin.trim_end_matches('/').to_string(),
            token_secret: token_secret.to_string(),
            token: config::secret(token_secret),
        }
    }

    /// What was presented, for refusals.
    fn credentials(&self) -> String {
        match self.token {
            Some(_) => format!("the bearer token in secret `{}`", self.token_secret),
            None => format!(
                "the client certificate (no secret `{}` is granted, so no token was sent)",
                self.token_secret
            ),
        }
    }

    /// Reads the object at `path`; `what` names it in errors.
    pub fn get(&self, path: &str, what: &str) -> Result<Value, Error> {
        let request = http::Request::get(http::join(&self.origin, path));
        self.send(request, what)
    }

    /// Patches the object at `path` with `patch`, of the content type
    /// given, and answers the object as patched.
    pub fn patch(
        &self,
        path: &str,
        what: &str,
        content_type: &str,
        patch: &Value,
    ) -> Result<Value, Error> {
        let request = http::Request::patch(http::join(&self.origin, path))
            .body(content_type, patch.to_string());
        self.send(request, what)
    }

    fn send(&self, request: http::Request, what: &str) -> Result<Value, Error> {
        let response = request
            .header("accept", "application/json")
            .bearer(self.token.as_deref())
            .send()
            .map_err(|e| transport_error(&self.origin, e))?;
        if !response.is_success() {
            return Err(status_error(
                &self.origin,
                what,
                &self.credentials(),
                &response,
            ));
        }
        response
            .json()
            .map_err(|e| Error::new(format!("cluster {}: {what}: {e}", self.origin)))
    }
}

/// A request that got no answer: retryable, for the cluster may be back.
fn transport_error(origin: &str, e: HttpError) -> Error {
    let retryable = matches!(
        e,
        HttpError::Transport(_) | HttpError::Timeout(_) | HttpError::Body(_)
    );
    let message = format!("cluster {origin}: {e}");
    if retryable {
        Error::retryable(message)
    } else {
        Error::new(message)
    }
}

/// An answer outside 2xx, in words: the API server's own message (from its
/// `Status` body) after what it means for the plugin.
fn status_error(origin: &str, what: &str, credentials: &str, response: &Response) -> Error {
    let body: Value = response.json().unwrap_or(Value::Null);
    let detail = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| response.text().trim().chars().take(200).collect());
    let status = response.status;
    match status {
        401 => Error::new(format!(
            "cluster {origin} refused {credentials} (HTTP 401: not authenticated)"
        )),
        403 => Error::new(format!(
            "cluster {origin} refused {credentials} access to {what} (HTTP 403): {detail}"
        )),
        404 => Error::new(format!("{what} does not exist in cluster {origin}")),
        409 => Error::retryable(format!(
            "cluster {origin}: {what} changed while it was being updated (HTTP 409): {detail}"
        )),
        429 | 500.. => Error::retryable(format!(
            "cluster {origin} answered HTTP {status} for {what}: {detail}"
        )),
        _ => Error::new(format!(
            "cluster {origin} answered HTTP {status} for {what}: {detail}"
        )),
    }
}

/// `app=shop,tier=web` from `spec.selector.matchLabels`, sorted by key, or
/// `None` when the workload selects by none.
pub fn label_selector(workload: &Value) -> Option<String> {
    let labels = workload["spec"]["selector"]["matchLabels"].as_object()?;
    let mut pairs: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    pairs.sort();
    Some(pairs.join(","))
}

/// A metadata annotation of an object, if set.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// The name and image of every container of a pod spec.
pub fn images(pod_spec: &Value) -> Vec<(String, String)> {
    pod_spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("image"))
        })
        .collect()
}

/// The pods of a pod list (or array) that run the workload's current pod
/// template: every container of the template with the template's image.
/// Pods being deleted are left out.
pub fn current_pods(workload: &Value, pods: &Value) -> Vec<Value> {
    let wanted = images(&workload["spec"]["template"]["spec"]);
    let items = pods["items"].as_array().or_else(|| pods.as_array());
    items
        .into_iter()
        .flatten()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .filter(|pod| {
            let running = images(&pod["spec"]);
            !wanted.is_empty() && wanted.iter().all(|w| running.contains(w))
        })
        .cloned()
        .collect()
}

/// Whether a pod's `Ready` condition is true.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The restarts of every container of a pod, added up.
pub fn restarts(pod: &Value) -> i64 {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn target(attributes: &[(&str, &str)]) -> Target {
        Target {
            id: "shop-a".into(),
            address: String::new(),
            group: String::new(),
            labels: Vec::new(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const FULL: &[(&str, &str)] = &[
        ("cluster", "https://10.0.0.1:6443/"),
        ("namespace", "shop"),
        ("kind", "StatefulSet"),
        ("name", "db"),
        ("containers", "db, sidecar,"),
    ];

    #[test]
    fn a_target_names_its_workload() {
        let w = Workload::from_target(&target(FULL), "kubernetes-token").unwrap();
        assert_eq!(w.cluster, "https://10.0.0.1:6443");
        assert_eq!(w.kind, Kind::StatefulSet);
        assert_eq!(w.containers, ["db", "sidecar"]);
        assert_eq!(w.token_secret, "kubernetes-token");
        assert_eq!(w.path(), "/apis/apps/v1/namespaces/shop/statefulsets/db");
        assert_eq!(w.describe(), "StatefulSet shop/db");
        let mut own = FULL.to_vec();
        own.push(("token_secret", "cluster-b-token"));
        let w = Workload::from_target(&target(&own), "kubernetes-token").unwrap();
        assert_eq!(w.token_secret, "cluster-b-token");
    }

    #[test]
    fn a_missing_or_wrong_attribute_names_the_target_and_the_attribute() {
        for missing in ["cluster", "namespace", "kind", "name"] {
            let attrs: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let e = Workload::from_target(&target(&attrs), "t").unwrap_err();
            assert_eq!(
                e.message(),
                format!(
                    "target `shop-a` lacks the attribute `{missing}`, which a Kubernetes \
                     workload target must carry"
                )
            );
            assert!(!e.is_retryable());
        }
        let mut job = FULL.to_vec();
        job[2] = ("kind", "Job");
        let e = Workload::from_target(&target(&job), "t").unwrap_err();
        assert!(e.message().contains("`kind` is `Job`"), "{e}");
        let mut bare = FULL.to_vec();
        bare[0] = ("cluster", "10.0.0.1:6443");
        let e = Workload::from_target(&target(&bare), "t").unwrap_err();
        assert!(e.message().contains("attribute `cluster`"), "{e}");
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            received_ms: 0.0,
        }
    }

    #[test]
    fn refusals_name_the_cluster_and_only_transient_errors_are_retryable() {
        let o = "https://k:6443";
        const C: &str = "the bearer token in secret `t`";
        let e = status_error(o, "Deployment shop/web", C, &response(401, "{}"));
        assert_eq!(
            e.message(),
            "cluster https://k:6443 refused the bearer token in secret `t` (HTTP 401: not \
             authenticated)"
        );
        assert!(!e.is_retryable());
        let forbidden = r#"{"kind":"Status","message":"deployments.apps \"web\" is forbidden"}"#;
        let e = status_error(o, "Deployment shop/web", C, &response(403, forbidden));
        assert!(
            e.message()
                .contains("refused the bearer token in secret `t` access to Deployment shop/web")
        );
        assert!(
            e.message()
                .ends_with("deployments.apps \"web\" is forbidden")
        );
        let e = status_error(o, "Deployment shop/web", C, &response(404, ""));
        assert_eq!(
            e.message(),
            "Deployment shop/web does not exist in cluster https://k:6443"
        );
        assert!(!e.is_retryable());
        assert!(status_error(o, "x", C, &response(503, "down")).is_retryable());
        assert!(status_error(o, "x", C, &response(409, "{}")).is_retryable());
        assert!(!status_error(o, "x", C, &response(422, "{}")).is_retryable());
        let e = transport_error(o, HttpError::Transport("connection refused".into()));
        assert!(e.is_retryable());
        assert_eq!(
            e.message(),
            "cluster https://k:6443: request failed: connection refused"
        );
    }

    #[test]
    fn the_selector_is_built_from_match_labels() {
        let w = json!({"spec": {"selector": {"matchLabels": {"tier": "web", "app": "shop"}}}});
        assert_eq!(label_selector(&w).as_deref(), Some("app=shop,tier=web"));
        assert_eq!(label_selector(&json!({"spec": {}})), None);
        let workload = Workload::from_target(&target(FULL), "t").unwrap();
        assert_eq!(
            workload.pods_path(&w).unwrap(),
            "/api/v1/namespaces/shop/pods?labelSelector=app%3Dshop%2Ctier%3Dweb"
        );
        assert!(workload.pods_path(&json!(null)).is_err());
    }

    fn pod(name: &str, image: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name},
               "spec": {"containers": [{"name": "web", "image": image}]},
               "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                          "containerStatuses": [{"name": "web", "restartCount": 2}]}})
    }

    #[test]
    fn current_pods_run_the_templates_images() {
        let w = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "app:v2"}]}}}});
        let mut going = pod("c", "app:v2", true);
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let list = json!({"items": [pod("a", "app:v1", true), pod("b", "app:v2", false), going]});
        let current = current_pods(&w, &list);
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["metadata"]["name"], "b");
        assert!(!is_ready(&current[0]));
        assert!(is_ready(&pod("a", "x", true)));
        assert_eq!(restarts(&current[0]), 2);
        assert!(current_pods(&json!({}), &list).is_empty());
        assert!(current_pods(&w, &json!("garbage")).is_empty());
    }
}
