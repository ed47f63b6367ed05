//! Headless Chromium driven over the DevTools protocol (`headless_chrome`), for the web door's
//! page: open it, type, press keys, wait for text with a generous timeout (polling the DOM, never
//! sleeping a fixed time), read the DOM, check that no injected script ran, emulate a phone and
//! take screenshots.
//!
//! Each [`Browser`] is Debian's `/usr/bin/chromium` (found through `common::require`), headless,
//! with a fresh profile directory and everything that would reach the network on its own turned
//! off: the machine's network is closed and tests must not depend on it.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Emulation;
use headless_chrome::protocol::cdp::Page as Cdp;
use headless_chrome::{LaunchOptions, Tab};
use serde_json::Value;

use super::TIMEOUT;

/// Set on every new document before its scripts run: records Content-Security-Policy
/// violations and uncaught errors, so a test can say the page ran clean.
const WATCH: &str = "window.__csp = []; window.__errors = [];\
    document.addEventListener('securitypolicyviolation', \
        e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));\
    window.addEventListener('error', e => window.__errors.push(String(e.message)));";

/// A running headless Chromium with its own profile.
pub struct Browser {
    browser: headless_chrome::Browser,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or `None` (after `require`'s skip line) where it is not installed.
    pub fn launch() -> Option<Browser> {
        let chromium = super::require("chromium")?;
        let profile = tempfile::tempdir().expect("profile dir");
        let args: Vec<&OsStr> = [
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-features=MediaRouter,OptimizationHints,Translate",
            "--hide-scrollbars",
            "--mute-audio",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions::default_builder()
            .path(Some(chromium))
            .headless(true)
            .sandbox(false)
            .enable_gpu(false)
            .user_data_dir(Some(profile.path().to_path_buf()))
            .window_size(Some((1100, 720)))
            .args(args)
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .expect("launch options");
        let browser = headless_chrome::Browser::new(options).expect("start chromium");
        Some(Browser {
            browser,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab (in a fresh browser context, so tabs share nothing) and waits
    /// for the page to load.
    pub fn open(&self, url: &str) -> Page {
        let context = self.browser.new_context().expect("context");
        let tab = context.new_tab().expect("tab");
        tab.set_default_timeout(TIMEOUT);
        tab.call_method(Cdp::AddScriptToEvaluateOnNewDocument {
            source: WATCH.to_owned(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .expect("watch script");
        tab.navigate_to(url).expect("navigate");
        tab.wait_until_navigated().expect("navigated");
        Page { tab }
    }
}

/// One tab showing the page.
pub struct Page {
    pub tab: Arc<Tab>,
}

impl Page {
    /// Evaluates `expression` in the page and returns its value as JSON.
    pub fn eval(&self, expression: &str) -> Value {
        let wrapped = format!("JSON.stringify((() => {{ return {expression}; }})())");
        let result = self.tab.evaluate(&wrapped, false).expect("evaluate");
        match result.value {
            Some(Value::String(json)) => serde_json::from_str(&json).expect("json"),
            _ => Value::Null,
        }
    }

    /// Waits until `expression` is truthy in the page; panics with `what` and the page's log
    /// after [`TIMEOUT`].
    pub fn wait_until(&self, expression: &str, what: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.eval(&format!("!!({expression})")) == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the log shows:\n{}",
                self.text("#log")
            );
            // A poll of the DOM, not a wait for time to pass: each round trip is a DevTools call.
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until an element matching `selector` exists.
    pub fn wait_for(&self, selector: &str) {
        let query = format!("document.querySelector({})", js_string(selector));
        self.wait_until(&query, selector);
    }

    /// Waits until the text of `selector` contains `needle`.
    pub fn wait_text(&self, selector: &str, needle: &str) {
        let query = format!(
            "(document.querySelector({}) || {{}}).textContent?.includes({})",
            js_string(selector),
            js_string(needle)
        );
        self.wait_until(&query, &format!("{needle:?} in {selector}"));
    }

    /// The text content of the first element matching `selector` (empty if none).
    pub fn text(&self, selector: &str) -> String {
        let query = format!(
            "(document.querySelector({}) || {{}}).textContent || ''",
            js_string(selector)
        );
        self.eval(&query).as_str().unwrap_or_default().to_owned()
    }

    /// The text of every element matching `selector`, in document order.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let query = format!(
            "[...document.querySelectorAll({})].map(e => e.textContent)",
            js_string(selector)
        );
        let values = self.eval(&query);
        let items = values.as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Focuses `selector` and types `text` into it, key by key.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.wait_until(
            &format!("!document.querySelector({})?.disabled", js_string(selector)),
            &format!("{selector} enabled"),
        );
        self.eval(&format!(
            "document.querySelector({}).focus()",
            js_string(selector)
        ));
        self.tab.send_character(text).expect("type");
    }

    /// Presses a key (`Enter`, `ArrowUp`, `Escape`, `Tab`) in the focused element.
    pub fn press(&self, key: &str) {
        self.tab.press_key(key).expect("key");
    }

    /// Types `text` into the message box and presses Enter.
    pub fn say(&self, text: &str) {
        self.type_into("#input", text);
        self.press("Enter");
    }

    /// Enters `name` at the name prompt and waits to be connected.
    pub fn log_in(&self, name: &str) {
        self.wait_until(
            "!document.getElementById('login').hidden",
            "the name prompt",
        );
        self.type_into("#name", name);
        self.press("Enter");
        self.wait_text("#status", &format!("Connected as {name}"));
    }

    /// Whether no script injected through content ran, no CSP rule was broken and no error was
    /// thrown: `window.__pwned` (what test payloads set) is unset and the watch lists are empty.
    pub fn ran_clean(&self) -> Result<(), String> {
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

    /// Emulates a screen of `width` x `height` CSS pixels (a phone when `mobile`).
    pub fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.tab
            .call_method(Emulation::SetDeviceMetricsOverride {
                width,
                height,
                device_scale_factor: 1.0,
                mobile,
                scale: None,
                screen_width: None,
                screen_height: None,
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            })
            .expect("device metrics");
    }

    /// Makes the page see `prefers-color-scheme: SCHEME` (`light` or `dark`).
    pub fn set_color_scheme(&self, scheme: &str) {
        self.tab
            .call_method(Emulation::SetEmulatedMedia {
                media: None,
                features: Some(vec![Emulation::MediaFeature {
                    name: "prefers-color-scheme".into(),
                    value: scheme.into(),
                }]),
            })
            .expect("emulated media");
    }

    /// Whether the element matching `selector` lies wholly inside the viewport, is displayed,
    /// and is the topmost element at its centre (not covered by anything).
    pub fn fully_visible(&self, selector: &str) -> bool {
        self.eval(&visible_js(selector)) == Value::Bool(true)
    }

    /// A PNG of what the viewport shows.
    pub fn screenshot(&self) -> Vec<u8> {
        self.tab
            .capture_screenshot(Cdp::CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot")
    }
}

/// `text` as a JavaScript string literal.
pub fn js_string(text: &str) -> String {
    serde_json::to_string(text).expect("string")
}

/// A JavaScript expression that is true when the element matching `selector` lies wholly inside
/// the viewport with a size, and is the topmost element at its centre (nothing covers it).
pub fn visible_js(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({s}); if (!e) return false;\
           const r = e.getBoundingClientRect(); if (r.width < 1 || r.height < 1) return false;\
           const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);\
           return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth\
             && (top === e || e.contains(top)); }})()",
        s = js_string(selector)
    )
}
