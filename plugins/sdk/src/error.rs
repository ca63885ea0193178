//! The one error type of a plugin's work: a message for the release manager
//! and whether trying again may help.

use std::fmt;

use crate::types::PluginError;

/// Why a plugin could not do its work. Converted by the export glue into
/// what the world expects: an `error` verdict, a `plugin-error`, or a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    retryable: bool,
}

impl Error {
    /// An error that trying again will not fix (bad parameters, a refusal).
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            retryable: false,
        }
    }

    /// An error that may go away when the call is tried again (a timeout, a
    /// dependency that is down).
    pub fn retryable(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            retryable: true,
        }
    }

    /// Puts `context` in front of the message: `web-1: connection refused`.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            message: format!("{context}: {}", self.message),
            retryable: self.retryable,
        }
    }

    /// What went wrong, in one line.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for PluginError {
    fn from(e: Error) -> PluginError {
        PluginError {
            message: e.message,
            retryable: e.retryable,
        }
    }
}
