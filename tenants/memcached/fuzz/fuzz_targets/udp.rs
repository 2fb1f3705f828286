//! Fuzz target: UDP request datagrams into `udp::handle_datagram`.
//!
//! Input: one configuration byte (`common::config`, as in the `stream` target: memory limit,
//! evictions, strict keys, item size and `get` line limits), then datagrams, each as a
//! big-endian 16-bit length and that many bytes (frame header included; the last one takes
//! what is left). The clock moves a second per datagram.
//!
//! Checks, beyond "nothing panics": every reply datagram is at most `MAX_DATAGRAM` bytes, has a
//! payload, carries the request id, sequence `0..n` of `n` and reserved 0; requests without a
//! valid single-datagram header get no reply; and the reassembled reply is byte for byte what a
//! fresh TCP connection to a twin store answers to the same payload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use memcached::udp::{self, FrameHeader, HEADER_SIZE, MAX_DATAGRAM};
use memcached::{Connection, Store};

mod common;

use common::{config, START};

fuzz_target!(|data: &[u8]| {
    let Some((&config_byte, mut rest)) = data.split_first() else {
        return;
    };
    let config = config(config_byte);
    let mut store = Store::new(config, START);
    let mut twin = Store::new(config, START);
    let mut now = START;
    while rest.len() >= 2 {
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let datagram = &rest[2..2 + length];
        rest = &rest[2 + length..];
        now += 1;

        let replies = udp::handle_datagram(datagram, &mut store, now);
        assert!(store.charged_bytes() <= config.memory_limit);

        let header = FrameHeader::parse(datagram);
        if let Some(header) = header {
            assert_eq!(FrameHeader::parse(&header.to_bytes()), Some(header));
        }
        let valid = header.filter(|header| header.total == 1 && datagram.len() > HEADER_SIZE);
        let Some(header) = valid else {
            assert!(replies.is_empty(), "reply to an invalid request");
            continue;
        };
        let mut expected = Vec::new();
        let _ = Connection::new().feed(&datagram[HEADER_SIZE..], &mut twin, now, &mut expected);

        let total = replies.len();
        let mut reassembled = Vec::new();
        for (sequence, reply) in replies.iter().enumerate() {
            assert!(
                reply.len() > HEADER_SIZE && reply.len() <= MAX_DATAGRAM,
                "datagram of {} bytes",
                reply.len()
            );
            let got = FrameHeader::parse(reply).unwrap();
            assert_eq!(
                got,
                FrameHeader {
                    request_id: header.request_id,
                    sequence: sequence as u16,
                    total: total as u16,
                    reserved: 0
                }
            );
            if sequence + 1 < total {
                assert_eq!(
                    reply.len(),
                    MAX_DATAGRAM,
                    "only the last datagram may be short"
                );
            }
            reassembled.extend_from_slice(&reply[HEADER_SIZE..]);
        }
        assert!(
            reassembled == expected,
            "UDP reply differs from the TCP reply"
        );
        assert!(reassembled.is_empty() || reassembled.ends_with(b"\r\n"));
    }
});
