//! The network virtualiser PD: the only PD that sees both the NIC's buffers and tenants'.
//!
//! Receive: frames the driver hands over are parsed (headers copied out first), routed by the
//! flow table (connection 5-tuple, then local port) and COPIED into a buffer the owning tenant
//! gave back on its `rx_free` queue; a tenant without free buffers loses that frame, nobody
//! else's. ARP requests for the node are answered here; ARP replies go to every tenant.
//!
//! Transmit: each descriptor a tenant hands over is checked against the tenant's region (a bad
//! one marks the tenant broken: it is no longer served, everyone else is), the frame is copied
//! into a NIC transmit buffer and checked there (source MAC, address and port must be the
//! node's and the tenant's: `edgeos_netvirt_core::policy`), then queued to the driver.
//!
//! Routes are installed at start-up from the description's variables and at run time by
//! protected calls (`edgeos_netvirt_core::api`). Notifications are batched: one per peer per
//! batch at most, with the queues' wake-up protocol.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::vec::Vec;
use core::ptr::NonNull;

use edgeos_microkit::{
    debug_println, get_mr, memory_region_symbol, protection_domain, set_mr, var, Channel, ChannelSet, DeferredAction,
    Handler, Infallible, MessageInfo,
};
use edgeos_netvirt_core::api::{self, Request};
use edgeos_netvirt_core::flow::{Connection, FlowTable, Protocol, TenantId};
use edgeos_netvirt_core::parse::{self, Payload, ARP_REPLY, ETHERNET_HEADER, MAX_FRAME};
use edgeos_netvirt_core::config::{self, Route};
use edgeos_netvirt_core::{arp, policy};
use edgeos_rings::net::{
    LinkControl, LinkInfo, TenantQueue, LINK_INFO_BYTES, LINK_INFO_OFFSET, NIC_BUFFERS, NIC_FRAME_OFFSET, NIC_LAYOUT,
    NIC_QUEUE_BYTES, TENANT_BUFFERS, TENANT_LAYOUT, TENANT_LINK_BYTES,
};
use edgeos_rings::raw::{self, SharedRegion};
use edgeos_rings::{Consumer, Corrupt, Descriptor, EnqueueError, Producer};

/// Static tenants this build serves (the description gives each its regions and channel).
const MAX_TENANTS: usize = 4;
/// Bytes of a frame's headers copied out for parsing.
const HEADER_COPY: usize = 128;
/// Frames taken from one tenant per round, so one busy tenant cannot starve the others.
const TX_ROUND: usize = 32;

#[derive(Default, Clone, Copy)]
struct Counters {
    received: u64,
    dropped: u64,
    sent: u64,
    refused: u64,
}

struct Tenant {
    id: TenantId,
    channel: Channel,
    rx_free: Consumer<'static>,
    rx_active: Producer<'static>,
    tx_active: Consumer<'static>,
    tx_free: Producer<'static>,
    rx_data: SharedRegion,
    tx_data: SharedRegion,
    /// Broke the queue protocol: no longer served.
    broken: bool,
    /// Delivered or returned something this batch (check its signal flags).
    touched: bool,
    /// Has frames waiting that found no NIC transmit buffer.
    tx_blocked: bool,
    /// Ran out of receive buffers (reported once per episode).
    starving: bool,
    /// The tenant's published timer deadline (untrusted: it only decides when this tenant is
    /// notified), and the last deadline already served (so an unchanged one fires once).
    control: &'static LinkControl,
    served_wake: u64,
    counters: Counters,
}

impl Tenant {
    fn fail(&mut self, what: &str, e: Corrupt) {
        if !self.broken {
            debug_println!("net-virt: tenant {} broke its {what} queue ({e}); no longer served", self.id);
            self.broken = true;
        }
    }
}

struct Virtualiser {
    driver: Channel,
    /// The physical timer's IRQ (30), which serves tenants' deadlines (None: tenants get no timer).
    timer: Option<Channel>,
    ack_timer: bool,
    /// The deadline the timer is armed for (`u64::MAX`: disarmed).
    armed: u64,
    nic_rx_free: Producer<'static>,
    nic_rx_active: Consumer<'static>,
    nic_tx_active: Producer<'static>,
    nic_tx_free: Consumer<'static>,
    nic_rx: SharedRegion,
    nic_tx: SharedRegion,
    /// NIC transmit buffers the virtualiser holds (indices).
    tx_pool: Vec<u32>,
    tenants: Vec<Tenant>,
    table: FlowTable,
    node_mac: parse::Mac,
    node_ip: parse::Ipv4,
    /// Something was queued to the driver this batch.
    driver_touched: bool,
    malformed: u64,
    unrouted: u64,
    /// Frames received from the driver, and counter ticks spent handling events (for
    /// instructions per packet under -icount).
    frames: u64,
    busy_ticks: u64,
    reported_at: u64,
}

/// Frames between two statistics lines.
const STATS_EVERY: u64 = 1 << 14;

/// Arms the EL1 physical timer for counter value `deadline`, or disarms it (`u64::MAX`).
fn arm_timer(deadline: u64) {
    // SAFETY: the kernel lets the PD that owns the physical timer's IRQ (30) program CNTP from
    // EL0; the registers affect nothing but that timer.
    unsafe {
        if deadline == u64::MAX {
            core::arch::asm!("msr cntp_ctl_el0, {off}", "isb", off = in(reg) 0u64);
        } else {
            core::arch::asm!("msr cntp_cval_el0, {d}", "msr cntp_ctl_el0, {on}", "isb", d = in(reg) deadline, on = in(reg) 1u64);
        }
    }
}

/// The physical counter, which the timer compares against (readable at EL0; CNTVOFF is 0, so
/// tenants reading the virtual counter see the same ticks).
fn counter() -> u64 {
    let ticks: u64;
    // SAFETY: reading CNTPCT_EL0 has no side effects; the kernel lets every PD read it.
    unsafe { core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) ticks) };
    ticks
}

fn nic_queue(name: &str, vaddr: NonNull<u8>, size: usize) -> edgeos_rings::QueueView<'static> {
    if size < NIC_QUEUE_BYTES {
        panic!("queue region {name} is {size:#x} bytes; the NIC link needs {NIC_QUEUE_BYTES:#x}");
    }
    // SAFETY: the description maps the region for the PD's lifetime; only queue views touch it.
    match unsafe { raw::queue_view(vaddr, size, NIC_BUFFERS) } {
        Ok(v) => v,
        Err(e) => panic!("queue region {name}: {e}"),
    }
}

fn data_region(name: &str, vaddr: NonNull<u8>, size: usize, needed: u64) -> SharedRegion {
    if (size as u64) < needed {
        panic!("data region {name} is {size:#x} bytes; it needs {needed:#x}");
    }
    // SAFETY: mapped for the PD's lifetime (description), accessed only through this region's copies.
    unsafe { SharedRegion::new(vaddr, size) }
}

fn queue_or_panic<T>(what: &str, r: Result<T, Corrupt>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// What the description says about one static tenant.
struct TenantConfig {
    channel: usize,
    link: usize,
    link_size: usize,
    rx: usize,
    rx_size: usize,
    tx: usize,
    tx_size: usize,
}

macro_rules! tenant_config {
    ($ch:ident, $link:ident, $link_size:ident, $rx:ident, $rx_size:ident, $tx:ident, $tx_size:ident) => {
        TenantConfig {
            channel: *var!($ch: usize = usize::MAX),
            link: *var!($link: usize = 0),
            link_size: *var!($link_size: usize = 0),
            rx: *var!($rx: usize = 0),
            rx_size: *var!($rx_size: usize = 0),
            tx: *var!($tx: usize = 0),
            tx_size: *var!($tx_size: usize = 0),
        }
    };
}

fn open_tenant(id: TenantId, c: &TenantConfig) -> Tenant {
    let link = NonNull::new(c.link as *mut u8).unwrap_or_else(|| panic!("tenant {id}: its link region is not mapped"));
    if c.link_size < TENANT_LINK_BYTES {
        panic!("tenant {id}: link region is {:#x} bytes; it needs {TENANT_LINK_BYTES:#x}", c.link_size);
    }
    let queue = |which| {
        // SAFETY: the description maps the link region for the PD's lifetime.
        match unsafe { raw::tenant_queue(link, c.link_size, which) } {
            Ok(v) => v,
            Err(e) => panic!("tenant {id}: {which:?} queue: {e}"),
        }
    };
    let region = |name, addr: usize, size| {
        let p = NonNull::new(addr as *mut u8).unwrap_or_else(|| panic!("tenant {id}: {name} region is not mapped"));
        data_region(name, p, size, TENANT_LAYOUT.region_bytes())
    };
    Tenant {
        id,
        channel: Channel::new(c.channel),
        rx_free: queue_or_panic("tenant queue", Consumer::new(queue(TenantQueue::RxFree), TENANT_BUFFERS)),
        rx_active: queue_or_panic("tenant queue", Producer::new(queue(TenantQueue::RxActive), TENANT_BUFFERS)),
        tx_active: queue_or_panic("tenant queue", Consumer::new(queue(TenantQueue::TxActive), TENANT_BUFFERS)),
        tx_free: queue_or_panic("tenant queue", Producer::new(queue(TenantQueue::TxFree), TENANT_BUFFERS)),
        rx_data: region("rx", c.rx, c.rx_size),
        tx_data: region("tx", c.tx, c.tx_size),
        broken: false,
        touched: false,
        tx_blocked: false,
        starving: false,
        // SAFETY: the description maps the link region for the PD's lifetime (size checked above).
        control: unsafe { raw::link_control(link, c.link_size) }.unwrap_or_else(|e| panic!("tenant {id}: link control: {e}")),
        served_wake: u64::MAX,
        counters: Counters::default(),
    }
}

#[protection_domain(heap_size = 0x80000)]
fn init() -> Virtualiser {
    let driver = Channel::new(*var!(driver_channel: usize = 0));
    let timer = match *var!(timer_channel: usize = usize::MAX) {
        usize::MAX => None,
        id => Some(Channel::new(id)),
    };
    let mac = *var!(node_mac: u64 = 0x5254_0012_3456);
    let node_mac: parse::Mac = mac.to_be_bytes()[2..8].try_into().expect("six bytes");
    let node_ip: parse::Ipv4 = var!(node_ip: u32 = 0x0a00_020f).to_be_bytes();

    let nic_rx = data_region(
        "nic_rx",
        memory_region_symbol!(nic_rx_buffers_vaddr: *mut u8),
        *var!(nic_rx_buffers_size: usize = 0),
        NIC_LAYOUT.region_bytes(),
    );
    let nic_tx = data_region(
        "nic_tx",
        memory_region_symbol!(nic_tx_buffers_vaddr: *mut u8),
        *var!(nic_tx_buffers_size: usize = 0),
        NIC_LAYOUT.region_bytes(),
    );
    let nic_rx_free = queue_or_panic("NIC queue", Producer::new(
        nic_queue("rx_free", memory_region_symbol!(rx_free_vaddr: *mut u8), *var!(rx_free_size: usize = 0)),
        NIC_BUFFERS,
    ));
    let nic_rx_active = queue_or_panic("NIC queue", Consumer::new(
        nic_queue("rx_active", memory_region_symbol!(rx_active_vaddr: *mut u8), *var!(rx_active_size: usize = 0)),
        NIC_BUFFERS,
    ));
    let nic_tx_active = queue_or_panic("NIC queue", Producer::new(
        nic_queue("tx_active", memory_region_symbol!(tx_active_vaddr: *mut u8), *var!(tx_active_size: usize = 0)),
        NIC_BUFFERS,
    ));
    let nic_tx_free = queue_or_panic("NIC queue", Consumer::new(
        nic_queue("tx_free", memory_region_symbol!(tx_free_vaddr: *mut u8), *var!(tx_free_size: usize = 0)),
        NIC_BUFFERS,
    ));

    let configs = [
        tenant_config!(tenant0_channel, tenant0_link_vaddr, tenant0_link_size, tenant0_rx_vaddr, tenant0_rx_size, tenant0_tx_vaddr, tenant0_tx_size),
        tenant_config!(tenant1_channel, tenant1_link_vaddr, tenant1_link_size, tenant1_rx_vaddr, tenant1_rx_size, tenant1_tx_vaddr, tenant1_tx_size),
        tenant_config!(tenant2_channel, tenant2_link_vaddr, tenant2_link_size, tenant2_rx_vaddr, tenant2_rx_size, tenant2_tx_vaddr, tenant2_tx_size),
        tenant_config!(tenant3_channel, tenant3_link_vaddr, tenant3_link_size, tenant3_rx_vaddr, tenant3_rx_size, tenant3_tx_vaddr, tenant3_tx_size),
    ];
    let present = configs.iter().take_while(|c| c.channel != usize::MAX).count();
    let mut table = FlowTable::new(present as TenantId);
    let mut tenants = Vec::with_capacity(present);
    // The ports each tenant is told about (the first UDP and TCP route of each).
    let mut infos: Vec<LinkInfo> = (0..present).map(|i| LinkInfo { tenant: i as u16, udp_port: 0, tcp_port: 0 }).collect();
    let mut install = |route: Route| {
        if let Err(e) = table.install_port(route.protocol, route.port, route.tenant) {
            panic!("net-virt: static route {route:?}: {e:?}");
        }
        let info = &mut infos[route.tenant as usize];
        let slot = match route.protocol {
            Protocol::Udp => &mut info.udp_port,
            Protocol::Tcp => &mut info.tcp_port,
        };
        if *slot == 0 {
            *slot = route.port;
        }
    };
    let config_size = *var!(routes_config_size: usize = 0);
    if config_size == 0 {
        // No configuration: tenant i gets UDP and TCP port `default_port_base + i`.
        let base = *var!(default_port_base: u16 = 5555);
        for i in 0..present {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                install(Route { tenant: i as TenantId, protocol, port: base + i as u16 });
            }
        }
    } else {
        let text = data_region("routes_config", memory_region_symbol!(routes_config_vaddr: *mut u8), config_size, 0);
        let mut copy = alloc::vec![0u8; config_size.min(0x10000)];
        if text.read(0, &mut copy).is_err() {
            panic!("net-virt: cannot read the route configuration");
        }
        let mut bad_tenant = None;
        let result = config::parse_routes(&copy, |r| {
            if (r.tenant as usize) < present {
                install(r)
            } else {
                bad_tenant.get_or_insert(r.tenant);
            }
        });
        if let Err(e) = result {
            panic!("net-virt: {e}");
        }
        if let Some(t) = bad_tenant {
            panic!("net-virt: route configuration names tenant {t}, but only {present} are configured");
        }
    }
    for (i, c) in configs.iter().take(present).enumerate() {
        let id = i as TenantId;
        let info = infos[i];
        let tenant = open_tenant(id, c);
        // Tell the tenant its ports before it runs (it has a lower priority than ours).
        let link = NonNull::new(c.link as *mut u8).expect("checked in open_tenant");
        // SAFETY: the link region is mapped for the PD's life (checked in `open_tenant`); this
        // view covers only its info block, which no queue view touches.
        let info_block = unsafe { SharedRegion::new(NonNull::new_unchecked(link.as_ptr().add(LINK_INFO_OFFSET)), LINK_INFO_BYTES) };
        if info_block.write(0, &info.encode()).is_err() {
            panic!("tenant {id}: cannot write its link information");
        }
        tenants.push(tenant);
        debug_println!("net-virt: tenant {id} on channel {}: udp port {}, tcp port {}", c.channel, info.udp_port, info.tcp_port);
    }
    if configs.iter().skip(present).any(|c| c.channel != usize::MAX) {
        panic!("tenants must be numbered from 0 without gaps (at most {MAX_TENANTS})");
    }

    let mut v = Virtualiser {
        driver,
        timer,
        ack_timer: false,
        armed: u64::MAX,
        nic_rx_free,
        nic_rx_active,
        nic_tx_active,
        nic_tx_free,
        nic_rx,
        nic_tx,
        tx_pool: (0..NIC_BUFFERS).rev().collect(),
        tenants,
        table,
        node_mac,
        node_ip,
        driver_touched: false,
        malformed: 0,
        unrouted: 0,
        frames: 0,
        busy_ticks: 0,
        reported_at: 0,
    };
    // Every receive buffer starts with the driver.
    for i in 0..NIC_BUFFERS {
        if let Err(e) = v.nic_rx_free.enqueue(Descriptor::new(NIC_LAYOUT.offset(i), 0)) {
            panic!("filling the driver's receive queue: {e:?}");
        }
    }
    v.driver_touched = true;
    v.batch();
    debug_println!(
        "net-virt: node {}.{}.{}.{} MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} tenants",
        node_ip[0], node_ip[1], node_ip[2], node_ip[3],
        node_mac[0], node_mac[1], node_mac[2], node_mac[3], node_mac[4], node_mac[5],
        v.tenants.len()
    );
    v
}

/// The driver is trusted; if it breaks the protocol the virtualiser stops loudly.
fn driver_queue<T>(r: Result<T, Corrupt>) -> T {
    r.unwrap_or_else(|e| panic!("net-virt: the driver broke a queue: {e}"))
}

fn driver_enqueue(r: Result<(), EnqueueError>) {
    if let Err(e) = r {
        panic!("net-virt: queue to the driver: {e:?} (a buffer was duplicated)");
    }
}

impl Virtualiser {
    /// Copies a received frame into tenant `t`'s next free buffer.
    fn deliver(&mut self, t: usize, nic_offset: u64, len: u32) {
        let tenant = &mut self.tenants[t];
        if tenant.broken {
            return;
        }
        let d = match tenant.rx_free.dequeue() {
            Ok(Some(d)) => d,
            Ok(None) => {
                // The tenant is not keeping up: it alone loses this frame.
                tenant.counters.dropped += 1;
                if !tenant.starving {
                    tenant.starving = true;
                    debug_println!("net-virt: tenant {} is not draining its ring; dropping its frames", tenant.id);
                }
                return;
            }
            Err(e) => return tenant.fail("rx_free", e),
        };
        if let Err(e) = TENANT_LAYOUT.check(d) {
            return tenant.fail("rx_free", e);
        }
        tenant.starving = false;
        if tenant.rx_data.copy_from(d.offset, &self.nic_rx, nic_offset, len as usize).is_err() {
            return tenant.fail("rx_free", Corrupt::Offset { offset: d.offset });
        }
        match tenant.rx_active.enqueue(Descriptor::new(d.offset, len)) {
            Ok(()) => {
                tenant.counters.received += 1;
                tenant.touched = true;
            }
            Err(EnqueueError::Full) => tenant.fail("rx_active", Corrupt::Index { items: TENANT_BUFFERS + 1, capacity: TENANT_BUFFERS }),
            Err(EnqueueError::Corrupt(e)) => tenant.fail("rx_active", e),
        }
    }

    /// Sends a frame the virtualiser made itself (ARP replies).
    fn send_own(&mut self, frame: &[u8]) {
        let Some(index) = self.tx_pool.pop() else { return };
        let offset = NIC_LAYOUT.offset(index);
        let len = frame.len().max(60);
        let mut padded = [0u8; 64];
        padded[..frame.len()].copy_from_slice(frame);
        if self.nic_tx.write(offset + NIC_FRAME_OFFSET, &padded[..len]).is_err() {
            self.tx_pool.push(index);
            return;
        }
        driver_enqueue(self.nic_tx_active.enqueue(Descriptor::new(offset, len as u32)));
        self.driver_touched = true;
    }

    /// Routes one received frame; returns nothing, every outcome is counted.
    fn route(&mut self, nic_offset: u64, len: u32) {
        let frame_offset = nic_offset + NIC_FRAME_OFFSET;
        if (len as usize) < ETHERNET_HEADER || len as usize > MAX_FRAME {
            self.malformed += 1;
            return;
        }
        let mut headers = [0u8; HEADER_COPY];
        let n = (len as usize).min(HEADER_COPY);
        if self.nic_rx.read(frame_offset, &mut headers[..n]).is_err() {
            self.malformed += 1;
            return;
        }
        let frame = match parse::parse(&headers[..n], len as usize) {
            Ok(f) => f,
            Err(_) => {
                self.malformed += 1;
                return;
            }
        };
        match frame.payload {
            Payload::Arp(a) => {
                if let Some(reply) = arp::reply(&a, self.node_mac, self.node_ip) {
                    self.send_own(&reply);
                } else if a.operation == ARP_REPLY && a.target_ip == self.node_ip {
                    for t in 0..self.tenants.len() {
                        self.deliver(t, frame_offset, len);
                    }
                } else {
                    self.unrouted += 1;
                }
            }
            Payload::Ipv4(ip) => {
                let route = match (ip.destination == self.node_ip, Protocol::from_ip(ip.protocol), ip.ports, ip.fragmented) {
                    (true, Some(protocol), Some(ports), false) => self.table.lookup(&Connection {
                        protocol,
                        remote_ip: ip.source,
                        remote_port: ports.source,
                        local_port: ports.destination,
                    }),
                    _ => None,
                };
                match route {
                    Some(t) => self.deliver(t as usize, frame_offset, len),
                    None => self.unrouted += 1,
                }
            }
            Payload::Other(_) => self.unrouted += 1,
        }
    }

    /// Takes up to `TX_ROUND` frames from tenant `t` to the driver; true if it did anything.
    fn transmit_from(&mut self, t: usize) -> bool {
        let mut progress = false;
        for _ in 0..TX_ROUND {
            let tenant = &mut self.tenants[t];
            if tenant.broken {
                return progress;
            }
            if self.tx_pool.is_empty() {
                tenant.tx_blocked = !matches!(tenant.tx_active.is_empty(), Ok(true));
                return progress;
            }
            let d = match tenant.tx_active.dequeue() {
                Ok(Some(d)) => d,
                Ok(None) => return progress,
                Err(e) => {
                    tenant.fail("tx_active", e);
                    return progress;
                }
            };
            progress = true;
            if let Err(e) = TENANT_LAYOUT.check(d) {
                tenant.fail("tx_active", e);
                return progress;
            }
            let len = d.len as usize;
            let mut verdict = Err(());
            if (ETHERNET_HEADER..=MAX_FRAME).contains(&len) {
                let index = self.tx_pool.pop().expect("checked non-empty");
                let nic_offset = NIC_LAYOUT.offset(index);
                // Copy first, then check the copy: the tenant cannot change it any more.
                let copied = self.nic_tx.copy_from(nic_offset + NIC_FRAME_OFFSET, &tenant.tx_data, d.offset, len).is_ok();
                let mut headers = [0u8; HEADER_COPY];
                let n = len.min(HEADER_COPY);
                let allowed = copied
                    && self.nic_tx.read(nic_offset + NIC_FRAME_OFFSET, &mut headers[..n]).is_ok()
                    && policy::check_transmit(&headers[..n], len, tenant.id, self.node_mac, self.node_ip, &self.table).is_ok();
                if allowed {
                    driver_enqueue(self.nic_tx_active.enqueue(Descriptor::new(nic_offset, len as u32)));
                    self.driver_touched = true;
                    verdict = Ok(());
                } else {
                    self.tx_pool.push(index);
                }
            }
            match verdict {
                Ok(()) => tenant.counters.sent += 1,
                Err(()) => tenant.counters.refused += 1,
            }
            // The tenant's buffer goes back either way.
            match tenant.tx_free.enqueue(Descriptor::new(d.offset, 0)) {
                Ok(()) => tenant.touched = true,
                Err(EnqueueError::Full) => tenant.fail("tx_free", Corrupt::Index { items: TENANT_BUFFERS + 1, capacity: TENANT_BUFFERS }),
                Err(EnqueueError::Corrupt(e)) => tenant.fail("tx_free", e),
            }
        }
        progress
    }

    /// One batch: everything that can be done now, then the wake-up protocol.
    fn batch(&mut self) {
        loop {
            // Sent buffers back from the driver.
            while let Some(d) = driver_queue(self.nic_tx_free.dequeue()) {
                let index = driver_queue(NIC_LAYOUT.check(d));
                self.tx_pool.push(index);
                // Tenants that were waiting for a transmit buffer can go on.
                for tenant in self.tenants.iter_mut() {
                    tenant.tx_blocked = false;
                }
            }
            // Received frames.
            while let Some(d) = driver_queue(self.nic_rx_active.dequeue()) {
                driver_queue(NIC_LAYOUT.check(d));
                self.frames += 1;
                self.route(d.offset, d.len);
                driver_enqueue(self.nic_rx_free.enqueue(Descriptor::new(d.offset, 0)));
                self.driver_touched = true;
            }
            // Tenants' frames, round robin.
            let mut progress = true;
            while progress && !self.tx_pool.is_empty() {
                progress = false;
                for t in 0..self.tenants.len() {
                    progress |= self.transmit_from(t);
                }
            }
            // At most one notification per peer for the batch.
            if core::mem::take(&mut self.driver_touched) {
                let rx = self.nic_rx_free.signal_wanted();
                let tx = self.nic_tx_active.signal_wanted();
                if rx | tx {
                    self.driver.notify();
                }
            }
            for tenant in self.tenants.iter_mut() {
                if core::mem::take(&mut tenant.touched) && !tenant.broken {
                    let rx = tenant.rx_active.signal_wanted();
                    let tx = tenant.tx_free.signal_wanted();
                    if rx | tx {
                        tenant.channel.notify();
                    }
                }
            }
            // Ask to be woken, then re-check every queue we consume. Sent buffers coming back
            // wake the virtualiser only when it runs low or a tenant waits for one (every batch
            // takes them back anyway), which saves a notification a frame.
            let mut more = !driver_queue(self.nic_rx_active.finish_batch());
            let need_tx_buffers = self.tx_pool.len() < (NIC_BUFFERS / 4) as usize || self.tenants.iter().any(|t| t.tx_blocked);
            if need_tx_buffers {
                more |= !driver_queue(self.nic_tx_free.finish_batch());
            } else {
                self.nic_tx_free.cancel_signal();
            }
            for tenant in self.tenants.iter_mut() {
                if tenant.broken {
                    continue;
                }
                match tenant.tx_active.finish_batch() {
                    Ok(true) => {}
                    Ok(false) => more |= !tenant.tx_blocked && !self.tx_pool.is_empty(),
                    Err(e) => tenant.fail("tx_active", e),
                }
            }
            if !more {
                return;
            }
        }
    }
}

impl Virtualiser {
    /// Notifies tenants whose deadlines have passed and arms the timer for the earliest one
    /// still ahead. A deadline a tenant leaves unchanged after being served fires only once,
    /// so a tenant cannot make the virtualiser spin.
    fn serve_deadlines(&mut self) {
        if self.timer.is_none() {
            return;
        }
        let now = counter();
        let mut next = u64::MAX;
        for tenant in self.tenants.iter_mut() {
            let wake = tenant.control.wake_at();
            if tenant.broken || wake == u64::MAX || wake == tenant.served_wake {
                continue;
            }
            if wake <= now {
                tenant.served_wake = wake;
                tenant.channel.notify();
            } else {
                next = next.min(wake);
            }
        }
        if next != self.armed {
            arm_timer(next);
            self.armed = next;
        }
    }
}

impl Handler for Virtualiser {
    type Error = Infallible;

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        match self.timer {
            Some(timer) if core::mem::take(&mut self.ack_timer) => Some(DeferredAction::new_irq_ack(timer)),
            _ => None,
        }
    }

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        // A batch looks at every queue it consumes (a handful of static tenants); with
        // thousands of instances this becomes the kernel's pending-instance set (DESIGN-NOTES 2).
        let start = counter();
        if let Some(timer) = self.timer {
            if channels.contains(timer) {
                // The timer condition holds until re-armed: force `serve_deadlines` to re-arm.
                self.armed = 0;
                self.ack_timer = true;
            }
        }
        self.batch();
        self.serve_deadlines();
        self.busy_ticks += counter() - start;
        if self.frames - self.reported_at >= STATS_EVERY {
            self.reported_at = self.frames;
            let sent: u64 = self.tenants.iter().map(|t| t.counters.sent).sum();
            let dropped: u64 = self.tenants.iter().map(|t| t.counters.dropped).sum();
            debug_println!(
                "net-virt: stats: frames {} sent {} dropped {} malformed {} unrouted {} handler_ticks {}",
                self.frames, sent, dropped, self.malformed, self.unrouted, self.busy_ticks
            );
        }
        Ok(())
    }

    fn protected(&mut self, _channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        let count = msg_info.count().min(8);
        let mut mrs = [0u64; 8];
        for (i, mr) in mrs.iter_mut().enumerate().take(count) {
            *mr = get_mr(i);
        }
        let reply = match api::decode(msg_info.label(), &mrs[..count]) {
            Ok(Request::Counters { tenant }) => match self.tenants.get(tenant as usize) {
                Some(t) => {
                    let c = t.counters;
                    for (i, v) in [c.received, c.dropped, c.sent, c.refused, self.malformed, self.unrouted].into_iter().enumerate() {
                        set_mr(i, v);
                    }
                    MessageInfo::new(0, 6)
                }
                None => MessageInfo::new(api::ApiError::NoSuchTenant as u64, 0),
            },
            Ok(request) => match api::apply(&mut self.table, request) {
                Ok(Some(v)) => {
                    set_mr(0, v);
                    MessageInfo::new(0, 1)
                }
                Ok(None) => MessageInfo::new(0, 0),
                Err(e) => MessageInfo::new(e as u64, 0),
            },
            Err(e) => MessageInfo::new(e as u64, 0),
        };
        Ok(reply)
    }
}
