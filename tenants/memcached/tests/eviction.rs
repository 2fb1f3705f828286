//! The memory limit: least recently used items go first, reads and writes count as use, and
//! with evictions off a full store refuses new items.

mod common;

use common::{Session, START};
use memcached::{Config, Store, StoreError, StoreMode, StoreOptions, StoreStatus};

/// 200-byte values under 8-byte keys take 304-byte chunks, as in memcached.
const CHUNK: usize = 304;

fn set(store: &mut Store, key: &str, now: u32) -> Result<(StoreStatus, u64), StoreError> {
    store.store(
        key.as_bytes(),
        &[b'v'; 200],
        0,
        0,
        StoreOptions::new(StoreMode::Set),
        now,
    )
}

fn present(store: &mut Store, keys: &[&str]) -> Vec<bool> {
    keys.iter()
        .map(|key| store.peek(key.as_bytes(), START).is_some())
        .collect()
}

#[test]
fn items_are_charged_their_memcached_chunk_size() {
    let mut store = Store::new(Config::default(), START);
    set(&mut store, "key00001", START).unwrap();
    assert_eq!(store.bytes(), 48 + 8 + 9 + 202);
    assert_eq!(store.charged_bytes(), CHUNK);
}

#[test]
fn least_recently_used_items_are_evicted_first() {
    let config = Config {
        memory_limit: 4 * CHUNK,
        ..Config::default()
    };
    let mut store = Store::new(config, START);
    for key in ["key00001", "key00002", "key00003", "key00004"] {
        set(&mut store, key, START).unwrap();
    }
    // Reading key00001 makes key00002 the least recently used.
    assert!(store.get(b"key00001", START).is_some());
    set(&mut store, "key00005", START).unwrap();
    let keys = ["key00001", "key00002", "key00003", "key00004", "key00005"];
    assert_eq!(present(&mut store, &keys), [true, false, true, true, true]);
    // Overwriting counts as use too: key00003 survives, key00004 goes.
    set(&mut store, "key00003", START).unwrap();
    set(&mut store, "key00006", START).unwrap();
    let keys = ["key00001", "key00003", "key00004", "key00005", "key00006"];
    assert_eq!(present(&mut store, &keys), [true, true, false, true, true]);
    assert!(store.charged_bytes() <= 4 * CHUNK);
    let evicted: u64 = store.class_stats().iter().map(|class| class.evicted).sum();
    assert_eq!(evicted, 2);
}

#[test]
fn a_bigger_item_evicts_as_many_as_needed() {
    let config = Config {
        memory_limit: 4 * CHUNK,
        ..Config::default()
    };
    let mut store = Store::new(config, START);
    for key in ["key00001", "key00002", "key00003", "key00004"] {
        set(&mut store, key, START).unwrap();
    }
    // 600 bytes of value take a 752-byte chunk: three 304-byte items must go.
    store
        .store(
            b"big",
            &[b'b'; 600],
            0,
            0,
            StoreOptions::new(StoreMode::Set),
            START,
        )
        .unwrap();
    let keys = ["key00001", "key00002", "key00003", "key00004"];
    assert_eq!(present(&mut store, &keys), [false, false, false, true]);
    assert!(store.peek(b"big", START).is_some());
}

#[test]
fn growing_an_item_never_evicts_the_item_itself() {
    let config = Config {
        memory_limit: 2 * CHUNK,
        ..Config::default()
    };
    let mut store = Store::new(config, START);
    set(&mut store, "key00001", START).unwrap();
    set(&mut store, "key00002", START).unwrap();
    // key00001 is the LRU tail; appending to it must evict key00002 instead.
    let status = store.store(
        b"key00001",
        &[b'w'; 40],
        0,
        0,
        StoreOptions::new(StoreMode::Append),
        START,
    );
    assert_eq!(status.map(|(status, _)| status), Ok(StoreStatus::Stored));
    assert_eq!(
        present(&mut store, &["key00001", "key00002"]),
        [true, false]
    );
    assert_eq!(store.peek(b"key00001", START).unwrap().value().len(), 240);
}

#[test]
fn an_item_larger_than_memory_is_refused() {
    let config = Config {
        memory_limit: 1000,
        ..Config::default()
    };
    let mut session = Session::with_config(config);
    let value = "v".repeat(2000);
    assert_eq!(
        session.send(&format!("set k 0 0 2000\r\n{value}\r\n")),
        "SERVER_ERROR out of memory storing object\r\n"
    );
    assert_eq!(session.store.global_stats().store_no_memory, 1);
}

#[test]
fn without_evictions_a_full_store_refuses_new_items() {
    let config = Config {
        memory_limit: 3 * CHUNK,
        evictions: false,
        ..Config::default()
    };
    let mut session = Session::with_config(config);
    let value = "v".repeat(200);
    let mut replies = String::new();
    for index in 0..5 {
        replies.push_str(&session.send(&format!("set key{index:05} 0 0 200\r\n{value}\r\n")));
    }
    assert_eq!(
        replies,
        "STORED\r\nSTORED\r\nSTORED\r\nSERVER_ERROR out of memory storing object\r\n\
         SERVER_ERROR out of memory storing object\r\n"
    );
    // The oldest items are all still there, and replacing one in place still works.
    assert_eq!(session.send("get key00000\r\n").matches("VALUE").count(), 1);
    assert_eq!(
        session.send(&format!("set key00000 0 0 200\r\n{value}\r\n")),
        "STORED\r\n"
    );
    assert!(session
        .send("stats settings\r\n")
        .contains("STAT evictions off\r\n"));
}

#[test]
fn a_set_that_cannot_be_stored_removes_the_old_value() {
    let config = Config {
        memory_limit: 2 * CHUNK,
        evictions: false,
        ..Config::default()
    };
    let mut session = Session::with_config(config);
    let value = "v".repeat(200);
    session.send(&format!(
        "set key00000 0 0 200\r\n{value}\r\nset key00001 0 0 200\r\n{value}\r\n"
    ));
    // Growing key00001 past the limit fails, and memcached then drops the old value.
    let bigger = "v".repeat(400);
    assert_eq!(
        session.send(&format!(
            "set key00001 0 0 400\r\n{bigger}\r\nget key00001\r\n"
        )),
        "SERVER_ERROR out of memory storing object\r\nEND\r\n"
    );
}

#[test]
fn a_long_run_stays_within_the_limit_and_keeps_the_newest_items() {
    let config = Config {
        memory_limit: 1024 * 1024,
        ..Config::default()
    };
    let mut store = Store::new(config, START);
    for index in 0..20_000 {
        set(&mut store, &format!("key{index:05}"), START).unwrap();
        assert!(store.charged_bytes() <= 1024 * 1024);
    }
    let capacity = 1024 * 1024 / CHUNK;
    assert_eq!(store.len(), capacity);
    assert!(store
        .peek(format!("key{:05}", 20_000 - capacity).as_bytes(), START)
        .is_some());
    assert!(store
        .peek(format!("key{:05}", 19_999 - capacity).as_bytes(), START)
        .is_none());
}
