//! Driving trains: each train has a task that starts member releases in
//! dependency order and, when one fails or a human asks, rolls members back
//! in reverse dependency order. The train's own record holds only which
//! release each member got; everything else follows from those releases,
//! so a restart resumes a train from the releases' journals.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Notify, broadcast};

use super::{Engine, Error, StartRequest};
use crate::domain::flow::FlowError;
use crate::domain::release::{Actor, Command, RollbackMode, Status};
use crate::domain::train::{self, Member, MemberStatus, TrainStatus, TrainStep};
use crate::store::TrainRecord;

/// How a train's task ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The train is over; the task gave its driving up under the train lock.
    Finished,
    /// The daemon stops, or the train's record cannot be read or written.
    Stopped,
}

/// A train and how each member stands.
#[derive(Debug, Clone)]
pub struct TrainView {
    pub record: TrainRecord,
    pub members: Vec<MemberStatus>,
    /// Member indices in dependency order.
    pub order: Vec<usize>,
}

impl Engine {
    /// Starts a train.
    pub async fn start_train(
        &self,
        name: Option<String>,
        members: Vec<Member>,
        actor: &Actor,
    ) -> Result<TrainView, Error> {
        let mut problems = Vec::new();
        if let Some(name) = &name {
            problems.extend(crate::domain::name::check_name("name", name).err());
        }
        if let Err(e) = train::order(&members) {
            problems.extend(e);
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        for (i, m) in members.iter().enumerate() {
            if self
                .inner
                .store
                .environment(&m.application, &m.environment)?
                .is_none()
            {
                problems.push(FlowError::missing(
                    format!("members[{i}].environment"),
                    format!(
                        "no environment `{}` in application `{}`",
                        m.environment, m.application
                    ),
                ));
            }
            if self.inner.catalog.flow(&m.flow, m.flow_version).is_err() {
                problems.push(FlowError::missing(
                    format!("members[{i}].flow"),
                    format!("no flow `{}`", m.flow),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let now = self.inner.clock.now_ms();
        let record = TrainRecord {
            id: super::new_id(now),
            name: name.unwrap_or_default(),
            releases: vec![None; members.len()],
            members,
            started_by: actor.name.clone(),
            created_ms: now,
            status: TrainStatus::Running,
            rollback_requested: false,
            problem: None,
        };
        self.inner.store.put_train(&record)?;
        self.inner.store.sync().await?;
        tracing::info!(train = %record.id, members = record.members.len(), "Train started.");
        self.spawn_train(record.id.clone());
        self.train(&record.id).await
    }

    /// Plans a train without running it: the members in dependency order,
    /// each with every stage, batch and target its release would take.
    pub fn plan_train(
        &self,
        members: &[Member],
    ) -> Result<Vec<(usize, crate::domain::plan::Plan)>, Error> {
        let order = train::order(members).map_err(Error::Invalid)?;
        let mut plans = Vec::with_capacity(order.len());
        for i in order {
            let m = &members[i];
            let env = self
                .inner
                .store
                .environment(&m.application, &m.environment)?
                .ok_or_else(|| {
                    Error::Invalid(vec![FlowError::missing(
                        format!("members[{i}].environment"),
                        format!(
                            "no environment `{}` in application `{}`",
                            m.environment, m.application
                        ),
                    )])
                })?;
            let plan = self
                .inner
                .catalog
                .plan(
                    &m.flow,
                    m.flow_version,
                    &env.targets,
                    env.live_group.as_deref(),
                )
                .map_err(|e| Error::Invalid(member_problems(i, e)))?;
            plans.push((i, plan));
        }
        Ok(plans)
    }

    /// Starts a task driving the train, unless one drives it already.
    fn spawn_train(&self, id: String) {
        if !self.train_drivers().insert(id.clone()) {
            return;
        }
        let engine = self.clone();
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.spawn_on(
                async move { engine.drive_train(id).await },
                &self.inner.work,
            );
        }
    }

    fn train_drivers(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .train_drivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drives a train until it is over or the daemon stops; then no task
    /// drives it, so that a later rollback starts one.
    async fn drive_train(self, id: String) {
        if self.train_rounds(&id).await == Ended::Stopped {
            self.train_drivers().remove(&id);
        }
    }

    fn train_wake(&self, id: &str) -> Arc<Notify> {
        let mut wakes = self
            .inner
            .train_wakes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        wakes.entry(id.to_string()).or_default().clone()
    }

    /// Resumes every train that has not finished.
    pub(super) fn resume_trains(&self) -> Result<usize, Error> {
        let mut resumed = 0;
        for record in self.inner.store.trains()? {
            if matches!(
                record.status,
                TrainStatus::Running | TrainStatus::RollingBack
            ) {
                self.spawn_train(record.id);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Applies `change` to the stored record of a train and stores it,
    /// under the train lock: whoever writes a train reads the newest record
    /// first, so a change made meanwhile (a rollback requested while the
    /// train's task started a member) is never written over. Returns the
    /// record as written; the caller makes it durable.
    async fn update_train(
        &self,
        id: &str,
        change: impl FnOnce(&mut TrainRecord),
    ) -> Result<TrainRecord, Error> {
        let _writing = self.inner.train_writes.lock().await;
        let mut record = self.load_train(id)?;
        change(&mut record);
        self.inner.store.put_train(&record)?;
        Ok(record)
    }

    fn load_train(&self, id: &str) -> Result<TrainRecord, Error> {
        self.inner
            .store
            .train(id)?
            .ok_or_else(|| Error::NotFound(format!("no train `{id}`")))
    }

    async fn member_statuses(&self, record: &TrainRecord) -> Vec<Option<Status>> {
        let mut statuses = Vec::with_capacity(record.releases.len());
        for release in &record.releases {
            statuses.push(match release {
                // The status under the release's lock, never an earlier
                // reading: the train acts on it.
                Some(id) => match self.live(id).await {
                    Ok(live) => Some(live.state.lock().await.status()),
                    // A release that cannot be read counts as failed, so the
                    // train unwinds rather than waits forever.
                    Err(_) => Some(Status::Failed),
                },
                None => None,
            });
        }
        statuses
    }

    /// A train and its members' statuses.
    pub async fn train(&self, id: &str) -> Result<TrainView, Error> {
        let record = self.load_train(id)?;
        let statuses = self.member_statuses(&record).await;
        let (_, members, _) = train::decide(&record.members, &statuses, record.rollback_requested);
        let order = train::order(&record.members).unwrap_or_default();
        Ok(TrainView {
            record,
            members,
            order,
        })
    }

    /// Every train, newest first.
    pub async fn trains(&self) -> Result<Vec<TrainView>, Error> {
        let mut views = Vec::new();
        for record in self.inner.store.trains()?.into_iter().rev() {
            views.push(self.train(&record.id).await?);
        }
        Ok(views)
    }

    /// Rolls a whole train back, newest dependents first.
    pub async fn rollback_train(
        &self,
        id: &str,
        actor: &Actor,
        comment: &str,
    ) -> Result<TrainView, Error> {
        let mut finished = false;
        let mut requested_now = false;
        let record = self
            .update_train(id, |record| {
                if record.status == TrainStatus::RolledBack {
                    finished = true;
                } else if !record.rollback_requested {
                    requested_now = true;
                    record.rollback_requested = true;
                    let why = if comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {comment}")
                    };
                    record.problem = Some(format!("{} rolled the train back{why}", actor.name));
                    if record.status == TrainStatus::Succeeded {
                        record.status = TrainStatus::RollingBack;
                    }
                }
            })
            .await?;
        if finished {
            return Err(Error::Refused(crate::domain::release::CommandError {
                code: "train.finished",
                message: format!("train {id} has already rolled back"),
            }));
        }
        if requested_now {
            self.inner.store.sync().await?;
            // A finished train has no task of its own any more.
            if record.status == TrainStatus::RollingBack {
                self.spawn_train(id.to_string());
            }
        }
        self.train_wake(id).notify_one();
        self.train(id).await
    }

    /// Starts member `i`; on a busy environment held by this train's own
    /// release (started before a crash), adopts that release.
    async fn start_member(&self, record: &mut TrainRecord, i: usize) -> Result<(), Error> {
        let m = &record.members[i];
        let actor = Actor {
            name: record.started_by.clone(),
            role: "release-manager".to_string(),
            admin: false,
        };
        let request = StartRequest {
            application: m.application.clone(),
            environment: m.environment.clone(),
            version: m.version.clone(),
            flow: m.flow.clone(),
            flow_version: m.flow_version,
            emergency: false,
            artifacts: Vec::new(),
            train: Some(record.id.clone()),
        };
        let id = match self.start_release(request, &actor).await {
            Ok((spec, _)) => spec.id.clone(),
            Err(Error::Busy { release, .. }) => {
                let (spec, _) = self.release(&release).await?;
                if spec.train.as_deref() != Some(record.id.as_str()) {
                    return Err(Error::Busy {
                        application: spec.application.clone(),
                        environment: spec.environment.clone(),
                        release,
                    });
                }
                release
            }
            Err(e) => return Err(e),
        };
        *record = self
            .update_train(&record.id.clone(), |stored| stored.releases[i] = Some(id))
            .await?;
        self.inner.store.sync().await?;
        Ok(())
    }

    async fn train_rounds(&self, id: &str) -> Ended {
        let id = id.to_string();
        let mut events = self.subscribe();
        let wake = self.train_wake(&id);
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                return Ended::Stopped;
            }
            let mut record = match self.load_train(&id) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(train = %id, error = %e, "A train cannot be read.");
                    return Ended::Stopped;
                }
            };
            let statuses = self.member_statuses(&record).await;
            let (_, _, steps) =
                train::decide(&record.members, &statuses, record.rollback_requested);
            let mut dirty = false;
            for step in steps {
                let result = match step {
                    TrainStep::Start(i) => self.start_member(&mut record, i).await,
                    TrainStep::Rollback(i) => {
                        let Some(release) = record.releases[i].clone() else {
                            continue;
                        };
                        let actor = Actor {
                            name: format!("train {id}"),
                            role: "release-manager".to_string(),
                            admin: false,
                        };
                        let command = Command::Rollback {
                            mode: RollbackMode::Regular,
                            force: false,
                            reason: match &record.problem {
                                Some(problem) => {
                                    format!("train {} unwinds: {problem}", record.name)
                                }
                                None => format!("train {} unwinds", record.name),
                            },
                        };
                        self.command(&release, &actor, command).await.map(|_| ())
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(train = %id, error = %e, "A train step failed; the train unwinds.");
                    if !record.rollback_requested {
                        record.rollback_requested = true;
                        record.problem = Some(e.to_string());
                        dirty = true;
                    }
                }
            }
            // The statuses may have moved while acting; decide again before
            // recording the train's status.
            let statuses = self.member_statuses(&record).await;
            let (now_status, _, _) =
                train::decide(&record.members, &statuses, record.rollback_requested);
            let decided_unwinding = record.rollback_requested;
            if now_status != record.status || dirty {
                let problem = record.problem.clone();
                let unwinds = record.rollback_requested;
                let written = self
                    .update_train(&id, |stored| {
                        stored.status = now_status;
                        if unwinds && !stored.rollback_requested {
                            stored.rollback_requested = true;
                            stored.problem = problem;
                        }
                    })
                    .await;
                record = match written {
                    Ok(record) => record,
                    Err(e) => {
                        tracing::error!(train = %id, error = %e, "A train cannot be written.");
                        return Ended::Stopped;
                    }
                };
                let _ = self.inner.store.sync().await;
            }
            // A rollback requested while this round acted is decided on
            // in the next round, never lost behind a status of this one.
            let requested_meanwhile =
                !decided_unwinding && self.load_train(&id).is_ok_and(|r| r.rollback_requested);
            if requested_meanwhile {
                continue;
            }
            if matches!(now_status, TrainStatus::Succeeded | TrainStatus::RolledBack) {
                // Under the train lock: a rollback asked for from here on
                // finds no driver and starts one; one asked for before is
                // seen here and carried out by this task.
                let _writing = self.inner.train_writes.lock().await;
                let requested = self.load_train(&id).is_ok_and(|r| r.rollback_requested);
                if requested && !decided_unwinding {
                    continue;
                }
                self.train_drivers().remove(&id);
                tracing::info!(train = %id, status = now_status.as_str(), "Train finished.");
                return Ended::Finished;
            }
            // Wait for something to happen to one of the members.
            let members: Vec<String> = record.releases.iter().flatten().cloned().collect();
            loop {
                tokio::select! {
                    received = events.recv() => match received {
                        Ok(p) if members.contains(&p.release) => break,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return Ended::Stopped,
                    },
                    _ = wake.notified() => break,
                    _ = shutdown.changed() => return Ended::Stopped,
                }
            }
        }
    }
}

/// A member's plan refused by the catalog, each problem under the member's
/// path and of the kind of rule it breaks: no such flow is a missing
/// thing, and a flow that cannot run over the environment breaks a worded
/// rule.
fn member_problems(i: usize, e: crate::catalog::Error) -> Vec<FlowError> {
    let at = |path: &str| {
        if path.is_empty() {
            format!("members[{i}]")
        } else {
            format!("members[{i}].{path}")
        }
    };
    match e {
        crate::catalog::Error::Invalid(problems) => problems
            .into_iter()
            .map(|p| FlowError {
                path: at(&p.path),
                ..p
            })
            .collect(),
        crate::catalog::Error::NotFound(m) => vec![FlowError::missing(at("flow"), m)],
        other => vec![FlowError::worded(at(""), other.to_string())],
    }
}
