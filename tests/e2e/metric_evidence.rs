//! A check's evidence, metric by metric, as a release manager sees it: a
//! check of interface 0.2.0 answers the verdicts a test server hands it,
//! each metric with a baseline, sample sizes, the range allowed and its own
//! status, over three rounds of a canary's bake. The release page draws
//! each metric round by round and shows the judge's table beside Approve;
//! `greenlight release show` prints the table with each metric's trend.

use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release_daemon, standard_flow_checked_by,
    start_release, wait_for, wait_status,
};
use crate::support::{Daemon, cli};

const MINUTE: u64 = 60_000;

/// What the judge says of the error rate in the third round.
const LEFT_ITS_RANGE: &str =
    "+36% (95% CI +20%..+51%), p=2.7e-11, 60 vs 58 samples: higher than allowed (+20%)";

/// The error rate's row in the judge's table, in the web UI and on the
/// command line alike: metric, canary, baseline, samples, allowed, status.
const ERROR_RATE_ROW: [&str; 6] = [
    "error_rate",
    "0.017",
    "0.0125",
    "60 vs 58",
    "0 .. 0.015",
    "fail",
];

/// The judge's answer in round `i` (from 0): latency within its open-ended
/// range throughout (too few samples to say in the first round), the error
/// rate drifting up until it leaves its range in the third, and two plain
/// values.
fn round(i: usize) -> Value {
    let latency = [120.5, 123.0, 131.2][i];
    let latency_base = [118.0, 119.5, 120.1][i];
    let errors = [0.012, 0.013, 0.017][i];
    let errors_base = [0.011, 0.012, 0.0125][i];
    let (canary_n, baseline_n) = [(8, 9), (30, 30), (60, 58)][i];
    let latency_status = ["inconclusive", "pass", "pass"][i];
    let errors_status = ["pass", "pass", "fail"][i];
    let requests = [120.0, 480.0, 910.0][i];
    json!({
        "status": "pass",
        "summary": format!("score {}", [100, 100, 50][i]),
        "metrics": [
            {
                "name": "latency_ms", "value": latency, "baseline": latency_base,
                "samples": canary_n, "baseline_samples": baseline_n,
                "allowed_high": latency_base * 1.1,
                "status": latency_status,
                "detail": format!("{canary_n} vs {baseline_n} samples"),
            },
            {
                "name": "error_rate", "value": errors, "baseline": errors_base,
                "samples": canary_n, "baseline_samples": baseline_n,
                "allowed_low": 0.0, "allowed_high": 0.015,
                "status": errors_status,
                "detail": if i == 2 {
                    LEFT_ITS_RANGE.to_string()
                } else {
                    format!("{canary_n} vs {baseline_n} samples: within range")
                },
            },
            // Plain values beside: one that moves, one that never does.
            { "name": "requests", "value": requests },
            { "name": "targets", "value": 1.0 },
        ],
    })
}

/// A release of `shop/prod` at its approval gate after the canary's three
/// rounds (baked ten minutes, checked every five), each verdict with its
/// evidence.
async fn judged_at_the_gate(recorder: &Recorder) -> (Daemon, String) {
    let d = release_daemon(recorder).await;
    d.upload_ok("judge", "fixture_judged_check").await;
    d.grant("judge", json!({"allowed_hosts": [recorder.origin()]}))
        .await;
    apply_flow(&d, &standard_flow_checked_by(recorder, "judge")).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let answers: Vec<String> = (0..3).map(|i| round(i).to_string()).collect();
    let answers: Vec<&str> = answers.iter().map(String::as_str).collect();
    recorder.verdicts("canary", &answers);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    for seen in 1..=2 {
        wait_for(&d, &id, "a round of the canary's checks", |r| {
            r["verdicts"].as_array().map_or(0, Vec::len) == seen && !r["next_check_ms"].is_null()
        })
        .await;
        advance(&d, 5 * MINUTE).await;
    }
    let gate = wait_status(&d, &id, "waiting-approval").await;
    let verdicts = gate["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 3, "three rounds: {gate:#}");
    // The evidence went the whole way: plugin, engine, journal, API.
    let last = &verdicts[2]["evidence"][1];
    assert_eq!(
        (&last["name"], &last["samples"], &last["baseline_samples"]),
        (&json!("error_rate"), &json!(60), &json!(58)),
        "{gate:#}"
    );
    assert_eq!(last["status"], "fail");
    (d, id)
}

/// What the browser shows of one metric's chart, read in one step.
async fn chart(browser: &Browser, metric: &str) -> Value {
    browser
        .eval(&format!(
            r##"
            const f = document.querySelector("#check-charts figure[data-chart='{metric}'][data-stage='canary']");
            const all = (s) => [...f.querySelectorAll(s)];
            const bands = all(".allowed-band");
            const top = (e) => e.getBoundingClientRect().top;
            const points = all("circle.canary-point");
            return {{
                points: points.map((c) => [Number(c.dataset.value), c.dataset.status, getComputedStyle(c).fill]),
                point_tops: points.map((c) => top(c) + c.getBoundingClientRect().height / 2),
                baselines: all("circle.baseline-point").map((c) => Number(c.dataset.value)),
                baseline_line: all("path.baseline-line").length,
                bands: bands.map((b) => b.dataset.rounds),
                band_top: bands.length ? top(bands[0]) : null,
                band_bottom: bands.length ? bands[0].getBoundingClientRect().bottom : null,
                titles: points.map((c) => c.querySelector("title").textContent),
                foot: f.querySelector(".metric-foot").innerText,
            }};
            "##
        ))
        .await
}

#[tokio::test]
async fn the_release_page_draws_each_metric_round_by_round_and_the_gate_shows_the_judges_table() {
    let recorder = Recorder::start().await;
    let (d, id) = judged_at_the_gate(&recorder).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser
        .wait("#check-charts figure[data-chart='error_rate'] circle.canary-point[data-round='3']")
        .await;

    let errors = chart(&browser, "error_rate").await;
    let statuses: Vec<&str> = errors["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "pass", "fail"], "{errors:#}");
    let values: Vec<f64> = errors["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.012, 0.013, 0.017]);
    // A failed point is drawn in another colour than a passing one.
    assert_ne!(errors["points"][2][2], errors["points"][0][2], "{errors:#}");
    assert_eq!(errors["baselines"], json!([0.011, 0.012, 0.0125]));
    assert_eq!(errors["baseline_line"], 1);
    assert_eq!(errors["bands"], json!(["1-3"]), "one band over the rounds");
    // The third round's 0.017 is above the band (0..0.015) on screen, the
    // first's 0.012 inside it.
    let tops = errors["point_tops"].as_array().unwrap();
    let band_top = errors["band_top"].as_f64().unwrap();
    let band_bottom = errors["band_bottom"].as_f64().unwrap();
    assert!(tops[2].as_f64().unwrap() < band_top, "{errors:#}");
    let first = tops[0].as_f64().unwrap();
    assert!(band_top < first && first < band_bottom, "{errors:#}");
    let foot = errors["foot"].as_str().unwrap();
    assert!(foot.contains("n = 60 vs 58"), "{foot}");
    assert!(foot.contains("higher than allowed (+20%)"), "{foot}");
    let first_title = errors["titles"][0].as_str().unwrap();
    assert!(first_title.contains("n = 8 vs 9"), "{first_title}");
    assert!(first_title.contains("baseline 0.011"), "{first_title}");

    let latency = chart(&browser, "latency_ms").await;
    assert_eq!(latency["points"].as_array().unwrap().len(), 3);
    assert_eq!(latency["points"][0][1], "inconclusive");
    assert_eq!(latency["baselines"].as_array().unwrap().len(), 3);
    assert_eq!(latency["bands"], json!(["1-3"]), "{latency:#}");
    let first_title = latency["titles"][0].as_str().unwrap();
    assert!(first_title.contains("allowed ≤ 129.8"), "{first_title}");

    // A plain value is drawn once it moves, without band or baseline; one
    // that never moves is left to the verdicts table.
    let requests = chart(&browser, "requests").await;
    assert_eq!(requests["points"].as_array().unwrap().len(), 3);
    assert_eq!(requests["points"][2][1], "none");
    assert_eq!(
        (&requests["bands"], &requests["baseline_line"]),
        (&json!([]), &json!(0))
    );
    assert!(
        !browser
            .has("#check-charts figure[data-chart='targets']")
            .await
    );

    // Beside Approve: the judge's table of the latest round.
    assert!(browser.has("#gate #approve").await);
    let row = |metric: &str| {
        format!("#gate #judged tr[data-check='judge@1.0.0'][data-metric='{metric}']")
    };
    let cells = browser
        .eval(&format!(
            "return [...document.querySelector({}).cells].map((c) => c.innerText)",
            json!(row("error_rate"))
        ))
        .await;
    let mut want = vec!["judge@1.0.0"];
    want.extend(ERROR_RATE_ROW);
    want.push(LEFT_ITS_RANGE);
    assert_eq!(cells, json!(want));
    let latency_row = browser.text(&row("latency_ms")).await;
    assert!(
        latency_row.contains("131.2") && latency_row.contains("≤ 132.1"),
        "{latency_row}"
    );
    // The condensed row of the judge's latest round names the sample
    // sizes its metrics stand on, canary against baseline.
    let samples = browser
        .text("#gate #latest tr[data-check='judge@1.0.0'] td.samples")
        .await;
    assert!(samples.contains("error_rate: 60 vs 58"), "{samples}");
    browser.screenshot("judged-gate").await;
    browser
        .eval("document.querySelector('#check-charts').scrollIntoView(); return null")
        .await;
    browser.screenshot("judged-charts").await;
    browser.close().await;
}

#[tokio::test]
async fn release_show_prints_the_judges_table_with_each_metrics_trend() {
    let recorder = Recorder::start().await;
    let (d, id) = judged_at_the_gate(&recorder).await;
    let (ok, shown, err) = cli(&d, &["release", "show", &id]);
    assert!(ok, "{err}");
    let section = shown
        .split("\nEvidence (latest round of each check)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no evidence section: {shown}"));
    let lines: Vec<&str> = section.lines().take(4).collect();
    assert_eq!(
        lines[0],
        "  judge@1.0.0 at canary batch 1, round 3: pass: score 50"
    );
    let columns = |line: &str| -> Vec<String> {
        line.trim()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        columns(lines[1]),
        [
            "METRIC", "CANARY", "BASELINE", "SAMPLES", "ALLOWED", "STATUS", "TREND", "DETAIL"
        ]
    );
    assert_eq!(
        columns(lines[2]),
        [
            "latency_ms",
            "131.2",
            "120.1",
            "60 vs 58",
            "<= 132.1",
            "pass",
            "120.5 → 123 → 131.2",
            "60 vs 58 samples"
        ]
    );
    let mut want = ERROR_RATE_ROW.to_vec();
    want.extend(["0.012 → 0.013 → 0.017", LEFT_ITS_RANGE]);
    assert_eq!(columns(lines[3]), want);
    // The columns line up under their headings.
    let at = |line: &str, text: &str| line.find(text).unwrap();
    assert_eq!(at(lines[1], "TREND"), at(lines[3], "0.012 →"));
}
