//! `greenlight:plugin/log`: structured log lines, recorded with the invocation
//! and emitted through tracing with the plugin's name.

use super::bindings::log::{Host, Level};
use super::state::{InvocationState, MAX_LOG_LINE_BYTES, MAX_LOG_LINES};
use super::{LogLevel, LogLine};

impl Host for InvocationState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs += 1;
            return;
        }
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Secrets are replaced before the line is cut, so a cut never
        // leaves part of one behind.
        let redact = |text: String| self.redactor.text(&text);
        let mut budget = MAX_LOG_LINE_BYTES;
        let message = truncate(redact(message), &mut budget);
        let mut kept = Vec::new();
        for (k, v) in fields {
            if budget == 0 {
                break;
            }
            let k = truncate(redact(k), &mut budget);
            kept.push((k, truncate(redact(v), &mut budget)));
        }
        let fields = kept;
        let plugin = &*self.plugin;
        match level {
            LogLevel::Error => tracing::error!(plugin, ?fields, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, ?fields, "{message}"),
            LogLevel::Info => tracing::info!(plugin, ?fields, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, ?fields, "{message}"),
            LogLevel::Trace => tracing::trace!(plugin, ?fields, "{message}"),
        }
        self.logs.push(LogLine {
            level,
            message,
            fields,
        });
    }
}

/// Cuts `text` to what is left of `budget` (on a character boundary) and
/// charges the budget for it.
fn truncate(mut text: String, budget: &mut usize) -> String {
    if text.len() > *budget {
        let mut end = *budget;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    *budget -= text.len();
    text
}
