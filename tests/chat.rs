//! The base flow over real TCP: registration, relaying, join/leave notices, history.
mod common;
use common::Server;

/// Two users exchange lines; the sender gets no echo.
#[test]
fn two_users_chat_without_echo() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect("* bob joined");
    alice.send("hello bob");
    bob.next_is("alice: hello bob");
    bob.send("hi alice");
    // Alice's next line is Bob's reply, not an echo of her own line.
    alice.next_is("bob: hi alice");
}
