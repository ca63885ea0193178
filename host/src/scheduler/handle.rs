//! The scheduler's handle: what the API asks of schedules and freeze
//! windows. Every change is stored first, then the loop is told.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Error, Event, Shared};
use crate::domain::flow::FlowError;
use crate::domain::schedule::freeze::FreezeWindow;
use crate::domain::schedule::{Fire, Schedule};

/// A schedule with its next fire and what its fires did.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    pub schedule: Schedule,
    /// The next fire, when enabled.
    pub next_ms: Option<u64>,
    /// The newest fire journaled.
    pub last: Option<Fire>,
    /// The newest fire that started a release.
    pub last_started: Option<Fire>,
}

/// The scheduler, as the rest of the daemon sees it; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// The most fire times one request may ask for.
pub const MAX_NEXT: usize = 100;

impl Scheduler {
    pub(super) fn new(shared: Arc<Shared>) -> Scheduler {
        Scheduler { shared }
    }

    fn changed(&self, name: &str) {
        // The loop holds the receiver for as long as the daemon runs.
        let _ = self.shared.events.send(Event::Changed(name.to_string()));
    }

    fn get(&self, name: &str) -> Result<Schedule, Error> {
        self.shared
            .store
            .schedule(name)?
            .ok_or_else(|| Error::NotFound(format!("no schedule `{name}`")))
    }

    fn view(&self, schedule: Schedule) -> Result<ScheduleView, Error> {
        let now = self.shared.clock.now_ms();
        let next_ms = match schedule.check() {
            Ok(cron) if schedule.enabled => cron.after(now.max(schedule.since_ms)).next(),
            _ => None,
        };
        Ok(ScheduleView {
            last: self.shared.store.last_fire(&schedule.name)?,
            last_started: self.shared.store.last_started_fire(&schedule.name)?,
            next_ms,
            schedule,
        })
    }

    /// Creates a schedule: checks every field, and that its flow and
    /// environment exist. Its first fire is the first after now.
    pub async fn create(&self, mut schedule: Schedule, by: &str) -> Result<ScheduleView, Error> {
        let mut problems = schedule.check().err().unwrap_or_default();
        let store = &self.shared.store;
        if !schedule.flow.trim().is_empty() && store.flow_versions(&schedule.flow)?.is_empty() {
            problems.push(FlowError::missing(
                "flow",
                format!("no flow `{}`", schedule.flow),
            ));
        }
        if let crate::domain::schedule::VersionSource::Url { url } = &schedule.version
            && problems.iter().all(|p| p.path != "version_url")
            && let Err(e) = super::version::check_origin(&self.shared.origins, url)
        {
            problems.push(FlowError::worded("version_url", e));
        }
        if problems
            .iter()
            .all(|p| p.path != "application" && p.path != "environment")
            && store
                .environment(&schedule.application, &schedule.environment)?
                .is_none()
        {
            problems.push(FlowError::missing(
                "environment",
                format!(
                    "no environment `{}` in application `{}`",
                    schedule.environment, schedule.application
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let now = self.shared.clock.now_ms();
        schedule.created_by = by.to_string();
        schedule.created_ms = now;
        schedule.since_ms = now;
        store.create_schedule(&schedule)?;
        store.sync().await?;
        self.changed(&schedule.name);
        self.view(schedule)
    }

    /// Every schedule, by name.
    pub fn list(&self) -> Result<Vec<ScheduleView>, Error> {
        self.shared
            .store
            .schedules()?
            .into_iter()
            .map(|s| self.view(s))
            .collect()
    }

    pub fn show(&self, name: &str) -> Result<ScheduleView, Error> {
        self.view(self.get(name)?)
    }

    /// Enables or disables a schedule. Fires that fell while it was
    /// disabled are not missed runs: an enabled schedule starts afresh.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ScheduleView, Error> {
        let mut schedule = self.get(name)?;
        if schedule.enabled != enabled {
            schedule.enabled = enabled;
            if enabled {
                schedule.since_ms = self.shared.clock.now_ms();
            }
            self.shared.store.put_schedule(&schedule)?;
            self.shared.store.sync().await?;
            self.changed(name);
        }
        self.view(schedule)
    }

    /// Deletes a schedule and its journal of fires.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        if !self.shared.store.delete_schedule(name)? {
            return Err(Error::NotFound(format!("no schedule `{name}`")));
        }
        self.shared.store.sync().await?;
        self.changed(name);
        Ok(())
    }

    /// The next `count` fire times from now (whether or not the schedule
    /// is enabled).
    pub fn next(&self, name: &str, count: usize) -> Result<Vec<u64>, Error> {
        if !(1..=MAX_NEXT).contains(&count) {
            return Err(Error::Invalid(vec![FlowError::new(
                "count",
                format!("must be between 1 and {MAX_NEXT}"),
            )]));
        }
        let cron = self.get(name)?.check().map_err(Error::Invalid)?;
        Ok(cron.next(self.shared.clock.now_ms(), count))
    }

    /// A schedule's fires, newest first.
    pub fn fires(&self, name: &str, limit: usize) -> Result<Vec<Fire>, Error> {
        self.get(name)?;
        Ok(self.shared.store.fires(name, limit)?)
    }

    /// Every fire's outcome as it is journaled.
    pub fn subscribe(&self) -> broadcast::Receiver<Fire> {
        self.shared.fires.subscribe()
    }

    /// Creates a freeze window.
    pub async fn create_freeze(
        &self,
        mut window: FreezeWindow,
        by: &str,
    ) -> Result<FreezeWindow, Error> {
        window.created_by = by.to_string();
        window.created_ms = self.shared.clock.now_ms();
        let window = window.compile().map_err(Error::Invalid)?.window;
        self.shared.store.create_freeze(&window)?;
        self.shared.store.sync().await?;
        Ok(window)
    }

    /// Every freeze window, by name.
    pub fn freezes(&self) -> Result<Vec<FreezeWindow>, Error> {
        Ok(self.shared.store.freezes()?)
    }

    /// The freeze windows, each with whether it is open now on the
    /// scheduler's clock.
    pub fn freezes_now(&self) -> Result<Vec<(FreezeWindow, bool)>, Error> {
        let now = self.shared.clock.now_ms();
        Ok(self
            .freezes()?
            .into_iter()
            .map(|w| {
                let open = w.clone().compile().is_ok_and(|c| c.open_at(now));
                (w, open)
            })
            .collect())
    }

    pub async fn delete_freeze(&self, name: &str) -> Result<(), Error> {
        if !self.shared.store.delete_freeze(name)? {
            return Err(Error::NotFound(format!("no freeze window `{name}`")));
        }
        self.shared.store.sync().await?;
        Ok(())
    }
}
