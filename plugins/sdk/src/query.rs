//! Query templates: a metrics query a flow writes once, filled in for each
//! call with what the call is about (the release's versions, its stage and
//! batch, the batch's targets, the window since the batch was deployed),
//! every value escaped for the query language it lands in.
//!
//! ```text
//! histogram_quantile(0.99, sum by (le) (rate(http_request_seconds_bucket{
//!     version="${version}", instance=~"${targets.addresses}"}[${window}])))
//! ```
//!
//! | placeholder | value |
//! |---|---|
//! | `${version}`, `${previous_version}` | the versions released and replaced (the latter fails to render in a first release) |
//! | `${release}`, `${application}`, `${environment}`, `${stage}` | as named |
//! | `${batch}` | the batch's number, counting from 1 |
//! | `${targets.ids}`, `${targets.addresses}`, `${targets.hosts}`, `${targets.label.NAME}` | the batch's targets, as a regular expression matching any of them exactly (Datadog: a comma-separated list, for `tag IN (…)`) |
//! | `${window}` | the time since the batch was deployed, as a duration (`95s`), at least `1s` |
//! | `${window_s}`, `${start_s}`, `${end_s}`, `${start_ms}`, `${end_ms}` | the same window in seconds, and its ends since the Unix epoch |
//! | `$$` | a `$` |
//!
//! A name the template does not know, or an unclosed `${`, is an error that
//! names it; so is a value a dialect cannot carry safely.

use crate::error::Error;
use crate::types::{ReleaseContext, Target};

/// The query language a template is written in, which decides how values
/// are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Prometheus: every value lands inside a `"…"` string (a label
    /// matcher's value); target lists are RE2 alternations for `=~`.
    PromQl,
    /// InfluxDB 1.x: scalar values land inside `'…'`, target lists inside a
    /// `/…/` regular expression.
    InfluxQl,
    /// Datadog's metric queries: values are tag values, which must be
    /// plain (`[A-Za-z0-9_.:/-]`); target lists are comma-separated.
    Datadog,
}

/// What a template may name: the call's context, the targets it is about
/// and the window it looks at.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    pub ctx: &'a ReleaseContext,
    pub targets: &'a [Target],
    /// The window's start and end, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    pub end_ms: u64,
}

impl<'a> Scope<'a> {
    /// The window since the batch was deployed (the context says when),
    /// up to `now_ms`, and at most `max_ms` long; without a deploy time,
    /// the last `max_ms`.
    pub fn since_deploy(
        ctx: &'a ReleaseContext,
        targets: &'a [Target],
        now_ms: u64,
        max_ms: u64,
    ) -> Scope<'a> {
        let earliest = now_ms.saturating_sub(max_ms);
        let start_ms = ctx
            .deployed_at_ms
            .map_or(earliest, |at| at.clamp(earliest, now_ms));
        Scope {
            ctx,
            targets,
            start_ms,
            end_ms: now_ms,
        }
    }

    /// The window's length in whole seconds, at least one.
    pub fn window_s(&self) -> u64 {
        (self.end_ms.saturating_sub(self.start_ms) / 1000).max(1)
    }
}

/// Fills in `template` for `scope` in `dialect`.
pub fn render(template: &str, scope: &Scope, dialect: Dialect) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = inner.find('}') else {
            return Err(Error::new(format!(
                "query template: `${{{}` is not closed with `}}`",
                inner.chars().take(30).collect::<String>()
            )));
        };
        let name = inner[..end].trim();
        out.push_str(&value(name, scope, dialect)?);
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names a template may use, for error messages.
const NAMES: &str = "version, previous_version, release, application, environment, stage, batch, \
                     targets.ids, targets.addresses, targets.hosts, targets.label.NAME, window, \
                     window_s, start_s, end_s, start_ms, end_ms";

fn value(name: &str, scope: &Scope, dialect: Dialect) -> Result<String, Error> {
    let ctx = scope.ctx;
    let scalar = |v: &str| scalar(name, v, dialect);
    let list = |values: Vec<String>| list(name, values, dialect);
    match name {
        "version" => scalar(&ctx.version),
        "previous_version" => match &ctx.previous_version {
            Some(v) => scalar(v),
            None => Err(Error::new(
                "query template: `${previous_version}` has no value: this is the first release \
                 of the environment",
            )),
        },
        "release" => scalar(&ctx.release_id),
        "application" => scalar(&ctx.application),
        "environment" => scalar(&ctx.environment),
        "stage" => scalar(&ctx.stage),
        "batch" => match ctx.batch {
            Some(b) => Ok((b + 1).to_string()),
            None => Err(Error::new(
                "query template: `${batch}` has no value: this call is not about a batch",
            )),
        },
        "targets.ids" => list(scope.targets.iter().map(|t| t.id.clone()).collect()),
        "targets.addresses" => list(scope.targets.iter().map(|t| t.address.clone()).collect()),
        "targets.hosts" => list(scope.targets.iter().map(|t| host(&t.address)).collect()),
        "window" => Ok(format!("{}s", scope.window_s())),
        "window_s" => Ok(scope.window_s().to_string()),
        "start_s" => Ok((scope.start_ms / 1000).to_string()),
        "end_s" => Ok((scope.end_ms / 1000).to_string()),
        "start_ms" => Ok(scope.start_ms.to_string()),
        "end_ms" => Ok(scope.end_ms.to_string()),
        _ => match name.strip_prefix("targets.label.") {
            Some(label) if !label.is_empty() => {
                let mut values: Vec<String> = scope
                    .targets
                    .iter()
                    .filter_map(|t| {
                        t.labels
                            .iter()
                            .find(|(k, _)| k == label)
                            .map(|(_, v)| v.clone())
                    })
                    .collect();
                values.sort();
                values.dedup();
                list(values)
            }
            _ => Err(Error::new(format!(
                "query template: `${{{name}}}` is not a name it knows ({NAMES})"
            ))),
        },
    }
}

/// The host of `host:port`, `[v6]:port` or a bare host.
fn host(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match address.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            h.to_string()
        }
        _ => address.to_string(),
    }
}

/// One value, escaped for where the dialect puts values.
fn scalar(name: &str, v: &str, dialect: Dialect) -> Result<String, Error> {
    match dialect {
        Dialect::PromQl => Ok(promql_string(v)),
        Dialect::InfluxQl => Ok(influxql_string(v)),
        Dialect::Datadog => datadog_tag(name, v),
    }
}

/// Several values: a regular expression matching any one of them exactly,
/// or for Datadog a comma-separated list. No values at all match nothing.
fn list(name: &str, values: Vec<String>, dialect: Dialect) -> Result<String, Error> {
    if values.is_empty() {
        return Err(Error::new(format!(
            "query template: `${{{name}}}` has no value: no target has one"
        )));
    }
    let regex = || {
        values
            .iter()
            .map(|v| regex_escape(v))
            .collect::<Vec<_>>()
            .join("|")
    };
    match dialect {
        // PromQL anchors `=~` matchers itself.
        Dialect::PromQl => Ok(promql_string(&regex())),
        // InfluxQL does not: the template writes `/^(?:${…})$/`.
        Dialect::InfluxQl => Ok(values
            .iter()
            .map(|v| influxql_regex(v))
            .collect::<Vec<_>>()
            .join("|")),
        Dialect::Datadog => Ok(values
            .iter()
            .map(|v| datadog_tag(name, v))
            .collect::<Result<Vec<_>, _>>()?
            .join(",")),
    }
}

/// `v` with every character `escape` has a replacement for replaced.
fn escaped(v: &str, escape: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match escape(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    out
}

/// The inside of a PromQL double-quoted string.
fn promql_string(v: &str) -> String {
    escaped(v, |c| match c {
        '\\' | '"' => Some(format!("\\{c}")),
        '\n' => Some("\\n".into()),
        _ => None,
    })
}

/// The characters a regular expression escapes to match them literally.
const REGEX_META: &str = "\\.+*?()|[]{}^$-";

/// A regular expression (RE2 or Go's, which both dialects use) matching
/// `v` literally.
fn regex_escape(v: &str) -> String {
    escaped(v, |c| REGEX_META.contains(c).then(|| format!("\\{c}")))
}

/// The inside of an InfluxQL single-quoted string. Its scanner reads
/// `\\`, `\'` and `\n` as escapes and ends the string, as an error, at a
/// raw newline.
fn influxql_string(v: &str) -> String {
    escaped(v, |c| match c {
        '\\' | '\'' => Some(format!("\\{c}")),
        '\n' => Some("\\n".into()),
        _ => None,
    })
}

/// A Go regular expression matching `v` literally inside InfluxQL's
/// `/…/`. InfluxQL's scanner reads `\/` as a slash and keeps every other
/// backslash, so a backslash is written `\x5c`: as `\\`, one at the end of
/// a value would escape the closing slash.
fn influxql_regex(v: &str) -> String {
    escaped(v, |c| match c {
        '\\' => Some("\\x5c".into()),
        '/' => Some("\\/".into()),
        c => REGEX_META.contains(c).then(|| format!("\\{c}")),
    })
}

fn datadog_tag(name: &str, v: &str) -> Result<String, Error> {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c));
    if plain {
        Ok(v.to_string())
    } else {
        Err(Error::new(format!(
            "query template: `${{{name}}}` is `{v}`, which a Datadog tag value cannot hold \
             (letters, digits and _ . : / - only)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ReleaseContext {
        ReleaseContext {
            release_id: "r1".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0\"} or vector(1) #".into(),
            previous_version: Some("1.9.0".into()),
            stage: "canary".into(),
            batch: Some(0),
            attempt: 1,
            parameters: Vec::new(),
            deployed_at_ms: Some(1_000_000),
        }
    }

    fn target(id: &str, address: &str, zone: &str) -> Target {
        Target {
            id: id.into(),
            address: address.into(),
            group: String::new(),
            labels: vec![("zone".into(), zone.into())],
            attributes: Vec::new(),
        }
    }

    fn targets() -> Vec<Target> {
        vec![
            target("web-1", "10.0.0.1:8080", "eu-1"),
            target("web.2", "[fd00::2]:8080", "eu-1"),
        ]
    }

    #[test]
    fn promql_values_cannot_leave_their_string() {
        let c = ctx();
        let ts = targets();
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let q = render(
            r#"rate(x{version="${version}", instance=~"${targets.addresses}", host=~"${targets.hosts}"}[${window}]) # $$ ${batch}"#,
            &scope,
            Dialect::PromQl,
        )
        .unwrap();
        assert_eq!(
            q,
            r#"rate(x{version="2.0.0\"} or vector(1) #", instance=~"10\\.0\\.0\\.1:8080|\\[fd00::2\\]:8080", host=~"10\\.0\\.0\\.1|fd00::2"}[95s]) # $ 1"#
        );
    }

    #[test]
    fn influxql_and_datadog_have_their_own_escapes() {
        let mut c = ctx();
        c.version = "it's/2".into();
        let ts = targets();
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let q = render(
            "SELECT x FROM y WHERE version = '${version}' AND host =~ /^(?:${targets.ids})$/ AND time > now() - ${window}",
            &scope,
            Dialect::InfluxQl,
        )
        .unwrap();
        assert_eq!(
            q,
            r"SELECT x FROM y WHERE version = 'it\'s/2' AND host =~ /^(?:web\-1|web\.2)$/ AND time > now() - 95s"
        );
        // A backslash before a quote, and a newline, which InfluxQL's
        // scanner refuses raw inside a string; a target id ending in a
        // backslash, which must not escape the regular expression's end.
        c.version = "2.0\\' OR 'a'='a\n".into();
        let odd = vec![
            target("a\\", "10.0.0.1:80", "eu-1"),
            target("b/c", "10.0.0.2:80", "eu-1"),
        ];
        let scope = Scope::since_deploy(&c, &odd, 1_095_500, 3_600_000);
        let q = render(
            "version = '${version}' AND host =~ /${targets.ids}/",
            &scope,
            Dialect::InfluxQl,
        )
        .unwrap();
        assert_eq!(
            q,
            r"version = '2.0\\\' OR \'a\'=\'a\n' AND host =~ /a\x5c|b\/c/"
        );
        c.version = "2.0.0".into();
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let q = render(
            "avg:latency{version:${version},host IN (${targets.ids}),zone IN (${targets.label.zone})}",
            &scope,
            Dialect::Datadog,
        )
        .unwrap();
        assert_eq!(
            q,
            "avg:latency{version:2.0.0,host IN (web-1,web.2),zone IN (eu-1)}"
        );
        c.version = "2.0 beta".into();
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let e = render("v:${version}", &scope, Dialect::Datadog).unwrap_err();
        assert!(
            e.message().contains("`${version}` is `2.0 beta`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn the_window_starts_at_the_deploy_and_is_bounded() {
        let c = ctx();
        let ts = targets();
        let s = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        assert_eq!(
            (s.start_ms, s.end_ms, s.window_s()),
            (1_000_000, 1_095_500, 95)
        );
        // A deploy long ago: the last hour only.
        let s = Scope::since_deploy(&c, &ts, 9_000_000, 3_600_000);
        assert_eq!(s.start_ms, 5_400_000);
        // Just deployed: at least a second.
        let s = Scope::since_deploy(&c, &ts, 1_000_200, 3_600_000);
        assert_eq!(s.window_s(), 1);
        // No deploy time: the last `max`.
        let mut c2 = ctx();
        c2.deployed_at_ms = None;
        let s = Scope::since_deploy(&c2, &ts, 9_000_000, 60_000);
        assert_eq!(s.start_ms, 8_940_000);
        let q = render(
            "${start_s} ${end_s} ${start_ms} ${window_s}",
            &s,
            Dialect::PromQl,
        )
        .unwrap();
        assert_eq!(q, "8940 9000 8940000 60");
    }

    #[test]
    fn unknown_names_and_missing_values_are_named() {
        let mut c = ctx();
        let ts = targets();
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let e = render("x{v=\"${verison}\"}", &scope, Dialect::PromQl).unwrap_err();
        assert!(
            e.message()
                .contains("`${verison}` is not a name it knows (version,"),
            "{}",
            e.message()
        );
        let e = render("x{v=\"${version", &scope, Dialect::PromQl).unwrap_err();
        assert!(e.message().contains("is not closed"), "{}", e.message());
        let e = render("${targets.label.rack}", &scope, Dialect::PromQl).unwrap_err();
        assert!(e.message().contains("no target has one"), "{}", e.message());
        c.previous_version = None;
        c.batch = None;
        let scope = Scope::since_deploy(&c, &ts, 1_095_500, 3_600_000);
        let e = render("${previous_version}", &scope, Dialect::PromQl).unwrap_err();
        assert!(e.message().contains("first release"), "{}", e.message());
        let e = render("${batch}", &scope, Dialect::PromQl).unwrap_err();
        assert!(e.message().contains("not about a batch"), "{}", e.message());
        // A lone `$` is kept.
        assert_eq!(
            render("cost in $ and $x", &scope, Dialect::PromQl).unwrap(),
            "cost in $ and $x"
        );
    }
}
