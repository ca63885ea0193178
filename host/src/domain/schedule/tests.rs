//! Tests of schedules: fires across daylight-saving transitions, leap days,
//! missed-run policies and freeze windows.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::freeze::{Effect, FreezeWindow, Period, frozen};
use super::*;

/// A daily schedule at 02:00 UTC shipping 1.0.0 to shop/beta, for tests
/// elsewhere to adjust.
pub(crate) fn sample(name: &str) -> Schedule {
    Schedule {
        name: name.into(),
        cron: "0 2 * * *".into(),
        timezone: "UTC".into(),
        application: "shop".into(),
        environment: "beta".into(),
        flow: "nightly".into(),
        flow_version: None,
        version: VersionSource::Fixed {
            version: "1.0.0".into(),
        },
        missed: MissedRun::RunOnce,
        overlap: Overlap::Skip,
        enabled: true,
        since_ms: 0,
        created_by: "sam".into(),
        created_ms: 0,
    }
}

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> u64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .timestamp_millis() as u64
}

fn local(tz: Tz, at_ms: u64) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp_millis(at_ms as i64)
        .unwrap()
        .with_timezone(&tz)
}

/// Fires from `from` to `to`, with the local dates they fall on.
fn fires_between(cron: &Cron, from: u64, to: u64) -> Vec<u64> {
    cron.after(from).take_while(|at| *at <= to).collect()
}

/// Exactly one fire on each local day from `first` for `days` days.
fn one_fire_a_day(cron: &Cron, tz: Tz, first: NaiveDate, days: i64) -> Vec<u64> {
    let start = tz
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis() as u64;
    let fires = fires_between(cron, start - 1, start + days as u64 * DAY - 3 * HOUR);
    let dates: Vec<NaiveDate> = fires.iter().map(|f| local(tz, *f).date_naive()).collect();
    let expected: Vec<NaiveDate> = (0..days)
        .map(|d| first + chrono::Duration::days(d))
        .collect();
    assert_eq!(dates, expected, "one fire per local day");
    fires
}

#[test]
fn daily_at_two_fires_once_a_day_across_both_berlin_transitions() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let cron = Cron::parse("0 2 * * *", "Europe/Berlin").unwrap();
    // Clocks jump from 02:00 to 03:00 on 29 March 2026.
    let spring = one_fire_a_day(&cron, tz, NaiveDate::from_ymd_opt(2026, 3, 27).unwrap(), 5);
    let hours: Vec<u32> = spring.iter().map(|f| local(tz, *f).hour()).collect();
    assert_eq!(hours, [2, 2, 3, 2, 2], "02:00 does not exist on the 29th");
    assert_eq!(
        spring[2],
        utc(2026, 3, 29, 1, 0),
        "it fires as the clocks jump"
    );
    // Clocks go back from 03:00 to 02:00 on 25 October 2026.
    let autumn = one_fire_a_day(&cron, tz, NaiveDate::from_ymd_opt(2026, 10, 23).unwrap(), 5);
    assert!(autumn.iter().all(|f| local(tz, *f).hour() == 2));
    assert_eq!(autumn[2], utc(2026, 10, 25, 0, 0), "the first 02:00");
}

#[test]
fn daily_half_past_fires_once_a_day_across_both_new_york_transitions() {
    let tz: Tz = "America/New_York".parse().unwrap();
    // 02:30 does not exist on 8 March 2026; 01:30 occurs twice on 1 November.
    let gap = Cron::parse("30 2 * * *", "America/New_York").unwrap();
    let spring = one_fire_a_day(&gap, tz, NaiveDate::from_ymd_opt(2026, 3, 6).unwrap(), 5);
    assert_eq!(
        spring[2],
        utc(2026, 3, 8, 7, 0),
        "03:00 EDT, as the clocks jump"
    );
    let fold = Cron::parse("30 1 * * *", "America/New_York").unwrap();
    let autumn = one_fire_a_day(&fold, tz, NaiveDate::from_ymd_opt(2026, 10, 30).unwrap(), 5);
    assert_eq!(autumn[2], utc(2026, 11, 1, 5, 30), "01:30 EDT, the first");
}

#[test]
fn several_times_in_a_gap_fire_once_when_the_clocks_jump() {
    let cron = Cron::parse("*/20 2 * * *", "Europe/Berlin").unwrap();
    let fires = fires_between(&cron, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0));
    assert_eq!(fires, [utc(2026, 3, 29, 1, 0)]);
}

#[test]
fn the_leap_day_fires_only_in_leap_years() {
    let cron = Cron::parse("0 0 29 2 *", "UTC").unwrap();
    assert_eq!(
        cron.next(utc(2025, 1, 1, 0, 0), 3),
        [
            utc(2028, 2, 29, 0, 0),
            utc(2032, 2, 29, 0, 0),
            utc(2036, 2, 29, 0, 0)
        ]
    );
}

#[test]
fn days_of_week_count_from_sunday_as_zero_as_in_crontab() {
    let tz: Tz = "UTC".parse().unwrap();
    let weekdays = |expr: &str| -> Vec<String> {
        let cron = Cron::parse(expr, "UTC").unwrap();
        // 1 June 2026 is a Monday.
        cron.next(utc(2026, 5, 31, 12, 0), 7)
            .iter()
            .map(|f| local(tz, *f).weekday().to_string())
            .collect()
    };
    assert_eq!(
        weekdays("0 2 * * 1-5")[..5],
        ["Mon", "Tue", "Wed", "Thu", "Fri"]
    );
    assert_eq!(weekdays("0 2 * * 1-5")[5], "Mon");
    assert_eq!(weekdays("0 2 * * 0")[0], "Sun");
    assert_eq!(weekdays("0 2 * * 7")[0], "Sun");
    assert_eq!(weekdays("0 2 * * 5-7")[..3], ["Fri", "Sat", "Sun"]);
    assert_eq!(weekdays("0 2 * * MON")[0], "Mon");
    assert_eq!(weekdays("0 2 * * 0-7").len(), 7, "every day");
}

#[test]
fn bad_expressions_and_timezones_name_the_field_and_the_problem() {
    let problem = |expr: &str, tz: &str| Cron::parse(expr, tz).unwrap_err();
    let e = problem("0 2 * *", "UTC");
    assert_eq!(e.path, "cron");
    assert!(e.problem.contains("4 fields"), "{e}");
    let e = problem("0 25 * * *", "UTC");
    assert_eq!(e.path, "cron");
    assert!(e.problem.contains("not a cron expression"), "{e}");
    let e = problem("0 2 * * 9", "UTC");
    assert!(e.problem.contains("day of week 9"), "{e}");
    let e = problem("0 2 1 * 1", "UTC");
    assert!(e.problem.contains("restrict only one"), "{e}");
    let e = problem("0 0 30 2 *", "UTC");
    assert!(e.problem.contains("never fires"), "{e}");
    let e = problem("0 2 * * *", "Mars/Olympus");
    assert_eq!(e.path, "timezone");
    assert!(e.problem.contains("Mars/Olympus"), "{e}");
    assert!(Cron::parse("@daily", "UTC").is_ok());
    assert!(Cron::parse("*/5 * * * * *", "UTC").is_ok(), "seconds first");
}

fn decisions(policy: MissedRun, after: u64, now: u64) -> Vec<(u64, bool)> {
    let cron = Cron::parse("0 2 * * *", "UTC").unwrap();
    due(&cron, policy, after, now, 60_000)
        .into_iter()
        .map(|(at, d)| (at, d == Decision::Run))
        .collect()
}

/// The last fire was on the 1st at 02:00.
fn last_fire() -> u64 {
    utc(2026, 6, 1, 2, 0)
}

/// The daemon comes back on the 4th at 09:00, after three fires went by.
fn back() -> u64 {
    utc(2026, 6, 4, 9, 0)
}

#[test]
fn a_three_day_outage_under_each_missed_run_policy() {
    let (last, now) = (last_fire(), back());
    let missed = [
        utc(2026, 6, 2, 2, 0),
        utc(2026, 6, 3, 2, 0),
        utc(2026, 6, 4, 2, 0),
    ];
    let expect =
        |runs: [bool; 3]| -> Vec<(u64, bool)> { missed.iter().copied().zip(runs).collect() };
    assert_eq!(
        decisions(MissedRun::Skip, last, now),
        expect([false, false, false])
    );
    assert_eq!(
        decisions(MissedRun::RunOnce, last, now),
        expect([false, false, true])
    );
    assert_eq!(
        decisions(MissedRun::CatchUp { max: 2 }, last, now),
        expect([false, true, true])
    );
    assert_eq!(
        decisions(MissedRun::CatchUp { max: 5 }, last, now),
        expect([true, true, true])
    );
}

#[test]
fn a_fire_on_time_runs_and_covers_the_missed_ones_under_run_once() {
    let last = last_fire();
    let now = utc(2026, 6, 4, 2, 0) + 500;
    let got = decisions(MissedRun::RunOnce, last, now);
    assert_eq!(got.iter().filter(|(_, run)| *run).count(), 1);
    assert_eq!(got.last(), Some(&(utc(2026, 6, 4, 2, 0), true)));
    let cron = Cron::parse("0 2 * * *", "UTC").unwrap();
    let all = due(&cron, MissedRun::RunOnce, last, now, 60_000);
    assert!(matches!(&all[0].1, Decision::Skip(why) if why.contains("covers")));
    assert!(
        decisions(MissedRun::Skip, now, now + 1000).is_empty(),
        "nothing due"
    );
}

#[test]
fn a_long_outage_lists_a_bounded_number_of_skips() {
    let cron = Cron::parse("* * * * *", "UTC").unwrap();
    let last = utc(2026, 6, 1, 0, 0);
    let all = due(&cron, MissedRun::RunOnce, last, last + 30 * DAY, 60_000);
    // The fires of the last minute are on time, and cover the missed ones.
    assert_eq!(
        all.len(),
        MAX_LISTED_SKIPS + 2,
        "the listed skips and two fires on time"
    );
    let Decision::Skip(why) = &all[0].1 else {
        panic!("a skip first")
    };
    assert!(why.contains("older missed fires are not listed"), "{why}");
}

fn window(name: &str, effect: Effect, period: Period) -> super::freeze::Compiled {
    FreezeWindow {
        name: name.into(),
        effect,
        period,
        application: Some("shop".into()),
        environment: None,
        reason: format!("{name} reason"),
        created_by: "admin".into(),
        created_ms: 0,
    }
    .compile()
    .unwrap()
}

#[test]
fn freeze_windows_deny_win_over_allow_and_recur_in_their_timezone() {
    let holidays = window(
        "holidays",
        Effect::Deny,
        Period::Range {
            start_ms: utc(2026, 12, 20, 0, 0),
            end_ms: utc(2027, 1, 4, 0, 0),
        },
    );
    // Releases only on weekdays from 08:00 for ten hours, Berlin time.
    let office = window(
        "office-hours",
        Effect::Allow,
        Period::Recurring {
            cron: "0 8 * * 1-5".into(),
            timezone: "Europe/Berlin".into(),
            duration_ms: 10 * HOUR,
        },
    );
    let windows = [holidays, office];
    let at = |t: u64| frozen(&windows, "shop", "prod", t);
    // Tuesday 1 December 2026 at 10:00 Berlin (09:00 UTC): open.
    assert_eq!(at(utc(2026, 12, 1, 9, 0)), None);
    // At 19:00 Berlin the change window has closed.
    let closed = at(utc(2026, 12, 1, 18, 0)).expect("outside the change window");
    assert!(closed.contains("office-hours"), "{closed}");
    // Inside the change window but also in the holidays: deny wins.
    let denied = at(utc(2026, 12, 22, 9, 0)).expect("frozen");
    assert!(denied.contains("holidays reason"), "{denied}");
    // Another application is not concerned.
    assert_eq!(
        frozen(&windows, "blog", "prod", utc(2026, 12, 22, 9, 0)),
        None
    );
}

#[test]
fn bad_freeze_windows_name_their_fields() {
    let bad = FreezeWindow {
        name: "Bad Name".into(),
        effect: Effect::Deny,
        period: Period::Recurring {
            cron: "0 8 * *".into(),
            timezone: "Nowhere/Town".into(),
            duration_ms: 0,
        },
        application: None,
        environment: None,
        reason: String::new(),
        created_by: "admin".into(),
        created_ms: 0,
    };
    let problems = bad.compile().unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(fields, ["name", "timezone", "duration_ms"]);
}
