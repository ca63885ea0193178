//! What a plugin is allowed to do: the hosts it may call, its configuration
//! and secrets, and the limits of each invocation.

use std::collections::BTreeMap;
use std::fmt;

use super::flow::FlowError;

/// The shape of an origin in a grant, for the OpenAPI document: `http` or
/// `https` in any case, a host (an IPv6 address in brackets), an optional
/// port of at most 65535 written without leading zeros, and an optional
/// `/`. [`Origin::parse`] accepts exactly these.
pub const ORIGIN_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://(\\[[^\\[\\]/?#@]+\\]|[^\\[\\]/?#@:]+)\
     (:(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/?$";

/// An HTTP origin a plugin may call: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-cased host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]`, with nothing after the authority but an
    /// optional `/`. The port defaults to the scheme's.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin: expected scheme://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            other => return Err(format!("`{text}`: scheme `{other}` is not http or https")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}` is not an origin: expected scheme://host[:port] with no path, query or user"
            ));
        }
        check_shape(authority)
            .and_then(|()| Origin::from_authority(&scheme, authority, default_port))
            .map_err(|problem| format!("`{text}`: {problem}"))
    }

    /// Builds an origin from a request's scheme and authority (`host[:port]`).
    pub fn from_authority(
        scheme: &str,
        authority: &str,
        default_port: u16,
    ) -> Result<Origin, String> {
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| "unclosed `[` in IPv6 host".to_string())?;
            match after {
                "" => (host, None),
                p if p.starts_with(':') => (host, Some(&p[1..])),
                _ => return Err("unexpected text after IPv6 host".into()),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("empty host".into());
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?,
        };
        Ok(Origin {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// What a grant's origin needs beyond what a request's authority does, so
/// that the origins accepted are exactly those [`ORIGIN_PATTERN`] states:
/// brackets only around an IPv6 host, a colon only before the port, and
/// the port in digits without leading zeros.
fn check_shape(authority: &str) -> Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
            (host, after.strip_prefix(':'))
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.contains(':') {
                return Err("an IPv6 host needs brackets".into());
            }
            (host, port)
        }
    };
    if host.contains(['[', ']']) {
        return Err("`[` and `]` only enclose an IPv6 host".into());
    }
    if let Some(p) = port {
        let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits || (p.len() > 1 && p.starts_with('0')) {
            return Err(format!("bad port `{p}`: digits without leading zeros"));
        }
    }
    Ok(())
}

impl Origin {
    /// The origin a target's address is reached at: an `http://` or
    /// `https://` URL's own origin (its path dropped), and `http://` for a
    /// bare `host[:port]`. `None` for an address no origin can be taken
    /// from (empty, or a URL of another scheme).
    pub fn of_address(address: &str) -> Option<Origin> {
        let (scheme, rest) = match address.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_string(), address),
        };
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Origin::from_authority(&scheme, authority, default_port).ok()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Per-plugin overrides of the invocation limits; unset fields take the
/// daemon's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub max_outbound_requests: Option<u32>,
}

/// The limits one invocation runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of the whole call, host calls included.
    pub deadline_ms: u64,
    /// Cap on the linear memory of the plugin, all memories together.
    pub memory_mib: u64,
    /// Cap on the size of what the plugin returns.
    pub max_output_bytes: u64,
    /// Cap on outbound HTTP requests per invocation.
    pub max_outbound_requests: u32,
}

impl Limits {
    /// Applies a grant's overrides to these defaults.
    pub fn with_overrides(self, o: &LimitOverrides) -> Limits {
        Limits {
            deadline_ms: o.deadline_ms.unwrap_or(self.deadline_ms),
            memory_mib: o.memory_mib.unwrap_or(self.memory_mib),
            max_output_bytes: o.max_output_bytes.unwrap_or(self.max_output_bytes),
            max_outbound_requests: o
                .max_outbound_requests
                .unwrap_or(self.max_outbound_requests),
        }
    }
}

/// Everything a plugin is allowed beyond computing: set by an admin per
/// plugin name, for all its versions. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub allowed_hosts: Vec<Origin>,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub limits: LimitOverrides,
    /// How to reach private HTTPS origins (a cluster's API server, say):
    /// at most one entry per origin, each among `allowed_hosts`.
    pub tls: Vec<OriginTls>,
    /// Whether the plugin may also call the targets of the release it
    /// works for: the origins of the addresses the inventory lists for the
    /// release's application and environment, read at each call, so the
    /// grant follows the inventory.
    pub release_targets: bool,
}

/// How to reach one private HTTPS origin. Verification is never switched
/// off: the CA replaces the public roots for this origin only, and the
/// client certificate is presented in addition to verifying the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginTls {
    pub origin: Origin,
    /// PEM certificates to trust for this origin instead of the public roots.
    pub ca_pem: Option<String>,
    /// The grant's secret holding the client certificate chain (PEM).
    pub client_cert_secret: Option<String>,
    /// The grant's secret holding the client certificate's private key (PEM).
    pub client_key_secret: Option<String>,
}

impl Grant {
    /// Whether a request to this origin is allowed.
    pub fn allows(&self, origin: &Origin) -> bool {
        self.allowed_hosts.iter().any(|o| o == origin)
    }

    /// This grant, also allowing the origins of these targets' addresses
    /// (those an origin can be taken from).
    pub fn reaching(&self, targets: &[super::plugin::Target]) -> Grant {
        let mut grant = self.clone();
        for origin in targets
            .iter()
            .filter_map(|t| Origin::of_address(&t.address))
        {
            if !grant.allows(&origin) {
                grant.allowed_hosts.push(origin);
            }
        }
        grant
    }

    /// How to reach this origin over TLS, when the grant says.
    pub fn tls_for(&self, origin: &Origin) -> Option<&OriginTls> {
        self.tls.iter().find(|t| &t.origin == origin)
    }

    /// Checks the TLS entries against the rest of the grant, naming the
    /// first problem with its field (`tls[1].client_key_secret`). Whether
    /// the PEM parses is for the runtime, which knows TLS, to check.
    pub fn check_tls(&self) -> Result<(), String> {
        for (i, t) in self.tls.iter().enumerate() {
            let at = |field: &str| format!("tls[{i}].{field}");
            if t.origin.scheme != "https" {
                return Err(format!(
                    "{}: `{}` is not an https origin",
                    at("origin"),
                    t.origin
                ));
            }
            if !self.allows(&t.origin) {
                return Err(format!(
                    "{}: `{}` is not among allowed_hosts; add it there too",
                    at("origin"),
                    t.origin
                ));
            }
            if self.tls[..i].iter().any(|o| o.origin == t.origin) {
                return Err(format!("{}: `{}` is listed twice", at("origin"), t.origin));
            }
            if t.client_cert_secret.is_some() != t.client_key_secret.is_some() {
                return Err(format!(
                    "{}: a client certificate needs both client_cert_secret and client_key_secret",
                    at("client_key_secret")
                ));
            }
            for (field, secret) in [
                ("client_cert_secret", &t.client_cert_secret),
                ("client_key_secret", &t.client_key_secret),
            ] {
                if let Some(name) = secret
                    && !self.secrets.contains_key(name)
                {
                    return Err(format!(
                        "{}: the grant has no secret named `{name}`",
                        at(field)
                    ));
                }
            }
            if t.ca_pem.is_none() && t.client_cert_secret.is_none() {
                return Err(format!(
                    "{}: name a CA (ca_pem), a client certificate, or both",
                    at("origin")
                ));
            }
        }
        Ok(())
    }
}

/// A change to a grant: entries added, changed and removed, everything
/// else kept. Secrets are write-only, so an edit is the only way to add a
/// host to a grant with secrets without sending them again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantEdit {
    pub allow_hosts: Vec<Origin>,
    pub remove_hosts: Vec<Origin>,
    /// Let the plugin call its releases' targets, or stop it; `None` keeps.
    pub release_targets: Option<bool>,
    /// Set (added or changed).
    pub config: BTreeMap<String, String>,
    pub remove_config: Vec<String>,
    /// Set (added or changed).
    pub secrets: BTreeMap<String, String>,
    pub remove_secrets: Vec<String>,
    /// The limits given are set; the others kept.
    pub limits: LimitOverrides,
    /// Limits returned to the daemon's defaults, by name.
    pub reset_limits: Vec<String>,
    /// TLS settings set, each replacing the origin's entry if it has one.
    pub tls: Vec<OriginTls>,
    pub remove_tls: Vec<Origin>,
}

/// The limits a grant may set, by name.
pub const LIMIT_NAMES: [&str; 4] = [
    "deadline_ms",
    "memory_mib",
    "max_output_bytes",
    "max_outbound_requests",
];

impl GrantEdit {
    /// The grant after this edit, or the first problem named with its field
    /// (`remove_hosts[1]: … is not among the grant's allowed_hosts`): a
    /// removal of something the grant does not hold is refused, since it
    /// is most often a typo that would leave the entry in place. Removing a
    /// host also removes its TLS settings.
    pub fn apply(&self, grant: &Grant) -> Result<Grant, String> {
        let mut g = grant.clone();
        for (i, origin) in self.remove_hosts.iter().enumerate() {
            if self.allow_hosts.contains(origin) {
                return Err(format!(
                    "remove_hosts[{i}]: `{origin}` is also in allow_hosts"
                ));
            }
            let before = g.allowed_hosts.len();
            g.allowed_hosts.retain(|o| o != origin);
            if g.allowed_hosts.len() == before {
                return Err(format!(
                    "remove_hosts[{i}]: `{origin}` is not among the grant's allowed_hosts"
                ));
            }
            g.tls.retain(|t| &t.origin != origin);
        }
        for origin in &self.allow_hosts {
            if !g.allows(origin) {
                g.allowed_hosts.push(origin.clone());
            }
        }
        if let Some(on) = self.release_targets {
            g.release_targets = on;
        }
        remove_keys(
            &mut g.config,
            &self.remove_config,
            "remove_config",
            "config",
        )?;
        g.config.extend(self.config.clone());
        remove_keys(
            &mut g.secrets,
            &self.remove_secrets,
            "remove_secrets",
            "secrets",
        )?;
        g.secrets.extend(self.secrets.clone());
        for (i, name) in self.reset_limits.iter().enumerate() {
            let l = &mut g.limits;
            match name.as_str() {
                "deadline_ms" => l.deadline_ms = None,
                "memory_mib" => l.memory_mib = None,
                "max_output_bytes" => l.max_output_bytes = None,
                "max_outbound_requests" => l.max_outbound_requests = None,
                other => {
                    return Err(format!(
                        "reset_limits[{i}]: `{other}` is not a limit; use one of {}",
                        LIMIT_NAMES.join(", ")
                    ));
                }
            }
        }
        let (set, l) = (&self.limits, &mut g.limits);
        l.deadline_ms = set.deadline_ms.or(l.deadline_ms);
        l.memory_mib = set.memory_mib.or(l.memory_mib);
        l.max_output_bytes = set.max_output_bytes.or(l.max_output_bytes);
        l.max_outbound_requests = set.max_outbound_requests.or(l.max_outbound_requests);
        for (i, origin) in self.remove_tls.iter().enumerate() {
            let before = g.tls.len();
            g.tls.retain(|t| &t.origin != origin);
            if g.tls.len() == before {
                return Err(format!(
                    "remove_tls[{i}]: the grant has no TLS settings for `{origin}`"
                ));
            }
        }
        for entry in &self.tls {
            match g.tls.iter_mut().find(|t| t.origin == entry.origin) {
                Some(old) => *old = entry.clone(),
                None => g.tls.push(entry.clone()),
            }
        }
        Ok(g)
    }
}

/// Removes each key from `map`, refusing one it does not hold.
fn remove_keys(
    map: &mut BTreeMap<String, String>,
    keys: &[String],
    field: &str,
    holder: &str,
) -> Result<(), String> {
    for (i, key) in keys.iter().enumerate() {
        if map.remove(key).is_none() {
            return Err(format!(
                "{field}[{i}]: the grant has no {holder} entry `{key}`"
            ));
        }
    }
    Ok(())
}

/// Bounds within which an admin may set a grant's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitBounds {
    pub max_deadline_ms: u64,
    pub max_memory_mib: u64,
    pub max_output_bytes: u64,
    pub max_outbound_requests: u32,
}

impl LimitOverrides {
    /// Checks the overrides against the daemon's bounds, naming the field
    /// at fault. A zero breaks a rule the OpenAPI document states; a value
    /// above a bound breaks one only words state, since each daemon's
    /// configuration sets its own bounds.
    pub fn validate(&self, bounds: &LimitBounds) -> Result<(), FlowError> {
        fn check(field: &str, value: Option<u64>, max: u64) -> Result<(), FlowError> {
            let path = format!("limits.{field}");
            match value {
                Some(0) => Err(FlowError::new(path, "must be greater than 0")),
                Some(v) if v > max => Err(FlowError::worded(
                    path,
                    format!("is {v}, above this daemon's maximum of {max}"),
                )),
                _ => Ok(()),
            }
        }
        check("deadline_ms", self.deadline_ms, bounds.max_deadline_ms)?;
        check("memory_mib", self.memory_mib, bounds.max_memory_mib)?;
        check(
            "max_output_bytes",
            self.max_output_bytes,
            bounds.max_output_bytes,
        )?;
        match self.max_outbound_requests {
            Some(v) if v > bounds.max_outbound_requests => Err(FlowError::worded(
                "limits.max_outbound_requests",
                format!(
                    "is {v}, above this daemon's maximum of {}",
                    bounds.max_outbound_requests
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let o = Origin::parse("HTTPS://Prom.Example.com").unwrap();
        assert_eq!(o.to_string(), "https://prom.example.com:443");
        let o = Origin::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 8080));
        let o = Origin::parse("http://[::1]:9000").unwrap();
        assert_eq!(o.to_string(), "http://[::1]:9000");
    }

    #[test]
    fn origins_with_paths_or_other_schemes_are_refused() {
        for bad in [
            "127.0.0.1:80",
            "ftp://x",
            "http://x/path",
            "http://user@x",
            "http://x:99999",
            "http://x:080",
            "http://x:+80",
            "http://a:b:80",
            "http://a]b",
            "http://[[::1]",
            "http://",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    /// Origins either side of each rule of [`ORIGIN_PATTERN`], as the
    /// pattern reads them: the parser must agree, or a client following the
    /// document is refused (or a fuzzer's counterexample accepted).
    #[test]
    fn the_parser_accepts_what_the_pattern_states() {
        let matching = [
            "http://x",
            "HtTpS://x:0",
            "http://x:65535",
            "http://[::1]",
            "http://[::1]:80/",
            "http://x y",
            "http://x:1/",
        ];
        let not_matching = [
            "http://x:65536",
            "http://x:0443",
            "http://[]",
            "http://[::1]x",
            "http://x//",
            "http://x:",
            "http://a:b",
            "https://a]",
            "http://x?",
            "ftp://x",
            "http://[a[b]",
        ];
        for text in matching {
            assert!(Origin::parse(text).is_ok(), "{text} matches the pattern");
        }
        for text in not_matching {
            assert!(
                Origin::parse(text).is_err(),
                "{text} does not match the pattern"
            );
        }
    }

    #[test]
    fn a_target_address_gives_its_origin() {
        let of = |a: &str| Origin::of_address(a).map(|o| o.to_string());
        assert_eq!(of("10.0.0.1:8080").as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(of("web-1").as_deref(), Some("http://web-1:80"));
        assert_eq!(
            of("HTTPS://Shop.Example/health?x=1").as_deref(),
            Some("https://shop.example:443")
        );
        assert_eq!(
            of("http://[::1]:9000/").as_deref(),
            Some("http://[::1]:9000")
        );
        for none in ["", "ftp://x", "http://", "http://u@x", "x:port"] {
            assert_eq!(of(none), None, "{none}");
        }
    }

    #[test]
    fn a_grant_reaching_targets_adds_each_origin_once() {
        let target = |address: &str| super::super::plugin::Target {
            id: "t".into(),
            address: address.into(),
            ..Default::default()
        };
        let grant = Grant {
            allowed_hosts: vec![Origin::parse("http://10.0.0.1:8080").unwrap()],
            ..Default::default()
        };
        let wider = grant.reaching(&[
            target("10.0.0.1:8080"),
            target("10.0.0.2:8080"),
            target("http://10.0.0.2:8080/x"),
            target(""),
        ]);
        let hosts: Vec<String> = wider.allowed_hosts.iter().map(|o| o.to_string()).collect();
        assert_eq!(hosts, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
    }

    #[test]
    fn an_edit_adds_and_removes_entries_and_keeps_the_rest() {
        let o = |t: &str| Origin::parse(t).unwrap();
        let grant = Grant {
            allowed_hosts: vec![o("http://a:1"), o("https://b")],
            config: [("tier".to_string(), "gold".to_string())].into(),
            secrets: [("token".to_string(), "s3cret".to_string())].into(),
            limits: LimitOverrides {
                deadline_ms: Some(9_000),
                memory_mib: Some(64),
                ..Default::default()
            },
            tls: vec![OriginTls {
                origin: o("https://b"),
                ca_pem: Some("pem".into()),
                client_cert_secret: None,
                client_key_secret: None,
            }],
            release_targets: false,
        };
        let edit = GrantEdit {
            allow_hosts: vec![o("http://c:3"), o("http://a:1")],
            remove_hosts: vec![o("https://b")],
            release_targets: Some(true),
            config: [("zone".to_string(), "eu".to_string())].into(),
            reset_limits: vec!["memory_mib".into()],
            limits: LimitOverrides {
                max_outbound_requests: Some(50),
                ..Default::default()
            },
            ..Default::default()
        };
        let after = edit.apply(&grant).unwrap();
        assert_eq!(after.allowed_hosts, [o("http://a:1"), o("http://c:3")]);
        assert!(after.tls.is_empty(), "the removed host's TLS goes with it");
        assert!(after.release_targets);
        assert_eq!(after.config.len(), 2);
        assert_eq!(after.secrets, grant.secrets, "secrets are kept");
        assert_eq!(after.limits.deadline_ms, Some(9_000));
        assert_eq!(after.limits.memory_mib, None);
        assert_eq!(after.limits.max_outbound_requests, Some(50));

        let missing = GrantEdit {
            remove_secrets: vec!["tokn".into()],
            ..Default::default()
        };
        assert_eq!(
            missing.apply(&grant).unwrap_err(),
            "remove_secrets[0]: the grant has no secrets entry `tokn`"
        );
        let typo = GrantEdit {
            remove_hosts: vec![o("http://a:2")],
            ..Default::default()
        };
        assert_eq!(
            typo.apply(&grant).unwrap_err(),
            "remove_hosts[0]: `http://a:2` is not among the grant's allowed_hosts"
        );
        let unknown = GrantEdit {
            reset_limits: vec!["cpu".into()],
            ..Default::default()
        };
        assert!(
            unknown
                .apply(&grant)
                .unwrap_err()
                .starts_with("reset_limits[0]: `cpu`")
        );
    }

    #[test]
    fn limits_above_the_bounds_are_named() {
        let bounds = LimitBounds {
            max_deadline_ms: 60_000,
            max_memory_mib: 512,
            max_output_bytes: 1 << 20,
            max_outbound_requests: 100,
        };
        let o = LimitOverrides {
            memory_mib: Some(4096),
            ..Default::default()
        };
        let err = o.validate(&bounds).unwrap_err();
        assert_eq!(err.path, "limits.memory_mib");
        assert_eq!(err.rule, crate::domain::flow::Rule::Worded);
        assert!(LimitOverrides::default().validate(&bounds).is_ok());
    }
}
