//! Cron expressions evaluated in an IANA timezone: which instants a
//! schedule fires at, correct across daylight-saving transitions.
//!
//! The `cron` crate walks the calendar; it is run over wall-clock times (a
//! zone without transitions), and this module maps each wall-clock time to
//! an instant in the schedule's timezone itself. A time that does not exist
//! (skipped when clocks spring forward) fires once, at the instant the clocks
//! jump; a time that occurs twice (when clocks fall back) fires once, at its
//! first occurrence. Several wall-clock times landing on one instant fire
//! once.

use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::flow::FlowError;

/// A parsed cron expression and the timezone it reads in.
#[derive(Debug, Clone)]
pub struct Cron {
    schedule: cron::Schedule,
    tz: Tz,
}

/// Day-of-week names in crontab numbering (0 and 7 are Sunday).
const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Rewrites a crontab day-of-week field with names, because the `cron`
/// crate numbers days from 1 = Sunday while crontab numbers them from
/// 0 = Sunday (1 = Monday); names mean the same to both.
fn day_names(field: &str) -> Result<String, String> {
    let day = |text: &str| -> Result<usize, String> {
        match text.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n),
            Ok(n) => Err(format!("day of week {n} is out of range 0-7")),
            // A name such as MON, which the cron crate checks.
            Err(_) => Err(String::new()),
        }
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step_suffix = step.map(|s| format!("/{s}")).unwrap_or_default();
        let named = match range.split_once('-') {
            Some((a, b)) => match (day(a), day(b)) {
                (Ok(0), Ok(7)) => format!("SUN-SAT{step_suffix}"),
                (Ok(a), Ok(7)) if step.is_none() => {
                    // `5-7` is Friday to Sunday: the cron crate's week ends
                    // on Saturday, so Sunday joins as its own item.
                    format!("{}-SAT,SUN", DAYS[a])
                }
                (Ok(_), Ok(7)) => {
                    return Err(
                        "a day-of-week range with a step must not end at 7; write Sunday as 0"
                            .to_string(),
                    );
                }
                (Ok(a), Ok(b)) => format!("{}-{}{step_suffix}", DAYS[a], DAYS[b]),
                (Err(e), _) | (_, Err(e)) if !e.is_empty() => return Err(e),
                _ => item.to_string(),
            },
            None => match day(range) {
                Ok(n) => format!("{}{step_suffix}", DAYS[n]),
                Err(e) if !e.is_empty() => return Err(e),
                Err(_) => item.to_string(),
            },
        };
        out.push(named);
    }
    Ok(out.join(","))
}

/// Turns a crontab expression (five fields, or six with seconds first, or a
/// shorthand such as `@daily`) into the `cron` crate's form.
fn normalize(expression: &str) -> Result<String, String> {
    let expression = expression.trim();
    if expression.starts_with('@') {
        return Ok(expression.to_string());
    }
    let mut fields: Vec<String> = expression.split_whitespace().map(str::to_string).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_string()),
        6 => {}
        n => {
            return Err(format!(
                "has {n} fields; expected 5 (minute hour day-of-month month day-of-week) \
                 or 6 (seconds first)"
            ));
        }
    }
    let restricted = |f: &str| f != "*" && f != "?";
    if restricted(&fields[3]) && restricted(&fields[5]) {
        // Crontab fires when either matches, the cron crate only when both
        // do; rather than surprise either reader, one of them must be `*`.
        return Err(
            "restricts both the day of month and the day of week; restrict only one".to_string(),
        );
    }
    fields[5] = day_names(&fields[5])?;
    Ok(fields.join(" "))
}

/// Parses an IANA timezone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, FlowError> {
    Tz::from_str(name.trim()).map_err(|_| {
        FlowError::worded(
            "timezone",
            format!("`{name}` is not an IANA timezone such as `Europe/Berlin` or `UTC`"),
        )
    })
}

/// The instant a wall-clock time stands for in `tz`, in milliseconds since
/// the epoch: its only occurrence, its first when it occurs twice, or the
/// instant the clocks jump past it when it does not exist.
fn instant(tz: &Tz, wall: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(first, _) => first.timestamp_millis(),
        LocalResult::None => gap_end(tz, wall),
    }
}

/// The first instant whose wall-clock time in `tz` is past `wall`, for a
/// `wall` inside a spring-forward gap: the instant the clocks jump.
fn gap_end(tz: &Tz, wall: NaiveDateTime) -> i64 {
    let as_utc = wall.and_utc().timestamp();
    // Offsets lie between -12 and +14 hours, so the wall-clock time `lo`
    // seconds stands for is before `wall` and `hi`'s after it; no zone has
    // two transitions within this day and a half, so the wall-clock time
    // grows with the instant in between and a bisection finds the jump.
    let (mut lo, mut hi) = (as_utc - 18 * 3600, as_utc + 14 * 3600);
    let local = |secs: i64| {
        DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.with_timezone(tz).naive_local())
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local(mid).is_some_and(|l| l > wall) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi * 1000
}

impl Cron {
    /// Parses an expression in a timezone, naming the field and the problem
    /// when either is wrong.
    pub fn parse(expression: &str, timezone: &str) -> Result<Cron, FlowError> {
        let tz = parse_timezone(timezone)?;
        let bad = |problem: String| FlowError::worded("cron", format!("`{expression}` {problem}"));
        let normalized = normalize(expression).map_err(bad)?;
        let schedule = cron::Schedule::from_str(&normalized)
            .map_err(|e| bad(format!("is not a cron expression: {e}")))?;
        let cron = Cron { schedule, tz };
        if cron.after(0).next().is_none() {
            return Err(bad("never fires".to_string()));
        }
        Ok(cron)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The instants the expression fires at, strictly after `after_ms`, in
    /// order and each once.
    pub fn after(&self, after_ms: u64) -> impl Iterator<Item = u64> + '_ {
        let after = after_ms.min(i64::MAX as u64) as i64;
        // Start from the wall-clock time just before `after`: no earlier
        // wall-clock time maps to a later instant, because the mapping never
        // goes backwards (first occurrences, gaps to their end).
        let start = DateTime::<Utc>::from_timestamp_millis(after)
            .map(|t| t.with_timezone(&self.tz).naive_local())
            .unwrap_or_default()
            - chrono::Duration::seconds(1);
        let mut last = after;
        self.schedule
            .after(&Utc.from_utc_datetime(&start))
            .filter_map(move |wall| {
                let at = instant(&self.tz, wall.naive_utc());
                (at > last).then(|| {
                    last = at;
                    at as u64
                })
            })
    }

    /// The first `count` fires after `after_ms`.
    pub fn next(&self, after_ms: u64, count: usize) -> Vec<u64> {
        self.after(after_ms).take(count).collect()
    }
}
