//! The README's "Releasing services on machines", step by step through the
//! CLI, on the test bed's hosts: the example agent configuration checked,
//! the plugins pushed and granted the agents with their token, an
//! inventory in the example's form applied, `examples/agent/flow.toml`
//! applied, and a release started and watched to its end.

use std::path::Path;

use super::hosts;
use crate::support::releases::wait_status;
use crate::support::{Daemon, binary, cli, cli_start_release};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/agent")
        .join(name)
}

/// Runs the CLI, which must succeed; returns its output.
fn run(d: &Daemon, args: &[&str]) -> String {
    let (ok, out, err) = cli(d, args);
    assert!(ok, "greenlight {args:?}: {out}{err}");
    out
}

#[tokio::test]
async fn the_readme_walkthrough_takes_hosts_to_a_first_release() {
    // 1-2. The example configuration is what `--check` accepts.
    let checked = std::process::Command::new(binary())
        .args(["agent", "--check"])
        .arg(example("agent.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{said}");
    assert!(said.contains("systemd unit shop.service"), "{said}");

    let hosts = hosts(3).await;
    hosts.store.publish("2.0.0").unwrap();

    // 3. The plugins, pushed and granted their releases' targets and the
    // agents' token.
    let d = Daemon::start().await;
    let plugins = Path::new(env!("GREENLIGHT_PLUGINS_DIR"));
    let secret = format!("agent_token={}", hosts.token());
    for (name, file) in [
        ("http-deployer", "http_deployer"),
        ("http-health", "http_health"),
        ("threshold-policy", "threshold_policy"),
    ] {
        let wasm = plugins.join(format!("{file}.wasm"));
        let wasm = wasm.to_str().unwrap();
        run(
            &d,
            &["plugin", "push", wasm, "--name", name, "--version", "1.0.0"],
        );
    }
    for name in ["http-deployer", "http-health"] {
        let mut args = vec!["plugin", "grant", name, "--allow-release-targets"];
        if name == "http-deployer" {
            args.extend(["--secret", secret.as_str(), "--deadline-ms", "120000"]);
            args.extend(["--max-outbound-requests", "1024"]);
        }
        run(&d, &args);
    }

    // 4. The inventory: the example's form, with the test bed's agents.
    let example_inventory = std::fs::read_to_string(example("inventory.toml")).unwrap();
    let lines: Vec<String> = hosts
        .targets()
        .iter()
        .map(|t| format!(r#"  {{ id = "{}", address = "{}" }},"#, t.id, t.address))
        .collect();
    let start = example_inventory.find("targets = [").unwrap();
    let inventory = format!(
        "{}targets = [\n{}\n]\n",
        &example_inventory[..start],
        lines.join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let inventory_file = dir.path().join("shop.toml");
    std::fs::write(&inventory_file, inventory).unwrap();
    run(
        &d,
        &["inventory", "apply", inventory_file.to_str().unwrap()],
    );

    // 5. The flow, its bake shortened for the test.
    let flow = std::fs::read_to_string(example("flow.toml")).unwrap();
    let short = flow.replace(r#"bake = "10m""#, r#"bake = "1s""#);
    assert_ne!(
        short, flow,
        "the example flow no longer bakes as the test expects"
    );
    let flow_file = dir.path().join("flow.toml");
    std::fs::write(&flow_file, short).unwrap();
    run(&d, &["flow", "apply", flow_file.to_str().unwrap()]);

    // 6. The release, started and watched to its end.
    let id = cli_start_release(&d, "shop", "prod", "2.0.0", "hosts");
    // The artifact store serves from this test's runtime, which a blocking
    // CLI call would stall: the release is awaited here, then watched.
    wait_status(&d, &id, "succeeded").await;
    let watched = run(&d, &["release", "watch", &id]);
    assert!(watched.contains("succeeded"), "{watched}");
    for host in &hosts.hosts {
        assert_eq!(host.current().as_deref(), Some("2.0.0"), "{watched}");
        assert!(host.in_rotation(), "{}", host.id);
    }
}
