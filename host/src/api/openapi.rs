//! The OpenAPI document of the API, built from the handlers' `#[utoipa::path]`
//! annotations and the DTOs' `ToSchema` derives, and served at
//! `GET /api/v1/openapi.json`.

use std::sync::LazyLock;

use axum::Json;
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{
    analysis, analysis_model, audit, event_model, flows, health, inventory, model, plugin_access,
    plugins, release_model, releases, rules, schedule_model, schedules, session, tokens, trains,
};

/// The name of the security scheme operations that need a token refer to.
pub const BEARER: &str = "bearer";

/// Every route and every body of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Greenlight",
        version = env!("CARGO_PKG_VERSION"),
        description = "A release platform whose every decision point is a sandboxed WebAssembly plugin. \
            Every refusal is a 4xx (and an internal failure a 500) with an `ErrorBody`: \
            a stable `code` and a `message`. Any operation may also be refused at the edge, \
            with the same body: `408 request.body_timeout` (the body arrived too slowly), \
            `414 request.uri_too_long`, `431 request.headers_too_large`, `400 request.malformed` \
            (not HTTP), `429 request.rate_limited` (too many requests without a valid token from \
            one address) and `429 request.too_many_connections` or `503 server.busy` (too many \
            connections, from one address or in all), the 429s and the 503 with `Retry-After`."
    ),
    paths(
        health::alive,
        health::ready,
        health::metrics,
        document,
        plugins::runtime,
        plugins::upload,
        plugins::list,
        plugins::detail,
        plugins::show,
        plugins::set_grant,
        plugins::edit_grant,
        plugins::invoke,
        plugin_access::approve,
        plugin_access::set_owners,
        flows::apply,
        flows::list,
        flows::show,
        flows::plan,
        inventory::list,
        inventory::put,
        inventory::show,
        inventory::delete,
        releases::start,
        releases::list,
        releases::show,
        releases::journal,
        releases::comment_command,
        releases::resume,
        releases::rollback,
        releases::abandon,
        releases::events,
        releases::clock,
        releases::move_clock,
        trains::plan,
        trains::start,
        trains::list,
        trains::show,
        trains::rollback,
        tokens::create,
        tokens::list,
        tokens::revoke,
        tokens::revoke_named,
        audit::list,
        analysis::replay,
        session::sign_in,
        session::show,
        session::sign_out,
        schedules::create,
        schedules::list,
        schedules::show,
        schedules::delete,
        schedules::enable,
        schedules::disable,
        schedules::next,
        schedules::fires,
        schedules::create_freeze,
        schedules::list_freezes,
        schedules::delete_freeze,
    ),
    components(schemas(
        ErrorBody,
        rules::Name,
        rules::Group,
        rules::Text,
        rules::Label,
        rules::Address,
        rules::TargetAddress,
        rules::Version,
        rules::HttpUrl,
        rules::Origin,
        rules::Role,
        rules::SemVer,
        rules::PluginVersion,
        rules::Id,
        model::EnvironmentTargetDto,
        release_model::RollbackModeName,
        schedule_model::MissedName,
        schedule_model::OverlapName,
        schedule_model::EffectName,
        health::ReadinessDto,
        plugins::ComponentBytes,
        model::PluginDto,
        model::UploadDto,
        model::LimitsDto,
        model::GrantDto,
        model::GrantEditDto,
        model::OriginTlsDto,
        model::GrantView,
        model::OwnersDto,
        model::PluginDetailDto,
        model::RuntimeDto,
        model::TargetDto,
        model::ProgressDto,
        model::ContextDto,
        model::ArtifactDto,
        model::WeightDto,
        model::MetricDto,
        model::VerdictDto,
        model::ObservationDto,
        model::EventDto,
        model::InvokeRequest,
        model::FaultDto,
        model::TargetResultDto,
        model::DecisionDto,
        model::OutputDto,
        model::LogLineDto,
        model::InvokeErrorDto,
        model::InvokeResponse,
        model::StageSummaryDto,
        model::AppliedFlowDto,
        model::FlowDto,
        model::PlanRequest,
        model::PlannedStageDto,
        model::EnvironmentRequest,
        model::EnvironmentDto,
        model::PutEnvironmentDto,
        model::EnvironmentSummaryDto,
        model::ApplicationDto,
        model::CreateTokenRequest,
        model::TokenDto,
        model::CreatedTokenDto,
        release_model::StartReleaseRequest,
        release_model::ArtifactDto,
        release_model::CommentRequest,
        release_model::RollbackRequest,
        release_model::ReleaseSummaryDto,
        crate::store::SummaryProgress,
        release_model::VerdictDto,
        release_model::ObservationDto,
        release_model::DecisionDto,
        release_model::ApprovalDto,
        release_model::GateDto,
        release_model::GateLinkDto,
        release_model::StepDto,
        release_model::StageDto,
        release_model::TargetStateDto,
        release_model::WeightDto,
        release_model::PauseDto,
        release_model::RollbackDto,
        release_model::ReleaseDto,
        release_model::WorkProgressDto,
        release_model::EventDto,
        event_model::EventDetailDto,
        event_model::EventVerdictDto,
        event_model::CheckVerdictDto,
        event_model::UnhealthyTargetDto,
        event_model::ProgressOfDto,
        release_model::ClockDto,
        release_model::ClockRequest,
        release_model::TrainMemberRequest,
        release_model::StartTrainRequest,
        release_model::TrainMemberDto,
        release_model::TrainDto,
        release_model::PlannedMemberDto,
        audit::AuditEntryDto,
        audit::AuditPageDto,
        session::SignInRequest,
        session::SessionDto,
        schedule_model::CreateScheduleRequest,
        schedule_model::FireDto,
        schedule_model::ScheduleDto,
        schedule_model::NextFireDto,
        schedule_model::NextFiresDto,
        schedule_model::CreateFreezeRequest,
        schedule_model::FreezeDto,
        analysis_model::ReplayRequestDto,
        analysis_model::ReplayDto,
        analysis_model::ReleaseReplayDto,
        analysis_model::OutcomeDto,
        analysis_model::RoundChangeDto,
        analysis_model::VerdictChangeDto,
    )),
    modifiers(&BearerScheme, &Together),
    tags(
        (name = "plugins", description = "Upload, list, show, grant and invoke plugins."),
        (name = "flows", description = "Apply, list, show and plan flows."),
        (name = "inventory", description = "Applications, their environments and targets."),
        (name = "releases", description = "Start releases, follow them, and command them: approve, reject, pause, resume, roll back."),
        (name = "trains", description = "Releases of several applications in dependency order."),
        (name = "tokens", description = "API tokens (admins only)."),
        (name = "schedules", description = "Cron schedules that start releases, and the freeze windows that stop them."),
        (name = "audit", description = "The log of every state-changing request."),
        (name = "analysis", description = "Replays of a flow's checks and policy over what past releases recorded."),
        (name = "session", description = "Browser sign-in: a session cookie (HttpOnly, SameSite=Strict) opened with a token; requests that change state through it carry `X-CSRF-Token`."),
        (name = "operations", description = "Liveness, readiness, metrics, the runtime's counters, the release clock and this document."),
    )
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "`Authorization: Bearer TOKEN`; the first admin token is written to the data \
             directory's `admin-token` file."
                .to_string(),
        );
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// States the fields that go together, which derives cannot: a plan takes
/// targets or an application and environment; a schedule ships a fixed
/// version or asks a URL, and takes `catch_up_max` exactly with
/// `catch-up`; a freeze window is a range or a recurrence.
struct Together;

/// An object whose `fields` are required and typed `kind`, and whose
/// `absent` fields are absent or null.
fn shape(fields: &[(&str, Type)], absent: &[&str]) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new();
    for (field, kind) in fields {
        object = object
            .property(*field, ObjectBuilder::new().schema_type(kind.clone()))
            .required(*field);
    }
    for field in absent {
        object = object.property(*field, ObjectBuilder::new().schema_type(Type::Null));
    }
    object.into()
}

/// `schema` and exactly one of `choices`.
fn one_of(schema: RefOr<Schema>, choices: Vec<RefOr<Schema>>) -> RefOr<Schema> {
    let mut one = OneOfBuilder::new();
    for choice in choices {
        one = one.item(choice);
    }
    AllOfBuilder::new().item(schema).item(one).into()
}

impl Modify for Together {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let rules: [(&str, Vec<RefOr<Schema>>); 2] = [
            (
                "PlanRequest",
                vec![
                    shape(&[("targets", Type::Array)], &["application", "environment"]),
                    shape(
                        &[("application", Type::String), ("environment", Type::String)],
                        &["targets", "live_group"],
                    ),
                ],
            ),
            (
                "CreateFreezeRequest",
                vec![
                    shape(
                        &[("start_ms", Type::Integer), ("end_ms", Type::Integer)],
                        &["cron", "duration_ms"],
                    ),
                    shape(
                        &[("cron", Type::String), ("duration_ms", Type::Integer)],
                        &["start_ms", "end_ms"],
                    ),
                ],
            ),
        ];
        for (name, choices) in rules {
            if let Some(schema) = components.schemas.remove(name) {
                components
                    .schemas
                    .insert(name.to_string(), one_of(schema, choices));
            }
        }
        if let Some(schema) = components.schemas.remove("CreateScheduleRequest") {
            let version = one_of(
                schema,
                vec![
                    shape(&[("version", Type::String)], &["version_url"]),
                    shape(&[("version_url", Type::String)], &["version"]),
                ],
            );
            let not_catch_up = ObjectBuilder::new()
                .property(
                    "missed",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .enum_values(Some([json!("skip"), json!("run-once"), json!(null)])),
                )
                .property("catch_up_max", ObjectBuilder::new().schema_type(Type::Null));
            let catch_up = ObjectBuilder::new()
                .property(
                    "missed",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["catch-up"])),
                )
                .property(
                    "catch_up_max",
                    ObjectBuilder::new().schema_type(Type::Integer),
                )
                .required("missed")
                .required("catch_up_max");
            components.schemas.insert(
                "CreateScheduleRequest".to_string(),
                one_of(version, vec![not_catch_up.into(), catch_up.into()]),
            );
        }
    }
}

/// Built once: it only depends on the code.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// Reads this document.
///
/// `GET /api/v1/openapi.json`: the OpenAPI document of the API; no token
/// is needed.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// Every operation of the document: method (upper case), path, operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    found.push((method.to_uppercase(), path.clone(), op.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_routed() {
        let listed = crate::api::routes();
        let routes: BTreeSet<(String, String)> = listed
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(routes.len(), listed.len(), "a route is listed twice");
        let documented: BTreeSet<(String, String)> = operations(&document())
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty(),
            "routes without a documented operation: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented operations without a route: {unrouted:?}"
        );
    }

    #[test]
    fn errors_are_answered_with_the_error_body() {
        let doc = document();
        let error_body = serde_json::json!({
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
        });
        let mut client_errors = 0;
        for (method, path, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status == "500" {
                    client_errors += usize::from(status.starts_with('4'));
                    assert_eq!(
                        response["content"], error_body,
                        "{method} {path} answers {status} without the error body"
                    );
                }
            }
        }
        assert!(client_errors > 0);
    }

    #[test]
    fn operations_that_need_a_token_say_so() {
        let doc = document();
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER],
            serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "description": doc["components"]["securitySchemes"][BEARER]["description"],
            })
        );
        let mut open = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let secured = op["security"] == serde_json::json!([{ BEARER: [] }]);
            assert!(
                secured || op.get("security").is_none(),
                "{method} {path} has another security requirement: {}",
                op["security"]
            );
            // Signing in needs no token in a header; its 401 is about the
            // token in its body.
            let sign_in = method == "POST" && path == "/api/v1/session";
            assert_eq!(
                secured || sign_in,
                op["responses"].get("401").is_some(),
                "{method} {path}: a token is needed exactly when a 401 can be answered"
            );
            if !secured {
                open.insert(format!("{method} {path}"));
            }
        }
        assert_eq!(
            open,
            BTreeSet::from(
                [
                    "GET /healthz",
                    "GET /readyz",
                    "GET /api/v1/openapi.json",
                    "POST /api/v1/session"
                ]
                .map(String::from)
            )
        );
    }

    #[test]
    fn operations_name_their_path_parameters_tags_and_ids() {
        let doc = document();
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, declared, "{method} {path}: path parameters");
            let op_tags = op["tags"].as_array().unwrap();
            assert!(
                op_tags.len() == 1 && tags.contains(op_tags[0].as_str().unwrap()),
                "{method} {path}: one declared tag, not {op_tags:?}"
            );
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operation id {id} is used twice");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        found.push(r);
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} is not a schema"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} names no schema"
            );
        }
    }

    #[test]
    fn the_document_names_the_daemon_and_its_version() {
        let doc = document();
        assert_eq!(doc["info"]["title"], "Greenlight");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    }
}
