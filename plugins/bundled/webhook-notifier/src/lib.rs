//! `webhook-notifier`, a bundled notifier: posts each release event as JSON
//! to a webhook. The body carries a `text` line, which Slack incoming
//! webhooks and the chat tools compatible with them (Mattermost, Rocket.Chat,
//! Discord's `/slack` endpoints, Teams workflows) display, and the event in
//! full under `greenlight` for other receivers (the text numbers batches
//! from 1, as people do; `batch` is the host's index, from 0):
//!
//! ```json
//! {"text": "[shop/prod] 2.0.0 rolled-back: error_rate 0.07 > 0.05 (stage canary, batch 3)",
//!  "greenlight": {"release_id": "…", "application": "shop", "environment": "prod",
//!                 "version": "2.0.0", "previous_version": "1.0.0", "stage": "canary",
//!                 "batch": 2, "event": {"kind": "rolled-back", "message": "…", "at_ms": 0}}}
//! ```
//!
//! The URL is the granted secret `webhook_url` (chat webhook URLs are
//! credentials), else the granted configuration value `webhook_url`, else
//! the parameter `url`; the grant must allow its origin. Parameters:
//! `username` (shown as the sender where supported), `events` (only these
//! comma-separated kinds are posted; all by default), `timeout_ms` (default
//! `2000`). A refusal with 5xx or 429 is reported as retryable.

use greenlight_plugin_sdk::{
    Error, Notifier, Params, ReleaseContext, ReleaseEvent, config, http, log,
};
use serde_json::{Value, json};

struct WebhookNotifier;

/// The one line a chat shows.
fn text(ctx: &ReleaseContext, event: &ReleaseEvent) -> String {
    let mut line = format!(
        "[{}/{}] {} {}",
        ctx.application, ctx.environment, ctx.version, event.kind
    );
    if !event.message.is_empty() {
        line.push_str(": ");
        line.push_str(&event.message);
    }
    let place = match (ctx.stage.is_empty(), ctx.batch) {
        (true, _) => String::new(),
        (false, Some(b)) => format!(" (stage {}, batch {})", ctx.stage, b.saturating_add(1)),
        (false, None) => format!(" (stage {})", ctx.stage),
    };
    line + &place
}

/// The whole body posted to the webhook.
fn body(ctx: &ReleaseContext, event: &ReleaseEvent, username: Option<&str>) -> Value {
    let mut body = json!({
        "text": text(ctx, event),
        "greenlight": {
            "release_id": ctx.release_id,
            "application": ctx.application,
            "environment": ctx.environment,
            "version": ctx.version,
            "previous_version": ctx.previous_version,
            "stage": ctx.stage,
            "batch": ctx.batch,
            "event": {"kind": event.kind, "message": event.message, "at_ms": event.at_ms},
        },
    });
    if let Some(name) = username {
        body["username"] = json!(name);
    }
    body
}

impl Notifier for WebhookNotifier {
    fn notify(ctx: &ReleaseContext, event: &ReleaseEvent) -> Result<(), Error> {
        let wanted = ctx.param_list("events");
        if !wanted.is_empty() && !wanted.contains(&event.kind) {
            return Ok(());
        }
        let url = config::secret("webhook_url")
            .or_else(|| config::get("webhook_url"))
            .or_else(|| ctx.param_str("url").map(str::to_string))
            .ok_or_else(|| {
                Error::new(
                    "no webhook URL: grant the secret `webhook_url` or set the parameter `url`",
                )
            })?;
        let timeout_ms: u64 = ctx.param_or("timeout_ms", 2_000)?;
        http::Request::post(url)
            .timeout_ms(timeout_ms)
            .json(&body(ctx, event, ctx.param_str("username")))
            .send()?
            .error_for_status()
            .map_err(|e| Error::from(e).context("the webhook"))?;
        log::info("Event posted.", &[("kind", &event.kind)]);
        Ok(())
    }
}

greenlight_plugin_sdk::export_notifier!(WebhookNotifier);

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(batch: Option<u32>) -> ReleaseContext {
        ReleaseContext {
            release_id: "rel-7".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0".into(),
            previous_version: Some("1.0.0".into()),
            stage: "canary".into(),
            batch,
            attempt: 1,
            parameters: vec![],
            deployed_at_ms: None,
        }
    }

    fn event(kind: &str, message: &str) -> ReleaseEvent {
        ReleaseEvent {
            kind: kind.into(),
            message: message.into(),
            at_ms: 42,
        }
    }

    #[test]
    fn the_text_says_what_happened_where() {
        assert_eq!(
            text(
                &ctx(Some(2)),
                &event("rolled-back", "error_rate 0.07 > 0.05")
            ),
            "[shop/prod] 2.0.0 rolled-back: error_rate 0.07 > 0.05 (stage canary, batch 3)"
        );
        assert_eq!(
            text(&ctx(None), &event("succeeded", "")),
            "[shop/prod] 2.0.0 succeeded (stage canary)"
        );
    }

    #[test]
    fn the_body_carries_the_event_in_full() {
        let b = body(
            &ctx(Some(0)),
            &event("stage-started", "go"),
            Some("greenlight"),
        );
        assert_eq!(b["username"], "greenlight");
        assert_eq!(b["greenlight"]["previous_version"], "1.0.0");
        assert_eq!(b["greenlight"]["event"]["at_ms"], 42);
        assert_eq!(b["greenlight"]["batch"], 0);
        assert!(
            body(&ctx(None), &event("x", ""), None)
                .get("username")
                .is_none()
        );
    }
}
