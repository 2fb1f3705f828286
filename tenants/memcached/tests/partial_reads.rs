//! Input arriving in arbitrary pieces: feeding a session one byte at a time or in random
//! splits gives exactly the replies of feeding it at once. Also the limits on buffered input.

mod common;

use common::{Rng, START};
use memcached::{Action, Config, Connection, Store};

/// A session touching every kind of command: values with `\r\n` inside, big values, errors
/// that swallow data, noreply, meta commands.
fn session() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(b"set a 1 0 5\r\nab\r\nc\r\nget a\r\nset b 0 0 1 noreply\r\nx\r\n");
    input.extend_from_slice(
        b"append a 0 0 3\r\n123\r\ngets a b nothing\r\nincr b 5\r\nset n 0 0 2\r\n42\r\n",
    );
    input.extend_from_slice(
        b"incr n 58\r\ndecr n 1\r\nget n\r\ntouch a 100\r\ngat 0 a\r\ndelete b\r\ndelete b\r\n",
    );
    input.extend_from_slice(b"set bad 0 0 2\r\nxyz\r\n");
    input.extend_from_slice(
        b"ms m 3 T0 F9 c k\r\nmmm\r\nmg m v f t s k\r\nmg zz q\r\nmn\r\nma n v\r\nmd m q\r\nmn\r\n",
    );
    input.extend_from_slice(b"ms m 2 MX\r\nzz\r\nbogus\r\n");
    let big: Vec<u8> = (0..100_000u32)
        .map(|index| b'a' + (index % 26) as u8)
        .collect();
    input.extend_from_slice(b"set big 0 0 100000\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\r\nmg big s\r\n");
    input.extend_from_slice(b"set huge 0 0 2000000\r\n");
    input.extend(std::iter::repeat_n(b'h', 2_000_000));
    input.extend_from_slice(b"\r\nget huge a\r\nversion\r\nstats slabs\r\nquit\r\nget a\r\n");
    input
}

/// Feeds `pieces` to a fresh connection and store; returns all replies and whether it closed.
fn run<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, bool) {
    let mut store = Store::new(Config::default(), START);
    let mut connection = Connection::new();
    let mut out = Vec::new();
    let mut closed = false;
    for piece in pieces {
        if connection.feed(piece, &mut store, START, &mut out) == Action::Close {
            closed = true;
        }
    }
    (out, closed)
}

#[test]
fn at_once_reply_is_as_expected() {
    let (out, closed) = run([&session()[..]]);
    let text = String::from_utf8_lossy(&out);
    assert!(closed, "quit closes");
    assert!(
        text.starts_with("STORED\r\nVALUE a 1 5\r\nab\r\nc\r\nEND\r\nSTORED\r\n"),
        "{text}"
    );
    assert!(
        text.contains("CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
        "{text}"
    );
    assert!(
        text.contains("CLIENT_ERROR invalid mode for ms M token\r\nERROR\r\n"),
        "{text}"
    );
    assert!(text.contains("HD s100000\r\n"), "{text}");
    assert!(
        text.contains("SERVER_ERROR object too large for cache\r\nVALUE a 1 8\r\n"),
        "{text}"
    );
    assert!(!text.contains("VALUE huge"), "{text}");
}

#[test]
fn byte_at_a_time_gives_the_same_replies() {
    let input = session();
    let expected = run([&input[..]]);
    assert_eq!(run(input.chunks(1)), expected);
}

#[test]
fn random_splits_give_the_same_replies() {
    let input = session();
    let expected = run([&input[..]]);
    let mut rng = Rng::new(0x5eed);
    for _ in 0..50 {
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            // Mostly small pieces, sometimes large ones, so both line and data paths split.
            let limit = if rng.chance(10) { 70_000 } else { 40 };
            let take = (1 + rng.below(limit) as usize).min(rest.len());
            pieces.push(&rest[..take]);
            rest = &rest[take..];
        }
        assert_eq!(run(pieces.iter().copied()), expected);
    }
}

#[test]
fn buffered_input_is_bounded() {
    let mut store = Store::new(Config::default(), START);
    let mut out = Vec::new();
    // Swallowed values are never buffered.
    let mut connection = Connection::new();
    connection.feed(b"set k 0 0 5000000\r\n", &mut store, START, &mut out);
    for _ in 0..100 {
        connection.feed(&[b'x'; 50_000], &mut store, START, &mut out);
        assert_eq!(connection.buffered(), 0);
    }
    // A line with no newline closes the connection once it passes 2048 bytes.
    let mut connection = Connection::new();
    assert_eq!(
        connection.feed(&[b'a'; 2048], &mut store, START, &mut out),
        Action::Continue
    );
    assert_eq!(
        connection.feed(b"a", &mut store, START, &mut out),
        Action::Close
    );
    // get lines may be longer, up to the configured bound.
    let mut connection = Connection::new();
    let mut line = b"get ".to_vec();
    line.extend(std::iter::repeat_n(b'k', 100_000));
    assert_eq!(
        connection.feed(&line, &mut store, START, &mut out),
        Action::Continue
    );
    let mut keys = Vec::new();
    for _ in 0..1000 {
        keys.extend_from_slice(b" key");
    }
    keys.extend_from_slice(b"\r\n");
    out.clear();
    assert_eq!(
        connection.feed(&keys, &mut store, START, &mut out),
        Action::Continue
    );
    assert_eq!(
        out, b"CLIENT_ERROR bad command line format\r\n",
        "the 100000-byte key is refused"
    );
    let mut connection = Connection::new();
    let huge = vec![b'k'; 300_000];
    connection.feed(b"get ", &mut store, START, &mut out);
    assert_eq!(
        connection.feed(&huge, &mut store, START, &mut out),
        Action::Close
    );
}

#[test]
fn a_complete_long_line_is_accepted_like_memcached() {
    // memcached checks the length only while no newline has arrived.
    let mut store = Store::new(Config::default(), START);
    let mut connection = Connection::new();
    let mut out = Vec::new();
    let mut input = b"set a 0 0 1 ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3000));
    input.extend_from_slice(b"\r\nx\r\n");
    assert_eq!(
        connection.feed(&input, &mut store, START, &mut out),
        Action::Continue
    );
    assert_eq!(out, b"STORED\r\n");
}

#[test]
fn a_connection_reports_when_it_is_mid_request() {
    let mut store = Store::new(Config::default(), START);
    let mut connection = Connection::new();
    let mut out = Vec::new();
    assert!(!connection.is_mid_request());
    connection.feed(b"set a 0 0 5\r\nab", &mut store, START, &mut out);
    assert!(connection.is_mid_request());
    connection.feed(b"cde\r\n", &mut store, START, &mut out);
    assert!(!connection.is_mid_request());
    assert_eq!(out, b"STORED\r\n");
}

#[test]
fn a_long_line_trickling_in_is_scanned_once() {
    // 200 000 one-byte pieces of a `get` line: rescanning the buffer on every piece would take
    // minutes; scanning only the new bytes takes milliseconds.
    let mut store = Store::new(Config::default(), START);
    let mut connection = Connection::new();
    let mut out = Vec::new();
    let mut line = b"get a".to_vec();
    for index in 0..40_000 {
        line.extend_from_slice(format!(" k{:03}", index % 1000).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    assert!(line.len() > 200_000);
    let started = std::time::Instant::now();
    for byte in line.chunks(1) {
        assert_eq!(
            connection.feed(byte, &mut store, START, &mut out),
            Action::Continue
        );
    }
    assert_eq!(out, b"END\r\n");
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}
