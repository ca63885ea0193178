//! The platform's capabilities with plain Rust signatures: logging, granted
//! configuration and secrets, the plugin's key-value store, and time.

/// Structured log lines, recorded with the invocation.
pub mod log {
    use crate::bindings::platform::greenlight::plugin0_2_0::log::{self, Level};

    fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        log::write(level, message, &fields);
    }

    /// Detail useful when investigating a plugin.
    pub fn debug(message: &str, fields: &[(&str, &str)]) {
        write(Level::Debug, message, fields);
    }

    /// What the plugin did.
    pub fn info(message: &str, fields: &[(&str, &str)]) {
        write(Level::Info, message, fields);
    }

    /// Something unexpected that the plugin coped with.
    pub fn warn(message: &str, fields: &[(&str, &str)]) {
        write(Level::Warn, message, fields);
    }

    /// Something the plugin could not do.
    pub fn error(message: &str, fields: &[(&str, &str)]) {
        write(Level::Error, message, fields);
    }
}

/// Configuration values and secrets an admin granted to the plugin.
pub mod config {
    use crate::bindings::platform::greenlight::plugin0_2_0::config;
    use crate::error::Error;

    /// A granted configuration value.
    pub fn get(key: &str) -> Option<String> {
        config::get(key)
    }

    /// A granted configuration value the plugin cannot work without.
    pub fn require(key: &str) -> Result<String, Error> {
        get(key).ok_or_else(|| Error::new(format!("configuration value `{key}` is not granted")))
    }

    /// A granted secret. Never log it.
    pub fn secret(name: &str) -> Option<String> {
        config::secret(name)
    }
}

/// The plugin's own key-value store, shared by all its versions.
pub mod kv {
    use crate::bindings::platform::greenlight::plugin0_2_0::kv;
    use crate::error::Error;

    fn fail(e: kv::KvError) -> Error {
        match e {
            kv::KvError::Unavailable(why) => Error::retryable(format!("kv unavailable: {why}")),
            other => Error::new(format!("kv: {other}")),
        }
    }

    /// Reads a value, `None` when the key is not set.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        kv::get(key).map_err(fail)
    }

    /// Writes a value, replacing any previous one.
    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        kv::set(key, value).map_err(fail)
    }

    /// Removes a key; a missing key is not an error.
    pub fn delete(key: &str) -> Result<(), Error> {
        kv::delete(key).map_err(fail)
    }
}

/// Time: the release clock for timestamps, a monotonic clock for waiting.
pub mod time {
    use crate::bindings::platform::greenlight::plugin0_2_0::clock;
    use crate::bindings::platform::wasi::clocks::monotonic_clock;

    /// Milliseconds since the Unix epoch on the release clock, which tests
    /// control; use it for anything recorded or compared with releases.
    pub fn now_ms() -> u64 {
        clock::now_ms()
    }

    /// Milliseconds on a monotonic clock with an arbitrary origin; use it to
    /// measure latencies and bound waits.
    pub fn monotonic_ms() -> f64 {
        monotonic_clock::now() as f64 / 1e6
    }

    /// Blocks for `ms` milliseconds of real time (counted against the
    /// plugin's deadline).
    pub fn sleep_ms(ms: u64) {
        monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    }
}
