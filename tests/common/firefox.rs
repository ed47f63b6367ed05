//! Headless Firefox driven over Marionette, its own remote protocol, for the web door's page:
//! Debian has `firefox-esr` but no geckodriver, and Marionette is what geckodriver speaks to
//! Firefox anyway.
//!
//! The protocol (firefox-source-docs, "Marionette: Protocol") is JSON over TCP, each message
//! prefixed by its length in bytes and a colon: Firefox first sends a handshake object, then
//! answers each command `[0, id, "WebDriver:Navigate", {...}]` with `[1, id, error, result]`.
//! The helper sends one command at a time and waits for its answer with a generous timeout.
//!
//! Firefox starts with a fresh profile whose `prefs.js` asks Marionette for a free port
//! (`marionette.port` 0: it writes the port it took to `MarionetteActivePort` in the profile),
//! and turns off everything that would reach the network on its own (updates, telemetry, safe
//! browsing, remote settings, captive-portal and connectivity checks, prefetching): the machine's
//! network is closed and tests must not depend on it. It runs in kiosk mode (no toolbars, so the
//! window is the viewport) with system access, so the helper can lift the browser window's
//! minimum width (500 px) and show the page at a phone's 375 px.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::browser::{js_string, visible_js};
use super::TIMEOUT;

/// Preferences for a browser that stays off the network unless a test points it somewhere.
const PREFS: &[(&str, &str)] = &[
    ("marionette.port", "0"),
    ("browser.startup.page", "0"),
    ("browser.startup.homepage", "\"about:blank\""),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
    ("browser.newtabpage.enabled", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.aboutwelcome.enabled", "false"),
    ("app.update.disabledForTesting", "true"),
    ("app.update.auto", "false"),
    ("app.normandy.enabled", "false"),
    ("extensions.update.enabled", "false"),
    ("extensions.getAddons.cache.enabled", "false"),
    ("extensions.blocklist.enabled", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("datareporting.healthreport.uploadEnabled", "false"),
    ("toolkit.telemetry.enabled", "false"),
    ("toolkit.telemetry.server", "\"data:,\""),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("browser.safebrowsing.downloads.enabled", "false"),
    ("browser.safebrowsing.blockedURIs.enabled", "false"),
    ("services.settings.server", "\"data:,\""),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("network.dns.disablePrefetch", "true"),
    ("network.prefetch-next", "false"),
    ("network.http.speculative-parallel-limit", "0"),
    ("network.trr.mode", "5"),
    ("security.OCSP.enabled", "0"),
    ("geo.provider.network.url", "\"\""),
    ("browser.region.network.url", "\"\""),
    ("media.gmp-manager.url", "\"\""),
];

/// Watches the page for Content-Security-Policy violations and uncaught errors from the moment
/// it is installed (Marionette cannot run a script before the page's own).
const WATCH: &str = "window.__csp = []; window.__errors = [];\
    document.addEventListener('securitypolicyviolation', \
        e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));\
    window.addEventListener('error', e => window.__errors.push(String(e.message)));";

/// A running headless Firefox with its own profile and one Marionette session.
pub struct Firefox {
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
    profile: tempfile::TempDir,
}

impl Firefox {
    /// Starts Firefox and a session, or `None` (after `require`'s skip line) where it is not
    /// installed.
    pub fn launch() -> Option<Firefox> {
        let firefox = super::require("firefox-esr")?;
        let profile = tempfile::tempdir().expect("profile dir");
        let prefs: String = PREFS
            .iter()
            .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
            .collect();
        std::fs::write(profile.path().join("prefs.js"), prefs).expect("prefs.js");
        let log = std::fs::File::create(profile.path().join("firefox.log")).expect("log");
        let child = Command::new(firefox)
            .args(["--headless", "--marionette", "-remote-allow-system-access"])
            .args(["--kiosk", "--no-remote", "--profile"])
            .arg(profile.path())
            .arg("about:blank")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start firefox-esr");
        let port = active_port(profile.path());
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Marionette");
        stream.set_read_timeout(Some(TIMEOUT * 3)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut firefox = Firefox {
            child,
            reader: BufReader::new(stream),
            writer,
            next_id: 0,
            profile,
        };
        let hello = firefox.read_message();
        assert_eq!(hello["applicationType"], "gecko", "{hello}");
        firefox.command("WebDriver:NewSession", json!({}));
        Some(firefox)
    }

    /// Sends one command and returns its result; panics on an error answer.
    pub fn command(&mut self, name: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let body = json!([0, id, name, params]).to_string();
        let message = format!("{}:{body}", body.len());
        self.writer
            .write_all(message.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}; {}", self.log()));
        loop {
            let answer = self.read_message();
            if answer[0] != 1 || answer[1] != id {
                continue;
            }
            if !answer[2].is_null() {
                panic!("{name} failed: {}", answer[2]);
            }
            return answer[3].clone();
        }
    }

    /// Reads one length-prefixed message.
    fn read_message(&mut self) -> Value {
        let mut length = Vec::new();
        if let Err(e) = self.reader.read_until(b':', &mut length) {
            panic!("Marionette read: {e}; {}", self.log());
        }
        let length: usize = std::str::from_utf8(length.strip_suffix(b":").unwrap_or(&length))
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad length prefix {length:?}; {}", self.log()));
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("message body");
        serde_json::from_slice(&body).expect("message json")
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.profile.path().join("firefox.log"));
        format!("firefox's log:\n{}", log.unwrap_or_default())
    }

    /// Opens `url` in the session's tab, waits for it to load and starts watching for CSP
    /// violations and errors.
    pub fn open(&mut self, url: &str) {
        self.command("WebDriver:Navigate", json!({ "url": url }));
        self.command(
            "WebDriver:ExecuteScript",
            json!({ "script": WATCH, "args": [] }),
        );
    }

    /// Evaluates `expression` in the page and returns its value as JSON.
    pub fn eval(&mut self, expression: &str) -> Value {
        let script = format!("return ({expression});");
        let result = self.command(
            "WebDriver:ExecuteScript",
            json!({ "script": script, "args": [] }),
        );
        result["value"].clone()
    }

    /// Waits until `expression` is truthy in the page; panics with `what` and the page's log
    /// after [`TIMEOUT`].
    pub fn wait_until(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.eval(&format!("!!({expression})")) == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                let log = self.text("#log");
                panic!("timed out waiting for {what}; the log shows:\n{log}");
            }
            // A poll of the DOM, not a wait for time to pass: each round trip is a command.
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the text of `selector` contains `needle`.
    pub fn wait_text(&mut self, selector: &str, needle: &str) {
        let query = format!(
            "(document.querySelector({}) || {{}}).textContent?.includes({})",
            js_string(selector),
            js_string(needle)
        );
        self.wait_until(&query, &format!("{needle:?} in {selector}"));
    }

    /// The text content of the first element matching `selector` (empty if none).
    pub fn text(&mut self, selector: &str) -> String {
        let query = format!(
            "(document.querySelector({}) || {{}}).textContent || ''",
            js_string(selector)
        );
        self.eval(&query).as_str().unwrap_or_default().to_owned()
    }

    /// Types `text` into the element matching `selector` (once it is enabled), key by key as
    /// a user would; `\u{E007}` is Enter.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.wait_until(
            &format!("!document.querySelector({})?.disabled", js_string(selector)),
            &format!("{selector} enabled"),
        );
        let found = self.command(
            "WebDriver:FindElement",
            json!({ "using": "css selector", "value": selector }),
        );
        let element = found["value"]
            .as_object()
            .and_then(|reference| reference.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element reference in {found}"))
            .to_owned();
        self.command(
            "WebDriver:ElementSendKeys",
            json!({ "id": element, "text": text }),
        );
    }

    /// Types `text` into the message box and presses Enter.
    pub fn say(&mut self, text: &str) {
        self.type_into("#input", &format!("{text}\u{E007}"));
    }

    /// Enters `name` at the name prompt and waits to be connected.
    pub fn log_in(&mut self, name: &str) {
        self.wait_until(
            "!document.getElementById('login').hidden",
            "the name prompt",
        );
        self.type_into("#name", &format!("{name}\u{E007}"));
        self.wait_text("#status", &format!("Connected as {name}"));
    }

    /// Makes the viewport `width` x `height` CSS pixels: the window (the viewport, in kiosk
    /// mode) resized after lifting the browser window's own minimum size.
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.command("Marionette:SetContext", json!({ "value": "chrome" }));
        self.command(
            "WebDriver:ExecuteScript",
            json!({
                "script": "const s = document.documentElement.style; \
                           s.minWidth = '0px'; s.minHeight = '0px';",
                "args": []
            }),
        );
        self.command("Marionette:SetContext", json!({ "value": "content" }));
        self.command(
            "WebDriver:SetWindowRect",
            json!({ "width": width, "height": height }),
        );
        let inner = self.eval("[innerWidth, innerHeight]");
        assert_eq!(inner, json!([width, height]), "the viewport's size");
    }

    /// Whether the element matching `selector` lies wholly inside the viewport, is displayed,
    /// and is the topmost element at its centre (not covered by anything).
    pub fn fully_visible(&mut self, selector: &str) -> bool {
        self.eval(&visible_js(selector)) == Value::Bool(true)
    }

    /// Whether no script injected through content ran, no CSP rule was broken and no error was
    /// thrown since [`Firefox::open`].
    pub fn ran_clean(&mut self) -> Result<(), String> {
        let report =
            self.eval("({pwned: window.__pwned, csp: window.__csp, errors: window.__errors})");
        let clean = report["pwned"].is_null()
            && report["csp"].as_array().is_some_and(Vec::is_empty)
            && report["errors"].as_array().is_some_and(Vec::is_empty);
        if clean {
            Ok(())
        } else {
            Err(report.to_string())
        }
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port Marionette took, once it has written it into the profile.
fn active_port(profile: &Path) -> u16 {
    let file = profile.join("MarionetteActivePort");
    let deadline = Instant::now() + TIMEOUT * 3;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Ok(port) = text.trim().parse() {
            return port;
        }
        let log = std::fs::read_to_string(profile.join("firefox.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "Marionette never said its port; firefox's log:\n{log}"
        );
        // Firefox writes the file once Marionette listens: poll for it.
        std::thread::sleep(Duration::from_millis(50));
    }
}
