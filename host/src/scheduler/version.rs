//! Resolving the version a fire ships from an HTTP endpoint, such as a CI
//! system's "latest green build".

use crate::domain::grant::Origin;

/// Refuses a URL whose origin is not among the allowed ones.
pub fn check_origin(allowed: &[Origin], url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "`{url}` carries a user name; give the endpoint without one"
        ));
    }
    let origin = Origin::parse(&format!("{scheme}://{authority}"))?;
    if allowed.contains(&origin) {
        return Ok(());
    }
    Err(if allowed.is_empty() {
        format!(
            "{origin} is not an allowed version endpoint: no endpoint is allowed until an admin \
             lists it in [scheduler] version_origins"
        )
    } else {
        let list: Vec<String> = allowed.iter().map(Origin::to_string).collect();
        format!(
            "{origin} is not an allowed version endpoint (allowed: {})",
            list.join(", ")
        )
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_may_answer_for_versions() {
        let allowed = vec![Origin::parse("https://ci.example").unwrap()];
        assert!(check_origin(&allowed, "https://ci.example/latest?branch=main").is_ok());
        assert!(check_origin(&allowed, "https://CI.example:443/x").is_ok());
        for (url, why) in [
            ("https://ci.example:8443/latest", "not an allowed"),
            ("http://ci.example/latest", "not an allowed"),
            ("http://169.254.169.254/latest", "not an allowed"),
            ("https://ci.example@evil.example/", "user name"),
            ("ftp://ci.example/", "not http or https"),
        ] {
            let e = check_origin(&allowed, url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        let e = check_origin(&[], "https://ci.example/").unwrap_err();
        assert!(e.contains("version_origins"), "{e}");
    }
}
