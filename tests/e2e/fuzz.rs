//! A few thousand generated malformed requests to every route: none may
//! answer with a 5xx, and the daemon must still serve afterwards.

use reqwest::Method;

use crate::support::Daemon;

/// Every route, with `{}` where a path parameter goes.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/runtime"),
    ("POST", "/api/v1/plugins"),
    ("GET", "/api/v1/plugins"),
    ("GET", "/api/v1/plugins/{}"),
    ("PUT", "/api/v1/plugins/{}/grant"),
    ("GET", "/api/v1/plugins/{}/{}"),
    ("POST", "/api/v1/plugins/{}/{}/invoke"),
    ("POST", "/api/v1/flows"),
    ("GET", "/api/v1/flows"),
    ("GET", "/api/v1/flows/{}"),
    ("POST", "/api/v1/flows/{}/plan"),
    ("GET", "/api/v1/apps"),
    ("PUT", "/api/v1/apps/{}/envs/{}"),
    ("GET", "/api/v1/apps/{}/envs/{}"),
    ("DELETE", "/api/v1/apps/{}/envs/{}"),
    ("POST", "/api/v1/releases"),
    ("GET", "/api/v1/releases"),
    ("GET", "/api/v1/releases/{}"),
    ("GET", "/api/v1/releases/{}/journal"),
    ("POST", "/api/v1/releases/{}/{}"),
    ("POST", "/api/v1/releases/{}/resume"),
    ("POST", "/api/v1/releases/{}/rollback"),
    ("POST", "/api/v1/trains"),
    ("POST", "/api/v1/trains/plan"),
    ("GET", "/api/v1/trains"),
    ("GET", "/api/v1/trains/{}"),
    ("POST", "/api/v1/trains/{}/rollback"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{}"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/clock"),
    ("POST", "/api/v1/clock"),
    ("POST", "/api/v1/schedules"),
    ("GET", "/api/v1/schedules"),
    ("GET", "/api/v1/schedules/{}"),
    ("DELETE", "/api/v1/schedules/{}"),
    ("POST", "/api/v1/schedules/{}/enable"),
    ("POST", "/api/v1/schedules/{}/disable"),
    ("GET", "/api/v1/schedules/{}/next"),
    ("GET", "/api/v1/schedules/{}/fires"),
    ("POST", "/api/v1/freezes"),
    ("GET", "/api/v1/freezes"),
    ("DELETE", "/api/v1/freezes/{}"),
];

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SEGMENTS: &[&str] = &[
    "",
    "..",
    "%2e%2e",
    "a%00b",
    "%ff%fe",
    "%zz",
    "\u{1f600}",
    "a%2Fb",
    "-1",
    "null",
    "shop",
    "approve",
    "latest",
    "1.0.0",
    "' OR 1=1 --",
    "<script>",
];

const QUERIES: &[&str] = &[
    "",
    "?",
    "?name=&version=",
    "?name=x&version=not-semver",
    "?limit=-5",
    "?limit=99999999999999999999",
    "?since_ms=yesterday",
    "?status=%zz",
    "?release=%00",
    "?unknown=1",
    "?name=a&name=b&version=1.0.0",
];

const JSON_BODIES: &[&str] = &[
    "",
    "{",
    "null",
    "[]",
    "\"text\"",
    "{\"comment\": 5}",
    "{\"mode\": \"sideways\"}",
    "{\"targets\": {}}",
    "{\"targets\": [{\"id\": 7}]}",
    "{\"application\": [], \"environment\": {}, \"version\": 1e999, \"flow\": null}",
    "{\"members\": [{\"application\": \"a\", \"depends_on\": 5}]}",
    "{\"advance_ms\": -1}",
    "{\"now_ms\": 18446744073709551616}",
    "{\"name\": \"\", \"role\": \"\"}",
    "{\"limits\": {\"deadline_ms\": -1, \"memory_mib\": 1e30}}",
    "{\"allowed_hosts\": [\"not a url\", \"ftp://x\", \"http://\"]}",
    "{\"context\": {\"parameters\": 3}, \"targets\": \"x\"}",
    "{\"a\":1,\"a\":2}",
    "{\"name\": \"n\", \"cron\": \"61 * * * *\", \"timezone\": \"Mars/Base\", \"application\": \"a\", \"environment\": \"e\", \"flow\": \"f\", \"version\": \"1\"}",
    "{\"name\": \"n\", \"cron\": \"0 0 31 2 *\", \"version_url\": \"ftp://x\", \"missed\": \"catch-up\", \"catch_up_max\": 1000000}",
    "{\"name\": \"n\", \"cron\": \"* * * * * * * *\", \"duration_ms\": 18446744073709551615, \"start_ms\": 5}",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("text/plain"),
    Some("application/toml"),
    Some("application/wasm"),
    Some("multipart/form-data; boundary=x"),
    None,
];

fn body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        1 => "[".repeat(10_000).into_bytes(),
        2 => format!(
            "{{\"comment\": \"{}\"}}",
            "x".repeat(rng.below(3) * 700_000)
        )
        .into_bytes(),
        3 => "name = \"f\"\nversion = 1\n[[stages]]\nkind = 7\n"
            .as_bytes()
            .to_vec(),
        _ => rng.pick(JSON_BODIES).as_bytes().to_vec(),
    }
}

fn path(rng: &mut Rng, template: &str) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            if rng.below(8) == 0 {
                out.push_str(&"x".repeat(3000));
            } else {
                out.push_str(rng.pick(SEGMENTS));
            }
        }
        out.push_str(part);
    }
    out.push_str(rng.pick(QUERIES));
    out
}

#[tokio::test]
async fn thousands_of_malformed_requests_never_get_a_5xx() {
    // The requests without a token reach the routes instead of the rate
    // limit (tests/e2e/edge.rs tests that).
    let d = Daemon::start_with_config("[http]\nunauthenticated_per_minute = 1000000\n").await;
    let client = reqwest::Client::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut sent = 0;
    for _round in 0..100 {
        let mut batch = Vec::new();
        for &(method, template) in ROUTES {
            let method = if rng.below(10) == 0 {
                rng.pick(&[Method::PATCH, Method::PUT, Method::DELETE, Method::POST])
                    .clone()
            } else {
                method.parse().unwrap()
            };
            let url = format!("{}{}", d.base, path(&mut rng, template));
            let mut request = client.request(method.clone(), &url);
            if rng.below(6) != 0 {
                request = request.bearer_auth(&d.token);
            }
            if let Some(content_type) = rng.pick(CONTENT_TYPES) {
                request = request.header("content-type", *content_type);
            }
            if method != Method::GET {
                request = request.body(body(&mut rng));
            }
            let label = format!("{method} {}", &url[..url.len().min(160)]);
            batch.push(async move { (label, request.send().await) });
        }
        sent += batch.len();
        for (label, result) in futures::future::join_all(batch).await {
            if let Ok(r) = &result {
                *statuses.entry(r.status().as_u16()).or_default() += 1;
            }
            match result {
                Ok(r) if r.status().is_server_error() => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    failures.push(format!("{label}: {status} {text}"));
                }
                Ok(_) => {}
                // A request the server refused to read to the end is not
                // a 5xx; the daemon must still be alive afterwards.
                Err(e) if e.is_request() || e.is_body() => {}
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    assert!(sent >= 3000, "sent {sent}");
    // The requests reach the handlers' own checks, not only the router's
    // and the token check.
    let count = |s: u16| statuses.get(&s).copied().unwrap_or(0);
    assert!(
        count(400) > 200 && count(404) > 50 && count(200) > 50,
        "{statuses:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    d.assert_healthy().await;
    let (status, _) = d.send(d.request(Method::GET, "/api/v1/plugins")).await;
    assert_eq!(status, 200);
}

/// Each class of bad input gets a 4xx with exactly `{code, message}`.
#[tokio::test]
async fn every_class_of_bad_input_gets_the_error_shape() {
    let d = Daemon::start().await;
    let json = |body: &str| {
        d.request(Method::PUT, "/api/v1/apps/shop/envs/prod")
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            json("{\"targets\": ["),
            400,
            "request.bad_json",
        ),
        (
            "an unknown field",
            json("{\"targets\": [], \"colour\": 1}"),
            400,
            "inventory.invalid",
        ),
        (
            "a wrong type",
            d.request(Method::POST, "/api/v1/releases/x/rollback")
                .json(&serde_json::json!({"force": "yes"})),
            400,
            "request.bad_json",
        ),
        (
            "an oversized body",
            // Its own client, as a refused body is read out before the
            // answer.
            reqwest::Client::new()
                .post(d.url("/api/v1/releases"))
                .bearer_auth(&d.token)
                .header("content-type", "application/json")
                .body(vec![b' '; 2 * 1024 * 1024]),
            413,
            "request.too_large",
        ),
        (
            "a bad query",
            d.request(Method::GET, "/api/v1/audit?limit=many"),
            400,
            "request.bad_query",
        ),
        (
            "an unknown route",
            d.request(Method::GET, "/api/v1/nothing"),
            404,
            "not_found",
        ),
        (
            "a wrong method",
            d.request(Method::DELETE, "/api/v1/releases"),
            405,
            "method_not_allowed",
        ),
        (
            "a missing token",
            reqwest::Client::new().get(d.url("/api/v1/releases")),
            401,
            "auth.unauthorized",
        ),
        (
            "a path parameter that is not UTF-8",
            d.request(Method::GET, "/api/v1/releases/%00%ff"),
            400,
            "request.invalid",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = request.send().await.expect(what);
        assert_eq!(response.status().as_u16(), status, "{what}");
        let body: serde_json::Value = response.json().await.expect(what);
        let keys: Vec<&String> = body.as_object().expect(what).keys().collect();
        assert_eq!(keys, ["code", "message"], "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{what}");
    }
}
