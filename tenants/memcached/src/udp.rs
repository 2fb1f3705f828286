//! memcached's UDP protocol: each datagram carries an 8-byte frame header and then text or meta
//! protocol bytes.
//!
//! The header is four big-endian 16-bit fields: request id, sequence number, total number of
//! datagrams, and a reserved 0. A request must fit in one datagram (memcached drops requests
//! that announce more than one, and so do we). The reply to a request is one message: its bytes
//! are cut into datagrams of at most [`MAX_DATAGRAM`] bytes including the header, numbered
//! `0..total`, all carrying the request id, so a client reassembles them by sequence number.
//!
//! Each datagram is a complete, independent request: commands are executed as over TCP, and a
//! command left incomplete at the end of the datagram is dropped (there is no stream to
//! continue it from).

use alloc::vec::Vec;

use crate::conn::Connection;
use crate::store::Store;

/// The size of the frame header.
pub const HEADER_SIZE: usize = 8;

/// The largest reply datagram, header included (memcached's `UDP_MAX_PAYLOAD_SIZE`).
pub const MAX_DATAGRAM: usize = 1400;

/// The most reply bytes one datagram carries.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_SIZE;

/// The frame header of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Chosen by the client; echoed in every reply datagram.
    pub request_id: u16,
    /// This datagram's position in its message, from 0.
    pub sequence: u16,
    /// How many datagrams the message has.
    pub total: u16,
    /// Must be 0.
    pub reserved: u16,
}

impl FrameHeader {
    /// Reads the header at the start of `datagram`, if it is long enough.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        let field = |index: usize| -> Option<u16> {
            let bytes = datagram.get(index * 2..index * 2 + 2)?;
            Some(u16::from_be_bytes([bytes[0], bytes[1]]))
        };
        Some(Self {
            request_id: field(0)?,
            sequence: field(1)?,
            total: field(2)?,
            reserved: field(3)?,
        })
    }

    /// The header's 8 bytes.
    pub fn to_bytes(self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0; HEADER_SIZE];
        for (index, value) in [self.request_id, self.sequence, self.total, self.reserved]
            .into_iter()
            .enumerate()
        {
            bytes[index * 2..index * 2 + 2].copy_from_slice(&value.to_be_bytes());
        }
        bytes
    }
}

/// The reply sent when a reply would need more datagrams than the header can number.
const REPLY_TOO_LARGE: &[u8] = b"SERVER_ERROR response too large for UDP\r\n";

/// Answers one request datagram received at unix time `now`: returns the reply datagrams to
/// send back, in order (none for a request with no reply, or one that is not a valid
/// single-datagram request: shorter than the header plus one byte, or announcing several
/// datagrams).
pub fn handle_datagram(datagram: &[u8], store: &mut Store, now: u32) -> Vec<Vec<u8>> {
    let Some(header) = FrameHeader::parse(datagram) else {
        return Vec::new();
    };
    if datagram.len() <= HEADER_SIZE || header.total != 1 {
        return Vec::new();
    }
    let mut reply = Vec::new();
    let mut connection = Connection::new();
    // `quit` means nothing without a connection; the reply so far is still sent.
    let _ = connection.feed(&datagram[HEADER_SIZE..], store, now, &mut reply);
    frame_reply(header.request_id, &reply)
}

/// Cuts `reply` into framed datagrams for request `request_id`.
pub fn frame_reply(request_id: u16, reply: &[u8]) -> Vec<Vec<u8>> {
    if reply.is_empty() {
        return Vec::new();
    }
    let chunks = reply.chunks(MAX_PAYLOAD);
    let Ok(total) = u16::try_from(chunks.len()) else {
        return frame_reply(request_id, REPLY_TOO_LARGE);
    };
    chunks
        .enumerate()
        .map(|(sequence, chunk)| {
            let header = FrameHeader {
                request_id,
                sequence: sequence as u16,
                total,
                reserved: 0,
            };
            let mut datagram = Vec::with_capacity(HEADER_SIZE + chunk.len());
            datagram.extend_from_slice(&header.to_bytes());
            datagram.extend_from_slice(chunk);
            datagram
        })
        .collect()
}
