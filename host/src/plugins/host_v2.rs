//! The platform of `greenlight:plugin@0.2.0`: the same capabilities as
//! 0.1.0's, so each call is handed to the 0.1.0 implementation and its
//! answer turned into 0.2.0's types. A plugin of either version gets
//! exactly the same log, key-value store, configuration and clock.

use super::bindings::{clock, config, kv, log, v2};
use super::state::InvocationState;

impl v2::types::Host for InvocationState {}

impl v2::clock::Host for InvocationState {
    fn now_ms(&mut self) -> u64 {
        clock::Host::now_ms(self)
    }
}

impl v2::config::Host for InvocationState {
    fn get(&mut self, key: String) -> Option<String> {
        config::Host::get(self, key)
    }

    fn secret(&mut self, name: String) -> Option<String> {
        config::Host::secret(self, name)
    }
}

impl v2::log::Host for InvocationState {
    fn write(&mut self, level: v2::log::Level, message: String, fields: Vec<(String, String)>) {
        use v2::log::Level as L2;
        let level = match level {
            L2::Trace => log::Level::Trace,
            L2::Debug => log::Level::Debug,
            L2::Info => log::Level::Info,
            L2::Warn => log::Level::Warn,
            L2::Error => log::Level::Error,
        };
        log::Host::write(self, level, message, fields);
    }
}

/// A 0.1.0 key-value refusal in 0.2.0's type.
fn kv_error(e: kv::KvError) -> v2::kv::KvError {
    match e {
        kv::KvError::InvalidKey(m) => v2::kv::KvError::InvalidKey(m),
        kv::KvError::ValueTooLarge(n) => v2::kv::KvError::ValueTooLarge(n),
        kv::KvError::Unavailable(m) => v2::kv::KvError::Unavailable(m),
    }
}

impl v2::kv::Host for InvocationState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, v2::kv::KvError> {
        kv::Host::get(self, key).map_err(kv_error)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), v2::kv::KvError> {
        kv::Host::set(self, key, value).map_err(kv_error)
    }

    fn delete(&mut self, key: String) -> Result<(), v2::kv::KvError> {
        kv::Host::delete(self, key).map_err(kv_error)
    }
}
