//! Where the samples come from: a metrics store's query API, asked for the
//! values of a (rendered) query over the window, every series' points
//! taken as samples.

use std::fmt;

use greenlight_plugin_sdk::query::{Dialect, Scope};
use greenlight_plugin_sdk::{Error, http};
use serde_json::Value;

/// A value read from a grant secret, with the secret's name: a refusal
/// names the secret, and neither `Debug` nor any message shows the value.
#[derive(Clone, PartialEq)]
pub struct Secret {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.name)
    }
}

/// A metrics store the judge can ask.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// `GET {url}/api/v1/query_range` (Prometheus, Thanos, Mimir,
    /// VictoriaMetrics).
    Prometheus { url: String },
    /// InfluxDB 1.x: `GET {url}/query?db=…&q=…&epoch=ms` (InfluxQL).
    InfluxDb {
        url: String,
        database: String,
        /// The user and password, sent as HTTP Basic authentication, when
        /// the database wants them.
        credentials: Option<(Secret, Secret)>,
    },
    /// Datadog's metrics query API: `GET {url}/api/v1/query`, the keys from
    /// grant secrets.
    Datadog {
        url: String,
        api_key: Secret,
        application_key: Secret,
    },
}

impl Provider {
    /// The query language of the provider's templates.
    pub fn dialect(&self) -> Dialect {
        match self {
            Provider::Prometheus { .. } => Dialect::PromQl,
            Provider::InfluxDb { .. } => Dialect::InfluxQl,
            Provider::Datadog { .. } => Dialect::Datadog,
        }
    }

    /// The samples of `query` (already rendered) over the scope's window.
    pub fn samples(
        &self,
        query: &str,
        scope: &Scope,
        step_s: u64,
        timeout_ms: u64,
    ) -> Result<Vec<f64>, Error> {
        let (start, end) = (scope.start_ms / 1000, scope.end_ms / 1000);
        match self {
            Provider::Prometheus { url } => {
                let url = format!(
                    "{}?query={}&start={start}&end={end}&step={step_s}",
                    http::join(url, "/api/v1/query_range"),
                    http::encode_query(query)
                );
                let response = http::Request::get(url).timeout_ms(timeout_ms).send()?;
                prometheus_samples(&answer(response, None)?).map_err(Error::new)
            }
            Provider::InfluxDb {
                url,
                database,
                credentials,
            } => {
                let url = format!(
                    "{}?db={}&epoch=ms&q={}",
                    http::join(url, "/query"),
                    http::encode_query(database),
                    http::encode_query(query)
                );
                let mut request = http::Request::get(url).timeout_ms(timeout_ms);
                let refusal = match credentials {
                    Some((user, password)) => {
                        request = request.basic_auth(&user.value, &password.value);
                        format!(
                            "InfluxDB refused the credentials of the grant's secrets `{}` and `{}`",
                            user.name, password.name
                        )
                    }
                    None => "InfluxDB asks for credentials, and no grant secrets are named \
                             for them (`username_secret`, `password_secret`)"
                        .to_string(),
                };
                influxdb_samples(&answer(request.send()?, Some(&refusal))?).map_err(Error::new)
            }
            Provider::Datadog {
                url,
                api_key,
                application_key,
            } => {
                let url = format!(
                    "{}?from={start}&to={end}&query={}",
                    http::join(url, "/api/v1/query"),
                    http::encode_query(query)
                );
                let response = http::Request::get(url)
                    .header("DD-API-KEY", api_key.value.as_str())
                    .header("DD-APPLICATION-KEY", application_key.value.as_str())
                    .timeout_ms(timeout_ms)
                    .send()?;
                let refusal = format!(
                    "Datadog refused the keys of the grant's secrets `{}` and `{}`",
                    api_key.name, application_key.name
                );
                datadog_samples(&answer(response, Some(&refusal))?).map_err(Error::new)
            }
        }
    }
}

/// The body of a successful answer as JSON. A refusal (401 or 403) is
/// `refusal` and the store's reason; any other failure is the status and
/// the reason, retryable as the SDK decides.
fn answer(response: http::Response, refusal: Option<&str>) -> Result<Value, Error> {
    if response.is_success() {
        return Ok(response.json()?);
    }
    let why = reason(&response.body);
    match (response.status, refusal) {
        (401 | 403, Some(refusal)) => Err(Error::new(format!(
            "{refusal} (HTTP {}: {why})",
            response.status
        ))),
        (status, _) => Err(http::HttpError::Status { status, body: why }.into()),
    }
}

/// What a store says went wrong: InfluxDB's and Prometheus' `error`,
/// Datadog's `errors`, else the start of the body.
pub fn reason(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let said = parsed.and_then(|v| match (&v["error"], &v["errors"]) {
        (Value::String(e), _) => Some(e.clone()),
        (_, Value::Array(es)) => Some(
            es.iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    });
    said.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
        .chars()
        .take(200)
        .collect()
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Prometheus writes values as strings, "NaN" and "+Inf" included.
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// The values of every series of a Prometheus range query's answer.
pub fn prometheus_samples(body: &Value) -> Result<Vec<f64>, String> {
    if body["status"] != "success" {
        let why = body["error"].as_str().unwrap_or("no `status: success`");
        return Err(format!("the query failed: {why}"));
    }
    let data = &body["data"];
    match data["resultType"].as_str() {
        Some("matrix") => Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["values"].as_array().into_iter().flatten())
            .filter_map(|pair| pair.get(1).and_then(number))
            .collect()),
        other => Err(format!(
            "a range query answered a {} instead of a matrix",
            other.unwrap_or("nothing")
        )),
    }
}

/// The values of every series of an InfluxDB 1.x answer: each row's last
/// column (the query's single field, after `time`).
pub fn influxdb_samples(body: &Value) -> Result<Vec<f64>, String> {
    if let Some(e) = body["error"].as_str() {
        return Err(format!("the query failed: {e}"));
    }
    let results = body["results"]
        .as_array()
        .ok_or("no `results` in the answer")?;
    let mut out = Vec::new();
    for result in results {
        if let Some(e) = result["error"].as_str() {
            return Err(format!("the query failed: {e}"));
        }
        for series in result["series"].as_array().into_iter().flatten() {
            for row in series["values"].as_array().into_iter().flatten() {
                if let Some(v) = row.as_array().and_then(|r| r.last()).and_then(number) {
                    out.push(v);
                }
            }
        }
    }
    Ok(out)
}

/// The points of every series of a Datadog metrics query answer.
pub fn datadog_samples(body: &Value) -> Result<Vec<f64>, String> {
    if body["status"] == "error" {
        let why = body["error"].as_str().unwrap_or("no reason given");
        return Err(format!("the query failed: {why}"));
    }
    Ok(body["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["pointlist"].as_array().into_iter().flatten())
        .filter_map(|point| point.get(1).and_then(number))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prometheus_matrices_give_every_point_of_every_series() {
        let body = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"instance": "a"}, "values": [[1700000000, "0.12"], [1700000015, "NaN"]]},
            {"metric": {"instance": "b"}, "values": [[1700000000, "0.10"]]}
        ]}});
        assert_eq!(prometheus_samples(&body), Ok(vec![0.12, 0.10]));
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert!(
            prometheus_samples(&vector)
                .unwrap_err()
                .contains("a vector")
        );
        let failed = json!({"status": "error", "error": "parse error at char 3"});
        assert!(
            prometheus_samples(&failed)
                .unwrap_err()
                .contains("parse error")
        );
    }

    #[test]
    fn influxdb_rows_give_their_value_column() {
        let body = json!({"results": [{"statement_id": 0, "series": [
            {"name": "http", "columns": ["time", "mean"], "values": [[1700000000000i64, 12.5], [1700000010000i64, null]]},
            {"name": "http", "tags": {"host": "b"}, "columns": ["time", "mean"], "values": [[1700000000000i64, 13.0]]}
        ]}]});
        assert_eq!(influxdb_samples(&body), Ok(vec![12.5, 13.0]));
        let empty = json!({"results": [{"statement_id": 0}]});
        assert_eq!(influxdb_samples(&empty), Ok(vec![]));
        let failed = json!({"results": [{"statement_id": 0, "error": "database not found: shop"}]});
        assert!(
            influxdb_samples(&failed)
                .unwrap_err()
                .contains("database not found")
        );
    }

    #[test]
    fn refusals_name_the_store_s_reason() {
        assert_eq!(
            reason(br#"{"error":"authorization failed"}"#),
            "authorization failed"
        );
        assert_eq!(
            reason(br#"{"errors": ["Forbidden", "API key invalid"]}"#),
            "Forbidden; API key invalid"
        );
        assert_eq!(reason(b"  bad gateway\n"), "bad gateway");
        assert_eq!(reason(&[b'x'; 300]).len(), 200);
    }

    fn response(status: u16, body: &str) -> http::Response {
        http::Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            received_ms: 0.0,
        }
    }

    #[test]
    fn a_refusal_names_the_credentials_and_other_failures_keep_their_status() {
        let refusal = Some("InfluxDB refused the credentials of the grant's secrets `u` and `p`");
        let e = answer(
            response(401, r#"{"error":"authorization failed"}"#),
            refusal,
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "InfluxDB refused the credentials of the grant's secrets `u` and `p` \
             (HTTP 401: authorization failed)"
        );
        assert!(!e.is_retryable());
        let e = answer(
            response(503, r#"{"errors": ["Service unavailable"]}"#),
            refusal,
        )
        .unwrap_err();
        assert_eq!(e.message(), "answered HTTP 503: Service unavailable");
        assert!(e.is_retryable());
        // Without credentials to name, a refusal is the status and reason.
        let e = answer(response(403, "forbidden"), None).unwrap_err();
        assert_eq!(e.message(), "answered HTTP 403: forbidden");
        assert_eq!(
            answer(response(200, r#"{"a":1}"#), refusal).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn a_secret_s_value_never_shows_in_debug() {
        let p = Provider::Datadog {
            url: "https://api.datadoghq.com".into(),
            api_key: Secret {
                name: "dd-api".into(),
                value: "0123abcd".into(),
            },
            application_key: Secret {
                name: "dd-app".into(),
                value: "4567ef01".into(),
            },
        };
        let shown = format!("{p:?}");
        assert!(shown.contains("Secret(dd-api)"), "{shown}");
        assert!(
            !shown.contains("0123abcd") && !shown.contains("4567ef01"),
            "{shown}"
        );
    }

    /// The answer's shape is the one Datadog documents for `GET
    /// /api/v1/query` ("Query timeseries points"); Datadog cannot be reached
    /// from here, so the sample answers are written from that page.
    #[test]
    fn datadog_series_give_their_points() {
        let body = json!({"status": "ok", "res_type": "time_series", "series": [
            {"metric": "trace.http.request.duration", "pointlist": [[1700000000000.0, 0.21], [1700000020000.0, null], [1700000040000.0, 0.25]],
             "scope": "service:shop,version:2.0.0", "length": 3}
        ], "from_date": 1700000000000i64, "to_date": 1700000060000i64});
        assert_eq!(datadog_samples(&body), Ok(vec![0.21, 0.25]));
        let failed = json!({"status": "error", "error": "Error parsing query"});
        assert!(
            datadog_samples(&failed)
                .unwrap_err()
                .contains("Error parsing query")
        );
    }
}
