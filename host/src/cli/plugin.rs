//! `greenlight plugin …`: push, list, show, grant, invoke and test plugins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::client::{Client, ServerArgs};
use super::output::{Answer, Output};
use crate::api::model::{
    GrantDto, GrantEditDto, GrantView, InvokeRequest, InvokeResponse, LimitsDto, OriginTlsDto,
    OutputDto, OwnersDto, PluginDetailDto, PluginDto, UploadDto,
};
use crate::api::release_model::CommentRequest;
use crate::clock::SystemClock;
use crate::plugins::{self, Options, Runtime};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Start a plugin project from a template: it builds as it is, and its
    /// README says how, then how to test, upload and use it.
    New {
        /// The plugin's name (and the project's folder).
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: super::template::Lang,
        /// The plugin world it implements.
        #[arg(long, value_enum, default_value = "check")]
        world: super::template::World,
        /// Where to write the project (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Upload a component to the daemon.
    Push {
        /// The `.wasm` component.
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
    },
    /// List the uploaded plugins.
    List,
    /// Show a plugin's versions and grant.
    Show { name: String },
    /// Change a plugin's grant (admin): add and remove hosts, configuration,
    /// secrets and TLS settings, set limits; everything not named is kept.
    /// With --replace, the grant becomes exactly what the options give.
    Grant(Box<GrantArgs>),
    /// Let a version run under the plugin's grant, and be picked by flows
    /// that name no version (admin).
    Approve {
        name: String,
        version: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Show or change who may publish new versions of a plugin (changes: admin).
    Owners {
        name: String,
        /// A token name to add (repeatable).
        #[arg(long)]
        add: Vec<String>,
        /// A token name to remove (repeatable).
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Invoke an uploaded plugin through the daemon's sandbox.
    Invoke {
        /// NAME or NAME@VERSION (latest by default).
        plugin: String,
        /// The invocation input (JSON: context, targets, …).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Run a component locally, without a daemon, in the same sandbox.
    Test(TestArgs),
}

/// `greenlight plugin grant`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    name: String,
    /// An origin the plugin may call, such as http://127.0.0.1:9090 (repeatable).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// An origin the plugin may no longer call, with its TLS settings (repeatable).
    #[arg(long = "remove-host", conflicts_with = "replace")]
    remove_hosts: Vec<String>,
    /// Let the plugin call the targets of the release it works for, at the
    /// addresses the inventory gives them, as targets come and go.
    #[arg(long, conflicts_with = "no_release_targets")]
    allow_release_targets: bool,
    /// Stop the plugin calling its releases' targets, but for the hosts
    /// the grant names.
    #[arg(long)]
    no_release_targets: bool,
    /// A configuration value KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = key_value)]
    config: Vec<(String, String)>,
    /// A configuration key to remove (repeatable).
    #[arg(long = "remove-config", conflicts_with = "replace")]
    remove_config: Vec<String>,
    /// A secret NAME=VALUE (repeatable); never shown again.
    #[arg(long = "secret", value_parser = key_value)]
    secrets: Vec<(String, String)>,
    /// A secret to remove, by name (repeatable).
    #[arg(long = "remove-secret", conflicts_with = "replace")]
    remove_secrets: Vec<String>,
    #[arg(long)]
    deadline_ms: Option<u64>,
    #[arg(long)]
    memory_mib: Option<u64>,
    #[arg(long)]
    max_output_bytes: Option<u64>,
    #[arg(long)]
    max_outbound_requests: Option<u32>,
    /// A limit to return to the daemon's default: deadline_ms, memory_mib,
    /// max_output_bytes or max_outbound_requests (repeatable).
    #[arg(long = "reset-limit", conflicts_with = "replace")]
    reset_limits: Vec<String>,
    /// ORIGIN=FILE: trust the PEM certificates in FILE for this https
    /// origin instead of the public roots (repeatable).
    #[arg(long = "tls-ca", value_parser = key_value)]
    tls_ca: Vec<(String, String)>,
    /// ORIGIN=CERT_SECRET:KEY_SECRET: present the client certificate and
    /// key held in these secrets of the grant to this https origin
    /// (repeatable).
    #[arg(long = "tls-client-cert", value_parser = key_value)]
    tls_client_cert: Vec<(String, String)>,
    /// An origin whose TLS settings to remove, keeping the host (repeatable).
    #[arg(long = "remove-tls", conflicts_with = "replace")]
    remove_tls: Vec<String>,
    /// Replace the whole grant with what the options give: hosts,
    /// configuration and secrets not given are dropped.
    #[arg(long)]
    replace: bool,
}

impl GrantArgs {
    /// Whether the options change anything.
    fn changes_something(&self) -> bool {
        let lists = [
            &self.allow_hosts,
            &self.remove_hosts,
            &self.remove_config,
            &self.remove_secrets,
            &self.reset_limits,
            &self.remove_tls,
        ];
        lists.iter().any(|l| !l.is_empty())
            || !self.config.is_empty()
            || !self.secrets.is_empty()
            || !self.tls_ca.is_empty()
            || !self.tls_client_cert.is_empty()
            || self.allow_release_targets
            || self.no_release_targets
            || self.deadline_ms.is_some()
            || self.memory_mib.is_some()
            || self.max_output_bytes.is_some()
            || self.max_outbound_requests.is_some()
    }

    fn limits(&self) -> LimitsDto {
        LimitsDto {
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            max_output_bytes: self.max_output_bytes,
            max_outbound_requests: self.max_outbound_requests,
        }
    }
}

/// `greenlight plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The `.wasm` component.
    file: PathBuf,
    /// The invocation input (JSON: context, targets, …).
    #[arg(long)]
    input: Option<PathBuf>,
    /// A grant to run under (JSON, as for the API).
    #[arg(long)]
    grant: Option<PathBuf>,
    /// Keep compiled components in this directory, so that testing the
    /// same component again skips compiling it (a Python or JavaScript
    /// component takes seconds to compile).
    #[arg(long)]
    artifact_dir: Option<PathBuf>,
}

/// The grant's TLS entries from `--tls-ca` and `--tls-client-cert`, one per
/// origin.
fn tls_entries(
    cas: Vec<(String, String)>,
    client_certs: Vec<(String, String)>,
) -> anyhow::Result<Vec<OriginTlsDto>> {
    let mut entries: Vec<OriginTlsDto> = Vec::new();
    let mut entry = |origin: String| -> usize {
        if let Some(i) = entries.iter().position(|e| e.origin == origin) {
            return i;
        }
        entries.push(OriginTlsDto {
            origin,
            ca_pem: None,
            client_cert_secret: None,
            client_key_secret: None,
        });
        entries.len() - 1
    };
    let mut cas_read = Vec::new();
    for (origin, path) in cas {
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("--tls-ca {origin}: cannot read {path}"))?;
        cas_read.push((entry(origin), pem));
    }
    let mut pairs = Vec::new();
    for (origin, secrets) in client_certs {
        let Some((cert, key)) = secrets.split_once(':') else {
            bail!("--tls-client-cert {origin}={secrets}: expected ORIGIN=CERT_SECRET:KEY_SECRET");
        };
        pairs.push((entry(origin), cert.to_string(), key.to_string()));
    }
    for (i, pem) in cas_read {
        entries[i].ca_pem = Some(pem);
    }
    for (i, cert, key) in pairs {
        entries[i].client_cert_secret = Some(cert);
        entries[i].client_key_secret = Some(key);
    }
    Ok(entries)
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn read_json<T: serde::de::DeserializeOwned + Default>(
    path: Option<&PathBuf>,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid input", path.display()))
}

pub async fn run(cmd: PluginCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::New {
            name,
            lang,
            world,
            dir,
        } => new(&name, lang, world, dir),
        PluginCommand::Push {
            file,
            name,
            version,
        } => push(server, &file, &name, &version).await,
        PluginCommand::Approve {
            name,
            version,
            comment,
        } => approve(server, &name, &version, comment).await,
        PluginCommand::Owners { name, add, remove } => owners(server, &name, add, remove).await,
        PluginCommand::List => list(server).await,
        PluginCommand::Show { name } => show(server, &name).await,
        PluginCommand::Grant(args) => grant(server, *args).await,
        PluginCommand::Invoke { plugin, input } => invoke(server, &plugin, input.as_ref()).await,
        PluginCommand::Test(args) => test(server, args).await,
    }
}

/// Uploads a component and says whether it waits for an admin's approval.
async fn push(server: &ServerArgs, file: &Path, name: &str, version: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let client = Client::new(server)?;
    eprintln!(
        "Uploading {} ({} bytes); the daemon compiles it before answering…",
        file.display(),
        bytes.len()
    );
    let up = client
        .fetch::<UploadDto>(
            client
                .post("/api/v1/plugins")
                .query(&[("name", name), ("version", version)])
                .body(bytes),
        )
        .await?;
    client.print(&up, |up| {
        let p = &up.plugin;
        let what = if up.created {
            "Uploaded"
        } else {
            "Already there:"
        };
        println!(
            "{what} {}@{} ({} plugin, {})",
            p.name, p.version, p.kind, p.digest
        );
        if !p.approved {
            println!(
                "It runs without its grant, and flows that name no version do not pick it, until an admin approves it: greenlight plugin approve {} {}",
                p.name, p.version
            );
        }
        if let Some(advice) = &up.advice {
            eprintln!("hint: {advice}");
        }
    })
}

/// Every plugin version, as a table.
async fn list(server: &ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let plugins = client
        .fetch::<Vec<PluginDto>>(client.get("/api/v1/plugins"))
        .await?;
    client.print(&plugins, |plugins| {
        if plugins.is_empty() {
            println!(
                "No plugins yet. Upload one with `greenlight plugin push FILE.wasm --name NAME --version 0.1.0`."
            );
            return;
        }
        println!(
            "{:<24} {:<10} {:<16} {:>10}  DIGEST",
            "NAME", "VERSION", "KIND", "SIZE"
        );
        for p in plugins {
            println!(
                "{:<24} {:<10} {:<16} {:>10}  {}",
                p.name,
                p.version,
                p.kind,
                p.size_bytes,
                p.digest.get(..19).unwrap_or(&p.digest)
            );
        }
    })
}

/// A plugin's owners, versions with their approvals, grant and store use.
async fn show(server: &ServerArgs, name: &str) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let detail = client
        .fetch::<PluginDetailDto>(client.get(&format!("/api/v1/plugins/{name}")))
        .await?;
    client.print(&detail, |d| {
        println!("{}", d.name);
        println!("  owners: {}", d.owners.join(", "));
        for v in &d.versions {
            let stack = v
                .stack_bytes
                .map_or(String::new(), |b| format!("  stack {} KiB", b / 1024));
            let approval = match &v.approved_by {
                Some(by) => format!("approved by {by}"),
                None => "waiting for an admin's approval".to_string(),
            };
            println!(
                "  {}  {}  {}  uploaded by {}, {approval}{stack}",
                v.version, v.kind, v.digest, v.uploaded_by
            );
        }
        print_grant(&d.grant);
        println!(
            "  key-value store: {} of {} KiB used",
            d.kv_used_bytes.div_ceil(1024),
            d.kv_quota_bytes / 1024
        );
    })
}

/// Changes a plugin's grant, or with `--replace` replaces it.
async fn grant(server: &ServerArgs, args: GrantArgs) -> anyhow::Result<()> {
    if !args.changes_something() && !args.replace {
        bail!(
            "nothing to change: name hosts, configuration, secrets or limits to add or remove \
             (`greenlight plugin show {}` shows the grant)",
            args.name
        );
    }
    let client = Client::new(server)?;
    let name = args.name.clone();
    let path = format!("/api/v1/plugins/{name}/grant");
    let limits = args.limits();
    let tls = tls_entries(args.tls_ca, args.tls_client_cert)?;
    let request = if args.replace {
        client.put(&path).json(&GrantDto {
            tls,
            allowed_hosts: args.allow_hosts,
            config: args.config.into_iter().collect(),
            secrets: args.secrets.into_iter().collect(),
            limits,
            allow_release_targets: args.allow_release_targets,
        })
    } else {
        let release_targets = match (args.allow_release_targets, args.no_release_targets) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        client.patch(&path).json(&GrantEditDto {
            allow_hosts: args.allow_hosts,
            remove_hosts: args.remove_hosts,
            allow_release_targets: release_targets,
            config: args.config.into_iter().collect(),
            remove_config: args.remove_config,
            secrets: args.secrets.into_iter().collect(),
            remove_secrets: args.remove_secrets,
            limits,
            reset_limits: args.reset_limits,
            tls,
            remove_tls: args.remove_tls,
        })
    };
    let grant = client.fetch::<GrantView>(request).await?;
    let done = if args.replace { "replaced" } else { "changed" };
    client.print(&grant, |g| {
        println!("Grant of {name} {done}.");
        print_grant(g);
    })
}

/// Runs an uploaded plugin through the daemon's sandbox.
async fn invoke(server: &ServerArgs, plugin: &str, input: Option<&PathBuf>) -> anyhow::Result<()> {
    let (name, version) = plugin.split_once('@').unwrap_or((plugin, "latest"));
    let request: InvokeRequest = read_json(input)?;
    let client = Client::new(server)?;
    let answer = client
        .fetch::<InvokeResponse>(
            client
                .post(&format!("/api/v1/plugins/{name}/{version}/invoke"))
                .json(&request),
        )
        .await?;
    report(client.output(), &answer)
}

/// Writes a project from a template and says what is next.
fn new(
    name: &str,
    lang: super::template::Lang,
    world: super::template::World,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let written = super::template::write(&dir, lang, world, name)?;
    println!(
        "wrote {} files into {}: see {} for how to build, test and upload it",
        written.len(),
        dir.display(),
        dir.join("README.md").display()
    );
    Ok(())
}

/// Runs a component locally, without a daemon, in the same sandbox.
async fn test(server: &ServerArgs, args: TestArgs) -> anyhow::Result<()> {
    let TestArgs {
        file,
        input,
        grant,
        artifact_dir,
    } = args;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let request: InvokeRequest = read_json(input.as_ref())?;
    let grant = read_json::<GrantDto>(grant.as_ref())?
        .into_grant()
        .map_err(|m| anyhow::anyhow!("the grant file is invalid: {m}"))?;
    grant
        .check_tls()
        .map_err(|m| anyhow::anyhow!("the grant file is invalid: {m}"))?;
    let scratch = tempfile::tempdir()?;
    let store = Store::open(scratch.path())?;
    // One call: a large component is compiled quickly and not optimised
    // after, which would only keep the machine busy.
    let options = Options {
        max_concurrent_invocations: 2,
        artifact_dir,
        optimise_after_quick: false,
        ..Options::default()
    };
    grant
        .limits
        .validate(&options.limit_bounds())
        .map_err(anyhow::Error::msg)?;
    let runtime = Runtime::new(options, Arc::new(store), Arc::new(SystemClock))?;
    let kept = match &runtime.options().artifact_dir {
        Some(dir) => format!("kept in {} for next time", dir.display()),
        None => "--artifact-dir DIR keeps it for next time".to_string(),
    };
    let plugin = with_progress(&file, bytes.len(), &kept, runtime.load(bytes.into())).await?;
    let call = request
        .into_call(plugin.kind())
        .map_err(|problems| anyhow::anyhow!(crate::domain::flow::join_errors(&problems)))?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    // Here the input is the inventory: a grant file allowing the release's
    // targets lets the plugin call the targets the input gives it.
    let grant = match grant.release_targets {
        true => grant.reaching(call.targets()),
        false => grant,
    };
    let mut result = runtime.invoke(&plugin, &name, Arc::new(grant), call).await;
    if let Err(e) = &mut result {
        e.name_fix(&name, &plugins::Fix::GrantFile);
    }
    // Advice goes to standard error, so that `--json` output stays one
    // document.
    if let Some(hint) = plugins::stack_advice(plugin.stack_bytes(), runtime.options()) {
        eprintln!("hint: {hint}");
    }
    let mut response = InvokeResponse::from(result);
    // The grant given on the command line is the one it ran under.
    response.grant_applied = true;
    report(Output::new(server.json), &Answer::local(response)?)
}

/// Waits for a component to load, saying on standard error what is taking
/// the time once it takes more than a second (a Python or JavaScript
/// component compiles for tens of seconds the first time), so that `--json`
/// output stays one document.
async fn with_progress<T>(
    file: &Path,
    size: usize,
    kept: &str,
    load: impl std::future::Future<Output = T>,
) -> T {
    use std::io::{IsTerminal, Write};
    let started = std::time::Instant::now();
    let name = file.display().to_string();
    let terminal = std::io::stderr().is_terminal();
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
    interval.tick().await;
    tokio::pin!(load);
    let mut seconds = 0u64;
    let loaded = loop {
        tokio::select! {
            loaded = &mut load => break loaded,
            _ = interval.tick() => seconds += 1,
        }
        let line = format!(
            "compiling {name} ({:.1} MiB): {seconds} s; {kept}",
            size as f64 / (1024.0 * 1024.0)
        );
        if terminal {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else if seconds == 1 || seconds.is_multiple_of(10) {
            eprintln!("{line}");
        }
    };
    let took = started.elapsed();
    if took >= std::time::Duration::from_secs(1) {
        let back = if terminal { "\r\x1b[K" } else { "" };
        eprintln!("{back}compiled {name} in {:.1} s", took.as_secs_f64());
    }
    loaded
}

async fn approve(
    server: &ServerArgs,
    name: &str,
    version: &str,
    comment: String,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let plugin = client
        .fetch::<PluginDto>(
            client
                .post(&format!("/api/v1/plugins/{name}/{version}/approve"))
                .json(&CommentRequest { comment }),
        )
        .await?;
    client.print(&plugin, |p| {
        println!(
            "{}@{} approved by {}: it runs under the plugin's grant from now on.",
            p.name,
            p.version,
            p.approved_by.as_deref().unwrap_or("?")
        );
    })
}

/// Shows the owners, or adds and removes some and shows the result.
async fn owners(
    server: &ServerArgs,
    name: &str,
    add: Vec<String>,
    remove: Vec<String>,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let detail = client
        .fetch::<PluginDetailDto>(client.get(&format!("/api/v1/plugins/{name}")))
        .await?;
    if add.is_empty() && remove.is_empty() {
        return client.print(&detail, |d| {
            println!("Owners of {name}: {}", d.owners.join(", "));
        });
    }
    let mut owners = detail.value.owners;
    owners.retain(|o| !remove.contains(o));
    owners.extend(add);
    let answer = client
        .fetch::<OwnersDto>(
            client
                .put(&format!("/api/v1/plugins/{name}/owners"))
                .json(&OwnersDto { owners }),
        )
        .await?;
    client.print(&answer, |a| {
        println!("Owners of {name}: {}", a.owners.join(", "));
    })
}

fn print_grant(g: &GrantView) {
    println!(
        "  allowed hosts: {}",
        if g.allowed_hosts.is_empty() {
            "none".into()
        } else {
            g.allowed_hosts.join(", ")
        }
    );
    if g.allow_release_targets {
        println!("  and the targets of its releases, as the inventory lists them");
    }
    for (k, v) in &g.config {
        println!("  config {k} = {v}");
    }
    if !g.secret_names.is_empty() {
        println!("  secrets: {}", g.secret_names.join(", "));
    }
    println!("  limits: {}", limits_words(&g.limits));
}

/// A grant's limits in words: those it sets, then those left at the
/// daemon's defaults.
fn limits_words(l: &crate::api::model::LimitsDto) -> String {
    let mut set = Vec::new();
    let mut unset = Vec::new();
    let mut add = |value: Option<String>, name: &'static str| match value {
        Some(v) => set.push(v),
        None => unset.push(name),
    };
    add(
        l.deadline_ms.map(|v| format!("deadline {v} ms")),
        "deadline",
    );
    add(l.memory_mib.map(|v| format!("memory {v} MiB")), "memory");
    add(
        l.max_output_bytes.map(|v| format!("output {v} bytes")),
        "output",
    );
    add(
        l.max_outbound_requests
            .map(|v| format!("{v} outbound requests")),
        "outbound requests",
    );
    let defaults = match unset.as_slice() {
        [] => String::new(),
        [one] => format!("{one} at the daemon's default"),
        [init @ .., last] => format!("{} and {last} at the daemon's defaults", init.join(", ")),
    };
    match (set.is_empty(), defaults.is_empty()) {
        (true, _) => "all at the daemon's defaults".into(),
        (false, true) => set.join(", "),
        (false, false) => format!("{}; {defaults}", set.join(", ")),
    }
}

/// Prints an invocation's result; a failed invocation is an error exit.
fn report(output: Output, answer: &Answer<InvokeResponse>) -> anyhow::Result<()> {
    output.print(answer, |r| {
        if !r.grant_applied {
            println!(
                "(no admin has approved this version yet: it ran under the empty grant, with no hosts, configuration or secrets)"
            );
        }
        for line in &r.logs {
            let fields: Vec<String> = line
                .fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("[{}] {} {}", line.level, line.message, fields.join(" "));
        }
        match (&r.output, &r.error) {
            (Some(output), _) => print_output(output),
            (None, Some(e)) => {
                println!("FAILED {}: {}", e.code, e.message);
                if let Some(bt) = &e.backtrace {
                    println!("{bt}");
                }
            }
            (None, None) => {}
        }
        println!(
            "({:.2} ms, {} HTTP requests)",
            r.duration_ms, r.http_requests
        );
    })?;
    if let Some(e) = &answer.value.error {
        bail!("the plugin failed: {}", e.code);
    }
    Ok(())
}

fn print_output(output: &OutputDto) {
    match output {
        OutputDto::Verdict(v) | OutputDto::Precheck { verdict: v, .. } => {
            println!("{}: {}", v.status.to_uppercase(), v.summary);
            for m in &v.metrics {
                println!("  {} = {}", m.name, m.value);
            }
            if let OutputDto::Precheck {
                forward_only: true, ..
            } = output
            {
                println!("  forward-only: automatic rollback will stop before this release");
            }
        }
        OutputDto::Decision(d) => println!("{}: {}", d.kind.to_uppercase(), d.reason),
        other => println!(
            "{}",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::limits_words;
    use crate::api::model::LimitsDto;

    fn limits(deadline: Option<u64>, requests: Option<u32>) -> LimitsDto {
        LimitsDto {
            deadline_ms: deadline,
            memory_mib: None,
            max_output_bytes: None,
            max_outbound_requests: requests,
        }
    }

    #[test]
    fn limits_read_as_words_naming_what_is_left_to_the_daemon() {
        assert_eq!(
            limits_words(&limits(None, None)),
            "all at the daemon's defaults"
        );
        assert_eq!(
            limits_words(&limits(Some(120_000), Some(1024))),
            "deadline 120000 ms, 1024 outbound requests; memory and output at the daemon's defaults"
        );
        assert_eq!(
            limits_words(&LimitsDto {
                deadline_ms: Some(5),
                memory_mib: Some(64),
                max_output_bytes: Some(10),
                max_outbound_requests: None,
            }),
            "deadline 5 ms, memory 64 MiB, output 10 bytes; outbound requests at the daemon's default"
        );
    }
}
