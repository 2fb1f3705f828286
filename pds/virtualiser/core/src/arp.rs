//! ARP answers for the node's address. Tenants share the node's IPv4 and MAC addresses (they
//! are told apart by port), so the virtualiser answers "who has <node>?" itself, once for all.

use crate::parse::{Arp, Ipv4, Mac, ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4};

/// Bytes of an ARP frame (without Ethernet padding).
pub const ARP_FRAME_LEN: usize = 42;

/// If `arp` asks for `node_ip`, the reply frame to send.
pub fn reply(arp: &Arp, node_mac: Mac, node_ip: Ipv4) -> Option<[u8; ARP_FRAME_LEN]> {
    if arp.operation != ARP_REQUEST || arp.target_ip != node_ip {
        return None;
    }
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&arp.sender_mac);
    f[6..12].copy_from_slice(&node_mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes());
    f[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARP_REPLY.to_be_bytes());
    f[22..28].copy_from_slice(&node_mac);
    f[28..32].copy_from_slice(&node_ip);
    f[32..38].copy_from_slice(&arp.sender_mac);
    f[38..42].copy_from_slice(&arp.sender_ip);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::{arp_frame, NODE_MAC, PEER_MAC};
    use crate::parse::{parse, Payload};

    #[test]
    fn answers_only_requests_for_the_node() {
        let f = arp_frame(ARP_REQUEST, [10, 0, 2, 15]);
        let Payload::Arp(a) = parse(&f, f.len()).unwrap().payload else { panic!() };
        let r = reply(&a, NODE_MAC, [10, 0, 2, 15]).unwrap();
        let parsed = parse(&r, r.len()).unwrap();
        assert_eq!(parsed.ethernet.destination, PEER_MAC);
        let Payload::Arp(ra) = parsed.payload else { panic!() };
        assert_eq!((ra.operation, ra.sender_ip, ra.sender_mac, ra.target_ip), (ARP_REPLY, [10, 0, 2, 15], NODE_MAC, [10, 0, 2, 2]));
        assert!(reply(&a, NODE_MAC, [10, 0, 2, 16]).is_none());
        let f = arp_frame(ARP_REPLY, [10, 0, 2, 15]);
        let Payload::Arp(a) = parse(&f, f.len()).unwrap().payload else { panic!() };
        assert!(reply(&a, NODE_MAC, [10, 0, 2, 15]).is_none());
    }
}
