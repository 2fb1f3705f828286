//! The meta protocol: `mg`, `ms`, `md`, `ma`, `me`, `mn` and their flags. Expected replies are
//! memcached 1.6.18's for the same input.

mod common;

use common::Session;

#[test]
fn mn_is_a_static_reply() {
    let mut session = Session::new();
    assert_eq!(session.send("mn\r\nmn x\r\n"), "MN\r\nMN\r\n");
}

#[test]
fn mg_returns_requested_flags_in_order() {
    let mut session = Session::new();
    session.send("set a 0 0 1\r\nx\r\n");
    assert_eq!(session.send("mg a\r\n"), "HD\r\n");
    assert_eq!(session.send("mg a v\r\n"), "VA 1\r\nx\r\n");
    assert_eq!(
        session.send("mg a k Oabc v c f t s\r\n"),
        "VA 1 ka Oabc c1 f0 t-1 s1\r\nx\r\n"
    );
    assert_eq!(session.send("mg a s v f\r\n"), "VA 1 s1 f0\r\nx\r\n");
    assert_eq!(
        session.send("mg a P L\r\n"),
        "HD\r\n",
        "P and L are ignored"
    );
    assert_eq!(session.send("mg a O\r\n"), "HD O\r\n");
}

#[test]
fn mg_misses_and_quiet_mode() {
    let mut session = Session::new();
    assert_eq!(session.send("mg zz\r\n"), "EN\r\n");
    assert_eq!(session.send("mg zz k Oabc v\r\n"), "EN kzz Oabc\r\n");
    assert_eq!(session.send("mg zz q\r\nmg zz q v\r\nmn\r\n"), "MN\r\n");
    session.send("set a 0 0 1\r\n1\r\n");
    // q hides misses only.
    assert_eq!(
        session.send("mg a v q k O1\r\nmg zz v q k O1\r\nmn\r\n"),
        "VA 1 ka O1\r\n1\r\nMN\r\n"
    );
}

#[test]
fn mg_hit_and_last_access_report_the_state_before_the_command() {
    let mut session = Session::new();
    session.send("ms c 1 T5\r\n1\r\n");
    assert_eq!(session.send("mg c t h l\r\n"), "HD t5 h0 l0\r\n");
    assert_eq!(session.send("mg c h l u\r\n"), "HD h1 l0\r\n");
    session.send("ms d 1\r\n1\r\n");
    // u does not mark the item fetched.
    assert_eq!(
        session.send("mg d h u\r\nmg d h\r\nmg d h\r\n"),
        "HD h0\r\nHD h0\r\nHD h1\r\n"
    );
    session.advance(3);
    assert_eq!(session.send("mg c t\r\n"), "HD t2\r\n");
}

#[test]
fn mg_t_updates_ttl_in_flag_order() {
    let mut session = Session::new();
    session.send("set c 0 0 1\r\nx\r\n");
    assert_eq!(
        session.send("mg c T10 t\r\nmg c t T20\r\nmg c t\r\n"),
        "HD t10\r\nHD t10\r\nHD t20\r\n"
    );
    assert_eq!(session.send("mg c T-1\r\nmg c\r\n"), "HD\r\nEN\r\n");
}

#[test]
fn mg_vivify_and_recache_tokens() {
    let mut session = Session::new();
    assert_eq!(
        session.send("mg nx N30 v c t s\r\n"),
        "VA 0 c1 t30 s0 W\r\n\r\n"
    );
    assert_eq!(
        session.send("mg nx v c t s\r\n"),
        "VA 0 c1 t30 s0 Z\r\n\r\n"
    );
    assert_eq!(session.send("mg nx v N30\r\n"), "VA 0 Z\r\n\r\n");
    assert_eq!(
        session.send("ms nx 2\r\nok\r\nmg nx v\r\n"),
        "HD\r\nVA 2\r\nok\r\n"
    );
    session.send("ms r 1 T100\r\nr\r\n");
    assert_eq!(session.send("mg r R30 v\r\n"), "VA 1\r\nr\r\n");
    assert_eq!(session.send("mg r R200 v t\r\n"), "VA 1 t100 W\r\nr\r\n");
    assert_eq!(session.send("mg r R200 v t\r\n"), "VA 1 t100 Z\r\nr\r\n");
}

#[test]
fn md_invalidate_marks_stale_and_hands_out_one_token() {
    let mut session = Session::new();
    session.send("ms s 1\r\ns\r\n");
    assert_eq!(session.send("md s I T30\r\n"), "HD\r\n");
    assert_eq!(session.send("mg s v c t\r\n"), "VA 1 c2 t30 X W\r\ns\r\n");
    assert_eq!(session.send("mg s v c\r\n"), "VA 1 c2 Z X\r\ns\r\n");
    // An older CAS is refused without I, accepted with I (still stale, TTL kept).
    assert_eq!(session.send("ms s 1 C1\r\nz\r\n"), "EX\r\n");
    assert_eq!(
        session.send("ms s 1 I C1\r\nq\r\nmg s v c t\r\n"),
        "HD\r\nVA 1 c3 t30 Z X\r\nq\r\n"
    );
    // A newer CAS is refused either way; a matching one stores a fresh item.
    assert_eq!(session.send("ms s 1 I C99\r\nq\r\n"), "EX\r\n");
    assert_eq!(
        session.send("ms s 1 C3\r\nf\r\nmg s v\r\n"),
        "HD\r\nVA 1\r\nf\r\n"
    );
}

#[test]
fn ms_modes_and_return_flags() {
    let mut session = Session::new();
    assert_eq!(
        session.send("ms m 2 T0 F5 c k O123\r\nhi\r\n"),
        "HD c1 km O123\r\n"
    );
    assert_eq!(session.send("mg m v f c\r\n"), "VA 2 f5 c1\r\nhi\r\n");
    assert_eq!(session.send("ms m 2 q ME\r\nhi\r\n"), "NS\r\n");
    assert_eq!(
        session.send("ms zz 2 q MR\r\nhh\r\nms zz 2 q MA\r\nhh\r\n"),
        "NS\r\nNS\r\n"
    );
    assert_eq!(
        session.send("ms m 2 q MA\r\nkk\r\nms m 2 MP\r\nzz\r\nmg m v f\r\n"),
        "HD\r\nVA 6 f5\r\nzzhikk\r\n"
    );
    assert_eq!(session.send("ms m 2 MS q\r\nab\r\nmn\r\n"), "MN\r\n");
    assert_eq!(session.send("ms m 2 C1 c\r\nhi\r\n"), "EX c0\r\n");
    assert_eq!(
        session.send("ms nx 2 C9\r\nhi\r\nms nx 2 C9 MA\r\nhi\r\nms nx 2 C9 ME\r\nhi\r\n"),
        "NF\r\nNS\r\nHD\r\n"
    );
    assert_eq!(session.send("ms m 2 T-1\r\nhi\r\nmg m\r\n"), "HD\r\nEN\r\n");
}

#[test]
fn ms_errors_swallow_the_data_block() {
    let mut session = Session::new();
    assert_eq!(
        session.send("ms m 2 MX\r\nhi\r\n"),
        "CLIENT_ERROR invalid mode for ms M token\r\n"
    );
    assert_eq!(
        session.send("ms m 2 MEE\r\nhi\r\n"),
        "CLIENT_ERROR incorrect length for M token\r\n"
    );
    assert_eq!(
        session.send("ms m 2 zz\r\nhi\r\n"),
        "CLIENT_ERROR invalid flag\r\n"
    );
    assert_eq!(
        session.send("ms m 2 T1 T2\r\nhi\r\n"),
        "CLIENT_ERROR duplicate flag\r\n"
    );
    assert_eq!(
        session.send("ms m 2 Fabc\r\nhi\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        session.send("ms m 2 Tabc\r\nhi\r\n"),
        "CLIENT_ERROR bad token in command line format\r\n"
    );
    let opaque = "x".repeat(32);
    assert_eq!(
        session.send(&format!("ms m 2 O{opaque}\r\nhi\r\n")),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(
        session.send("ms m 2 b\r\nhi\r\n"),
        "CLIENT_ERROR error decoding key\r\n"
    );
    // Header errors before the length is known do not swallow.
    assert_eq!(
        session.send("ms m\r\nhi\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    assert_eq!(
        session.send("ms m abc\r\nhi\r\n"),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    // Bad data chunks are reported even with q.
    assert_eq!(
        session.send("ms m 2 q\r\nhix\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
}

#[test]
fn binary_keys_in_base64() {
    let mut session = Session::new();
    assert_eq!(
        session.send("ms bWs= 2 b k c\r\nhi\r\n"),
        "HD kbWs= b c1\r\n"
    );
    assert_eq!(session.send("mg bWs= b k v\r\n"), "VA 2 kbWs= b\r\nhi\r\n");
    // The item remembers that its key was binary.
    assert_eq!(session.send("mg mk v k\r\n"), "VA 2 kbWs= b\r\nhi\r\n");
    assert_eq!(session.send("get mk\r\n"), "VALUE mk 0 2\r\nhi\r\nEND\r\n");
    assert!(session
        .send("me bWs= b\r\n")
        .starts_with("ME bWs= exp=-1 la=0 cas=1 fetch=yes cls=1 size=63\r\n"));
    assert_eq!(
        session.send("md bWs= b k\r\nmg bWs= b k v\r\n"),
        "HD kbWs= b\r\nEN kbWs= b\r\n"
    );
    assert_eq!(
        session.send("mg !!!! b k\r\n"),
        "CLIENT_ERROR error decoding key\r\n"
    );
}

#[test]
fn mg_flag_errors() {
    let mut session = Session::new();
    session.send("set c 0 0 1\r\nx\r\n");
    for (flags, error) in [
        ("v v", "duplicate flag"),
        ("x", "invalid flag"),
        ("N", "bad token in command line format"),
        ("Cx", "bad token in command line format"),
        ("Fx", "bad command line format"),
        ("Mxx", "incorrect length for M token"),
        ("Jx", "invalid numeric initial value"),
        ("Dx", "invalid numeric delta value"),
        (
            "a b c d e f g h i j k l m n o p q r",
            "options flags are too long",
        ),
    ] {
        assert_eq!(
            session.send(&format!("mg c {flags}\r\n")),
            format!("CLIENT_ERROR {error}\r\n"),
            "{flags}"
        );
    }
    assert_eq!(
        session.send(&format!("mg c O{}\r\n", "x".repeat(32))),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(session.send("mg c F7 C9 MS I\r\nmg\r\n"), "HD\r\nERROR\r\n");
}

#[test]
fn md_delete_cas_and_quiet() {
    let mut session = Session::new();
    session.send("ms s 1\r\ns\r\n");
    assert_eq!(session.send("md s C9\r\n"), "EX\r\n");
    assert_eq!(
        session.send("md s q\r\nmd s q\r\nmd s k O5\r\nmn\r\n"),
        "NF\r\nNF ks O5\r\nMN\r\n"
    );
    session.send("ms s 1\r\ns\r\n");
    assert_eq!(session.send("md s C2 q\r\nmg s\r\n"), "EN\r\n");
    assert_eq!(
        session.send("md s x\r\nmd s Tx\r\n"),
        "CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n"
    );
    assert_eq!(session.send("md nx I\r\n"), "NF\r\n");
}

#[test]
fn ma_arithmetic() {
    let mut session = Session::new();
    assert_eq!(session.send("ma c\r\n"), "NF\r\n");
    assert_eq!(session.send("ma c N0 J10\r\n"), "HD\r\n");
    assert_eq!(session.send("ma c v\r\n"), "VA 2\r\n11\r\n");
    assert_eq!(session.send("ma c MD D3 v\r\n"), "VA 1\r\n8\r\n");
    assert_eq!(
        session.send("ma c M- v\r\nma c M+ v\r\n"),
        "VA 1\r\n7\r\nVA 1\r\n8\r\n"
    );
    assert_eq!(
        session.send("ma c Mi v\r\n"),
        "CLIENT_ERROR invalid mode for ma M token\r\n"
    );
    assert_eq!(session.send("ma c q\r\nma c q v\r\nmn\r\n"), "MN\r\n");
    assert_eq!(session.send("mg c v\r\n"), "VA 2\r\n10\r\n");
    assert_eq!(
        session.send("ma c v T50 t\r\nma c v t T60\r\nma c v t\r\n"),
        "VA 2 t50\r\n11\r\nVA 2 t50\r\n12\r\nVA 2 t60\r\n13\r\n"
    );
    assert_eq!(session.send("ma c C999 v\r\n"), "EX\r\n");
    assert_eq!(session.send("ma zz Oab k\r\n"), "NF Oab kzz\r\n");
    assert_eq!(
        session.send("ma cx q N0\r\nma cx v\r\n"),
        "HD\r\nVA 1\r\n1\r\n",
        "creation is reported even with q"
    );
    assert_eq!(
        session.send("ma c Dabc\r\nma c D\r\n"),
        "CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n"
    );
    session.send("ms t 3\r\nabc\r\n");
    assert_eq!(
        session.send("ma t\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    session.send("set n 0 0 2\r\n10\r\n");
    assert_eq!(
        session.send("ma n MD D20 v\r\nma n D18446744073709551615 v\r\n"),
        "VA 1\r\n0\r\nVA 20\r\n18446744073709551615\r\n"
    );
}

#[test]
fn me_dumps_metadata() {
    let mut session = Session::new();
    session.send("ms c 1 T5\r\n1\r\n");
    assert_eq!(
        session.send("me c\r\n"),
        "ME c exp=-5 la=0 cas=1 fetch=no cls=1 size=61\r\n"
    );
    assert_eq!(
        session.send("me zz\r\nme\r\nme c b\r\n"),
        "EN\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        session.store.global_stats().cmd_meta,
        2,
        "malformed `me` commands are not counted"
    );
}
