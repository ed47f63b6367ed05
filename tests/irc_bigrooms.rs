//! Join storms in big rooms reach IRC clients summed up (docs/IRC.md, "Big rooms"): a few
//! `JOIN`s a second, then one server `NOTICE` for the rest, never a `JOIN` per newcomer; `NAMES`
//! lists everyone.
mod common;

use common::irc::{start_irc, IrcClient, SERVER_NAME};
use common::Client;

/// Forty people joining a room at once: the IRC member gets fewer `JOIN`s than newcomers and
/// summary `NOTICE`s that account for the others, each before any line of those it sums up;
/// `NAMES` then lists every member.
#[test]
fn a_join_storm_is_summed_up_for_irc_members() {
    let (server, addr) = start_irc(&[]);
    let mut irc = IrcClient::connect(addr).register("watcher");
    irc.send("JOIN #lobby");
    irc.expect_command("366");
    let mut crowd: Vec<Client> = (0..40).map(|n| server.join(&format!("crowd{n}"))).collect();
    crowd[39].send("hello from the crowd");
    let mut joins = 0;
    let mut summed = 0;
    loop {
        let m = irc.next().expect("the crowd's line");
        match m.command.as_str() {
            "JOIN" => joins += 1,
            "NOTICE" => {
                assert_eq!(m.source.as_deref(), Some(SERVER_NAME), "{m:?}");
                assert_eq!(m.params[0], "#lobby", "{m:?}");
                let text = &m.params[1];
                assert!(
                    text.ends_with(" (NAMES #lobby lists who is here)"),
                    "{text:?}"
                );
                let count: usize = text
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a count first");
                assert!(text.contains(" joined: crowd"), "{text:?}");
                summed += count;
            }
            "PRIVMSG" => {
                assert_eq!(m.params[1], "hello from the crowd");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        joins + summed,
        40,
        "every newcomer once: {joins} JOINs, {summed} summed up"
    );
    assert!(
        summed > 0 && joins < 40,
        "{joins} JOINs, {summed} summed up"
    );

    irc.send("NAMES #lobby");
    let mut names = Vec::new();
    loop {
        let m = irc.next().expect("names");
        match m.command.as_str() {
            "353" => names.extend(m.params[3].split(' ').map(str::to_owned)),
            "366" => break,
            _ => {}
        }
    }
    assert!(names.iter().any(|n| n == "crowd39"), "{names:?}");
    assert_eq!(names.len(), 41, "{names:?}");
}
