//! A property test: long random sequences of operations on the store and on a plain map model
//! (no memory limit, so nothing is evicted) must agree on every result and every value.

mod common;

use std::collections::BTreeMap;

use common::{Rng, START};
use memcached::{ArithError, Config, Store, StoreMode, StoreOptions, StoreStatus};

#[derive(Debug, Clone)]
struct ModelItem {
    value: Vec<u8>,
    flags: u32,
    /// Absolute expiry, 0 for never.
    exptime: u32,
    cas: u64,
}

/// The obvious implementation of memcached's rules, on a map.
#[derive(Default)]
struct Model {
    items: BTreeMap<Vec<u8>, ModelItem>,
    last_cas: u64,
}

fn absolute(exptime: i32, now: u32) -> u32 {
    match exptime {
        0 => 0,
        exptime if exptime < 0 => 1,
        exptime if exptime <= 2_592_000 => now + exptime as u32,
        exptime => exptime as u32,
    }
}

impl Model {
    fn live(&mut self, key: &[u8], now: u32) -> Option<&mut ModelItem> {
        let dead = self
            .items
            .get(key)
            .is_some_and(|item| item.exptime != 0 && item.exptime <= now);
        if dead {
            self.items.remove(key);
        }
        self.items.get_mut(key)
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>, flags: u32, exptime: u32) -> u64 {
        self.last_cas += 1;
        self.items.insert(
            key.to_vec(),
            ModelItem {
                value,
                flags,
                exptime,
                cas: self.last_cas,
            },
        );
        self.last_cas
    }

    fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i32,
        options: StoreOptions,
        now: u32,
    ) -> StoreStatus {
        let (mode, cas) = (options.mode, options.compare_cas);
        let exptime = absolute(exptime, now);
        let existing = self.live(key, now).cloned();
        match (mode, existing) {
            (StoreMode::Set, _) | (StoreMode::Add, None) => {
                self.put(key, value.to_vec(), flags, exptime);
                StoreStatus::Stored
            }
            (StoreMode::Add, Some(_)) => StoreStatus::NotStored,
            (StoreMode::Replace, Some(_)) => {
                self.put(key, value.to_vec(), flags, exptime);
                StoreStatus::Stored
            }
            (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                StoreStatus::NotStored
            }
            // A CAS value given with append or prepend must match (meta set's `C` flag).
            (StoreMode::Append | StoreMode::Prepend, Some(old)) if cas != 0 && cas != old.cas => {
                StoreStatus::Exists
            }
            (StoreMode::Append, Some(old)) => {
                self.put(
                    key,
                    [&old.value[..], value].concat(),
                    old.flags,
                    old.exptime,
                );
                StoreStatus::Stored
            }
            (StoreMode::Prepend, Some(old)) => {
                self.put(
                    key,
                    [value, &old.value[..]].concat(),
                    old.flags,
                    old.exptime,
                );
                StoreStatus::Stored
            }
            (StoreMode::Cas, None) => StoreStatus::NotFound,
            (StoreMode::Cas, Some(old)) if cas != 0 && cas == old.cas => {
                self.put(key, value.to_vec(), flags, exptime);
                StoreStatus::Stored
            }
            (StoreMode::Cas, Some(_)) => StoreStatus::Exists,
        }
    }

    fn arith(
        &mut self,
        key: &[u8],
        increment: bool,
        delta: u64,
        now: u32,
    ) -> Result<u64, ArithError> {
        self.last_cas += 1;
        let cas = self.last_cas;
        let Some(item) = self.live(key, now) else {
            self.last_cas -= 1;
            return Err(ArithError::NotFound);
        };
        // memcached reads the number with strtoull and accepts anything after a space.
        let digits = item
            .value
            .split(|&byte| byte == b' ')
            .next()
            .unwrap_or_default();
        let number = std::str::from_utf8(digits)
            .ok()
            .filter(|text| text.bytes().all(|byte| byte.is_ascii_digit()));
        let Some(current) = number.and_then(|text| text.parse::<u64>().ok()) else {
            self.last_cas -= 1;
            return Err(ArithError::NonNumeric);
        };
        let result = if increment {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let mut text = result.to_string().into_bytes();
        if text.len() <= item.value.len() {
            text.resize(item.value.len(), b' ');
        }
        item.value = text;
        item.cas = cas;
        Ok(result)
    }
}

const KEYS: [&[u8]; 6] = [b"alpha", b"beta", b"gamma", b"d", b"e", b"f"];

fn random_value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.below(1000).to_string().into_bytes(),
        1 => u64::MAX.to_string().into_bytes(),
        2 => b"not a number".to_vec(),
        _ => (0..rng.below(40))
            .map(|_| b'a' + rng.below(26) as u8)
            .collect(),
    }
}

fn random_exptime(rng: &mut Rng, now: u32) -> i32 {
    match rng.below(6) {
        0 => 1 + rng.below(5) as i32,
        1 => -1,
        2 => (now + 1 + rng.below(5) as u32) as i32,
        _ => 0,
    }
}

#[test]
fn store_agrees_with_a_map_model() {
    for seed in 1..=20u64 {
        let mut rng = Rng::new(seed * 7919);
        let mut store = Store::new(Config::default(), START);
        let mut model = Model::default();
        let mut now = START;
        for step in 0..3000 {
            let key = KEYS[rng.below(KEYS.len() as u64) as usize];
            let context = format!(
                "seed {seed} step {step} key {}",
                String::from_utf8_lossy(key)
            );
            match rng.below(12) {
                0..=4 => {
                    let mode = [
                        StoreMode::Set,
                        StoreMode::Add,
                        StoreMode::Replace,
                        StoreMode::Append,
                        StoreMode::Prepend,
                        StoreMode::Cas,
                    ][rng.below(6) as usize];
                    let value = random_value(&mut rng);
                    let flags = rng.below(4) as u32 * 1000;
                    let exptime = random_exptime(&mut rng, now);
                    let cas = match (rng.below(3), model.items.get(key)) {
                        (0 | 1, Some(item)) => item.cas,
                        (2, _) => 0,
                        _ => rng.below(50),
                    };
                    let options = StoreOptions {
                        compare_cas: cas,
                        ..StoreOptions::new(mode)
                    };
                    let expected = model.store(key, &value, flags, exptime, options, now);
                    let actual = store
                        .store(key, &value, flags, exptime, options, now)
                        .map(|(status, _)| status);
                    assert_eq!(actual, Ok(expected), "{context}: {mode:?}");
                }
                5 | 6 => {
                    let expected = model.live(key, now).cloned();
                    let actual = store
                        .get(key, now)
                        .map(|item| (item.value().to_vec(), item.flags(), item.cas()));
                    assert_eq!(
                        actual,
                        expected.map(|item| (item.value, item.flags, item.cas)),
                        "{context}: get"
                    );
                }
                7 => {
                    let expected = model.live(key, now).is_some();
                    model.items.remove(key);
                    assert_eq!(store.delete(key, now), expected, "{context}: delete");
                }
                8 => {
                    let exptime = random_exptime(&mut rng, now);
                    let expected = match model.live(key, now) {
                        Some(item) => {
                            item.exptime = absolute(exptime, now);
                            true
                        }
                        None => false,
                    };
                    assert_eq!(store.touch(key, exptime, now), expected, "{context}: touch");
                }
                9 | 10 => {
                    let increment = rng.chance(50);
                    let delta = if rng.chance(10) {
                        u64::MAX - rng.below(3)
                    } else {
                        rng.below(200)
                    };
                    let expected = model.arith(key, increment, delta, now);
                    assert_eq!(
                        store.incr_decr(key, increment, delta, now),
                        expected,
                        "{context}: arith"
                    );
                }
                _ => {
                    if rng.chance(5) {
                        // An immediate flush uses up a CAS value (memcached's `oldest_cas`).
                        model.items.clear();
                        model.last_cas += 1;
                        store.flush_all(0, now);
                    } else {
                        now += rng.below(3) as u32;
                    }
                }
            }
            if rng.chance(2) {
                store.crawl(now, 3);
            }
        }
        for key in KEYS {
            let expected = model
                .live(key, now)
                .cloned()
                .map(|item| (item.value, item.flags, item.cas));
            let actual = store
                .peek(key, now)
                .map(|item| (item.value().to_vec(), item.flags(), item.cas()));
            assert_eq!(
                actual,
                expected,
                "seed {seed}: final state of {}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
