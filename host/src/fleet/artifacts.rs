//! An artifact store on loopback for the host agents of the demo and the
//! tests: it serves each published version of the sample service as
//! `/shop/{version}.tar.gz` (a tarball holding its `VERSION` file) beside
//! `/shop/{version}.tar.gz.sha256`, counts the requests for each file, and
//! can hold the downloads of a version until told to let them go, so that a
//! test can act while an agent is in the middle of one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::Error;

#[derive(Default)]
struct Files {
    bytes: HashMap<String, Bytes>,
    requests: HashMap<String, u64>,
}

struct Inner {
    files: Mutex<Files>,
    /// The version whose downloads wait, if any.
    held: watch::Sender<Option<String>>,
    /// How many downloads of a held version arrived.
    arrivals: watch::Sender<u64>,
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    /// Where it serves.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl ArtifactStore {
    /// Serves an empty store on a loopback port.
    pub async fn start() -> Result<ArtifactStore, Error> {
        let inner = Arc::new(Inner {
            files: Mutex::default(),
            held: watch::Sender::new(None),
            arrivals: watch::Sender::new(0),
        });
        let listener = super::bind_loopback().await?;
        let addr = listener.local_addr().map_err(Error::Listen)?;
        let app = axum::Router::new()
            .route("/shop/{file}", get(serve))
            .with_state(inner.clone());
        super::spawn_server(listener, app);
        Ok(ArtifactStore { addr, inner })
    }

    fn files(&self) -> MutexGuard<'_, Files> {
        self.inner.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The artifact URL template an agent is configured with.
    pub fn url_template(&self) -> String {
        format!("http://{}/shop/{{version}}.tar.gz", self.addr)
    }

    /// The checksum URL template beside it.
    pub fn sha256_template(&self) -> String {
        format!("{}.sha256", self.url_template())
    }

    /// Publishes `version` with its true checksum.
    pub fn publish(&self, version: &str) -> Result<(), Error> {
        let tarball = tarball("VERSION", &format!("{version}\n"))?;
        let digest = hex::encode(Sha256::digest(&tarball));
        self.put(version, tarball, digest);
        Ok(())
    }

    /// Publishes `version` with its true checksum but without the `VERSION`
    /// file the sample service reads, so that it exits as it starts: a
    /// release that does not run.
    pub fn publish_unrunnable(&self, version: &str) -> Result<(), Error> {
        let tarball = tarball("README", &format!("{version}: no VERSION here\n"))?;
        let digest = hex::encode(Sha256::digest(&tarball));
        self.put(version, tarball, digest);
        Ok(())
    }

    /// Publishes `version` with a checksum that is not its own, as a
    /// corrupted upload or a tampered mirror would.
    pub fn publish_bad_checksum(&self, version: &str) -> Result<(), Error> {
        let tarball = tarball("VERSION", &format!("{version}\n"))?;
        let digest = hex::encode(Sha256::digest(b"some other artifact"));
        self.put(version, tarball, digest);
        Ok(())
    }

    fn put(&self, version: &str, tarball: Vec<u8>, digest: String) {
        let mut files = self.files();
        let name = format!("{version}.tar.gz");
        files
            .bytes
            .insert(format!("{name}.sha256"), Bytes::from(format!("{digest}\n")));
        files.bytes.insert(name, Bytes::from(tarball));
    }

    /// How many times `file` (such as `2.0.0.tar.gz`) was asked for.
    pub fn requests(&self, file: &str) -> u64 {
        self.files().requests.get(file).copied().unwrap_or(0)
    }

    /// Makes every download of `version`'s tarball wait until
    /// [`ArtifactStore::release`].
    pub fn hold(&self, version: &str) {
        self.inner.held.send_replace(Some(version.to_string()));
    }

    /// Lets the held downloads go.
    pub fn release(&self) {
        self.inner.held.send_replace(None);
    }

    /// Resolves once `n` downloads of a held version have arrived.
    pub async fn held_downloads(&self, n: u64) {
        let mut arrivals = self.inner.arrivals.subscribe();
        let _ = arrivals.wait_for(|seen| *seen >= n).await;
    }
}

async fn serve(State(inner): State<Arc<Inner>>, Path(file): Path<String>) -> Response {
    let bytes = {
        let mut files = inner.files.lock().unwrap_or_else(|e| e.into_inner());
        *files.requests.entry(file.clone()).or_default() += 1;
        files.bytes.get(&file).cloned()
    };
    let Some(bytes) = bytes else {
        return (StatusCode::NOT_FOUND, format!("no {file} here")).into_response();
    };
    let held = |v: &Option<String>| v.as_ref().is_some_and(|v| file == format!("{v}.tar.gz"));
    let mut watch = inner.held.subscribe();
    if held(&watch.borrow_and_update()) {
        inner.arrivals.send_modify(|n| *n += 1);
        let _ = watch.wait_for(|v| !held(v)).await;
    }
    bytes.into_response()
}

/// A gzipped tarball holding one file: the sample service's artifact holds
/// `VERSION`.
fn tarball(name: &str, content: &str) -> Result<Vec<u8>, Error> {
    let fail = |e: std::io::Error| Error::Artifact(e.to_string());
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, content.as_bytes())
        .map_err(fail)?;
    tar.into_inner().map_err(fail)?.finish().map_err(fail)
}
