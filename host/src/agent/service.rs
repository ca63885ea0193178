//! Running the service: through systemd (`systemctl start`/`stop`), or as
//! a command the agent starts itself in its own process group, with its
//! output appended to a log file, stopped with SIGTERM and, after a grace
//! period, SIGKILL. A command outlives the agent: an agent restarted finds
//! it again by its pid and start time, so a crash of the agent never takes
//! the service down.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process};

use super::config::{ServiceConfig, ServiceKind};
use super::journal::ServiceProcess;

/// How often a stopping process is looked at.
const POLL: Duration = Duration::from_millis(10);

/// How long systemctl and a SIGKILLed process get.
const HARD_LIMIT: Duration = Duration::from_secs(30);

/// Why the service could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot start `{command}`: {message}")]
    Start { command: String, message: String },
    #[error("cannot stop the service: {0}")]
    Stop(String),
    #[error("`systemctl {action} {unit}` failed: {message}")]
    Systemctl {
        action: String,
        unit: String,
        message: String,
    },
}

impl ServiceError {
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Start { .. } => "service.start_failed",
            ServiceError::Stop(_) => "service.stop_failed",
            ServiceError::Systemctl { .. } => "service.systemctl_failed",
        }
    }
}

/// The service of one agent.
pub struct Service {
    kind: ServiceKind,
    config: ServiceConfig,
    log_file: PathBuf,
    /// How the last command the agent started ended, if it has.
    exited: Arc<Mutex<Option<String>>>,
}

impl Service {
    pub fn new(kind: ServiceKind, config: ServiceConfig, log_file: PathBuf) -> Service {
        Service {
            kind,
            config,
            log_file,
            exited: Arc::default(),
        }
    }

    pub fn is_systemd(&self) -> bool {
        matches!(self.kind, ServiceKind::Systemd(_))
    }

    /// Starts `version`, unpacked in `dir`; for a command, the process to
    /// remember.
    pub async fn start(
        &self,
        version: &str,
        dir: &Path,
    ) -> Result<Option<ServiceProcess>, ServiceError> {
        match &self.kind {
            ServiceKind::Systemd(unit) => {
                // A version that crashed as it started may have used up the
                // unit's start limit (`StartLimitBurst`), and systemd would
                // then refuse to start the next one, a rollback's included.
                // Clearing it is harmless when there is none.
                let _ = systemctl("reset-failed", unit).await;
                systemctl("start", unit).await.map(|()| None)
            }
            ServiceKind::Command(command) => self.spawn(command, version, dir).map(Some),
        }
    }

    fn spawn(
        &self,
        command: &[String],
        version: &str,
        dir: &Path,
    ) -> Result<ServiceProcess, ServiceError> {
        let fail = |message: String| ServiceError::Start {
            command: command.join(" "),
            message,
        };
        let program = Path::new(&command[0]);
        let program = if program.is_relative() && command[0].contains('/') {
            dir.join(program)
        } else {
            program.to_path_buf()
        };
        if let Some(parent) = self.log_file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .map_err(|e| fail(format!("cannot open {}: {e}", self.log_file.display())))?;
        let err_log = log.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut child = tokio::process::Command::new(&program)
            .args(&command[1..])
            .current_dir(dir)
            .envs(&self.config.env)
            .env("GREENLIGHT_VERSION", version)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            // Its own process group: signals to the agent's group (a
            // terminal's Ctrl-C, a kill of the agent) do not reach it.
            .process_group(0)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let pid = child.id().ok_or_else(|| fail("it exited at once".into()))? as i32;
        let start_ticks = start_ticks(pid).ok_or_else(|| fail("it exited at once".into()))?;
        let exited = self.exited.clone();
        *exited.lock().unwrap_or_else(|e| e.into_inner()) = None;
        // Reaps the process when it ends, and keeps how it ended for the
        // health answer.
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => e.to_string(),
            };
            *exited.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
        });
        Ok(ServiceProcess {
            pid,
            start_ticks,
            version: version.into(),
        })
    }

    /// Whether the service runs: `known` is the process the journal
    /// remembers (for a command).
    pub async fn running(&self, known: Option<&ServiceProcess>) -> bool {
        match &self.kind {
            ServiceKind::Systemd(unit) => systemctl("is-active", unit).await.is_ok(),
            ServiceKind::Command(_) => known.is_some_and(alive),
        }
    }

    /// Why the service is not running, for the health answer: the unit's
    /// state, or how the command ended and where its output went.
    pub async fn why_not_running(&self) -> String {
        match &self.kind {
            ServiceKind::Systemd(unit) => {
                let state = tokio::process::Command::new("systemctl")
                    .args(["is-active", unit])
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .output();
                let state = match tokio::time::timeout(HARD_LIMIT, state).await {
                    Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
                    _ => "unknown".into(),
                };
                format!("{unit} is {state}; see `systemctl status {unit}`")
            }
            ServiceKind::Command(_) => match self.exit_status() {
                Some(how) => format!(
                    "the service is not running ({how}); see {}",
                    self.log_file.display()
                ),
                None => "the service is not running".into(),
            },
        }
    }

    /// How the last command the agent started ended, while it is not running.
    pub fn exit_status(&self) -> Option<String> {
        self.exited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the service: SIGTERM to the command's process group, SIGKILL
    /// after the grace period.
    pub async fn stop(&self, known: Option<&ServiceProcess>) -> Result<(), ServiceError> {
        match &self.kind {
            ServiceKind::Systemd(unit) => systemctl("stop", unit).await,
            ServiceKind::Command(_) => {
                let Some(process) = known.filter(|p| alive(p)) else {
                    return Ok(());
                };
                let Some(pid) = Pid::from_raw(process.pid) else {
                    return Ok(());
                };
                let _ = kill_process_group(pid, Signal::TERM);
                let grace = Duration::from_millis(self.config.stop_grace_ms);
                if gone_within(process, grace).await {
                    return Ok(());
                }
                tracing::warn!(
                    pid = process.pid,
                    grace_ms = self.config.stop_grace_ms,
                    "The service did not stop on SIGTERM; sending SIGKILL."
                );
                let _ = kill_process_group(pid, Signal::KILL);
                if gone_within(process, HARD_LIMIT).await {
                    Ok(())
                } else {
                    Err(ServiceError::Stop(format!(
                        "process {} outlived SIGKILL",
                        process.pid
                    )))
                }
            }
        }
    }
}

async fn gone_within(process: &ServiceProcess, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while alive(process) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// Whether `process` is the same process still running (not a zombie, not
/// a later process given the same pid).
pub fn alive(process: &ServiceProcess) -> bool {
    let Some(pid) = Pid::from_raw(process.pid) else {
        return false;
    };
    if test_kill_process(pid).is_err() {
        return false;
    }
    match stat(process.pid) {
        Some((state, ticks)) => state != 'Z' && state != 'X' && ticks == process.start_ticks,
        None => false,
    }
}

/// When process `pid` started, in clock ticks since boot.
pub fn start_ticks(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, ticks)| ticks)
}

/// The state letter and start time of process `pid`, from `/proc/{pid}/stat`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields
    // after the last `)` are plain.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line is the 20th after the command name.
    let ticks = fields.get(19)?.parse().ok()?;
    Some((state, ticks))
}

/// The parent pid of process `pid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

async fn systemctl(action: &str, unit: &str) -> Result<(), ServiceError> {
    let fail = |message: String| ServiceError::Systemctl {
        action: action.into(),
        unit: unit.into(),
        message,
    };
    let mut command = tokio::process::Command::new("systemctl");
    command.arg(action);
    if action == "is-active" {
        command.arg("--quiet");
    }
    let run = command
        .arg(unit)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(HARD_LIMIT, run)
        .await
        .map_err(|_| fail(format!("no answer within {} s", HARD_LIMIT.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(fail(format!("{}: {}", output.status, stderr.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_service(dir: &Path, command: &[&str]) -> Service {
        let config = ServiceConfig {
            systemd_unit: None,
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            env: [("GREETING".to_string(), "hello".to_string())].into(),
            stop_grace_ms: 200,
            log_file: None,
        };
        Service::new(
            ServiceKind::Command(config.command.clone().unwrap()),
            config,
            dir.join("service.log"),
        )
    }

    /// Waits until the command wrote its first line.
    async fn logged(log: &Path) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(log).unwrap_or_default().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the command never started"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_command_runs_in_its_version_logs_and_stops_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let service = command_service(
            dir.path(),
            &[
                "sh",
                "-c",
                "echo \"$GREETING from $GREENLIGHT_VERSION in $(basename $PWD)\"; exec sleep 600",
            ],
        );
        let version_dir = dir.path().join("2.0.0");
        std::fs::create_dir_all(&version_dir).unwrap();
        let process = service.start("2.0.0", &version_dir).await.unwrap().unwrap();
        assert!(service.running(Some(&process)).await);
        logged(&dir.path().join("service.log")).await;
        service.stop(Some(&process)).await.unwrap();
        assert!(!alive(&process));
        let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
        assert_eq!(log, "hello from 2.0.0 in 2.0.0\n");
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let service = command_service(
            dir.path(),
            &[
                "sh",
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 1; done",
            ],
        );
        let process = service.start("1.0.0", dir.path()).await.unwrap().unwrap();
        // The trap must be set before SIGTERM comes: wait for its word.
        logged(&dir.path().join("service.log")).await;
        service.stop(Some(&process)).await.unwrap();
        assert!(!alive(&process));
    }

    #[tokio::test]
    async fn a_process_that_is_gone_or_reused_is_not_taken_for_the_service() {
        let me = std::process::id() as i32;
        let ticks = start_ticks(me).unwrap();
        let same = ServiceProcess {
            pid: me,
            start_ticks: ticks,
            version: "1".into(),
        };
        assert!(alive(&same));
        assert!(!alive(&ServiceProcess {
            start_ticks: ticks + 1,
            ..same.clone()
        }));
        assert!(!alive(&ServiceProcess {
            pid: i32::MAX,
            ..same
        }));
        let dir = tempfile::tempdir().unwrap();
        let service = command_service(dir.path(), &["./missing"]);
        let e = service.start("1.0.0", dir.path()).await.unwrap_err();
        assert!(e.to_string().starts_with("cannot start `./missing`"), "{e}");
    }
}
