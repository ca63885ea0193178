//! `sql-precheck`, a bundled precheck: lints the release's SQL migrations for
//! dangerous statements and marks a release with destructive ones as
//! forward-only, so that automatic rollback asks a human instead.
//!
//! Rules (see [`lint::Rule`]): `drop-table`, `drop-column`, `truncate` and
//! `column-type-change` are destructive and make the release forward-only;
//! `column-type-change`, `blocking-index` (`CREATE INDEX` without
//! `CONCURRENTLY`) and `not-null-without-default` also fail the precheck by
//! default, since they lock or break a table in use. Tables created in the
//! same migration are exempt from the locking rules.
//!
//! Parameters (all optional):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `kinds` | `sql-migration` | artifact kinds to lint (names ending in `.sql` always are) |
//! | `fail_on` | `column-type-change,blocking-index,not-null-without-default` | rules that fail the precheck; `none` for none, `all` for all |
//! | `allow` | — | rules to ignore altogether |
//!
//! Metrics: `migrations`, `statements`, `findings`, `failing`,
//! `forward_only` (0 or 1).

mod lint;

use greenlight_plugin_sdk::{
    Artifact, Error, Params, Precheck, PrecheckResult, ReleaseContext, Verdict,
};
use lint::Rule;

struct SqlPrecheck;

const DEFAULT_FAIL_ON: [Rule; 3] = [
    Rule::ColumnTypeChange,
    Rule::BlockingIndex,
    Rule::NotNullWithoutDefault,
];

/// Parses a rule list parameter.
fn rules(ctx: &ReleaseContext, name: &str, default: &[Rule]) -> Result<Vec<Rule>, Error> {
    let listed = ctx.param_list(name);
    if ctx.param_str(name).is_none() {
        return Ok(default.to_vec());
    }
    match listed.as_slice() {
        [one] if one == "none" => return Ok(Vec::new()),
        [one] if one == "all" => return Ok(Rule::ALL.to_vec()),
        _ => {}
    }
    listed
        .iter()
        .map(|id| {
            Rule::parse(id).ok_or_else(|| {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
                Error::new(format!(
                    "parameter `{name}`: unknown rule `{id}` (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

impl Precheck for SqlPrecheck {
    fn run(ctx: &ReleaseContext, artifacts: &[Artifact]) -> Result<PrecheckResult, Error> {
        let fail_on = rules(ctx, "fail_on", &DEFAULT_FAIL_ON)?;
        let allow = rules(ctx, "allow", &[])?;
        let mut kinds = ctx.param_list("kinds");
        if kinds.is_empty() {
            kinds.push("sql-migration".into());
        }

        let migrations: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| kinds.contains(&a.kind) || a.name.ends_with(".sql"))
            .collect();
        let mut statements = 0;
        let mut findings = Vec::new();
        for m in &migrations {
            let (count, found) = lint::lint(&m.content);
            statements += count;
            findings.extend(
                found
                    .into_iter()
                    .filter(|f| !allow.contains(&f.rule))
                    .map(|f| (m.name.as_str(), f)),
            );
        }

        let forward_only = findings.iter().any(|(_, f)| f.rule.forward_only());
        let failing = findings
            .iter()
            .filter(|(_, f)| fail_on.contains(&f.rule))
            .count();
        let listed: Vec<String> = findings
            .iter()
            .take(5)
            .map(|(name, f)| format!("{name}:{} {} ({})", f.line, f.rule.id(), f.excerpt))
            .collect();
        let more = match findings.len() {
            n if n > 5 => format!("; and {} more", n - 5),
            _ => String::new(),
        };
        let summary = if findings.is_empty() {
            format!(
                "{statements} statements in {} migrations, none dangerous",
                migrations.len()
            )
        } else {
            let consequence = match (failing > 0, forward_only) {
                (true, _) => format!("{failing} not allowed"),
                (false, true) => "the release is forward-only".to_string(),
                (false, false) => "allowed".to_string(),
            };
            format!(
                "{} dangerous statements, {consequence}: {}{more}",
                findings.len(),
                listed.join("; ")
            )
        };
        let verdict = if failing > 0 {
            Verdict::fail(summary)
        } else {
            Verdict::pass(summary)
        };
        Ok(PrecheckResult {
            verdict: verdict
                .metric("migrations", migrations.len() as f64)
                .metric("statements", statements as f64)
                .metric("findings", findings.len() as f64)
                .metric("failing", failing as f64)
                .metric("forward_only", f64::from(u8::from(forward_only))),
            forward_only,
        })
    }
}

greenlight_plugin_sdk::export_precheck!(SqlPrecheck);
