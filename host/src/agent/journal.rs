//! The agent's journal: every operation key and the last step completed
//! under it, the step under way, whether the host is in the traffic, the
//! service process it runs, and each version it installed. Written whole
//! to a new file, synced and renamed over the old one before a step is
//! acknowledged, so that a crash at any moment leaves either the old
//! journal or the new one, and a restarted agent resumes where it stood.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Operation keys remembered; the oldest go first. A release's retries
/// come within minutes, so thousands is ample.
const KEYS_KEPT: usize = 2_000;

/// Installs remembered, for `GET /agent/status`.
const INSTALLS_KEPT: usize = 200;

/// A step of the agent API, in the order they are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Drained,
    Deployed,
    Enabled,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Drained => "drained",
            Step::Deployed => "deployed",
            Step::Enabled => "enabled",
        }
    }
}

/// What the agent knows of one operation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub key: String,
    pub version: String,
    /// `deploy` or `rollback`.
    pub operation: String,
    /// The last step completed under the key, if any.
    pub step: Option<Step>,
    /// Why the last step tried under the key failed, until one succeeds.
    pub error: Option<String>,
    pub at_ms: u64,
}

/// A deploy under way: written before anything changes on disk, cleared
/// once the version runs, so that an agent killed in between finishes it
/// when it starts again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeploy {
    pub key: String,
    pub version: String,
    pub operation: String,
}

/// The service process the agent started, found again after a restart by
/// its pid and its start time (so that a reused pid is not mistaken for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProcess {
    pub pid: i32,
    pub start_ticks: u64,
    pub version: String,
}

/// One version put in place and started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    pub version: String,
    pub key: String,
    pub operation: String,
    pub at_ms: u64,
}

/// Everything the agent must not forget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalState {
    /// Whether the host is in the traffic, as far as the agent put it.
    pub in_rotation: bool,
    pub pending: Option<PendingDeploy>,
    pub service: Option<ServiceProcess>,
    pub operations: Vec<OperationRecord>,
    pub installs: Vec<Install>,
}

impl JournalState {
    pub fn operation(&self, key: &str) -> Option<&OperationRecord> {
        self.operations.iter().rev().find(|o| o.key == key)
    }

    /// Records `step` (or a failure) under `key`.
    pub fn record(
        &mut self,
        key: &str,
        version: &str,
        operation: &str,
        outcome: Result<Step, String>,
        at_ms: u64,
    ) {
        let index = match self.operations.iter().position(|o| o.key == key) {
            Some(i) => i,
            None => {
                self.operations.push(OperationRecord {
                    key: key.into(),
                    version: version.into(),
                    operation: operation.into(),
                    step: None,
                    error: None,
                    at_ms,
                });
                if self.operations.len() > KEYS_KEPT {
                    self.operations.remove(0);
                }
                self.operations.len() - 1
            }
        };
        let record = &mut self.operations[index];
        record.at_ms = at_ms;
        match outcome {
            Ok(step) => {
                record.step = Some(record.step.map_or(step, |s| s.max(step)));
                record.error = None;
            }
            Err(e) => record.error = Some(e),
        }
    }

    pub fn installed(&mut self, install: Install) {
        self.installs.push(install);
        if self.installs.len() > INSTALLS_KEPT {
            self.installs.remove(0);
        }
    }
}

/// Why the journal cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal {path} is damaged ({message}); move it aside to start afresh")]
    Damaged { path: PathBuf, message: String },
    #[error("cannot write the journal {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The journal file.
pub struct Journal {
    path: PathBuf,
}

/// The version tag of the stored form.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    #[serde(flatten)]
    state: JournalState,
}

const FORMAT: u32 = 1;

impl Journal {
    /// The journal in `dir`.
    pub fn new(dir: &Path) -> Journal {
        Journal {
            path: dir.join("journal.json"),
        }
    }

    /// Whether a journal was ever written.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// What was last written; a fresh state when there is no journal yet.
    pub fn load(&self) -> Result<JournalState, JournalError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(JournalState::default());
            }
            Err(source) => {
                return Err(JournalError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| JournalError::Damaged {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if stored.format != FORMAT {
            return Err(JournalError::Damaged {
                path: self.path.clone(),
                message: format!("format {} is not {FORMAT}", stored.format),
            });
        }
        Ok(stored.state)
    }

    /// Replaces the journal with `state`, durably: written to a new file,
    /// synced, renamed over the old one, and the directory synced.
    pub fn save(&self, state: &JournalState) -> Result<(), JournalError> {
        let fail = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        let stored = Stored {
            format: FORMAT,
            state: state.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| fail(e.into()))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.as_file().sync_all().map_err(fail)?;
        file.persist(&self.path).map_err(|e| fail(e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_only_move_forward_and_failures_are_kept_until_a_step_succeeds() {
        let mut s = JournalState::default();
        s.record("k", "2.0.0", "deploy", Ok(Step::Deployed), 1);
        s.record("k", "2.0.0", "deploy", Ok(Step::Drained), 2);
        assert_eq!(s.operation("k").unwrap().step, Some(Step::Deployed));
        s.record("k", "2.0.0", "deploy", Err("unhealthy".into()), 3);
        assert_eq!(
            s.operation("k").unwrap().error.as_deref(),
            Some("unhealthy")
        );
        s.record("k", "2.0.0", "deploy", Ok(Step::Enabled), 4);
        let op = s.operation("k").unwrap();
        assert_eq!((op.step, op.error.as_deref()), (Some(Step::Enabled), None));
    }

    #[test]
    fn the_journal_survives_a_reload_and_refuses_damage_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path());
        assert_eq!(journal.load().unwrap(), JournalState::default());
        let mut s = JournalState {
            in_rotation: true,
            ..JournalState::default()
        };
        s.record("a:web-1", "2.0.0", "deploy", Ok(Step::Drained), 5);
        s.pending = Some(PendingDeploy {
            key: "a:web-1".into(),
            version: "2.0.0".into(),
            operation: "deploy".into(),
        });
        journal.save(&s).unwrap();
        assert_eq!(journal.load().unwrap(), s);
        std::fs::write(dir.path().join("journal.json"), b"{\"format\": 1, \"in_rot").unwrap();
        let e = journal.load().unwrap_err().to_string();
        assert!(e.contains("journal.json is damaged"), "{e}");
        assert!(e.contains("move it aside"), "{e}");
    }

    #[test]
    fn old_keys_are_forgotten_past_the_bound() {
        let mut s = JournalState::default();
        for i in 0..KEYS_KEPT + 5 {
            s.record(&format!("k{i}"), "1", "deploy", Ok(Step::Drained), 0);
        }
        assert_eq!(s.operations.len(), KEYS_KEPT);
        assert!(s.operation("k0").is_none());
        assert!(s.operation(&format!("k{}", KEYS_KEPT + 4)).is_some());
    }
}
