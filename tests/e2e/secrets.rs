//! Plugin secrets at rest: sealed in the data directory, opened again after
//! a restart, sealed when an earlier release left them in the clear, and
//! moved to a new key by `greenlight secrets rotate-key`; a key that is
//! exposed, lost or does not open them stops the daemon from starting, and
//! the secrets of a lost key are dropped only on confirmation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};

use crate::bundled::{Journal, context, origin, serve};
use crate::support::{Daemon, binary, fixture};

/// How long a daemon that must refuse to start may take to do so.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(120);

/// A webhook receiver that records the path of every post, and a secret
/// webhook URL on it whose path is random: the path that arrives shows
/// that the plugin read the secret, byte for byte.
async fn receiver() -> (Journal, String, String) {
    let journal = Journal::default();
    let seen = journal.clone();
    let app = Router::new().fallback(move |uri: Uri| async move {
        seen.push(uri.path().to_string());
        StatusCode::OK
    });
    let addr = serve(app).await;
    let token = greenlight::identity::new_secret().unwrap();
    let url = format!("{}/hooks/{token}", origin(addr));
    (journal, origin(addr), url)
}

/// A daemon started with `config`, the webhook notifier uploaded as
/// `notify` and granted the webhook URL as a secret.
async fn notifier(config: &str, host: &str, url: &str) -> Daemon {
    let d = Daemon::start_with_config(config).await;
    let (status, body) = d
        .upload("notify", "1.0.0", fixture("webhook_notifier"))
        .await;
    assert_eq!(status, 201, "{body}");
    d.grant(
        "notify",
        json!({"secrets": {"webhook_url": url}, "allowed_hosts": [host]}),
    )
    .await;
    d
}

/// Notifies once; the post must reach the secret URL's path.
async fn notify_reaches(d: &Daemon, journal: &Journal, url: &str) {
    let before = journal.entries().len();
    let answer = d
        .invoke(
            "notify",
            json!({"context": context(json!({})),
                   "event": {"kind": "succeeded", "message": "done", "at_ms": 1}}),
        )
        .await;
    assert_eq!(answer["output"]["done"], json!({"ok": null}), "{answer}");
    let path = url
        .split_once("/hooks/")
        .map(|(_, t)| format!("/hooks/{t}"));
    assert_eq!(journal.entries()[before..].to_vec(), vec![path.unwrap()]);
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

/// Starts the daemon on `d`'s data and config file, which must refuse to
/// start; returns what it printed on standard error.
fn refused_start(data: &Path) -> String {
    let child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(data.with_extension("toml"))
        .env("RUST_LOG", "error")
        .env_remove(greenlight::secrets_key::ENV_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(REFUSAL_TIMEOUT) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the daemon started, or hung, instead of refusing");
    };
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "it started: {stdout}");
    assert!(!stdout.contains("listening on"), "it served: {stdout}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn set_config(d: &Daemon, config: &str) {
    std::fs::write(d.data.with_extension("toml"), config).unwrap();
}

fn key_file_config(path: &Path) -> String {
    format!(
        "[security]\nsecrets_key_file = {:?}\n",
        path.display().to_string()
    )
}

#[tokio::test]
async fn a_granted_secret_is_nowhere_in_the_data_directory_and_still_reaches_its_plugin() {
    let (journal, host, url) = receiver().await;
    let mut d = notifier("", &host, &url).await;
    notify_reaches(&d, &journal, &url).await;
    d.terminate();
    let token = url.rsplit('/').next().unwrap();
    assert_eq!(
        files_holding(&d.data, token.as_bytes()),
        Vec::<PathBuf>::new(),
        "the secret is in the clear"
    );
    // With nothing configured, the key is a file of the data directory's
    // own, its owner's alone.
    let key = d.data.join(greenlight::secrets_key::DEFAULT_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    let d = d.respawn().await;
    notify_reaches(&d, &journal, &url).await;
}

#[tokio::test]
async fn secrets_an_earlier_release_stored_in_the_clear_are_sealed_on_start() {
    let (journal, host, url) = receiver().await;
    let mut d = notifier("", &host, &"x".repeat(8)).await;
    d.terminate();
    // The grant exactly as releases before sealing stored it.
    let legacy = json!({
        "v": 1, "allowed_hosts": [host], "config": {}, "secrets": {"webhook_url": url},
        "deadline_ms": null, "memory_mib": null, "max_output_bytes": null,
        "max_outbound_requests": null
    });
    let db_dir = d.data.join("db");
    let stored_grant = |write: Option<&Value>| {
        let db = sled::open(&db_dir).unwrap();
        let grants = db.open_tree("grants").unwrap();
        if let Some(record) = write {
            grants
                .insert("notify", record.to_string().as_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        String::from_utf8(grants.get("notify").unwrap().unwrap().to_vec()).unwrap()
    };
    stored_grant(Some(&legacy));
    let mut d = d.respawn().await;
    notify_reaches(&d, &journal, &url).await;
    d.terminate();
    let stored = stored_grant(None);
    assert!(!stored.contains(&url), "{stored}");
    assert!(stored.contains("sealed_secrets"), "{stored}");
    let d = d.respawn().await;
    notify_reaches(&d, &journal, &url).await;
}

#[tokio::test]
async fn a_rotated_key_opens_the_secrets_and_the_old_one_is_refused_by_name() {
    let keys = tempfile::tempdir().unwrap();
    let (old, new) = (keys.path().join("old.key"), keys.path().join("new.key"));
    let (journal, host, url) = receiver().await;
    let mut d = notifier(&key_file_config(&old), &host, &url).await;
    assert!(
        old.is_file(),
        "the configured key file is made on first start"
    );
    assert!(!d.data.join(greenlight::secrets_key::DEFAULT_FILE).exists());
    d.terminate();

    let new_arg = new.display().to_string();
    let (ok, stdout) = secrets_command(&d, &["rotate-key", "--new-key-file", &new_arg]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("Sealed 1 plugin secrets with key"),
        "{stdout}"
    );
    assert!(stdout.contains("secrets_key_file"), "{stdout}");

    // The config still names the old key, which opens nothing now.
    let refusal = refused_start(&d.data);
    assert!(
        refusal.contains("does not open the stored plugin secrets"),
        "{refusal}"
    );
    assert!(
        refusal.contains("`webhook_url` of plugin `notify`"),
        "{refusal}"
    );

    set_config(&d, &key_file_config(&new));
    let mut d = d.respawn().await;
    notify_reaches(&d, &journal, &url).await;
    d.terminate();

    // A key file its group may read is refused, naming the file and the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o640)).unwrap();
        let refusal = refused_start(&d.data);
        assert!(refusal.contains(&new.display().to_string()), "{refusal}");
        assert!(refusal.contains("chmod 600"), "{refusal}");
    }
}

/// Runs `greenlight secrets …` on `d`'s stopped data directory.
fn secrets_command(d: &Daemon, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary())
        .arg("secrets")
        .args(args)
        .arg("--config")
        .arg(d.data.with_extension("toml"))
        .arg("--data")
        .arg(&d.data)
        .env_remove(greenlight::secrets_key::ENV_VAR)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn a_lost_key_stops_the_daemon_until_its_secrets_are_dropped_on_confirmation() {
    let (_journal, host, url) = receiver().await;
    let mut d = notifier("", &host, &url).await;
    d.terminate();
    std::fs::remove_file(d.data.join(greenlight::secrets_key::DEFAULT_FILE)).unwrap();

    let refusal = refused_start(&d.data);
    assert!(refusal.contains("does not exist"), "{refusal}");
    assert!(refusal.contains("sealed with key"), "{refusal}");

    let (ok, out) = secrets_command(&d, &["drop-unopened"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Would drop secret `webhook_url` of plugin `notify`"),
        "{out}"
    );
    refused_start(&d.data);

    let (ok, out) = secrets_command(&d, &["drop-unopened", "--confirm"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Dropped secret `webhook_url` of plugin `notify`"),
        "{out}"
    );
    let d = d.respawn().await;
    let (status, detail) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins/notify"))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["grant"]["secret_names"], json!([]), "{detail}");
    assert_eq!(detail["grant"]["allowed_hosts"], json!([host]), "{detail}");
}
