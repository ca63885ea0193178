//! What crosses the wire: request and response bodies, converted from and to
//! domain types. The CLI's `plugin test` reads the same invocation input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules;

use crate::domain::flow::FlowError;
use crate::domain::grant::{Grant, GrantEdit, LimitOverrides, Origin, OriginTls};
use crate::domain::inventory::Environment;
use crate::domain::plugin as d;
use crate::plugins::{Invocation, InvokeError, LogLine};
use crate::store::PluginRecord;

/// A plugin version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginDto {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub kind: String,
    pub size_bytes: u64,
    pub imports: Vec<String>,
    pub uploaded_at_ms: u64,
    pub uploaded_by: String,
    /// The component's stack in linear memory, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_bytes: Option<u64>,
    /// Whether an admin let this version run under the plugin's grant and
    /// be picked by flows that name no version.
    pub approved: bool,
    /// The admin who approved it (the uploader, when an admin uploaded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at_ms: Option<u64>,
}

impl From<PluginRecord> for PluginDto {
    fn from(r: PluginRecord) -> PluginDto {
        PluginDto {
            approved: r.approval.is_some(),
            approved_by: r.approval.as_ref().map(|a| a.by.clone()),
            approved_at_ms: r.approval.as_ref().map(|a| a.at_ms),
            name: r.name,
            version: r.version,
            digest: r.digest,
            kind: r.kind,
            size_bytes: r.size_bytes,
            imports: r.imports,
            uploaded_at_ms: r.uploaded_at_ms,
            uploaded_by: r.uploaded_by,
            stack_bytes: r.stack_bytes,
        }
    }
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadDto {
    /// False when the same bytes were already stored under this version.
    pub created: bool,
    pub plugin: PluginDto,
    /// Advice on how the plugin could be built to cost less per call (a
    /// stack reaching past the memory the daemon keeps resident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// Limits a grant sets; unset fields take the daemon's defaults. Each is
/// at most the bound the daemon's configuration sets; a grant above it is
/// refused with 422.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsDto {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub deadline_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_output_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outbound_requests: Option<u32>,
}

/// A grant as an admin sets it. Secrets are write-only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDto {
    /// Origins the plugin may call: `scheme://host[:port]`.
    #[serde(default)]
    #[schema(value_type = Vec<rules::Origin>)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: LimitsDto,
    /// How to reach private HTTPS origins: each an `https` origin among
    /// `allowed_hosts`, with the CA to trust for it and the secrets holding
    /// a client certificate and key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<OriginTlsDto>,
    /// Whether the plugin may also call the targets of the release it works
    /// for: the origins of their addresses in the inventory (`10.0.0.5:8080`
    /// is reached at `http://10.0.0.5:8080`), read at each call, so the
    /// grant follows the inventory as targets come and go.
    #[serde(default)]
    pub allow_release_targets: bool,
}

/// How to reach one private HTTPS origin. Verification is never switched
/// off: `ca_pem` replaces the public roots for this origin only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginTlsDto {
    #[schema(value_type = rules::Origin)]
    pub origin: String,
    /// PEM certificates to trust for this origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// The grant's secret holding the client certificate chain (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret: Option<String>,
    /// The grant's secret holding the client's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret: Option<String>,
}

impl From<&OriginTls> for OriginTlsDto {
    fn from(t: &OriginTls) -> OriginTlsDto {
        OriginTlsDto {
            origin: t.origin.to_string(),
            ca_pem: t.ca_pem.clone(),
            client_cert_secret: t.client_cert_secret.clone(),
            client_key_secret: t.client_key_secret.clone(),
        }
    }
}

/// Origins given in a field, each parsed, or the first bad one named.
fn origins(texts: &[String], field: &str) -> Result<Vec<Origin>, String> {
    texts
        .iter()
        .enumerate()
        .map(|(i, o)| Origin::parse(o).map_err(|e| format!("{field}[{i}]: {e}")))
        .collect()
}

/// TLS settings given in a field, their origins parsed.
fn tls_settings(entries: Vec<OriginTlsDto>, field: &str) -> Result<Vec<OriginTls>, String> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(OriginTls {
                origin: Origin::parse(&t.origin)
                    .map_err(|e| format!("{field}[{i}].origin: {e}"))?,
                ca_pem: t.ca_pem,
                client_cert_secret: t.client_cert_secret,
                client_key_secret: t.client_key_secret,
            })
        })
        .collect()
}

impl From<LimitsDto> for LimitOverrides {
    fn from(l: LimitsDto) -> LimitOverrides {
        LimitOverrides {
            deadline_ms: l.deadline_ms,
            memory_mib: l.memory_mib,
            max_output_bytes: l.max_output_bytes,
            max_outbound_requests: l.max_outbound_requests,
        }
    }
}

impl GrantDto {
    /// The domain grant, or the first invalid field named.
    pub fn into_grant(self) -> Result<Grant, String> {
        Ok(Grant {
            allowed_hosts: origins(&self.allowed_hosts, "allowed_hosts")?,
            tls: tls_settings(self.tls, "tls")?,
            config: self.config,
            secrets: self.secrets,
            limits: self.limits.into(),
            release_targets: self.allow_release_targets,
        })
    }
}

/// A change to a grant (`PATCH /api/v1/plugins/{name}/grant`): entries
/// added, changed and removed, everything else kept, secrets included.
/// Removing an entry the grant does not hold is refused, naming it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantEditDto {
    /// Origins to add to `allowed_hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<rules::Origin>)]
    pub allow_hosts: Vec<String>,
    /// Origins to take out of `allowed_hosts`, with their TLS settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<rules::Origin>)]
    pub remove_hosts: Vec<String>,
    /// Let the plugin call its releases' targets (`true`) or stop it
    /// (`false`); absent keeps what the grant says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_release_targets: Option<bool>,
    /// Configuration values to set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_config: Vec<String>,
    /// Secrets to set; never shown again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_secrets: Vec<String>,
    /// Limits to set; those not given are kept.
    #[serde(default)]
    pub limits: LimitsDto,
    /// Limits to return to the daemon's defaults: `deadline_ms`,
    /// `memory_mib`, `max_output_bytes`, `max_outbound_requests`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_limits: Vec<String>,
    /// TLS settings to set, each replacing its origin's entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<OriginTlsDto>,
    /// Origins whose TLS settings to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<rules::Origin>)]
    pub remove_tls: Vec<String>,
}

impl GrantEditDto {
    /// The domain edit, or the first invalid field named.
    pub fn into_edit(self) -> Result<GrantEdit, String> {
        Ok(GrantEdit {
            allow_hosts: origins(&self.allow_hosts, "allow_hosts")?,
            remove_hosts: origins(&self.remove_hosts, "remove_hosts")?,
            release_targets: self.allow_release_targets,
            config: self.config,
            remove_config: self.remove_config,
            secrets: self.secrets,
            remove_secrets: self.remove_secrets,
            limits: self.limits.into(),
            reset_limits: self.reset_limits,
            tls: tls_settings(self.tls, "tls")?,
            remove_tls: origins(&self.remove_tls, "remove_tls")?,
        })
    }
}

/// A grant as shown: secret values never leave the daemon, only their names.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub allowed_hosts: Vec<String>,
    pub config: BTreeMap<String, String>,
    pub secret_names: Vec<String>,
    pub limits: LimitsDto,
    /// The private HTTPS origins' settings (secrets by name only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<OriginTlsDto>,
    /// Whether the plugin may also call its releases' targets.
    #[serde(default)]
    pub allow_release_targets: bool,
}

impl From<&Grant> for GrantView {
    fn from(g: &Grant) -> GrantView {
        GrantView {
            allow_release_targets: g.release_targets,
            tls: g.tls.iter().map(OriginTlsDto::from).collect(),
            allowed_hosts: g.allowed_hosts.iter().map(|o| o.to_string()).collect(),
            config: g.config.clone(),
            secret_names: g.secrets.keys().cloned().collect(),
            limits: LimitsDto {
                deadline_ms: g.limits.deadline_ms,
                memory_mib: g.limits.memory_mib,
                max_output_bytes: g.limits.max_output_bytes,
                max_outbound_requests: g.limits.max_outbound_requests,
            },
        }
    }
}

/// A plugin with all its versions and its grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginDetailDto {
    pub name: String,
    /// The token names that may publish new versions (admins always may).
    pub owners: Vec<String>,
    pub versions: Vec<PluginDto>,
    pub grant: GrantView,
    /// The flows whose latest version uses this plugin.
    pub used_by: Vec<String>,
    /// The bytes of keys and values the plugin keeps in its key-value store.
    pub kv_used_bytes: u64,
    /// The most its key-value store may hold (`[plugins] kv_quota_mib`).
    pub kv_quota_bytes: u64,
}

/// A plugin's owners: `PUT /api/v1/plugins/{name}/owners` and its answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnersDto {
    /// Token names that may publish new versions of the plugin.
    #[schema(value_type = Vec<rules::Name>, min_items = 1)]
    pub owners: Vec<String>,
}

/// Runtime counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuntimeDto {
    /// Compiles answered from the artifact cache.
    pub artifact_cache_hits: u64,
    /// Compiles done for want of a cached artifact.
    pub artifact_cache_misses: u64,
    /// Invocations running now.
    pub in_flight: u64,
    /// Large components compiled quickly first, to be served at once.
    pub quick_compiles: u64,
    /// Quickly compiled components whose optimised code is being compiled
    /// in the background or waits its turn.
    pub optimising: u64,
    /// Quickly compiled components now running their optimised code.
    pub optimised: u64,
}

/// A target, as given to a plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetDto {
    #[schema(value_type = rules::Name)]
    pub id: String,
    #[serde(default)]
    #[schema(value_type = rules::Address)]
    pub address: String,
    #[serde(default)]
    #[schema(value_type = rules::Group)]
    pub group: String,
    /// Keys are names; target ids are unique in a list of targets.
    #[serde(default)]
    #[schema(value_type = BTreeMap<rules::Name, rules::Label>)]
    pub labels: BTreeMap<String, String>,
    /// How to reach the target beyond its address, in keys its kind of
    /// target defines (a Kubernetes workload: `cluster`, `namespace`,
    /// `kind`, `name`, `containers`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<rules::Name, rules::Attribute>)]
    pub attributes: BTreeMap<String, String>,
}

/// A target of an environment: a `TargetDto` with an address.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct EnvironmentTargetDto {
    #[schema(value_type = rules::Name)]
    id: String,
    #[schema(value_type = rules::TargetAddress)]
    address: String,
    #[serde(default)]
    #[schema(value_type = rules::Group)]
    group: String,
    #[serde(default)]
    #[schema(value_type = BTreeMap<rules::Name, rules::Label>)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<rules::Name, rules::Attribute>)]
    attributes: BTreeMap<String, String>,
}

impl From<TargetDto> for d::Target {
    fn from(t: TargetDto) -> d::Target {
        d::Target {
            id: t.id,
            address: t.address,
            group: t.group,
            labels: t.labels.into_iter().collect(),
            attributes: t.attributes.into_iter().collect(),
        }
    }
}

impl From<d::Target> for TargetDto {
    fn from(t: d::Target) -> TargetDto {
        TargetDto {
            id: t.id,
            address: t.address,
            group: t.group,
            labels: t.labels.into_iter().collect(),
            attributes: t.attributes.into_iter().collect(),
        }
    }
}

/// Parameters as text: strings as they are, numbers and booleans as
/// written; anything else is refused, naming the parameter.
fn parameter_texts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "parameter `{name}` is {other}: give a string, a number or a boolean"
                    )));
                }
            };
            Ok((name, text))
        })
        .collect()
}

/// The release context given to a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ContextDto {
    pub release_id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub stage: String,
    pub batch: Option<u32>,
    pub attempt: u32,
    /// Each parameter's text; a number or a boolean is taken as its text,
    /// as a flow file's `params` are.
    #[serde(deserialize_with = "parameter_texts")]
    pub parameters: BTreeMap<String, String>,
    /// After a batch: when it finished deploying (ms since the epoch).
    pub deployed_at_ms: Option<u64>,
}

impl Default for ContextDto {
    fn default() -> ContextDto {
        ContextDto {
            release_id: "test".into(),
            application: "app".into(),
            environment: "test".into(),
            version: "0.0.0".into(),
            previous_version: None,
            stage: "test".into(),
            batch: None,
            attempt: 1,
            parameters: BTreeMap::new(),
            deployed_at_ms: None,
        }
    }
}

/// A file handed to a precheck.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeArtifactDto)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDto {
    pub kind: String,
    pub name: String,
    pub content: String,
}

/// The share of traffic a group receives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeWeightDto)]
#[serde(deny_unknown_fields)]
pub struct WeightDto {
    pub group: String,
    #[schema(maximum = 255)]
    pub percent: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDto {
    pub name: String,
    pub value: f64,
    /// In a comparison, the baseline's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The samples the value stands on, and the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_samples: Option<u64>,
    /// The range that passes; either end may be open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_high: Option<f64>,
    /// How this metric alone was judged (`pass`, `fail`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl MetricDto {
    fn into_metric(self, field: &str) -> Result<d::Metric, String> {
        let status = match self.status {
            Some(s) => Some(s.parse().map_err(|e| format!("{field}.status: {e}"))?),
            None => None,
        };
        Ok(d::Metric {
            name: self.name,
            value: self.value,
            baseline: self.baseline,
            samples: self.samples,
            baseline_samples: self.baseline_samples,
            allowed_low: self.allowed_low,
            allowed_high: self.allowed_high,
            status,
            detail: self.detail,
        })
    }
}

impl From<d::Metric> for MetricDto {
    fn from(m: d::Metric) -> MetricDto {
        MetricDto {
            name: m.name,
            value: m.value,
            baseline: m.baseline,
            samples: m.samples,
            baseline_samples: m.baseline_samples,
            allowed_low: m.allowed_low,
            allowed_high: m.allowed_high,
            status: m.status.map(|s| s.as_str().to_string()),
            detail: m.detail,
        }
    }
}

/// A check's verdict, as a plugin gives or receives it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeVerdictDto)]
#[serde(deny_unknown_fields)]
pub struct VerdictDto {
    pub status: String,
    pub summary: String,
    #[serde(default)]
    pub metrics: Vec<MetricDto>,
}

/// A verdict observed earlier, as given to a rollback policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeObservationDto)]
#[serde(deny_unknown_fields)]
pub struct ObservationDto {
    pub check: String,
    pub stage: String,
    #[serde(default)]
    pub batch: Option<u32>,
    pub verdict: VerdictDto,
    #[serde(default)]
    pub at_ms: u64,
}

/// The release event given to a notifier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeEventDto)]
#[serde(deny_unknown_fields)]
pub struct EventDto {
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub at_ms: u64,
}

/// One call into a plugin: the body of `POST .../invoke` and the input file
/// of `greenlight plugin test`. Only the fields the function uses matter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InvokeRequest {
    /// The export to call; defaults to the kind's main one (`verify`,
    /// `run`, `deploy`, `current-weights`, `decide`, `notify`).
    pub function: Option<String>,
    pub context: ContextDto,
    pub targets: Vec<TargetDto>,
    pub artifacts: Vec<ArtifactDto>,
    pub idempotency_key: Option<String>,
    pub weights: Vec<WeightDto>,
    pub observations: Vec<ObservationDto>,
    pub event: Option<EventDto>,
}

fn verdict_from_dto(v: VerdictDto, field: &str) -> Result<d::Verdict, String> {
    Ok(d::Verdict {
        status: v
            .status
            .parse()
            .map_err(|e| format!("{field}.status: {e}"))?,
        summary: v.summary,
        metrics: v
            .metrics
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.into_metric(&format!("{field}.metrics[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

impl InvokeRequest {
    /// The call this request asks for, for a plugin of `kind`. The
    /// targets break stated rules (their names) or worded ones (an id used
    /// twice); everything else that is refused depends on the plugin's
    /// kind or is stated in words only, such as a deployer's
    /// idempotency key.
    pub fn into_call(self, kind: d::PluginKind) -> Result<d::Call, Vec<FlowError>> {
        let targets: Vec<d::Target> = self.targets.iter().cloned().map(Into::into).collect();
        let problems = crate::domain::inventory::target_problems(&targets);
        if !problems.is_empty() {
            return Err(problems);
        }
        self.call(kind, targets)
            .map_err(|problem| vec![FlowError::worded("", problem)])
    }

    fn call(self, kind: d::PluginKind, targets: Vec<d::Target>) -> Result<d::Call, String> {
        let function = self.function.clone().unwrap_or_else(|| {
            match kind {
                d::PluginKind::Precheck => "run",
                d::PluginKind::Deployer => "deploy",
                d::PluginKind::Traffic => "current-weights",
                d::PluginKind::Check => "verify",
                d::PluginKind::RollbackPolicy => "decide",
                d::PluginKind::Notifier => "notify",
            }
            .to_string()
        });
        let c = self.context;
        let ctx = d::ReleaseContext {
            release_id: c.release_id,
            application: c.application,
            environment: c.environment,
            version: c.version,
            previous_version: c.previous_version,
            stage: c.stage,
            batch: c.batch,
            attempt: c.attempt,
            parameters: c.parameters.into_iter().collect(),
            deployed_at_ms: c.deployed_at_ms,
        };
        let key = || {
            self.idempotency_key
                .clone()
                .ok_or_else(|| format!("idempotency_key is required for `{function}`"))
        };
        let call = match function.as_str() {
            "run" => d::Call::Precheck {
                ctx,
                artifacts: self
                    .artifacts
                    .into_iter()
                    .map(|a| d::Artifact {
                        kind: a.kind,
                        name: a.name,
                        content: a.content,
                    })
                    .collect(),
            },
            "deploy" => d::Call::Deploy {
                ctx,
                targets,
                idempotency_key: key()?,
            },
            "rollback" => d::Call::Rollback {
                ctx,
                targets,
                idempotency_key: key()?,
            },
            "set-weights" => d::Call::SetWeights {
                ctx,
                weights: self
                    .weights
                    .into_iter()
                    .map(|w| d::GroupWeight {
                        group: w.group,
                        percent: w.percent,
                    })
                    .collect(),
            },
            "current-weights" => d::Call::CurrentWeights { ctx },
            "verify" => d::Call::Verify { ctx, targets },
            "decide" => d::Call::Decide {
                ctx,
                observations: self
                    .observations
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| {
                        Ok(d::Observation {
                            check: o.check,
                            stage: o.stage,
                            batch: o.batch,
                            verdict: verdict_from_dto(
                                o.verdict,
                                &format!("observations[{i}].verdict"),
                            )?,
                            at_ms: o.at_ms,
                            shadow: false,
                            rollback: false,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            },
            "notify" => {
                let e = self
                    .event
                    .ok_or_else(|| "event is required for `notify`".to_string())?;
                d::Call::Notify {
                    ctx,
                    event: d::ReleaseEvent {
                        kind: e.kind,
                        message: e.message,
                        at_ms: e.at_ms,
                    },
                }
            }
            other => {
                return Err(format!(
                    "function `{other}` is not one of run, deploy, rollback, set-weights, current-weights, verify, decide, notify"
                ));
            }
        };
        if call.kind() != kind {
            return Err(format!(
                "function `{function}` belongs to {} plugins, and this is a {kind} plugin",
                call.kind()
            ));
        }
        Ok(call)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultDto {
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetResultDto {
    pub target_id: String,
    pub ok: bool,
    pub message: String,
}

/// A rollback policy's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InvokeDecisionDto)]
pub struct DecisionDto {
    pub kind: String,
    pub reason: String,
}

/// A result a plugin reports: `{"ok": …}` or `{"fault": {…}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reported<T> {
    Ok(T),
    Fault(FaultDto),
}

impl<T> Reported<T> {
    fn from_result<U>(r: Result<U, d::PluginFault>, f: impl FnOnce(U) -> T) -> Reported<T> {
        match r {
            Ok(v) => Reported::Ok(f(v)),
            Err(e) => Reported::Fault(fault_dto(e)),
        }
    }
}

/// What a plugin returned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputDto {
    Verdict(VerdictDto),
    Precheck {
        verdict: VerdictDto,
        forward_only: bool,
    },
    Targets(Reported<Vec<TargetResultDto>>),
    Weights(Reported<Vec<WeightDto>>),
    /// `{"ok": null}`, or a fault.
    #[schema(value_type = Reported<serde_json::Value>)]
    Done(Reported<()>),
    Decision(DecisionDto),
    /// Work not done yet (interface 0.2.0): the plugin's note and when it
    /// wants to be asked again.
    InProgress(ProgressDto),
}

/// How far a plugin's long-running work has come.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressDto {
    pub note: String,
    pub ask_again_after_ms: u32,
}

fn verdict_dto(v: d::Verdict) -> VerdictDto {
    VerdictDto {
        status: v.status.as_str().to_string(),
        summary: v.summary,
        metrics: v.metrics.into_iter().map(MetricDto::from).collect(),
    }
}

fn fault_dto(f: d::PluginFault) -> FaultDto {
    FaultDto {
        message: f.message,
        retryable: f.retryable,
    }
}

impl From<d::Output> for OutputDto {
    fn from(o: d::Output) -> OutputDto {
        match o {
            d::Output::Verdict(v) => OutputDto::Verdict(verdict_dto(v)),
            d::Output::Precheck(p) => OutputDto::Precheck {
                verdict: verdict_dto(p.verdict),
                forward_only: p.forward_only,
            },
            d::Output::Targets(r) => OutputDto::Targets(Reported::from_result(r, |ts| {
                ts.into_iter()
                    .map(|t| TargetResultDto {
                        target_id: t.target_id,
                        ok: t.ok,
                        message: t.message,
                    })
                    .collect()
            })),
            d::Output::Weights(r) => OutputDto::Weights(Reported::from_result(r, |ws| {
                ws.into_iter()
                    .map(|w| WeightDto {
                        group: w.group,
                        percent: w.percent,
                    })
                    .collect()
            })),
            d::Output::Done(r) => OutputDto::Done(Reported::from_result(r, |()| ())),
            d::Output::Decision(d) => OutputDto::Decision(DecisionDto {
                kind: d.kind.as_str().to_string(),
                reason: d.reason,
            }),
            d::Output::InProgress(p) => OutputDto::InProgress(ProgressDto {
                note: p.note,
                ask_again_after_ms: p.ask_again_after_ms,
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLineDto {
    pub level: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

fn logs_dto(logs: Vec<LogLine>) -> Vec<LogLineDto> {
    logs.into_iter()
        .map(|l| LogLineDto {
            level: l.level.as_str().to_string(),
            message: l.message,
            fields: l.fields.into_iter().collect(),
        })
        .collect()
}

/// How a plugin invocation failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvokeErrorDto {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub backtrace: Option<String>,
}

/// The result of an invocation: a plugin's failure is data, not an HTTP error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvokeResponse {
    /// `ok` or `failed`.
    pub status: String,
    #[serde(default)]
    pub output: Option<OutputDto>,
    #[serde(default)]
    pub error: Option<InvokeErrorDto>,
    pub logs: Vec<LogLineDto>,
    /// What the plugin wrote to stdout and stderr.
    pub stderr: String,
    pub http_requests: u32,
    pub duration_ms: f64,
    /// False for a version no admin has approved: it ran under the empty
    /// grant (no hosts, no configuration, no secrets, default limits).
    #[serde(default)]
    pub grant_applied: bool,
}

impl From<Result<Invocation, InvokeError>> for InvokeResponse {
    fn from(r: Result<Invocation, InvokeError>) -> InvokeResponse {
        match r {
            Ok(i) => InvokeResponse {
                status: "ok".into(),
                output: Some(i.output.into()),
                error: None,
                logs: logs_dto(i.logs),
                stderr: i.stderr,
                http_requests: i.http_requests,
                duration_ms: i.duration.as_secs_f64() * 1000.0,
                grant_applied: false,
            },
            Err(e) => InvokeResponse {
                status: "failed".into(),
                output: None,
                error: Some(InvokeErrorDto {
                    code: e.kind.code().to_string(),
                    message: e.message,
                    backtrace: e.backtrace,
                }),
                logs: logs_dto(e.logs),
                stderr: e.stderr,
                http_requests: e.http_requests,
                duration_ms: e.duration.as_secs_f64() * 1000.0,
                grant_applied: false,
            },
        }
    }
}

/// A stage, in a flow's summary.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageSummaryDto {
    pub name: String,
    pub kind: String,
}

/// The answer to applying a flow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppliedFlowDto {
    /// False when the same text was already applied under this version.
    pub created: bool,
    pub name: String,
    pub version: u32,
    pub stages: Vec<StageSummaryDto>,
    /// What may go wrong when the flow runs, such as a plugin whose grant
    /// reaches only some of an environment's targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// An applied flow version with its source.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlowDto {
    pub name: String,
    pub version: u32,
    pub applied_at_ms: u64,
    pub applied_by: String,
    pub source: String,
}

impl From<crate::store::FlowRecord> for FlowDto {
    fn from(r: crate::store::FlowRecord) -> FlowDto {
        FlowDto {
            name: r.name,
            version: r.version,
            applied_at_ms: r.applied_at_ms,
            applied_by: r.applied_by,
            source: r.source,
        }
    }
}

/// A request to plan a release without running it, over the given
/// targets or over an environment of the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The flow version; the latest when absent.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<u32>,
    /// Ids are unique.
    #[serde(default)]
    pub targets: Option<Vec<TargetDto>>,
    /// The group serving traffic now, for blue-green stages; only with
    /// `targets`.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub live_group: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub application: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub environment: Option<String>,
}

/// Where the targets of a plan come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanScope {
    Targets {
        targets: Vec<d::Target>,
        live_group: Option<String>,
    },
    Inventory {
        application: String,
        environment: String,
    },
}

impl PlanRequest {
    /// The targets given, or the environment named; exactly one of the two.
    pub fn scope(self) -> Result<PlanScope, Vec<FlowError>> {
        match (self.targets, self.application, self.environment) {
            (Some(targets), None, None) => {
                let targets: Vec<d::Target> = targets.into_iter().map(Into::into).collect();
                let mut problems = crate::domain::inventory::target_problems(&targets);
                if let Some(live) = &self.live_group {
                    problems.extend(crate::domain::name::check_name("live_group", live).err());
                }
                if !problems.is_empty() {
                    return Err(problems);
                }
                Ok(PlanScope::Targets {
                    targets,
                    live_group: self.live_group,
                })
            }
            (None, Some(application), Some(environment)) if self.live_group.is_none() => {
                let problems: Vec<_> = [
                    crate::domain::name::check_name("application", &application),
                    crate::domain::name::check_name("environment", &environment),
                ]
                .into_iter()
                .filter_map(Result::err)
                .collect();
                if !problems.is_empty() {
                    return Err(problems);
                }
                Ok(PlanScope::Inventory {
                    application,
                    environment,
                })
            }
            (None, Some(_), Some(_)) => Err(vec![FlowError::new(
                "live_group",
                "comes from the inventory when `application` and `environment` are given",
            )]),
            (None, None, None) => Err(vec![FlowError::new(
                "targets",
                "give `targets`, or `application` and `environment`",
            )]),
            (Some(_), _, _) => Err(vec![FlowError::new(
                "targets",
                "give either `targets` or `application` and `environment`, not both",
            )]),
            (None, Some(_), None) => Err(vec![FlowError::new(
                "environment",
                "is required with `application`",
            )]),
            (None, None, Some(_)) => Err(vec![FlowError::new(
                "application",
                "is required with `environment`",
            )]),
        }
    }
}

/// One stage of a plan: what it does, to which targets, with which plugins.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlannedStageDto {
    pub name: String,
    pub kind: String,
    pub reversible: bool,
    /// Target ids per batch, in order (deploy stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Vec<String>>,
    /// Plugins as `name@version`, in the order they run.
    pub plugins: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_group: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_steps: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<u32>,
}

impl From<crate::domain::plan::PlannedStage> for PlannedStageDto {
    fn from(s: crate::domain::plan::PlannedStage) -> PlannedStageDto {
        use crate::domain::plan::PlannedStep as P;
        let mut dto = PlannedStageDto {
            name: s.name,
            kind: String::new(),
            reversible: s.reversible,
            batches: vec![],
            plugins: vec![],
            bake_ms: None,
            idle_group: None,
            traffic_steps: vec![],
            roles: vec![],
            approvers: None,
        };
        match s.step {
            P::Precheck { plugins } => {
                dto.kind = "precheck".into();
                dto.plugins = plugins;
            }
            P::Verify { checks } => {
                dto.kind = "verify".into();
                dto.plugins = checks;
            }
            P::Approval {
                roles, approvers, ..
            } => {
                dto.kind = "approval".into();
                dto.roles = roles;
                dto.approvers = Some(approvers);
            }
            P::Deploy {
                deployer,
                batches,
                checks,
                bake_ms,
            } => {
                dto.kind = "deploy".into();
                dto.batches = batches.into_iter().map(|b| b.targets).collect();
                dto.plugins = std::iter::once(deployer).chain(checks).collect();
                dto.bake_ms = Some(bake_ms);
            }
            P::BlueGreen {
                deployer,
                idle_group,
                targets,
                steps,
                bake_per_step_ms,
                traffic,
                checks,
                ..
            } => {
                dto.kind = "blue-green".into();
                dto.batches = vec![targets];
                dto.plugins = [deployer, traffic].into_iter().chain(checks).collect();
                dto.bake_ms = Some(bake_per_step_ms);
                dto.idle_group = Some(idle_group);
                dto.traffic_steps = steps;
            }
        }
        dto
    }
}

/// An environment as an admin puts it; its application and name come from
/// the path.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRequest {
    /// At least one; ids are unique.
    #[schema(value_type = Vec<EnvironmentTargetDto>, min_items = 1)]
    pub targets: Vec<TargetDto>,
    /// The group serving traffic now: one of the targets' groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<rules::Name>)]
    pub live_group: Option<String>,
}

impl EnvironmentRequest {
    /// The environment, not yet validated.
    pub fn into_environment(self, application: &str, name: &str) -> Environment {
        Environment {
            application: application.to_string(),
            name: name.to_string(),
            targets: self.targets.into_iter().map(Into::into).collect(),
            live_group: self.live_group,
            current_version: None,
            version_unknown: None,
        }
    }
}

/// An environment with its targets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentDto {
    pub application: String,
    pub name: String,
    pub targets: Vec<TargetDto>,
    pub live_group: Option<String>,
    pub current_version: Option<String>,
    /// Why the version running is not known (a release was abandoned
    /// midway), until a release finishes here again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_unknown: Option<String>,
}

impl From<Environment> for EnvironmentDto {
    fn from(e: Environment) -> EnvironmentDto {
        EnvironmentDto {
            application: e.application,
            name: e.name,
            targets: e.targets.into_iter().map(Into::into).collect(),
            live_group: e.live_group,
            current_version: e.current_version,
            version_unknown: e.version_unknown,
        }
    }
}

/// The answer to putting an environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutEnvironmentDto {
    /// False when an environment of that name was replaced.
    pub created: bool,
    pub environment: EnvironmentDto,
    /// What may go wrong in releases here, such as a flow's plugin whose
    /// grant reaches only some of these targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// An environment, in the list of applications.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentSummaryDto {
    pub name: String,
    pub targets: usize,
    pub groups: Vec<String>,
    pub live_group: Option<String>,
    pub current_version: Option<String>,
    /// Why the version running is not known, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_unknown: Option<String>,
}

/// An application with its environments.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplicationDto {
    pub name: String,
    pub environments: Vec<EnvironmentSummaryDto>,
}

/// Groups environments, ordered by application, into applications.
pub fn applications(environments: &[Environment]) -> Vec<ApplicationDto> {
    environments
        .chunk_by(|a, b| a.application == b.application)
        .map(|envs| ApplicationDto {
            name: envs[0].application.clone(),
            environments: envs
                .iter()
                .map(|e| EnvironmentSummaryDto {
                    name: e.name.clone(),
                    targets: e.targets.len(),
                    groups: e.groups().into_iter().map(String::from).collect(),
                    live_group: e.live_group.clone(),
                    current_version: e.current_version.clone(),
                    version_unknown: e.version_unknown.clone(),
                })
                .collect(),
        })
        .collect()
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    #[schema(value_type = rules::Name)]
    pub name: String,
    /// `admin`, `release-manager`, `plugin-author`, `scheduler` or `viewer`.
    #[schema(value_type = rules::Role)]
    pub role: String,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenDto {
    pub name: String,
    pub role: String,
    pub created_at_ms: u64,
    pub created_by: Option<String>,
    pub revoked: bool,
}

impl From<crate::store::TokenRecord> for TokenDto {
    fn from(r: crate::store::TokenRecord) -> TokenDto {
        TokenDto {
            name: r.name,
            role: r.role.as_str().to_string(),
            created_at_ms: r.created_at_ms,
            created_by: r.created_by,
            revoked: r.revoked,
        }
    }
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedTokenDto {
    #[serde(flatten)]
    pub info: TokenDto,
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::ContextDto;

    #[test]
    fn parameters_may_be_numbers_or_booleans_as_in_a_flow_file() {
        let context: ContextDto = serde_json::from_str(
            r#"{"parameters": {"max_p99_ms": 250, "ratio": 0.5, "strict": true, "path": "/stats"}}"#,
        )
        .unwrap();
        let p = &context.parameters;
        assert_eq!(p["max_p99_ms"], "250");
        assert_eq!(p["ratio"], "0.5");
        assert_eq!(p["strict"], "true");
        assert_eq!(p["path"], "/stats");

        let refused = serde_json::from_str::<ContextDto>(r#"{"parameters": {"hosts": ["a"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("parameter `hosts`"), "{refused}");
    }
}
