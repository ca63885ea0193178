//! `greenlight secrets …`: the key that seals plugin secrets at rest.

use std::path::PathBuf;

use clap::Subcommand;

use super::serve::load_config;
use crate::secrets_key;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored plugin secret with a new key, in one transaction,
    /// while the daemon is stopped; then point the configuration at it.
    RotateKey {
        /// The daemon's TOML config file, which names the key in use.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory, when not the config file's.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The new key file: read when it exists (64 hexadecimal digits,
        /// its owner's alone), made with a new key when it does not.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Name the stored secrets the configured key does not open, for when
    /// their key is lost for good; with --confirm, drop them (the daemon
    /// stopped), so that it starts and they can be granted again.
    DropUnopened {
        /// The daemon's TOML config file, which names the key in use.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory, when not the config file's.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Drop them; without it they are only named.
        #[arg(long)]
        confirm: bool,
    },
}

pub fn run(cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::RotateKey {
            config,
            data,
            new_key_file,
        } => {
            let config = load_config(config.as_deref(), data)?;
            let rotation = secrets_key::rotate(
                &config.security,
                &config.data_dir,
                secrets_key::from_env(),
                &new_key_file,
            )?;
            print_rotation(&rotation, &new_key_file);
            Ok(())
        }
        SecretsCommand::DropUnopened {
            config,
            data,
            confirm,
        } => {
            let config = load_config(config.as_deref(), data)?;
            let dropped = secrets_key::drop_unopened(
                &config.security,
                &config.data_dir,
                secrets_key::from_env(),
                confirm,
            )?;
            print_dropped(&dropped, confirm);
            Ok(())
        }
    }
}

fn print_dropped(dropped: &[(String, String)], confirm: bool) {
    if dropped.is_empty() {
        println!("The configured key opens every stored secret; nothing to drop.");
        return;
    }
    let verb = if confirm { "Dropped" } else { "Would drop" };
    for (plugin, name) in dropped {
        println!("{verb} secret `{name}` of plugin `{plugin}`.");
    }
    if confirm {
        println!("Grant them again once the daemon runs (greenlight plugin grant).");
    } else {
        println!(
            "Nothing was changed. If the key that opens them is lost for good, run again \
             with --confirm."
        );
    }
}

fn print_rotation(rotation: &secrets_key::Rotation, new_key_file: &std::path::Path) {
    // The config file is read from wherever the daemon starts, so the path
    // to put in it is the absolute one.
    let path = std::path::absolute(new_key_file).unwrap_or_else(|_| new_key_file.to_path_buf());
    let how = if rotation.created { "made" } else { "read" };
    println!(
        "Sealed {} plugin secrets with key {} ({how}: {}).",
        rotation.resealed.secrets,
        rotation.new,
        path.display()
    );
    if let Some(old) = rotation
        .old
        .as_ref()
        .filter(|_| rotation.resealed.secrets > 0)
    {
        println!("Key {} ({}) opens none of them now.", old.key, old.source);
    }
    println!(
        "Next: set `secrets_key_file = \"{}\"` under [security] in the config file (or put \
         the key in {}), then start the daemon. Backups made before now need the old key: \
         keep it as long as you keep them.",
        path.display(),
        secrets_key::ENV_VAR
    );
}
