//! The chat page in Firefox: Debian's headless `firefox-esr` driven over Marionette
//! (tests/common/firefox.rs) against the real server's web door, beside an nc user. One browser
//! start for the whole file, which keeps it quick; the page's other behaviours are tested in
//! Chromium (tests/web_page.rs).
mod common;

use common::firefox::Firefox;
use common::web::WebServer;

/// A Firefox user and an nc user chat both ways in one room at a phone's 375x667: the history
/// shows on joining, a line of markup from nc is shown literally and runs nothing, and the
/// message box stays on screen through a long conversation.
#[test]
fn firefox_chats_with_nc_at_phone_size() {
    let Some(mut firefox) = Firefox::launch() else {
        return;
    };
    let web = WebServer::start(&["--rate-per-sec", "0"]);
    let mut dave = web.server.join("dave");
    let mut witness = web.server.join("witness");
    dave.expect("* witness joined");
    dave.send("said before you came");
    // Relayed means committed: the page's join replay will hold it.
    witness.expect("dave: said before you came");

    firefox.open(&web.url());
    firefox.set_viewport(375, 667);
    firefox.log_in("fern");
    firefox.wait_text("#log", "said before you came");
    dave.expect("* fern joined");

    firefox.say("hello from firefox");
    dave.expect("fern: hello from firefox");
    dave.send("hello fern, from nc");
    firefox.wait_text("#log", "hello fern, from nc");
    firefox.say("/me waves");
    dave.expect("* fern waves");
    firefox.wait_text("#log .action", "* fern waves");

    let payload = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    dave.send(payload);
    firefox.wait_text("#log", payload);
    let elements = firefox.eval("document.querySelectorAll('#log img, #log script').length");
    assert_eq!(elements, 0, "markup in a message became elements");
    assert_eq!(firefox.eval("window.__pwned === undefined"), true);

    for n in 0..40 {
        dave.send(&format!("a long conversation, line {n}"));
    }
    firefox.wait_text("#log", "line 39");
    for selector in ["#input", "#send", "#status"] {
        let visible = common::browser::visible_js(selector);
        firefox.wait_until(&visible, &format!("{selector} visible at 375x667"));
    }
    assert!(
        !firefox.fully_visible("#people"),
        "the panel is a closed drawer on a phone"
    );
    firefox.say("still typing at the bottom");
    dave.expect("fern: still typing at the bottom");
    firefox.ran_clean().expect("the page ran clean");
}
