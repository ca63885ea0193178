//! `canary-judge` against the metrics stores it reads: a real InfluxDB
//! started by the test, and a Datadog API that answers as Datadog documents
//! it. Both hold the same kind of series: a latency per version and host,
//! one point every 20 s, read by a daemon whose clock stands still ten
//! minutes after the batch was deployed.

mod datadog;
mod influxdb;

use serde_json::{Value, json};

use super::context;
use crate::support::{Daemon, fixture, verdict};

/// The daemon's clock while the judge runs.
pub const NOW_MS: u64 = 1_800_000_000_000;
/// When the batch under judgement was deployed: the window is ten minutes.
pub const DEPLOYED_MS: u64 = NOW_MS - 600_000;
/// The spacing of the points.
pub const STEP_MS: u64 = 20_000;

/// A SplitMix64 generator with a fixed seed, so that every run writes the
/// same noise.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A factor drawn evenly from `[1 - spread, 1 + spread]`.
    pub fn factor(&mut self, spread: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        1.0 + spread * (2.0 * unit - 1.0)
    }
}

/// One host's latency in milliseconds under one version.
pub struct Series {
    pub version: String,
    pub host: String,
    /// `(time in ms since the epoch, value)`.
    pub points: Vec<(u64, f64)>,
}

/// The baseline's typical latency.
const LATENCY_MS: f64 = 120.0;

/// `n` points of `host` under `version` from `first_ms` on, every
/// `STEP_MS`, around `LATENCY_MS * scale` with ±5% noise from `seed`,
/// rounded to hundredths so that they travel through any store unchanged.
pub fn series(version: &str, host: &str, first_ms: u64, n: usize, scale: f64, seed: u64) -> Series {
    let mut noise = Noise::new(seed);
    let points = (0..n as u64)
        .map(|i| {
            let v = LATENCY_MS * scale * noise.factor(0.05);
            (first_ms + i * STEP_MS, (v * 100.0).round() / 100.0)
        })
        .collect();
    Series {
        version: version.into(),
        host: host.into(),
        points,
    }
}

/// `n` points from the deploy on, inside the window.
pub fn since_deploy(version: &str, host: &str, n: usize, scale: f64, seed: u64) -> Series {
    series(version, host, DEPLOYED_MS + STEP_MS / 2, n, scale, seed)
}

/// The values of these series that fall inside the window.
pub fn in_window(series: &[&Series]) -> Vec<f64> {
    series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|(t, _)| (DEPLOYED_MS..=NOW_MS).contains(t))
        .map(|(_, v)| *v)
        .collect()
}

/// The median as the judge takes it (the mean of the middle two for an
/// even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A daemon on a clock standing at `NOW_MS`, with `canary-judge` uploaded
/// as `canary`.
pub async fn daemon() -> Daemon {
    let d = Daemon::start_with_config(&format!("manual_clock_ms = {NOW_MS}\n")).await;
    let (status, body) = d.upload("canary", "1.0.0", fixture("canary_judge")).await;
    assert_eq!(status, 201, "upload of canary_judge: {body}");
    d
}

/// Invokes the judge, asserts the status of its verdict and gives the
/// whole answer.
pub async fn judge(d: &Daemon, call: Value, status: &str) -> Value {
    let answer = d.invoke("canary", call).await;
    assert_eq!(verdict(&answer)["status"], status, "{answer}");
    answer
}

/// The batch under judgement: the one target `web-1`.
pub const CANARY_HOST: &str = "web-1";

/// A `verify` call about the first batch of the release of `version`
/// (replacing `1.0.0`), deployed at `DEPLOYED_MS` to `web-1`.
pub fn invocation(version: &str, parameters: Value) -> Value {
    let mut ctx = context(parameters);
    ctx["version"] = json!(version);
    ctx["batch"] = json!(0);
    ctx["deployed_at_ms"] = json!(DEPLOYED_MS);
    json!({"context": ctx, "targets": [{"id": CANARY_HOST, "address": "10.0.0.1:8080"}]})
}

/// The metric of a verdict by name, whole.
pub fn evidence<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no metric `{name}` in {verdict}"))
}

/// Asserts that a verdict's number is `expected`, up to the last bit that
/// the trips through a store's JSON and the verdict's may change.
#[track_caller]
pub fn assert_near(actual: &Value, expected: f64) {
    let a = actual.as_f64().unwrap_or(f64::NAN);
    assert!(
        (a - expected).abs() <= expected.abs() * 1e-12,
        "{actual} should be {expected}"
    );
}
