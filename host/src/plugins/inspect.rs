//! Upload-time inspection of a plugin: is it a component, which world does
//! it implement, and does it import only what the host provides?

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;
use crate::domain::plugin::PluginKind;

/// The WIT package plugins implement, without its version.
const PACKAGE: &str = "greenlight:plugin/";
/// The host's version of the package; plugins must match it exactly until a
/// second version exists.
const PACKAGE_VERSION: &str = "0.1.0";
/// The interfaces of our package a plugin may import.
const PLATFORM_INTERFACES: [&str; 5] = ["types", "log", "kv", "config", "clock"];
/// The WASI packages the host links (all at 0.2.x).
const WASI_PACKAGES: [&str; 7] = [
    "io",
    "clocks",
    "random",
    "cli",
    "filesystem",
    "sockets",
    "http",
];

/// What the header of a `.wasm` file says it is.
pub(super) fn check_header(bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(Error::NotWasm);
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Err(Error::CoreModule),
        [_, _, 1, 0] => Ok(()),
        other => Err(Error::Invalid(format!(
            "unknown wasm binary version {other:02x?}"
        ))),
    }
}

/// Splits `ns:pkg/iface@version` into its package (`ns:pkg`), interface and
/// version.
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (path, version) = name.split_once('@')?;
    let (package, interface) = path.split_once('/')?;
    Some((package, interface, version))
}

/// Finds the plugin kind from the component's exports: exactly one of our
/// plugin interfaces must be exported.
pub(super) fn detect_kind(engine: &Engine, component: &Component) -> Result<PluginKind, Error> {
    let ty = component.component_type();
    let mut found = Vec::new();
    let mut names = Vec::new();
    for (name, _) in ty.exports(engine) {
        names.push(name.to_string());
        let Some(rest) = name.strip_prefix(PACKAGE) else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if let Ok(kind) = interface.parse::<PluginKind>() {
            if version != PACKAGE_VERSION {
                return Err(Error::UnknownWorld(format!(
                    "exports `{name}`, but this host serves {PACKAGE}{interface}@{PACKAGE_VERSION}"
                )));
            }
            found.push(kind);
        }
    }
    match found.as_slice() {
        [kind] => Ok(*kind),
        [] if names.is_empty() => Err(Error::UnknownWorld(
            "the component exports nothing; a plugin exports one of the greenlight:plugin interfaces"
                .into(),
        )),
        [] => Err(Error::UnknownWorld(format!(
            "the component exports {} but none of the greenlight:plugin interfaces (precheck, deployer, traffic, check, rollback-policy, notifier)",
            names.join(", ")
        ))),
        many => Err(Error::UnknownWorld(format!(
            "the component implements several plugin worlds ({}); a plugin implements exactly one",
            many.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Lists the component's imports, refusing any outside the platform world
/// and the WASI 0.2 interfaces the host links.
pub(super) fn check_imports(engine: &Engine, component: &Component) -> Result<Vec<String>, Error> {
    let ty = component.component_type();
    let mut imports = Vec::new();
    for (name, _) in ty.imports(engine) {
        let allowed = match split_name(name) {
            Some(("greenlight:plugin", interface, version)) => {
                PLATFORM_INTERFACES.contains(&interface) && version == PACKAGE_VERSION
            }
            Some((package, _, version)) => package
                .strip_prefix("wasi:")
                .is_some_and(|p| WASI_PACKAGES.contains(&p) && version.starts_with("0.2.")),
            None => false,
        };
        if !allowed {
            return Err(Error::UnknownImport(name.to_string()));
        }
        imports.push(name.to_string());
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_modules_from_components() {
        assert!(matches!(check_header(b"hello"), Err(Error::NotWasm)));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(Error::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn names_split_into_package_interface_and_version() {
        assert_eq!(
            split_name("wasi:http/types@0.2.12"),
            Some(("wasi:http", "types", "0.2.12"))
        );
        assert_eq!(split_name("plain"), None);
    }
}
