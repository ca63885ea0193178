//! Versions on disk: an artifact fetched from its URL, its SHA-256 checked
//! against the published one, unpacked into `versions/{version}`, the
//! `current` link switched to it in one rename, and old versions pruned.
//!
//! A version directory exists only once it is whole: it is unpacked beside
//! its final name and renamed into place, so a crash mid-download or
//! mid-unpack leaves nothing that looks installed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::config::ArtifactConfig;

/// The most a checksum file or manifest may hold.
const MAX_CHECKSUM_BYTES: usize = 1 << 20;

/// Why a version could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot fetch {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{url} publishes no SHA-256 for {name}: {message}")]
    NoChecksum {
        url: String,
        name: String,
        message: String,
    },
    #[error(
        "checksum mismatch for {version}: the artifact's SHA-256 is {actual}, {url} says {expected}"
    )]
    Mismatch {
        version: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url} is larger than the {max} bytes allowed (`artifact.max_bytes`)")]
    TooLarge { url: String, max: u64 },
    #[error("cannot unpack {version}: {message}")]
    Unpack { version: String, message: String },
    #[error("cannot switch `current` to {version}: {message}")]
    Switch { version: String, message: String },
}

impl ArtifactError {
    /// The stable code the agent API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            ArtifactError::Fetch { .. } => "artifact.fetch_failed",
            ArtifactError::NoChecksum { .. } => "artifact.no_checksum",
            ArtifactError::Mismatch { .. } => "artifact.checksum_mismatch",
            ArtifactError::TooLarge { .. } => "artifact.too_large",
            ArtifactError::Unpack { .. } => "artifact.unpack_failed",
            ArtifactError::Switch { .. } => "artifact.switch_failed",
        }
    }
}

/// The versions directory and the `current` link of one agent.
pub struct Versions {
    root: PathBuf,
    config: ArtifactConfig,
    http: reqwest::Client,
}

impl Versions {
    pub fn new(state_dir: &Path, config: ArtifactConfig) -> Versions {
        Versions {
            root: state_dir.to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
                .unwrap_or_default(),
            config,
        }
    }

    fn versions(&self) -> PathBuf {
        self.root.join("versions")
    }

    /// Where `version` is unpacked.
    pub fn dir_of(&self, version: &str) -> PathBuf {
        self.versions().join(version)
    }

    /// The link the service runs from.
    pub fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    /// Whether `version` is unpacked and whole.
    pub fn has(&self, version: &str) -> bool {
        self.dir_of(version).is_dir()
    }

    /// The version `current` points at.
    pub fn current(&self) -> Option<String> {
        let target = std::fs::read_link(self.current_link()).ok()?;
        target
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
    }

    /// Fetches, checks and unpacks `version` unless it is already there.
    pub async fn ensure(&self, version: &str) -> Result<(), ArtifactError> {
        if self.has(version) {
            return Ok(());
        }
        let url = self.config.url.replace("{version}", version);
        let name = url.rsplit('/').next().unwrap_or_default().to_string();
        let expected = self.published_sha256(version, &name).await?;
        std::fs::create_dir_all(self.versions()).map_err(|e| ArtifactError::Unpack {
            version: version.into(),
            message: e.to_string(),
        })?;
        let download = self.versions().join(format!(".download-{version}"));
        let actual = self.download(&url, &download).await?;
        if actual != expected {
            let _ = std::fs::remove_file(&download);
            return Err(ArtifactError::Mismatch {
                version: version.into(),
                url: self.config.sha256_url.replace("{version}", version),
                expected,
                actual,
            });
        }
        let (root, version_owned) = (self.versions(), version.to_string());
        let unpacked =
            tokio::task::spawn_blocking(move || unpack(&root, &version_owned, &download))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
        unpacked.map_err(|message| ArtifactError::Unpack {
            version: version.into(),
            message,
        })
    }

    /// The SHA-256 published for the artifact `name` of `version`.
    async fn published_sha256(&self, version: &str, name: &str) -> Result<String, ArtifactError> {
        let url = self.config.sha256_url.replace("{version}", version);
        let missing = |message: String| ArtifactError::NoChecksum {
            url: url.clone(),
            name: name.into(),
            message,
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ArtifactError::Fetch {
                url: url.clone(),
                message: e.without_url().to_string(),
            })?;
        if !response.status().is_success() {
            return Err(missing(format!("it answered {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| ArtifactError::Fetch {
            url: url.clone(),
            message: e.without_url().to_string(),
        })?;
        if bytes.len() > MAX_CHECKSUM_BYTES {
            return Err(missing(format!("it is over {MAX_CHECKSUM_BYTES} bytes")));
        }
        let text = String::from_utf8_lossy(&bytes);
        digest_for(&text, name).ok_or_else(|| {
            missing("no 64-hex-digit digest alone or on a `DIGEST  NAME` line for it".into())
        })
    }

    /// Streams `url` to `to`, bounded, and returns its SHA-256.
    async fn download(&self, url: &str, to: &Path) -> Result<String, ArtifactError> {
        let fetch = |message: String| ArtifactError::Fetch {
            url: url.into(),
            message,
        };
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fetch(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(fetch(format!("it answered {}", response.status())));
        }
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| fetch(format!("cannot write {}: {e}", to.display())))?;
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch(e.without_url().to_string()))?
        {
            total += chunk.len() as u64;
            if total > self.config.max_bytes {
                let _ = tokio::fs::remove_file(to).await;
                return Err(ArtifactError::TooLarge {
                    url: url.into(),
                    max: self.config.max_bytes,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| fetch(format!("cannot write {}: {e}", to.display())))?;
        }
        file.sync_all()
            .await
            .map_err(|e| fetch(format!("cannot write {}: {e}", to.display())))?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// Points `current` at `version` in one rename.
    pub fn switch(&self, version: &str) -> Result<(), ArtifactError> {
        let fail = |e: std::io::Error| ArtifactError::Switch {
            version: version.into(),
            message: e.to_string(),
        };
        let staged = self.root.join(".current.new");
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(Path::new("versions").join(version), &staged).map_err(fail)?;
        std::fs::rename(&staged, self.current_link()).map_err(fail)?;
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }

    /// Removes all but the newest `keep` versions, never one in `protect`,
    /// and any download or unpack a crash left behind.
    pub fn prune(&self, protect: &[&str]) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.versions()) else {
            return Vec::new();
        };
        let mut versions = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
                continue;
            }
            let installed = entry
                .path()
                .join(INSTALLED_MARK)
                .metadata()
                .and_then(|m| m.modified())
                .ok();
            versions.push((installed, name));
        }
        versions.sort();
        let mut removed = Vec::new();
        let excess = versions.len().saturating_sub(self.config.keep);
        for (_, name) in versions.into_iter() {
            if removed.len() >= excess {
                break;
            }
            if protect.contains(&name.as_str()) {
                continue;
            }
            if std::fs::remove_dir_all(self.dir_of(&name)).is_ok() {
                removed.push(name);
            }
        }
        removed
    }
}

/// The file in a version's directory whose time says when it was unpacked.
const INSTALLED_MARK: &str = ".greenlight-installed";

/// Unpacks the `.tar.gz` at `download` into `root/{version}`, through a
/// staging directory renamed into place once whole.
fn unpack(root: &Path, version: &str, download: &Path) -> Result<(), String> {
    let staging = root.join(format!(".unpack-{version}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(download).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    // `unpack` keeps every entry inside `staging`: absolute paths and `..`
    // are refused entry by entry.
    archive
        .unpack(&staging)
        .map_err(|e| format!("not a whole .tar.gz archive: {e}"))?;
    std::fs::write(staging.join(INSTALLED_MARK), version).map_err(|e| e.to_string())?;
    std::fs::rename(&staging, root.join(version)).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(download);
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())
}

/// The digest for `name` in a checksum file: the file's only token, or the
/// `DIGEST  NAME` (or `DIGEST *NAME`) line naming it.
pub fn digest_for(text: &str, name: &str) -> Option<String> {
    let is_digest = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() == 1 && is_digest(tokens[0]) {
        return Some(tokens[0].to_ascii_lowercase());
    }
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let digest = parts.next()?;
        let file = parts.next()?.trim_start_matches('*');
        let base = file.rsplit('/').next()?;
        (is_digest(digest) && (file == name || base == name)).then(|| digest.to_ascii_lowercase())
    })
}

/// Whether `version` may name a directory: letters, digits, `.`, `_`,
/// `+`, `-`, not starting with `.`, at most 128 characters.
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 128
        && !version.starts_with('.')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const D2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn a_digest_is_read_alone_or_from_a_manifest_line_naming_the_file() {
        assert_eq!(digest_for(&format!("{D1}\n"), "x").as_deref(), Some(D1));
        let manifest = format!("{D1}  shop-1.0.0.tar.gz\n{D2} *dist/shop-2.0.0.tar.gz\n");
        assert_eq!(
            digest_for(&manifest, "shop-2.0.0.tar.gz").as_deref(),
            Some(D2)
        );
        assert_eq!(
            digest_for(&manifest, "shop-1.0.0.tar.gz").as_deref(),
            Some(D1)
        );
        assert_eq!(digest_for(&manifest, "shop-3.0.0.tar.gz"), None);
        assert_eq!(digest_for("not a digest", "x"), None);
        assert_eq!(digest_for(&D1.to_uppercase(), "x").as_deref(), Some(D1));
    }

    #[test]
    fn versions_that_could_leave_the_versions_directory_are_refused() {
        for good in ["1.0.0", "2.0.0-rc.1+build.5", "v3_a"] {
            assert!(valid_version(good), "{good}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "../etc",
            "a/b",
            "a b",
            &"9".repeat(129),
        ] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, path, body.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacking_switching_and_pruning_keep_the_newest_and_the_protected() {
        let dir = tempfile::tempdir().unwrap();
        let config = ArtifactConfig {
            url: "http://127.0.0.1:1/{version}.tar.gz".into(),
            sha256_url: "http://127.0.0.1:1/{version}.sha256".into(),
            keep: 2,
            max_bytes: 1 << 20,
            timeout_ms: 1_000,
        };
        let v = Versions::new(dir.path(), config);
        std::fs::create_dir_all(v.versions()).unwrap();
        for (i, version) in ["1.0.0", "2.0.0", "3.0.0"].into_iter().enumerate() {
            let download = v.versions().join(format!(".download-{version}"));
            std::fs::write(&download, tarball(&[("VERSION", version)])).unwrap();
            unpack(&v.versions(), version, &download).unwrap();
            assert!(!download.exists());
            v.switch(version).unwrap();
            assert_eq!(v.current().as_deref(), Some(version));
            let read = std::fs::read_to_string(v.current_link().join("VERSION")).unwrap();
            assert_eq!(read, version);
            // The install times tell the order: one second apart.
            let at = std::time::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(v.dir_of(version).join(INSTALLED_MARK))
                .and_then(|f| f.set_modified(at))
                .unwrap();
        }
        std::fs::create_dir_all(v.versions().join(".unpack-4.0.0")).unwrap();
        // 1.0.0 is protected (a rollback's target), so 2.0.0 goes.
        let removed = v.prune(&["3.0.0", "1.0.0"]);
        assert_eq!(removed, ["2.0.0"]);
        assert!(v.has("1.0.0") && v.has("3.0.0") && !v.has("2.0.0"));
        assert!(!v.versions().join(".unpack-4.0.0").exists());
    }

    #[test]
    fn an_archive_cannot_write_outside_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let download = dir.path().join(".download-1.0.0");
        // tar::Builder refuses `..` itself, so the hostile name is written
        // into the header by hand.
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..13].copy_from_slice(b"../escaped.sh");
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &b"hi"[..]).unwrap();
        std::fs::write(&download, builder.into_inner().unwrap().finish().unwrap()).unwrap();
        let versions = dir.path().join("versions");
        std::fs::create_dir_all(&versions).unwrap();
        let _ = unpack(&versions, "1.0.0", &download);
        assert!(!dir.path().join("escaped.sh").exists());
        assert!(!versions.join("escaped.sh").exists());
    }
}
