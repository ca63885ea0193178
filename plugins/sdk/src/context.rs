//! Typed access to the parameters a flow gives a plugin, with errors that
//! name the parameter and what was wrong with it.

use std::fmt::Display;
use std::str::FromStr;

use crate::error::Error;
use crate::types::ReleaseContext;

/// Reading a plugin's parameters, implemented for [`ReleaseContext`].
pub trait Params {
    /// The raw value of a parameter, if the flow set it.
    fn param_str(&self, name: &str) -> Option<&str>;

    /// A parameter parsed as `T`, or `None` when it is not set. A value that
    /// does not parse is an error naming the parameter:
    /// ``parameter `threshold`: `abc` is not valid (invalid float literal)``.
    fn param<T>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.param_str(name)
            .map(|raw| {
                raw.trim().parse::<T>().map_err(|e| {
                    Error::new(format!("parameter `{name}`: `{raw}` is not valid ({e})"))
                })
            })
            .transpose()
    }

    /// A parameter parsed as `T`, or `default` when it is not set.
    fn param_or<T>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.param(name)?.unwrap_or(default))
    }

    /// A parameter parsed as `T` that the flow must set.
    fn required<T>(&self, name: &str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.param(name)?
            .ok_or_else(|| Error::new(format!("parameter `{name}` is required")))
    }

    /// A comma-separated list parameter, trimmed, empty items dropped; empty
    /// when the parameter is not set.
    fn param_list(&self, name: &str) -> Vec<String> {
        self.param_str(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Params for ReleaseContext {
    fn param_str(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(params: &[(&str, &str)]) -> ReleaseContext {
        ReleaseContext {
            release_id: "r1".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0".into(),
            previous_version: None,
            stage: "canary".into(),
            batch: None,
            attempt: 1,
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deployed_at_ms: None,
        }
    }

    #[test]
    fn parameters_parse_to_their_type_or_say_which_one_is_wrong() {
        let c = ctx(&[("threshold", " 0.5 "), ("count", "many")]);
        assert_eq!(c.param::<f64>("threshold"), Ok(Some(0.5)));
        assert_eq!(c.param::<f64>("missing"), Ok(None));
        assert_eq!(c.param_or("missing", 7u32), Ok(7));
        let e = c.param::<u32>("count").unwrap_err();
        assert_eq!(
            e.message(),
            "parameter `count`: `many` is not valid (invalid digit found in string)"
        );
        assert!(!e.is_retryable());
        assert_eq!(
            c.required::<String>("url").unwrap_err().message(),
            "parameter `url` is required"
        );
    }

    #[test]
    fn list_parameters_split_on_commas() {
        let c = ctx(&[("checks", "error_rate, latency_p99_ms,,")]);
        assert_eq!(c.param_list("checks"), ["error_rate", "latency_p99_ms"]);
        assert!(c.param_list("none").is_empty());
    }
}
