//! History for IRC clients: `draft/chathistory` requests, and the `chathistory` batches that
//! carry both their answers and the replay on joining a room.
//!
//! A message is referred to by `msgid=ID` (the history row's id) or `timestamp=TIME` (when it
//! was stored); references are exclusive. [`parse`] turns `CHATHISTORY` parameters into a
//! [`Request`], or the `FAIL` to answer. The rows to return are defined by [`select`], a plain
//! implementation over `(id, ms)` pairs that the storage query must match; its tests are the
//! specification's (and irctest's) examples. Whatever the plan, rows go out oldest first.
//!
//! Clients that negotiated `draft/chathistory` fetch history themselves, so the wiring skips
//! their replay on joining (as the specification's authors recommend); everyone else gets the
//! replay, in a batch when they negotiated `batch`.

use crate::door::irc::caps::Cap;
use crate::door::irc::event::Stored;
use crate::door::irc::message::Writer;
use crate::door::irc::names;
use crate::door::irc::render::relay::replayed;
use crate::door::irc::render::Ctx;
use crate::door::irc::time;
use crate::names::RoomName;

/// A point in a room's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `msgid=ID`: a row id.
    Id(i64),
    /// `timestamp=...`: milliseconds since the epoch.
    Time(i64),
}

/// Which rows to return, before the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The newest rows, only those after `after` when given.
    Latest { after: Option<Bound> },
    /// The newest rows before the bound.
    Before(Bound),
    /// The oldest rows after the bound.
    After(Bound),
    /// Rows on both sides of the bound: half the limit before it, the rest from it on.
    Around(Bound),
    /// Rows strictly between the bounds, the limit counted from `from` (which may be the later
    /// one).
    Between { from: Bound, to: Bound },
}

/// What a `CHATHISTORY` command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Lines of one room (or, for a nick, of a private conversation: never stored here, so an
    /// empty batch).
    Lines {
        subcommand: &'static str,
        target: Target,
        plan: Plan,
        limit: usize,
    },
    /// `TARGETS`: the rooms with lines between two instants.
    Targets { from: i64, to: i64, limit: usize },
}

/// Whose history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Room(RoomName),
    Nick(String),
}

/// A refusal, written as `FAIL CHATHISTORY CODE context... :description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub context: Vec<String>,
    pub description: &'static str,
}

impl Failure {
    fn new(code: &'static str, context: &[&str], description: &'static str) -> Failure {
        Failure {
            code,
            context: context
                .iter()
                .map(|c| crate::door::irc::caps::truncate(c, 64).to_owned())
                .collect(),
            description,
        }
    }

    /// Writes the `FAIL` line.
    pub fn write(&self, ctx: Ctx<'_>, out: &mut Vec<u8>) {
        let context: Vec<&str> = self.context.iter().map(String::as_str).collect();
        crate::door::irc::render::replies::fail(
            ctx,
            "CHATHISTORY",
            self.code,
            &context,
            self.description,
            out,
        );
    }
}

/// Parses `CHATHISTORY` parameters; `max` is the advertised `CHATHISTORY` limit (larger limits
/// are lowered to it).
pub fn parse(params: &[&str], max: usize) -> Result<Request, Failure> {
    let need = |sub: &str| Failure::new("NEED_MORE_PARAMS", &[sub], "Missing parameters");
    let sub_raw = params.first().copied().unwrap_or("");
    let subcommand = match sub_raw.to_ascii_uppercase().as_str() {
        "LATEST" => "LATEST",
        "BEFORE" => "BEFORE",
        "AFTER" => "AFTER",
        "AROUND" => "AROUND",
        "BETWEEN" => "BETWEEN",
        "TARGETS" => "TARGETS",
        _ => {
            return Err(Failure::new(
                "INVALID_PARAMS",
                &[sub_raw],
                "Unknown subcommand",
            ))
        }
    };
    let wanted = if matches!(subcommand, "BETWEEN") {
        5
    } else {
        4
    };
    if params.len() < wanted {
        return Err(need(subcommand));
    }
    let limit = limit(params[wanted - 1], max).ok_or_else(|| {
        Failure::new(
            "INVALID_PARAMS",
            &[subcommand, params[wanted - 1]],
            "Invalid limit",
        )
    })?;
    let bad_ref = |p: &str| {
        Failure::new(
            "INVALID_PARAMS",
            &[subcommand, p],
            "Invalid message reference",
        )
    };
    if subcommand == "TARGETS" {
        let (Some(Bound::Time(a)), Some(Bound::Time(b))) = (bound(params[1]), bound(params[2]))
        else {
            return Err(bad_ref(params[1]));
        };
        return Ok(Request::Targets {
            from: a.min(b),
            to: a.max(b),
            limit,
        });
    }
    let target = target(params[1]).ok_or_else(|| {
        Failure::new("INVALID_TARGET", &[subcommand, params[1]], "Invalid target")
    })?;
    let first = params[2];
    let plan = match subcommand {
        "LATEST" if first == "*" => Plan::Latest { after: None },
        "LATEST" => Plan::Latest {
            after: Some(bound(first).ok_or_else(|| bad_ref(first))?),
        },
        "BEFORE" => Plan::Before(bound(first).ok_or_else(|| bad_ref(first))?),
        "AFTER" => Plan::After(bound(first).ok_or_else(|| bad_ref(first))?),
        "AROUND" => Plan::Around(bound(first).ok_or_else(|| bad_ref(first))?),
        _ => Plan::Between {
            from: bound(first).ok_or_else(|| bad_ref(first))?,
            to: bound(params[3]).ok_or_else(|| bad_ref(params[3]))?,
        },
    };
    Ok(Request::Lines {
        subcommand,
        target,
        plan,
        limit,
    })
}

fn limit(raw: &str, max: usize) -> Option<usize> {
    let n: usize = raw.parse().ok()?;
    (n > 0).then_some(n.min(max.max(1)))
}

fn bound(raw: &str) -> Option<Bound> {
    if let Some(id) = raw.strip_prefix("msgid=") {
        return id.parse().ok().map(Bound::Id);
    }
    raw.strip_prefix("timestamp=")
        .and_then(time::parse)
        .map(Bound::Time)
}

fn target(raw: &str) -> Option<Target> {
    if raw.starts_with('#') {
        return names::channel(raw).map(Target::Room);
    }
    names::irc_safe(raw).then(|| Target::Nick(raw.to_owned()))
}

/// The indices of the rows `plan` returns, oldest first, at most `limit`. `rows` are one room's
/// `(id, ms)` in id order (ids and times rise together).
pub fn select(plan: Plan, limit: usize, rows: &[(i64, i64)]) -> Vec<usize> {
    let key = |i: usize, b: Bound| match b {
        Bound::Id(_) => rows[i].0,
        Bound::Time(_) => rows[i].1,
    };
    let value = |b: Bound| match b {
        Bound::Id(v) | Bound::Time(v) => v,
    };
    let all = 0..rows.len();
    let newest = |it: Vec<usize>| it[it.len().saturating_sub(limit)..].to_vec();
    let oldest = |it: Vec<usize>| it.into_iter().take(limit).collect::<Vec<_>>();
    match plan {
        Plan::Latest { after: None } => newest(all.collect()),
        Plan::Latest { after: Some(b) } => newest(all.filter(|&i| key(i, b) > value(b)).collect()),
        Plan::Before(b) => newest(all.filter(|&i| key(i, b) < value(b)).collect()),
        Plan::After(b) => oldest(all.filter(|&i| key(i, b) > value(b)).collect()),
        Plan::Around(b) => {
            let before: Vec<usize> = all.clone().filter(|&i| key(i, b) < value(b)).collect();
            let from: Vec<usize> = all.filter(|&i| key(i, b) >= value(b)).collect();
            let n_before = (limit / 2).min(before.len());
            let mut out = before[before.len() - n_before..].to_vec();
            out.extend(from.into_iter().take(limit - n_before));
            out
        }
        Plan::Between { from, to } => {
            let (low, high) = if value(from) <= value(to) {
                (from, to)
            } else {
                (to, from)
            };
            let inside: Vec<usize> = all
                .filter(|&i| key(i, low) > value(low) && key(i, high) < value(high))
                .collect();
            if value(from) <= value(to) {
                oldest(inside)
            } else {
                newest(inside)
            }
        }
    }
}

/// Writes `lines` of `room` as a `chathistory` batch (`BATCH +id chathistory #room` ...
/// `BATCH -id`) for a recipient with `batch`, or as plain lines for one without. `user` and
/// `host` complete the senders' masks; `batch_id` is unique on the connection.
pub fn batch(
    ctx: Ctx<'_>,
    target: &str,
    lines: &[Stored],
    user: &str,
    host: &str,
    batch_id: &str,
    out: &mut Vec<u8>,
) {
    let batched = ctx.caps.contains(Cap::Batch);
    if batched {
        Writer::new(out, "", Some(ctx.server), "BATCH")
            .params(&[&format!("+{batch_id}"), "chathistory"])
            .last(target);
    }
    let tag = format!("batch={batch_id}");
    for line in lines {
        let p = replayed(line, target, user, host);
        p.write_with(ctx.caps, if batched { &tag } else { "" }, out);
    }
    if batched {
        Writer::new(out, "", Some(ctx.server), "BATCH").last(&format!("-{batch_id}"));
    }
}

/// Writes the answer to `TARGETS`: a `draft/chathistory-targets` batch of
/// `CHATHISTORY TARGETS #room TIME`, one per room with its latest line's instant.
pub fn targets(ctx: Ctx<'_>, rooms: &[(RoomName, i64)], batch_id: &str, out: &mut Vec<u8>) {
    let batched = ctx.caps.contains(Cap::Batch);
    let tags = if batched {
        format!("batch={batch_id}")
    } else {
        String::new()
    };
    if batched {
        Writer::new(out, "", Some(ctx.server), "BATCH")
            .params(&[&format!("+{batch_id}")])
            .last("draft/chathistory-targets");
    }
    for (room, at_ms) in rooms {
        Writer::new(out, &tags, Some(ctx.server), "CHATHISTORY")
            .params(&["TARGETS", &names::channel_name(room)])
            .last(&time::format(*at_ms));
    }
    if batched {
        Writer::new(out, "", Some(ctx.server), "BATCH").last(&format!("-{batch_id}"));
    }
}

/// Batch ids unique on one connection: a counter in base 36.
#[derive(Debug, Default)]
pub struct BatchIds(u64);

impl BatchIds {
    pub fn fresh(&mut self) -> String {
        self.0 += 1;
        let mut n = self.0;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(std::char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
            n /= 36;
        }
        digits.iter().rev().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::CapSet;
    use crate::door::irc::message;
    use crate::vocab::Kind;

    /// Ten messages with ids 100.. and times 1000 ms apart, as in irctest's chathistory tests.
    fn rows() -> Vec<(i64, i64)> {
        (0..10).map(|i| (100 + i, 1_000_000 + 1000 * i)).collect()
    }

    fn pick(plan: Plan, limit: usize) -> Vec<usize> {
        select(plan, limit, &rows())
    }

    fn id(i: i64) -> Bound {
        Bound::Id(100 + i)
    }

    fn at(i: i64) -> Bound {
        Bound::Time(1_000_000 + 1000 * i)
    }

    /// irctest _validate_chathistory_LATEST, BEFORE, AFTER, BETWEEN, AROUND, by msgid and by
    /// timestamp.
    #[test]
    fn selections_match_irctest() {
        for b in [id as fn(i64) -> Bound, at] {
            assert_eq!(
                pick(Plan::Latest { after: None }, 20),
                (0..10).collect::<Vec<_>>()
            );
            assert_eq!(pick(Plan::Latest { after: None }, 5), [5, 6, 7, 8, 9]);
            assert_eq!(pick(Plan::Latest { after: None }, 1), [9]);
            assert_eq!(
                pick(Plan::Latest { after: Some(b(4)) }, 20),
                [5, 6, 7, 8, 9]
            );
            assert_eq!(pick(Plan::Before(b(6)), 20), [0, 1, 2, 3, 4, 5]);
            assert_eq!(pick(Plan::Before(b(6)), 2), [4, 5]);
            assert_eq!(pick(Plan::After(b(3)), 20), [4, 5, 6, 7, 8, 9]);
            assert_eq!(pick(Plan::After(b(3)), 3), [4, 5, 6]);
            assert_eq!(
                pick(
                    Plan::Between {
                        from: b(0),
                        to: b(9)
                    },
                    20
                ),
                [1, 2, 3, 4, 5, 6, 7, 8]
            );
            assert_eq!(
                pick(
                    Plan::Between {
                        from: b(9),
                        to: b(0)
                    },
                    20
                ),
                [1, 2, 3, 4, 5, 6, 7, 8]
            );
            assert_eq!(
                pick(
                    Plan::Between {
                        from: b(0),
                        to: b(9)
                    },
                    3
                ),
                [1, 2, 3]
            );
            assert_eq!(
                pick(
                    Plan::Between {
                        from: b(9),
                        to: b(0)
                    },
                    3
                ),
                [6, 7, 8]
            );
            assert_eq!(pick(Plan::Around(b(7)), 1), [7]);
            assert_eq!(pick(Plan::Around(b(7)), 3), [6, 7, 8]);
        }
        assert_eq!(
            select(Plan::Latest { after: None }, 5, &[]),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn parses_each_subcommand() {
        let r = parse(&["LATEST", "#chan", "*", "10"], 100).unwrap();
        assert_eq!(
            r,
            Request::Lines {
                subcommand: "LATEST",
                target: Target::Room(RoomName::parse("chan").unwrap()),
                plan: Plan::Latest { after: None },
                limit: 10
            }
        );
        let r = parse(&["before", "#chan", "msgid=106", "5000"], 100).unwrap();
        assert!(matches!(
            r,
            Request::Lines {
                plan: Plan::Before(Bound::Id(106)),
                limit: 100,
                ..
            }
        ));
        let r = parse(
            &[
                "BETWEEN",
                "bob",
                "timestamp=2026-01-01T00:00:00.000Z",
                "msgid=3",
                "5",
            ],
            100,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Lines {
                target: Target::Nick(_),
                plan: Plan::Between {
                    from: Bound::Time(_),
                    to: Bound::Id(3)
                },
                ..
            }
        ));
        let r = parse(
            &[
                "TARGETS",
                "timestamp=2026-01-02T00:00:00Z",
                "timestamp=2026-01-01T00:00:00Z",
                "10",
            ],
            100,
        )
        .unwrap();
        assert!(matches!(r, Request::Targets { from, to, limit: 10 } if from < to));
    }

    #[test]
    fn refusals_are_standard_replies() {
        assert_eq!(
            parse(&["LATEST", "#chan", "*"], 100).unwrap_err().code,
            "NEED_MORE_PARAMS"
        );
        assert_eq!(
            parse(&["BETWEEN", "#chan", "msgid=1", "10"], 100)
                .unwrap_err()
                .code,
            "NEED_MORE_PARAMS"
        );
        assert_eq!(
            parse(&["SIDEWAYS", "#chan", "*", "1"], 100)
                .unwrap_err()
                .code,
            "INVALID_PARAMS"
        );
        assert_eq!(
            parse(&["LATEST", "#chan", "*", "0"], 100).unwrap_err().code,
            "INVALID_PARAMS"
        );
        assert_eq!(
            parse(&["LATEST", "#chan", "*", "x"], 100).unwrap_err().code,
            "INVALID_PARAMS"
        );
        assert_eq!(
            parse(&["BEFORE", "#chan", "id=5", "1"], 100)
                .unwrap_err()
                .code,
            "INVALID_PARAMS"
        );
        assert_eq!(
            parse(&["LATEST", "#no,pe", "*", "1"], 100)
                .unwrap_err()
                .code,
            "INVALID_TARGET"
        );
        let mut out = Vec::new();
        let ctx = Ctx {
            server: "srv",
            client: "bar",
            caps: CapSet::default(),
        };
        parse(&["LATEST", "#a b", "*", "1"], 100)
            .unwrap_err()
            .write(ctx, &mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with(":srv FAIL CHATHISTORY INVALID_TARGET LATEST #a_b :"));
    }

    /// irctest validate_chathistory_batch: `BATCH +id chathistory #chan`, lines tagged with the
    /// batch, `BATCH -id`; and the same lines without a batch for clients without `batch`.
    #[test]
    fn batches_wrap_replayed_lines() {
        let lines = [Stored {
            id: 5,
            at_ms: 0,
            sender: "bob".into(),
            kind: Kind::Message,
            text: "hi".into(),
        }];
        let caps = CapSet::of(&[Cap::Batch, Cap::ServerTime, Cap::MessageTags]);
        let mut out = Vec::new();
        batch(
            Ctx {
                server: "srv",
                client: "bar",
                caps,
            },
            "#chan",
            &lines,
            "nc",
            "smolchat",
            "1",
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        let got: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(
            got,
            [
                ":srv BATCH +1 chathistory #chan",
                "@batch=1;time=1970-01-01T00:00:00.000Z;msgid=5 :bob!nc@smolchat PRIVMSG #chan :hi",
                ":srv BATCH -1",
            ]
        );
        let mut out = Vec::new();
        batch(
            Ctx {
                server: "srv",
                client: "bar",
                caps: CapSet::default(),
            },
            "#chan",
            &lines,
            "nc",
            "smolchat",
            "2",
            &mut out,
        );
        assert_eq!(out, b":bob!nc@smolchat PRIVMSG #chan :hi\r\n");
        for line in text.split_terminator("\r\n") {
            assert!(message::parse(line.as_bytes()).is_ok());
        }
    }

    #[test]
    fn targets_batch_and_ids() {
        let mut out = Vec::new();
        let ctx = Ctx {
            server: "srv",
            client: "bar",
            caps: CapSet::of(&[Cap::Batch]),
        };
        targets(ctx, &[(RoomName::parse("a").unwrap(), 0)], "x", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), ":srv BATCH +x draft/chathistory-targets\r\n@batch=x :srv CHATHISTORY TARGETS #a 1970-01-01T00:00:00.000Z\r\n:srv BATCH -x\r\n");
        let mut ids = BatchIds::default();
        let got: Vec<String> = (0..37).map(|_| ids.fresh()).collect();
        assert_eq!(
            (got[0].as_str(), got[35].as_str(), got[36].as_str()),
            ("1", "10", "11")
        );
    }
}
