//! What humans ask of a release: approve, reject, pause, resume, roll back;
//! each becomes an event or a refusal with a stable code.

use std::fmt;

use super::ReleaseSpec;
use super::event::{Event, RollbackMode, Status};
use super::machine::{GateState, State};

/// Who asks for something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
    pub admin: bool,
}

/// What a human can ask of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve {
        comment: String,
    },
    Reject {
        comment: String,
    },
    Pause {
        reason: String,
    },
    Resume,
    Rollback {
        mode: RollbackMode,
        force: bool,
        reason: String,
    },
    /// Ends the release where it stands, for a release that cannot finish
    /// (an admin's way out): nothing more is deployed or undone, the
    /// environment is freed, and what runs there is recorded as unknown.
    Abandon {
        reason: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// Stable code, such as `release.not_waiting`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn refuse(code: &'static str, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
    }
}

impl State {
    /// Turns a human's request into an event, or says why it is refused.
    pub fn command(
        &self,
        spec: &ReleaseSpec,
        actor: &Actor,
        command: Command,
        now: u64,
    ) -> Result<Event, CommandError> {
        let status = self.status();
        // Abandoning is for any unfinished release, queued ones included.
        if let Command::Abandon { reason } = &command {
            return self.abandon(actor, reason, now);
        }
        if status == Status::Queued {
            return Err(refuse(
                "release.queued",
                "the release is queued behind the environment's active release and has not started",
            ));
        }
        let gate_command = matches!(command, Command::Approve { .. } | Command::Reject { .. });
        if gate_command && status != Status::WaitingApproval {
            return Err(refuse(
                "release.not_waiting",
                format!(
                    "the release is {}, not waiting for approval",
                    status.as_str()
                ),
            ));
        }
        match command {
            Command::Approve { comment } => {
                let gate = self
                    .gate
                    .as_ref()
                    .ok_or_else(|| refuse("release.not_waiting", "the release has no open gate"))?;
                self.may_decide_gate(spec, actor, gate)?;
                if gate.approvals.iter().any(|a| a.by == actor.name) {
                    return Err(refuse(
                        "release.already_approved",
                        format!("{} has already approved this gate", actor.name),
                    ));
                }
                Ok(Event::Approved {
                    pc: gate.pc,
                    by: actor.name.clone(),
                    comment,
                    at_ms: now,
                })
            }
            Command::Reject { comment } => {
                let gate = self
                    .gate
                    .as_ref()
                    .ok_or_else(|| refuse("release.not_waiting", "the release has no open gate"))?;
                self.may_decide_gate(spec, actor, gate)?;
                if comment.trim().is_empty() {
                    return Err(refuse(
                        "release.comment_required",
                        "comment: a rejection needs a comment saying why",
                    ));
                }
                Ok(Event::Rejected {
                    pc: gate.pc,
                    by: actor.name.clone(),
                    comment,
                    at_ms: now,
                })
            }
            Command::Pause { reason } => {
                if status != Status::Running {
                    return Err(refuse(
                        "release.not_running",
                        format!(
                            "only a running release can be paused; this one is {}",
                            status.as_str()
                        ),
                    ));
                }
                Ok(Event::Paused {
                    by: actor.name.clone(),
                    reason,
                    at_ms: now,
                })
            }
            Command::Resume => {
                if status != Status::Paused {
                    return Err(refuse(
                        "release.not_paused",
                        format!(
                            "only a paused release can be resumed; this one is {}",
                            status.as_str()
                        ),
                    ));
                }
                Ok(Event::Resumed {
                    by: actor.name.clone(),
                    at_ms: now,
                })
            }
            Command::Rollback {
                mode,
                force,
                reason,
            } => {
                match status {
                    Status::Failed | Status::RolledBack | Status::Rejected | Status::Abandoned => {
                        return Err(refuse(
                            "release.finished",
                            format!(
                                "the release is {}; there is nothing to roll back",
                                status.as_str()
                            ),
                        ));
                    }
                    Status::RollingBack => {
                        let rb = self.rollback.as_ref();
                        if rb.is_some_and(|rb| rb.mode == mode && rb.force == force) {
                            return Err(refuse(
                                "release.rolling_back",
                                "the release is already rolling back",
                            ));
                        }
                    }
                    Status::Blocked if !force => {
                        return Err(refuse(
                            "release.blocked",
                            format!(
                                "{}; repeat the rollback with force",
                                self.outcome.clone().unwrap_or_default()
                            ),
                        ));
                    }
                    _ => {}
                }
                let reason = if reason.trim().is_empty() {
                    format!("{} rolled the release back", actor.name)
                } else {
                    format!("{} rolled the release back: {reason}", actor.name)
                };
                Ok(Event::RollbackStarted {
                    by: actor.name.clone(),
                    reason,
                    mode,
                    force,
                    at_ms: now,
                })
            }
            Command::Abandon { reason } => self.abandon(actor, &reason, now),
        }
    }

    fn abandon(&self, actor: &Actor, reason: &str, now: u64) -> Result<Event, CommandError> {
        let status = self.status();
        if !actor.admin {
            return Err(refuse(
                "release.forbidden",
                "only an admin may abandon a release",
            ));
        }
        if status.is_terminal() {
            return Err(refuse(
                "release.finished",
                format!(
                    "the release is {}; only an unfinished release can be abandoned",
                    status.as_str()
                ),
            ));
        }
        if reason.trim().is_empty() {
            return Err(refuse(
                "release.comment_required",
                "comment: abandoning a release needs a comment saying why",
            ));
        }
        Ok(Event::Finished {
            status: Status::Abandoned,
            reason: format!(
                "{} abandoned the release while it was {}: {reason}; what runs in the environment is unknown",
                actor.name,
                status.as_str()
            ),
            at_ms: now,
        })
    }

    fn may_decide_gate(
        &self,
        spec: &ReleaseSpec,
        actor: &Actor,
        gate: &GateState,
    ) -> Result<(), CommandError> {
        let Some(rules) = spec.stages[spec.steps[gate.pc].stage()].gate.as_ref() else {
            return Ok(());
        };
        if !actor.admin && !rules.roles.is_empty() && !rules.roles.contains(&actor.role) {
            return Err(refuse(
                "release.forbidden_approver",
                format!(
                    "{} has role {}, and this gate needs one of: {}",
                    actor.name,
                    actor.role,
                    rules.roles.join(", ")
                ),
            ));
        }
        if !rules.starter_may_approve && actor.name == spec.started_by {
            return Err(refuse(
                "release.forbidden_approver",
                format!(
                    "{} started this release and may not decide its gates",
                    actor.name
                ),
            ));
        }
        Ok(())
    }
}
