//! The browser harness: one chromedriver for the whole test binary, a fresh headless
//! Chromium (own profile) per test, finders that look for what a person looks for,
//! axe-core checks, and a screenshot plus the page HTML when a flow fails.

use std::any::Any;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::{Method, Url};
use serde_json::{json, Value};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, Error>;

/// How long a finder waits for its element (pages here answer in milliseconds; this
/// only absorbs a slow, shared machine).
const PATIENCE: Duration = Duration::from_secs(10);

/// Fails the flow with a message (an `Err`, so artifacts are saved).
macro_rules! fail {
    ($($arg:tt)*) => { return Err(format!($($arg)*).into()) };
}
pub(crate) use fail;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `$VAR` when set, else `name` on the PATH.
fn program(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The cargo target directory this test binary was built into.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

pub fn artifacts_root() -> PathBuf {
    target_dir().join("e2e-artifacts")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// One plain HTTP/1.1 exchange with chromedriver, without the async client: used at
/// start-up and from `Drop`, where nothing can be awaited.
fn raw_http(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver keeps the connection open, so read exactly one response.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// chromedriver, shared by every test of this binary. It runs under a small shell that
/// holds the write end of a pipe from this process: when the test binary exits (even on
/// a crash), the pipe closes and the shell stops chromedriver.
struct Driver {
    port: u16,
    chromium: PathBuf,
    _stdin: Mutex<ChildStdin>,
    _shell: Mutex<Child>,
}

static DRIVER: OnceLock<Option<Driver>> = OnceLock::new();

fn driver() -> Option<&'static Driver> {
    DRIVER
        .get_or_init(|| {
            let chromium = program("E2E_CHROMIUM", "chromium");
            let chromedriver = program("E2E_CHROMEDRIVER", "chromedriver");
            let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
                if in_ci() {
                    panic!("CI=true: the browser suite needs Chromium and chromedriver; install them with `apt-get install -y chromium chromium-driver`");
                }
                // Straight to stderr: the test harness would swallow `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "browser tests skipped: Chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
                );
                return None;
            };
            Some(Driver::start(chromium, &chromedriver))
        })
        .as_ref()
}

impl Driver {
    fn start(chromium: PathBuf, chromedriver: &Path) -> Driver {
        let port = free_port();
        let log = artifacts_root().join("chromedriver.log");
        let _ = std::fs::create_dir_all(artifacts_root());
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#""$1" --port="$2" --log-path="$3" </dev/null >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null"#)
            .arg("sh")
            .arg(chromedriver)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        let stdin = shell
            .stdin
            .take()
            .expect("a pipe to the chromedriver shell");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if raw_http(port, "GET", "/status").is_ok_and(|s| s.contains("\"ready\":true")) {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "chromedriver did not answer on port {port}; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            port,
            chromium,
            _stdin: Mutex::new(stdin),
            _shell: Mutex::new(shell),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Js {
    On,
    Off,
}

/// A headless Chromium session for one test.
pub struct Browser {
    client: Client,
    js: Js,
    test: String,
    session: String,
    port: u16,
    profile: PathBuf,
}

impl Browser {
    /// A fresh browser for `test`, or None (after one printed line) when Chromium is
    /// not installed outside CI.
    pub async fn open(test: &str, js: Js) -> Option<Browser> {
        let driver = driver()?;
        let _ = std::fs::remove_dir_all(artifacts_root().join(test));
        let profile = std::env::temp_dir().join(format!(
            "tokenpanel-e2e-{}-{}",
            std::process::id(),
            tokenpanel::testkit::random_base62(10)
        ));
        // Offline machine: keep Chromium from calling home (and from waiting on it).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--lang=en-US",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let mut prefs = json!({});
        if js == Js::Off {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": driver.chromium,
                "args": args,
                "prefs": prefs,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot start headless Chromium: {e}"));
        let session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        Some(Browser {
            client,
            js,
            test: test.to_owned(),
            session,
            port: driver.port,
            profile,
        })
    }

    /// Runs a flow. When it returns an error or panics, the screenshot and HTML of the
    /// page it was on go to target/e2e-artifacts/<test>/ and the test fails.
    pub async fn run(&self, flow: impl Future<Output = Result>) {
        let outcome = CatchUnwind(Box::pin(flow)).await;
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => Failure::Error(e),
            Err(panic) => Failure::Panic(panic),
        };
        let saved = self.save_artifacts().await;
        match failure {
            Failure::Error(e) => panic!("{}: {e}\n{saved}", self.test),
            Failure::Panic(payload) => {
                eprintln!("{}: {saved}", self.test);
                std::panic::resume_unwind(payload)
            }
        }
    }

    async fn save_artifacts(&self) -> String {
        let dir = artifacts_root().join(&self.test);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return format!("could not create {}: {e}", dir.display());
        }
        let mut notes = Vec::new();
        match self.client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(dir.join("screenshot.png"), png);
            }
            Err(e) => notes.push(format!("no screenshot: {e}")),
        }
        match self.client.source().await {
            Ok(html) => {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let _ = std::fs::write(dir.join("page.html"), format!("<!-- {url} -->\n{html}"));
            }
            Err(e) => notes.push(format!("no page HTML: {e}")),
        }
        format!(
            "screenshot and page HTML saved in {} {}",
            dir.display(),
            notes.join("; ")
        )
    }

    // ---- navigation -------------------------------------------------------------

    pub async fn goto(&self, url: &str) -> Result {
        Ok(self.client.goto(url).await?)
    }

    /// The path (and query) of the current page.
    pub async fn path(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Waits until the current path is `path`.
    pub async fn wait_for_path(&self, path: &str) -> Result {
        let mut last = String::new();
        let ok = self
            .wait(async || {
                last = self.path().await?;
                Ok(last == path)
            })
            .await?;
        if !ok {
            fail!("expected to be on {path}, but the browser is on {last}");
        }
        Ok(())
    }

    /// Resizes the window, e.g. to a phone's 390 px.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result {
        self.client.set_window_size(width, height).await?;
        Ok(())
    }

    /// (the page's full width, the viewport's width) in CSS pixels: a page wider than
    /// its viewport scrolls sideways.
    pub async fn page_and_viewport_width(&self) -> Result<(i64, i64)> {
        let value = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await?;
        let width = |i: usize| value.get(i).and_then(Value::as_i64).unwrap_or(-1);
        Ok((width(0), width(1)))
    }

    /// The elements that reach past the viewport's right edge (tag.class, right edge),
    /// outermost first: what makes a page scroll sideways.
    pub async fn too_wide(&self) -> Result<String> {
        let value = self
            .client
            .execute(
                r#"const w = document.documentElement.clientWidth; const out = [];
                   for (const el of document.querySelectorAll('body *')) {
                     const r = el.getBoundingClientRect();
                     if (r.right > w + 1) out.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(r.right));
                     if (out.length > 8) break;
                   }
                   return out.join(', ');"#,
                vec![],
            )
            .await?;
        Ok(value.as_str().unwrap_or("").to_owned())
    }

    pub async fn reload(&self) -> Result {
        Ok(self.client.refresh().await?)
    }

    pub async fn back(&self) -> Result {
        Ok(self.client.back().await?)
    }

    /// The HTML of the current page, as the browser holds it now.
    pub async fn html(&self) -> Result<String> {
        Ok(self.client.source().await?)
    }

    /// The text a person sees on the page.
    pub async fn text(&self) -> Result<String> {
        Ok(self
            .client
            .find(Locator::XPath("//body"))
            .await?
            .text()
            .await?)
    }

    /// Polls `ready` until it says true or the patience runs out (then false).
    pub async fn wait(&self, mut ready: impl AsyncFnMut() -> Result<bool>) -> Result<bool> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match ready().await {
                Ok(true) => return Ok(true),
                // An element found a moment ago can belong to the page that was just
                // replaced; look again.
                Err(e) if is_transient(&e) && Instant::now() < deadline => {}
                Err(e) => return Err(e),
                Ok(false) if Instant::now() > deadline => return Ok(false),
                Ok(false) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for some text to be visible on the page.
    pub async fn wait_for_text(&self, text: &str) -> Result {
        if !self
            .wait(async || Ok(self.text().await?.contains(text)))
            .await?
        {
            fail!("the page never showed {text:?}");
        }
        Ok(())
    }

    // ---- finding things as a person does ------------------------------------------

    /// Elements matching `xpath` now (no waiting).
    async fn all(&self, xpath: &str) -> Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::XPath(xpath)).await?)
    }

    /// The accessible name Chromium computes for an element (WebDriver "Get Computed
    /// Label"), so finders match what assistive technology announces.
    pub async fn accessible_name(&self, element: &Element) -> Result<String> {
        let value = self
            .client
            .issue_cmd(ElementQuery::new(element, "computedlabel"))
            .await?;
        Ok(value.as_str().unwrap_or_default().trim().to_owned())
    }

    /// The ARIA role Chromium computes for an element (WebDriver "Get Computed Role").
    pub async fn role_of(&self, element: &Element) -> Result<String> {
        let value = self
            .client
            .issue_cmd(ElementQuery::new(element, "computedrole"))
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The elements with `role` whose accessible name satisfies `wanted`, now.
    async fn by_role_now(&self, role: Role, wanted: &str) -> Result<Vec<Element>> {
        let mut found = Vec::new();
        for element in self.all(role.candidates()).await? {
            if !element.is_displayed().await.unwrap_or(false) {
                continue;
            }
            let name = self.accessible_name(&element).await?;
            if name == wanted && role.accepts(&self.role_of(&element).await?) {
                found.push(element);
            }
        }
        Ok(found)
    }

    /// Exactly one visible element with this role and accessible name, waiting for it.
    pub async fn by_role(&self, role: Role, wanted: &str) -> Result<Element> {
        let mut found = Vec::new();
        self.wait(async || {
            found = self.by_role_now(role, wanted).await?;
            Ok(!found.is_empty())
        })
        .await?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => fail!("no {role:?} named {wanted:?} on {}", self.path().await?),
            n => fail!(
                "{n} elements with role {role:?} named {wanted:?} on {}",
                self.path().await?
            ),
        }
    }

    /// Whether a visible element with this role and name is on the page right now.
    pub async fn has(&self, role: Role, name: &str) -> Result<bool> {
        let mut present = false;
        self.wait(async || {
            present = !self.by_role_now(role, name).await?.is_empty();
            Ok(true)
        })
        .await?;
        Ok(present)
    }

    pub async fn button(&self, name: &str) -> Result<Element> {
        self.by_role(Role::Button, name).await
    }

    pub async fn link(&self, name: &str) -> Result<Element> {
        self.by_role(Role::Link, name).await
    }

    /// The main heading or a section heading, by its text.
    pub async fn heading(&self, name: &str) -> Result<Element> {
        self.by_role(Role::Heading, name).await
    }

    pub async fn click_button(&self, name: &str) -> Result {
        Ok(self.button(name).await?.click().await?)
    }

    pub async fn click_link(&self, name: &str) -> Result {
        Ok(self.link(name).await?.click().await?)
    }

    /// The form control a `<label>` with this exact text names.
    pub async fn field(&self, label: &str) -> Result<Element> {
        let text = xpath_literal(label);
        let xpath = format!(
            "//*[@id = //label[normalize-space() = {text}]/@for] | //label[normalize-space() = {text}]//*[self::input or self::select or self::textarea]"
        );
        let mut found = Vec::new();
        let mut announced = Vec::new();
        self.wait(async || {
            found = self.all(&xpath).await?;
            announced.clear();
            for control in &found {
                announced.push(self.accessible_name(control).await?);
            }
            Ok(!found.is_empty())
        })
        .await?;
        match found.len() {
            // The label must also be what assistive technology announces.
            1 if announced[0] != label => {
                fail!(
                    "the field labelled {label:?} is announced as {:?}",
                    announced[0]
                )
            }
            1 => Ok(found.remove(0)),
            0 => fail!("no field labelled {label:?} on {}", self.path().await?),
            n => fail!("{n} fields labelled {label:?} on {}", self.path().await?),
        }
    }

    /// Types into the field with this label, replacing what it held.
    pub async fn fill(&self, label: &str, text: &str) -> Result {
        let field = self.field(label).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// A checkbox or radio button of the group (fieldset) with `legend`, by the text of
    /// its label, which starts with `label` (scope options carry their API name after).
    pub async fn option(&self, legend: &str, label: &str) -> Result<Element> {
        let xpath = format!(
            "//fieldset[legend[normalize-space() = {}]]//input[@type = 'checkbox' or @type = 'radio']",
            xpath_literal(legend)
        );
        let mut found = Vec::new();
        self.wait(async || {
            found.clear();
            for input in self.all(&xpath).await? {
                let name = self.accessible_name(&input).await?;
                if name == label || name.starts_with(&format!("{label} ")) {
                    found.push(input);
                }
            }
            Ok(!found.is_empty())
        })
        .await?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => fail!(
                "no {legend:?} option labelled {label:?} on {}",
                self.path().await?
            ),
            n => fail!("{n} {legend:?} options labelled {label:?}"),
        }
    }

    /// Ticks a checkbox or picks a radio button (a click, as a person does).
    pub async fn choose(&self, legend: &str, label: &str) -> Result {
        let input = self.option(legend, label).await?;
        if !input.is_selected().await? {
            input.click().await?;
        }
        Ok(())
    }

    /// Unticks a checkbox.
    pub async fn untick(&self, legend: &str, label: &str) -> Result {
        let input = self.option(legend, label).await?;
        if input.is_selected().await? {
            input.click().await?;
        }
        Ok(())
    }

    /// The text of each option of the select with this label.
    pub async fn options_of(&self, label: &str) -> Result<Vec<String>> {
        let select = self.field(label).await?;
        let mut texts = Vec::new();
        for option in select.find_all(Locator::XPath(".//option")).await? {
            texts.push(option.text().await?.trim().to_owned());
        }
        Ok(texts)
    }

    /// Picks the option with this text in the select with this label (a click, which in
    /// a multiple select replaces the selection, as it does for a person).
    pub async fn pick(&self, label: &str, option: &str) -> Result {
        self.option_of(label, option).await?.click().await?;
        Ok(())
    }

    /// The option with this text in the select with this label.
    pub async fn option_of(&self, label: &str, option: &str) -> Result<Element> {
        let select = self.field(label).await?;
        let xpath = format!(".//option[normalize-space() = {}]", xpath_literal(option));
        match select.find_all(Locator::XPath(&xpath)).await?.pop() {
            Some(element) => Ok(element),
            None => fail!("{label:?} offers no {option:?}"),
        }
    }

    /// Whether the group (fieldset) with this legend is on the page and visible now.
    pub async fn group_shown(&self, legend: &str) -> Result<bool> {
        let xpath = format!(
            "//fieldset[legend[normalize-space() = {}]]",
            xpath_literal(legend)
        );
        for group in self.all(&xpath).await? {
            if group.is_displayed().await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The text of each body row of the page's data tables, as a person reads them.
    pub async fn table_rows(&self) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        for row in self.all("//table/tbody/tr").await? {
            texts.push(row.text().await?.trim().to_owned());
        }
        Ok(texts)
    }

    /// The option currently chosen in the (single) select with this label.
    pub async fn selected_in(&self, label: &str) -> Result<String> {
        let select = self.field(label).await?;
        for option in select.find_all(Locator::XPath(".//option")).await? {
            if option.is_selected().await? {
                return Ok(option.text().await?.trim().to_owned());
            }
        }
        fail!("nothing is chosen in {label:?}")
    }

    /// The texts of the page's live status messages (role="status").
    pub async fn status_messages(&self) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        for element in self.all(Role::Status.candidates()).await? {
            texts.push(element.text().await?.trim().to_owned());
        }
        Ok(texts)
    }

    /// Puts a marker into the current document; `still_same_document` tells whether the
    /// browser has loaded another page since (htmx swaps keep the marker).
    pub async fn mark_document(&self) -> Result {
        self.client
            .execute("window.__e2eMarker = true;", vec![])
            .await?;
        Ok(())
    }

    pub async fn still_same_document(&self) -> Result<bool> {
        let value = self
            .client
            .execute("return window.__e2eMarker === true;", vec![])
            .await?;
        Ok(value == Value::Bool(true))
    }

    /// Whether htmx (and so the page's JavaScript) is running on this page.
    pub async fn scripts_ran(&self) -> Result<bool> {
        let value = self
            .client
            .execute("return typeof window.htmx === 'object';", vec![])
            .await?;
        Ok(value == Value::Bool(true))
    }

    /// The value of the field with this label.
    pub async fn value_of(&self, label: &str) -> Result<String> {
        Ok(self
            .field(label)
            .await?
            .prop("value")
            .await?
            .unwrap_or_default())
    }

    // ---- accessibility --------------------------------------------------------------

    /// Runs axe-core on the current page; fails on any serious or critical violation
    /// and prints each.
    pub async fn check_accessibility(&self) -> Result {
        let path = self.path().await?;
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await?;
        if loaded != Value::Bool(true) {
            if self.js == Js::Off {
                // With JavaScript off, Chromium runs WebDriver scripts and promise
                // callbacks but never fires timers, which axe waits on between checks.
                // The page's own scripts are off, so only axe sees these stand-ins.
                self.client
                    .execute(
                        r#"window.setTimeout = (f, _ms, ...args) => { Promise.resolve().then(() => f(...args)); return 0; };
                           window.clearTimeout = () => {};
                           window.requestAnimationFrame = f => window.setTimeout(f);
                           window.requestIdleCallback = f => window.setTimeout(() => f({ didTimeout: false, timeRemaining: () => 50 }));"#,
                        vec![],
                    )
                    .await?;
            }
            self.client.execute(AXE_SOURCE, vec![]).await?;
        }
        let report = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   window.axe.run(document, { resultTypes: ["violations"] })
                     .then(r => done(r.violations), e => done({ error: String(e) }));"#,
                vec![],
            )
            .await?;
        if let Some(error) = report.get("error") {
            fail!("axe-core could not run on {path}: {error}");
        }
        let mut serious = Vec::new();
        for violation in report.as_array().into_iter().flatten() {
            let impact = violation["impact"].as_str().unwrap_or("");
            if impact != "serious" && impact != "critical" {
                continue;
            }
            let mut line = format!(
                "[{impact}] {}: {} ({})",
                violation["id"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or(""),
                violation["helpUrl"].as_str().unwrap_or("")
            );
            for node in violation["nodes"].as_array().into_iter().flatten() {
                line.push_str(&format!(
                    "\n    at {} {}",
                    node["target"],
                    node["html"].as_str().unwrap_or("")
                ));
            }
            serious.push(line);
        }
        if !serious.is_empty() {
            for line in &serious {
                eprintln!("{}: accessibility on {path}: {line}", self.test);
            }
            fail!(
                "{} serious or critical accessibility violation(s) on {path}:\n{}",
                serious.len(),
                serious.join("\n")
            );
        }
        Ok(())
    }

    /// Grants this page's origin clipboard access (WebDriver "Set Permission"), so a
    /// test can read back what the copy button wrote.
    pub async fn allow_clipboard(&self) -> Result {
        for name in ["clipboard-read", "clipboard-write"] {
            self.client
                .issue_cmd(SetPermission {
                    name,
                    state: "granted",
                })
                .await?;
        }
        Ok(())
    }

    /// What the page's clipboard holds (needs `allow_clipboard`).
    pub async fn clipboard(&self) -> Result<String> {
        let text = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   navigator.clipboard.readText().then(done, e => done({ error: String(e) }));"#,
                vec![],
            )
            .await?;
        match text {
            Value::String(s) => Ok(s),
            other => fail!("cannot read the clipboard: {other}"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Always end the session (this also quits Chromium), whatever happened.
        let _ = raw_http(self.port, "DELETE", &format!("/session/{}", self.session));
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn is_transient(error: &Error) -> bool {
    match error.downcast_ref::<CmdError>() {
        Some(CmdError::Standard(e)) => {
            matches!(
                e.error,
                ErrorStatus::StaleElementReference | ErrorStatus::NoSuchElement
            )
            // ChromeDriver's computed label of an element whose page was just replaced
            // fails in DevTools, which it reports as an unknown error, not a stale one.
            || (e.error == ErrorStatus::UnknownError
                && e.message.contains("does not belong to the document"))
        }
        _ => false,
    }
}

/// axe-core, vendored (see assets/README.md).
const AXE_SOURCE: &str = include_str!("assets/axe.min.js");

#[derive(Debug, Clone, Copy)]
pub enum Role {
    Button,
    Link,
    Heading,
    Dialog,
    Status,
}

impl Role {
    /// Elements that may carry the role (native elements and explicit roles).
    fn candidates(self) -> &'static str {
        match self {
            Role::Button => {
                "//button | //input[@type = 'submit' or @type = 'button'] | //*[@role = 'button']"
            }
            Role::Link => "//a[@href] | //*[@role = 'link']",
            Role::Heading => "//h1 | //h2 | //h3 | //h4 | //h5 | //h6 | //*[@role = 'heading']",
            Role::Dialog => "//dialog | //*[@role = 'dialog' or @role = 'alertdialog']",
            Role::Status => "//output | //*[@role = 'status']",
        }
    }

    fn accepts(self, computed: &str) -> bool {
        match self {
            Role::Button => computed == "button",
            Role::Link => computed == "link",
            Role::Heading => computed == "heading",
            Role::Dialog => computed == "dialog" || computed == "alertdialog",
            Role::Status => computed == "status",
        }
    }
}

/// A string as an XPath 1.0 literal (which has no escapes).
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    if !s.contains('"') {
        return format!("\"{s}\"");
    }
    let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

/// `GET /session/{id}/element/{element}/{what}`: computedlabel, computedrole.
#[derive(Debug)]
struct ElementQuery {
    element: String,
    what: &'static str,
}

impl ElementQuery {
    fn new(element: &Element, what: &'static str) -> Self {
        ElementQuery {
            element: element.element_id().to_string(),
            what,
        }
    }
}

impl WebDriverCompatibleCommand for ElementQuery {
    fn endpoint(
        &self,
        base: &Url,
        session: Option<&str>,
    ) -> std::result::Result<Url, <Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/element/{}/{}",
            session.unwrap_or_default(),
            self.element,
            self.what
        ))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (Method::GET, None)
    }
}

/// `POST /session/{id}/permissions` (Permissions spec), for the current origin.
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
    state: &'static str,
}

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base: &Url,
        session: Option<&str>,
    ) -> std::result::Result<Url, <Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/permissions",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": self.state });
        (Method::POST, Some(body.to_string()))
    }
}

enum Failure {
    Error(Error),
    Panic(Box<dyn Any + Send>),
}

/// Polls a future and catches a panic from it, so artifacts can be saved first.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
