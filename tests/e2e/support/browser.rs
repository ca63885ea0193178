//! A real headless Chromium driven over WebDriver: chromedriver in a child
//! process on a loopback port, a fresh profile per browser, and waits that
//! are woken by the page's own DOM changes rather than by polling.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a page may take to reach a state.
const WAIT_MS: u64 = 30_000;

/// A browser window at laptop size.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Browser {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "chromedriver cannot be started: install the Debian packages \
                 `chromium` and `chromium-driver` (`./dev setup test` does)",
            );
        // chromedriver says when it listens; wait for that line.
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "chromedriver did not start");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir().unwrap();
        let mut options = json!({
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1366,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        // Waits end in the page after WAIT_MS; the driver must not give up
        // on the script first.
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_millis(WAIT_MS * 2)),
                Some(Duration::from_secs(60)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits until an element matches `selector`, woken by every change to
    /// the page; panics with the page's text after 30 s.
    pub async fn wait(&self, selector: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .execute_async(
                r#"
                const [selector, limit, done] = arguments;
                if (document.querySelector(selector)) return done(true);
                const observer = new MutationObserver(() => {
                    if (document.querySelector(selector)) { observer.disconnect(); done(true); }
                });
                observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
                setTimeout(() => { observer.disconnect(); done(false); }, limit);
                "#,
                vec![json!(selector), json!(WAIT_MS)],
            )
            .await
            .expect("a wait script");
        if found != json!(true) {
            let text = self.text("body").await;
            panic!("timed out waiting for `{selector}`; the page reads:\n{text}");
        }
        self.client
            .find(Locator::Css(selector))
            .await
            .expect("the element just seen")
    }

    /// Whether an element matches now.
    pub async fn has(&self, selector: &str) -> bool {
        self.eval(&format!(
            "return document.querySelector({}) !== null",
            json!(selector)
        ))
        .await
            == json!(true)
    }

    /// The rendered text of the first element matching `selector`, read in
    /// one step: the live pages redraw, so an element found in one call
    /// may be gone by the next.
    pub async fn text(&self, selector: &str) -> String {
        let text = self
            .eval(&format!(
                // SVG elements have no innerText.
                "const e = document.querySelector({}); \
                 return e ? (e.innerText ?? e.textContent) : null",
                json!(selector)
            ))
            .await;
        text.as_str()
            .unwrap_or_else(|| panic!("nothing matches `{selector}`"))
            .to_string()
    }

    /// Clicks the element matching `selector` once it is there. A live page
    /// may redraw between finding the element and clicking it; the click
    /// then goes to the element's replacement.
    pub async fn click(&self, selector: &str) {
        let mut last = None;
        for _ in 0..3 {
            let element = self.wait(selector).await;
            match element.click().await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
        }
        panic!("cannot click `{selector}`: {last:?}");
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        self.wait(selector)
            .await
            .send_keys(text)
            .await
            .expect(selector);
    }

    /// Runs a script in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("a script")
    }

    /// Runs an asynchronous script: it calls `arguments[0]` with its result.
    pub async fn eval_async(&self, script: &str) -> Value {
        self.client
            .execute_async(script, Vec::new())
            .await
            .expect("a script")
    }

    /// Signs in on the sign-in page with a token.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/")).await;
        self.type_into("#token", token).await;
        self.click("#sign-in-button").await;
        self.wait("#who-name").await;
    }

    /// Saves a screenshot of the window as `NAME.png` beside the test build,
    /// so a person can look at what the test saw; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
