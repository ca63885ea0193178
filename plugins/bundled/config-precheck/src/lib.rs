//! `config-precheck`, a bundled precheck: validates the release's
//! configuration files (JSON or TOML) against a schema the flow names. The
//! schema language is documented in [`schema`].
//!
//! Parameters (exactly one of the first three):
//!
//! | name | meaning |
//! |---|---|
//! | `schema` | the schema itself, in TOML or JSON |
//! | `schema_config` | the name of a granted configuration value that holds it |
//! | `schema_artifact` | the name of an artifact of the release that holds it |
//! | `kinds` | artifact kinds to validate (default `config`) |
//! | `files` | only these artifact names (comma-separated) |
//!
//! Verdict: `pass` when every file is valid, `fail` listing the problems
//! (`app.toml: server.port: expected integer, found string "80"`), `error`
//! when the schema is missing or invalid. A file that does not parse is a
//! problem too. Metrics: `files`, `problems`.

mod schema;

use greenlight_plugin_sdk::{
    Artifact, Error, Params, Precheck, PrecheckResult, ReleaseContext, Verdict, config,
};
use schema::{Schema, parse_document};

struct ConfigPrecheck;

/// The schema's text and where it came from.
fn schema_text(ctx: &ReleaseContext, artifacts: &[Artifact]) -> Result<(String, String), Error> {
    let named: Vec<&str> = ["schema", "schema_config", "schema_artifact"]
        .into_iter()
        .filter(|p| ctx.param_str(p).is_some())
        .collect();
    if named.len() != 1 {
        return Err(Error::new(
            "set exactly one of the parameters `schema`, `schema_config` or `schema_artifact`",
        ));
    }
    let value = ctx.param_str(named[0]).unwrap_or_default();
    match named[0] {
        "schema" => Ok((value.to_string(), "the inline schema".into())),
        "schema_config" => Ok((config::require(value)?, format!("schema `{value}`"))),
        _ => artifacts
            .iter()
            .find(|a| a.name == value)
            .map(|a| (a.content.clone(), format!("schema {value}")))
            .ok_or_else(|| Error::new(format!("the release has no artifact named `{value}`"))),
    }
}

impl Precheck for ConfigPrecheck {
    fn run(ctx: &ReleaseContext, artifacts: &[Artifact]) -> Result<PrecheckResult, Error> {
        let (text, origin) = schema_text(ctx, artifacts)?;
        let schema = Schema::parse(&text).map_err(|e| Error::new(format!("{origin}: {e}")))?;
        let mut kinds = ctx.param_list("kinds");
        if kinds.is_empty() {
            kinds.push("config".into());
        }
        let files = ctx.param_list("files");
        let schema_name = ctx.param_str("schema_artifact");

        let checked: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| kinds.contains(&a.kind) && Some(a.name.as_str()) != schema_name)
            .filter(|a| files.is_empty() || files.contains(&a.name))
            .collect();
        let mut problems = Vec::new();
        for a in &checked {
            match parse_document(&a.content, &a.name) {
                Ok(doc) => problems.extend(
                    schema
                        .validate(&doc)
                        .into_iter()
                        .map(|p| format!("{}: {p}", a.name)),
                ),
                Err(e) => problems.push(format!("{}: {e}", a.name)),
            }
        }
        for missing in files
            .iter()
            .filter(|f| !checked.iter().any(|a| &a.name == *f))
        {
            problems.push(format!("{missing}: is not in the release"));
        }

        let verdict = match (checked.len(), problems.len()) {
            (0, 0) => Verdict::pass("no configuration files in the release"),
            (n, 0) => Verdict::pass(format!("{n} configuration files valid against {origin}")),
            (_, p) => Verdict::fail(format!(
                "{p} problems against {origin}: {}",
                problems.join("; ")
            )),
        };
        Ok(PrecheckResult {
            verdict: verdict
                .metric("files", checked.len() as f64)
                .metric("problems", problems.len() as f64),
            forward_only: false,
        })
    }
}

greenlight_plugin_sdk::export_precheck!(ConfigPrecheck);
