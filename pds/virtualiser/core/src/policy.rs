//! What a tenant may send. A frame handed over by a tenant is copied out of the tenant's
//! memory first and then checked here: it must be well formed, come from the node's MAC
//! address, and, for IPv4, from the node's address and from a port (or connection) that is
//! routed to this same tenant. ARP is allowed (tenants resolve their peers themselves).

use core::fmt;

use crate::flow::{Connection, FlowTable, Protocol, TenantId};
use crate::parse::{parse, Ipv4, Mac, Malformed, Payload};

/// Why a tenant's frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(Malformed),
    /// Source MAC is not the node's.
    SourceMac,
    /// Source IPv4 address (or ARP sender) is not the node's.
    SourceAddress,
    /// Source port not routed to this tenant.
    SourcePort,
    /// Neither ARP nor UDP/TCP over IPv4 (or an IPv4 fragment).
    Protocol,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refusal::Malformed(m) => write!(f, "{m}"),
            Refusal::SourceMac => f.write_str("source MAC is not the node's"),
            Refusal::SourceAddress => f.write_str("source address is not the node's"),
            Refusal::SourcePort => f.write_str("source port is not routed to the sender"),
            Refusal::Protocol => f.write_str("protocol not allowed"),
        }
    }
}

/// Checks a frame from `tenant` (`headers` is at least its first 128 bytes, or all of it).
pub fn check_transmit(
    headers: &[u8],
    frame_len: usize,
    tenant: TenantId,
    node_mac: Mac,
    node_ip: Ipv4,
    table: &FlowTable,
) -> Result<(), Refusal> {
    let frame = parse(headers, frame_len).map_err(Refusal::Malformed)?;
    if frame.ethernet.source != node_mac {
        return Err(Refusal::SourceMac);
    }
    match frame.payload {
        Payload::Arp(a) => {
            if a.sender_mac != node_mac || a.sender_ip != node_ip {
                return Err(Refusal::SourceAddress);
            }
            Ok(())
        }
        Payload::Ipv4(ip) => {
            if ip.source != node_ip {
                return Err(Refusal::SourceAddress);
            }
            let (Some(protocol), Some(ports), false) = (Protocol::from_ip(ip.protocol), ip.ports, ip.fragmented) else {
                return Err(Refusal::Protocol);
            };
            let connection = Connection { protocol, remote_ip: ip.destination, remote_port: ports.destination, local_port: ports.source };
            if table.lookup(&connection) == Some(tenant) {
                Ok(())
            } else {
                Err(Refusal::SourcePort)
            }
        }
        Payload::Other(_) => Err(Refusal::Protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::{arp_frame, ip_frame, NODE_MAC, PEER_MAC};
    use crate::parse::{internet_checksum, ARP_REQUEST, PROTOCOL_ICMP, PROTOCOL_TCP, PROTOCOL_UDP};

    const NODE_IP: Ipv4 = [10, 0, 2, 15];

    /// A frame as the node sends it (addresses swapped from the test helper's).
    fn outgoing(protocol: u8, source_port: u16) -> std::vec::Vec<u8> {
        let mut f = ip_frame(protocol, source_port, 40000, b"x");
        f[0..6].copy_from_slice(&PEER_MAC);
        f[6..12].copy_from_slice(&NODE_MAC);
        f[26..30].copy_from_slice(&NODE_IP);
        f[30..34].copy_from_slice(&[10, 0, 2, 2]);
        f[24] = 0;
        f[25] = 0;
        let c = internet_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    extern crate std;

    #[test]
    fn only_own_ports_from_own_address() {
        let mut t = FlowTable::new(2);
        t.install_port(Protocol::Udp, 7, 0).unwrap();
        t.install_port(Protocol::Tcp, 8, 1).unwrap();
        let ok = outgoing(PROTOCOL_UDP, 7);
        assert_eq!(check_transmit(&ok, ok.len(), 0, NODE_MAC, NODE_IP, &t), Ok(()));
        assert_eq!(check_transmit(&ok, ok.len(), 1, NODE_MAC, NODE_IP, &t), Err(Refusal::SourcePort));
        let tcp = outgoing(PROTOCOL_TCP, 8);
        assert_eq!(check_transmit(&tcp, tcp.len(), 1, NODE_MAC, NODE_IP, &t), Ok(()));
        let mut spoofed = ok.clone();
        spoofed[6] ^= 2;
        assert_eq!(check_transmit(&spoofed, spoofed.len(), 0, NODE_MAC, NODE_IP, &t), Err(Refusal::SourceMac));
        let icmp = outgoing(PROTOCOL_ICMP, 0);
        assert_eq!(check_transmit(&icmp, icmp.len(), 0, NODE_MAC, NODE_IP, &t), Err(Refusal::Protocol));
        assert!(matches!(check_transmit(&ok[..20], 20, 0, NODE_MAC, NODE_IP, &t), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn arp_from_the_node_only() {
        let t = FlowTable::new(1);
        let mut f = arp_frame(ARP_REQUEST, [10, 0, 2, 2]);
        f[6..12].copy_from_slice(&NODE_MAC);
        f[22..28].copy_from_slice(&NODE_MAC);
        f[28..32].copy_from_slice(&NODE_IP);
        assert_eq!(check_transmit(&f, f.len(), 0, NODE_MAC, NODE_IP, &t), Ok(()));
        f[28] = 9;
        assert_eq!(check_transmit(&f, f.len(), 0, NODE_MAC, NODE_IP, &t), Err(Refusal::SourceAddress));
    }
}
