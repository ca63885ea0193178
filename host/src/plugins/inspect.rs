//! Upload-time inspection of a plugin: is it a component, which world does
//! it implement, and does it import only what the host provides?

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;
use crate::domain::plugin::PluginKind;

/// The WIT package plugins implement, without its version.
const PACKAGE: &str = "greenlight:plugin/";
/// The versions of the package the host serves; a plugin implements one,
/// and imports the platform of the same version.
const PACKAGE_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// Which version of the interface a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceVersion {
    V0_1,
    V0_2,
}

impl InterfaceVersion {
    fn parse(version: &str) -> Option<InterfaceVersion> {
        match version {
            "0.1.0" => Some(InterfaceVersion::V0_1),
            "0.2.0" => Some(InterfaceVersion::V0_2),
            _ => None,
        }
    }

    /// The version as WIT writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceVersion::V0_1 => "0.1.0",
            InterfaceVersion::V0_2 => "0.2.0",
        }
    }
}
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
pub(super) fn detect_kind(
    engine: &Engine,
    component: &Component,
) -> Result<(PluginKind, InterfaceVersion), Error> {
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
            let Some(version) = InterfaceVersion::parse(version) else {
                return Err(Error::UnknownWorld(format!(
                    "exports `{name}`, but this host serves {PACKAGE}{interface} at {}",
                    PACKAGE_VERSIONS.join(" and ")
                )));
            };
            found.push((kind, version));
        }
    }
    match found.as_slice() {
        [found] => Ok(*found),
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
            many.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Lists the component's imports, refusing any outside the platform world
/// and the WASI 0.2 interfaces the host links.
pub(super) fn check_imports(
    engine: &Engine,
    component: &Component,
    version: InterfaceVersion,
) -> Result<Vec<String>, Error> {
    let ty = component.component_type();
    let mut imports = Vec::new();
    for (name, _) in ty.imports(engine) {
        let allowed = match split_name(name) {
            Some(("greenlight:plugin", interface, interface_version)) => {
                PLATFORM_INTERFACES.contains(&interface) && interface_version == version.as_str()
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

/// The size of a component's stack in linear memory, when a module of it
/// lays its stack out first and names its stack pointer: the initial value
/// of the global named `__stack_pointer`, which the linker sets to the top
/// of the stack, below every data segment. The largest such stack among the
/// component's modules, or `None` when no module says (a stripped build, a
/// runtime that puts its data first, or one whose modules share a memory,
/// as componentize-py's do).
pub fn stack_bytes(bytes: &[u8]) -> Option<u64> {
    use wasmparser::{DataKind, Encoding, KnownCustom, Name, Operator, Parser, Payload, TypeRef};

    /// The value of a constant expression, when it is one.
    fn constant(expr: &wasmparser::ConstExpr<'_>) -> Option<u64> {
        match expr.get_operators_reader().read() {
            Ok(Operator::I32Const { value }) => Some(value as u32 as u64),
            Ok(Operator::I64Const { value }) => Some(value as u64),
            _ => None,
        }
    }

    /// What one core module says about its globals.
    #[derive(Default)]
    struct Module {
        imported_globals: u32,
        /// Initial values of the globals the module defines, when constant.
        defined: Vec<Option<u64>>,
        stack_pointer: Option<u32>,
        /// Where the lowest active data segment starts.
        lowest_data: Option<u64>,
    }

    let mut modules: Vec<Module> = Vec::new();
    let mut largest: Option<u64> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return largest;
        };
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => modules.push(Module::default()),
            Payload::Version { .. } => {}
            Payload::ImportSection(reader) => {
                if let Some(module) = modules.last_mut() {
                    module.imported_globals += reader
                        .into_imports()
                        .filter(|i| matches!(i, Ok(i) if matches!(i.ty, TypeRef::Global(_))))
                        .count() as u32;
                }
            }
            Payload::GlobalSection(reader) => {
                if let Some(module) = modules.last_mut() {
                    for global in reader.into_iter().flatten() {
                        module.defined.push(constant(&global.init_expr));
                    }
                }
            }
            Payload::DataSection(reader) => {
                if let Some(module) = modules.last_mut() {
                    for data in reader.into_iter().flatten() {
                        if let DataKind::Active { offset_expr, .. } = data.kind {
                            let start = constant(&offset_expr);
                            module.lowest_data = match (module.lowest_data, start) {
                                (Some(low), Some(start)) => Some(low.min(start)),
                                (low, start) => low.or(start),
                            };
                        }
                    }
                }
            }
            Payload::CustomSection(section) => {
                if let (Some(module), KnownCustom::Name(names)) =
                    (modules.last_mut(), section.as_known())
                {
                    for name in names.into_iter().flatten() {
                        if let Name::Global(map) = name {
                            module.stack_pointer = map
                                .into_iter()
                                .flatten()
                                .find(|n| n.name == "__stack_pointer")
                                .map(|n| n.index);
                        }
                    }
                }
            }
            Payload::End(_) => {
                // The end of a module, or of the component around them.
                if let Some(module) = modules.pop() {
                    let top = module.stack_pointer.and_then(|index| {
                        let defined = index.checked_sub(module.imported_globals)?;
                        *module.defined.get(defined as usize)?
                    });
                    // Only a stack below the module's own data starts at
                    // address 0; without data of its own to compare with,
                    // the module does not say.
                    let first = top.filter(|&top| module.lowest_data.is_some_and(|d| d >= top));
                    largest = largest.max(first);
                }
            }
            _ => {}
        }
    }
    largest
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
