//! The UDP frame header, reply splitting and the requests that are dropped.

mod common;

use common::START;
use memcached::udp::{
    frame_reply, handle_datagram, FrameHeader, HEADER_SIZE, MAX_DATAGRAM, MAX_PAYLOAD,
};
use memcached::{Config, Store};

fn request(id: u16, total: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = FrameHeader {
        request_id: id,
        sequence: 0,
        total,
        reserved: 0,
    }
    .to_bytes()
    .to_vec();
    datagram.extend_from_slice(payload);
    datagram
}

/// Checks the framing of `datagrams` and returns the reassembled reply.
fn reassemble(id: u16, datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut reply = Vec::new();
    for (index, datagram) in datagrams.iter().enumerate() {
        assert!(datagram.len() <= MAX_DATAGRAM);
        assert!(datagram.len() > HEADER_SIZE);
        let header = FrameHeader::parse(datagram).unwrap();
        assert_eq!(
            header,
            FrameHeader {
                request_id: id,
                sequence: index as u16,
                total: datagrams.len() as u16,
                reserved: 0
            }
        );
        reply.extend_from_slice(&datagram[HEADER_SIZE..]);
    }
    reply
}

#[test]
fn header_round_trips_in_network_order() {
    let header = FrameHeader {
        request_id: 0x1234,
        sequence: 2,
        total: 3,
        reserved: 0,
    };
    assert_eq!(header.to_bytes(), [0x12, 0x34, 0, 2, 0, 3, 0, 0]);
    assert_eq!(FrameHeader::parse(&header.to_bytes()), Some(header));
    assert_eq!(FrameHeader::parse(&[1, 2, 3]), None);
}

#[test]
fn small_replies_fit_one_datagram() {
    let mut store = Store::new(Config::default(), START);
    let replies = handle_datagram(
        &request(7, 1, b"set k 0 0 1\r\nv\r\nget k\r\n"),
        &mut store,
        START,
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(
        reassemble(7, &replies),
        b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    );
}

#[test]
fn large_replies_are_split_and_numbered() {
    let mut store = Store::new(Config::default(), START);
    let value = vec![b'z'; 3000];
    let mut set = b"set u 0 0 3000\r\n".to_vec();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(
        reassemble(1, &handle_datagram(&request(1, 1, &set), &mut store, START)),
        b"STORED\r\n"
    );
    let replies = handle_datagram(&request(0xbeef, 1, b"get u u\r\n"), &mut store, START);
    let reply = reassemble(0xbeef, &replies);
    let expected_len = 2 * ("VALUE u 0 3000\r\n".len() + 3002) + 5;
    assert_eq!(reply.len(), expected_len);
    assert_eq!(replies.len(), expected_len.div_ceil(MAX_PAYLOAD));
    assert!(replies[..replies.len() - 1]
        .iter()
        .all(|datagram| datagram.len() == MAX_DATAGRAM));
    assert!(reply.starts_with(b"VALUE u 0 3000\r\nzzz") && reply.ends_with(b"zzz\r\nEND\r\n"));
}

#[test]
fn multi_datagram_and_truncated_requests_are_dropped() {
    let mut store = Store::new(Config::default(), START);
    assert!(handle_datagram(&request(1, 2, b"get k\r\n"), &mut store, START).is_empty());
    assert!(handle_datagram(&request(1, 0, b"get k\r\n"), &mut store, START).is_empty());
    assert!(handle_datagram(&request(1, 1, b""), &mut store, START).is_empty());
    assert!(handle_datagram(&[0, 1, 0], &mut store, START).is_empty());
    // An incomplete command at the end of a datagram is dropped; nothing leaks into the next.
    assert!(handle_datagram(&request(1, 1, b"set w 0 0 5\r\nab"), &mut store, START).is_empty());
    let replies = handle_datagram(&request(2, 1, b"get w\r\n"), &mut store, START);
    assert_eq!(reassemble(2, &replies), b"END\r\n");
}

#[test]
fn noreply_requests_get_no_datagram() {
    let mut store = Store::new(Config::default(), START);
    assert!(handle_datagram(
        &request(3, 1, b"set k 0 0 1 noreply\r\nv\r\n"),
        &mut store,
        START
    )
    .is_empty());
    let replies = handle_datagram(&request(4, 1, b"mn\r\nmg k v\r\n"), &mut store, START);
    assert_eq!(reassemble(4, &replies), b"MN\r\nVA 1\r\nv\r\n");
}

#[test]
fn framing_an_empty_reply_gives_nothing() {
    assert!(frame_reply(1, b"").is_empty());
    assert_eq!(frame_reply(9, &[b'x'; MAX_PAYLOAD]).len(), 1);
    assert_eq!(frame_reply(9, &[b'x'; MAX_PAYLOAD + 1]).len(), 2);
}
