//! One entry point that runs every parser of this crate on arbitrary bytes and checks the
//! properties the virtualiser relies on. Used by the cargo-fuzz target (`fuzz/`) and by the
//! mutation smoke test (`tests/mutate.rs`) that runs with plain `cargo test`.

use crate::arp;
use crate::flow::{FlowTable, Protocol};
use crate::parse::{parse, Payload};
use crate::policy::check_transmit;

/// The virtualiser parses only the first `HEADER_COPY` bytes it copies out of a buffer.
pub const HEADER_COPY: usize = 128;

/// Runs the parsers on `frame` (and on its header prefix); panics if a property breaks.
pub fn exercise(frame: &[u8], table: &FlowTable) {
    let full = parse(frame, frame.len());
    // Routing sees only a prefix of the frame plus its real length: it must reach exactly the
    // same verdict as a parser that sees the whole frame.
    let prefix = &frame[..frame.len().min(HEADER_COPY)];
    let partial = parse(prefix, frame.len());
    assert_eq!(full, partial, "prefix parse differs from full parse");
    // A declared length longer than the bytes given must never be trusted past them.
    for cut in [0usize, 13, 14, 20, 33, 34, 41, 42, 53, 54] {
        if cut < frame.len() {
            let _ = parse(&frame[..cut], frame.len());
        }
    }
    if let Ok(f) = full {
        match f.payload {
            Payload::Ipv4(ip) => {
                if ip.ports.is_some() {
                    assert!(Protocol::from_ip(ip.protocol).is_some(), "ports only for UDP and TCP");
                }
            }
            Payload::Arp(a) => {
                if let Some(reply) = arp::reply(&a, [2, 0, 0, 0, 0, 1], a.target_ip) {
                    let r = parse(&reply, reply.len()).expect("our ARP reply parses");
                    assert!(matches!(r.payload, Payload::Arp(_)));
                }
            }
            Payload::Other(_) => {}
        }
    }
    for tenant in 0..2 {
        let _ = check_transmit(prefix, frame.len(), tenant, [0x52, 0x54, 0, 0x12, 0x34, 0x56], [10, 0, 2, 15], table);
    }
}

/// A table with a few routes, for [`exercise`].
pub fn sample_table() -> FlowTable {
    let mut t = FlowTable::new(2);
    for (protocol, port, tenant) in [(Protocol::Udp, 7001, 0), (Protocol::Tcp, 7001, 0), (Protocol::Udp, 7002, 1)] {
        t.install_port(protocol, port, tenant).expect("fresh table");
    }
    t
}
