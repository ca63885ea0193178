//! The bundled plugins end to end: each is uploaded to a real daemon, granted
//! the loopback origin of a test server that plays its counterpart (a
//! target, an agent, a router, Prometheus, a chat webhook), invoked through
//! the API, and judged by what a user would check.

mod agent;
mod canary;
mod deployer;
mod health;
mod metrics;
mod notifier;
mod policy;
mod prechecks;
mod release;
mod traffic;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{Daemon, fixture};

/// Serves `app` on a loopback port for the rest of the test.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The origin a grant names for a loopback server.
pub fn origin(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A shared, ordered record of what a test server received.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A daemon with the bundled plugin `crate_name` uploaded as `name`.
pub async fn daemon_with(name: &str, crate_name: &str) -> Daemon {
    let d = Daemon::start().await;
    let (status, body) = d.upload(name, "1.0.0", fixture(crate_name)).await;
    assert_eq!(status, 201, "upload of {crate_name}: {body}");
    d
}

/// A release context with these parameters.
pub fn context(parameters: Value) -> Value {
    json!({
        "release_id": "rel-1", "application": "shop", "environment": "prod",
        "version": "2.0.0", "previous_version": "1.0.0", "stage": "canary",
        "parameters": parameters
    })
}

/// A metric of a verdict by name.
pub fn metric(verdict: &Value, name: &str) -> Option<f64> {
    verdict["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?["value"]
        .as_f64()
}
