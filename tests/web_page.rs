//! The chat page in a real browser: Debian's headless Chromium (tests/common/browser.rs) against
//! the fake chat of tests/common/fakeweb.rs, which serves the page through the web door's real
//! HTTP and WebSocket code. The fake stands in for the hub until the door is wired to it.
mod common;

use common::browser::{visible_js, Browser};
use common::fakeweb::FakeChat;

/// A browser (or `None` where Chromium is missing, outside CI) and a fake chat to open.
fn start() -> Option<(Browser, FakeChat)> {
    Some((Browser::launch()?, FakeChat::start()))
}

/// Both pages log in and chat; `/me`, lines from another door and links show as they should,
/// and markup in a message is shown as text and runs nothing.
#[test]
fn two_pages_chat_and_markup_stays_text() {
    let Some((browser, fake)) = start() else {
        return;
    };
    fake.say_as("dave", "lobby", "before you came");
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
    fake.say_as("dave", "lobby", "from nc");
    alice.wait_text("#log", "from nc");
    bob.wait_text("#log", "from nc");

    let payload = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    bob.say(payload);
    alice.wait_text("#log", payload);
    let img = alice.eval("document.querySelectorAll('#log img, #log script').length");
    assert_eq!(img, 0, "markup in a message became elements");
    bob.say("odd\u{2028}lines\u{2029}and \u{1F389} \"quotes\" \\ here");
    alice.wait_text(
        "#log",
        "odd\u{2028}lines\u{2029}and \u{1F389} \"quotes\" \\ here",
    );

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
    bob.wait_text("#log .error", "unknown command /nope");
    for page in [&alice, &bob] {
        page.ran_clean().expect("the page ran clean");
    }
}

/// Scrolling to the top loads older history page by page until the room's beginning, each
/// line once and in order.
#[test]
fn scrolling_up_loads_older_history() {
    let Some((browser, fake)) = start() else {
        return;
    };
    for n in 1..=120 {
        fake.say_as("dave", "lobby", &format!("line {n}"));
    }
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
    let expected: Vec<i64> = fake.lines("lobby").iter().map(|l| l.0).collect();
    assert_eq!(ids, serde_json::json!(expected));
    page.ran_clean().expect("the page ran clean");
}

/// When the server drops every connection, the page says so, reconnects by itself and resumes:
/// lines said meanwhile appear once, and none twice.
#[test]
fn reconnecting_loses_and_doubles_nothing() {
    let Some((browser, fake)) = start() else {
        return;
    };
    let page = browser.open(&fake.url());
    page.log_in("alice");
    for n in 1..=5 {
        fake.say_as("dave", "lobby", &format!("before {n}"));
    }
    page.wait_text("#log", "before 5");
    page.eval("document.getElementById('input').value = 'a draft'");
    fake.drop_connections();
    page.wait_text("#status", "Reconnecting");
    fake.say_as("dave", "lobby", "while you were away");
    page.wait_text("#status", "Connected as alice");
    page.wait_text("#log", "while you were away");
    fake.say_as("dave", "lobby", "after");
    page.wait_text("#log", "after");
    let ids =
        page.eval("[...document.querySelectorAll('#log li[data-id]')].map(li => +li.dataset.id)");
    let expected: Vec<i64> = fake.lines("lobby").iter().map(|l| l.0).collect();
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
    let Some((browser, fake)) = start() else {
        return;
    };
    fake.say_as("erin", "lobby", "welcome to the smolchat test room");
    fake.say_as("dave", "lobby", "reading along from nc, hi all");
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
    fake.say_as("dave", "lobby", "hello from nc");
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
        fake.say_as("dave", "lobby", &format!("a long conversation, line {n}"));
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

/// A registered name is asked for its password; a wrong one is refused and the name prompt
/// comes back; after a reconnect the page logs in again by itself.
#[test]
fn registered_names_ask_for_the_password() {
    let Some((browser, fake)) = start() else {
        return;
    };
    let page = browser.open(&fake.url());
    let (name, password) = common::fakeweb::REGISTERED;
    let asking = "!document.getElementById('password-row').hidden";
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

    fake.drop_connections();
    page.wait_text("#status", "Reconnecting");
    page.wait_text("#status", &format!("Connected as {name}"));
    assert_eq!(page.eval("document.getElementById('login').hidden"), true);
    page.ran_clean().expect("the page ran clean");
}
