//! Where the key that seals plugin secrets comes from: the environment
//! variable `GREENLIGHT_SECRETS_KEY`, or a key file that only the daemon's
//! user may read, named in `[security] secrets_key_file` or, by default,
//! `secrets.key` in the data directory, made on first start.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::{self, Resealed, SealError, SecretsKey, Store};

/// The environment variable that may hold the key, as 64 hex digits.
pub const ENV_VAR: &str = "GREENLIGHT_SECRETS_KEY";

/// The key file's name in the data directory when none is configured.
pub const DEFAULT_FILE: &str = "secrets.key";

/// `[security]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The file holding the key that seals plugin secrets: 64 hexadecimal
    /// digits, readable by the daemon's user alone. Unset, the key is
    /// `GREENLIGHT_SECRETS_KEY`, or else `secrets.key` in the data
    /// directory.
    pub secrets_key_file: Option<PathBuf>,
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "both {ENV_VAR} and [security] secrets_key_file are set; keep the one that holds the key"
    )]
    TwoSources,
    #[error("{ENV_VAR}: {0}")]
    BadEnv(SealError),
    #[error("{ENV_VAR} is not valid UTF-8")]
    EnvNotText,
    #[error("cannot read the secrets key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the secrets key file {path} may be read or written by others (mode {mode:03o}); \
         it must be its owner's alone: chmod 600 {path}"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the secrets key file {path}: {problem}")]
    Malformed { path: PathBuf, problem: SealError },
    #[error("cannot create the secrets key file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a secrets key: {0}")]
    Generate(SealError),
    #[error("the new key is the key in use ({0}); name a new key file")]
    SameKey(String),
    #[error("there is no store in {0}; name the data directory with --data or data_dir")]
    NoStore(PathBuf),
    #[error(
        "cannot open the store in {path} (the daemon must be stopped: the store admits one \
         process at a time)"
    )]
    Busy { path: PathBuf, source: store::Error },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(
        "the secrets key file {path} does not exist, but stored plugin secrets are sealed with \
         key {ids}; restore the key file, or name where it is in [security] secrets_key_file \
         or give it in {ENV_VAR}"
    )]
    Missing { path: PathBuf, ids: String },
}

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env => write!(f, "{ENV_VAR}"),
            Source::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// A key and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub key: SecretsKey,
    pub source: Source,
    /// Whether the key file was made just now.
    pub created: bool,
}

/// The key file used when none is configured.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DEFAULT_FILE)
}

/// The value of [`ENV_VAR`] in this process's environment.
pub fn from_env() -> Option<OsString> {
    std::env::var_os(ENV_VAR)
}

/// The configured key: from `env` (the value of [`ENV_VAR`]) when it is
/// set, or else from the key file; `None` when that file does not exist.
pub fn find(
    options: &Options,
    data_dir: &Path,
    env: Option<OsString>,
) -> Result<Option<Loaded>, Error> {
    match (env, &options.secrets_key_file) {
        (Some(_), Some(_)) => Err(Error::TwoSources),
        (Some(value), None) => {
            let text = value.into_string().map_err(|_| Error::EnvNotText)?;
            let key = SecretsKey::parse(&text).map_err(Error::BadEnv)?;
            Ok(Some(Loaded {
                key,
                source: Source::Env,
                created: false,
            }))
        }
        (None, configured) => {
            let path = configured.clone().unwrap_or_else(|| default_path(data_dir));
            if !path.try_exists().map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })? {
                return Ok(None);
            }
            Ok(Some(Loaded {
                key: read_file(&path)?,
                source: Source::File(path),
                created: false,
            }))
        }
    }
}

/// The configured key, as [`find`] has it; a key file that does not exist
/// is made, with a new key, unless stored secrets are sealed (their ids in
/// `sealed`): a new key would open none of them.
pub fn load(
    options: &Options,
    data_dir: &Path,
    env: Option<OsString>,
    sealed: &BTreeSet<String>,
) -> Result<Loaded, Error> {
    if let Some(found) = find(options, data_dir, env)? {
        return Ok(found);
    }
    let path = options
        .secrets_key_file
        .clone()
        .unwrap_or_else(|| default_path(data_dir));
    if !sealed.is_empty() {
        let ids = sealed.iter().cloned().collect::<Vec<_>>().join(", ");
        return Err(Error::Missing { path, ids });
    }
    Ok(Loaded {
        key: create_file(&path)?,
        source: Source::File(path),
        created: true,
    })
}

/// What a key rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// The key the secrets were sealed with, when there was one.
    pub old: Option<Loaded>,
    /// The key they are sealed with now.
    pub new: SecretsKey,
    /// Whether the new key file was made by the rotation.
    pub created: bool,
    pub resealed: Resealed,
}

/// Seals every stored plugin secret with the key in `new_key_file`, made
/// when it does not exist, while the daemon is stopped. The secrets are
/// opened with the configured key (as [`find`] has it) and sealed again in
/// one transaction: all or none. The configuration still names the old
/// key; the operator then points it at the new one.
pub fn rotate(
    options: &Options,
    data_dir: &Path,
    env: Option<OsString>,
    new_key_file: &Path,
) -> Result<Rotation, Error> {
    let db = data_dir.join("db");
    if !db.is_dir() {
        return Err(Error::NoStore(data_dir.to_path_buf()));
    }
    let old = find(options, data_dir, env)?;
    let store = Store::open(&db).map_err(|source| Error::Busy {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let sealed = store.sealed_key_ids()?;
    if old.is_none() && !sealed.is_empty() {
        return Err(Error::Missing {
            path: options
                .secrets_key_file
                .clone()
                .unwrap_or_else(|| default_path(data_dir)),
            ids: sealed.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let created = !new_key_file.try_exists().map_err(|source| Error::Read {
        path: new_key_file.to_path_buf(),
        source,
    })?;
    let new = match created {
        true => create_file(new_key_file)?,
        false => read_file(new_key_file)?,
    };
    if let Some(old) = old.as_ref().filter(|old| old.key.id() == new.id()) {
        return Err(Error::SameKey(old.key.id().to_string()));
    }
    let store = match &old {
        Some(old) => store.with_secrets_key(old.key.clone()),
        None => store,
    };
    let resealed = store.reseal_secrets(&new)?;
    store.flush()?;
    Ok(Rotation {
        old,
        new,
        created,
        resealed,
    })
}

/// Drops the stored secrets that the configured key does not open (all
/// the sealed ones when its key file does not exist), while the daemon is
/// stopped, for when their key is lost for good; without `confirm` only
/// names them.
pub fn drop_unopened(
    options: &Options,
    data_dir: &Path,
    env: Option<OsString>,
    confirm: bool,
) -> Result<Vec<(String, String)>, Error> {
    let db = data_dir.join("db");
    if !db.is_dir() {
        return Err(Error::NoStore(data_dir.to_path_buf()));
    }
    let key = find(options, data_dir, env)?;
    let store = Store::open(&db).map_err(|source| Error::Busy {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let store = match key {
        Some(key) => store.with_secrets_key(key.key),
        None => store,
    };
    let dropped = store.drop_unopened_secrets(confirm)?;
    store.flush()?;
    Ok(dropped)
}

/// Reads a key file, refused when others may read or write it.
pub fn read_file(path: &Path) -> Result<SecretsKey, Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    check_private(path, std::fs::metadata(path).map_err(read)?)?;
    let text = std::fs::read_to_string(path).map_err(read)?;
    SecretsKey::parse(&text).map_err(|problem| Error::Malformed {
        path: path.to_path_buf(),
        problem,
    })
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: std::fs::Metadata) -> Result<(), Error> {
    Ok(())
}

/// Makes a key file holding a new key, its owner's alone from the start;
/// refused when the file exists, so that no key is ever overwritten.
pub fn create_file(path: &Path) -> Result<SecretsKey, Error> {
    let key = SecretsKey::generate().map_err(Error::Generate)?;
    write_new(path, &format!("{}\n", key.to_hex())).map_err(|source| Error::Create {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(key)
}

fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(file: Option<&Path>) -> Options {
        Options {
            secrets_key_file: file.map(Path::to_path_buf),
        }
    }

    #[test]
    fn the_default_file_is_made_once_private_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let none = BTreeSet::new();
        let made = load(&options(None), dir.path(), None, &none).unwrap();
        assert!(made.created);
        let path = dir.path().join(DEFAULT_FILE);
        assert_eq!(made.source, Source::File(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = load(&options(None), dir.path(), None, &none).unwrap();
        assert!(!read.created);
        assert_eq!(read.key.id(), made.key.id());
    }

    #[test]
    fn a_missing_file_is_not_replaced_while_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = BTreeSet::from(["0123456789abcdef".to_string()]);
        let err = load(&options(None), dir.path(), None, &sealed).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("0123456789abcdef"), "{message}");
        assert!(message.contains(DEFAULT_FILE), "{message}");
        assert!(!dir.path().join(DEFAULT_FILE).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_file(&path).unwrap();
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = find(&options(Some(&path)), dir.path(), None).unwrap_err();
            assert!(matches!(err, Error::Exposed { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(find(&options(Some(&path)), dir.path(), None).is_ok());
    }

    #[test]
    fn a_malformed_key_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, "not a key\n").unwrap();
        let err = find(&options(Some(&path)), dir.path(), None).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("64 hexadecimal digits"), "{message}");
    }

    #[test]
    fn the_environment_gives_the_key_unless_a_file_is_configured_too() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::generate().unwrap();
        let found = find(&options(None), dir.path(), Some(key.to_hex().into()))
            .unwrap()
            .unwrap();
        assert_eq!((found.key.id(), found.source), (key.id(), Source::Env));
        assert!(!dir.path().join(DEFAULT_FILE).exists());
        let err = find(&options(None), dir.path(), Some("short".into())).unwrap_err();
        assert!(err.to_string().starts_with(ENV_VAR), "{err}");
        let file = dir.path().join("k");
        let err = find(&options(Some(&file)), dir.path(), Some(key.to_hex().into())).unwrap_err();
        assert!(matches!(err, Error::TwoSources), "{err}");
    }

    #[test]
    fn a_rotation_seals_every_secret_with_the_new_key() {
        use crate::domain::grant::Grant;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let new_path = dir.path().join("new.key");
        let err = rotate(&options(None), &data, None, &new_path).unwrap_err();
        assert!(matches!(err, Error::NoStore(_)), "{err}");
        std::fs::create_dir_all(&data).unwrap();
        let old = load(&options(None), &data, None, &BTreeSet::new()).unwrap();
        let grant = Grant {
            tls: Vec::new(),
            secrets: [("token".to_string(), "s3cret".to_string())].into(),
            ..Grant::default()
        };
        {
            let store = Store::open(&data.join("db"))
                .unwrap()
                .with_secrets_key(old.key.clone());
            store.set_grant("probe", &grant).unwrap();
            store.flush().unwrap();
        }
        let rotation = rotate(&options(None), &data, None, &new_path).unwrap();
        assert!(rotation.created);
        assert_eq!(
            (rotation.resealed.secrets, rotation.resealed.were_other_key),
            (1, 1)
        );
        assert_eq!(rotation.old.unwrap().key.id(), old.key.id());
        let store = Store::open(&data.join("db")).unwrap();
        assert_eq!(
            store.sealed_key_ids().unwrap(),
            [rotation.new.id().to_string()].into()
        );
        let opened = store.with_secrets_key(read_file(&new_path).unwrap());
        assert_eq!(opened.grant("probe").unwrap(), grant);
        drop(opened);
        // Rotating to the key already in use is named, not done.
        let err = rotate(&options(Some(&new_path)), &data, None, &new_path).unwrap_err();
        assert!(matches!(err, Error::SameKey(_)), "{err}");
    }

    #[test]
    fn a_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = create_file(&path).unwrap();
        assert!(matches!(create_file(&path), Err(Error::Create { .. })));
        assert_eq!(read_file(&path).unwrap().id(), first.id());
    }
}
