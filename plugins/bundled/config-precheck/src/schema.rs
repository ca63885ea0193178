//! The schema language of `config-precheck` and the validation of one
//! document against it.
//!
//! A schema is a TOML or JSON document with a `fields` table keyed by dotted
//! paths (`*` stands for any one key) and an optional `allow_unknown`
//! (default `true`):
//!
//! ```toml
//! allow_unknown = false
//!
//! [fields."server.port"]
//! type = "integer"      # string, integer, number, boolean, array, table, any
//! required = true       # default false
//! min = 1               # numbers: the value; strings and arrays: the length
//! max = 65535
//!
//! [fields."log.level"]
//! type = "string"
//! one_of = ["debug", "info", "warn", "error"]
//!
//! [fields."features"]
//! type = "array"
//! items = "string"      # the type of every element
//!
//! [fields."databases.*.url"]
//! type = "string"
//! required = true       # in every table under `databases`
//! ```
//!
//! With `allow_unknown = false`, every key of the document must be a field
//! of the schema or lie under one.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A parsed schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    #[serde(default)]
    fields: BTreeMap<String, Field>,
    #[serde(default = "yes")]
    allow_unknown: bool,
}

fn yes() -> bool {
    true
}

/// What one field must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    #[serde(rename = "type", default)]
    kind: Kind,
    #[serde(default)]
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    one_of: Option<Vec<Value>>,
    items: Option<Kind>,
}

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Table,
    #[default]
    Any,
}

impl Kind {
    fn of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "table",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Any => true,
            Kind::Number => v.is_number(),
            Kind::Integer => v.is_i64() || v.is_u64(),
            Kind::String => v.is_string(),
            Kind::Boolean => v.is_boolean(),
            Kind::Array => v.is_array(),
            Kind::Table => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Array => "array",
            Kind::Table => "table",
            Kind::Any => "any",
        }
    }
}

/// Parses a document as JSON or TOML into one model; `hint` is the file
/// name, whose extension picks the format (both are tried otherwise).
pub fn parse_document(text: &str, hint: &str) -> Result<Value, String> {
    let json = || serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}"));
    let toml = || toml::from_str::<Value>(text).map_err(|e| format!("invalid TOML: {e}"));
    if hint.ends_with(".json") {
        json()
    } else if hint.ends_with(".toml") {
        toml()
    } else {
        json().or_else(|_| toml())
    }
}

impl Schema {
    /// Parses a schema written in JSON or TOML.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let value = parse_document(text, "")?;
        serde_json::from_value(value).map_err(|e| format!("invalid schema: {e}"))
    }

    /// Every problem of `doc`, each as `path: what is wrong`.
    pub fn validate(&self, doc: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        for (pattern, field) in &self.fields {
            let segments: Vec<&str> = pattern.split('.').collect();
            let parents = resolve(doc, &segments[..segments.len() - 1], String::new());
            let last = segments[segments.len() - 1];
            if parents.is_empty() && field.required && !pattern.contains('*') {
                problems.push(format!("{pattern}: is required"));
            }
            for (parent_path, parent) in parents {
                let Some(table) = parent.as_object() else {
                    continue;
                };
                let keys: Vec<&String> = if last == "*" {
                    table.keys().collect()
                } else {
                    table.keys().filter(|k| *k == last).collect()
                };
                if keys.is_empty() && last != "*" && field.required {
                    problems.push(format!("{}: is required", join(&parent_path, last)));
                }
                for key in keys {
                    let path = join(&parent_path, key);
                    field.check(&path, &table[key], &mut problems);
                }
            }
        }
        if !self.allow_unknown {
            let mut leaves = Vec::new();
            keys_of(doc, String::new(), &mut leaves);
            for key in leaves {
                if !self.covers(&key) {
                    problems.push(format!("{key}: is not in the schema"));
                }
            }
        }
        problems
    }

    /// Whether a key path is a field or lies under one.
    fn covers(&self, key: &str) -> bool {
        let key: Vec<&str> = key.split('.').collect();
        self.fields.keys().any(|pattern| {
            let pattern: Vec<&str> = pattern.split('.').collect();
            let n = pattern.len().min(key.len());
            pattern[..n]
                .iter()
                .zip(&key[..n])
                .all(|(p, k)| *p == "*" || p == k)
        })
    }
}

impl Field {
    fn check(&self, path: &str, v: &Value, problems: &mut Vec<String>) {
        if !self.kind.accepts(v) {
            problems.push(format!(
                "{path}: expected {}, found {} {v}",
                self.kind.name(),
                Kind::of(v)
            ));
            return;
        }
        let size = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => Some(s.chars().count() as f64),
            Value::Array(a) => Some(a.len() as f64),
            _ => None,
        };
        let what = if v.is_number() { "" } else { " long" };
        if let (Some(size), Some(min)) = (size, self.min)
            && size < min
        {
            problems.push(format!("{path}: {v} is less than {min}{what}"));
        }
        if let (Some(size), Some(max)) = (size, self.max)
            && size > max
        {
            problems.push(format!("{path}: {v} is more than {max}{what}"));
        }
        if let Some(allowed) = &self.one_of
            && !allowed.contains(v)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            problems.push(format!("{path}: {v} is not one of {}", list.join(", ")));
        }
        if let (Some(items), Value::Array(elements)) = (self.items, v) {
            for (i, e) in elements.iter().enumerate() {
                if !items.accepts(e) {
                    problems.push(format!(
                        "{path}[{i}]: expected {}, found {} {e}",
                        items.name(),
                        Kind::of(e)
                    ));
                }
            }
        }
    }
}

/// The tables reached by following `segments` from `v`, with their paths.
fn resolve<'a>(v: &'a Value, segments: &[&str], path: String) -> Vec<(String, &'a Value)> {
    let Some((first, rest)) = segments.split_first() else {
        return vec![(path, v)];
    };
    let Some(table) = v.as_object() else {
        return Vec::new();
    };
    table
        .iter()
        .filter(|(k, _)| *first == "*" || k == first)
        .flat_map(|(k, child)| resolve(child, rest, join(&path, k)))
        .collect()
}

/// Every key path of a document, tables recursed into.
fn keys_of(v: &Value, path: String, out: &mut Vec<String>) {
    if let Some(table) = v.as_object() {
        for (k, child) in table {
            let p = join(&path, k);
            out.push(p.clone());
            keys_of(child, p, out);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
allow_unknown = false

[fields."server.port"]
type = "integer"
required = true
min = 1
max = 65535

[fields."server.host"]
type = "string"

[fields."log.level"]
type = "string"
one_of = ["debug", "info", "warn", "error"]

[fields.features]
type = "array"
items = "string"
max = 3

[fields."databases.*.url"]
type = "string"
required = true
min = 8
"#;

    fn problems(doc: &str, name: &str) -> Vec<String> {
        let schema = Schema::parse(SCHEMA).unwrap();
        schema.validate(&parse_document(doc, name).unwrap())
    }

    #[test]
    fn a_valid_document_has_no_problems_in_either_format() {
        let toml = r#"
features = ["a", "b"]
[server]
port = 8080
host = "0.0.0.0"
[log]
level = "info"
[databases.main]
url = "postgres://db/main"
"#;
        assert_eq!(problems(toml, "app.toml"), Vec::<String>::new());
        let json = r#"{"server": {"port": 443}, "databases": {}}"#;
        assert_eq!(problems(json, "app.json"), Vec::<String>::new());
    }

    #[test]
    fn every_problem_names_its_path() {
        let json = r#"{
            "server": {"port": "80", "debug": true},
            "log": {"level": "loud"},
            "features": ["a", 2, "c", "d"],
            "databases": {"main": {"url": "x"}, "replica": {}},
            "extra": 1
        }"#;
        let mut got = problems(json, "app.json");
        got.sort();
        assert_eq!(
            got,
            [
                "databases.main.url: \"x\" is less than 8 long",
                "databases.replica.url: is required",
                "extra: is not in the schema",
                "features: [\"a\",2,\"c\",\"d\"] is more than 3 long",
                "features[1]: expected string, found integer 2",
                "log.level: \"loud\" is not one of \"debug\", \"info\", \"warn\", \"error\"",
                "server.debug: is not in the schema",
                "server.port: expected integer, found string \"80\"",
            ]
        );
    }

    #[test]
    fn a_missing_required_field_and_bounds_are_reported() {
        assert_eq!(
            problems("[server]\nhost = \"a\"\n", "app.toml"),
            ["server.port: is required"]
        );
        assert_eq!(problems("", "app.toml"), ["server.port: is required"]);
        assert_eq!(
            problems("[server]\nport = 70000\n", "app.toml"),
            ["server.port: 70000 is more than 65535"]
        );
    }

    #[test]
    fn bad_documents_and_schemas_are_errors() {
        assert!(
            parse_document("{", "a.json")
                .unwrap_err()
                .starts_with("invalid JSON")
        );
        assert!(
            parse_document("a = ", "a.toml")
                .unwrap_err()
                .starts_with("invalid TOML")
        );
        let e = Schema::parse(r#"{"fields": {"a": {"type": "decimal"}}}"#).unwrap_err();
        assert!(
            e.starts_with("invalid schema: unknown variant `decimal`"),
            "{e}"
        );
        let e = Schema::parse(r#"{"fields": {"a": {"requried": true}}}"#).unwrap_err();
        assert!(e.contains("unknown field `requried`"), "{e}");
    }
}
