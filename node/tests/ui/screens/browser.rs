//! A headless Chromium behind `chromedriver`, both from Debian's packages, killed on drop.
//! Pages are hooked so that script errors and `console.error` calls are collected and checked.
//! Self-contained (no test harness of either crate), so both test crates compile it.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the page may take to show what a step waits for.
pub const UI_TIMEOUT: Duration = Duration::from_secs(60);

/// Installed in every page: collects uncaught errors, rejected promises and `console.error`.
/// `__uiLoaded` is set once per document, so a reload is seen when it disappears.
const HOOK: &str = r#"
if (!window.__uiErrors) {
  window.__uiErrors = [];
  window.__uiLoaded = true;
  window.addEventListener('error', (e) => window.__uiErrors.push('error: ' + e.message));
  window.addEventListener('unhandledrejection', (e) => window.__uiErrors.push('unhandled rejection: ' + e.reason));
  const original = console.error;
  console.error = (...args) => { window.__uiErrors.push('console.error: ' + args.join(' ')); original.apply(console, args); };
}
return true;
"#;

/// Script text defining `key(el)`, the identity of a control across redraws (its id, or its
/// tag, label, link and text), and `controls()`, the visible enabled controls.
macro_rules! control_js {
    () => {
        r#"
const key = (el) => el.id ? el.tagName + '#' + el.id
  : [el.tagName, el.getAttribute('aria-label'), el.getAttribute('href'), el.textContent.trim()].join(' ');
const controls = () => [...document.querySelectorAll('a[href], button, input, textarea, select, summary')]
  .filter((el) => !el.disabled && el.getClientRects().length > 0)
  // Inside a closed <details> only its summary shows.
  .filter((el) => el.tagName === 'SUMMARY' || !el.closest('details:not([open])'));
"#
    };
}

/// The visible controls: how many, and their distinct keys.
const VISIBLE_CONTROLS: &str = concat!(
    control_js!(),
    "const all = controls(); return [all.length, [...new Set(all.map(key))]];"
);

/// Visible controls with nothing for a screen reader to say.
const CONTROLS_WITHOUT_NAME: &str = concat!(
    control_js!(),
    "return controls()
       .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || (el.labels && el.labels.length)))
       .map((el) => el.outerHTML.slice(0, 120));"
);

/// Records the key of every element that gets the focus from now on, starting from the top.
const TRACK_FOCUS: &str = concat!(
    control_js!(),
    "window.__uiTabbed = [];
     if (!window.__uiTracking) {
       window.__uiTracking = true;
       document.addEventListener('focusin', (e) => window.__uiTabbed.push(key(e.target)));
     }
     document.activeElement && document.activeElement.blur();
     return true;"
);

/// chromedriver and a WebDriver session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
    driver_url: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless 1280×800 session whose
    /// screenshots go to `target/ui-screenshots/<shots>/`.
    /// Panics naming the Debian packages when the browser or driver is missing.
    pub async fn start(shots: &str) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's `{package}` package (scripts/install-deps installs it)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("picking a free port for chromedriver")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            // Its own process group, so that Chromium goes with it even when the test panics.
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut capabilities = serde_json::Map::new();
        // chromedriver keeps the browser's console (script errors, failed loads) for `console_errors`.
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                // No sandbox: tests run as root in CI, where Chromium refuses to start with one.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--no-first-run", "--disable-extensions"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = retry(Duration::from_secs(30), "chromedriver to start a Chromium session", || {
            let capabilities = capabilities.clone();
            let url = url.clone();
            async move {
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&url)
                    .await
                    .map_err(|e| eprintln!("WebDriver session not ready: {e}"))
                    .ok()
            }
        })
        .await;
        let shots = workspace_target().join("ui-screenshots").join(shots);
        std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("creating {}: {e}", shots.display()));
        Browser {
            client,
            driver,
            shots,
            driver_url: url,
        }
    }

    /// Opens `url` and hooks the page's errors.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
        self.hook().await;
    }

    /// (Re)installs the error hook; harmless when already there.
    pub async fn hook(&self) {
        self.client.execute(HOOK, vec![]).await.expect("installing the page's error hook");
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Waits until `script` returns something truthy, and returns it.
    /// On timeout, saves a screenshot named after `what` and fails with the page's text.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = std::time::Instant::now() + UI_TIMEOUT;
        loop {
            if let Ok(value) = self.client.execute(script, vec![]).await {
                let truthy = !matches!(&value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("");
                if truthy {
                    return value;
                }
            }
            if std::time::Instant::now() >= deadline {
                let name: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                self.screenshot(&format!("failed-{name}")).await;
                let text = self.eval("return location.href + '\\n' + document.body.innerText;").await;
                panic!(
                    "timed out after {UI_TIMEOUT:?} waiting for {what}; the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matched by `css` as a user would (WebDriver click, not a script).
    /// Retries while the element is missing or replaced by a refresh of the page.
    pub async fn click(&self, css: &str) {
        retry(UI_TIMEOUT, &format!("clicking {css}"), || async move {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.click().await.ok()
        })
        .await;
    }

    /// Replaces the value of the input or textarea matched by `css` by typing `text`.
    /// Checks the value afterwards and types again if a refresh of the page wrote into the
    /// field between clearing and typing.
    pub async fn type_into(&self, css: &str, text: &str) {
        retry(UI_TIMEOUT, &format!("typing {text:?} into {css}"), || async move {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.clear().await.ok()?;
            element.send_keys(text).await.ok()?;
            (element.prop("value").await.ok()?.as_deref() == Some(text)).then_some(())
        })
        .await;
    }

    /// The visible text of the first element matched by `css` (empty when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Fails the test when the page has logged an error or was reloaded since it was hooked, or
    /// when the browser's console has a severe entry other than an answer with one of
    /// `expected_statuses` (a refusal the page shows on purpose). The console is read from
    /// chromedriver's log, which also holds what happened before the hook was installed.
    pub async fn assert_clean(&self, page: &str, expected_statuses: &[u16]) {
        let errors = self.eval("return window.__uiErrors || null;").await;
        assert!(errors.is_array(), "{page}: the page was reloaded (its error hook is gone)");
        assert_eq!(errors, json!([]), "{page}: the page logged errors");
        let session = self.client.session_id().await.ok().flatten().expect("a WebDriver session id");
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("reading the browser console from chromedriver")
            .json()
            .await
            .expect("chromedriver's log as JSON");
        let severe: Vec<&str> = log["value"]
            .as_array()
            .expect("chromedriver's log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter_map(|e| e["message"].as_str())
            .filter(|m| !expected_statuses.iter().any(|s| m.contains(&format!("status of {s} "))))
            .collect();
        if !severe.is_empty() {
            let shown = self
                .eval("const e = document.getElementById('error'); return e && !e.hidden ? e.innerText : '';")
                .await;
            panic!("{page}: the browser console has errors: {severe:#?}; the page's error box: {shown}");
        }
    }

    /// Saves a PNG of the viewport as target/ui-screenshots/<shots>/<name>.png.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Sets the window's size (e.g. a phone's 390×844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("resizing the window");
    }

    /// Fails unless every visible control of the page (buttons, links, fields, summaries) has
    /// a name a screen reader can say (its text, `aria-label` or `<label>`) and is reached by
    /// pressing Tab, as a keyboard user moves; live refreshes may redraw the page meanwhile.
    pub async fn check_keyboard(&self, page: &str) {
        let unnamed = self.eval(CONTROLS_WITHOUT_NAME).await;
        assert_eq!(unnamed, json!([]), "{page}: controls without a name");
        let visible = self.eval(VISIBLE_CONTROLS).await;
        let (stops, expected): (usize, Vec<String>) = serde_json::from_value(visible).expect("controls");
        self.eval(TRACK_FOCUS).await;
        let mut reached = Vec::new();
        // One press per control, and a few for what the browser adds (its own chrome).
        for _ in 0..stops + 5 {
            let tab = KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: Key::Tab.into() })
                .then(KeyAction::Up { value: Key::Tab.into() });
            self.client.perform_actions(tab).await.expect("pressing Tab");
            let seen = self.eval("return window.__uiTabbed;").await;
            reached = serde_json::from_value(seen).expect("reached keys");
            if expected.iter().all(|key| reached.contains(key)) {
                return;
            }
        }
        let missed: Vec<&String> = expected.iter().filter(|key| !reached.contains(key)).collect();
        panic!("{page}: Tab never reaches {missed:?}");
    }

    /// Looks at the page as a phone shows it (390×844): saves `<name>-phone.png` and fails when
    /// the page scrolls sideways; then back to 1280×800.
    pub async fn check_phone(&self, name: &str) {
        self.resize(390, 844).await;
        self.screenshot(&format!("{name}-phone")).await;
        let overflow = self
            .eval("return document.documentElement.scrollWidth > window.innerWidth + 1;")
            .await;
        assert_eq!(overflow, Value::Bool(false), "{name}: the page scrolls sideways on a phone");
        self.resize(1280, 800).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share a process group: end them all.
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// The workspace's `target/`: the first folder above this crate that holds `Cargo.lock`.
fn workspace_target() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("a workspace root (a folder with Cargo.lock) above the test crate");
    root.join("target")
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; panics naming `what`.
async fn retry<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
