//! Canary analysis against a real Prometheus scraping the fleet under load:
//! `canary-judge` compares the canary's latency with the stable fleet's,
//! by version, over the window since the canary was deployed, while
//! `metrics-threshold` watches the same latency against a fixed limit.

use std::time::Duration;

use greenlight::fleet::{Fleet, FleetOptions, Prometheus, Router, SLOW_PERCENT};
use serde_json::{Value, json};

use super::{DEPLOYER, daemon, deploy_flow, load};
use crate::support::browser::Browser;
use crate::support::releases::{
    apply_flow, journal_details, start_release, wait_for_within, wait_status,
};
use crate::support::{Daemon, cli, fixture};

/// Each request works this long (a slow version's 30% more), long enough
/// for a timer's jitter not to hide the difference.
const WORK_MS: u64 = 10;

/// The mean latency of each instance serving a version, over the last
/// three seconds, as a PromQL template.
fn latency(version: &str) -> String {
    format!(
        "rate(fleet_request_duration_seconds_sum{{version=\"${{{version}}}\"}}[3s]) \
         / rate(fleet_request_duration_seconds_count{{version=\"${{{version}}}\"}}[3s])"
    )
}

/// A canary of one instance baked for 15 s, then checked once by the judge
/// (canary against the version it replaces) and by a fixed threshold of
/// 50 ms on the canary's latency. In the flow `shadowed` the judge runs in
/// the shadow: asked and shown, but not deciding.
fn judged(name: &str, prometheus: &str) -> String {
    let judge = json!({
        "plugin": "judge",
        "shadow": name == "shadowed",
        "params": {
            "url": prometheus,
            "metrics": "latency",
            "latency.canary": latency("version"),
            "latency.baseline": latency("previous_version"),
            "latency.allowed": "10%",
            "step": "1s",
        }
    });
    let threshold = json!({
        "plugin": "metrics",
        "params": {
            "prometheus_url": prometheus,
            "metrics": "latency",
            "latency.query": format!("max({})", latency("version")),
            "latency.hard": "> 0.05",
        }
    });
    format!(
        r#"name = "{name}"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
count = 1
bake = "15s"
deployer = {DEPLOYER}
checks = [{judge}, {threshold}]
"#,
        judge = toml_inline(&judge),
        threshold = toml_inline(&threshold),
    )
}

/// A JSON object written as a TOML inline table (strings and objects).
fn toml_inline(v: &Value) -> String {
    match v {
        Value::Bool(false) => "false".into(),
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), toml_inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// Four instances on 1.0.0 (put there by a first release, so the judge has
/// a previous version), behind the built-in router sending all traffic to
/// `live`, scraped by Prometheus every second, under steady load.
struct Bed {
    fleet: Fleet,
    _prometheus: Prometheus,
    d: Daemon,
    load: greenlight::fleet::Load,
}

impl Bed {
    async fn start(groups: &[&str], live: &str) -> Bed {
        let fleet = Fleet::start(&FleetOptions {
            instances: 4,
            version: "1.0.0".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            startup_ms: 30,
            work_ms: WORK_MS,
        })
        .await
        .unwrap();
        let router = Router::start(&fleet, live).await.unwrap();
        let prometheus = Prometheus::start(&binary(), &fleet, Duration::from_secs(1))
            .await
            .unwrap();
        let rolling = deploy_flow("rolling", "rolling", "batch = \"50%\"");
        let d = daemon(&fleet, None, &rolling, "").await;
        let (status, body) = d.upload("judge", "1.0.0", fixture("canary_judge")).await;
        assert_eq!(status, 201, "{body}");
        let origins = json!([prometheus.url()]);
        d.grant("judge", json!({"allowed_hosts": origins})).await;
        let mut metrics_hosts = fleet.origins();
        metrics_hosts.push(prometheus.url());
        d.grant("metrics", json!({"allowed_hosts": metrics_hosts}))
            .await;
        for flow in ["judged", "shadowed"] {
            apply_flow(&d, &judged(flow, &prometheus.url())).await;
        }
        let first = start_release(&d, "shop", "prod", "1.0.0", "rolling").await;
        wait_status(&d, &first, "succeeded").await;
        let load = load(router.addr);
        // The baseline has been scraped serving traffic before the canary
        // is deployed.
        prometheus
            .until(
                "sum(fleet_request_duration_seconds_count{version=\"1.0.0\"})",
                |r| r[0]["value"][1].as_str().is_some_and(|n| n != "0"),
            )
            .await
            .unwrap();
        Bed {
            fleet,
            _prometheus: prometheus,
            d,
            load,
        }
    }

    /// Releases `version` with the judged canary; the release's final
    /// state, and the verdicts of the judge and the threshold.
    async fn release(&self, version: &str, ends: &str) -> (Value, Value, Value) {
        self.release_with("judged", version, ends).await
    }

    async fn release_with(&self, flow: &str, version: &str, ends: &str) -> (Value, Value, Value) {
        let id = start_release(&self.d, "shop", "prod", version, flow).await;
        // The bake is 15 s of real time: the window the judge looks at.
        let release = wait_for_within(&self.d, &id, ends, Duration::from_secs(90), |r| {
            r["status"] == ends
        })
        .await;
        let verdicts: Vec<Value> = journal_details(&self.d, &id)
            .await
            .into_iter()
            .filter(|(kind, _)| kind == "verified")
            .flat_map(|(_, detail)| detail["verdicts"].as_array().cloned().unwrap_or_default())
            .collect();
        // The last round, at the end of the bake, decides.
        let of = |plugin: &str| {
            verdicts
                .iter()
                .rev()
                .find(|v| v["check"] == format!("{plugin}@1.0.0"))
                .cloned()
                .unwrap_or_else(|| panic!("no verdict of {plugin} in {verdicts:#?}"))
        };
        (release, of("judge"), of("metrics"))
    }
}

/// Prometheus from the `PATH` or where Debian puts it.
fn binary() -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.exists())
        .expect(
            "prometheus is not installed: `apt-get install prometheus` (`./dev setup test` does)",
        )
}

/// The verdict's evidence for `metric`.
fn evidence<'a>(verdict: &'a Value, metric: &str) -> &'a Value {
    verdict["verdict"]["evidence"]
        .as_array()
        .and_then(|e| e.iter().find(|m| m["name"] == metric))
        .unwrap_or_else(|| panic!("no evidence of {metric} in {verdict:#}"))
}

#[tokio::test]
async fn a_canary_slower_than_its_baseline_fails_the_judge_while_a_fixed_threshold_passes_it() {
    let bed = Bed::start(&[], "").await;
    let (release, judge, threshold) = bed.release("2.0.0-slow", "rolled-back").await;
    let _ = bed.load.stop().await;

    assert_eq!(judge["verdict"]["status"], "fail", "{judge:#}");
    let latency = evidence(&judge, "latency");
    assert_eq!(latency["status"], "fail", "{latency:#}");
    let (canary, baseline) = (
        latency["value"].as_f64().unwrap(),
        latency["baseline"].as_f64().unwrap(),
    );
    let worse = canary / baseline - 1.0;
    let slow = f64::from(SLOW_PERCENT) / 100.0;
    assert!(
        (slow * 0.6..slow * 1.2).contains(&worse),
        "the canary is {:.1}% slower: {latency:#}",
        worse * 100.0
    );
    assert!(latency["samples"].as_u64().unwrap() >= 10, "{latency:#}");
    assert!(
        latency["baseline_samples"].as_u64().unwrap() >= 10,
        "{latency:#}"
    );
    assert!(
        latency["detail"]
            .as_str()
            .unwrap()
            .ends_with("higher than allowed (+10%)"),
        "{latency:#}"
    );
    // The same latency is well inside a fixed limit of 50 ms.
    assert_eq!(threshold["verdict"]["status"], "pass", "{threshold:#}");
    assert!(
        release["outcome"]
            .as_str()
            .unwrap_or_default()
            .starts_with("judge@1.0.0 failed at stage canary"),
        "{release:#}"
    );
    let versions: Vec<String> = bed
        .fleet
        .snapshots()
        .into_iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(versions, ["1.0.0"; 4], "the canary was rolled back");
}

#[tokio::test]
async fn a_canary_as_fast_as_its_baseline_passes_the_judge() {
    let bed = Bed::start(&[], "").await;
    let (_, judge, threshold) = bed.release("2.0.0", "succeeded").await;
    let _ = bed.load.stop().await;

    assert_eq!(judge["verdict"]["status"], "pass", "{judge:#}");
    let latency = evidence(&judge, "latency");
    assert_eq!(latency["status"], "pass", "{latency:#}");
    assert!(latency["samples"].as_u64().unwrap() >= 10, "{latency:#}");
    assert_eq!(threshold["verdict"]["status"], "pass", "{threshold:#}");
    assert_eq!(bed.fleet.snapshots()[0].version, "2.0.0");
}

/// The canary is in a group the router sends no traffic to: it answers
/// nothing, so there is nothing to compare, and the release waits for a
/// human instead of passing on no evidence.
#[tokio::test]
async fn a_canary_without_traffic_gives_the_judge_no_data() {
    let bed = Bed::start(&["dark", "web", "web", "web"], "web").await;
    let (release, judge, _) = bed.release("2.0.0", "paused").await;
    let _ = bed.load.stop().await;

    assert_eq!(judge["verdict"]["status"], "no-data", "{judge:#}");
    // The stable fleet had traffic enough; the canary had none.
    let summary = judge["verdict"]["summary"].as_str().unwrap();
    let baseline: u64 = summary
        .strip_prefix("no metric had 10 samples on both sides (latency 0 vs ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{judge:#}"));
    assert!(baseline >= 10, "{judge:#}");
    assert!(
        release["pause"]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("verified by nothing at stage canary"),
        "{release:#}"
    );
}

/// Trying the judge out before trusting it: in the shadow it fails the slow
/// canary, and says so in the journal and the release's verdicts, but the
/// threshold alone decides and the release goes on.
#[tokio::test]
async fn a_judge_in_the_shadow_fails_the_slow_canary_without_stopping_the_release() {
    let bed = Bed::start(&[], "").await;
    let (release, judge, threshold) = bed
        .release_with("shadowed", "2.0.0-slow", "succeeded")
        .await;
    let _ = bed.load.stop().await;

    assert_eq!(judge["verdict"]["status"], "fail", "{judge:#}");
    assert_eq!(judge["shadow"], true, "{judge:#}");
    assert_eq!(evidence(&judge, "latency")["status"], "fail", "{judge:#}");
    assert_eq!(threshold["verdict"]["status"], "pass", "{threshold:#}");
    assert!(threshold.get("shadow").is_none(), "{threshold:#}");
    // The release's verdicts show the shadow's; its decisions stood on the
    // threshold alone.
    let shown: Vec<&Value> = release["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "judge@1.0.0" && v["status"] == "fail")
        .collect();
    assert!(
        !shown.is_empty() && shown.iter().all(|v| v["shadow"] == true),
        "{release:#}"
    );
    for decision in release["decisions"].as_array().unwrap() {
        let inputs: Vec<&str> = decision["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["check"].as_str().unwrap())
            .collect();
        assert!(!inputs.contains(&"judge@1.0.0"), "{decision:#}");
    }
    assert_eq!(bed.fleet.snapshots()[0].version, "2.0.0-slow");

    // `release show` and the release page say whose verdicts never decide.
    let id = release["id"].as_str().unwrap();
    let (ok, shown, err) = cli(&bed.d, &["release", "show", id]);
    assert!(ok, "{err}");
    assert!(
        shown.contains("  judge@1.0.0 (in the shadow: never decides) at canary batch 1"),
        "the evidence: {shown}"
    );
    let manager = bed.d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&bed.d.base, &manager).await;
    browser
        .goto(&format!("{}/#/releases/{id}", bed.d.base))
        .await;
    browser
        .wait("#check-charts details[data-check='judge@1.0.0'] summary .badge.shadow")
        .await;
    browser.wait("#verdicts tbody tr td .badge.shadow").await;
}
