//! `greenlight inventory …`: apply an inventory file, list and show
//! environments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Deserialize;

use super::client::{Client, ServerArgs};
use super::output::Answer;
use crate::api::model::{ApplicationDto, EnvironmentDto, EnvironmentRequest, PutEnvironmentDto};
use crate::domain::name::check_name;

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Create or replace the environments an inventory file describes (admin).
    Apply {
        /// The inventory file (TOML): `application` and `[environments.NAME]`.
        file: PathBuf,
    },
    /// List applications and their environments.
    List,
    /// Show one environment with its targets.
    Show {
        application: String,
        environment: String,
    },
    /// Replace an environment's targets with the Kubernetes workloads a
    /// label selector matches (admin): each Deployment, StatefulSet or
    /// DaemonSet becomes a target with the attributes the Kubernetes
    /// plugins need.
    Import(Box<ImportArgs>),
}

/// `greenlight inventory import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    application: String,
    environment: String,
    /// The kubeconfig to read (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig to read (repeatable, one per cluster;
    /// default: its current context). With several, target ids end in
    /// `.CONTEXT`.
    #[arg(long = "context")]
    contexts: Vec<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(long, short)]
    namespace: Option<String>,
    /// The label selector the workloads match, as kubectl takes it
    /// (`app=shop,tier!=db`).
    #[arg(long, short = 'l')]
    selector: String,
    /// A kind of workload to read (repeatable; default all three).
    #[arg(long = "kind", value_parser = ["Deployment", "StatefulSet", "DaemonSet"])]
    kinds: Vec<String>,
    /// The workload label whose value is the target's group (blue, green).
    #[arg(long, default_value = "greenlight.dev/group")]
    group_label: String,
    /// The containers a deploy sets the image of (comma-separated; default
    /// every container).
    #[arg(long)]
    containers: Option<String>,
    /// The grant secret holding the clusters' bearer token, for the
    /// plugins (default: theirs, `kubernetes-token`): `SECRET` for every
    /// context, or `CONTEXT=SECRET` for one (repeatable), since each
    /// cluster has a token of its own.
    #[arg(long = "token-secret")]
    token_secrets: Vec<String>,
    /// The group serving traffic now (default: the environment's, if it
    /// still has targets in it).
    #[arg(long)]
    live_group: Option<String>,
    /// Print the targets without changing the environment.
    #[arg(long)]
    dry_run: bool,
}

/// An inventory file: one application and its environments by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    application: String,
    environments: BTreeMap<String, EnvironmentRequest>,
}

/// Reads and checks a whole file before anything is sent, so a bad file
/// changes nothing.
fn read_file(file: &Path) -> anyhow::Result<InventoryFile> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let inventory: InventoryFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid inventory file", file.display()))?;
    if inventory.environments.is_empty() {
        bail!("{}: environments: name at least one", file.display());
    }
    let mut problems = Vec::new();
    if let Err(problem) = check_name("application", &inventory.application) {
        problems.push(problem.to_string());
    }
    for (name, request) in &inventory.environments {
        let environment = request
            .clone()
            .into_environment(&inventory.application, name);
        for e in environment.validate().err().unwrap_or_default() {
            match e.path.as_str() {
                "application" => {}
                "environment" => problems.push(format!("environments.{name}: {}", e.problem)),
                path => problems.push(format!("environments.{name}.{path}: {}", e.problem)),
            }
        }
    }
    if !problems.is_empty() {
        bail!("{}: {}", file.display(), problems.join("; "));
    }
    Ok(inventory)
}

/// Reads the workloads and puts them as the environment's targets.
async fn import(args: ImportArgs, server: &ServerArgs) -> anyhow::Result<()> {
    use super::kube::{self, Selection, config};
    let path = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => match std::env::var_os("KUBECONFIG") {
            Some(p) => PathBuf::from(p),
            None => {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
            }
        },
    };
    let contexts: Vec<Option<&str>> = if args.contexts.is_empty() {
        vec![None]
    } else {
        args.contexts.iter().map(|c| Some(c.as_str())).collect()
    };
    let accesses = contexts
        .into_iter()
        .map(|c| config::access(&path, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| accesses[0].namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let selection = Selection {
        namespace,
        selector: args.selector.clone(),
        kinds: if args.kinds.is_empty() {
            kube::KINDS.iter().map(|(k, _)| k.to_string()).collect()
        } else {
            args.kinds.clone()
        },
        group_label: args.group_label.clone(),
        containers: args.containers.clone(),
        token_secrets: kube::TokenSecrets::parse(&args.token_secrets, &accesses)?,
    };
    let targets = kube::read_targets(&accesses, &selection).await?;
    if targets.is_empty() {
        bail!(
            "no {} in namespace {} matches `{}`; nothing was changed",
            selection.kinds.join(", "),
            selection.namespace,
            selection.selector
        );
    }
    let client = Client::new(server)?;
    let (app, env) = (&args.application, &args.environment);
    let live_group = match &args.live_group {
        Some(g) => Some(g.clone()),
        None => client
            .fetch::<EnvironmentDto>(client.get(&format!("/api/v1/apps/{app}/envs/{env}")))
            .await
            .ok()
            .and_then(|a| a.value.live_group)
            .filter(|g| targets.iter().any(|t| t.group == *g)),
    };
    let request = EnvironmentRequest {
        targets,
        live_group,
    };
    if args.dry_run {
        for t in &request.targets {
            println!(
                "{}  {}  group={}  {:?}",
                t.id, t.address, t.group, t.attributes
            );
        }
        return Ok(());
    }
    let put = client
        .fetch::<PutEnvironmentDto>(
            client
                .put(&format!("/api/v1/apps/{app}/envs/{env}"))
                .json(&request),
        )
        .await?;
    client.print(&put, |p| {
        let what = if p.created { "Created" } else { "Replaced" };
        println!(
            "{what} {}/{} with {} workloads:",
            p.environment.application,
            p.environment.name,
            p.environment.targets.len()
        );
        for t in &p.environment.targets {
            let kind = t.attributes.get("kind").map_or("?", String::as_str);
            let cluster = t.attributes.get("cluster").map_or("?", String::as_str);
            println!("  {:<32} {kind:<12} {cluster}  group={}", t.id, t.group);
        }
        for warning in &p.warnings {
            eprintln!("warning: {warning}");
        }
    })
}

pub async fn run(cmd: InventoryCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        InventoryCommand::Import(args) => import(*args, server).await,
        InventoryCommand::Apply { file } => {
            let inventory = read_file(&file)?;
            let client = Client::new(server)?;
            let app = &inventory.application;
            // Environments are put one by one; when one is refused, those
            // put before it are still reported, then the refusal.
            let mut put = Vec::new();
            let mut refused = None;
            for (name, request) in &inventory.environments {
                let answer = client
                    .fetch::<PutEnvironmentDto>(
                        client
                            .put(&format!("/api/v1/apps/{app}/envs/{name}"))
                            .json(request),
                    )
                    .await
                    .with_context(|| format!("{}: environment `{name}`", file.display()));
                match answer {
                    Ok(answer) => put.push(answer),
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            let put: Answer<Vec<PutEnvironmentDto>> = put.into_iter().collect();
            client.print(&put, |put| {
                for p in put {
                    let what = if p.created { "Created" } else { "Replaced" };
                    let env = &p.environment;
                    println!(
                        "{what} {}/{} ({} targets)",
                        env.application,
                        env.name,
                        env.targets.len()
                    );
                    for warning in &p.warnings {
                        eprintln!("warning: {warning}");
                    }
                }
            })?;
            refused.map_or(Ok(()), Err)
        }
        InventoryCommand::List => {
            let client = Client::new(server)?;
            let apps = client
                .fetch::<Vec<ApplicationDto>>(client.get("/api/v1/apps"))
                .await?;
            client.print(&apps, |apps| {
                if apps.is_empty() {
                    println!(
                        "No applications yet. Describe one with `greenlight inventory apply INVENTORY.toml`."
                    );
                    return;
                }
                println!(
                    "{:<20} {:<16} {:>7}  {:<16} {:<8} VERSION",
                    "APPLICATION", "ENVIRONMENT", "TARGETS", "GROUPS", "LIVE"
                );
                for app in apps {
                    for env in &app.environments {
                        println!(
                            "{:<20} {:<16} {:>7}  {:<16} {:<8} {}",
                            app.name,
                            env.name,
                            env.targets,
                            or_dash(&env.groups.join(",")),
                            env.live_group.as_deref().unwrap_or("-"),
                            env.current_version.as_deref().unwrap_or("-"),
                        );
                    }
                }
            })
        }
        InventoryCommand::Show {
            application,
            environment,
        } => {
            let client = Client::new(server)?;
            let env = client
                .fetch::<EnvironmentDto>(
                    client.get(&format!("/api/v1/apps/{application}/envs/{environment}")),
                )
                .await?;
            client.print(&env, |env| {
                println!("{}/{}", env.application, env.name);
                match &env.version_unknown {
                    Some(why) => println!("  version:    unknown ({why})"),
                    None => println!(
                        "  version:    {}",
                        env.current_version.as_deref().unwrap_or("-")
                    ),
                }
                println!("  live group: {}", env.live_group.as_deref().unwrap_or("-"));
                println!("\n{:<16} {:<24} {:<8} LABELS", "ID", "ADDRESS", "GROUP");
                for t in &env.targets {
                    let labels: Vec<String> =
                        t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{:<16} {:<24} {:<8} {}",
                        t.id,
                        t.address,
                        or_dash(&t.group),
                        or_dash(&labels.join(","))
                    );
                }
            })
        }
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> anyhow::Result<InventoryFile> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inventory.toml");
        std::fs::write(&file, text).unwrap();
        read_file(&file)
    }

    #[test]
    fn a_file_reads_as_written() {
        let inventory = read(
            r#"
application = "shop"
[environments.prod]
live_group = "blue"
targets = [{ id = "web-1", address = "10.0.0.1:8080", group = "blue", labels = { zone = "eu-1" } }]
"#,
        )
        .unwrap();
        let prod = inventory.environments["prod"]
            .clone()
            .into_environment(&inventory.application, "prod");
        assert_eq!(prod.live_group.as_deref(), Some("blue"));
        assert_eq!(prod.targets[0].labels, [("zone".into(), "eu-1".into())]);
    }

    #[test]
    fn every_problem_is_named_with_its_full_path() {
        let err = read(
            r#"
application = "Shop"
[environments.Prod]
targets = [{ id = "a", address = "x" }, { id = "a", address = "" }]
"#,
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "inventory.toml: application: `Shop`",
            "environments.Prod: `Prod` is not a name",
            "environments.Prod.targets[1].id: target id `a` is used twice",
            "environments.Prod.targets[1].address: must not be empty",
        ] {
            assert!(err.contains(needle), "`{needle}` missing from `{err}`");
        }
        assert_eq!(err.matches("`Shop`").count(), 1, "{err}");
        let err = read("application = \"shop\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("missing field `environments`"),
            "{err:#}"
        );
    }
}
