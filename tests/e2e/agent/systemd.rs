//! The README's "Run it under systemd" on a real systemd: the example
//! units, their paths pointed at this test's directory, installed with
//! `systemctl enable --now greenlight-agent`; the agent, itself a unit,
//! releases the service through `systemctl stop` and `start` of
//! `shop.service`; a restart of the agent leaves the service running
//! (`KillMode=process`); a version that cannot start is rolled back and
//! the unit runs the previous one again.

use std::net::SocketAddr;
use std::path::Path;

use greenlight::fleet::{ArtifactStore, Target};

use super::{daemon_for, flow};
use crate::support::binary;
use crate::support::releases::{start_release, wait_status};
use crate::support::systemd::Systemd;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/agent")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `text` with `from` replaced, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer holds {from:?}");
    text.replace(from, to)
}

/// The agent's configuration: the example's service section as it is.
fn agent_config(
    dir: &Path,
    store: &ArtifactStore,
    agent: SocketAddr,
    service: SocketAddr,
) -> String {
    format!(
        r#"listen = "{agent}"
token_file = "{dir}/token"
state_dir = "{dir}/shop"

[artifact]
url = "{url}"
sha256_url = "{sha}"

[service]
systemd_unit = "shop.service"

[health]
url = "http://{service}/health"

[drain]
timeout_ms = 2000
"#,
        dir = dir.display(),
        url = store.url_template(),
        sha = store.sha256_template(),
    )
}

/// The example units, pointed at this test's files, with their output in
/// files of their own (there is no journald in the test bed).
fn install_units(systemd: &Systemd, dir: &Path, service: SocketAddr) {
    let units = systemd.units();
    let config = dir.join("agent.toml");
    let agent = replaced(
        &example("greenlight-agent.service"),
        "/usr/local/bin/greenlight",
        binary(),
    );
    let agent = replaced(
        &agent,
        "/etc/greenlight-agent/agent.toml",
        config.to_str().unwrap(),
    );
    let state = dir.join("shop");
    let shop = replaced(
        &example("shop.service"),
        "ExecStart=/var/lib/greenlight-agent/shop/current/bin/shop --port 8080",
        &format!("ExecStart={} sample-service --listen {service}", binary()),
    );
    let shop = replaced(
        &shop,
        "/var/lib/greenlight-agent/shop",
        state.to_str().unwrap(),
    );
    std::fs::write(units.join("greenlight-agent.service"), agent).unwrap();
    std::fs::write(units.join("shop.service"), shop).unwrap();
    for unit in ["greenlight-agent", "shop"] {
        let log = dir.join(format!("{unit}.log"));
        let drop_in = units.join(format!("{unit}.service.d"));
        std::fs::create_dir_all(&drop_in).unwrap();
        std::fs::write(
            drop_in.join("test-bed.conf"),
            format!(
                "[Service]\nStandardOutput=append:{log}\nStandardError=append:{log}\n",
                log = log.display()
            ),
        )
        .unwrap();
    }
}

/// What the service answers on `/health`.
async fn served_version(service: SocketAddr) -> Option<String> {
    let body: serde_json::Value = reqwest::get(format!("http://{service}/health"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(body["version"].as_str()?.to_string())
}

/// Waits until the agent answers, as `curl …/agent/health` in the README.
async fn await_agent(systemd: &Systemd, dir: &Path, agent: SocketAddr) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while reqwest::get(format!("http://{agent}/agent/health"))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent does not answer: {}\n{}\n{}",
            systemd.systemctl(&["status", "greenlight-agent"]).await.out,
            std::fs::read_to_string(dir.join("greenlight-agent.log")).unwrap_or_default(),
            systemd.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The version directory process `pid` runs in.
fn cwd_version(pid: i32) -> String {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    cwd.file_name().unwrap().to_string_lossy().to_string()
}

#[tokio::test]
async fn under_systemd_the_agent_releases_a_unit_and_rolls_back_one_that_cannot_start() {
    let systemd = Systemd::boot().await;
    let store = ArtifactStore::start().await.unwrap();
    store.publish("1.0.0").unwrap();
    store.publish("2.0.0").unwrap();
    store.publish_unrunnable("3.0.0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, service) = (free_addr(), free_addr());
    let token = "systemd-test-bed-token-0123456789";
    std::fs::write(dir.path().join("token"), token).unwrap();
    std::fs::write(
        dir.path().join("agent.toml"),
        agent_config(dir.path(), &store, agent, service),
    )
    .unwrap();
    install_units(&systemd, dir.path(), service);

    // 3. As the README says.
    systemd.must(&["daemon-reload"]).await;
    systemd.must(&["enable", "--now", "greenlight-agent"]).await;
    await_agent(&systemd, dir.path(), agent).await;
    assert_eq!(
        systemd
            .property("greenlight-agent.service", "ActiveState")
            .await,
        "active"
    );

    let targets = [Target {
        id: "web-1".into(),
        address: agent.to_string(),
        group: String::new(),
    }];
    // A version that never gets healthy fails its batch in 3 s.
    let flow = flow(1).replace(
        r#"health_timeout_ms = "20000""#,
        r#"health_timeout_ms = "3000""#,
    );
    let d = daemon_for(&[format!("http://{agent}")], token, &targets, &flow).await;
    let shop_log = || std::fs::read_to_string(dir.path().join("shop.log")).unwrap_or_default();

    let mut pids = Vec::new();
    for version in ["1.0.0", "2.0.0"] {
        let id = start_release(&d, "shop", "prod", version, "agents").await;
        let done = wait_status(&d, &id, "succeeded").await;
        assert_eq!(
            systemd.property("shop.service", "ActiveState").await,
            "active",
            "{done:#}\n{}",
            shop_log()
        );
        let pid = systemd
            .main_pid("shop.service")
            .await
            .expect("shop.service has a main process");
        assert_eq!(
            cwd_version(pid),
            version,
            "systemd runs the unit from `current`"
        );
        assert_eq!(served_version(service).await.as_deref(), Some(version));
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1], "the unit was not restarted for 2.0.0");

    // The agent restarted by systemd: the service it released keeps running.
    systemd.must(&["restart", "greenlight-agent"]).await;
    await_agent(&systemd, dir.path(), agent).await;
    assert_eq!(systemd.main_pid("shop.service").await, Some(pids[1]));

    // 3.0.0 exits as it starts; systemd restarts it until it gives up.
    let id = start_release(&d, "shop", "prod", "3.0.0", "agents").await;
    let done = wait_status(&d, &id, "rolled-back").await;
    let reason = done["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not healthy on 3.0.0") && reason.contains("shop.service is "),
        "the reason names neither the version nor the unit: {done:#}"
    );
    assert!(
        shop_log().contains("cannot read ./VERSION"),
        "3.0.0 did not run: {}",
        shop_log()
    );
    assert_eq!(
        systemd.property("shop.service", "ActiveState").await,
        "active",
        "{done:#}\n{}\n{}",
        shop_log(),
        systemd.systemctl(&["status", "shop.service"]).await.out
    );
    let pid = systemd.main_pid("shop.service").await.unwrap();
    assert_eq!(cwd_version(pid), "2.0.0");
    assert_eq!(served_version(service).await.as_deref(), Some("2.0.0"));
    let current = std::fs::read_link(dir.path().join("shop/current")).unwrap();
    assert!(current.ends_with("2.0.0"), "{}", current.display());
}
