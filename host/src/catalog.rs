//! The flow catalog: applying flow files, checking that every plugin they
//! name exists and is of the kind its place needs, and keeping each version.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::flow::{Flow, FlowError, join_errors};
use crate::domain::plan::{self, Plan};
use crate::domain::plugin::Target;
use crate::flowfile;
use crate::registry::{self, Registry};
use crate::store::{self, FlowRecord, Store};

/// Why a flow was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", join_errors(.0))]
    Invalid(Vec<FlowError>),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The flow catalog; cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    registry: Registry,
    clock: Arc<dyn Clock>,
}

impl Catalog {
    pub fn new(store: Store, registry: Registry, clock: Arc<dyn Clock>) -> Catalog {
        Catalog {
            store,
            registry,
            clock,
        }
    }

    /// Validates a flow file and stores it as a new version. Applying the
    /// same text again is harmless; other text under an existing version is
    /// a conflict.
    pub fn apply(&self, source: &str, applied_by: &str) -> Result<(Flow, bool), Error> {
        let flow = flowfile::parse(source).map_err(Error::Invalid)?;
        self.check_plugins(&flow)?;
        let record = FlowRecord {
            name: flow.name.clone(),
            version: flow.version,
            source: source.to_string(),
            applied_at_ms: self.clock.now_ms(),
            applied_by: applied_by.to_string(),
        };
        match self.store.put_flow(&record)? {
            None => {
                tracing::info!(flow = %flow.name, version = flow.version, "Flow applied.");
                Ok((flow, true))
            }
            Some(existing) if existing.source == source => Ok((flow, false)),
            Some(_) => Err(Error::Conflict(format!(
                "flow {}@{} already exists with other content; flows are versioned, so raise `version`",
                flow.name, flow.version
            ))),
        }
    }

    /// Validates a flow file without applying it: every problem named by
    /// its field, every plugin it names checked.
    pub fn check(&self, source: &str) -> Result<Flow, Error> {
        let flow = flowfile::parse(source).map_err(Error::Invalid)?;
        self.check_plugins(&flow)?;
        Ok(flow)
    }

    /// Every plugin the flow names must exist (at the version named, or any
    /// version for `latest`) and be of the kind its place needs.
    fn check_plugins(&self, flow: &Flow) -> Result<(), Error> {
        let mut errors = Vec::new();
        for (path, role, used) in flow.plugin_uses() {
            let path = format!("{path}.plugin");
            match self.registry.version(&used.plugin, &used.version) {
                Ok(record) if record.kind == role.kind().as_str() => {}
                Ok(record) => errors.push(FlowError::new(
                    path,
                    format!(
                        "`{}` is a {} plugin; a {} plugin is needed here",
                        used.plugin,
                        record.kind,
                        role.kind()
                    ),
                )),
                Err(registry::Error::NotFound(message)) => {
                    errors.push(FlowError::new(path, message))
                }
                Err(other) => {
                    return Err(Error::Store(store::Error::Corrupt {
                        tree: "plugins",
                        key: used.plugin.clone(),
                        problem: other.to_string(),
                    }));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Every applied flow version.
    pub fn list(&self) -> Result<Vec<FlowRecord>, Error> {
        Ok(self.store.flows()?)
    }

    /// The latest version of every flow, parsed, by name.
    pub fn latest_flows(&self) -> Result<Vec<Flow>, Error> {
        let mut names: Vec<String> = self.list()?.into_iter().map(|r| r.name).collect();
        names.dedup();
        names.iter().map(|name| self.flow(name, None)).collect()
    }

    /// The names of the flows whose latest version uses a plugin.
    pub fn flows_using(&self, plugin: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .latest_flows()?
            .into_iter()
            .filter(|flow| {
                flow.plugin_uses()
                    .iter()
                    .any(|(_, _, u)| u.plugin == plugin)
            })
            .map(|flow| flow.name)
            .collect())
    }

    /// A flow version, parsed; `None` names the latest.
    pub fn flow(&self, name: &str, version: Option<u32>) -> Result<Flow, Error> {
        let record = match version {
            Some(v) => self
                .store
                .flow(name, v)?
                .ok_or_else(|| Error::NotFound(format!("no flow `{name}@{v}`")))?,
            None => self
                .versions(name)?
                .pop()
                .ok_or_else(|| Error::NotFound(format!("no flow named `{name}`")))?,
        };
        flowfile::parse(&record.source).map_err(|errors| {
            Error::Store(store::Error::Corrupt {
                tree: "flows",
                key: format!("{}@{}", record.name, record.version),
                problem: join_errors(&errors),
            })
        })
    }

    /// Plans a release of a flow over these targets without running it.
    pub fn plan(
        &self,
        name: &str,
        version: Option<u32>,
        targets: &[Target],
        live_group: Option<&str>,
    ) -> Result<Plan, Error> {
        let flow = self.flow(name, version)?;
        plan::plan(&flow, targets, live_group).map_err(|e| Error::Invalid(vec![e]))
    }

    /// The versions of one flow, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<FlowRecord>, Error> {
        let versions = self.store.flow_versions(name)?;
        if versions.is_empty() {
            return Err(Error::NotFound(format!("no flow named `{name}`")));
        }
        Ok(versions)
    }
}
