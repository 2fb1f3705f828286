//! Fuzz target: a TCP client's byte stream into `Connection::feed`, cut into pieces at
//! fuzzer-chosen points.
//!
//! Input: 4 header bytes, then the stream. Header byte 0 picks the store's configuration (a
//! memory limit of 1 to 64 KiB so that eviction and out-of-memory paths run, evictions on or
//! off, strict keys, a small item size limit, a small `get` line limit, 1 to 4 connections);
//! bytes 1..4 seed the generator that chooses piece lengths, which connection gets each piece,
//! how far the clock moves and when the crawler runs.
//!
//! Checks, beyond "nothing panics":
//! - every `feed` appends only whole replies: lines ending in `\r\n`, and `VALUE`/`VA` lines
//!   followed by exactly their data block and `\r\n`;
//! - the store never charges more than its memory limit, and its per-class item counts add up;
//! - cutting the stream into pieces changes nothing: one connection fed the pieces at a fixed
//!   time answers exactly what it answers to the whole stream at once (`stats bytes_read` and
//!   `bytes_written` aside, which count per call), unless it closed the connection for a
//!   command line that grew too long while incomplete, in which case its replies so far are a
//!   prefix of the whole-stream replies.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memcached::{Action, Connection, Store};

mod common;

use common::{config, START};

/// xorshift64*: the piece-cutting decisions, seeded from the header.
struct Rng(u64);

impl Rng {
    fn new(seed: &[u8]) -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for &byte in seed {
            state = (state ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(state | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Cuts `stream` into pieces: lengths from 1 byte up to the whole, favouring short ones.
fn pieces<'a>(stream: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let max = [1, 3, 16, 100, 2000][rng.below(5) as usize];
        let length = (1 + rng.below(max) as usize).min(rest.len());
        pieces.push(&rest[..length]);
        rest = &rest[length..];
    }
    pieces
}

/// Asserts that `out` is a sequence of whole replies.
fn check_whole_replies(out: &[u8]) {
    let mut position = 0;
    while position < out.len() {
        let rest = &out[position..];
        let Some(end) = rest.windows(2).position(|pair| pair == b"\r\n") else {
            panic!(
                "reply not ending in \\r\\n: {:?}",
                String::from_utf8_lossy(rest)
            );
        };
        let line = &rest[..end];
        position += end + 2;
        let tokens: Vec<&[u8]> = line.split(|&byte| byte == b' ').collect();
        let length_token = match tokens[0] {
            b"VALUE" => tokens.get(3),
            b"VA" => tokens.get(1),
            _ => continue,
        };
        let length: usize = length_token
            .and_then(|token| std::str::from_utf8(token).ok())
            .and_then(|token| token.parse().ok())
            .unwrap_or_else(|| panic!("bad value line {:?}", String::from_utf8_lossy(line)));
        assert!(
            out.len() >= position + length + 2
                && &out[position + length..position + length + 2] == b"\r\n",
            "value of {length} bytes not followed by \\r\\n after {:?}",
            String::from_utf8_lossy(line)
        );
        position += length + 2;
    }
}

fn check_store(store: &Store) {
    let limit = store.config().memory_limit;
    assert!(
        store.charged_bytes() <= limit,
        "charged {} > limit {limit}",
        store.charged_bytes()
    );
    assert!(store.bytes() <= store.charged_bytes());
    let counted: u64 = store.class_stats().iter().map(|class| class.number).sum();
    assert_eq!(
        counted,
        store.len() as u64,
        "per-class item counts do not add up"
    );
}

/// Feeds `piece` and checks what came out; returns whether the connection closed.
fn feed(
    connection: &mut Connection,
    piece: &[u8],
    store: &mut Store,
    now: u32,
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let action = connection.feed(piece, store, now, out);
    check_whole_replies(&out[start..]);
    check_store(store);
    action == Action::Close
}

/// Blanks the counters that depend on how the input was cut into `feed` calls.
fn normalize(out: &[u8]) -> Vec<Vec<u8>> {
    out.split(|&byte| byte == b'\n')
        .map(|line| {
            if line.starts_with(b"STAT bytes_read ") || line.starts_with(b"STAT bytes_written ") {
                line[..line.iter().rposition(|&byte| byte == b' ').unwrap()].to_vec()
            } else {
                line.to_vec()
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (header, stream) = data.split_at(4);
    let config = config(header[0]);

    // The whole stream at once.
    let mut whole_store = Store::new(config, START);
    let mut whole_out = Vec::new();
    let whole_closed = feed(
        &mut Connection::new(),
        stream,
        &mut whole_store,
        START,
        &mut whole_out,
    );

    // The same stream in pieces, same time: the same replies.
    let mut rng = Rng::new(&header[1..]);
    let mut store = Store::new(config, START);
    let mut connection = Connection::new();
    let mut out = Vec::new();
    let mut closed = false;
    for piece in pieces(stream, &mut rng) {
        closed = feed(&mut connection, piece, &mut store, START, &mut out);
        if closed {
            break;
        }
    }
    let (whole, cut) = (normalize(&whole_out), normalize(&out));
    if closed && !whole_closed {
        assert!(
            whole.starts_with(&cut[..cut.len() - 1]),
            "pieces closed early but replied differently"
        );
    } else {
        assert_eq!(
            closed, whole_closed,
            "pieces and whole stream disagree on closing"
        );
        assert!(cut == whole, "pieces and whole stream replied differently");
        assert_eq!(
            (store.len(), store.bytes(), store.charged_bytes()),
            (
                whole_store.len(),
                whole_store.bytes(),
                whole_store.charged_bytes()
            )
        );
    }

    // Several connections sharing a store, pieces dealt among them, the clock moving and the
    // crawler running; a connection that closes is replaced by a new one.
    let connections = 1 + usize::from(header[0] >> 6);
    let mut rng = Rng::new(&header[1..]);
    let mut store = Store::new(config, START);
    let mut clients: Vec<Connection> = (0..connections).map(|_| Connection::new()).collect();
    let mut now = START;
    for piece in pieces(stream, &mut rng) {
        now += match rng.below(16) {
            0..=9 => 0,
            10..=12 => 1,
            13 => 61,
            14 => 3600,
            _ => 31 * 86_400,
        };
        let client = rng.below(connections as u64) as usize;
        let mut out = Vec::new();
        if feed(&mut clients[client], piece, &mut store, now, &mut out) {
            clients[client] = Connection::new();
        }
        if rng.below(8) == 0 {
            store.crawl(now, 1 + rng.below(64) as usize);
            check_store(&store);
        }
    }
});
