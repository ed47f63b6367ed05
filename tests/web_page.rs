//! The chat page in a real browser: Debian's headless Chromium (tests/common/browser.rs) against
//! the real server's web door, beside an nc user ("dave") in the same room.
mod common;

use std::net::SocketAddr;

use common::browser::{visible_js, Browser};
use common::web::{free_port, WebServer};
use common::Client;

/// The server (its web door on a port that survives a restart) and dave, an nc user.
struct Chat {
    web: WebServer,
    dave: Client,
}

/// Without the line rate, so dave can fill the history quickly.
const FLAGS: &[&str] = &["--rate-per-sec", "0"];

impl Chat {
    fn start() -> Chat {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let web = WebServer::start_in(tempfile::tempdir().expect("dir"), addr, FLAGS);
        let dave = web.server.join("dave");
        Chat { web, dave }
    }

    fn url(&self) -> String {
        self.web.url()
    }

    /// dave says `text` in the lobby (the page sees it live once the hub relays it).
    fn say(&mut self, text: &str) {
        self.dave.send(text);
    }

    /// dave says `texts`, and they are stored before this returns: a witness in the room has
    /// seen the last one relayed (relayed means committed), so a page opened now replays them.
    fn say_stored(&mut self, texts: &[String]) {
        let mut witness = self.web.server.join("witness");
        for text in texts {
            self.dave.send(text);
        }
        if let Some(last) = texts.last() {
            witness.expect(&format!("dave: {last}"));
        }
        witness.close();
        self.dave.expect("witness left");
    }

    /// The ids of the lobby's lines, as stored.
    fn lobby_ids(&self) -> Vec<i64> {
        let rows = common::message_rows(&self.web.server.open_db());
        rows.iter()
            .filter(|r| r.room == "lobby")
            .map(|r| r.id)
            .collect()
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on the same database
    /// and port; dave comes back too.
    fn crash_and_restart(&mut self) {
        let _ = self.web.server.child.kill();
        let _ = self.web.server.child.wait();
        let dir = std::mem::replace(&mut self.web.server.dir, tempfile::tempdir().expect("dir"));
        self.web = WebServer::start_in(dir, self.web.addr, FLAGS);
        self.dave = self.web.server.join("dave");
    }
}

/// A browser (or `None` where Chromium is missing, outside CI) and a chat to open.
fn start() -> Option<(Browser, Chat)> {
    Some((Browser::launch()?, Chat::start()))
}

/// Both pages log in and chat; `/me`, lines from another door and links show as they should,
/// and markup in a message is shown as text and runs nothing.
#[test]
fn two_pages_chat_and_markup_stays_text() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    fake.say_stored(&["before you came".to_owned()]);
    let alice = browser.open(&fake.url());
    alice.log_in("alice");
    alice.wait_text("#log", "before you came");
    let bob = browser.open(&fake.url());
    bob.log_in("bob");
    alice.wait_text("#log", "bob joined");
    alice.wait_text("#people", "bob");

    bob.say("hello alice");
    alice.wait_text("#log", "hello alice");
    alice.say("/me waves");
    bob.wait_text("#log .action", "* alice waves");
    fake.say("from nc");
    alice.wait_text("#log", "from nc");
    bob.wait_text("#log", "from nc");

    let payload = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    bob.say(payload);
    alice.wait_text("#log", payload);
    let img = alice.eval("document.querySelectorAll('#log img, #log script').length");
    assert_eq!(img, 0, "markup in a message became elements");
    bob.say("and \u{1F389} \"quotes\" \\ here");
    alice.wait_text("#log", "and \u{1F389} \"quotes\" \\ here");
    fake.dave.expect("bob: <img src=x onerror=");

    bob.say("see https://example.org/a?b=1. and javascript:alert(1)");
    alice.wait_text("#log", "javascript:alert(1)");
    let links = alice.eval(
        "[...document.querySelectorAll('#log a')].map(a => [a.href, a.rel, a.target, a.textContent])",
    );
    assert_eq!(
        links,
        serde_json::json!([[
            "https://example.org/a?b=1",
            "noopener noreferrer",
            "_blank",
            "https://example.org/a?b=1"
        ]])
    );
    bob.say("/nope");
    bob.wait_text("#log .error", "/nope");
    for page in [&alice, &bob] {
        page.ran_clean().expect("the page ran clean");
    }
}

/// Scrolling to the top loads older history page by page until the room's beginning, each
/// line once and in order.
#[test]
fn scrolling_up_loads_older_history() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    let lines: Vec<String> = (1..=120).map(|n| format!("line {n}")).collect();
    fake.say_stored(&lines);
    let page = browser.open(&fake.url());
    page.log_in("alice");
    page.wait_text("#log", "line 120");
    assert_eq!(page.texts("#log li[data-id]").len(), 50, "the join replay");
    page.wait_text("#older", "Scroll up");
    for shown in [100, 120] {
        page.eval("document.getElementById('scroller').scrollTop = 0");
        page.wait_until(
            &format!("document.querySelectorAll('#log li[data-id]').length === {shown}"),
            &format!("{shown} lines"),
        );
    }
    page.wait_text("#older", "This is the beginning of #lobby");
    let ids =
        page.eval("[...document.querySelectorAll('#log li[data-id]')].map(li => +li.dataset.id)");
    assert_eq!(ids, serde_json::json!(fake.lobby_ids()));
    page.ran_clean().expect("the page ran clean");
}

/// When the server is killed and started again, the page says so, reconnects by itself and
/// resumes: lines said meanwhile appear once, and none twice.
#[test]
fn reconnecting_loses_and_doubles_nothing() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    let page = browser.open(&fake.url());
    page.log_in("alice");
    for n in 1..=5 {
        fake.say(&format!("before {n}"));
    }
    page.wait_text("#log", "before 5");
    page.eval("document.getElementById('input').value = 'a draft'");
    fake.crash_and_restart();
    page.wait_text("#status", "Reconnecting");
    fake.say("while you were away");
    page.wait_text("#status", "Connected as alice");
    page.wait_text("#log", "while you were away");
    fake.say("after");
    page.wait_text("#log", "after");
    let ids =
        page.eval("[...document.querySelectorAll('#log li[data-id]')].map(li => +li.dataset.id)");
    let expected = fake.lobby_ids();
    assert_eq!(
        ids,
        serde_json::json!(expected),
        "every line once, in order"
    );
    assert_eq!(
        page.eval("document.getElementById('input').value"),
        "a draft"
    );
    page.ran_clean().expect("the page ran clean");
}

/// The page works from the keyboard alone: Enter logs in and sends, focus lands in the message
/// box, Up and Down walk the lines sent, Escape clears, and the regions are labelled.
#[test]
fn keyboard_only() {
    let Some((browser, fake)) = start() else {
        return;
    };
    let page = browser.open(&fake.url());
    page.log_in("alice");
    page.wait_until(
        "document.activeElement.id === 'input'",
        "focus in the message box",
    );
    page.say("first");
    page.say("second");
    page.wait_text("#log", "second");
    let value = || page.eval("document.getElementById('input').value");
    page.type_into("#input", "draft");
    page.press("ArrowUp");
    assert_eq!(value(), "second");
    page.press("ArrowUp");
    assert_eq!(value(), "first");
    page.press("ArrowDown");
    page.press("ArrowDown");
    assert_eq!(value(), "draft");
    page.press("Escape");
    assert_eq!(value(), "");
    page.press("Tab");
    assert_eq!(page.eval("document.activeElement.id"), "send");
    let log =
        page.eval("['role', 'aria-live'].map(a => document.getElementById('log').getAttribute(a))");
    assert_eq!(log, serde_json::json!(["log", "polite"]));
    let unlabelled = page.eval(
        "[...document.querySelectorAll('input, button')].filter(e => !(e.labels?.length || \
         e.getAttribute('aria-label') || e.textContent.trim())).map(e => e.id)",
    );
    assert_eq!(
        unlabelled,
        serde_json::json!([]),
        "every control has a label"
    );
}

/// At 375x667 (a phone) the message box and its button stay on screen and uncovered, also with
/// a long conversation; the theme follows the system's light or dark setting. Takes the
/// screenshot for docs/web-page.png (written there when UPDATE_SCREENSHOT=1).
#[test]
fn phone_layout_theme_and_screenshot() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    let mut erin = fake.web.server.join("erin");
    erin.send("welcome to the smolchat test room");
    erin.sync();
    fake.say("reading along from nc, hi all");
    let page = browser.open(&fake.url());
    page.set_color_scheme("light");
    page.set_viewport(960, 540, false);
    page.log_in("alice");
    let bob = browser.open(&fake.url());
    bob.log_in("bob");
    for (who, text) in [
        (&bob, "morning! did the release go out?"),
        (&page, "it did: https://example.org/releases/0.4"),
        (&bob, "/me cheers"),
        (&bob, "the web page works on my phone too"),
        (&page, "and <b>markup</b> stays text"),
    ] {
        who.say(text);
        page.wait_text("#log", &text.replace("/me ", ""));
    }
    fake.say("hello from nc");
    page.wait_text("#log", "hello from nc");
    page.wait_text("#people", "bob");
    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/web-page.png");
        std::fs::write(path, &png).expect("write the screenshot");
    }

    page.set_viewport(375, 667, true);
    for n in 0..40 {
        fake.say(&format!("a long conversation, line {n}"));
    }
    page.wait_text("#log", "line 39");
    for selector in ["#input", "#send", "#panel-toggle", "#status"] {
        page.wait_until(
            &visible_js(selector),
            &format!("{selector} visible at 375x667"),
        );
    }
    assert!(
        !page.fully_visible("#people"),
        "the panel is a closed drawer on a phone"
    );
    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/web-page-phone.png");
        std::fs::write(path, page.screenshot()).expect("write the screenshot");
    }

    let background = "getComputedStyle(document.body).backgroundColor";
    assert_eq!(page.eval(background), "rgb(246, 247, 249)");
    page.set_color_scheme("dark");
    page.wait_until(
        &format!("{background} === 'rgb(15, 18, 22)'"),
        "the dark theme",
    );
    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/web-page-dark.png");
        std::fs::write(path, page.screenshot()).expect("write the screenshot");
    }
    page.ran_clean().expect("the page ran clean");
}

/// `/register` on the page asks for the password in its password box; the registered name is
/// then asked for its password; a wrong one is refused and the name prompt comes back.
#[test]
fn registered_names_ask_for_the_password() {
    let Some((browser, fake)) = start() else {
        return;
    };
    let (name, password) = ("carol", common::accounts::PASSWORD);
    let asking = "!document.getElementById('password-row').hidden";
    // Registered from the page: /register asks for the password twice in the same box.
    let first = browser.open(&fake.url());
    first.log_in(name);
    first.say("/register");
    for prompt in [
        "choose a password for carol",
        "type the same password again",
    ] {
        first.wait_text("#login-text", prompt);
        first.wait_until(asking, "the password box");
        first.type_into("#password", password);
        first.press("Enter");
    }
    first.wait_until(
        "document.getElementById('login').hidden",
        "back in the chat",
    );
    first.wait_text("#log", &format!("{name} is now registered"));
    first.say("/quit");
    first.wait_text("#status", "Disconnected");
    let page = browser.open(&fake.url());
    page.wait_until(
        "!document.getElementById('login').hidden",
        "the name prompt",
    );
    page.type_into("#name", name);
    page.press("Enter");
    page.wait_until(asking, "the password prompt");
    page.wait_until(
        "document.activeElement.id === 'password'",
        "focus on the password",
    );
    page.type_into("#password", "not it");
    page.press("Enter");
    page.wait_text("#login-error", "wrong password");
    page.wait_until(&format!("!({asking})"), "the name prompt again");
    page.eval("document.getElementById('name').focus()");
    page.press("Enter");
    page.wait_until(asking, "the password prompt again");
    page.type_into("#password", password);
    page.press("Enter");
    page.wait_text("#status", &format!("Connected as {name}"));

    assert_eq!(page.eval("document.getElementById('login').hidden"), true);
    page.ran_clean().expect("the page ran clean");
}

/// Hostile text from an nc user, on a phone-sized page: a word longer than the screen, a
/// `data:` URL, a `javascript:` link in markup, a bidi override and terminal escapes. Nothing
/// becomes an element or runs, no link is made but for http(s), the override and escapes never
/// reach the page, and the page does not grow wider than the screen (the input box stays).
#[test]
fn hostile_text_keeps_the_page_whole() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    let page = browser.open(&fake.url());
    page.set_viewport(375, 667, true);
    page.log_in("alice");
    let long = "W".repeat(900);
    let lines = [
        long.clone(),
        "data:text/html,<script>window.__pwned=3</script>".to_owned(),
        "<a href=\"javascript:window.__pwned=4\">click</a> <svg onload=window.__pwned=5>"
            .to_owned(),
        "evil \u{202e}txt.exe\u{202c} done".to_owned(),
        "ansi \u{1b}[2J\u{1b}]0;title\u{7} end".to_owned(),
    ];
    for line in &lines {
        fake.say(line);
    }
    page.wait_text("#log", "ansi ");
    page.wait_text("#log", &long);
    let log = page.text("#log");
    assert!(
        !log.contains('\u{202e}') && !log.contains('\u{1b}'),
        "{log:?}"
    );
    assert!(log.contains("evil txt.exe done"), "{log:?}");
    let count = page.eval(
        "document.querySelectorAll('#log a, #log script, #log svg, #log img, #log iframe').length",
    );
    assert_eq!(count, 0, "hostile text became elements");
    assert_eq!(page.eval("window.__pwned === undefined"), true);
    let wide = page.eval(
        "[document.documentElement, document.body, document.getElementById('scroller')] \
         .every(el => el.scrollWidth <= el.clientWidth)",
    );
    assert_eq!(
        wide, true,
        "a long word made the page wider than the screen"
    );
    assert!(page.fully_visible("#input"), "the input box is not visible");
    page.ran_clean().expect("the page ran clean");
}

/// A blip: the network drops the page's connection while the server still holds its session
/// (no close reached it). The page reconnects at once and takes its name back with its
/// session's token, instead of being told for up to a minute that its own name is taken; the
/// lines said meanwhile appear once.
#[test]
fn a_blip_does_not_cost_the_name() {
    let Some((browser, mut fake)) = start() else {
        return;
    };
    let relay = common::web::Relay::start(fake.web.addr);
    let page = browser.open(&format!("http://{}/", relay.addr));
    page.log_in("alice");
    fake.dave.expect("alice joined");
    fake.say("before the blip");
    page.wait_text("#log", "before the blip");
    relay.cut();
    page.wait_text("#status", "Reconnecting");
    fake.say("during the blip");
    page.wait_text("#status", "Connected as alice");
    page.wait_text("#log", "during the blip");
    fake.dave.expect("alice left");
    fake.dave.expect("alice joined");
    page.say("back");
    fake.dave.expect("alice: back");
    let ids =
        page.eval("[...document.querySelectorAll('#log li[data-id]')].map(li => +li.dataset.id)");
    assert_eq!(ids, serde_json::json!(fake.lobby_ids()), "every line once");
    page.ran_clean().expect("the page ran clean");
}
