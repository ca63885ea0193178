//! The Prometheus text exposition format, as far as a threshold needs it:
//! samples with their labels, and selectors like `http_errors{code="500"}`.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A metric name with label matchers that must all be equal.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Parses `name` or `name{label="value",...}`.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        let (name, labels) = match s.find('{') {
            Some(open) => {
                let close = s
                    .rfind('}')
                    .filter(|c| *c > open && s[c + 1..].trim().is_empty())
                    .ok_or_else(|| format!("`{s}` has an unclosed `{{`"))?;
                (&s[..open], parse_labels(&s[open + 1..close])?)
            }
            None => (s, BTreeMap::new()),
        };
        if !valid_name(name) {
            return Err(format!("`{name}` is not a metric name"));
        }
        Ok(Selector {
            name: name.to_string(),
            labels,
        })
    }

    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.labels.get(k) == Some(v))
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `a="x",b="y\"z"` (a trailing comma allowed).
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("label `{rest}` has no `=`"))?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let body = after
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label `{key}` is not quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the value of label `{key}` is not closed")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("the value of label `{key}` is not closed")),
            }
        };
        labels.insert(key.to_string(), value);
        rest = body[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(labels)
}

/// Parses an exposition; comment lines are skipped, and a malformed line is
/// an error naming its number.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| format!("line {}: {why}", n + 1);
        let (series, rest) = match line.find('{') {
            Some(open) => {
                let close = line[open..]
                    .find('}')
                    .map(|c| open + c)
                    .ok_or_else(|| bad("unclosed `{`".into()))?;
                (&line[..=close], &line[close + 1..])
            }
            None => line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("no value".into()))?,
        };
        let selector = Selector::parse(series).map_err(bad)?;
        let raw = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value".into()))?;
        let value = parse_value(raw).ok_or_else(|| bad(format!("`{raw}` is not a number")))?;
        samples.push(Sample {
            name: selector.name,
            labels: selector.labels,
            value,
        });
    }
    Ok(samples)
}

/// Parses a sample value, with Prometheus's spellings of the infinities.
pub fn parse_value(raw: &str) -> Option<f64> {
    match raw {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => raw.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/"} 1027 1395066363000
http_requests_total{code="500",path="/"} 3
app_error_ratio 0.031
app_latency_p99_ms{route="/checkout"} 412.5
weird{msg="a \"quoted\", comma"} NaN
"#;

    #[test]
    fn samples_parse_with_labels_and_timestamps() {
        let s = parse(TEXT).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "http_requests_total");
        assert_eq!(s[0].labels["code"], "200");
        assert_eq!(s[0].value, 1027.0);
        assert_eq!(s[2].value, 0.031);
        assert_eq!(s[4].labels["msg"], "a \"quoted\", comma");
        assert!(s[4].value.is_nan());
    }

    #[test]
    fn selectors_match_name_and_every_label() {
        let samples = parse(TEXT).unwrap();
        let sel = Selector::parse(r#"http_requests_total{code="500"}"#).unwrap();
        let hits: Vec<f64> = samples
            .iter()
            .filter(|s| sel.matches(s))
            .map(|s| s.value)
            .collect();
        assert_eq!(hits, [3.0]);
        assert_eq!(Selector::parse("app_error_ratio").unwrap().labels.len(), 0);
        assert!(Selector::parse("9lives").is_err());
        assert!(Selector::parse("a{b=\"c\"").is_err());
    }

    #[test]
    fn a_malformed_line_is_named() {
        assert_eq!(
            parse("ok 1\nbroken{x=\"1\"} many\n").unwrap_err(),
            "line 2: `many` is not a number"
        );
        assert_eq!(parse("lonely\n").unwrap_err(), "line 1: no value");
    }
}
