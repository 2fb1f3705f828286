//! Expiry times (relative, absolute, negative), `flush_all` with and without a delay, lazy
//! removal on access and the periodic crawler, all with an injected clock.

mod common;

use common::{Session, START};
use memcached::{Config, Store, StoreMode, StoreOptions};

#[test]
fn relative_expiry_counts_from_now() {
    let mut session = Session::new();
    session.send("set k 0 10 1\r\nv\r\n");
    session.advance(9);
    assert_eq!(session.send("get k\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    session.advance(1);
    assert_eq!(
        session.send("get k\r\n"),
        "END\r\n",
        "expired at exactly now + exptime"
    );
    assert_eq!(session.store.global_stats().get_expired, 1);
}

#[test]
fn thirty_days_is_the_largest_relative_time() {
    let mut session = Session::new();
    let thirty_days = 60 * 60 * 24 * 30;
    session.send(&format!("set rel 0 {thirty_days} 1\r\nv\r\n"));
    assert_eq!(
        session.send("mg rel t\r\n"),
        format!("HD t{thirty_days}\r\n")
    );
    // One more second is an absolute unix time in 1970: already past.
    session.send(&format!("set abs 0 {} 1\r\nv\r\n", thirty_days + 1));
    assert_eq!(session.send("get abs\r\n"), "END\r\n");
}

#[test]
fn absolute_expiry_is_a_unix_time() {
    let mut session = Session::new();
    session.send(&format!("set k 0 {} 1\r\nv\r\n", START + 100));
    assert_eq!(session.send("mg k t\r\n"), "HD t100\r\n");
    session.advance(99);
    assert_eq!(session.send("get k\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    session.advance(1);
    assert_eq!(session.send("get k\r\n"), "END\r\n");
    session.send(&format!("set past 0 {} 1\r\nv\r\n", START - 5));
    assert_eq!(session.send("get past\r\n"), "END\r\n");
}

#[test]
fn negative_expiry_is_immediately_expired() {
    let mut session = Session::new();
    assert_eq!(
        session.send("set k 0 -1 1\r\nv\r\nget k\r\n"),
        "STORED\r\nEND\r\n"
    );
    session.send("set k 0 0 1\r\nv\r\n");
    assert_eq!(
        session.send("touch k -1\r\nget k\r\n"),
        "TOUCHED\r\nEND\r\n"
    );
}

#[test]
fn zero_never_expires_and_touch_can_clear_expiry() {
    let mut session = Session::new();
    session.send("set k 0 5 1\r\nv\r\n");
    session.send("touch k 0\r\n");
    session.advance(1_000_000);
    assert_eq!(session.send("mg k t v\r\n"), "VA 1 t-1\r\nv\r\n");
}

#[test]
fn expired_items_cannot_be_replaced_appended_or_incremented() {
    let mut session = Session::new();
    session.send("set k 0 1 1\r\n1\r\n");
    session.advance(1);
    assert_eq!(session.send("replace k 0 0 1\r\n2\r\n"), "NOT_STORED\r\n");
    assert_eq!(session.send("append k 0 0 1\r\n2\r\n"), "NOT_STORED\r\n");
    assert_eq!(session.send("incr k 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(
        session.send("add k 0 0 1\r\n3\r\nget k\r\n"),
        "STORED\r\nVALUE k 0 1\r\n3\r\nEND\r\n"
    );
}

#[test]
fn flush_all_now_invalidates_everything_stored_before() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n");
    assert_eq!(session.send("flush_all\r\nget a b\r\n"), "OK\r\nEND\r\n");
    // Items stored after the flush, even in the same second, are live.
    assert_eq!(
        session.send("set a 0 0 1\r\n3\r\nget a\r\n"),
        "STORED\r\nVALUE a 0 1\r\n3\r\nEND\r\n"
    );
    assert_eq!(session.store.global_stats().get_flushed, 2);
}

#[test]
fn flush_all_with_delay_takes_effect_later() {
    // memcached's flush time is `now + delay - 1`: from then on, items stored at or before it
    // are invalid (including items stored during that very second).
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\n");
    assert_eq!(session.send("flush_all 10\r\n"), "OK\r\n");
    session.advance(5);
    session.send("set b 0 0 1\r\n2\r\n");
    session.advance(3);
    assert_eq!(
        session.send("get a b\r\n"),
        "VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\n"
    );
    session.advance(1);
    assert_eq!(session.send("get a b\r\n"), "END\r\n");
    assert_eq!(
        session.send("set c 0 0 1\r\n3\r\nget c\r\n"),
        "STORED\r\nEND\r\n"
    );
    session.advance(1);
    assert_eq!(
        session.send("set c 0 0 1\r\n3\r\nget c\r\n"),
        "STORED\r\nVALUE c 0 1\r\n3\r\nEND\r\n"
    );
}

#[test]
fn flush_all_with_an_absolute_time() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\n");
    session.send(&format!("flush_all {}\r\n", START + 3));
    session.advance(1);
    assert_eq!(session.send("get a\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
    session.advance(1);
    assert_eq!(session.send("get a\r\n"), "END\r\n");
}

#[test]
fn a_negative_flush_delay_flushes_now() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\n");
    assert_eq!(session.send("flush_all -5\r\nget a\r\n"), "OK\r\nEND\r\n");
}

#[test]
fn a_later_flush_replaces_a_pending_one() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\nflush_all 5\r\nflush_all 100\r\n");
    session.advance(10);
    assert_eq!(session.send("get a\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
}

#[test]
fn crawler_removes_expired_items_in_bounded_steps() {
    let mut store = Store::new(Config::default(), START);
    for index in 0..100 {
        let exptime = if index % 2 == 0 { 10 } else { 0 };
        store
            .store(
                format!("k{index}").as_bytes(),
                b"v",
                0,
                exptime,
                StoreOptions::new(StoreMode::Set),
                START,
            )
            .unwrap();
    }
    let bytes_before = store.bytes();
    assert_eq!(store.crawl(START + 5, 1000), 0, "nothing has expired yet");
    let later = START + 10;
    let mut removed = 0;
    let mut calls = 0;
    while removed < 50 {
        let step = store.crawl(later, 7);
        assert!(step <= 7, "one call examines at most its budget");
        removed += step;
        calls += 1;
        assert!(calls < 100, "crawler made no progress");
    }
    assert_eq!(store.len(), 50);
    assert!(store.bytes() < bytes_before);
    assert_eq!(store.crawl(later, 1000), 0);
    let checked: u64 = store
        .class_stats()
        .iter()
        .map(|class| class.crawler_reclaimed)
        .sum();
    assert_eq!(checked, 50);
}

#[test]
fn crawler_also_removes_flushed_items() {
    let mut store = Store::new(Config::default(), START);
    for index in 0..10 {
        store
            .store(
                format!("k{index}").as_bytes(),
                b"v",
                0,
                0,
                StoreOptions::new(StoreMode::Set),
                START,
            )
            .unwrap();
    }
    store.flush_all(0, START);
    assert_eq!(store.crawl(START, 100), 10);
    assert!(store.is_empty());
    assert_eq!(store.bytes(), 0);
    assert_eq!(store.charged_bytes(), 0);
}

#[test]
fn expired_items_are_reclaimed_before_live_ones_are_evicted() {
    // Room for about four 1 KiB items (1184-byte chunks).
    let config = Config {
        memory_limit: 4 * 1184,
        ..Config::default()
    };
    let mut session = Session::with_config(config);
    let value = "v".repeat(1000);
    session.send(&format!("set old 0 5 1000\r\n{value}\r\n"));
    for key in ["a", "b", "c"] {
        session.send(&format!("set {key} 0 0 1000\r\n{value}\r\n"));
    }
    session.advance(5);
    session.send(&format!("set d 0 0 1000\r\n{value}\r\n"));
    let stats = session.send("stats\r\n");
    assert!(stats.contains("STAT reclaimed 1\r\n"), "{stats}");
    assert!(stats.contains("STAT evictions 0\r\n"), "{stats}");
    assert!(session.send("get a b c d\r\n").matches("VALUE").count() == 4);
}
