//! The rules of `domain::name` as OpenAPI schemas: `Name`, `Group`,
//! `Text`, `Label`, `Attribute`, `Address`, `TargetAddress`, `Version`, `HttpUrl`,
//! `Origin` and `Role`. DTO fields and
//! path parameters refer to them (`#[schema(value_type = rules::Name)]`),
//! so the document states each rule once, from the same constants the
//! daemon checks with, and a schema-driven client or fuzzer finds what the
//! daemon enforces.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::name;
use crate::store::Role as StoredRole;

/// The largest integer every JSON reader holds exactly, 2^53 - 1: the
/// document's bound on counts and times in queries, which the daemon
/// checks too.
pub const MAX_EXACT_INTEGER: u64 = 9_007_199_254_740_991;

/// A string schema with a pattern, a length range and a description.
fn string(pattern: &str, min: usize, max: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

/// Declares a schema-only type named as the document names it.
macro_rules! rule {
    ($(#[$doc:meta])* $ty:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

rule! {
    /// A name: plugins, flows, stages, applications, environments, targets,
    /// tokens, schedules, freezes, trains.
    Name => string(
        name::PATTERN,
        1,
        name::MAX_LEN,
        "A name: 1 to 63 characters of a-z, 0-9, `.`, `_` and `-`, starting with a letter \
         or digit. Every name the API accepts follows this rule; things stored before it \
         are still found by their old names.",
    )
}

rule! {
    /// A target's group: a name, or empty for none.
    Group => string(
        &format!("^({})?$", &name::PATTERN[1..name::PATTERN.len() - 1]),
        0,
        name::MAX_LEN,
        "A group: a name, or empty for none.",
    )
}

rule! {
    /// Free text: a comment, a reason, a description.
    Text => string(
        name::TEXT_PATTERN,
        0,
        name::MAX_TEXT_LEN,
        "Free text: at most 4096 bytes, without control characters (tab and newline \
         are allowed) or direction overrides.",
    )
}

rule! {
    /// A label's value.
    Label => string(
        name::TEXT_PATTERN,
        0,
        crate::domain::inventory::MAX_LABEL_VALUE_LEN,
        "A label's value: at most 255 bytes of text without control characters.",
    )
}

rule! {
    /// A target attribute's value.
    Attribute => string(
        name::TEXT_PATTERN,
        0,
        crate::domain::inventory::MAX_ATTRIBUTE_VALUE_LEN,
        "A target attribute's value: at most 1024 bytes of text without control characters.",
    )
}

rule! {
    /// A target's address.
    Address => string(
        name::ADDRESS_PATTERN,
        0,
        name::MAX_ADDRESS_LEN,
        "Where a target is reached: `host`, `host:port`, `[v6]:port`, or an http:// or \
         https:// URL; empty where no address is needed.",
    )
}

rule! {
    /// The address of a target of an environment, which is needed.
    TargetAddress => string(
        name::ADDRESS_PATTERN,
        1,
        name::MAX_ADDRESS_LEN,
        "Where a target is reached: `host`, `host:port`, `[v6]:port`, or an http:// or \
         https:// URL.",
    )
}

rule! {
    /// The version a release ships.
    Version => string(
        name::VERSION_PATTERN,
        1,
        name::MAX_VERSION_LEN,
        "The version a release ships: 1 to 128 printable ASCII characters without spaces.",
    )
}

rule! {
    /// An http:// or https:// URL the daemon fetches.
    HttpUrl => string(
        name::URL_PATTERN,
        8,
        name::MAX_ADDRESS_LEN,
        "An http:// or https:// URL of at most 255 characters.",
    )
}

rule! {
    /// An origin a plugin may call.
    Origin => string(
        crate::domain::grant::ORIGIN_PATTERN,
        8,
        name::MAX_ADDRESS_LEN,
        "An origin a plugin may call: `http://` or `https://`, a host (an IPv6 address in \
         brackets), an optional port up to 65535 without leading zeros, and nothing more \
         than an optional `/`.",
    )
}

rule! {
    /// A token's role.
    Role => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(StoredRole::ALL.iter().map(|r| r.as_str())))
        .description(Some("What a token may do."))
        .into()
}

/// A semantic version whose numbers fit the daemon's (64 bits).
const SEMVER: &str = "(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})\
                      (-(0|[1-9][0-9]{0,18}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)\
                      (\\.(0|[1-9][0-9]{0,18}|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?\
                      (\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?";

rule! {
    /// A plugin's version as uploaded.
    SemVer => string(
        &format!("^{SEMVER}$"),
        5,
        128,
        "A semantic version, such as `1.2.0`.",
    )
}

rule! {
    /// A plugin's version as asked for.
    PluginVersion => string(
        &format!("^(latest|{SEMVER})$"),
        5,
        128,
        "A semantic version, such as `1.2.0`, or `latest`.",
    )
}

rule! {
    /// A release's or a train's id, as the daemon made it.
    Id => string(
        "^[0-9a-f]{20,40}$",
        20,
        40,
        "An id the daemon made: lowercase hexadecimal.",
    )
}
