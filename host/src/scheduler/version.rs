//! Resolving the version a fire ships from an HTTP endpoint, such as a CI
//! system's "latest green build".

/// The longest version an endpoint may answer.
const MAX_VERSION_LEN: usize = 128;

/// GETs `url` and reads the version from the body: a JSON object's
/// `version` field, or else the body's text. Every failure says what went
/// wrong with which URL.
pub async fn resolve(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let fail = |problem: String| format!("the version cannot be resolved from {url}: {problem}");
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(without_url(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("it answered {status}")));
    }
    let body = response.text().await.map_err(|e| fail(without_url(&e)))?;
    let version = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(fields)) => fields
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| fail("its JSON answer has no string field `version`".to_string()))?,
        _ => body.trim().to_string(),
    };
    if version.is_empty() {
        return Err(fail("it answered no version".to_string()));
    }
    if version.len() > MAX_VERSION_LEN
        || version.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(fail(format!(
            "its answer is not a version (one word of at most {MAX_VERSION_LEN} characters)"
        )));
    }
    Ok(version)
}

/// A request error's text without the URL, which the message already names.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "it did not answer in time"
    } else if e.is_connect() {
        "it cannot be reached"
    } else {
        "the request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind} ({source})"),
        None => kind.to_string(),
    }
}
