//! Helpers shared by the integration tests: a client session against one store with a
//! controllable clock, and a small seeded random number generator.
#![allow(dead_code)]

use memcached::{Action, Config, Connection, Store};

/// The unix time tests start at.
pub const START: u32 = 1_700_000_000;

/// One client connection to a store, with a clock the test moves.
pub struct Session {
    pub store: Store,
    pub connection: Connection,
    pub now: u32,
    pub closed: bool,
}

impl Session {
    /// A session against a fresh store with default settings.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A session against a fresh store with `config`.
    pub fn with_config(config: Config) -> Self {
        Self {
            store: Store::new(config, START),
            connection: Connection::new(),
            now: START,
            closed: false,
        }
    }

    /// Sends `input` in one piece and returns the reply bytes as text (lossy for binary values).
    pub fn send(&mut self, input: &str) -> String {
        String::from_utf8_lossy(&self.send_bytes(input.as_bytes())).into_owned()
    }

    /// Sends `input` in one piece and returns the reply bytes.
    pub fn send_bytes(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self
            .connection
            .feed(input, &mut self.store, self.now, &mut out)
            == Action::Close
        {
            self.closed = true;
        }
        out
    }

    /// Opens a second connection to the same store.
    pub fn reconnect(&mut self) {
        self.connection = Connection::new();
        self.closed = false;
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, seconds: u32) {
        self.now += seconds;
    }
}

/// xorshift64*: deterministic, seedable, good enough to drive randomized tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
