//! Builds the guest plugins in `plugins/` (their own workspace, for
//! `wasm32-wasip2`) so the daemon can embed its bundled plugins and the tests
//! and benchmarks find their fixtures, with no manual pre-build step.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins");

    for watched in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // A copied target directory must not keep pointing at the plugins built
    // in the one it was copied from.
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    build_plugins(&plugins, &target_dir);
    // A workspace of its own (see its manifest), built into the same place.
    build_plugins(&plugins.join("no-std-check"), &target_dir);
    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=GREENLIGHT_PLUGINS_DIR={}", out.display());
}

fn build_plugins(plugins: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the host; the guest build must not
    // inherit them (clippy's wrapper, host rustflags, the outer target dir).
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = key == "CARGO_HOME" || key == "CARGO_MAKEFLAGS" || key == "CARGO_NET_OFFLINE";
        if (key.starts_with("CARGO_") && !keep)
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the plugins: {e}"));
    if !status.success() {
        panic!(
            "building the plugins in {} failed; run `cargo build --release` there to see why \
             (the wasm32-wasip2 target comes with the toolchain in rust-toolchain.toml)",
            plugins.display()
        );
    }
}
