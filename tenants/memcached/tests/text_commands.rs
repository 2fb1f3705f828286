//! The classic text protocol, command by command. Expected replies are what memcached 1.6.18
//! sends for the same input (checked against Debian's memcached by tests/memcached/).

mod common;

use common::Session;
use memcached::Config;

#[test]
fn set_and_get() {
    let mut session = Session::new();
    assert_eq!(session.send("set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
    assert_eq!(session.send("get a\r\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
    assert_eq!(session.send("get nothing\r\n"), "END\r\n");
    assert_eq!(
        session.send("set a 0 0 0\r\n\r\nget a\r\n"),
        "STORED\r\nVALUE a 0 0\r\n\r\nEND\r\n"
    );
}

#[test]
fn multi_get_returns_hits_in_order_and_gets_adds_cas() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\n1\r\nset b 7 0 1\r\n2\r\n");
    assert_eq!(
        session.send("get b zz a b\r\n"),
        "VALUE b 7 1\r\n2\r\nVALUE a 0 1\r\n1\r\nVALUE b 7 1\r\n2\r\nEND\r\n"
    );
    assert_eq!(
        session.send("gets a b\r\n"),
        "VALUE a 0 1 1\r\n1\r\nVALUE b 7 1 2\r\n2\r\nEND\r\n"
    );
}

#[test]
fn flags_are_32_bit_and_truncated_like_memcached() {
    let mut session = Session::new();
    session.send("set a 4294967295 0 1\r\nx\r\n");
    assert_eq!(
        session.send("get a\r\n"),
        "VALUE a 4294967295 1\r\nx\r\nEND\r\n"
    );
    session.send("set a 4294967296 0 1\r\nx\r\n");
    assert_eq!(session.send("get a\r\n"), "VALUE a 0 1\r\nx\r\nEND\r\n");
    assert_eq!(
        session.send("set a -1 0 1\r\nx\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
}

#[test]
fn add_replace_append_prepend() {
    let mut session = Session::new();
    assert_eq!(session.send("add k 1 0 1\r\na\r\n"), "STORED\r\n");
    assert_eq!(session.send("add k 2 0 1\r\nb\r\n"), "NOT_STORED\r\n");
    assert_eq!(
        session.send("replace nope 0 0 1\r\nb\r\n"),
        "NOT_STORED\r\n"
    );
    assert_eq!(session.send("replace k 3 0 1\r\nc\r\n"), "STORED\r\n");
    assert_eq!(session.send("append k 9 0 2\r\nde\r\n"), "STORED\r\n");
    assert_eq!(session.send("prepend k 9 0 2\r\nab\r\n"), "STORED\r\n");
    // append and prepend keep the item's flags.
    assert_eq!(session.send("get k\r\n"), "VALUE k 3 5\r\nabcde\r\nEND\r\n");
    assert_eq!(
        session.send("append nope 0 0 1\r\nx\r\nprepend nope 0 0 1\r\nx\r\n"),
        "NOT_STORED\r\nNOT_STORED\r\n"
    );
}

#[test]
fn cas_compares_the_unique_value() {
    let mut session = Session::new();
    session.send("set k 0 0 1\r\na\r\n");
    assert_eq!(session.send("gets k\r\n"), "VALUE k 0 1 1\r\na\r\nEND\r\n");
    assert_eq!(session.send("cas k 0 0 1 999\r\nb\r\n"), "EXISTS\r\n");
    assert_eq!(session.send("cas k 0 0 1 0\r\nb\r\n"), "EXISTS\r\n");
    assert_eq!(session.send("cas k 4 0 1 1\r\nb\r\n"), "STORED\r\n");
    assert_eq!(session.send("gets k\r\n"), "VALUE k 4 1 2\r\nb\r\nEND\r\n");
    assert_eq!(session.send("cas k 0 0 1 1\r\nc\r\n"), "EXISTS\r\n");
    assert_eq!(session.send("cas nope 0 0 1 1\r\nc\r\n"), "NOT_FOUND\r\n");
    assert_eq!(session.send("cas k 0 0 1\r\nz\r\n"), "ERROR\r\nERROR\r\n");
    assert_eq!(
        session.send("cas k 0 0 1 abc\r\nz\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
}

#[test]
fn delete_accepts_only_a_zero_hold_time() {
    let mut session = Session::new();
    session.send("set k 0 0 1\r\na\r\n");
    assert_eq!(
        session.send("delete k 5\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
    assert_eq!(session.send("delete k 0\r\n"), "DELETED\r\n");
    assert_eq!(session.send("delete k\r\n"), "NOT_FOUND\r\n");
    session.send("set k 0 0 1\r\na\r\n");
    assert_eq!(session.send("delete k 0 noreply\r\nget k\r\n"), "END\r\n");
    assert_eq!(
        session.send("delete k x y\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
    assert_eq!(session.send("delete\r\n"), "ERROR\r\n");
}

#[test]
fn incr_decr_wrap_clamp_and_keep_length() {
    let mut session = Session::new();
    session.send("set n 5 0 3\r\n100\r\n");
    assert_eq!(session.send("decr n 1\r\n"), "99\r\n");
    // A shorter result is written in place and space-padded, as memcached does.
    assert_eq!(session.send("get n\r\n"), "VALUE n 5 3\r\n99 \r\nEND\r\n");
    assert_eq!(session.send("incr n 1\r\n"), "100\r\n");
    assert_eq!(session.send("incr n 900\r\n"), "1000\r\n");
    assert_eq!(session.send("get n\r\n"), "VALUE n 5 4\r\n1000\r\nEND\r\n");
    assert_eq!(session.send("decr n 5000\r\n"), "0\r\n");
    session.send("set n 0 0 20\r\n18446744073709551615\r\n");
    assert_eq!(session.send("incr n 2\r\n"), "1\r\n");
    assert_eq!(
        session.send("get n\r\n"),
        "VALUE n 0 20\r\n1                   \r\nEND\r\n"
    );
}

#[test]
fn incr_decr_errors() {
    let mut session = Session::new();
    assert_eq!(
        session.send("incr none 1\r\ndecr none 1\r\n"),
        "NOT_FOUND\r\nNOT_FOUND\r\n"
    );
    session.send("set s 0 0 3\r\nabc\r\nset e 0 0 0\r\n\r\nset m 0 0 2\r\n-1\r\n");
    for key in ["s", "e", "m"] {
        assert_eq!(
            session.send(&format!("incr {key} 1\r\n")),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        );
    }
    session.send("set n 0 0 1\r\n1\r\n");
    assert_eq!(
        session.send("incr n -1\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    assert_eq!(
        session.send("incr n 18446744073709551616\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    assert_eq!(
        session.send("incr n\r\nincr n 1 2 3\r\n"),
        "ERROR\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("incr n 1 noreply\r\nget n\r\n"),
        "VALUE n 0 1\r\n2\r\nEND\r\n"
    );
}

#[test]
fn incr_gives_a_new_cas() {
    let mut session = Session::new();
    session.send("set n 0 0 1\r\n1\r\n");
    assert_eq!(session.send("gets n\r\n"), "VALUE n 0 1 1\r\n1\r\nEND\r\n");
    session.send("incr n 1\r\n");
    assert_eq!(session.send("gets n\r\n"), "VALUE n 0 1 2\r\n2\r\nEND\r\n");
}

#[test]
fn touch_and_get_and_touch() {
    let mut session = Session::new();
    session.send("set k 0 100 1\r\nv\r\n");
    assert_eq!(session.send("touch k 10\r\n"), "TOUCHED\r\n");
    assert_eq!(session.send("touch none 10\r\n"), "NOT_FOUND\r\n");
    assert_eq!(
        session.send("touch k abc\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    session.advance(11);
    assert_eq!(session.send("get k\r\n"), "END\r\n");
    session.send("set k 0 5 1\r\nv\r\n");
    assert_eq!(
        session.send("gat 100 k none\r\n"),
        "VALUE k 0 1\r\nv\r\nEND\r\n"
    );
    assert_eq!(
        session.send("gats 100 k\r\n"),
        "VALUE k 0 1 2\r\nv\r\nEND\r\n"
    );
    session.advance(50);
    assert_eq!(session.send("get k\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    assert_eq!(
        session.send("gat abc k\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(session.send("gat 100\r\ngat\r\n"), "END\r\nERROR\r\n");
    assert_eq!(
        session.send("gat -1 k\r\nget k\r\n"),
        "VALUE k 0 1\r\nv\r\nEND\r\nEND\r\n"
    );
}

#[test]
fn noreply_suppresses_replies_including_errors() {
    let mut session = Session::new();
    let out = session.send(
        "set a 0 0 1 noreply\r\na\r\nadd a 0 0 1 noreply\r\nb\r\nincr a 1 noreply\r\n\
         touch a 1 noreply\r\ndelete zz noreply\r\nflush_all noreply\r\nverbosity 1 noreply\r\nget a\r\n",
    );
    assert_eq!(out, "END\r\n");
    // A bad data chunk is hidden too; the rest of the line is then read as a command.
    assert_eq!(session.send("set a 0 0 1 noreply\r\nxyz\r\n"), "ERROR\r\n");
}

#[test]
fn malformed_storage_commands() {
    let mut session = Session::new();
    assert_eq!(session.send("set\r\n"), "ERROR\r\n");
    assert_eq!(session.send("set a 0 0\r\nxx\r\n"), "ERROR\r\nERROR\r\n");
    assert_eq!(
        session.send("set a 0 0 -1\r\nx\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("set a 0 0 abc\r\nx\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("set a 0 0 1\r\nxy\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("set a 0 0 3\r\nabcde\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    // An unknown sixth argument is ignored.
    assert_eq!(session.send("set a 0 0 1 junk\r\nx\r\n"), "STORED\r\n");
}

#[test]
fn key_length_limit() {
    let mut session = Session::new();
    let long = "k".repeat(250);
    let too_long = "k".repeat(251);
    assert_eq!(
        session.send(&format!("set {long} 0 0 1\r\nx\r\n")),
        "STORED\r\n"
    );
    assert_eq!(
        session.send(&format!("get {long}\r\n")),
        format!("VALUE {long} 0 1\r\nx\r\nEND\r\n")
    );
    let bad = "CLIENT_ERROR bad command line format\r\n";
    assert_eq!(
        session.send(&format!("set {too_long} 0 0 1\r\nx\r\n")),
        format!("{bad}ERROR\r\n")
    );
    assert_eq!(session.send(&format!("get {long} {too_long}\r\n")), bad);
    for command in [
        "delete K",
        "incr K 1",
        "touch K 1",
        "gat 0 K",
        "mg K v",
        "md K",
        "ma K",
        "me K",
    ] {
        assert_eq!(
            session.send(&format!("{}\r\n", command.replace('K', &too_long))),
            bad,
            "{command}"
        );
    }
}

#[test]
fn control_characters_in_keys_follow_the_configuration() {
    // memcached accepts them (only spaces separate tokens)...
    let mut session = Session::new();
    assert_eq!(
        session.send("set a\tb 0 0 1\r\nx\r\nget a\tb\r\n"),
        "STORED\r\nVALUE a\tb 0 1\r\nx\r\nEND\r\n"
    );
    // ...and strict mode refuses them.
    let mut strict = Session::with_config(Config {
        strict_keys: true,
        ..Config::default()
    });
    assert_eq!(
        strict.send("set a\tb 0 0 1\r\nx\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    assert_eq!(
        strict.send("get a\x01\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn item_size_limit_counts_memcached_overhead() {
    let mut session = Session::new();
    // 1 MiB minus 48 (header) + 8 (CAS) + 4 ("big" and NUL) + 2 (CRLF) = 1048514 bytes of value.
    let fits = 1_048_514;
    let value = "x".repeat(fits + 10);
    let out = session.send(&format!("set big 0 0 {fits}\r\n{}\r\n", &value[..fits]));
    assert_eq!(out, "STORED\r\n");
    let out = session.send(&format!(
        "set big 0 0 {}\r\n{}\r\nget big\r\n",
        fits + 1,
        &value[..fits + 1]
    ));
    // Refused before reading the data, which is discarded; the old item is gone.
    assert_eq!(out, "SERVER_ERROR object too large for cache\r\nEND\r\n");
    // Non-zero flags take 4 more bytes.
    let out = session.send(&format!(
        "set big 1 0 {}\r\n{}\r\n",
        fits - 3,
        &value[..fits - 3]
    ));
    assert_eq!(out, "SERVER_ERROR object too large for cache\r\n");
    // A refused add keeps the existing item.
    session.send("set a 0 0 1\r\nx\r\n");
    let out = session.send(&format!("add a 0 0 {}\r\n{value}\r\nget a\r\n", fits + 10));
    assert_eq!(
        out,
        "SERVER_ERROR object too large for cache\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
    );
    // Growing an item past the limit by appending fails with NOT_STORED.
    let half = &value[..600_000];
    assert_eq!(
        session.send(&format!("set a 0 0 600000\r\n{half}\r\n")),
        "STORED\r\n"
    );
    assert_eq!(
        session.send(&format!("append a 0 0 600000\r\n{half}\r\nmg a s\r\n")),
        "NOT_STORED\r\nHD s600000\r\n"
    );
    assert_eq!(session.store.global_stats().store_too_large, 3);
}

#[test]
fn configurable_item_size_limit() {
    let mut session = Session::with_config(Config {
        item_size_max: 1000,
        ..Config::default()
    });
    let value = "v".repeat(1000);
    assert_eq!(
        session.send(&format!("set k 0 0 1000\r\n{value}\r\n")),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(session.send("set k 0 0 900\r\n"), "");
    assert_eq!(
        session.send(&format!("{}\r\n", &value[..900])),
        "STORED\r\n"
    );
}

#[test]
fn unknown_commands_and_blank_lines() {
    let mut session = Session::new();
    assert_eq!(
        session.send("bogus\r\nGET a\r\n\r\n \r\nx\r\n"),
        "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("mx\r\nm\r\nmgg a\r\n"),
        "ERROR\r\nERROR\r\nERROR\r\n"
    );
    // Bare newlines end lines too.
    assert_eq!(
        session.send("set a 0 0 1\nx\r\nget a\n"),
        "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
    );
    // memcached stops reading a line at a NUL byte.
    assert_eq!(
        session.send_bytes(b"get a\0 junk\r\n"),
        b"VALUE a 0 1\r\nx\r\nEND\r\n"
    );
}

#[test]
fn http_requests_are_dropped() {
    let mut session = Session::new();
    assert_eq!(session.send("GET / HTTP/1.1\r\n"), "");
    assert!(session.closed);
}

#[test]
fn flush_all_variants() {
    let mut session = Session::new();
    assert_eq!(
        session.send(
            "flush_all\r\nflush_all 0\r\nflush_all abc\r\nflush_all -1\r\nflush_all 1 2 3\r\n"
        ),
        "OK\r\nOK\r\nCLIENT_ERROR invalid exptime argument\r\nOK\r\nERROR\r\n"
    );
    assert_eq!(session.store.global_stats().cmd_flush, 4);
}

#[test]
fn verbosity_version_and_quit() {
    let mut session = Session::new();
    assert_eq!(
        session.send(
            "verbosity\r\nverbosity 1\r\nverbosity abc\r\nverbosity 1 2\r\nverbosity 1 2 3\r\n"
        ),
        "ERROR\r\nOK\r\nCLIENT_ERROR bad command line format\r\nOK\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("version\r\nversion x\r\n"),
        "VERSION 1.6.18-edgeos\r\nVERSION 1.6.18-edgeos\r\n"
    );
    assert_eq!(session.send("get a\r\nquit\r\nget a\r\n"), "END\r\n");
    assert!(session.closed);
    assert_eq!(
        session.send("get a\r\n"),
        "",
        "a closed connection ignores input"
    );
}

#[test]
fn stats_reports() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\nx\r\nset bb 1 0 100\r\n");
    session.send(&format!("{}\r\nget a bb zz\r\n", "y".repeat(100)));
    let general = session.send("stats\r\n");
    for line in [
        "STAT cmd_get 3\r\n",
        "STAT cmd_set 2\r\n",
        "STAT get_hits 2\r\n",
        "STAT get_misses 1\r\n",
        "STAT curr_items 2\r\n",
        "STAT total_items 2\r\n",
        "STAT bytes 226\r\n",
        "STAT limit_maxbytes 67108864\r\n",
        "STAT version 1.6.18-edgeos\r\n",
    ] {
        assert!(general.contains(line), "{line} missing from {general}");
    }
    assert!(general.ends_with("END\r\n"));
    let settings = session.send("stats settings\r\n");
    assert!(
        settings.contains("STAT maxbytes 67108864\r\n")
            && settings.contains("STAT item_size_max 1048576\r\n")
    );
    let items = session.send("stats items\r\n");
    assert!(items.starts_with("STAT items:1:number 1\r\n"), "{items}");
    assert!(
        items.contains("STAT items:4:mem_requested 165\r\n"),
        "{items}"
    );
    let slabs = session.send("stats slabs\r\n");
    assert!(
        slabs.starts_with(
            "STAT 1:chunk_size 96\r\nSTAT 1:chunks_per_page 10922\r\nSTAT 1:total_pages 1\r\n"
        ),
        "{slabs}"
    );
    assert!(
        slabs.ends_with("STAT active_slabs 2\r\nSTAT total_malloced 2097152\r\nEND\r\n"),
        "{slabs}"
    );
    assert_eq!(
        session.send("stats sizes\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
    assert_eq!(session.send("stats bogus\r\n"), "ERROR\r\n");
    assert_eq!(session.send("stats reset\r\n"), "RESET\r\n");
    let general = session.send("stats\r\n");
    assert!(general.contains("STAT cmd_get 0\r\n") && general.contains("STAT curr_items 2\r\n"));
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut session = Session::new();
    let mut input = String::new();
    let mut expected = String::new();
    for index in 0..100 {
        input.push_str(&format!(
            "set key{index} {index} 0 {}\r\n{index}\r\n",
            index.to_string().len()
        ));
        expected.push_str("STORED\r\n");
    }
    for index in (0..100).rev() {
        input.push_str(&format!("get key{index}\r\n"));
        expected.push_str(&format!(
            "VALUE key{index} {index} {}\r\n{index}\r\nEND\r\n",
            index.to_string().len()
        ));
    }
    input.push_str("incr key50 1\r\ndelete key1\r\nmn\r\n");
    expected.push_str("51\r\nDELETED\r\nMN\r\n");
    assert_eq!(session.send(&input), expected);
}
