//! {{name}}: a Greenlight check. Every target must answer GET `path` with a
//! 2xx status within `timeout_ms`; all targets are asked at once.
//!
//! Parameters: `path` (default `/health`) and `timeout_ms` (default 1000).
//!
//! Build, test and upload it as README.md says. The SDK in
//! `greenlight-plugin-sdk/` has `http`, `config`, `kv`, `log`, `time` and
//! `threshold`, and one export macro per world.

use greenlight_plugin_sdk::{Check, Error, Params, ReleaseContext, Target, Verdict, http};

struct Probe;

impl Check for Probe {
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let path: String = ctx.param_or("path", "/health".to_string())?;
        let path = format!("/{}", path.trim_start_matches('/'));
        let timeout_ms: u64 = ctx.param_or("timeout_ms", 1_000)?;
        if targets.is_empty() {
            return Ok(Verdict::no_data("no targets to probe"));
        }

        let requests = targets.iter().map(|t| {
            http::Request::get(format!("http://{}{path}", t.address).as_str()).timeout_ms(timeout_ms)
        });
        let mut unhealthy = Vec::new();
        for (target, answer) in targets.iter().zip(http::send_all(requests)) {
            match answer {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => unhealthy.push(format!("{} (HTTP {})", target.id, r.status)),
                Err(e) => unhealthy.push(format!("{} ({e})", target.id)),
            }
        }

        let total = targets.len();
        let verdict = if unhealthy.is_empty() {
            Verdict::pass(format!("{total} of {total} targets answered {path}"))
        } else {
            Verdict::fail(format!(
                "{} of {total} targets unhealthy: {}",
                unhealthy.len(),
                unhealthy.join(", ")
            ))
        };
        Ok(verdict
            .metric("healthy", (total - unhealthy.len()) as f64)
            .metric("unhealthy", unhealthy.len() as f64))
    }
}

greenlight_plugin_sdk::export_check!(Probe);
