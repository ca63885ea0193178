//! The Python and JavaScript example checks of `examples/`, built into
//! components by `examples/build-polyglot.sh` at most once per test run, a
//! stats endpoint for them to read, and daemons that share one directory of
//! compiled artifacts.
//!
//! Compiling a component of 15 MiB takes wasmtime tens of seconds on a busy
//! machine, so every daemon and every `greenlight plugin test` of these
//! tests keeps its compiled artifacts in the same directory: the first
//! compile of a component is the only one, as it is for a real daemon
//! that compiles at upload.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Daemon, binary};

/// A language an example check is written in.
#[derive(Debug, Clone, Copy)]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    /// The component's name for the build script.
    fn component(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }
}

/// A built example check.
pub struct Component {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

static PYTHON: OnceCell<Component> = OnceCell::const_new();
static JAVASCRIPT: OnceCell<Component> = OnceCell::const_new();

/// The target directory the tests were built in: the plugins' output
/// directory is `TARGET/plugins/wasm32-wasip2/release`.
fn target_dir() -> PathBuf {
    Path::new(env!("GREENLIGHT_PLUGINS_DIR"))
        .ancestors()
        .nth(3)
        .expect("the plugins directory lies inside the target directory")
        .to_path_buf()
}

/// The example check in `language`, built (and its tools installed) the
/// first time a test asks for it; `./dev test` builds both beforehand, so then
/// this finds them up to date. Prints the build time and the size.
pub async fn component(language: Language) -> &'static Component {
    let cell = match language {
        Language::Python => &PYTHON,
        Language::JavaScript => &JAVASCRIPT,
    };
    cell.get_or_init(|| async move {
        let built = tokio::task::spawn_blocking(move || build(language))
            .await
            .unwrap();
        // The first local test compiles the component into the shared
        // artifacts. Without parameters the check cannot measure anything,
        // and says so in an error verdict rather than a pass.
        let started = Instant::now();
        let (first, said) = plugin_test_saying(&built.path, json!({}), json!({})).await;
        // The baseline compiler takes about 2 s here, and past a second
        // `plugin test` says what it is doing (unless an earlier run kept
        // the artifact), then how long it took.
        if said.contains(&format!("compiling {}", built.path.display())) {
            assert!(
                said.contains(&format!("compiled {} in ", built.path.display())),
                "{said}"
            );
        }
        assert_eq!(first["status"], "ok", "{first:#}");
        let verdict = &first["output"]["verdict"];
        assert_eq!(verdict["status"], "error", "{first:#}");
        let summary = verdict["summary"].as_str().unwrap_or_default();
        assert!(
            summary.starts_with("the parameter `url` is missing"),
            "{first:#}"
        );
        let kept = std::fs::read_dir(artifact_dir()).map_or(0, |d| d.count());
        assert!(
            kept > 0,
            "plugin test kept no artifact in {:?}",
            artifact_dir()
        );
        println!(
            "{language:?} check: first `greenlight plugin test` took {:.1} s \
             (it compiles the component unless an earlier run kept the artifact)",
            started.elapsed().as_secs_f64()
        );
        built
    })
    .await
}

/// Where the compiled artifacts of these tests are kept.
pub fn artifact_dir() -> PathBuf {
    target_dir().join("polyglot").join("artifacts")
}

/// A daemon that keeps its compiled artifacts in [`artifact_dir`], with
/// `config` (top-level keys) added.
pub async fn daemon(config: &str) -> Daemon {
    Daemon::start_with_config(&format!(
        "{config}\n[plugins]\nartifact_dir = {:?}\n",
        artifact_dir()
    ))
    .await
}

/// Runs `greenlight plugin test --json` on a component with this input and
/// grant, as a plugin author would before uploading it; returns its result.
pub async fn plugin_test(path: &Path, input: Value, grant: Value) -> Value {
    plugin_test_saying(path, input, grant).await.0
}

/// [`plugin_test`], with what it wrote on standard error.
pub async fn plugin_test_saying(path: &Path, input: Value, grant: Value) -> (Value, String) {
    let scratch = tempfile::tempdir().unwrap();
    let (input_file, grant_file) = (
        scratch.path().join("input.json"),
        scratch.path().join("grant.json"),
    );
    std::fs::write(&input_file, input.to_string()).unwrap();
    std::fs::write(&grant_file, grant.to_string()).unwrap();
    let mut command = Command::new(binary());
    command
        .args(["plugin", "test", "--json", "--input"])
        .arg(&input_file)
        .arg("--grant")
        .arg(&grant_file)
        .arg("--artifact-dir")
        .arg(artifact_dir())
        .arg(path);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "plugin test failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).expect("plugin test --json prints JSON"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn build(language: Language) -> Component {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = target_dir().join("polyglot");
    let started = Instant::now();
    let run = Command::new(root.join("examples/build-polyglot.sh"))
        .arg("--out")
        .arg(&out)
        .arg(language.component())
        .output()
        .expect("running examples/build-polyglot.sh");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "building the {language:?} check failed:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let path = out.join(format!("{}.wasm", language.component()));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!(
        "{language:?} check: {} ({:.1} MiB), build step took {:.1} s",
        report.trim(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Component { path, bytes }
}

/// A loopback stats endpoint (`GET /stats` answers `{"requests", "errors"}`)
/// whose counters the test sets.
pub struct Stats {
    pub origin: String,
    counters: Arc<Mutex<(u64, u64)>>,
}

impl Stats {
    pub async fn start(requests: u64, errors: u64) -> Stats {
        let counters = Arc::new(Mutex::new((requests, errors)));
        let read = counters.clone();
        let app = axum::Router::new().route(
            "/stats",
            axum::routing::get(move || {
                let (requests, errors) = *read.lock().unwrap();
                async move { Json(json!({"requests": requests, "errors": errors})) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stats { origin, counters }
    }

    /// Sets what the endpoint reports from now on.
    pub fn set(&self, requests: u64, errors: u64) {
        *self.counters.lock().unwrap() = (requests, errors);
    }

    pub fn url(&self) -> String {
        format!("{}/stats", self.origin)
    }
}

/// The parameters of the example checks: read `stats`, allow 5% errors.
pub fn params(stats: &Stats) -> Value {
    json!({"url": stats.url(), "max_error_rate": "0.05"})
}

/// Builds `source` (a Python module or a JavaScript file, written by a
/// test) into a check component with the example's pinned tool, which
/// [`component`] has installed; returns its bytes.
pub async fn build_source(language: Language, source: &Path) -> Vec<u8> {
    component(language).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = source.parent().unwrap().to_path_buf();
    let wasm = dir.join("check.wasm");
    let world = "greenlight:plugin/check-plugin@0.2.0";
    let mut command = match language {
        Language::Python => {
            let mut c = Command::new(target_dir().join("polyglot/venv/bin/componentize-py"));
            c.arg("-d").arg(root.join("wit")).args(["-w", world]);
            c.arg("componentize")
                .arg(source.file_stem().unwrap())
                .arg("-o")
                .arg(&wasm);
            c
        }
        Language::JavaScript => {
            let mut c = Command::new(root.join("examples/js/node_modules/.bin/jco"));
            c.arg("componentize").arg(source);
            c.arg("--wit").arg(root.join("wit"));
            c.args(["--world-name", world]).arg("-o").arg(&wasm);
            c
        }
    };
    command
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "building {} failed: {}{}",
        source.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&wasm).unwrap()
}
