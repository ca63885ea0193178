//! The inventory through the API and the CLI: environments are put, read,
//! listed, replaced and deleted, every refusal names its field, and a
//! release is planned over an environment by name.

use greenlight::store::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Daemon, assert_refused, cli};

const PROD: &str = "/api/v1/apps/shop/envs/prod";

fn fleet(n: usize) -> Value {
    let targets: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("web-{i}"),
                "address": format!("10.0.0.{i}:8080"),
                "group": if i % 2 == 0 { "blue" } else { "green" },
                "labels": {"zone": "eu-1"},
            })
        })
        .collect();
    json!({"targets": targets, "live_group": "blue"})
}

async fn put(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    d.send(d.request(Method::PUT, path).json(body)).await
}

#[tokio::test]
async fn environments_are_put_read_listed_replaced_and_deleted() {
    let d = Daemon::start().await;
    let (status, body) = put(&d, PROD, &fleet(4)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["environment"]["targets"][1]["group"], "green");
    let (status, _) = put(&d, "/api/v1/apps/shop/envs/beta", &fleet(2)).await;
    assert_eq!(status, 201);
    let (status, _) = put(&d, "/api/v1/apps/blog/envs/prod", &fleet(2)).await;
    assert_eq!(status, 201);

    let (status, env) = d.send(d.request(Method::GET, PROD)).await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["application"], "shop");
    assert_eq!(env["live_group"], "blue");
    assert_eq!(env["current_version"], Value::Null);
    assert_eq!(
        env["targets"][0],
        json!({"id": "web-0", "address": "10.0.0.0:8080", "group": "blue", "labels": {"zone": "eu-1"}})
    );

    let mut replacement = fleet(6);
    replacement["live_group"] = json!("green");
    let (status, body) = put(&d, PROD, &replacement).await;
    assert_eq!((status, &body["created"]), (200, &json!(false)), "{body}");

    let (status, apps) = d.send(d.request(Method::GET, "/api/v1/apps")).await;
    assert_eq!(status, 200);
    assert_eq!(
        apps,
        json!([
            {"name": "blog", "environments": [
                {"name": "prod", "targets": 2, "groups": ["blue", "green"], "live_group": "blue", "current_version": null}
            ]},
            {"name": "shop", "environments": [
                {"name": "beta", "targets": 2, "groups": ["blue", "green"], "live_group": "blue", "current_version": null},
                {"name": "prod", "targets": 6, "groups": ["blue", "green"], "live_group": "green", "current_version": null}
            ]}
        ])
    );

    let (status, _) = d.send(d.request(Method::DELETE, PROD)).await;
    assert_eq!(status, 204);
    let (status, body) = d.send(d.request(Method::GET, PROD)).await;
    assert_refused(
        status,
        &body,
        (404, "not_found"),
        "no environment `prod` in application `shop`",
    );
    let (status, body) = d.send(d.request(Method::DELETE, PROD)).await;
    assert_refused(status, &body, (404, "not_found"), "`prod`");
}

#[tokio::test]
async fn every_refusal_names_the_field_at_fault() {
    let d = Daemon::start().await;
    let mut duplicate = fleet(3);
    duplicate["targets"][2]["id"] = json!("web-0");
    let mut bad_live = fleet(2);
    bad_live["live_group"] = json!("red");
    let mut unknown = fleet(2);
    unknown["targets"][1]["colour"] = json!("blue");
    let mut no_address = fleet(2);
    no_address["targets"][1]["address"] = json!("");
    let cases = [
        (
            PROD,
            duplicate,
            422,
            "targets[2].id: target id `web-0` is used twice",
        ),
        (
            PROD,
            json!({"targets": []}),
            400,
            "targets: an environment needs at least one target",
        ),
        (
            PROD,
            bad_live,
            422,
            "live_group: `red` is not the group of any target; the groups are blue, green",
        ),
        (
            PROD,
            unknown,
            400,
            "targets[1].colour: unknown field `colour`",
        ),
        (
            PROD,
            no_address,
            400,
            "targets[1].address: must not be empty",
        ),
        (
            "/api/v1/apps/Shop/envs/prod",
            fleet(2),
            400,
            "application: `Shop` is not a name",
        ),
    ];
    // A request the document refuses is malformed (400); one that matches
    // it but breaks a rule stated in words is unprocessable (422).
    for (path, body, code, needle) in cases {
        let (status, answer) = put(&d, path, &body).await;
        assert_refused(status, &answer, (code, "inventory.invalid"), needle);
    }
    let (_, apps) = d.send(d.request(Method::GET, "/api/v1/apps")).await;
    assert_eq!(apps, json!([]), "a refused environment was stored");
}

#[tokio::test]
async fn only_admins_change_the_inventory() {
    let d = Daemon::start().await;
    assert_eq!(put(&d, PROD, &fleet(2)).await.0, 201);
    let (d, manager) = d.add_token(Role::ReleaseManager).await;
    let http = reqwest::Client::new();
    let as_manager = |method| http.request(method, d.url(PROD)).bearer_auth(&manager);

    let (status, body) = d.send(as_manager(Method::PUT).json(&fleet(4))).await;
    assert_refused(status, &body, (403, "auth.forbidden"), "needs admin");
    let (status, body) = d.send(as_manager(Method::DELETE)).await;
    assert_refused(status, &body, (403, "auth.forbidden"), "needs admin");
    let (status, env) = d.send(as_manager(Method::GET)).await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["targets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_inventory_file_is_applied_and_shown_from_the_cli() {
    let d = Daemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.toml");
    std::fs::write(
        &file,
        r#"
application = "shop"

[environments.prod]
live_group = "blue"
targets = [
  { id = "web-1", address = "10.0.0.1:8080", group = "blue", labels = { zone = "eu-1" } },
  { id = "web-2", address = "10.0.0.2:8080", group = "green" },
]

[environments.beta]
targets = [{ id = "beta-1", address = "10.0.1.1:8080" }]
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, out, err) = cli(&d, &["inventory", "apply", path]);
    assert!(ok, "{err}");
    assert!(out.contains("Created shop/beta (1 targets)"), "{out}");
    assert!(out.contains("Created shop/prod (2 targets)"), "{out}");
    let (ok, out, _) = cli(&d, &["inventory", "apply", path]);
    assert!(ok && out.contains("Replaced shop/prod"), "{out}");
    let (ok, out, err) = cli(&d, &["inventory", "apply", path, "--json"]);
    assert!(ok, "{err}");
    let put: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let put: Vec<(&Value, &Value)> = put
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p["created"], &p["environment"]["name"]))
        .collect();
    assert_eq!(
        put,
        [
            (&json!(false), &json!("beta")),
            (&json!(false), &json!("prod"))
        ],
        "one document for the whole file: {out}"
    );

    let (ok, out, err) = cli(&d, &["inventory", "show", "shop", "prod"]);
    assert!(ok, "{err}");
    assert!(out.contains("live group: blue"), "{out}");
    let web1 = out.lines().find(|l| l.starts_with("web-1")).unwrap_or("");
    for needle in ["10.0.0.1:8080", "blue", "zone=eu-1"] {
        assert!(web1.contains(needle), "`{needle}` missing from `{web1}`");
    }
    let (ok, out, err) = cli(&d, &["inventory", "show", "shop", "prod", "--json"]);
    assert!(ok, "{err}");
    let env: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        (&env["application"], &env["name"], &env["live_group"]),
        (&json!("shop"), &json!("prod"), &json!("blue")),
        "{env:#}"
    );
    assert_eq!(
        env["targets"][0],
        json!({"id": "web-1", "address": "10.0.0.1:8080", "group": "blue", "labels": {"zone": "eu-1"}}),
        "{env:#}"
    );
    assert_eq!(env["targets"][1]["id"], "web-2", "{env:#}");
    assert!(env["current_version"].is_null(), "{env:#}");
    let (ok, out, _) = cli(&d, &["inventory", "list"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("shop") && l.contains("beta")),
        "{out}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
application = "shop"

[environments.qa]
live_group = "red"
targets = [{ id = "qa-1", address = "10.0.2.1:8080", group = "blue" }]
"#,
    )
    .unwrap();
    let (ok, _, err) = cli(&d, &["inventory", "apply", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(
        err.contains("environments.qa.live_group: `red` is not the group of any target"),
        "{err}"
    );
    let (status, _) = d
        .send(d.request(Method::GET, "/api/v1/apps/shop/envs/qa"))
        .await;
    assert_eq!(status, 404, "a refused file was applied");

    std::fs::write(
        &bad,
        "application = \"shop\"\n[environments.qa]\ntargets = []\nweight = 3\n",
    )
    .unwrap();
    let (ok, _, err) = cli(&d, &["inventory", "apply", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.toml is not a valid inventory file"),
        "{err}"
    );
    assert!(err.contains("unknown field `weight`"), "{err}");
}

#[tokio::test]
async fn a_release_is_planned_over_an_environment_by_name() {
    let d = Daemon::start().await;
    d.upload_ok("agent", "fixture_deployer").await;
    d.upload_ok("router", "fixture_traffic").await;
    let flow = r#"
name = "swap"
version = 1

[[stages]]
name = "switch"
kind = "deploy"
strategy = "blue-green"
deployer = { plugin = "agent" }
traffic = { plugin = "router" }
steps = [10, 100]
bake_per_step = "1m"
"#;
    let (status, body) = d
        .send(
            d.request(Method::POST, "/api/v1/flows")
                .header("content-type", "application/toml")
                .body(flow),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(put(&d, PROD, &fleet(4)).await.0, 201);

    let plan_path = "/api/v1/flows/swap/plan";
    let plan = |body: Value| d.send(d.request(Method::POST, plan_path).json(&body));
    let (status, plan_body) = plan(json!({"application": "shop", "environment": "prod"})).await;
    assert_eq!(status, 200, "{plan_body}");
    assert_eq!(plan_body[0]["idle_group"], "green");
    assert_eq!(plan_body[0]["batches"], json!([["web-1", "web-3"]]));

    let (status, body) = plan(json!({"application": "shop", "environment": "qa"})).await;
    assert_refused(status, &body, (404, "not_found"), "no environment `qa`");
    let targets = json!([{"id": "a"}]);
    let refusals = [
        (
            json!({}),
            "targets: give `targets`, or `application` and `environment`",
        ),
        (
            json!({"targets": targets, "application": "shop", "environment": "prod"}),
            "not both",
        ),
        (json!({"application": "shop"}), "environment: is required"),
        (
            json!({"application": "shop", "environment": "prod", "live_group": "green"}),
            "live_group: comes from the inventory",
        ),
    ];
    for (body, needle) in refusals {
        let (status, answer) = plan(body).await;
        assert_refused(status, &answer, (400, "plan.invalid"), needle);
    }
}
