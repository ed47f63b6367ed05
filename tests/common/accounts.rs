//! Helpers for the account and moderation tests: registering, logging in, operators, and
//! clients from another loopback address.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;

use super::{Client, Server};

pub const PASSWORD: &str = "correct horse battery";

impl Server {
    /// Joins as `name` and registers it with `password`.
    pub fn register(&self, name: &str, password: &str) -> Client {
        let mut c = self.join(name);
        c.send("/register");
        c.expect("choose a password for");
        c.send(password);
        c.expect("type the same password again");
        c.send(password);
        c.expect(&format!("{name} is now registered"));
        c
    }

    /// Connects and logs in to the registered `name`, waiting for the end of the replay.
    pub fn login(&self, name: &str, password: &str) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect("What is your name?");
        c.send(name);
        c.expect(&format!("{name} is registered: type its password"));
        c.send(password);
        c.expect(&format!("logged in as {name}"));
        c.expect("--- end of history");
        c
    }

    /// Registers `name` and makes it an operator with `smolchat op add` against this running
    /// server's database; returns the operator, logged in again so the role applies.
    pub fn operator(&self, name: &str) -> Client {
        let c = self.register(name, PASSWORD);
        let out = op(&["add", name, "--db", self.db_path().to_str().unwrap()]);
        assert!(out.contains(&format!("{name} is now an operator")), "{out}");
        c.close();
        let mut c = Client::connect(self.addr);
        c.expect("What is your name?");
        c.send(name);
        c.expect("type its password");
        c.send(PASSWORD);
        c.expect(&format!("logged in as {name} (operator)"));
        c.expect("--- end of history");
        c
    }

    /// Joins as `name` from the loopback address `from` (such as 127.0.0.2).
    pub fn join_from(&self, from: &str, name: &str) -> Client {
        let mut c = connect_from(from, self.addr);
        c.expect("What is your name?");
        c.send(name);
        c.expect(&format!("Welcome, {name}!"));
        c.expect("--- end of history");
        c
    }
}

/// A client whose socket is bound to `from` before connecting: Linux loopback answers for all
/// of 127/8, so this plays a client from another address.
pub fn connect_from(from: &str, to: SocketAddr) -> Client {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("address");
    socket.bind(&local.into()).expect("bind");
    socket.connect(&to.into()).expect("connect");
    Client::from_stream(socket.into())
}

/// Runs `smolchat op ARGS` and returns its stdout; panics if it fails.
pub fn op(args: &[&str]) -> String {
    let out = op_output(args);
    assert!(out.status.success(), "smolchat op {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `smolchat op ARGS` and returns the whole output.
pub fn op_output(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .arg("op")
        .args(args)
        .output()
        .expect("run smolchat op")
}
