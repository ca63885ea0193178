//! `canary-judge` against a real InfluxDB 1.x: Debian's `influxd`, started
//! by the test with authentication on, holding points written with line
//! protocol at explicit times, read by the plugin through the daemon with a
//! read-only user whose credentials are grant secrets.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    CANARY_HOST, DEPLOYED_MS, STEP_MS, Series, assert_near, daemon, evidence, in_window,
    invocation, judge,
};
use super::{median, series, since_deploy};
use crate::bundled::origin;
use crate::support::{Daemon, verdict};

/// The administrator the test creates first; only the test uses it.
const ADMIN: (&str, &str) = ("admin", "admin-pass-5K");
/// How long `influxd` may take to answer `/ping`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A real InfluxDB in a temporary directory (meta, data and WAL), its HTTP
/// API and its RPC service on free loopback ports, reporting off and
/// authentication on; the process is killed when this is dropped.
pub struct InfluxDb {
    child: Child,
    pub addr: SocketAddr,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Two ports nobody listens on now. Another process may take one before
/// `influxd` binds it, which `InfluxDb::start` survives by trying again.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn config(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = true
  log-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"#
    )
}

impl InfluxDb {
    /// Starts `influxd` and creates the administrator.
    pub async fn start() -> InfluxDb {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let (http_port, rpc_port) = free_ports();
            let config_path = dir.path().join("influxdb.conf");
            std::fs::write(&config_path, config(dir.path(), http_port, rpc_port)).unwrap();
            let log = std::fs::File::create(dir.path().join("influxd.log")).unwrap();
            let child = Command::new("influxd")
                .arg("-config")
                .arg(&config_path)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting influxd (Debian's `influxdb` package; `./dev` installs it)");
            let mut influx = InfluxDb {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
                http: reqwest::Client::new(),
                _dir: dir,
            };
            if influx.answers_ping().await {
                influx.create_admin().await;
                return influx;
            }
            last_log =
                std::fs::read_to_string(influx._dir.path().join("influxd.log")).unwrap_or_default();
        }
        panic!("influxd exited at start five times; its last log:\n{last_log}");
    }

    /// Polls `/ping` until it answers 204 (true) or the process exits
    /// (false); panics after `START_TIMEOUT`.
    async fn answers_ping(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("http://{}/ping", self.addr);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                eprintln!("influxd exited at start with {status}");
                return false;
            }
            if let Ok(r) = self.http.get(&url).send().await
                && r.status() == 204
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "influxd did not answer /ping within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first user: with authentication on and no user yet, InfluxDB
    /// takes only this statement, without credentials.
    async fn create_admin(&self) {
        let q = format!(
            "CREATE USER \"{}\" WITH PASSWORD '{}' WITH ALL PRIVILEGES",
            ADMIN.0, ADMIN.1
        );
        self.statement(&q, None).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Runs a statement as the administrator.
    pub async fn query(&self, q: &str) -> Value {
        self.statement(q, Some(ADMIN)).await
    }

    /// Runs a statement with `POST /query`, which must succeed.
    async fn statement(&self, q: &str, user: Option<(&str, &str)>) -> Value {
        let mut request = self.http.post(self.url("/query")).form(&[("q", q)]);
        if let Some((name, password)) = user {
            request = request.basic_auth(name, Some(password));
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(
            status == 200 && body["results"][0]["error"].is_null(),
            "{q}: {status} {body}"
        );
        body
    }

    /// Writes line protocol, times in milliseconds, as the administrator.
    pub async fn write(&self, database: &str, lines: &str) {
        let r = self
            .http
            .post(self.url("/write"))
            .query(&[("db", database), ("precision", "ms")])
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .body(lines.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 204, "{}", r.text().await.unwrap());
    }
}

impl Drop for InfluxDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tag value in line protocol: commas, equals signs and spaces escaped.
fn tag(v: &str) -> String {
    v.replace(',', "\\,")
        .replace('=', "\\=")
        .replace(' ', "\\ ")
}

/// The series as points of the measurement `latency`.
fn lines(series: &[&Series]) -> String {
    series
        .iter()
        .flat_map(|s| {
            s.points.iter().map(|(t, v)| {
                format!(
                    "latency,host={},version={} value={v} {t}\n",
                    tag(&s.host),
                    tag(&s.version)
                )
            })
        })
        .collect()
}

const DATABASE: &str = "shop";
/// The read-only user the plugin queries as.
const READER: (&str, &str) = ("judge", "judge-pass-7Q");

/// The canary's points: this version on this batch's hosts, since the
/// batch was deployed.
const CANARY: &str = r#"SELECT "value" FROM "latency" WHERE "version" = '${version}' AND "host" =~ /^(?:${targets.ids})$/ AND time >= ${start_ms}ms AND time <= ${end_ms}ms"#;
/// The baseline's: the version replaced, wherever it still runs.
const BASELINE: &str = r#"SELECT "value" FROM "latency" WHERE "version" = '${previous_version}' AND time >= ${start_ms}ms AND time <= ${end_ms}ms"#;

fn params(influx: &InfluxDb) -> Value {
    json!({
        "provider": "influxdb",
        "url": origin(influx.addr),
        "database": DATABASE,
        "username_secret": "influx-user",
        "password_secret": "influx-password",
        "metrics": "latency",
        "latency.canary": CANARY,
        "latency.baseline": BASELINE,
        "latency.allowed": "10%",
    })
}

/// The baseline, `1.0.0` on two hosts outside the batch.
fn baseline() -> [Series; 2] {
    [
        since_deploy("1.0.0", "web-2", 30, 1.0, 1),
        since_deploy("1.0.0", "web-3", 30, 1.0, 2),
    ]
}

/// An InfluxDB holding `series` with a read-only user for the judge, and a
/// daemon that grants the judge its origin and that user's credentials
/// (`password`, which may be wrong).
async fn store_and_daemon(series: &[&Series], password: &str) -> (InfluxDb, Daemon) {
    let influx = InfluxDb::start().await;
    influx
        .query(&format!("CREATE DATABASE \"{DATABASE}\""))
        .await;
    influx
        .query(&format!(
            "CREATE USER \"{}\" WITH PASSWORD '{}'",
            READER.0, READER.1
        ))
        .await;
    influx
        .query(&format!("GRANT READ ON \"{DATABASE}\" TO \"{}\"", READER.0))
        .await;
    influx.write(DATABASE, &lines(series)).await;
    let d = daemon().await;
    d.grant(
        "canary",
        json!({
            "allowed_hosts": [origin(influx.addr)],
            "secrets": {"influx-user": READER.0, "influx-password": password},
        }),
    )
    .await;
    (influx, d)
}

#[tokio::test]
async fn a_slower_canary_fails_with_each_metric_s_evidence() {
    let [b1, b2] = baseline();
    let canary = since_deploy("2.0.0", CANARY_HOST, 30, 1.3, 3);
    // The same version on a host of another batch, as fast as the baseline:
    // the canary's query leaves it out by the batch's targets.
    let elsewhere = since_deploy("2.0.0", "web-4", 30, 1.0, 4);
    let (influx, d) = store_and_daemon(&[&b1, &b2, &canary, &elsewhere], READER.1).await;
    let answer = judge(&d, invocation("2.0.0", params(&influx)), "fail").await;
    let v = verdict(&answer);
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.starts_with("score 0 < 75: latency +"), "{summary}");

    let m = evidence(v, "latency");
    let (c, b) = (in_window(&[&canary]), in_window(&[&b1, &b2]));
    assert_near(&m["value"], median(&c));
    assert_near(&m["baseline"], median(&b));
    assert_eq!(
        (&m["samples"], &m["baseline_samples"]),
        (&json!(30), &json!(60))
    );
    assert_eq!(m["status"], "fail");
    assert_near(&m["allowed_high"], median(&b) * 1.1);
    let detail = m["detail"].as_str().unwrap();
    assert!(
        detail.ends_with("30 vs 60 samples: higher than allowed (+10%)"),
        "{detail}"
    );
    // The shift is about +30%, its interval above +10%.
    let shift: f64 = detail[1..detail.find('%').unwrap()].parse().unwrap();
    assert!((25.0..35.0).contains(&shift), "{detail}");
    assert_eq!(evidence(v, "score")["value"], 0.0);
}

#[tokio::test]
async fn a_canary_like_its_baseline_passes() {
    let [b1, b2] = baseline();
    let canary = since_deploy("2.0.0", CANARY_HOST, 30, 1.0, 5);
    let (influx, d) = store_and_daemon(&[&b1, &b2, &canary], READER.1).await;
    let answer = judge(&d, invocation("2.0.0", params(&influx)), "pass").await;
    let v = verdict(&answer);
    assert_eq!(
        v["summary"],
        "score 100 ≥ 95: 1 metrics compared with the baseline"
    );
    let m = evidence(v, "latency");
    assert_eq!(m["status"], "pass", "{m}");
    assert_near(&m["value"], median(&in_window(&[&canary])));
    assert_eq!(
        (&m["samples"], &m["baseline_samples"]),
        (&json!(30), &json!(60))
    );
}

/// Only the window since the deploy counts: an earlier attempt's points of
/// the same version, before it, do not make up for a canary that has
/// hardly run.
#[tokio::test]
async fn a_canary_with_too_few_points_since_its_deploy_has_no_data() {
    let [b1, b2] = baseline();
    let recent = since_deploy("2.0.0", CANARY_HOST, 5, 1.0, 6);
    let earlier = series("2.0.0", CANARY_HOST, DEPLOYED_MS - 25 * STEP_MS, 20, 3.0, 7);
    let (influx, d) = store_and_daemon(&[&b1, &b2, &recent, &earlier], READER.1).await;
    let answer = judge(&d, invocation("2.0.0", params(&influx)), "no-data").await;
    let v = verdict(&answer);
    assert_eq!(
        v["summary"],
        "no metric had 10 samples on both sides (latency 5 vs 60)"
    );
    assert_eq!(evidence(v, "latency")["status"], "no-data");
}

/// A version that tries to close the InfluxQL string early, with a
/// backslash before its quote, is compared as the tag it is.
#[tokio::test]
async fn a_hostile_version_stays_inside_its_string() {
    let hostile = r#"2.0.0\' OR "version" = '1.0.0"#;
    let [b1, b2] = baseline();
    let canary = since_deploy(hostile, CANARY_HOST, 30, 1.3, 8);
    let (influx, d) = store_and_daemon(&[&b1, &b2, &canary], READER.1).await;
    let answer = judge(&d, invocation(hostile, params(&influx)), "fail").await;
    let v = verdict(&answer);
    let m = evidence(v, "latency");
    assert_near(&m["value"], median(&in_window(&[&canary])));
    assert_eq!(
        (&m["samples"], &m["baseline_samples"]),
        (&json!(30), &json!(60))
    );

    // A newline, which InfluxQL refuses raw inside a string, is escaped
    // too: the query runs, and no point has that version.
    let answer = judge(
        &d,
        invocation("2.0.0\n' OR 'a'='a", params(&influx)),
        "no-data",
    )
    .await;
    let v = verdict(&answer);
    assert_eq!(
        v["summary"],
        "no metric had 10 samples on both sides (latency 0 vs 60)"
    );
}

#[tokio::test]
async fn refused_credentials_are_an_error_that_names_the_secrets() {
    let [b1, b2] = baseline();
    let wrong = "not-the-password-3Z";
    let (influx, d) = store_and_daemon(&[&b1, &b2], wrong).await;
    let answer = judge(&d, invocation("2.0.0", params(&influx)), "error").await;
    let v = verdict(&answer);
    assert_eq!(
        v["summary"],
        "latency.canary: InfluxDB refused the credentials of the grant's secrets \
         `influx-user` and `influx-password` (HTTP 401: authorization failed)"
    );
    assert!(!answer.to_string().contains(wrong), "{answer}");
}
