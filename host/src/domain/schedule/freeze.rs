//! Freeze windows: when releases may not start. A `deny` window forbids
//! starts while it is open; `allow` windows, when any apply to an
//! environment, forbid starts outside them (a change window). Where both
//! apply, deny wins.

use serde::{Deserialize, Serialize};

use super::cron::Cron;
use crate::domain::flow::FlowError;

/// Whether a window forbids or permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Deny,
    Allow,
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Period {
    /// From `start_ms` (inclusive) to `end_ms` (exclusive).
    Range { start_ms: u64, end_ms: u64 },
    /// Opens at each fire of `cron` in `timezone` and stays open
    /// `duration_ms`.
    Recurring {
        cron: String,
        timezone: String,
        duration_ms: u64,
    },
}

/// A freeze window as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    pub name: String,
    pub effect: Effect,
    pub period: Period,
    /// Only this application; every application when `None`.
    pub application: Option<String>,
    /// Only this environment; every environment when `None`.
    pub environment: Option<String>,
    /// Why the window exists, shown to whoever it stops.
    pub reason: String,
    pub created_by: String,
    pub created_ms: u64,
}

/// The longest a recurring window may stay open: a year.
const MAX_DURATION_MS: u64 = 366 * 24 * 3600 * 1000;

/// A window with its recurrence parsed, ready to answer "is it open".
#[derive(Debug, Clone)]
pub struct Compiled {
    pub window: FreezeWindow,
    cron: Option<Cron>,
}

impl FreezeWindow {
    /// Checks the window and parses its recurrence.
    pub fn compile(self) -> Result<Compiled, Vec<FlowError>> {
        let mut problems = Vec::new();
        let scope = [
            ("application", self.application.as_deref()),
            ("environment", self.environment.as_deref()),
        ];
        problems.extend(crate::domain::name::check_name("name", &self.name).err());
        for (field, value) in scope {
            if let Some(value) = value {
                problems.extend(crate::domain::name::check_name(field, value).err());
            }
        }
        problems.extend(
            crate::domain::name::check_text(
                "reason",
                &self.reason,
                crate::domain::name::MAX_TEXT_LEN,
            )
            .err(),
        );
        let mut cron = None;
        match &self.period {
            Period::Range { start_ms, end_ms } => {
                if end_ms <= start_ms {
                    problems.push(FlowError::worded("end_ms", "must be after start_ms"));
                }
            }
            Period::Recurring {
                cron: expression,
                timezone,
                duration_ms,
            } => {
                match Cron::parse(expression, timezone) {
                    Ok(c) => cron = Some(c),
                    Err(e) => problems.push(e),
                }
                if *duration_ms == 0 || *duration_ms > MAX_DURATION_MS {
                    problems.push(FlowError::worded(
                        "duration_ms",
                        format!("must be between 1 and {MAX_DURATION_MS} (a year)"),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Compiled { window: self, cron })
        } else {
            Err(problems)
        }
    }
}

impl Compiled {
    fn applies_to(&self, application: &str, environment: &str) -> bool {
        let w = &self.window;
        w.application.as_deref().is_none_or(|a| a == application)
            && w.environment.as_deref().is_none_or(|e| e == environment)
    }

    /// Whether the window is open at `at_ms`.
    pub fn open_at(&self, at_ms: u64) -> bool {
        match (&self.window.period, &self.cron) {
            (Period::Range { start_ms, end_ms }, _) => *start_ms <= at_ms && at_ms < *end_ms,
            // Open at `at` when it opened in (at - duration, at].
            (Period::Recurring { duration_ms, .. }, Some(cron)) => cron
                .after(at_ms.saturating_sub(*duration_ms))
                .next()
                .is_some_and(|opened| opened <= at_ms),
            (Period::Recurring { .. }, None) => false,
        }
    }
}

/// Why a release may not start now, or `None` when it may.
pub fn frozen(
    windows: &[Compiled],
    application: &str,
    environment: &str,
    at_ms: u64,
) -> Option<String> {
    let applying: Vec<&Compiled> = windows
        .iter()
        .filter(|w| w.applies_to(application, environment))
        .collect();
    if let Some(deny) = applying
        .iter()
        .find(|w| w.window.effect == Effect::Deny && w.open_at(at_ms))
    {
        return Some(format!(
            "freeze window `{}` is open: {}",
            deny.window.name, deny.window.reason
        ));
    }
    let allows: Vec<&&Compiled> = applying
        .iter()
        .filter(|w| w.window.effect == Effect::Allow)
        .collect();
    if !allows.is_empty() && !allows.iter().any(|w| w.open_at(at_ms)) {
        let names: Vec<&str> = allows.iter().map(|w| w.window.name.as_str()).collect();
        return Some(format!(
            "outside the change windows of {application}/{environment} ({})",
            names.join(", ")
        ));
    }
    None
}
