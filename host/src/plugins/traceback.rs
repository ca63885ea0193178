//! A Python or JavaScript exception that escaped a plugin, read back from
//! what the language's runtime wrote before it trapped: the exception's own
//! line (`KeyError: 'max_p99_ms'`) and where it was raised, so that the
//! error leads with what the author wrote rather than the runtime's trap
//! and its wasm frames.

/// An uncaught exception, as its language reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// The exception: `KeyError: 'max_p99_ms'`.
    pub exception: String,
    /// Where it was raised, in the author's code: `raiser.py, line 11, in
    /// helper` or `helper at raiser.js:9:3`.
    pub at: Option<String>,
    /// The language's own traceback, as it wrote it (the runtime's glue
    /// frames left out).
    pub traceback: String,
}

/// The last uncaught exception `stderr` reports, in Python's form
/// (componentize-py) or JavaScript's (StarlingMonkey, as jco builds it).
pub fn raised(stderr: &str) -> Option<Raised> {
    python(stderr).or_else(|| javascript(stderr))
}

/// componentize-py keeps the application's modules under `/0/`, `/1/`…
fn without_bundle_dir(path: &str) -> &str {
    let Some(rest) = path.strip_prefix('/') else {
        return path;
    };
    match rest.split_once('/') {
        Some((dir, file)) if !dir.is_empty() && dir.bytes().all(|b| b.is_ascii_digit()) => file,
        _ => path,
    }
}

/// `Traceback (most recent call last):`, frames indented, then the
/// exception unindented. The last such block is the one that escaped.
fn python(stderr: &str) -> Option<Raised> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last):"))?;
    let mut frames = Vec::new();
    let mut traceback = vec![lines[start].to_string()];
    let mut exception = None;
    for line in &lines[start + 1..] {
        if line.starts_with(' ') {
            let file = line
                .trim_start()
                .strip_prefix("File \"")
                .and_then(|rest| rest.split_once('"'));
            traceback.push(match file {
                Some((path, rest)) => {
                    let path = without_bundle_dir(path);
                    frames.push(format!("{path}{rest}"));
                    format!("  File \"{path}\"{rest}")
                }
                None => line.to_string(),
            });
        } else if !line.trim().is_empty() {
            traceback.push(line.to_string());
            exception = Some(line.to_string());
            break;
        }
    }
    Some(Raised {
        exception: exception?,
        at: frames.last().cloned(),
        traceback: traceback.join("\n"),
    })
}

/// `message`, then `Stack:` and one `function@file:line:column` per line,
/// innermost first; the frames of jco's generated glue are left out.
fn javascript(stderr: &str) -> Option<Raised> {
    let lines: Vec<&str> = stderr.lines().collect();
    let stack = lines.iter().rposition(|l| l.trim_end() == "Stack:")?;
    let exception = lines[..stack]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .to_string();
    let frames: Vec<String> = lines[stack + 1..]
        .iter()
        .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
        .map(|l| l.trim())
        .filter(|l| !l.contains("/sources/initializer.js"))
        .map(|l| match l.split_once('@') {
            Some((function, place)) if !function.is_empty() => format!("{function} at {place}"),
            Some((_, place)) => place.to_string(),
            None => l.to_string(),
        })
        .collect();
    let mut traceback = vec![exception.clone(), "Stack:".to_string()];
    traceback.extend(frames.iter().map(|f| format!("  {f}")));
    Some(Raised {
        exception,
        at: frames.first().cloned(),
        traceback: traceback.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What componentize-py 0.25 writes for a `KeyError` raised two calls
    /// deep in `verify`, before its runtime panics.
    const PYTHON: &str = "Traceback (most recent call last):\n  File \"/0/raiser.py\", line 7, in verify\n  File \"/0/raiser.py\", line 11, in helper\nKeyError: 'max_p99_ms'\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";

    /// What a component built by jco 1.34 writes for a `TypeError`.
    const JAVASCRIPT: &str = "can't access property \"trim\", params.max_p99_ms is undefined\nStack:\n  helper@raiser.js:9:3\n  verify@raiser.js:4:12\n  fn@/tmp/4befe2c25cfc/sources/initializer.js:12967:31\n  _withGlobalCurrentTaskMetaAsync@/tmp/4befe2c25cfc/sources/initializer.js:148:18\n\nRedirecting call to abort() to mozalloc_abort\n\n";

    #[test]
    fn a_python_exception_leads_with_its_own_line_and_the_innermost_frame() {
        let r = raised(PYTHON).unwrap();
        assert_eq!(r.exception, "KeyError: 'max_p99_ms'");
        assert_eq!(r.at.as_deref(), Some("raiser.py, line 11, in helper"));
        assert_eq!(
            r.traceback,
            "Traceback (most recent call last):\n  File \"raiser.py\", line 7, in verify\n  \
             File \"raiser.py\", line 11, in helper\nKeyError: 'max_p99_ms'"
        );
    }

    #[test]
    fn a_javascript_exception_leads_with_its_message_and_the_authors_frames() {
        let r = raised(JAVASCRIPT).unwrap();
        assert_eq!(
            r.exception,
            "can't access property \"trim\", params.max_p99_ms is undefined"
        );
        assert_eq!(r.at.as_deref(), Some("helper at raiser.js:9:3"));
        assert_eq!(
            r.traceback,
            "can't access property \"trim\", params.max_p99_ms is undefined\nStack:\n  \
             helper at raiser.js:9:3\n  verify at raiser.js:4:12"
        );
    }

    #[test]
    fn the_last_python_traceback_is_the_one_that_escaped() {
        let chained = format!(
            "Traceback (most recent call last):\n  File \"/0/a.py\", line 1, in f\nValueError: x\n\n\
             During handling of the above exception, another exception occurred:\n\n{PYTHON}"
        );
        assert_eq!(
            raised(&chained).unwrap().exception,
            "KeyError: 'max_p99_ms'"
        );
    }

    #[test]
    fn other_output_is_no_exception() {
        for text in [
            "",
            "thread 'main' panicked at src/lib.rs:3:5:\nboom",
            "Traceback (most recent call last):\n  File \"/0/a.py\", line 1, in f\n",
        ] {
            assert_eq!(raised(text), None, "{text}");
        }
    }
}
