//! `greenlight token …` and `greenlight audit`: tokens (admins only) and the
//! audit log.

use clap::Subcommand;
use serde_json::json;

use super::client::{Client, ServerArgs};
use super::release::view::{date_time, table};
use crate::api::model::{CreatedTokenDto, TokenDto};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once and never again.
    Create {
        /// A unique name: it identifies the caller in approvals and the audit log.
        #[arg(long)]
        name: String,
        /// admin, release-manager, plugin-author, scheduler or viewer.
        #[arg(long)]
        role: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

pub async fn run(cmd: TokenCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { name, role } => {
            let client = Client::new(server)?;
            let created = client
                .fetch::<CreatedTokenDto>(
                    client
                        .post("/api/v1/tokens")
                        .json(&json!({"name": name, "role": role})),
                )
                .await?;
            client.print(&created, |created| {
                println!(
                    "Created token `{}` ({}). Keep it now; it is not shown again:",
                    created.info.name, created.info.role
                );
                println!("{}", created.token);
            })
        }
        TokenCommand::List => {
            let client = Client::new(server)?;
            let tokens = client
                .fetch::<Vec<TokenDto>>(client.get("/api/v1/tokens"))
                .await?;
            client.print(&tokens, |tokens| {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.clone(),
                            date_time(t.created_at_ms),
                            t.created_by.clone().unwrap_or_else(|| "-".into()),
                            if t.revoked { "revoked" } else { "active" }.to_string(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["NAME", "ROLE", "CREATED", "BY", "STATE"], &rows)
                );
            })
        }
        TokenCommand::Revoke { name } => {
            let client = Client::new(server)?;
            let revoked = client
                // The name goes in the query, which carries any stored
                // name; a path would collapse `.` and `..`.
                .fetch::<TokenDto>(client.delete("/api/v1/tokens").query(&[("name", &name)]))
                .await?;
            client.print(&revoked, |revoked| {
                println!("Revoked token `{}`.", revoked.name);
            })
        }
    }
}

/// `greenlight audit`: who did what, newest first, a page at a time.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only entries about this release.
    #[arg(long)]
    release: Option<String>,
    /// Only entries by this token name.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries at or after this instant (ms since the epoch).
    #[arg(long)]
    since_ms: Option<u64>,
    /// Only entries at or before this instant (ms since the epoch).
    #[arg(long)]
    until_ms: Option<u64>,
    /// At most this many entries (up to 1,000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Only entries before this sequence number: the next page, as the
    /// previous one said.
    #[arg(long)]
    before: Option<u64>,
}

pub async fn audit(args: AuditArgs, server: &ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    if let Some(r) = args.release {
        query.push(("release", r));
    }
    if let Some(a) = args.actor {
        query.push(("actor", a));
    }
    if let Some(t) = args.since_ms {
        query.push(("since_ms", t.to_string()));
    }
    if let Some(t) = args.until_ms {
        query.push(("until_ms", t.to_string()));
    }
    if let Some(seq) = args.before {
        query.push(("before", seq.to_string()));
    }
    let page = client
        .fetch::<crate::api::AuditPageDto>(client.get("/api/v1/audit").query(&query))
        .await?;
    client.print(&page, |page| {
        let rows: Vec<Vec<String>> = page
            .entries
            .iter()
            .map(|e| {
                vec![
                    date_time(e.at_ms),
                    e.actor.clone(),
                    e.action.clone(),
                    format!("{} {}", e.status, e.outcome),
                    e.comment.clone().or(e.code.clone()).unwrap_or_default(),
                ]
            })
            .collect();
        println!(
            "{}",
            table(&["WHEN", "WHO", "WHAT", "OUTCOME", "COMMENT / CODE"], &rows)
        );
        if let Some(next) = page.next_before {
            eprintln!("Older entries: add --before {next}.");
        }
    })
}
