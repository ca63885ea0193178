//! `greenlight:plugin/config`: the configuration values and secrets granted
//! to the plugin, and nothing else.

use super::bindings::config::Host;
use super::state::InvocationState;

impl Host for InvocationState {
    fn get(&mut self, key: String) -> Option<String> {
        self.grant.config.get(&key).cloned()
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.grant.secrets.get(&name).cloned()
    }
}
