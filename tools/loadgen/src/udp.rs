//! memcached's UDP framing, client side.
//!
//! Every datagram starts with an 8-byte header of four big-endian 16-bit fields: request id,
//! sequence number, total datagrams in the message, and 0. A request is one datagram (sequence
//! 0 of 1) with an id the client picks; the server cuts its reply into datagrams of at most
//! 1400 bytes that all carry that id, numbered from 0, so the client reassembles them by
//! sequence number and can tell replies apart without any ordering.

/// The frame header's size.
pub const HEADER_LEN: usize = 8;

/// The largest request datagram memcached reads (its UDP read buffer is 64 KiB); a `set` whose
/// value would not fit cannot be sent over UDP.
pub const MAX_REQUEST: usize = 65_507;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Chosen by the client, echoed in every reply datagram.
    pub request_id: u16,
    /// This datagram's place in the message, from 0.
    pub sequence: u16,
    /// How many datagrams the message has (at least 1).
    pub total: u16,
}

impl FrameHeader {
    /// Appends the header of a one-datagram request.
    pub fn request(request_id: u16) -> FrameHeader {
        FrameHeader {
            request_id,
            sequence: 0,
            total: 1,
        }
    }

    /// Appends the 8 header bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }

    /// Decodes the header at the start of `datagram`; returns it and the payload.
    pub fn decode(datagram: &[u8]) -> Result<(FrameHeader, &[u8]), String> {
        if datagram.len() < HEADER_LEN {
            return Err(format!(
                "UDP datagram of {} bytes is shorter than the 8-byte frame header",
                datagram.len()
            ));
        }
        let field = |at: usize| u16::from_be_bytes([datagram[at], datagram[at + 1]]);
        let header = FrameHeader {
            request_id: field(0),
            sequence: field(2),
            total: field(4),
        };
        if header.total == 0 || header.sequence >= header.total {
            return Err(format!(
                "UDP frame header says datagram {} of {}, which is impossible",
                header.sequence, header.total
            ));
        }
        Ok((header, &datagram[HEADER_LEN..]))
    }
}

/// The datagrams of one multi-datagram reply, collected until all have arrived.
#[derive(Debug, Clone)]
pub struct Reassembly {
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
}

impl Reassembly {
    /// An empty reassembly for a message of `total` datagrams.
    pub fn new(total: u16) -> Reassembly {
        Reassembly {
            parts: vec![None; usize::from(total)],
            missing: usize::from(total),
        }
    }

    /// Adds one datagram's payload. Returns the whole message once the last part is in.
    /// Duplicates are ignored; a header disagreeing on the total is an error.
    pub fn add(&mut self, header: FrameHeader, payload: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if usize::from(header.total) != self.parts.len() {
            return Err(format!(
                "UDP reply {} changed its datagram count from {} to {}",
                header.request_id,
                self.parts.len(),
                header.total
            ));
        }
        let slot = &mut self.parts[usize::from(header.sequence)];
        if slot.is_none() {
            *slot = Some(payload.to_vec());
            self.missing -= 1;
        }
        if self.missing > 0 {
            return Ok(None);
        }
        let mut message = Vec::with_capacity(self.parts.iter().flatten().map(Vec::len).sum());
        for part in self.parts.iter().flatten() {
            message.extend_from_slice(part);
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_in_network_order() {
        let mut out = Vec::new();
        FrameHeader {
            request_id: 0x1234,
            sequence: 2,
            total: 3,
        }
        .encode(&mut out);
        assert_eq!(out, [0x12, 0x34, 0, 2, 0, 3, 0, 0]);
        out.extend_from_slice(b"END\r\n");
        let (header, payload) = FrameHeader::decode(&out).unwrap();
        assert_eq!(
            header,
            FrameHeader {
                request_id: 0x1234,
                sequence: 2,
                total: 3
            }
        );
        assert_eq!(payload, b"END\r\n");
        let mut request = Vec::new();
        FrameHeader::request(7).encode(&mut request);
        assert_eq!(request, [0, 7, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert!(FrameHeader::decode(&[0, 1, 0, 0])
            .unwrap_err()
            .contains("shorter"));
        assert!(FrameHeader::decode(&[0, 1, 0, 0, 0, 0, 0, 0])
            .unwrap_err()
            .contains("impossible"));
        assert!(FrameHeader::decode(&[0, 1, 0, 3, 0, 3, 0, 0])
            .unwrap_err()
            .contains("impossible"));
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        let header = |sequence| FrameHeader {
            request_id: 9,
            sequence,
            total: 3,
        };
        let mut reassembly = Reassembly::new(3);
        assert_eq!(reassembly.add(header(2), b"END\r\n"), Ok(None));
        assert_eq!(reassembly.add(header(0), b"VALUE k 0 3\r\n"), Ok(None));
        assert_eq!(reassembly.add(header(2), b"END\r\n"), Ok(None));
        assert_eq!(
            reassembly.add(header(1), b"abc\r\n"),
            Ok(Some(b"VALUE k 0 3\r\nabc\r\nEND\r\n".to_vec()))
        );
        let mut other = Reassembly::new(2);
        assert!(other
            .add(header(0), b"x")
            .unwrap_err()
            .contains("changed its datagram count"));
    }
}
