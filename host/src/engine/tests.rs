//! Tests of the engine's drivers on the real store, registry and fixture
//! deployer, on a single-threaded runtime so that the order in which tasks
//! take the release's lock is set by the test. Nothing sleeps.

use std::ops::Deref;

use super::bed::{Bed, NIGHTLY};
use super::*;
use crate::domain::release::{Actor, Command, RollbackMode};

struct Harness {
    bed: Bed,
}

impl Deref for Harness {
    type Target = Bed;
    fn deref(&self) -> &Bed {
        &self.bed
    }
}

impl Harness {
    async fn new() -> Harness {
        Harness {
            bed: Bed::new(1_780_000_000_000, &[NIGHTLY], &["prod"]).await,
        }
    }

    /// Driver tasks still running, the finished ones reaped.
    fn drivers(&self) -> usize {
        let mut tasks = self.engine.inner.tasks.lock().unwrap();
        while tasks.try_join_next().is_some() {}
        tasks.len()
    }

    /// Lets every other task run until `done` holds; a bounded number of
    /// turns, not a time.
    async fn turns_until(&self, what: &str, done: impl Fn(&Harness) -> bool) {
        for _ in 0..10_000 {
            if done(self) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{what} did not happen");
    }

    /// Successful calls of the deployer so far.
    fn deployer_calls(&self) -> usize {
        let wanted = "greenlight_plugin_invocations_total{plugin=\"agent\",outcome=\"ok\"} ";
        self.registry
            .metrics()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(wanted))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    fn journaled(&self, id: &str, name: &str) -> usize {
        let journal = self.store.journal(id).unwrap();
        journal.iter().filter(|e| e.name() == name).count()
    }
}

fn admin() -> Actor {
    Actor {
        name: "ada".into(),
        role: "admin".into(),
        admin: true,
    }
}

/// The rollback of a release that has just succeeded, sent while the task
/// that finished it has yet to see the end: that task carries the rollback
/// out, and no second one starts beside it to call the deployer again.
#[tokio::test(flavor = "current_thread")]
async fn a_rollback_racing_the_end_of_a_release_is_driven_once() {
    let h = Harness::new().await;
    let request = StartRequest {
        application: "shop".into(),
        environment: "prod".into(),
        version: "2.0.0".into(),
        flow: "nightly".into(),
        flow_version: None,
        emergency: false,
        artifacts: Vec::new(),
        train: None,
    };
    let (spec, _) = h.engine.start_release(request, &admin()).await.unwrap();
    let id = spec.id.clone();
    h.wait_status(&id, Status::Succeeded).await;
    h.turns_until("the driver's end", |h| h.drivers() == 0)
        .await;
    let deploys = h.deployer_calls();
    assert_eq!(
        deploys,
        h.journaled(&id, "deploy-started"),
        "one call per batch"
    );

    // The rollback comes while the task that finished the release has yet
    // to look at it again: that task asks for the release's lock while the
    // command holds it, flushing the rollback's start.
    let live = h.engine.live(&id).await.unwrap();
    h.engine
        .inner
        .releases
        .lock()
        .await
        .insert(id.clone(), live.clone());
    let command = {
        let engine = h.engine.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let rollback = Command::Rollback {
                mode: RollbackMode::Regular,
                force: false,
                reason: "bad build".into(),
            };
            engine.command(&id, &admin(), rollback).await
        })
    };
    h.turns_until("the command committing", |_| {
        live.state.try_lock().is_err() || command.is_finished()
    })
    .await;
    h.engine.spawn(live.clone());
    assert_eq!(h.drivers(), 1, "one task drives the release");
    command.await.unwrap().unwrap();
    h.wait_status(&id, Status::RolledBack).await;
    h.turns_until("the driver's end", |h| h.drivers() == 0)
        .await;

    let undone = h.journaled(&id, "rollback-batch-started");
    assert!(undone > 0);
    assert_eq!(
        h.deployer_calls() - deploys,
        undone,
        "one deployer call per batch undone"
    );
}
