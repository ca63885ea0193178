//! Conversions between the domain's plugin types and the generated bindings
//! of each interface version. The two versions' types have the same shape
//! but are distinct Rust types, so the conversions they share are written
//! once, in [`conversions!`], and expanded in [`v1`] and [`v2`]; what
//! differs (a target's attributes, work in progress, the context's deploy
//! time, a metric's evidence) is written beside.

/// The conversions every interface version shares, for the types module
/// and the exported interfaces of one version.
macro_rules! conversions {
    (
        $types:path, $precheck:path, $deployer:path, $traffic:path, $notifier:path;
        context: |$c:ident| { $($context_extra:tt)* }
    ) => {
        use crate::domain::plugin as d;
        use $deployer as deployer_iface;
        use $notifier as notifier_iface;
        use $precheck as precheck_iface;
        use $traffic as traffic_iface;
        use $types as wit;

        type WitArtifact = precheck_iface::Artifact;
        type WitPrecheckResult = precheck_iface::PrecheckResult;
        type WitTargetResult = deployer_iface::TargetResult;
        type WitGroupWeight = traffic_iface::GroupWeight;
        type WitReleaseEvent = notifier_iface::ReleaseEvent;

        /// The context; what a version adds to 0.1.0's is given with the
        /// macro's `context:`.
        pub(in crate::plugins) fn context($c: &d::ReleaseContext) -> wit::ReleaseContext {
            wit::ReleaseContext {
                release_id: $c.release_id.clone(),
                application: $c.application.clone(),
                environment: $c.environment.clone(),
                version: $c.version.clone(),
                previous_version: $c.previous_version.clone(),
                stage: $c.stage.clone(),
                batch: $c.batch,
                attempt: $c.attempt,
                parameters: $c.parameters.clone(),
                $($context_extra)*
            }
        }

        pub(in crate::plugins) fn artifacts(a: &[d::Artifact]) -> Vec<WitArtifact> {
            a.iter()
                .map(|a| WitArtifact {
                    kind: a.kind.clone(),
                    name: a.name.clone(),
                    content: a.content.clone(),
                })
                .collect()
        }

        fn status_to_wit(s: d::VerdictStatus) -> wit::VerdictStatus {
            match s {
                d::VerdictStatus::Pass => wit::VerdictStatus::Pass,
                d::VerdictStatus::Fail => wit::VerdictStatus::Fail,
                d::VerdictStatus::Inconclusive => wit::VerdictStatus::Inconclusive,
                d::VerdictStatus::NoData => wit::VerdictStatus::NoData,
                d::VerdictStatus::Error => wit::VerdictStatus::Error,
            }
        }

        fn status_from_wit(s: wit::VerdictStatus) -> d::VerdictStatus {
            match s {
                wit::VerdictStatus::Pass => d::VerdictStatus::Pass,
                wit::VerdictStatus::Fail => d::VerdictStatus::Fail,
                wit::VerdictStatus::Inconclusive => d::VerdictStatus::Inconclusive,
                wit::VerdictStatus::NoData => d::VerdictStatus::NoData,
                wit::VerdictStatus::Error => d::VerdictStatus::Error,
            }
        }

        fn verdict_to_wit(v: &d::Verdict) -> wit::Verdict {
            wit::Verdict {
                status: status_to_wit(v.status),
                summary: v.summary.clone(),
                metrics: v.metrics.iter().map(metric_to_wit).collect(),
            }
        }

        pub(in crate::plugins) fn verdict(v: wit::Verdict) -> d::Verdict {
            d::Verdict {
                status: status_from_wit(v.status),
                summary: v.summary,
                metrics: v.metrics.into_iter().map(metric_from_wit).collect(),
            }
        }

        pub(in crate::plugins) fn observations(os: &[d::Observation]) -> Vec<wit::Observation> {
            os.iter()
                .map(|o| wit::Observation {
                    check: o.check.clone(),
                    stage: o.stage.clone(),
                    batch: o.batch,
                    verdict: verdict_to_wit(&o.verdict),
                    at_ms: o.at_ms,
                })
                .collect()
        }

        pub(in crate::plugins) fn decision(d: wit::Decision) -> d::Decision {
            d::Decision {
                kind: match d.kind {
                    wit::DecisionKind::Proceed => d::DecisionKind::Proceed,
                    wit::DecisionKind::Pause => d::DecisionKind::Pause,
                    wit::DecisionKind::Rollback => d::DecisionKind::Rollback,
                },
                reason: d.reason,
            }
        }

        pub(in crate::plugins) fn precheck_result(r: WitPrecheckResult) -> d::PrecheckResult {
            d::PrecheckResult {
                verdict: verdict(r.verdict),
                forward_only: r.forward_only,
            }
        }

        pub(in crate::plugins) fn fault(e: wit::PluginError) -> d::PluginFault {
            d::PluginFault {
                message: e.message,
                retryable: e.retryable,
            }
        }

        fn target_results_of(rs: Vec<WitTargetResult>) -> Vec<d::TargetResult> {
            rs.into_iter()
                .map(|t| d::TargetResult {
                    target_id: t.target_id,
                    ok: t.ok,
                    message: t.message,
                })
                .collect()
        }

        pub(in crate::plugins) fn weights_to_wit(ws: &[d::GroupWeight]) -> Vec<WitGroupWeight> {
            ws.iter()
                .map(|w| WitGroupWeight {
                    group: w.group.clone(),
                    percent: w.percent,
                })
                .collect()
        }

        pub(in crate::plugins) fn weights(
            r: Result<Vec<WitGroupWeight>, wit::PluginError>,
        ) -> Result<Vec<d::GroupWeight>, d::PluginFault> {
            r.map(|ws| {
                ws.into_iter()
                    .map(|w| d::GroupWeight {
                        group: w.group,
                        percent: w.percent,
                    })
                    .collect()
            })
            .map_err(fault)
        }

        pub(in crate::plugins) fn event(e: &d::ReleaseEvent) -> WitReleaseEvent {
            WitReleaseEvent {
                kind: e.kind.clone(),
                message: e.message.clone(),
                at_ms: e.at_ms,
            }
        }
    };
}

/// `greenlight:plugin@0.1.0`.
pub(super) mod v1 {
    use crate::plugins::bindings::{deployer, notifier, precheck, traffic};

    conversions!(
        crate::plugins::bindings::types,
        precheck::exports::greenlight::plugin0_1_0::precheck,
        deployer::exports::greenlight::plugin0_1_0::deployer,
        traffic::exports::greenlight::plugin0_1_0::traffic,
        notifier::exports::greenlight::plugin0_1_0::notifier;
        context: |c| {}
    );

    /// A metric as 0.1.0 has it: a name and a value, no evidence.
    fn metric_to_wit(m: &d::Metric) -> wit::Metric {
        wit::Metric {
            name: m.name.clone(),
            value: m.value,
        }
    }

    fn metric_from_wit(m: wit::Metric) -> d::Metric {
        d::Metric::new(m.name, m.value)
    }

    /// Targets as 0.1.0 has them: without attributes.
    pub(in crate::plugins) fn targets(ts: &[d::Target]) -> Vec<wit::Target> {
        ts.iter()
            .map(|t| wit::Target {
                id: t.id.clone(),
                address: t.address.clone(),
                group: t.group.clone(),
                labels: t.labels.clone(),
            })
            .collect()
    }

    /// A deploy's or a rollback's answer: 0.1.0 work is done when it
    /// returns.
    pub(in crate::plugins) fn work(r: Result<Vec<WitTargetResult>, wit::PluginError>) -> d::Output {
        d::Output::Targets(r.map(target_results_of).map_err(fault))
    }

    /// A traffic shift's answer: 0.1.0 shifts are done when they return.
    pub(in crate::plugins) fn shifted(r: Result<(), wit::PluginError>) -> d::Output {
        d::Output::Done(r.map_err(fault))
    }
}

/// `greenlight:plugin@0.2.0`: targets carry attributes, and deploys,
/// rollbacks and traffic shifts may answer that they are in progress.
pub(super) mod v2 {
    use crate::plugins::bindings::{deployer_v2, notifier_v2, precheck_v2, traffic_v2};

    conversions!(
        crate::plugins::bindings::v2::types,
        precheck_v2::exports::greenlight::plugin0_2_0::precheck,
        deployer_v2::exports::greenlight::plugin0_2_0::deployer,
        traffic_v2::exports::greenlight::plugin0_2_0::traffic,
        notifier_v2::exports::greenlight::plugin0_2_0::notifier;
        context: |c| { deployed_at_ms: c.deployed_at_ms, }
    );

    fn metric_to_wit(m: &d::Metric) -> wit::Metric {
        wit::Metric {
            name: m.name.clone(),
            value: m.value,
            baseline: m.baseline,
            samples: m.samples,
            baseline_samples: m.baseline_samples,
            allowed_low: m.allowed_low,
            allowed_high: m.allowed_high,
            status: m.status.map(status_to_wit),
            detail: m.detail.clone(),
        }
    }

    fn metric_from_wit(m: wit::Metric) -> d::Metric {
        d::Metric {
            name: m.name,
            value: m.value,
            baseline: m.baseline,
            samples: m.samples,
            baseline_samples: m.baseline_samples,
            allowed_low: m.allowed_low,
            allowed_high: m.allowed_high,
            status: m.status.map(status_from_wit),
            detail: m.detail,
        }
    }

    pub(in crate::plugins) fn targets(ts: &[d::Target]) -> Vec<wit::Target> {
        ts.iter()
            .map(|t| wit::Target {
                id: t.id.clone(),
                address: t.address.clone(),
                group: t.group.clone(),
                labels: t.labels.clone(),
                attributes: t.attributes.clone(),
            })
            .collect()
    }

    fn progress(p: wit::Progress) -> d::Progress {
        d::Progress {
            note: p.note,
            ask_again_after_ms: p.ask_again_after_ms,
        }
    }

    /// A deploy's or a rollback's answer: done with each target's result,
    /// or still in progress.
    pub(in crate::plugins) fn work(r: Result<deployer_iface::Work, wit::PluginError>) -> d::Output {
        match r {
            Ok(deployer_iface::Work::Done(results)) => {
                d::Output::Targets(Ok(target_results_of(results)))
            }
            Ok(deployer_iface::Work::InProgress(p)) => d::Output::InProgress(progress(p)),
            Err(e) => d::Output::Targets(Err(fault(e))),
        }
    }

    /// A traffic shift's answer: done, or still being applied.
    pub(in crate::plugins) fn shifted(
        r: Result<traffic_iface::Shift, wit::PluginError>,
    ) -> d::Output {
        match r {
            Ok(traffic_iface::Shift::Done) => d::Output::Done(Ok(())),
            Ok(traffic_iface::Shift::InProgress(p)) => d::Output::InProgress(progress(p)),
            Err(e) => d::Output::Done(Err(fault(e))),
        }
    }
}
