//! Freeze windows as the engine sees them: whether one forbids a start.

use super::{Engine, Error};
use crate::domain::schedule::freeze;

impl Engine {
    /// Why a freeze window forbids starting a release in an environment at
    /// `at_ms`, or `None` when none does.
    pub fn frozen(
        &self,
        application: &str,
        environment: &str,
        at_ms: u64,
    ) -> Result<Option<String>, Error> {
        let windows: Vec<freeze::Compiled> = self
            .inner
            .store
            .freezes()?
            .into_iter()
            .filter_map(|w| {
                let name = w.name.clone();
                match w.compile() {
                    Ok(compiled) => Some(compiled),
                    Err(e) => {
                        tracing::error!(freeze = %name, problem = %crate::domain::flow::join_errors(&e),
                            "A stored freeze window cannot be read.");
                        None
                    }
                }
            })
            .collect();
        Ok(freeze::frozen(&windows, application, environment, at_ms))
    }
}
