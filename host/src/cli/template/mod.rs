//! `greenlight plugin new`: a plugin project that builds as it is, in Rust,
//! Python or JavaScript, with the plugin interface (`wit/`), a sample input
//! and grant for `plugin test`, and a README with the steps from building to
//! a flow. The files are built into the binary, so a project can be made
//! anywhere, without a checkout of Greenlight.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The language a project is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// The plugin world a project implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// A verification check: a verdict on the release's targets.
    Check,
}

/// The plugin interface, as `wit/` holds it.
const WIT: &[(&str, &str)] = &[
    (
        "greenlight.wit",
        include_str!("../../../../wit/greenlight.wit"),
    ),
    ("deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    (
        "deps/greenlight-plugin-0.1.0.wit",
        include_str!("../../../../wit/deps/greenlight-plugin-0.1.0.wit"),
    ),
    (
        "deps/http.wit",
        include_str!("../../../../wit/deps/http.wit"),
    ),
    ("deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
];

/// The Rust plugin SDK's sources, copied into a Rust project.
const SDK: &[(&str, &str)] = &[
    (
        "bindings.rs",
        include_str!("../../../../plugins/sdk/src/bindings.rs"),
    ),
    (
        "context.rs",
        include_str!("../../../../plugins/sdk/src/context.rs"),
    ),
    (
        "error.rs",
        include_str!("../../../../plugins/sdk/src/error.rs"),
    ),
    (
        "http.rs",
        include_str!("../../../../plugins/sdk/src/http.rs"),
    ),
    (
        "kube.rs",
        include_str!("../../../../plugins/sdk/src/kube.rs"),
    ),
    ("lib.rs", include_str!("../../../../plugins/sdk/src/lib.rs")),
    (
        "platform.rs",
        include_str!("../../../../plugins/sdk/src/platform.rs"),
    ),
    (
        "pods.rs",
        include_str!("../../../../plugins/sdk/src/pods.rs"),
    ),
    (
        "query.rs",
        include_str!("../../../../plugins/sdk/src/query.rs"),
    ),
    (
        "rollout.rs",
        include_str!("../../../../plugins/sdk/src/rollout.rs"),
    ),
    (
        "threshold.rs",
        include_str!("../../../../plugins/sdk/src/threshold.rs"),
    ),
    (
        "types.rs",
        include_str!("../../../../plugins/sdk/src/types.rs"),
    ),
    (
        "worlds.rs",
        include_str!("../../../../plugins/sdk/src/worlds.rs"),
    ),
];

/// Where the SDK finds `wit/` in Greenlight's plugins workspace, and where
/// in a project.
const SDK_WIT_IN_WORKSPACE: &str = "path: \"../../wit\"";
const SDK_WIT_IN_PROJECT: &str = "path: \"../wit\"";

/// Every file of a project, by its path inside the project.
pub fn files(lang: Lang, world: World, name: &str) -> Vec<(PathBuf, String)> {
    let World::Check = world;
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{file}}", &name.replace('-', "_"))
    };
    let mut files: Vec<(PathBuf, String)> = WIT
        .iter()
        .map(|(path, text)| (Path::new("wit").join(path), text.to_string()))
        .collect();
    let mut add = |path: &str, text: &str| files.push((PathBuf::from(path), fill(text)));
    add("input.json", include_str!("files/input.json"));
    add("grant.json", include_str!("files/grant.json"));
    match lang {
        Lang::Python => {
            add("README.md", include_str!("files/README.python.md"));
            add("app.py", include_str!("files/app.py"));
            add(
                "wasi_get.py",
                include_str!("../../../../examples/python/wasi_get.py"),
            );
            add(
                "requirements.txt",
                include_str!("../../../../examples/python/requirements.txt"),
            );
            add(".gitignore", ".venv/\n.stubs/\n__pycache__/\n*.wasm\n");
        }
        Lang::Js => {
            add("README.md", include_str!("files/README.js.md"));
            add("check.js", include_str!("files/check.js"));
            add("package.json", include_str!("files/package.json"));
            add(".gitignore", "node_modules/\n*.wasm\n");
        }
        Lang::Rust => {
            add("README.md", include_str!("files/README.rust.md"));
            add("Cargo.toml", include_str!("files/plugin.Cargo.toml"));
            add("src/lib.rs", include_str!("files/lib.rs"));
            add(
                ".cargo/config.toml",
                include_str!("files/cargo-config.toml"),
            );
            add(
                "greenlight-plugin-sdk/Cargo.toml",
                include_str!("files/sdk.Cargo.toml"),
            );
            add(".gitignore", "target/\n");
            for (file, text) in SDK {
                let text = text.replace(SDK_WIT_IN_WORKSPACE, SDK_WIT_IN_PROJECT);
                files.push((Path::new("greenlight-plugin-sdk/src").join(file), text));
            }
        }
    }
    files
}

/// Writes a project into `dir`, which must not exist or be empty; answers
/// the paths written.
pub fn write(dir: &Path, lang: Lang, world: World, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    crate::domain::name::check_name("NAME", name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("{} exists and cannot be read", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty; choose another name, or --dir",
                dir.display()
            );
        }
    }
    let mut written = Vec::new();
    for (path, text) in files(lang, world, name) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_is_pointed_at_the_projects_own_wit() {
        let bindings = include_str!("../../../../plugins/sdk/src/bindings.rs");
        assert!(bindings.contains(SDK_WIT_IN_WORKSPACE));
        let files = files(Lang::Rust, World::Check, "probe");
        let (_, copied) = files
            .iter()
            .find(|(p, _)| p.ends_with("greenlight-plugin-sdk/src/bindings.rs"))
            .unwrap();
        assert!(!copied.contains(SDK_WIT_IN_WORKSPACE) && copied.contains(SDK_WIT_IN_PROJECT));
    }

    #[test]
    fn the_projects_pin_the_tools_the_examples_pin() {
        let examples: serde_json::Value =
            serde_json::from_str(include_str!("../../../../examples/js/package.json")).unwrap();
        let ours: serde_json::Value =
            serde_json::from_str(&include_str!("files/package.json").replace("{{name}}", "x"))
                .unwrap();
        assert_eq!(ours["devDependencies"], examples["devDependencies"]);
        let workspace = include_str!("../../../../plugins/Cargo.toml");
        let pin = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("wit-bindgen"))
                .map(str::to_string)
        };
        assert_eq!(pin(include_str!("files/sdk.Cargo.toml")), pin(workspace));
    }

    #[test]
    fn a_project_names_its_plugin_everywhere_and_refuses_a_bad_name_or_a_full_folder() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("web-probe");
        let written = write(&project, Lang::Python, World::Check, "web-probe").unwrap();
        assert!(written.contains(&project.join("wit/deps/http.wit")));
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains("-o web-probe.wasm") && !readme.contains("{{"));

        let err = write(&project, Lang::Js, World::Check, "web-probe").unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = write(&dir.path().join("x"), Lang::Js, World::Check, "Bad Name").unwrap_err();
        assert!(err.to_string().contains("NAME"), "{err}");
        let rust = files(Lang::Rust, World::Check, "web-probe");
        let (_, readme) = rust.iter().find(|(p, _)| p.ends_with("README.md")).unwrap();
        assert!(readme.contains("release/web_probe.wasm"), "{readme}");
    }
}
