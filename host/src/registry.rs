//! The plugin registry: uploads, versions, grants, and the loaded plugins
//! the runtime invokes. It joins the store (what is kept) and the runtime
//! (what runs); neither knows the other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::domain::flow::Rule;
use crate::domain::grant::{Grant, GrantEdit, Origin};
use crate::domain::plugin::Call;
use crate::plugins::{
    self, Denial, Fix, Invocation, InvokeError, LoadedPlugin, Runtime, Tape, Taped,
};
use crate::store::{self, PluginRecord, PutOutcome, Store};

/// Why a registry operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    BadVersion(String),
    #[error("{0}")]
    BadGrant(String),
    /// A grant's limit above the bounds this daemon's configuration sets.
    #[error("{0}")]
    GrantAboveBounds(String),
    /// A grant's TLS settings that cannot be used (an origin not allowed,
    /// a PEM that does not parse, a certificate and key that differ).
    #[error("{0}")]
    GrantTlsUnusable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A plugin-author publishing under a name it does not own.
    #[error("{0}")]
    NotOwner(String),
    /// A version no admin has approved, asked to run in a release.
    #[error("{0}")]
    NotApproved(String),
    #[error(transparent)]
    Plugin(#[from] plugins::Error),
    #[error(transparent)]
    Store(store::Error),
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        match e {
            store::Error::Conflict(message) => Error::Conflict(message),
            store::Error::NotOwner(message) => Error::NotOwner(message),
            other => Error::Store(other),
        }
    }
}

/// A plugin version's loaded component. Only a success is kept: a failed
/// load (bytes missing, the store failing for a moment) is tried again by
/// the next caller rather than pinning the version as failed until restart.
type LoadCell = Arc<OnceCell<LoadedPlugin>>;

/// The plugin registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    runtime: Runtime,
    clock: Arc<dyn Clock>,
    /// Loaded plugins by name, then version.
    loaded: Arc<Mutex<HashMap<String, HashMap<String, LoadCell>>>>,
    grants: Arc<RwLock<HashMap<String, Arc<Grant>>>>,
    /// Held while a grant is read, changed and written, so that two edits
    /// at once both land.
    grant_writes: Arc<Mutex<()>>,
    /// Versions known to be approved (`name@version`).
    approved: Arc<Mutex<HashSet<String>>>,
    /// Compiling uses every core; one compile at a time keeps the daemon
    /// responsive while a large component compiles.
    compiles: Arc<Semaphore>,
    /// Turns to read and store an upload (`max_concurrent_uploads`).
    uploads: Arc<Semaphore>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Who publishes a plugin version: the caller's token name, and whether it
/// is an admin's.
#[derive(Debug, Clone, Copy)]
pub struct Publisher<'a> {
    pub name: &'a str,
    pub admin: bool,
}

impl<'a> Publisher<'a> {
    /// An admin publishing: tests, benchmarks and the demo's own plugins.
    pub fn admin(name: &'a str) -> Publisher<'a> {
        Publisher { name, admin: true }
    }
}

/// Checks a plugin name: the one rule every name follows
/// (`domain::name`).
pub fn validate_name(name: &str) -> Result<(), Error> {
    crate::domain::name::check_name("name", name).map_err(|e| Error::BadName(e.to_string()))
}

/// Checks a version: semantic versioning, such as `1.2.0`.
pub fn validate_version(version: &str) -> Result<semver::Version, Error> {
    semver::Version::parse(version).map_err(|e| {
        Error::BadVersion(format!(
            "version `{version}` is not a semantic version (such as 1.2.0): {e}"
        ))
    })
}

/// The digest a component is known by.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    pub fn new(store: Store, runtime: Runtime, clock: Arc<dyn Clock>) -> Registry {
        let upload_turns = runtime.options().max_concurrent_uploads.max(1) as usize;
        Registry {
            store,
            runtime,
            clock,
            loaded: Default::default(),
            grants: Default::default(),
            grant_writes: Default::default(),
            approved: Default::default(),
            compiles: Arc::new(Semaphore::new(1)),
            uploads: Arc::new(Semaphore::new(upload_turns)),
            metrics: Arc::default(),
        }
    }

    /// The daemon's metrics, which every invocation feeds.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Waits for a turn to read and store an upload: at most
    /// `max_concurrent_uploads` bodies are held in memory at once, however
    /// many are sent; the rest wait unread.
    pub async fn upload_turn(&self) -> Option<OwnedSemaphorePermit> {
        self.uploads.clone().acquire_owned().await.ok()
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Validates, compiles and stores a plugin version. Uploading the same
    /// bytes again is harmless; other bytes under an existing version are a
    /// conflict, refused before anything is compiled or stored. Only the
    /// plugin's owners and admins publish under its name; an admin's upload
    /// is approved as it is stored, anyone else's waits for an admin.
    #[tracing::instrument(skip(self, bytes), fields(size = bytes.len()))]
    pub async fn upload(
        &self,
        name: &str,
        version: &str,
        bytes: Vec<u8>,
        publisher: Publisher<'_>,
    ) -> Result<(PluginRecord, PutOutcome), Error> {
        validate_name(name)?;
        let version = validate_version(version)?.to_string();
        self.runtime.precheck_bytes(&bytes)?;
        let digest = digest(&bytes);
        if let Some(existing) = self.store.plugin(name, &version)? {
            if existing.digest == digest {
                return Ok((existing, PutOutcome::Unchanged));
            }
            return Err(Error::Conflict(format!(
                "{name}@{version} already exists with digest {}; versions are immutable, upload under a new version",
                existing.digest
            )));
        }
        let bytes: Arc<[u8]> = bytes.into();
        let loaded = {
            let _permit = self.compiles.acquire().await.ok();
            self.runtime.load(bytes.clone()).await?
        };
        let record = PluginRecord {
            name: name.to_string(),
            version: version.clone(),
            digest,
            kind: loaded.kind().as_str().to_string(),
            size_bytes: bytes.len() as u64,
            imports: loaded.imports().to_vec(),
            uploaded_at_ms: self.clock.now_ms(),
            uploaded_by: publisher.name.to_string(),
            stack_bytes: loaded.stack_bytes(),
            approval: publisher.admin.then(|| store::Approval {
                by: publisher.name.to_string(),
                at_ms: self.clock.now_ms(),
            }),
        };
        let outcome = self.store.put_plugin(&record, &bytes, publisher.admin)?;
        // A cell set meanwhile holds the same component, compiled from the
        // same bytes, so either one serves.
        let _ = self.cell(name, &version).set(loaded);
        tracing::info!(plugin = name, %version, kind = %record.kind, "Plugin uploaded.");
        Ok((record, outcome))
    }

    /// Lets a version run under the plugin's grant and be picked by flows
    /// that name no version. Approving twice keeps the first approval.
    pub fn approve(&self, name: &str, version: &str, by: &str) -> Result<PluginRecord, Error> {
        let version = validate_version(version)?.to_string();
        let approval = store::Approval {
            by: by.to_string(),
            at_ms: self.clock.now_ms(),
        };
        let record = self
            .store
            .approve_plugin(name, &version, &approval)?
            .ok_or_else(|| Error::NotFound(format!("no plugin `{name}@{version}`")))?;
        tracing::info!(plugin = name, %version, by, "Plugin version approved.");
        Ok(record)
    }

    /// Who may publish under a plugin's name.
    pub fn owners(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self.store.plugin_owners(name)?)
    }

    /// Replaces a plugin's owners (token names).
    pub fn set_owners(&self, name: &str, owners: &[String]) -> Result<Vec<String>, Error> {
        if !self.store.has_plugin(name)? {
            return Err(Error::NotFound(format!("no plugin named `{name}`")));
        }
        if owners.is_empty() {
            return Err(Error::BadName(
                "owners: a plugin needs at least one owner; admins publish under any name anyway"
                    .to_string(),
            ));
        }
        for (i, owner) in owners.iter().enumerate() {
            crate::domain::name::check_name(format!("owners[{i}]"), owner)
                .map_err(|e| Error::BadName(e.to_string()))?;
        }
        let mut owners = owners.to_vec();
        owners.sort();
        owners.dedup();
        self.store.set_plugin_owners(name, &owners)?;
        tracing::info!(plugin = name, owners = ?owners, "Plugin owners set.");
        Ok(owners)
    }

    /// The exact version a release runs for a flow's plugin use: the highest
    /// approved version for `latest`, or the named version once approved.
    pub fn release_version(&self, name: &str, version: &str) -> Result<String, Error> {
        if version == "latest" {
            return self
                .versions(name)?
                .into_iter()
                .rev()
                .find(|r| r.approval.is_some())
                .map(|r| r.version)
                .ok_or_else(|| {
                    Error::NotApproved(format!(
                        "no version of plugin `{name}` is approved yet; an admin approves one with `greenlight plugin approve {name} VERSION`"
                    ))
                });
        }
        let record = self.version(name, version)?;
        if record.approval.is_none() {
            return Err(Error::NotApproved(format!(
                "plugin `{name}@{version}` is not approved yet; an admin approves it with `greenlight plugin approve {name} {version}`"
            )));
        }
        Ok(record.version)
    }

    /// Every plugin version.
    pub fn list(&self) -> Result<Vec<PluginRecord>, Error> {
        Ok(self.store.plugins()?)
    }

    /// Every version of one plugin, oldest first; an error if there is none.
    pub fn versions(&self, name: &str) -> Result<Vec<PluginRecord>, Error> {
        let mut versions = self.store.plugin_versions(name)?;
        if versions.is_empty() {
            return Err(Error::NotFound(format!("no plugin named `{name}`")));
        }
        versions.sort_by_key(|r| semver::Version::parse(&r.version).ok());
        Ok(versions)
    }

    /// One version; `latest` names the highest.
    pub fn version(&self, name: &str, version: &str) -> Result<PluginRecord, Error> {
        if version == "latest" {
            return self
                .versions(name)?
                .pop()
                .ok_or_else(|| Error::NotFound(format!("no plugin named `{name}`")));
        }
        self.store
            .plugin(name, version)?
            .ok_or_else(|| Error::NotFound(format!("no plugin `{name}@{version}`")))
    }

    /// A plugin's grant.
    pub fn grant(&self, name: &str) -> Result<Arc<Grant>, Error> {
        if let Some(g) = self.grants.read().ok().and_then(|g| g.get(name).cloned()) {
            return Ok(g);
        }
        let grant = Arc::new(self.store.grant(name)?);
        if let Ok(mut cache) = self.grants.write() {
            cache.insert(name.to_string(), grant.clone());
        }
        Ok(grant)
    }

    /// Replaces a plugin's grant after checking it against the daemon's bounds.
    pub fn set_grant(&self, name: &str, grant: Grant) -> Result<Arc<Grant>, Error> {
        let _writing = self.grant_writes.lock().unwrap_or_else(|e| e.into_inner());
        self.require_plugin(name)?;
        self.store_grant(name, grant)
    }

    /// Changes a plugin's grant as `edit` says, keeping everything it does
    /// not name (secrets included), and checks the result as a new grant.
    pub fn edit_grant(&self, name: &str, edit: &GrantEdit) -> Result<Arc<Grant>, Error> {
        let _writing = self.grant_writes.lock().unwrap_or_else(|e| e.into_inner());
        self.require_plugin(name)?;
        let grant = edit
            .apply(&self.store.grant(name)?)
            .map_err(Error::BadGrant)?;
        self.store_grant(name, grant)
    }

    /// A not-found error unless a plugin of this name exists. Whether it
    /// exists is all a grant needs; reading every version of a plugin with
    /// hundreds of them made grants slow.
    fn require_plugin(&self, name: &str) -> Result<(), Error> {
        if self.store.has_plugin(name)? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no plugin named `{name}`")))
        }
    }

    /// Checks a grant against the daemon's bounds and writes it; the caller
    /// holds `grant_writes` and has checked that the plugin exists.
    fn store_grant(&self, name: &str, grant: Grant) -> Result<Arc<Grant>, Error> {
        grant
            .limits
            .validate(&self.runtime.options().limit_bounds())
            .map_err(|e| match e.rule {
                Rule::Stated => Error::BadGrant(e.to_string()),
                _ => Error::GrantAboveBounds(e.to_string()),
            })?;
        grant.check_tls().map_err(Error::GrantTlsUnusable)?;
        for (i, entry) in grant.tls.iter().enumerate() {
            plugins::tls::client_config(entry, &grant.secrets)
                .map_err(|problem| Error::GrantTlsUnusable(format!("tls[{i}]: {problem}")))?;
        }
        self.store.set_grant(name, &grant)?;
        let grant = Arc::new(grant);
        if let Ok(mut cache) = self.grants.write() {
            cache.insert(name.to_string(), grant.clone());
        }
        tracing::info!(
            plugin = name,
            hosts = grant.allowed_hosts.len(),
            release_targets = grant.release_targets,
            "Grant updated."
        );
        Ok(grant)
    }

    /// The grant a call runs under: the plugin's, and when it allows its
    /// releases' targets, the origins of the targets the inventory lists
    /// for the call's application and environment now.
    fn grant_for(&self, name: &str, call: &Call) -> Result<Arc<Grant>, Error> {
        let grant = self.grant(name)?;
        if !grant.release_targets {
            return Ok(grant);
        }
        let ctx = call.context();
        Ok(
            match self.store.environment(&ctx.application, &ctx.environment)? {
                Some(environment) => Arc::new(grant.reaching(&environment.targets)),
                None => grant,
            },
        )
    }

    /// The target of the call's environment whose address a refused
    /// request went to, if it went to one.
    fn target_at(
        &self,
        application: &str,
        environment: &str,
        denial: Option<&Denial>,
    ) -> Option<String> {
        let Some(Denial::NotGranted(origin)) = denial else {
            return None;
        };
        let origin = Origin::parse(origin).ok()?;
        let environment = self.store.environment(application, environment).ok()??;
        environment
            .targets
            .into_iter()
            .find(|t| Origin::of_address(&t.address).as_ref() == Some(&origin))
            .map(|t| t.id)
    }

    fn cell(&self, name: &str, version: &str) -> LoadCell {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .entry(name.to_string())
            .or_default()
            .entry(version.to_string())
            .or_default()
            .clone()
    }

    /// The plugin for an exact version known to be approved, if it is
    /// loaded already: the fast path of every invocation after the first,
    /// which reads nothing from the store. An approval is never taken
    /// back, so once seen it is remembered.
    fn ready_and_approved(&self, name: &str, version: &str) -> Option<LoadedPlugin> {
        let approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        if !approved.contains(&format!("{name}@{version}")) {
            return None;
        }
        drop(approved);
        self.ready(name, version)
    }

    fn remember_approved(&self, name: &str, version: &str) {
        let mut approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        approved.insert(format!("{name}@{version}"));
    }

    /// The plugin for an exact version if it is loaded already.
    fn ready(&self, name: &str, version: &str) -> Option<LoadedPlugin> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.get(name)?.get(version)?.get().cloned()
    }

    /// The loaded plugin for a version, loading it from the store (from its
    /// compiled artifact when there is one) the first time it succeeds.
    /// Callers arriving during a load wait for it; if it fails, the next
    /// caller loads again.
    pub async fn loaded(&self, record: &PluginRecord) -> Result<LoadedPlugin, Error> {
        let corrupt = |problem: String| {
            Error::Store(store::Error::Corrupt {
                tree: "plugins",
                key: format!("{}@{}", record.name, record.version),
                problem,
            })
        };
        let cell = self.cell(&record.name, &record.version);
        let plugin = cell
            .get_or_try_init(|| async {
                let bytes = self.store.blob(&record.digest)?.ok_or_else(|| {
                    corrupt(format!("the bytes of {} are missing", record.digest))
                })?;
                let _permit = self.compiles.acquire().await.ok();
                self.runtime
                    .load(bytes.into())
                    .await
                    .map_err(|e| corrupt(e.to_string()))
            })
            .await?;
        Ok(plugin.clone())
    }

    /// Loads every stored plugin, so the first invocation after a restart
    /// does not wait. Failures are logged, not fatal.
    pub async fn warm(&self) {
        let records = match self.list() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "Cannot list plugins to load them.");
                return;
            }
        };
        for record in records {
            if let Err(e) = self.loaded(&record).await {
                tracing::error!(plugin = %record.name, version = %record.version, error = %e, "Cannot load plugin.");
            }
        }
        let stats = self.runtime.stats();
        tracing::info!(
            cached = stats.artifact_cache_hits,
            compiled = stats.artifact_cache_misses,
            "Plugins loaded."
        );
    }

    /// Invokes a plugin version under its grant; a version no admin has
    /// approved runs under the empty grant (no hosts, no configuration, no
    /// secrets, the default limits).
    pub async fn invoke(
        &self,
        name: &str,
        version: &str,
        call: Call,
    ) -> Result<Result<Invocation, InvokeError>, Error> {
        let (result, _) = self.invoke_taped(name, version, call, Tape::Live).await?;
        Ok(result)
    }

    /// [`Registry::invoke`], recording what the call sees of the world or
    /// answering it from a recording, as `tape` says.
    pub async fn invoke_taped(
        &self,
        name: &str,
        version: &str,
        call: Call,
        tape: Tape,
    ) -> Result<(Result<Invocation, InvokeError>, Taped), Error> {
        // The version that runs, as the store names it: `latest` resolved.
        let (plugin, approved, resolved) = match self.ready_and_approved(name, version) {
            Some(plugin) => (plugin, true, version.to_string()),
            None => {
                let record = self.version(name, version)?;
                let plugin = match self.ready(name, &record.version) {
                    Some(plugin) => plugin,
                    None => self.loaded(&record).await?,
                };
                let approved = record.approval.is_some();
                if approved {
                    self.remember_approved(name, &record.version);
                }
                (plugin, approved, record.version)
            }
        };
        let grant = if approved {
            self.grant_for(name, &call)?
        } else {
            Arc::new(Grant::default())
        };
        // Where the call runs, to name the target a refused request went to.
        let place = (
            call.context().application.clone(),
            call.context().environment.clone(),
        );
        let (mut result, taped) = self
            .runtime
            .invoke_taped(&plugin, name, grant, call, tape)
            .await;
        if let Err(e) = &mut result
            && e.denial.is_some()
        {
            let fix = if approved {
                Fix::Daemon {
                    target: self.target_at(&place.0, &place.1, e.denial.as_deref()),
                }
            } else {
                Fix::Unapproved { version: resolved }
            };
            e.name_fix(name, &fix);
        }
        let (outcome, duration) = match &result {
            Ok(invocation) => ("ok", invocation.duration),
            Err(e) => (e.kind.code(), e.duration),
        };
        self.metrics
            .invocation(name, outcome, duration.as_secs_f64());
        Ok((result, taped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["probe", "http-health", "a.b_c", "9lives"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Probe", "-x", "a/b", "a\0b", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn uploads_take_turns_and_a_turn_passes_on_when_it_ends() {
        use futures_util::FutureExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(0));
        let options = plugins::Options {
            max_concurrent_uploads: 2,
            pooling: false,
            ..Default::default()
        };
        let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone()).unwrap();
        let registry = Registry::new(store, runtime, clock);
        let first = registry.upload_turn().now_or_never().flatten();
        let second = registry.upload_turn().now_or_never().flatten();
        assert!(first.is_some() && second.is_some(), "two turns at once");
        assert!(
            registry.upload_turn().now_or_never().is_none(),
            "a third upload waits, its body unread"
        );
        drop(first);
        assert!(registry.upload_turn().now_or_never().flatten().is_some());
    }

    /// How many times the runtime was handed bytes to load: each load is
    /// either compiled or read from the artifact cache.
    fn loads(registry: &Registry) -> u64 {
        let stats = registry.runtime().stats();
        stats.artifact_cache_hits + stats.artifact_cache_misses
    }

    #[tokio::test]
    async fn a_failed_load_is_tried_again_and_a_success_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(0));
        let options = plugins::Options {
            artifact_dir: Some(dir.path().join("artifacts")),
            ..Default::default()
        };
        let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone()).unwrap();
        let registry = Registry::new(store.clone(), runtime, clock);
        let path = format!("{}/fixture_check.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let record = PluginRecord {
            name: "probe".into(),
            version: "1.0.0".into(),
            digest: digest(&bytes),
            kind: "check".into(),
            size_bytes: bytes.len() as u64,
            imports: Vec::new(),
            uploaded_at_ms: 0,
            uploaded_by: "test".into(),
            stack_bytes: None,
            approval: None,
        };

        // The component's bytes are not in the store yet.
        let err = registry.loaded(&record).await.unwrap_err().to_string();
        assert!(err.contains("are missing"), "{err}");
        assert!(registry.ready("probe", "1.0.0").is_none());
        assert_eq!(loads(&registry), 0);

        store.put_plugin(&record, &bytes, true).unwrap();
        let plugin = registry.loaded(&record).await.unwrap();
        assert_eq!(plugin.kind().as_str(), "check");
        assert_eq!(loads(&registry), 1);

        // Loaded once, served from then on without loading again.
        registry.loaded(&record).await.unwrap();
        assert!(registry.ready("probe", "1.0.0").is_some());
        assert_eq!(loads(&registry), 1);
    }

    #[test]
    fn versions_must_be_semver() {
        assert!(validate_version("1.2.0").is_ok());
        let err = validate_version("v1").unwrap_err().to_string();
        assert!(err.contains("not a semantic version"), "{err}");
    }
}
