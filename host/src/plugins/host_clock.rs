//! `greenlight:plugin/clock` and the shared `types` interface.

use super::bindings::{clock, types};
use super::state::InvocationState;

impl clock::Host for InvocationState {
    fn now_ms(&mut self) -> u64 {
        let clock = &self.clock;
        self.clock_tape.read(|| clock.now_ms())
    }
}

impl types::Host for InvocationState {}
