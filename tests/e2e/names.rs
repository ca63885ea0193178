//! Names: one table of bad names, tried as every kind of name the API
//! accepts; each is refused with a 400 whose message names the field and
//! states the rule.

use reqwest::Method;
use serde_json::json;

use crate::support::Daemon;

/// The names the security review sent, and their kin.
const BAD: &[&str] = &[
    "../x",
    "a\0b",
    "a\r\nb",
    "a\u{202e}b",
    ".",
    "..",
    "",
    "Shop",
    "a b",
    "a/b",
];

/// The rule every refusal states.
const RULE: &str = "is not a name: use 1 to 63 characters of a-z, 0-9";

/// One kind of name: the request carrying `name`, and the field the
/// refusal must name.
struct Kind {
    label: &'static str,
    field: &'static str,
    request: fn(&Daemon, &str) -> reqwest::RequestBuilder,
}

fn flow_file(name: &str, stage: &str) -> String {
    format!(
        "name = {}\nversion = 1\n[[stages]]\nname = {}\nkind = \"approval\"\napprovers = 1\n",
        toml_string(name),
        toml_string(stage)
    )
}

/// A TOML basic string holding `text` exactly.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            label: "flow",
            field: "name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/flows")
                    .body(flow_file(n, "gate"))
            },
        },
        Kind {
            label: "stage",
            field: "stages[0].name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/flows")
                    .body(flow_file("ok", n))
            },
        },
        Kind {
            label: "target",
            field: "targets[1].id",
            request: |d, n| {
                d.request(Method::PUT, "/api/v1/apps/shop/envs/prod").json(&json!({
                    "targets": [{"id": "web-1", "address": "10.0.0.1:80"}, {"id": n, "address": "10.0.0.2:80"}]
                }))
            },
        },
        Kind {
            label: "target group",
            field: "targets[0].group",
            request: |d, n| {
                d.request(Method::PUT, "/api/v1/apps/shop/envs/prod")
                    .json(&json!({
                        "targets": [{"id": "web-1", "address": "10.0.0.1:80", "group": n}]
                    }))
            },
        },
        Kind {
            label: "token",
            field: "name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/tokens")
                    .json(&json!({"name": n, "role": "viewer"}))
            },
        },
        Kind {
            label: "schedule",
            field: "name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/schedules").json(&json!({
                    "name": n, "cron": "0 2 * * *", "application": "shop",
                    "environment": "prod", "flow": "standard", "version": "1.0.0"
                }))
            },
        },
        Kind {
            label: "freeze",
            field: "name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/freezes")
                    .json(&json!({"name": n, "start_ms": 1, "end_ms": 2}))
            },
        },
        Kind {
            label: "release's application",
            field: "application",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/releases").json(&json!({
                    "application": n, "environment": "prod", "version": "1.0.0", "flow": "standard"
                }))
            },
        },
        Kind {
            label: "train member",
            field: "members[0].environment",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/trains").json(&json!({
                    "members": [{"application": "shop", "environment": n, "version": "1", "flow": "standard"}]
                }))
            },
        },
        Kind {
            label: "plugin",
            field: "name",
            request: |d, n| {
                d.request(Method::POST, "/api/v1/plugins")
                    .query(&[("name", n), ("version", "1.0.0")])
                    .header("content-type", "application/wasm")
                    .body(b"\0asm".to_vec())
            },
        },
    ]
}

#[tokio::test]
async fn every_kind_of_name_refuses_every_bad_name_and_says_why() {
    let d = Daemon::start().await;
    let long = "x".repeat(10_000);
    let bad: Vec<&str> = BAD.iter().copied().chain([long.as_str()]).collect();
    let mut wrong = Vec::new();
    for kind in kinds() {
        for name in &bad {
            // An empty group is no group.
            if name.is_empty() && kind.field.ends_with(".group") {
                continue;
            }
            let (status, body) = d.send((kind.request)(&d, name)).await;
            // A name in the request target that makes it longer than the
            // edge takes is refused before any route reads it.
            if status == 414 && body["code"] == "request.uri_too_long" && name.len() > 8192 {
                continue;
            }
            let message = body["message"].as_str().unwrap_or_default();
            let named = message.contains(&format!("{}: ", kind.field)) && message.contains(RULE);
            if status != 400 || !named {
                wrong.push(format!("{} {name:?}: {status} {body}", kind.label));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn good_names_are_still_accepted() {
    let d = Daemon::start().await;
    let (status, body) = d
        .send(
            d.request(Method::POST, "/api/v1/flows")
                .body(flow_file("release.v2_x", "gate-1")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = d
        .send(d.request(Method::PUT, "/api/v1/apps/shop/envs/eu-1.prod").json(&json!({
            "targets": [{"id": "web_1.eu", "address": "http://10.0.0.1:8080/health", "group": "blue",
                         "labels": {"zone": "eu-1\tα"}}]
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = d
        .send(
            d.request(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "ci-bot.2", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = d
        .send(d.request(Method::DELETE, "/api/v1/tokens/ci-bot.2"))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn addresses_and_comments_refuse_control_characters() {
    let d = Daemon::start().await;
    for address in ["10.0.0.1:80\r\nX: y", "a\0", "ftp://x", "a b"] {
        let (status, body) = d
            .send(
                d.request(Method::PUT, "/api/v1/apps/shop/envs/prod")
                    .json(&json!({
                        "targets": [{"id": "web-1", "address": address}]
                    })),
            )
            .await;
        assert_eq!(status, 400, "{address:?}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("targets[0].address: "),
            "{body}"
        );
    }
    for comment in ["a\rb", "a\u{202e}b", "a\u{1b}[2J"] {
        let (status, body) = d
            .send(d.request(Method::POST, "/api/v1/releases").json(&json!({
                "application": "shop", "environment": "prod", "version": "1", "flow": "standard",
                "comment": comment
            })))
            .await;
        assert_eq!(status, 400, "{comment:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("comment: "),
            "{body}"
        );
    }
}
