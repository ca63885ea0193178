//! `sql-precheck` and `config-precheck` judge the release's artifacts.

use serde_json::{Value, json};

use super::{context, daemon_with, metric};
use crate::support::Daemon;

async fn run(d: &Daemon, name: &str, parameters: Value, artifacts: Value) -> (Value, bool) {
    let answer = d
        .invoke(
            name,
            json!({"context": context(parameters), "artifacts": artifacts}),
        )
        .await;
    assert_eq!(answer["status"], "ok", "{answer}");
    let out = &answer["output"]["precheck"];
    (
        out["verdict"].clone(),
        out["forward_only"].as_bool().unwrap(),
    )
}

fn migration(name: &str, sql: &str) -> Value {
    json!({"kind": "sql-migration", "name": name, "content": sql})
}

#[tokio::test]
async fn a_destructive_migration_passes_but_makes_the_release_forward_only() {
    let d = daemon_with("sql", "sql_precheck").await;
    let (v, forward_only) = run(
        &d,
        "sql",
        json!({}),
        json!([
            migration("V1__add.sql", "ALTER TABLE users ADD COLUMN tier text DEFAULT 'free';"),
            migration("V2__drop.sql", "-- retire the old column\nALTER TABLE users DROP COLUMN email;"),
            {"kind": "changes", "name": "CHANGES.md", "content": "DROP TABLE is only prose here"}
        ]),
    )
    .await;
    assert_eq!(v["status"], "pass", "{v}");
    assert!(forward_only);
    assert_eq!(
        v["summary"],
        "1 dangerous statements, the release is forward-only: V2__drop.sql:2 drop-column (ALTER TABLE USERS DROP COLUMN EMAIL)"
    );
    assert_eq!(metric(&v, "migrations"), Some(2.0));
    assert_eq!(metric(&v, "statements"), Some(2.0));
}

#[tokio::test]
async fn a_locking_migration_fails_unless_the_flow_allows_it() {
    let d = daemon_with("sql", "sql_precheck").await;
    let artifacts = json!([migration(
        "V3__index.sql",
        "CREATE INDEX idx_orders_user ON orders (user_id);\nTRUNCATE sessions;"
    )]);
    let (v, forward_only) = run(&d, "sql", json!({}), artifacts.clone()).await;
    assert_eq!(v["status"], "fail", "{v}");
    assert!(forward_only, "truncate is destructive");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 dangerous statements, 1 not allowed: V3__index.sql:1 blocking-index"),
        "{v}"
    );

    let (v, _) = run(
        &d,
        "sql",
        json!({"allow": "blocking-index"}),
        artifacts.clone(),
    )
    .await;
    assert_eq!(v["status"], "pass", "{v}");
    let (v, _) = run(&d, "sql", json!({"fail_on": "everything"}), artifacts).await;
    assert_eq!(v["status"], "error");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .starts_with("parameter `fail_on`: unknown rule `everything` (known: drop-table,"),
        "{v}"
    );
}

#[tokio::test]
async fn a_safe_migration_passes_and_stays_reversible() {
    let d = daemon_with("sql", "sql_precheck").await;
    let (v, forward_only) = run(
        &d,
        "sql",
        json!({}),
        json!([migration(
            "V4.sql",
            "CREATE TABLE carts (id bigint);\nCREATE INDEX idx_carts ON carts (id);\nCREATE INDEX CONCURRENTLY idx_o ON orders (id);"
        )]),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), forward_only),
        (Some("pass"), false),
        "{v}"
    );
    assert_eq!(v["summary"], "3 statements in 1 migrations, none dangerous");
}

const SCHEMA: &str = r#"
allow_unknown = false
[fields."server.port"]
type = "integer"
required = true
max = 65535
[fields."log.level"]
type = "string"
one_of = ["info", "debug"]
"#;

#[tokio::test]
async fn configuration_files_are_validated_against_the_named_schema() {
    let d = daemon_with("config", "config_precheck").await;
    let good = json!([
        {"kind": "config", "name": "app.toml", "content": "[server]\nport = 8080\n[log]\nlevel = \"info\"\n"},
        {"kind": "config", "name": "worker.json", "content": "{\"server\": {\"port\": 9090}}"}
    ]);
    let (v, forward_only) = run(&d, "config", json!({"schema": SCHEMA}), good).await;
    assert_eq!(v["status"], "pass", "{v}");
    assert!(!forward_only);
    assert_eq!(
        v["summary"],
        "2 configuration files valid against the inline schema"
    );

    // The schema can also be a granted configuration value.
    d.grant("config", json!({"config": {"app-schema": SCHEMA}}))
        .await;
    let bad = json!([
        {"kind": "config", "name": "app.toml", "content": "[server]\nport = \"80\"\ncolour = \"red\"\n"},
        {"kind": "config", "name": "broken.json", "content": "{\"server\": "}
    ]);
    let (v, _) = run(&d, "config", json!({"schema_config": "app-schema"}), bad).await;
    assert_eq!(v["status"], "fail", "{v}");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("3 problems against schema `app-schema`: "),
        "{summary}"
    );
    for problem in [
        "app.toml: server.port: expected integer, found string \"80\"",
        "app.toml: server.colour: is not in the schema",
        "broken.json: invalid JSON: EOF while parsing",
    ] {
        assert!(
            summary.contains(problem),
            "`{problem}` missing in {summary}"
        );
    }
    assert_eq!(metric(&v, "problems"), Some(3.0));

    let (v, _) = run(&d, "config", json!({}), json!([])).await;
    assert_eq!(v["status"], "error");
    assert_eq!(
        v["summary"],
        "set exactly one of the parameters `schema`, `schema_config` or `schema_artifact`"
    );
}
