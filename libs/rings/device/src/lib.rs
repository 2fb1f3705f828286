//! A tenant's end of its network link to the virtualiser, as a `smoltcp` [`Device`].
//!
//! The link is four queues in one region (`edgeos_rings::net::TenantQueue`) plus two data
//! regions: receive buffers (the virtualiser writes them; the tenant maps them read-only) and
//! transmit buffers (the tenant writes them; the virtualiser reads them). At start-up the
//! tenant hands every receive buffer to the virtualiser; a received frame comes back on
//! `rx_active`, is copied out into the tenant's own memory for smoltcp, and its buffer goes
//! straight back on `rx_free`. A frame to send is written into a transmit buffer the tenant
//! holds and queued on `tx_active`; sent buffers come back on `tx_free`.
//!
//! [`NetLink::from_description`] finds the regions through variables the image tool patches
//! (`setvar_vaddr`/`setvar_size` of the tenant's maps, `setvar_id` of its channel), so tenant
//! programs stay free of unsafe code. Each data region holds `tenant_buffers(size)` buffers
//! (`edgeos_rings::net::tenant_buffers`: a static tenant's 0x80000 bytes hold 256, a template
//! instance's smaller regions fewer), the rule the virtualiser applies too.
//!
//! The same program runs as a static PD and as a template's instances. A static tenant finds
//! its [`LinkInfo`] (tenant number, ports) in the link region when it starts; a template runs
//! its `init` before any instance exists, so its block is still all zeros there, and each
//! instance (a copy of the template after `init`) finds its own info at its first event.
//! Tenants therefore open the link and hand over their receive buffers in `init`, and attach
//! (configure addresses, bind ports) when [`NetLink::info`] first returns `Some`; until then
//! [`NetLink::wait_for_info`] is their event loop.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::vec::Vec;
use core::ptr::NonNull;

use edgeos_microkit::{debug_time, memory_region_symbol, var, Channel};
use edgeos_rings::net::{
    tenant_layout, LinkControl, LinkDescription, TenantQueue, BUFFER_SIZE, LINK_INFO_BYTES,
    LINK_INFO_OFFSET, MAX_FRAME, TENANT_BUFFERS, TENANT_LINK_BYTES,
};
use edgeos_rings::raw::{self, SharedRegion};
use edgeos_rings::{BufferLayout, Consumer, Corrupt, Descriptor, EnqueueError, Producer};
use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

pub use edgeos_rings::net::LinkInfo;

/// The receive side: frames in, buffers back.
struct RxSide {
    free: Producer<'static>,
    active: Consumer<'static>,
    data: SharedRegion,
    /// How the receive region is cut (`tenant_buffers` of its size).
    layout: BufferLayout,
    returned: bool,
}

/// The transmit side: frames out, buffers back.
struct TxSide {
    active: Producer<'static>,
    free: Consumer<'static>,
    data: SharedRegion,
    /// How the transmit region is cut (`tenant_buffers` of its size).
    layout: BufferLayout,
    /// Transmit buffers the tenant holds.
    pool: Vec<u32>,
    sent: bool,
    /// Ran out of transmit buffers: ask to be woken when some come back.
    starved: bool,
}

/// The virtualiser broke the link's protocol (or the description sized it wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkError(pub Corrupt);

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "network link: {}", self.0)
    }
}

/// A tenant's network link: the smoltcp device plus what the event loop needs.
pub struct NetLink {
    rx: RxSide,
    tx: TxSide,
    channel: Channel,
    /// The node's addresses (shared by every tenant; tenants are told apart by port).
    pub mac: EthernetAddress,
    pub ip: Ipv4Address,
    /// What the virtualiser routes to this tenant, once it has said (see [`NetLink::info`]).
    description: LinkDescription,
    /// The info block in the link region (the virtualiser writes it).
    info_block: SharedRegion,
    /// The link was just described: tell the virtualiser (once) at the end of the batch, so it
    /// knows the tenant has attached and its receive buffers are on `rx_free`.
    announce: bool,
    /// Where the tenant publishes its next timer deadline for the virtualiser.
    control: &'static LinkControl,
    /// The deadline last published (counter ticks; `u64::MAX`: none).
    published_wake: u64,
    /// A deadline moved earlier: the virtualiser must look at it.
    wake_moved_earlier: bool,
    /// Counter frequency (Hz).
    frequency: u64,
    /// A protocol violation seen inside a token (smoltcp's callbacks cannot return errors).
    error: Option<LinkError>,
}

/// The layout of the data region `name` of `size` bytes, or a panic naming what is wrong.
fn data_layout(name: &str, size: usize) -> BufferLayout {
    match tenant_layout(size) {
        Some(l) => l,
        None => panic!(
            "network link: region {name} is {size:#x} bytes; it must be a non-zero multiple of the buffer size {BUFFER_SIZE:#x} (up to {TENANT_BUFFERS} buffers are used)"
        ),
    }
}

fn region(name: &str, base: NonNull<u8>, size: usize, needed: u64) -> SharedRegion {
    if (size as u64) < needed {
        panic!("network link: region {name} is {size:#x} bytes; it needs {needed:#x}");
    }
    // SAFETY: the image tool patched `base` and `size` with a region the system description
    // maps into this PD for its whole life; this crate only touches it through copies.
    unsafe { SharedRegion::new(base, size) }
}

impl NetLink {
    /// Opens the link the system description gives this PD: maps with `setvar_vaddr` /
    /// `setvar_size` = `net_link_vaddr`/`net_link_size` (the four queues),
    /// `net_rx_vaddr`/`net_rx_size` (receive data, map it read-only) and
    /// `net_tx_vaddr`/`net_tx_size` (transmit data); the channel to the virtualiser
    /// (`setvar_id="net_channel"`); the node's `node_mac` (u64) and `node_ip` (u32) variables.
    /// Each data region holds `tenant_buffers(size)` buffers (a size that is zero or not a
    /// multiple of the buffer size is refused with a panic). Then hands every receive buffer to
    /// the virtualiser. Never notifies: a template's `init` may run this before the virtualiser
    /// knows the link. The link's [`LinkInfo`] need not be there yet: see [`NetLink::info`].
    pub fn from_description() -> Result<Self, LinkError> {
        let link = memory_region_symbol!(net_link_vaddr: *mut u8);
        let link_size = *var!(net_link_size: usize = 0);
        if link_size < TENANT_LINK_BYTES {
            panic!("network link: queue region is {link_size:#x} bytes; it needs {TENANT_LINK_BYTES:#x}");
        }
        let queue = |which| {
            // SAFETY: as in `region`: the link region is mapped for the PD's life (size checked).
            unsafe { raw::tenant_queue(link, link_size, which) }.map_err(LinkError)
        };
        let rx_size = *var!(net_rx_size: usize = 0);
        let rx_layout = data_layout("net_rx", rx_size);
        let rx_data = region("net_rx", memory_region_symbol!(net_rx_vaddr: *mut u8), rx_size, rx_layout.region_bytes());
        let tx_size = *var!(net_tx_size: usize = 0);
        let tx_layout = data_layout("net_tx", tx_size);
        let tx_data = region("net_tx", memory_region_symbol!(net_tx_vaddr: *mut u8), tx_size, tx_layout.region_bytes());
        let info_block = region(
            "net_link info",
            // SAFETY: the offset lies inside the link region (its size was checked above).
            unsafe { NonNull::new_unchecked(link.as_ptr().add(LINK_INFO_OFFSET)) },
            LINK_INFO_BYTES,
            LINK_INFO_BYTES as u64,
        );
        // SAFETY: as in `region`: the link region is mapped for the PD's life (size checked).
        let control = unsafe { raw::link_control(link, link_size) }.map_err(LinkError)?;
        control.set_wake_at(u64::MAX);
        let mac = var!(node_mac: u64 = 0x5254_0012_3456).to_be_bytes();
        let ip = var!(node_ip: u32 = 0x0a00_020f).to_be_bytes();
        let mut rx = RxSide {
            free: Producer::new(queue(TenantQueue::RxFree)?, TENANT_BUFFERS).map_err(LinkError)?,
            active: Consumer::new(queue(TenantQueue::RxActive)?, TENANT_BUFFERS).map_err(LinkError)?,
            data: rx_data,
            layout: rx_layout,
            returned: false,
        };
        let tx = TxSide {
            active: Producer::new(queue(TenantQueue::TxActive)?, TENANT_BUFFERS).map_err(LinkError)?,
            free: Consumer::new(queue(TenantQueue::TxFree)?, TENANT_BUFFERS).map_err(LinkError)?,
            data: tx_data,
            layout: tx_layout,
            pool: (0..tx_layout.count).rev().collect(),
            sent: false,
            starved: false,
        };
        for i in 0..rx_layout.count {
            rx.free.enqueue(Descriptor::new(rx_layout.offset(i), 0)).map_err(enqueue_error)?;
        }
        let mut link = NetLink {
            rx,
            tx,
            channel: Channel::new(*var!(net_channel: usize = 0)),
            mac: EthernetAddress(mac[2..8].try_into().expect("six bytes")),
            ip: Ipv4Address::new(ip[0], ip[1], ip[2], ip[3]),
            description: LinkDescription::new(),
            info_block,
            announce: false,
            control,
            published_wake: u64::MAX,
            wake_moved_earlier: false,
            frequency: debug_time().1.max(1),
            error: None,
        };
        link.info();
        Ok(link)
    }

    /// What the virtualiser routes to this tenant (its tenant number and ports), once it has
    /// written it into the link region: at start-up for a static tenant, before the first
    /// event for a template's instance. None until then (a template's `init` always sees None);
    /// once Some, it never changes.
    pub fn info(&mut self) -> Option<LinkInfo> {
        if self.description.pending() {
            let mut block = [0u8; LINK_INFO_BYTES];
            // Cannot fail: the block lies inside the region (checked when opening the link).
            if self.info_block.read(0, &mut block).is_ok() && self.description.update(&block).is_some() {
                self.announce = true;
            }
        }
        self.description.get()
    }

    /// The event loop's end while the link is not described yet ([`NetLink::info`] is None):
    /// frames that arrived cannot be served (the tenant has no ports yet), so they are dropped
    /// and their buffers go back; then asks to be notified. Never notifies the virtualiser
    /// (a template has nobody to notify during its `init`).
    pub fn wait_for_info(&mut self) -> Result<(), LinkError> {
        self.set_wake_at(None);
        loop {
            while let Some(d) = self.rx.active.dequeue().map_err(LinkError)? {
                self.rx.layout.check(d).map_err(LinkError)?;
                self.rx.give_back(d);
            }
            if self.finish_batch()? {
                return Ok(());
            }
        }
    }

    /// A smoltcp interface on this link: the node's MAC and address (/24), the default route
    /// through the `gateway_ip` variable (QEMU user networking's 10.0.2.2 by default), and
    /// `seed` for smoltcp's randomness (give each tenant its own: `LinkInfo::random_seed`).
    pub fn interface(&mut self, seed: u64) -> Interface {
        let gateway = var!(gateway_ip: u32 = 0x0a00_0202).to_be_bytes();
        let mut config = Config::new(HardwareAddress::Ethernet(self.mac));
        config.random_seed = seed;
        let now = self.now();
        let mut iface = Interface::new(config, self, now);
        let ip = self.ip;
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::new(ip.into(), 24)).expect("one address fits");
        });
        let gw = Ipv4Address::new(gateway[0], gateway[1], gateway[2], gateway[3]);
        iface.routes_mut().add_default_ipv4_route(gw).expect("one route fits");
        iface
    }

    /// The current time, from the system counter.
    pub fn now(&self) -> Instant {
        let (ticks, _) = debug_time();
        Instant::from_micros((ticks as u128 * 1_000_000 / self.frequency as u128) as i64)
    }

    /// Publishes when the tenant next needs to run without a frame arriving (smoltcp's
    /// `poll_at`), so the virtualiser notifies it then.
    pub fn set_wake_at(&mut self, at: Option<Instant>) {
        let ticks = match at {
            None => u64::MAX,
            Some(t) => (t.total_micros().max(0) as u128 * self.frequency as u128 / 1_000_000).min(u64::MAX as u128 - 1) as u64,
        };
        if ticks != self.published_wake {
            if ticks < self.published_wake {
                self.wake_moved_earlier = true;
            }
            self.published_wake = ticks;
            self.control.set_wake_at(ticks);
        }
    }

    /// The channel to the virtualiser.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Ends a batch of polling: notifies the virtualiser once if it asked and frames were
    /// queued, or if the link was described since the last batch (the tenant attached), or if
    /// the published deadline moved earlier; then asks to be woken for more frames and
    /// re-checks. Returns Ok(true) if the tenant may wait, Ok(false) if frames arrived meanwhile
    /// (poll again).
    pub fn finish_batch(&mut self) -> Result<bool, LinkError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut notified = false;
        if core::mem::take(&mut self.tx.sent) && self.tx.active.signal_wanted() {
            self.channel.notify();
            notified = true;
        }
        // Attached (the first batch after the info appeared): one notification says so.
        if core::mem::take(&mut self.announce) && !notified {
            self.channel.notify();
            notified = true;
        }
        // An earlier deadline must reach the virtualiser's timer: it reads every deadline after
        // each of its batches, so one notification (if none went out already) is enough.
        if core::mem::take(&mut self.wake_moved_earlier) && !notified {
            self.channel.notify();
        }
        // The virtualiser takes free receive buffers when it needs them; it never waits for
        // them, so returning them needs no notification.
        self.rx.returned = false;
        let mut idle = self.rx.active.finish_batch().map_err(LinkError)?;
        if self.tx.starved {
            // Wake when transmit buffers come back.
            if !self.tx.free.finish_batch().map_err(LinkError)? {
                idle = false;
            }
        }
        Ok(idle)
    }

    /// Takes back transmit buffers the virtualiser has returned.
    fn reclaim(&mut self) {
        loop {
            match self.tx.free.dequeue() {
                Ok(Some(d)) => match self.tx.layout.check(d) {
                    Ok(i) if self.tx.pool.len() < self.tx.layout.count as usize => self.tx.pool.push(i),
                    Ok(_) => {
                        let count = self.tx.layout.count;
                        return self.fail(Corrupt::Index { items: count + 1, capacity: count });
                    }
                    Err(e) => return self.fail(e),
                },
                Ok(None) => return,
                Err(e) => return self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: Corrupt) {
        self.error.get_or_insert(LinkError(e));
    }
}

fn enqueue_error(e: EnqueueError) -> LinkError {
    match e {
        EnqueueError::Full => LinkError(Corrupt::Index { items: TENANT_BUFFERS + 1, capacity: TENANT_BUFFERS }),
        EnqueueError::Corrupt(c) => LinkError(c),
    }
}

/// A received frame (its buffer goes back to the virtualiser once consumed or dropped).
pub struct RxToken<'a> {
    rx: &'a mut RxSide,
    descriptor: Option<Descriptor>,
}

/// Room for one frame to send (the buffer goes back to the pool if the token is dropped).
pub struct TxToken<'a> {
    tx: &'a mut TxSide,
    index: Option<u32>,
}

impl RxSide {
    fn give_back(&mut self, d: Descriptor) {
        // Cannot fail: the tenant holds each of its buffers at most once.
        let _ = self.free.enqueue(Descriptor::new(d.offset, 0));
        self.returned = true;
    }
}

impl Drop for RxToken<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.descriptor.take() {
            self.rx.give_back(d);
        }
    }
}

impl Drop for TxToken<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.index.take() {
            self.tx.pool.push(i);
        }
    }
}

impl smoltcp::phy::RxToken for RxToken<'_> {
    fn consume<R, F>(mut self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let d = self.descriptor.take().expect("a token is consumed once");
        let mut frame = [0u8; MAX_FRAME as usize];
        let len = d.len as usize;
        // The descriptor was checked in `receive`; a failed copy leaves a zero-length frame.
        let len = if self.rx.data.read(d.offset, &mut frame[..len]).is_ok() { len } else { 0 };
        // The buffer goes back before smoltcp runs: the frame is in private memory now.
        self.rx.give_back(d);
        f(&frame[..len])
    }
}

impl smoltcp::phy::TxToken for TxToken<'_> {
    fn consume<R, F>(mut self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let index = self.index.take().expect("a token is consumed once");
        let mut frame = [0u8; MAX_FRAME as usize];
        let len = len.min(MAX_FRAME as usize);
        let result = f(&mut frame[..len]);
        let offset = self.tx.layout.offset(index);
        if self.tx.data.write(offset, &frame[..len]).is_ok() && self.tx.active.enqueue(Descriptor::new(offset, len as u32)).is_ok() {
            self.tx.sent = true;
        } else {
            self.tx.pool.push(index);
        }
        result
    }
}

impl Device for NetLink {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.tx.pool.is_empty() {
            self.reclaim();
        }
        let Some(&index) = self.tx.pool.last() else {
            // smoltcp wants room to answer before it takes a frame: wait for buffers.
            self.tx.starved = true;
            return None;
        };
        let descriptor = match self.rx.active.dequeue() {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        match self.rx.layout.check(descriptor) {
            Ok(_) if descriptor.len <= MAX_FRAME => {}
            Ok(_) => {
                // Too long to be a frame: return the buffer, skip it.
                self.rx.give_back(descriptor);
                return None;
            }
            Err(e) => {
                self.fail(e);
                return None;
            }
        }
        self.tx.pool.pop();
        Some((RxToken { rx: &mut self.rx, descriptor: Some(descriptor) }, TxToken { tx: &mut self.tx, index: Some(index) }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.tx.pool.is_empty() {
            self.reclaim();
        }
        match self.tx.pool.pop() {
            Some(index) => {
                self.tx.starved = false;
                Some(TxToken { tx: &mut self.tx, index: Some(index) })
            }
            None => {
                self.tx.starved = true;
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME as usize;
        caps
    }
}
