//! Fuzzes `LineDecoder` with arbitrary bytes, because it is the first code to touch whatever a
//! client sends. It checks the invariants the unit and property tests check: no panic, clean and
//! bounded lines, and the same events however the input is split.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smolchat::wire::codec::{Decoded, LineDecoder};
use smolchat::wire::sanitize::{is_clean, sanitize};

/// Feeds `chunks` in order, calling `decode` until each is used up, and collects the events.
fn run(max_line: usize, chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut decoder = LineDecoder::new(max_line);
    let mut events = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest);
            assert!(used > 0 && used <= rest.len(), "decode must make progress");
            rest = &rest[used..];
            // Telnet answers come out where the input runs out, so they depend on the split.
            events.extend(event.filter(|e| !matches!(e, Decoded::Reply)));
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the line limit and where to split the rest.
    let [limit, split, input @ ..] = data else {
        return;
    };
    let max_line = usize::from(*limit % 64);
    let at = usize::from(*split) * input.len() / 256;
    let (head, tail) = input.split_at(at);

    let whole = run(max_line, &[input]);
    let split = run(max_line, &[head, tail]);
    assert_eq!(whole, split, "splitting the input changed the events");

    for event in &whole {
        if let Decoded::Line(line) = event {
            assert!(is_clean(line), "unclean line {line:?}");
            assert_eq!(&sanitize(line), line, "sanitize is not idempotent");
            assert!(
                line.len() <= 3 * max_line,
                "line longer than the limit allows"
            );
        }
    }
});
