//! The durability promise: a state-changing request is answered only once
//! its change and its audit entry are durable. For every state-changing
//! route the router serves, the test makes a request, kills the daemon with
//! SIGKILL as soon as the answer arrives, starts it again on the same data
//! directory, and finds the change and the request's audit entry. The
//! routes come from the router itself, so a new route without a scenario
//! here fails the test.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Daemon;
use crate::support::releases::{
    CLOCK_START_MS, Recorder, advance, apply_flow, put_environment, release_daemon, standard_flow,
    start_release, wait_for, wait_status,
};

/// One state-changing request, in the order the scenario makes them.
#[derive(Debug, Clone, Copy)]
enum Op {
    Upload,
    Grant,
    EditGrant,
    Invoke,
    SetOwners,
    ApprovePlugin,
    ApplyFlow,
    PlanFlow,
    Replay,
    PutEnvironment,
    DeleteEnvironment,
    StartRelease,
    Pause,
    Resume,
    MoveClock,
    Approve,
    Reject,
    Rollback,
    Abandon,
    PlanTrain,
    StartTrain,
    RollbackTrain,
    CreateToken,
    SignIn,
    SignOut,
    RevokeToken,
    RevokeTokenNamed,
    CreateSchedule,
    DisableSchedule,
    EnableSchedule,
    DeleteSchedule,
    CreateFreeze,
    DeleteFreeze,
}

const SCENARIO: [Op; 33] = [
    Op::Upload,
    Op::Grant,
    Op::EditGrant,
    Op::Invoke,
    Op::SetOwners,
    Op::ApprovePlugin,
    Op::ApplyFlow,
    Op::PlanFlow,
    Op::Replay,
    Op::PutEnvironment,
    Op::DeleteEnvironment,
    Op::StartRelease,
    Op::Pause,
    Op::Resume,
    Op::MoveClock,
    Op::Approve,
    Op::Reject,
    Op::Rollback,
    Op::Abandon,
    Op::PlanTrain,
    Op::StartTrain,
    Op::RollbackTrain,
    Op::CreateToken,
    Op::SignIn,
    Op::SignOut,
    Op::RevokeToken,
    Op::RevokeTokenNamed,
    Op::CreateSchedule,
    Op::DisableSchedule,
    Op::EnableSchedule,
    Op::DeleteSchedule,
    Op::CreateFreeze,
    Op::DeleteFreeze,
];

impl Op {
    /// The route, as the router declares it.
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Op::Upload => ("POST", "/api/v1/plugins"),
            Op::Grant => ("PUT", "/api/v1/plugins/{name}/grant"),
            Op::EditGrant => ("PATCH", "/api/v1/plugins/{name}/grant"),
            Op::Invoke => ("POST", "/api/v1/plugins/{name}/{version}/invoke"),
            Op::SetOwners => ("PUT", "/api/v1/plugins/{name}/owners"),
            Op::ApprovePlugin => ("POST", "/api/v1/plugins/{name}/{version}/approve"),
            Op::ApplyFlow => ("POST", "/api/v1/flows"),
            Op::PlanFlow => ("POST", "/api/v1/flows/{name}/plan"),
            Op::Replay => ("POST", "/api/v1/analysis/replay"),
            Op::PutEnvironment => ("PUT", "/api/v1/apps/{app}/envs/{env}"),
            Op::DeleteEnvironment => ("DELETE", "/api/v1/apps/{app}/envs/{env}"),
            Op::StartRelease => ("POST", "/api/v1/releases"),
            Op::Pause | Op::Approve | Op::Reject => ("POST", "/api/v1/releases/{id}/{action}"),
            Op::Resume => ("POST", "/api/v1/releases/{id}/resume"),
            Op::Rollback => ("POST", "/api/v1/releases/{id}/rollback"),
            Op::Abandon => ("POST", "/api/v1/releases/{id}/abandon"),
            Op::MoveClock => ("POST", "/api/v1/clock"),
            Op::PlanTrain => ("POST", "/api/v1/trains/plan"),
            Op::StartTrain => ("POST", "/api/v1/trains"),
            Op::RollbackTrain => ("POST", "/api/v1/trains/{id}/rollback"),
            Op::CreateToken => ("POST", "/api/v1/tokens"),
            Op::RevokeToken => ("DELETE", "/api/v1/tokens/{name}"),
            Op::RevokeTokenNamed => ("DELETE", "/api/v1/tokens"),
            Op::SignIn => ("POST", "/api/v1/session"),
            Op::SignOut => ("DELETE", "/api/v1/session"),
            Op::CreateSchedule => ("POST", "/api/v1/schedules"),
            Op::DisableSchedule => ("POST", "/api/v1/schedules/{name}/disable"),
            Op::EnableSchedule => ("POST", "/api/v1/schedules/{name}/enable"),
            Op::DeleteSchedule => ("DELETE", "/api/v1/schedules/{name}"),
            Op::CreateFreeze => ("POST", "/api/v1/freezes"),
            Op::DeleteFreeze => ("DELETE", "/api/v1/freezes/{name}"),
        }
    }
}

/// What earlier requests made, for later ones to act on.
#[derive(Default)]
struct Ctx {
    recorder_origin: String,
    /// A second flow, applied by the crash-tested request.
    second_flow: String,
    /// The release to prod that is paused, resumed, approved, rolled back.
    main: String,
    /// The release to staging that is rejected.
    other: String,
    /// The release that is abandoned.
    stuck: String,
    train: String,
    viewer_secret: String,
    /// The token revoked by name in the query.
    walt_secret: String,
    cookie: String,
    csrf: String,
}

fn json_request(d: &Daemon, method: Method, path: &str, body: Value) -> reqwest::RequestBuilder {
    d.request(method, path).json(&body)
}

/// The request an operation makes.
fn request(d: &Daemon, ctx: &Ctx, op: Op) -> reqwest::RequestBuilder {
    let release = |id: &str, what: &str| format!("/api/v1/releases/{id}/{what}");
    match op {
        Op::Upload => d
            .request(Method::POST, "/api/v1/plugins")
            .query(&[("name", "extra"), ("version", "1.0.0")])
            .body(crate::support::fixture("fixture_check")),
        Op::Grant => json_request(
            d,
            Method::PUT,
            "/api/v1/plugins/extra/grant",
            json!({"allowed_hosts": [ctx.recorder_origin], "config": {"tier": "narrow"}}),
        ),
        Op::EditGrant => json_request(
            d,
            Method::PATCH,
            "/api/v1/plugins/extra/grant",
            json!({"allow_hosts": ["http://127.0.0.1:7"], "allow_release_targets": true, "config": {"zone": "eu"}}),
        ),
        Op::Invoke => json_request(
            d,
            Method::POST,
            "/api/v1/plugins/extra/1.0.0/invoke",
            json!({
                "context": {"application": "shop", "environment": "prod", "version": "2.0.0", "parameters": {}},
                "targets": [{"id": "web-1", "address": "127.0.0.1:1"}]
            }),
        ),
        Op::SetOwners => json_request(
            d,
            Method::PUT,
            "/api/v1/plugins/extra/owners",
            json!({"owners": ["admin", "author"]}),
        ),
        Op::ApprovePlugin => json_request(
            d,
            Method::POST,
            "/api/v1/plugins/extra/1.1.0/approve",
            json!({"comment": "reviewed"}),
        ),
        Op::ApplyFlow => d
            .request(Method::POST, "/api/v1/flows")
            .header("content-type", "application/toml")
            .body(ctx.second_flow.clone()),
        Op::PlanFlow => json_request(
            d,
            Method::POST,
            "/api/v1/flows/standard/plan",
            json!({"application": "shop", "environment": "prod"}),
        ),
        Op::Replay => json_request(
            d,
            Method::POST,
            "/api/v1/analysis/replay",
            json!({"flow_name": "standard", "application": "shop"}),
        ),
        Op::PutEnvironment => json_request(
            d,
            Method::PUT,
            "/api/v1/apps/shop/envs/extra",
            json!({"targets": [{"id": "a-1", "address": "10.0.1.1:80"}, {"id": "a-2", "address": "10.0.1.2:80"}]}),
        ),
        Op::DeleteEnvironment => d.request(Method::DELETE, "/api/v1/apps/shop/envs/extra"),
        Op::StartRelease => json_request(
            d,
            Method::POST,
            "/api/v1/releases",
            json!({"application": "shop", "environment": "prod", "version": "2.0.0", "flow": "standard"}),
        ),
        Op::Pause => json_request(
            d,
            Method::POST,
            &release(&ctx.main, "pause"),
            json!({"comment": "hold on"}),
        ),
        Op::Resume => d.request(Method::POST, &release(&ctx.main, "resume")),
        Op::MoveClock => json_request(
            d,
            Method::POST,
            "/api/v1/clock",
            json!({"advance_ms": 11 * 60_000}),
        ),
        Op::Approve => json_request(
            d,
            Method::POST,
            &release(&ctx.main, "approve"),
            json!({"comment": "looks good"}),
        ),
        Op::Reject => json_request(
            d,
            Method::POST,
            &release(&ctx.other, "reject"),
            json!({"comment": "not today"}),
        ),
        Op::Rollback => json_request(
            d,
            Method::POST,
            &release(&ctx.main, "rollback"),
            json!({"comment": "undo"}),
        ),
        Op::Abandon => json_request(
            d,
            Method::POST,
            &release(&ctx.stuck, "abandon"),
            json!({"comment": "cannot finish"}),
        ),
        Op::PlanTrain => json_request(d, Method::POST, "/api/v1/trains/plan", train_body()),
        Op::StartTrain => json_request(d, Method::POST, "/api/v1/trains", train_body()),
        Op::RollbackTrain => d.request(
            Method::POST,
            &format!("/api/v1/trains/{}/rollback", ctx.train),
        ),
        Op::CreateToken => json_request(
            d,
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "vera", "role": "viewer"}),
        ),
        Op::RevokeToken => d.request(Method::DELETE, "/api/v1/tokens/vera"),
        Op::RevokeTokenNamed => d
            .request(Method::DELETE, "/api/v1/tokens")
            .query(&[("name", "walt")]),
        Op::SignIn => reqwest::Client::new()
            .post(d.url("/api/v1/session"))
            .json(&json!({"token": ctx.viewer_secret})),
        Op::SignOut => reqwest::Client::new()
            .delete(d.url("/api/v1/session"))
            .header("cookie", &ctx.cookie)
            .header("x-csrf-token", &ctx.csrf)
            .header("origin", &d.base),
        Op::CreateSchedule => json_request(
            d,
            Method::POST,
            "/api/v1/schedules",
            json!({"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "application": "shop",
                   "environment": "staging", "flow": "standard", "version": "3.0.0"}),
        ),
        Op::DisableSchedule => d.request(Method::POST, "/api/v1/schedules/nightly/disable"),
        Op::EnableSchedule => d.request(Method::POST, "/api/v1/schedules/nightly/enable"),
        Op::DeleteSchedule => d.request(Method::DELETE, "/api/v1/schedules/nightly"),
        Op::CreateFreeze => json_request(
            d,
            Method::POST,
            "/api/v1/freezes",
            json!({"name": "holidays", "start_ms": CLOCK_START_MS + 100 * 86_400_000u64,
                   "end_ms": CLOCK_START_MS + 101 * 86_400_000u64, "reason": "end of year"}),
        ),
        Op::DeleteFreeze => d.request(Method::DELETE, "/api/v1/freezes/holidays"),
    }
}

fn train_body() -> Value {
    let member = |app: &str, deps: &[&str]| {
        json!({"application": app, "environment": "prod", "version": "2.0.0",
               "flow": "standard", "depends_on": deps})
    };
    json!({"name": "weekly", "members": [member("db", &[]), member("api", &["db"])]})
}

/// Records what an operation's answer says that later operations need.
fn remember(ctx: &mut Ctx, op: Op, answer: &Value, headers: &reqwest::header::HeaderMap) {
    match op {
        Op::StartRelease => ctx.main = answer["id"].as_str().unwrap().to_string(),
        Op::StartTrain => ctx.train = answer["id"].as_str().unwrap().to_string(),
        Op::CreateToken => ctx.viewer_secret = answer["token"].as_str().unwrap().to_string(),
        Op::SignIn => {
            let cookie = headers["set-cookie"].to_str().unwrap();
            ctx.cookie = cookie.split(';').next().unwrap().to_string();
            ctx.csrf = answer["csrf"].as_str().unwrap().to_string();
        }
        _ => {}
    }
}

async fn get(d: &Daemon, path: &str) -> (u16, Value) {
    d.send(d.request(Method::GET, path)).await
}

/// Checks, on the restarted daemon, that the operation's change is there.
async fn verify(d: &Daemon, ctx: &Ctx, op: Op) {
    let found = |path: &str| format!("{op:?}: {path} after the crash");
    match op {
        Op::Upload => assert_eq!(
            get(d, "/api/v1/plugins/extra/1.0.0").await.0,
            200,
            "{}",
            found("the upload")
        ),
        Op::Grant => {
            let (_, plugin) = get(d, "/api/v1/plugins/extra").await;
            assert_eq!(
                plugin["grant"]["allowed_hosts"],
                json!([ctx.recorder_origin]),
                "{plugin}"
            );
            assert_eq!(
                plugin["grant"]["config"],
                json!({"tier": "narrow"}),
                "{plugin}"
            );
        }
        Op::EditGrant => {
            let (_, plugin) = get(d, "/api/v1/plugins/extra").await;
            let grant = &plugin["grant"];
            assert_eq!(
                grant["allowed_hosts"],
                json!([ctx.recorder_origin, "http://127.0.0.1:7"]),
                "{plugin}"
            );
            assert_eq!(grant["allow_release_targets"], true, "{plugin}");
            assert_eq!(
                grant["config"],
                json!({"tier": "narrow", "zone": "eu"}),
                "{plugin}"
            );
        }
        Op::SetOwners => {
            let (_, plugin) = get(d, "/api/v1/plugins/extra").await;
            assert_eq!(plugin["owners"], json!(["admin", "author"]), "{plugin}");
        }
        Op::ApprovePlugin => {
            let (_, version) = get(d, "/api/v1/plugins/extra/1.1.0").await;
            assert_eq!(version["approved"], true, "{version}");
        }
        // Reading is all these do: the audit entry is what must last.
        Op::Invoke | Op::PlanFlow | Op::Replay | Op::PlanTrain | Op::MoveClock => {}
        Op::ApplyFlow => assert_eq!(
            get(d, "/api/v1/flows/second").await.0,
            200,
            "{}",
            found("the flow")
        ),
        Op::PutEnvironment => {
            let (status, env) = get(d, "/api/v1/apps/shop/envs/extra").await;
            assert_eq!(status, 200, "{env}");
            assert_eq!(env["targets"].as_array().map(Vec::len), Some(2), "{env}");
        }
        Op::DeleteEnvironment => assert_eq!(get(d, "/api/v1/apps/shop/envs/extra").await.0, 404),
        Op::StartRelease => assert_eq!(
            get(d, &format!("/api/v1/releases/{}", ctx.main)).await.0,
            200
        ),
        Op::Pause => assert_release(d, &ctx.main, |s| s == "paused").await,
        Op::Resume => assert_release(d, &ctx.main, |s| s != "paused").await,
        Op::Approve => assert_release(d, &ctx.main, |s| s != "waiting-approval").await,
        Op::Reject => {
            let (_, release) = get(d, &format!("/api/v1/releases/{}", ctx.other)).await;
            assert_eq!(release["approvals"][0]["approved"], false, "{release:#}");
        }
        Op::Rollback => assert_release(d, &ctx.main, |s| s != "succeeded").await,
        Op::Abandon => {
            assert_release(d, &ctx.stuck, |s| s == "abandoned").await;
            let (_, env) = get(d, "/api/v1/apps/shop/envs/stuck").await;
            assert!(env["version_unknown"].is_string(), "{env}");
        }
        Op::StartTrain => assert_eq!(
            get(d, &format!("/api/v1/trains/{}", ctx.train)).await.0,
            200
        ),
        Op::RollbackTrain => {
            let (_, train) = get(d, &format!("/api/v1/trains/{}", ctx.train)).await;
            assert_eq!(train["rollback_requested"], true, "{train}");
        }
        Op::CreateToken => {
            let (_, tokens) = get(d, "/api/v1/tokens").await;
            assert!(
                tokens
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["name"] == "vera"),
                "{tokens}"
            );
        }
        Op::RevokeTokenNamed => {
            let (status, _) = d
                .send(
                    reqwest::Client::new()
                        .get(d.url("/api/v1/releases"))
                        .bearer_auth(&ctx.walt_secret),
                )
                .await;
            assert_eq!(status, 401, "a revoked token works again after the crash");
        }
        Op::RevokeToken => {
            let (status, _) = d
                .send(
                    reqwest::Client::new()
                        .get(d.url("/api/v1/releases"))
                        .bearer_auth(&ctx.viewer_secret),
                )
                .await;
            assert_eq!(status, 401, "a revoked token works again after the crash");
        }
        Op::SignIn | Op::SignOut => {
            let (status, _) = d
                .send(
                    reqwest::Client::new()
                        .get(d.url("/api/v1/session"))
                        .header("cookie", &ctx.cookie),
                )
                .await;
            let want = if matches!(op, Op::SignIn) { 200 } else { 401 };
            assert_eq!(status, want, "{op:?}: the session after the crash");
        }
        Op::CreateSchedule | Op::DisableSchedule | Op::EnableSchedule => {
            let (status, schedule) = get(d, "/api/v1/schedules/nightly").await;
            assert_eq!(status, 200, "{schedule}");
            assert_eq!(
                schedule["enabled"],
                !matches!(op, Op::DisableSchedule),
                "{schedule}"
            );
        }
        Op::DeleteSchedule => assert_eq!(get(d, "/api/v1/schedules/nightly").await.0, 404),
        Op::CreateFreeze | Op::DeleteFreeze => {
            let (_, freezes) = get(d, "/api/v1/freezes").await;
            let there = freezes
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "holidays");
            assert_eq!(there, matches!(op, Op::CreateFreeze), "{freezes}");
        }
    }
}

async fn assert_release(d: &Daemon, id: &str, ok: impl Fn(&str) -> bool) {
    let (_, release) = get(d, &format!("/api/v1/releases/{id}")).await;
    let status = release["status"].as_str().unwrap_or_default();
    assert!(
        ok(status),
        "the release is {status} after the crash: {release:#}"
    );
}

/// How many allowed entries of `action` the audit log holds.
async fn audited(d: &Daemon, action: &str) -> usize {
    let (status, log) = get(d, "/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{log}");
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["outcome"] == "allowed")
        .count()
}

/// Moves the clock until the release waits at its gate. The manual clock
/// starts over with every restart, so the bake is passed on the clock of
/// the daemon now running, one check round at a time.
async fn to_gate(d: &Daemon, id: &str) {
    for _ in 0..10 {
        let (_, r) = get(d, &format!("/api/v1/releases/{id}")).await;
        if r["status"] == "waiting-approval" {
            return;
        }
        let rounds = r["decisions"].as_array().map_or(0, Vec::len);
        advance(d, 10 * 60_000).await;
        wait_for(d, id, "a check round or the gate", |r| {
            r["status"] == "waiting-approval"
                || r["decisions"].as_array().map_or(0, Vec::len) > rounds
        })
        .await;
    }
    panic!("release {id} did not reach its gate");
}

/// Brings the releases to where the next operation can act on them.
async fn prepare(d: &Daemon, ctx: &mut Ctx, op: Op) {
    match op {
        Op::RevokeTokenNamed => ctx.walt_secret = d.create_token("walt", "viewer").await,
        // A version an owner who is not an admin published: it waits for
        // the approval the crash-tested request gives.
        Op::ApprovePlugin => {
            let author = d.create_token("author", "plugin-author").await;
            let (status, body) = d
                .send(
                    reqwest::Client::new()
                        .post(d.url("/api/v1/plugins"))
                        .bearer_auth(author)
                        .query(&[("name", "extra"), ("version", "1.1.0")])
                        .body(crate::support::fixture("fixture_check")),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["plugin"]["approved"], false, "{body}");
        }
        Op::Approve => {
            for id in [&ctx.main, &ctx.other] {
                to_gate(d, id).await;
            }
        }
        Op::Rollback => {
            wait_status(d, &ctx.main, "succeeded").await;
        }
        Op::Abandon => {
            ctx.stuck = start_release(d, "shop", "stuck", "2.0.0", "standard").await;
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_acknowledged_change_and_its_audit_entry_survive_a_crash() {
    let scenario: BTreeSet<(&str, &str)> = SCENARIO.iter().map(|op| op.route()).collect();
    let routes: BTreeSet<(&str, &str)> = greenlight::api::routes()
        .iter()
        .copied()
        .filter(|(method, _)| *method != "GET")
        .collect();
    assert_eq!(
        routes.difference(&scenario).collect::<Vec<_>>(),
        Vec::<&(&str, &str)>::new(),
        "state-changing routes without a crash scenario here"
    );
    assert_eq!(
        scenario.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(&str, &str)>::new(),
        "scenarios for routes the router does not serve"
    );

    let recorder = Recorder::start().await;
    let mut d = release_daemon(&recorder).await;
    let mut ctx = Ctx {
        recorder_origin: recorder.origin(),
        second_flow: standard_flow(&recorder).replacen(
            "name = \"standard\"",
            "name = \"second\"",
            1,
        ),
        ..Ctx::default()
    };
    apply_flow(&d, &standard_flow(&recorder)).await;
    for (app, env) in [
        ("shop", "prod"),
        ("shop", "staging"),
        ("shop", "stuck"),
        ("db", "prod"),
        ("api", "prod"),
    ] {
        put_environment(&d, app, env, 4, &[]).await;
    }
    ctx.other = start_release(&d, "shop", "staging", "2.0.0", "standard").await;

    for op in SCENARIO {
        prepare(&d, &mut ctx, op).await;
        // The grant the crash-tested one narrows: a lost grant would come
        // back wider.
        if matches!(op, Op::Grant) {
            d.grant(
                "extra",
                json!({"allowed_hosts": [ctx.recorder_origin, "http://127.0.0.1:9"], "config": {"tier": "wide"}}),
            )
            .await;
        }
        let (method, route) = op.route();
        let action = format!("{method} {route}");
        let before = audited(&d, &action).await;
        let response = request(&d, &ctx, op).send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the answer's body");
        // The answer has arrived: the daemon dies now, with SIGKILL.
        d = d.crash_and_restart().await;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            (200..300).contains(&status),
            "{op:?} was refused: {status} {answer}"
        );
        remember(&mut ctx, op, &answer, &headers);
        verify(&d, &ctx, op).await;
        assert_eq!(
            audited(&d, &action).await,
            before + 1,
            "{op:?}: the audit entry of `{action}` is lost in the crash"
        );
    }
}
