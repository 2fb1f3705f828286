//! The shapes of the network path's links, shared by the NIC driver, the virtualiser and the
//! tenants. The system description sizes the regions; each PD checks at start-up that what it
//! was given (`setvar_size`) holds what these constants say, and refuses to run otherwise.

use crate::queue::queue_bytes;
use crate::sync::{AtomicU64, Ordering};
use crate::BufferLayout;

/// Bytes of every packet buffer, on every link.
pub const BUFFER_SIZE: u32 = 2048;
/// The largest Ethernet frame carried (no FCS, no VLAN tag): 14 + 1500.
pub const MAX_FRAME: u32 = 1514;

/// NIC buffers (driver <-> virtualiser) per direction, and the capacity of each of the four
/// queues of that link (sized to hold every buffer, so a queue is never full).
pub const NIC_BUFFERS: u32 = 512;
/// Where a frame starts inside a NIC DMA buffer: the room in front holds the device's header
/// (10 or 12 bytes for virtio-net), so the virtualiser never needs to know the device.
pub const NIC_FRAME_OFFSET: u64 = 16;

/// Tenant buffers (virtualiser <-> tenant) per direction, and the capacity of each of the four
/// queues of a tenant link. A tenant's frames start at offset 0 of its buffers.
pub const TENANT_BUFFERS: u32 = 256;

/// The layout of a NIC DMA region (one per direction).
pub const NIC_LAYOUT: BufferLayout = BufferLayout::new(BUFFER_SIZE, NIC_BUFFERS);
/// The layout of a tenant's data region (one per direction).
pub const TENANT_LAYOUT: BufferLayout = BufferLayout::new(BUFFER_SIZE, TENANT_BUFFERS);

/// Bytes of a queue region on the NIC link.
pub const NIC_QUEUE_BYTES: usize = queue_bytes(NIC_BUFFERS);
/// Bytes of a queue region on a tenant link.
pub const TENANT_QUEUE_BYTES: usize = queue_bytes(TENANT_BUFFERS);

/// A tenant link's four queues live in one region, each in a slot of this many bytes, in the
/// order of [`TenantQueue`].
pub const TENANT_QUEUE_STRIDE: usize = 0x2000;
/// Where a tenant link's [`LinkInfo`] block sits in its region (after the four queues).
pub const LINK_INFO_OFFSET: usize = 4 * TENANT_QUEUE_STRIDE;
/// Bytes of a tenant link's region: four queues and the info block's page.
pub const TENANT_LINK_BYTES: usize = 5 * TENANT_QUEUE_STRIDE;
const _: () = assert!(TENANT_QUEUE_BYTES <= TENANT_QUEUE_STRIDE);

/// The queues of a tenant link, in region order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantQueue {
    /// Tenant -> virtualiser: empty receive buffers (in the tenant's receive data region).
    RxFree = 0,
    /// Virtualiser -> tenant: received frames.
    RxActive = 1,
    /// Tenant -> virtualiser: frames to send (in the tenant's transmit data region).
    TxActive = 2,
    /// Virtualiser -> tenant: sent buffers, handed back.
    TxFree = 3,
}

impl TenantQueue {
    /// Offset of this queue inside the link region.
    pub const fn offset(self) -> usize {
        self as usize * TENANT_QUEUE_STRIDE
    }
}

/// What the virtualiser tells a tenant about its link, written into the link region before
/// the tenant runs: which tenant it is and the ports routed to it (0: none). Tenants serve the
/// ports the network side routes to them, so the two can never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub tenant: u16,
    pub udp_port: u16,
    pub tcp_port: u16,
}

/// Bytes of an encoded [`LinkInfo`].
pub const LINK_INFO_BYTES: usize = 16;
const LINK_INFO_MAGIC: [u8; 8] = *b"EDGENET1";

impl LinkInfo {
    pub fn encode(&self) -> [u8; LINK_INFO_BYTES] {
        let mut b = [0u8; LINK_INFO_BYTES];
        b[..8].copy_from_slice(&LINK_INFO_MAGIC);
        b[8..10].copy_from_slice(&self.tenant.to_le_bytes());
        b[10..12].copy_from_slice(&self.udp_port.to_le_bytes());
        b[12..14].copy_from_slice(&self.tcp_port.to_le_bytes());
        b
    }

    /// None unless the block starts with the magic (the virtualiser has not written it).
    pub fn decode(b: &[u8; LINK_INFO_BYTES]) -> Option<Self> {
        if b[..8] != LINK_INFO_MAGIC {
            return None;
        }
        let word = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(LinkInfo { tenant: word(8), udp_port: word(10), tcp_port: word(12) })
    }
}

/// Where a tenant link's [`LinkControl`] sits in its region (after the info block).
pub const LINK_CONTROL_OFFSET: usize = LINK_INFO_OFFSET + 64;

/// Words a tenant writes for the virtualiser, in its link region.
#[repr(C)]
pub struct LinkControl {
    /// Counter value (CNTVCT/CNTPCT ticks) at which the tenant wants to be notified even if no
    /// frame arrives (its TCP/IP stack's next timer), or `u64::MAX` for never. Untrusted: the
    /// virtualiser only uses it to decide when to notify this same tenant.
    wake_at: AtomicU64,
}

impl LinkControl {
    pub fn new() -> Self {
        LinkControl { wake_at: AtomicU64::new(u64::MAX) }
    }

    pub fn wake_at(&self) -> u64 {
        self.wake_at.load(Ordering::Relaxed)
    }

    pub fn set_wake_at(&self, ticks: u64) {
        self.wake_at.store(ticks, Ordering::Relaxed)
    }
}

impl Default for LinkControl {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_info_round_trip() {
        let info = LinkInfo { tenant: 3, udp_port: 7001, tcp_port: 0 };
        assert_eq!(LinkInfo::decode(&info.encode()), Some(info));
        assert_eq!(LinkInfo::decode(&[0; LINK_INFO_BYTES]), None);
    }
}
