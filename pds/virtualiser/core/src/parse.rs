//! Parsing an Ethernet frame just far enough to route it: Ethernet II, ARP, IPv4, and the
//! ports of UDP and TCP. Every length and offset in a frame is checked against the bytes that
//! are really there before it is used; anything that does not add up is refused with the
//! reason ([`Malformed`]), never guessed at.

use core::fmt;

/// Largest frame accepted (no FCS, no VLAN tag): 14 + 1500.
pub const MAX_FRAME: usize = 1514;
/// Smallest frame: an Ethernet header.
pub const ETHERNET_HEADER: usize = 14;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const PROTOCOL_TCP: u8 = 6;
pub const PROTOCOL_UDP: u8 = 17;
pub const PROTOCOL_ICMP: u8 = 1;

/// A MAC address.
pub type Mac = [u8; 6];
/// An IPv4 address.
pub type Ipv4 = [u8; 4];

pub const BROADCAST_MAC: Mac = [0xff; 6];

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than an Ethernet header.
    Runt,
    /// Longer than `MAX_FRAME`.
    Jumbo,
    /// An ARP packet that is cut short or is not Ethernet/IPv4 ARP.
    Arp,
    /// IPv4 header cut short, or a version/IHL that is not IPv4's.
    Ipv4Header,
    /// IPv4 total length smaller than its header or larger than the frame.
    Ipv4Length,
    /// IPv4 header checksum wrong.
    Ipv4Checksum,
    /// A UDP header cut short or whose length field lies.
    Udp,
    /// A TCP header cut short or whose data offset lies.
    Tcp,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Malformed::Runt => "runt frame",
            Malformed::Jumbo => "frame longer than 1514 bytes",
            Malformed::Arp => "malformed ARP",
            Malformed::Ipv4Header => "malformed IPv4 header",
            Malformed::Ipv4Length => "IPv4 total length does not match the frame",
            Malformed::Ipv4Checksum => "IPv4 header checksum wrong",
            Malformed::Udp => "malformed UDP header",
            Malformed::Tcp => "malformed TCP header",
        })
    }
}

/// The Ethernet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ethernet {
    pub destination: Mac,
    pub source: Mac,
    pub ethertype: u16,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4,
    pub target_mac: Mac,
    pub target_ip: Ipv4,
}

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// A UDP or TCP flow's addressing, as seen by the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ports {
    pub source: u16,
    pub destination: u16,
}

/// The parts of an IPv4 packet routing looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet {
    pub source: Ipv4,
    pub destination: Ipv4,
    pub protocol: u8,
    /// Ports of UDP and TCP packets (None for other protocols and for fragments after the
    /// first, which carry no transport header).
    pub ports: Option<Ports>,
    /// More fragments follow, or this is not the first fragment.
    pub fragmented: bool,
}

/// What a frame is, as far as routing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    Arp(Arp),
    Ipv4(Ipv4Packet),
    /// Another ethertype (not routed).
    Other(u16),
}

/// A parsed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ethernet: Ethernet,
    pub payload: Payload,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// The Internet checksum of `bytes` (one's complement sum of 16-bit words), folded.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses the headers of `frame` (the whole frame, or at least its first 128 bytes together
/// with `frame_len`, the frame's real length).
///
/// `frame` may be a prefix of the frame (the virtualiser copies the headers out of the shared
/// buffer first); lengths inside the frame are checked against `frame_len`, and every header
/// must lie inside `frame`.
pub fn parse(frame: &[u8], frame_len: usize) -> Result<Frame, Malformed> {
    if frame_len < ETHERNET_HEADER || frame.len() < ETHERNET_HEADER {
        return Err(Malformed::Runt);
    }
    if frame_len > MAX_FRAME {
        return Err(Malformed::Jumbo);
    }
    let visible = frame.len().min(frame_len);
    let frame = &frame[..visible];
    let ethernet = Ethernet { destination: array(frame, 0), source: array(frame, 6), ethertype: be16(frame, 12) };
    let rest = &frame[ETHERNET_HEADER..];
    let rest_len = frame_len - ETHERNET_HEADER;
    let payload = match ethernet.ethertype {
        ETHERTYPE_ARP => Payload::Arp(parse_arp(rest)?),
        ETHERTYPE_IPV4 => Payload::Ipv4(parse_ipv4(rest, rest_len)?),
        other => Payload::Other(other),
    };
    Ok(Frame { ethernet, payload })
}

fn parse_arp(b: &[u8]) -> Result<Arp, Malformed> {
    if b.len() < 28 {
        return Err(Malformed::Arp);
    }
    // Ethernet hardware (1), IPv4 protocol, 6-byte and 4-byte addresses.
    if be16(b, 0) != 1 || be16(b, 2) != ETHERTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
        return Err(Malformed::Arp);
    }
    Ok(Arp {
        operation: be16(b, 6),
        sender_mac: array(b, 8),
        sender_ip: array(b, 14),
        target_mac: array(b, 18),
        target_ip: array(b, 24),
    })
}

fn parse_ipv4(b: &[u8], len_in_frame: usize) -> Result<Ipv4Packet, Malformed> {
    if b.len() < 20 {
        return Err(Malformed::Ipv4Header);
    }
    let version = b[0] >> 4;
    let header_len = (b[0] & 0xf) as usize * 4;
    if version != 4 || header_len < 20 || header_len > b.len() {
        return Err(Malformed::Ipv4Header);
    }
    let total = be16(b, 2) as usize;
    // Ethernet may pad a short packet, so the frame may be longer than the packet, never shorter.
    if total < header_len || total > len_in_frame {
        return Err(Malformed::Ipv4Length);
    }
    if internet_checksum(&b[..header_len]) != 0 {
        return Err(Malformed::Ipv4Checksum);
    }
    let flags_fragment = be16(b, 6);
    let more_fragments = flags_fragment & 0x2000 != 0;
    let fragment_offset = flags_fragment & 0x1fff;
    let protocol = b[9];
    let source = array(b, 12);
    let destination = array(b, 16);
    // The transport header: only in the first fragment; must lie inside the packet and inside
    // the bytes we were given.
    let transport_len = total - header_len;
    let transport = &b[header_len..b.len().min(total)];
    let ports = if fragment_offset != 0 {
        None
    } else {
        match protocol {
            PROTOCOL_UDP => {
                if transport_len < 8 || transport.len() < 8 {
                    return Err(Malformed::Udp);
                }
                let udp_len = be16(transport, 4) as usize;
                if udp_len < 8 || udp_len > transport_len {
                    return Err(Malformed::Udp);
                }
                Some(Ports { source: be16(transport, 0), destination: be16(transport, 2) })
            }
            PROTOCOL_TCP => {
                if transport_len < 20 || transport.len() < 20 {
                    return Err(Malformed::Tcp);
                }
                let data_offset = (transport[12] >> 4) as usize * 4;
                if data_offset < 20 || data_offset > transport_len {
                    return Err(Malformed::Tcp);
                }
                Some(Ports { source: be16(transport, 0), destination: be16(transport, 2) })
            }
            _ => None,
        }
    };
    Ok(Ipv4Packet { source, destination, protocol, ports, fragmented: more_fragments || fragment_offset != 0 })
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    pub const NODE_MAC: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    pub const PEER_MAC: Mac = [0x52, 0x55, 10, 0, 2, 2];

    /// A valid Ethernet + IPv4 + UDP/TCP frame with `payload`.
    pub fn ip_frame(protocol: u8, source_port: u16, destination_port: u16, payload: &[u8]) -> Vec<u8> {
        let transport_len = if protocol == PROTOCOL_TCP { 20 } else { 8 };
        let total = 20 + transport_len + payload.len();
        let mut f = Vec::new();
        f.extend_from_slice(&NODE_MAC);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = protocol;
        ip[12..16].copy_from_slice(&[10, 0, 2, 2]);
        ip[16..20].copy_from_slice(&[10, 0, 2, 15]);
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&source_port.to_be_bytes());
        f.extend_from_slice(&destination_port.to_be_bytes());
        if protocol == PROTOCOL_TCP {
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        f
    }

    pub fn arp_frame(operation: u16, target_ip: Ipv4) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&BROADCAST_MAC);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&operation.to_be_bytes());
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(&[10, 0, 2, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target_ip);
        f
    }

    #[test]
    fn udp_and_tcp_ports() {
        let f = ip_frame(PROTOCOL_UDP, 40000, 7, b"hello");
        let p = parse(&f, f.len()).unwrap();
        let Payload::Ipv4(ip) = p.payload else { panic!() };
        assert_eq!(ip.ports, Some(Ports { source: 40000, destination: 7 }));
        assert_eq!(ip.destination, [10, 0, 2, 15]);
        let f = ip_frame(PROTOCOL_TCP, 40000, 5555, b"");
        let Payload::Ipv4(ip) = parse(&f, f.len()).unwrap().payload else { panic!() };
        assert_eq!((ip.protocol, ip.ports.unwrap().destination), (PROTOCOL_TCP, 5555));
    }

    #[test]
    fn headers_only_prefix_is_enough() {
        let f = ip_frame(PROTOCOL_UDP, 1, 2, &[7u8; 1000]);
        let p = parse(&f[..128], f.len()).unwrap();
        assert!(matches!(p.payload, Payload::Ipv4(Ipv4Packet { ports: Some(_), .. })));
    }

    #[test]
    fn arp() {
        let f = arp_frame(ARP_REQUEST, [10, 0, 2, 15]);
        let Payload::Arp(a) = parse(&f, f.len()).unwrap().payload else { panic!() };
        assert_eq!((a.operation, a.target_ip, a.sender_ip), (ARP_REQUEST, [10, 0, 2, 15], [10, 0, 2, 2]));
        assert_eq!(parse(&f[..30], 30), Err(Malformed::Arp));
    }

    #[test]
    fn runts_and_jumbos() {
        assert_eq!(parse(&[0; 13], 13), Err(Malformed::Runt));
        assert_eq!(parse(&[], 0), Err(Malformed::Runt));
        assert_eq!(parse(&[0; 1515], 1515), Err(Malformed::Jumbo));
        assert_eq!(parse(&[0; 20], 9000), Err(Malformed::Jumbo));
    }

    #[test]
    fn lying_lengths() {
        let good = ip_frame(PROTOCOL_UDP, 1, 2, b"abcd");
        // IPv4 total length larger than the frame.
        let mut f = good.clone();
        f[16..18].copy_from_slice(&500u16.to_be_bytes());
        let c = internet_checksum(&{
            let mut h = [0u8; 20];
            h.copy_from_slice(&f[14..34]);
            h[10] = 0;
            h[11] = 0;
            h
        });
        f[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f, f.len()), Err(Malformed::Ipv4Length));
        // UDP length larger than the IP payload.
        let mut f = good.clone();
        f[38..40].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(parse(&f, f.len()), Err(Malformed::Udp));
        // UDP length below the header size.
        let mut f = good.clone();
        f[38..40].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(parse(&f, f.len()), Err(Malformed::Udp));
        // IHL of 15 words in a 20-byte header.
        let mut f = good.clone();
        f[14] = 0x4f;
        assert_eq!(parse(&f[..40], 40), Err(Malformed::Ipv4Header));
        // Bad checksum.
        let mut f = good.clone();
        f[22] ^= 1;
        assert_eq!(parse(&f, f.len()), Err(Malformed::Ipv4Checksum));
        // Truncated transport header.
        assert_eq!(parse(&good[..36], 36), Err(Malformed::Ipv4Length));
        // TCP data offset beyond the segment.
        let mut f = ip_frame(PROTOCOL_TCP, 1, 2, b"");
        f[46] = 0xf0;
        assert_eq!(parse(&f, f.len()), Err(Malformed::Tcp));
    }

    #[test]
    fn ethernet_padding_is_fine() {
        let mut f = ip_frame(PROTOCOL_UDP, 1, 2, b"");
        f.resize(60, 0);
        assert!(parse(&f, 60).is_ok());
    }
}
