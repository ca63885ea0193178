//! The one rule for every name and identifier the API accepts (plugins,
//! flows, stages, applications, environments, targets and their groups,
//! tokens, schedules, freezes, trains), and the rules for the other
//! strings that are shown in logs and the UI: free text and addresses.
//!
//! Names appear in URLs, log lines, host names and file names, so they are
//! kept to what reads the same everywhere: no separators, no `..`, no
//! controls, no look-alikes. The API's OpenAPI document states the same
//! patterns (see `api::openapi`), so a client can check a name before
//! sending it. Only new names are checked: things stored before a rule
//! existed are found, shown and removed by whatever name they were stored
//! under.

use super::flow::FlowError;

/// The longest name: a DNS label's length, so a name can be a host name.
pub const MAX_LEN: usize = 63;

/// A name, as the OpenAPI document states it (ECMA-262).
pub const PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,62}$";

/// A name, in words, for error messages.
pub const RULE: &str =
    "use 1 to 63 characters of a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit";

/// The longest free text (a comment, a reason, a description).
pub const MAX_TEXT_LEN: usize = 4096;

/// Free text, as the OpenAPI document states it: anything but control
/// characters (tab and newline are allowed) and the bidirectional
/// overrides that make a log line read differently from what it holds.
pub const TEXT_PATTERN: &str =
    "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]*$";

/// The longest address of a target.
pub const MAX_ADDRESS_LEN: usize = 255;

/// A target's address, as the OpenAPI document states it: `host`,
/// `host:port`, `[v6]:port`, optionally as an `http://` or `https://` URL
/// with a path; empty where an address is optional.
pub const ADDRESS_PATTERN: &str =
    "^((https?://)?([A-Za-z0-9._~-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[!-~]*)?)?$";

/// The longest version of what a release ships.
pub const MAX_VERSION_LEN: usize = 128;

/// The version a release ships, as the OpenAPI document states it: 1 to
/// 128 printable ASCII characters without spaces (`1.4.2`, `v2`,
/// `2026-03-01+build.5`).
pub const VERSION_PATTERN: &str = "^[!-~]{1,128}$";

/// Checks the version a release ships.
pub fn check_version(field: impl Into<String>, value: &str) -> Result<(), FlowError> {
    let ok = (1..=MAX_VERSION_LEN).contains(&value.len())
        && value.bytes().all(|b| (b'!'..=b'~').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FlowError::new(
            field,
            format!(
                "{} is not a version: use 1 to {MAX_VERSION_LEN} printable ASCII characters without spaces",
                shown(value)
            ),
        ))
    }
}

/// An http:// or https:// URL the daemon fetches, as the OpenAPI document
/// states it: an address with its scheme.
pub const URL_PATTERN: &str =
    "^https?://([A-Za-z0-9._~-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[!-~]*)?$";

/// Checks an http:// or https:// URL (`URL_PATTERN`).
pub fn check_url(field: impl Into<String>, value: &str) -> Result<(), FlowError> {
    let has_scheme = value.starts_with("http://") || value.starts_with("https://");
    if has_scheme && is_address(value) {
        Ok(())
    } else {
        Err(FlowError::new(
            field,
            format!(
                "{} is not an http:// or https:// URL of at most {MAX_ADDRESS_LEN} characters",
                shown(value)
            ),
        ))
    }
}

/// Whether `value` is a name.
pub fn is_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Checks a name; the error names the field and states the rule.
pub fn check_name(field: impl Into<String>, value: &str) -> Result<(), FlowError> {
    if is_name(value) {
        Ok(())
    } else {
        Err(FlowError::new(
            field,
            format!("{} is not a name: {RULE}", shown(value)),
        ))
    }
}

/// Whether `c` may not appear in free text.
fn is_refused_in_text(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Checks free text: at most `max` bytes, and none of the characters
/// `TEXT_PATTERN` refuses.
pub fn check_text(field: impl Into<String>, value: &str, max: usize) -> Result<(), FlowError> {
    if value.len() > max {
        return Err(FlowError::new(
            field,
            format!("is {} bytes long; the most is {max}", value.len()),
        ));
    }
    match value.chars().find(|&c| is_refused_in_text(c)) {
        Some(c) => Err(FlowError::new(
            field,
            format!(
                "holds the control character {}; text may hold tab and newline but no other control or direction-override character",
                c.escape_unicode()
            ),
        )),
        None => Ok(()),
    }
}

/// Whether `value` is an address (`ADDRESS_PATTERN`), or empty.
pub fn is_address(value: &str) -> bool {
    if value.len() > MAX_ADDRESS_LEN {
        return false;
    }
    if value.is_empty() {
        return true;
    }
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path_ok = path.bytes().all(|b| (b'!'..=b'~').contains(&b));
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, port)) => (
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.')),
                port,
            ),
            None => (false, ""),
        },
        None => {
            let (host, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            (
                !host.is_empty()
                    && host.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')
                    }),
                port,
            )
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok && path_ok
}

/// Checks an address; the error names the field and states the rule.
pub fn check_address(field: impl Into<String>, value: &str) -> Result<(), FlowError> {
    if is_address(value) {
        Ok(())
    } else {
        Err(FlowError::new(
            field,
            format!(
                "{} is not an address: use host, host:port or an http:// or https:// URL, at most {MAX_ADDRESS_LEN} characters",
                shown(value)
            ),
        ))
    }
}

/// A value as an error message shows it: quoted, with every control and
/// direction-override character escaped, and cut after 64 characters so a
/// huge value does not make a huge message.
pub fn shown(value: &str) -> String {
    const SHOWN: usize = 64;
    let mut out = String::from("`");
    for c in value.chars().take(SHOWN) {
        if is_refused_in_text(c) || c == '\n' || c == '\t' || c == '`' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    let total = value.chars().count();
    if total > SHOWN {
        out.push_str(&format!(" (cut; {total} characters)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bad names of the security review, refused everywhere.
    pub const BAD: &[&str] = &[
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "a\0b",
        "a\r\nb",
        "a\u{202e}b",
        "Shop",
        "-a",
        "_a",
        "a b",
        "é",
        "a@b",
    ];

    #[test]
    fn names_follow_one_rule() {
        for good in ["shop", "web-2", "a", "0", "v1.2_x", &"x".repeat(MAX_LEN)] {
            assert!(check_name("name", good).is_ok(), "{good}");
        }
        let long = "x".repeat(10_000);
        for bad in BAD
            .iter()
            .copied()
            .chain([&"x".repeat(MAX_LEN + 1)[..], &long])
        {
            let e = check_name("flow.name", bad).unwrap_err();
            assert_eq!(e.path, "flow.name");
            assert!(e.problem.contains(RULE), "{e}");
        }
    }

    #[test]
    fn errors_show_values_escaped_and_short() {
        let e = check_name("targets[2].id", "a\r\n\u{202e}\0").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("targets[2].id: `a\\u{{d}}\\u{{a}}\\u{{202e}}\\u{{0}}` is not a name: {RULE}")
        );
        let e = check_name("name", &"x".repeat(10_000)).unwrap_err();
        assert!(e.problem.contains("(cut; 10000 characters)"), "{e}");
        assert!(e.problem.len() < 300, "{e}");
    }

    #[test]
    fn text_refuses_controls_but_keeps_lines() {
        assert!(check_text("comment", "Looks good.\n\tShip it — ✓", 100).is_ok());
        for bad in [
            "a\rb",
            "a\0b",
            "a\u{1b}[31m",
            "a\u{202e}b",
            "a\u{2066}b",
            "a\u{85}b",
        ] {
            let e = check_text("comment", bad, 100).unwrap_err();
            assert_eq!(e.path, "comment");
        }
        assert!(check_text("comment", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn addresses_are_hosts_ports_or_urls() {
        for good in [
            "",
            "10.0.0.1:8080",
            "web-1",
            "web-1.internal:80",
            "http://127.0.0.1:8081",
            "https://svc.example/health?x=1",
            "[::1]:8080",
        ] {
            assert!(check_address("address", good).is_ok(), "{good}");
        }
        for bad in [
            "a b",
            "a\r\nb",
            "a\0",
            "ftp://x",
            "http://",
            ":80",
            "h:99999x",
            "[::1",
            "x/\u{202e}",
            &"a".repeat(256),
        ] {
            assert!(check_address("targets[0].address", bad).is_err(), "{bad:?}");
        }
    }
}
