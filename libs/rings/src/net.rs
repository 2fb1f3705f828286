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

/// The most tenant buffers (virtualiser <-> tenant) per direction, and the capacity of each of
/// the four queues of a tenant link (whatever the data regions hold, so the link region's layout
/// never changes). A tenant's frames start at offset 0 of its buffers. How many buffers a link
/// has is [`tenant_buffers`] of its data region's size, per direction.
pub const TENANT_BUFFERS: u32 = 256;

/// The layout of a NIC DMA region (one per direction).
pub const NIC_LAYOUT: BufferLayout = BufferLayout::new(BUFFER_SIZE, NIC_BUFFERS);
/// The layout of a full-size tenant data region (one per direction): [`TENANT_BUFFERS`]
/// buffers. A smaller region (a template's instances have smaller ones) is cut by
/// [`tenant_layout`].
pub const TENANT_LAYOUT: BufferLayout = BufferLayout::new(BUFFER_SIZE, TENANT_BUFFERS);

/// How many buffers a tenant data region of `region_size` bytes holds: `region_size /
/// BUFFER_SIZE`, at most [`TENANT_BUFFERS`] (the rest of a larger region is unused). None if
/// the size is zero or not a multiple of [`BUFFER_SIZE`]: such a region is refused. Both ends of
/// a link apply this same rule to each of its two data regions (they may differ), so they agree
/// on which descriptors are valid.
pub const fn tenant_buffers(region_size: usize) -> Option<u32> {
    let size = BUFFER_SIZE as usize;
    if region_size == 0 || !region_size.is_multiple_of(size) {
        return None;
    }
    let count = region_size / size;
    Some(if count > TENANT_BUFFERS as usize { TENANT_BUFFERS } else { count as u32 })
}

/// The layout of a tenant data region of `region_size` bytes ([`tenant_buffers`] buffers).
pub const fn tenant_layout(region_size: usize) -> Option<BufferLayout> {
    match tenant_buffers(region_size) {
        Some(count) => Some(BufferLayout::new(BUFFER_SIZE, count)),
        None => None,
    }
}

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

/// What the virtualiser tells a tenant about its link, written into the link region (at
/// [`LINK_INFO_OFFSET`]) before the tenant needs it: which tenant it is and the ports routed to
/// it (0: none). Tenants serve the ports the network side routes to them, so the two can never
/// disagree.
///
/// When: for a static tenant, before the tenant runs (the virtualiser has the higher priority);
/// for a template's instance, after the template's `init` (which saw an all-zero, invalid block
/// in its own copy of the region) and before the virtualiser first notifies the instance. A
/// tenant whose block is not valid yet defers everything that depends on it to the first event
/// at which it is ([`LinkDescription`]).
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

    /// A seed for this tenant's random numbers (TCP initial sequence numbers, ephemeral ports,
    /// hash seeds), from the counter value `ticks` read when the tenant attaches: instances of one
    /// template start from the same memory, so the seed must come from what differs between
    /// them (their tenant number, the time they attach), never from the template's `init`.
    pub fn random_seed(&self, ticks: u64) -> u64 {
        // splitmix64's finaliser over the counter and the tenant's identity.
        let mut z = ticks
            ^ ((self.tenant as u64) << 32 | (self.udp_port as u64) << 16 | self.tcp_port as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A tenant's knowledge of its link's [`LinkInfo`]: unknown until the block in the link region
/// is valid, then fixed for good (a later change of the block is ignored: the tenant has
/// configured its stack and bound its ports by then).
///
/// A tenant reads the block at `init` and, while it is not valid, again at every event, and
/// attaches (configures its addresses, binds its ports) the first time [`Self::update`] returns
/// `Some`. A static tenant attaches during `init`; a template's instance at its first event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkDescription {
    info: Option<LinkInfo>,
}

impl LinkDescription {
    /// Nothing known yet.
    pub const fn new() -> Self {
        LinkDescription { info: None }
    }

    /// The info once known.
    pub fn get(&self) -> Option<LinkInfo> {
        self.info
    }

    /// Whether the info is still unknown, i.e. whether [`Self::update`] wants the block (saves
    /// reading it once known).
    pub fn pending(&self) -> bool {
        self.info.is_none()
    }

    /// Takes a fresh copy of the link's info block into account; returns the info if known.
    pub fn update(&mut self, block: &[u8; LINK_INFO_BYTES]) -> Option<LinkInfo> {
        if self.info.is_none() {
            self.info = LinkInfo::decode(block);
        }
        self.info
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
    extern crate std;

    use super::*;

    #[test]
    fn link_info_round_trip() {
        let info = LinkInfo { tenant: 3, udp_port: 7001, tcp_port: 0 };
        assert_eq!(LinkInfo::decode(&info.encode()), Some(info));
        assert_eq!(LinkInfo::decode(&[0; LINK_INFO_BYTES]), None);
    }

    #[test]
    fn link_info_needs_the_whole_magic() {
        let info = LinkInfo { tenant: 1, udp_port: 5556, tcp_port: 5556 };
        // Fields written, magic not (yet): not valid.
        let mut b = info.encode();
        b[..8].fill(0);
        assert_eq!(LinkInfo::decode(&b), None);
        // Any byte of the magic wrong: not valid.
        for i in 0..8 {
            let mut b = info.encode();
            b[i] ^= 0x20;
            assert_eq!(LinkInfo::decode(&b), None, "byte {i}");
        }
        // The reserved bytes are ignored.
        let mut b = info.encode();
        b[14] = 0xff;
        b[15] = 0xee;
        assert_eq!(LinkInfo::decode(&b), Some(info));
    }

    #[test]
    fn buffers_follow_the_region_size() {
        let b = BUFFER_SIZE as usize;
        assert_eq!(tenant_buffers(0), None);
        assert_eq!(tenant_buffers(b - 1), None);
        assert_eq!(tenant_buffers(b + 1), None);
        assert_eq!(tenant_buffers(0x20000 + 0x400), None);
        assert_eq!(tenant_buffers(b), Some(1));
        // An instance's regions (0x20000: 64 buffers) and a static tenant's (0x80000: 256).
        assert_eq!(tenant_buffers(0x20000), Some(64));
        assert_eq!(tenant_buffers(0x80000), Some(TENANT_BUFFERS));
        // Larger regions hold at most TENANT_BUFFERS (the queues' capacity).
        assert_eq!(tenant_buffers(0x100000), Some(TENANT_BUFFERS));
        assert_eq!(tenant_buffers(usize::MAX - (usize::MAX % b)), Some(TENANT_BUFFERS));
        assert_eq!(tenant_layout(0x80000), Some(TENANT_LAYOUT));
        let small = tenant_layout(0x20000).unwrap();
        assert_eq!(small.region_bytes(), 0x20000);
        assert!(small.check(crate::Descriptor::new(63 * b as u64, 100)).is_ok());
        assert!(small.check(crate::Descriptor::new(64 * b as u64, 100)).is_err());
        // Every valid count fits the queues, so a queue never fills.
        for size in (b..=0x100000).step_by(b) {
            assert!(tenant_buffers(size).unwrap() <= TENANT_BUFFERS);
        }
    }

    #[test]
    fn description_is_deferred_until_valid_then_fixed() {
        let mut d = LinkDescription::new();
        assert!(d.pending());
        assert_eq!(d.get(), None);
        // A template's init: the block is all zeros.
        assert_eq!(d.update(&[0; LINK_INFO_BYTES]), None);
        assert!(d.pending());
        // A spurious event before the virtualiser wrote it: still nothing.
        assert_eq!(d.update(&[0; LINK_INFO_BYTES]), None);
        // The virtualiser wrote the instance's info and notified.
        let info = LinkInfo { tenant: 42, udp_port: 0, tcp_port: 11211 };
        assert_eq!(d.update(&info.encode()), Some(info));
        assert!(!d.pending());
        assert_eq!(d.get(), Some(info));
        // Later changes (or a scribbled block) do not move a tenant that has attached.
        let other = LinkInfo { tenant: 7, udp_port: 1, tcp_port: 2 };
        assert_eq!(d.update(&other.encode()), Some(info));
        assert_eq!(d.update(&[0; LINK_INFO_BYTES]), Some(info));
        // A static tenant: valid at the first read.
        let mut s = LinkDescription::new();
        assert_eq!(s.update(&other.encode()), Some(other));
    }

    #[test]
    fn seeds_differ_per_instance_and_time() {
        let a = LinkInfo { tenant: 1, udp_port: 11211, tcp_port: 11211 };
        let b = LinkInfo { tenant: 2, ..a };
        assert_ne!(a.random_seed(1000), b.random_seed(1000));
        assert_ne!(a.random_seed(1000), a.random_seed(1001));
        assert_eq!(a.random_seed(1000), a.random_seed(1000));
        // Many instances attaching at the same tick all get distinct seeds.
        let mut seeds: std::vec::Vec<u64> = (0..1000u16).map(|t| LinkInfo { tenant: t, ..a }.random_seed(5)).collect();
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), 1000);
    }
}
