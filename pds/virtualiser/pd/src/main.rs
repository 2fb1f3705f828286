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
//!
//! Instance tenants (`docs/network.md`, "Instances"): a service of the manager's services file
//! whose template's regions the description shows in this PD's instance windows (`inst<F>_*`
//! variables for the service with `fork F`) is served by featherweight instances. The first
//! packet of a flow to such a service's port with no route yet makes the virtualiser ask the
//! manager (ASSIGN, a protected call) for an instance; it installs the route, opens the
//! instance's link in its window, writes its `LinkInfo` if the instance is fresh, and delivers
//! (a fresh instance with no receive buffer yet gets the frame when it first notifies). An
//! instance idle past its service's time, or one that broke its queues, is dropped and
//! RELEASEd; instances the manager retires (DEAD_LIST) are dropped and acknowledged
//! (ACK_DEAD) before the manager destroys them, so a window is never touched once unmapped.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::vec::Vec;
use core::ptr::NonNull;

mod manager;

use alloc::boxed::Box;

use edgeos_microkit::{
    debug_println, get_mr, memory_region_symbol, protection_domain, set_mr, var, Channel, ChannelArray, ChannelSet,
    DeferredAction, Handler, Infallible, Instance, MessageInfo,
};
use edgeos_netvirt_core::api::{self, Request};
use edgeos_netvirt_core::flow::{Connection, FlowTable, Protocol, TenantId};
use edgeos_netvirt_core::parse::{self, Payload, ARP_REPLY, ETHERNET_HEADER, MAX_FRAME};
use edgeos_netvirt_core::config::{self, Route};
use edgeos_netvirt_core::instances::{self, InstanceMap, InstancePolicy, Life, ServiceSpec, MAX_SLOTS};
use edgeos_netvirt_core::sched::{Deadlines, Refusals, WorkSet};
use edgeos_netvirt_core::{arp, policy};
use edgeos_rings::net::{
    tenant_layout, LinkControl, LinkInfo, TenantQueue, LINK_INFO_BYTES, LINK_INFO_OFFSET, NIC_BUFFERS, NIC_FRAME_OFFSET,
    NIC_LAYOUT, TENANT_BUFFERS, TENANT_LINK_BYTES,
};
use edgeos_rings::raw::{self, SharedRegion};
use edgeos_rings::{BufferLayout, Consumer, Corrupt, Descriptor, EnqueueError, Producer};

use edgeos_manager_core::api::ApiError;
use manager::ManagerLink;

/// Static tenants this build serves (the description gives each its regions and channel).
const MAX_TENANTS: usize = 5;
/// Bytes of a frame's headers copied out for parsing.
const HEADER_COPY: usize = 128;
/// Frames taken from one tenant per round, so one busy tenant cannot starve the others.
const TX_ROUND: usize = 32;
/// After the manager refuses a flow an instance, its packets are dropped without asking again
/// for 1/this of a second (10 ms).
const ASSIGN_BACKOFF_PER_SECOND: u64 = 100;

#[derive(Default, Clone, Copy)]
struct Counters {
    received: u64,
    dropped: u64,
    sent: u64,
    refused: u64,
}

/// How a tenant is notified: a static tenant on its channel, an instance through its
/// template's channel array.
#[derive(Clone, Copy)]
enum Peer {
    Static(Channel),
    Instance(ChannelArray, Instance),
}

impl Peer {
    fn notify(&self) {
        match self {
            Peer::Static(c) => c.notify(),
            // A dead instance cannot be notified; the manager tells us (DEAD_LIST) soon.
            Peer::Instance(a, i) => {
                let _ = a.notify(*i);
            }
        }
    }
}

struct Tenant {
    id: TenantId,
    peer: Peer,
    /// The buffers of its two data regions ([`edgeos_rings::net::tenant_layout`] of their sizes).
    rx_layout: BufferLayout,
    tx_layout: BufferLayout,
    /// Instances only: idle time, first notification, the parked frame.
    life: Option<Life>,
    /// Notify it at the end of this batch whatever its queues say (a fresh instance).
    force_notify: bool,
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
    /// Has frames waiting that found no NIC transmit buffer (it is in `Virtualiser::blocked`).
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
            let kind = if self.life.is_some() { "instance tenant" } else { "tenant" };
            debug_println!("net-virt: {kind} {} broke its {what} queue ({e}); no longer served", self.id);
            self.broken = true;
        }
    }
}

/// A template-backed service: its instances' windows (instance `i`'s copy of a region is at
/// `base + i * stride`), its channel array and its live instances.
struct Slot {
    spec: ServiceSpec,
    array: ChannelArray,
    link: usize,
    link_stride: usize,
    rx: usize,
    rx_stride: usize,
    tx: usize,
    tx_stride: usize,
    rx_layout: BufferLayout,
    tx_layout: BufferLayout,
    /// Indexed by instance id (grown on demand up to `SLOT_INSTANCES`).
    instances: Vec<Option<Box<Tenant>>>,
}

/// Counters of the instance machinery.
#[derive(Default, Clone, Copy)]
struct InstanceCounters {
    assigned: u64,
    fresh: u64,
    refused: u64,
    released_idle: u64,
    released_broken: u64,
    dead: u64,
    parked: u64,
    route_errors: u64,
    /// Packets dropped without asking the manager: their flow was refused an instance within
    /// the back-off time.
    backed_off: u64,
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
    /// Static tenants (ids `0..tenants.len()`).
    tenants: Vec<Tenant>,
    /// Template-backed services, their instance tenants, and the ids of the live ones.
    map: InstanceMap,
    slots: Vec<Slot>,
    live: Vec<TenantId>,
    /// Instances to drop (and RELEASE) at the end of this event.
    doomed: Vec<(TenantId, Drop)>,
    /// Instances with activity to report to the manager (TOUCH) at the end of this event.
    touch: Vec<TenantId>,
    /// Instances a channel array reported (scratch).
    heard: Vec<(usize, u32)>,
    /// The tenants this event visits (`docs/network.md`, "Per event cost"): they notified, a
    /// frame went to them, they are fresh, or transmit buffers came back while they waited.
    /// A tenant leaves it (at the end of the event) only with a signal requested on its
    /// `tx_active`, or in `blocked`.
    work: WorkSet,
    /// Tenants with frames waiting for a NIC transmit buffer (`tx_blocked`).
    blocked: WorkSet,
    /// Tenants' timer and idle deadlines (earliest first; the timer is armed for the first).
    deadlines: Deadlines,
    /// Tenants notified for a deadline that have not published another one yet: a later
    /// deadline comes without a notification, so each event re-reads theirs until it
    /// changed (as the scan of every tenant did before). `woken_spare`: scratch.
    woken: WorkSet,
    woken_spare: WorkSet,
    /// Flows the manager recently refused an instance for (ASSIGN back-off).
    refusals: Refusals,
    /// The manager asked for a notification when this event is done (pool refill).
    refill: bool,
    /// The counter at the start of this event.
    now: u64,
    manager: Option<ManagerLink>,
    /// The channel of the route API's controller (`controller_channel`; None: the API refuses
    /// every call).
    controller: Option<usize>,
    instance_counters: InstanceCounters,
    table: FlowTable,
    node_mac: parse::Mac,
    node_ip: parse::Ipv4,
    /// Something was queued to the driver this batch.
    driver_touched: bool,
    malformed: u64,
    unrouted: u64,
    /// Route API calls refused because the caller is not the controller.
    refused_calls: u64,
    /// Frames received from the driver, and counter ticks spent handling events (for
    /// instructions per packet under -icount).
    frames: u64,
    busy_ticks: u64,
    reported_at: u64,
    /// Events handled, tenants they visited (work-set sizes summed) and deadline reviews.
    events: u64,
    visits: u64,
    reviews: u64,
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

/// What the description says about one tenant link: a channel id and the addresses and sizes of
/// its link, receive and transmit regions. For a static tenant (`tenant<N>_*` variables) the
/// sizes are the regions'; for a template-backed service (`inst<F>_*`: instance windows and
/// the channel array's id) they are the windows' strides, which must be the default (the
/// region's size): the stride is the only size the description can tell us.
struct LinkConfig {
    channel: usize,
    link: usize,
    link_size: usize,
    rx: usize,
    rx_size: usize,
    tx: usize,
    tx_size: usize,
}

macro_rules! link_config {
    ($ch:ident, $link:ident, $link_size:ident, $rx:ident, $rx_size:ident, $tx:ident, $tx_size:ident) => {
        LinkConfig {
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

/// The views of one tenant link: four queues and the control word, at `link` (`link_size`
/// bytes), with data regions `rx` and `tx`.
///
/// # Safety
/// The three regions must stay mapped while the returned tenant is used: for the PD's life
/// (static tenants), or until the tenant is dropped (instances: dropped before the instance is
/// RELEASEd or its death is acknowledged, after which the manager may destroy it).
unsafe fn open_link(
    id: TenantId,
    peer: Peer,
    link: NonNull<u8>,
    link_size: usize,
    rx: (NonNull<u8>, usize, BufferLayout),
    tx: (NonNull<u8>, usize, BufferLayout),
    life: Option<Life>,
) -> Result<Tenant, Corrupt> {
    if link_size < TENANT_LINK_BYTES {
        return Err(Corrupt::Layout);
    }
    // SAFETY: the caller keeps the link region mapped while the views are used.
    let queue = |which| unsafe { raw::tenant_queue(link, link_size, which) };
    // SAFETY: as above; `rx`, `tx` hold at least their layouts' bytes (checked by the callers).
    let (rx_data, tx_data) = unsafe { (SharedRegion::new(rx.0, rx.1), SharedRegion::new(tx.0, tx.1)) };
    Ok(Tenant {
        id,
        peer,
        rx_layout: rx.2,
        tx_layout: tx.2,
        life,
        force_notify: false,
        rx_free: Consumer::new(queue(TenantQueue::RxFree)?, TENANT_BUFFERS)?,
        rx_active: Producer::new(queue(TenantQueue::RxActive)?, TENANT_BUFFERS)?,
        tx_active: Consumer::new(queue(TenantQueue::TxActive)?, TENANT_BUFFERS)?,
        tx_free: Producer::new(queue(TenantQueue::TxFree)?, TENANT_BUFFERS)?,
        rx_data,
        tx_data,
        broken: false,
        touched: false,
        tx_blocked: false,
        starving: false,
        // SAFETY: as above.
        control: unsafe { raw::link_control(link, link_size) }?,
        served_wake: u64::MAX,
        counters: Counters::default(),
    })
}

/// Writes `info` into the info block of the link at `link`.
///
/// # Safety
/// `link` must be a mapped tenant link region (at least `TENANT_LINK_BYTES`).
unsafe fn write_link_info(link: NonNull<u8>, info: &LinkInfo) -> bool {
    // SAFETY: inside the link region (the caller's promise); only this view touches the info block.
    let block = unsafe { SharedRegion::new(NonNull::new_unchecked(link.as_ptr().add(LINK_INFO_OFFSET)), LINK_INFO_BYTES) };
    block.write(0, &info.encode()).is_ok()
}

fn layout_of(what: &str, size: usize) -> BufferLayout {
    tenant_layout(size).unwrap_or_else(|| panic!("net-virt: {what} region of {size:#x} bytes is not a whole number of buffers"))
}

fn open_tenant(id: TenantId, c: &LinkConfig) -> Tenant {
    let link = NonNull::new(c.link as *mut u8).unwrap_or_else(|| panic!("tenant {id}: its link region is not mapped"));
    if c.link_size < TENANT_LINK_BYTES {
        panic!("tenant {id}: link region is {:#x} bytes; it needs {TENANT_LINK_BYTES:#x}", c.link_size);
    }
    let region = |name, addr: usize, size| {
        let p = NonNull::new(addr as *mut u8).unwrap_or_else(|| panic!("tenant {id}: {name} region is not mapped"));
        (p, size, layout_of(name, size))
    };
    let peer = Peer::Static(Channel::new(c.channel));
    // SAFETY: the description maps a static tenant's regions for the PD's lifetime.
    unsafe { open_link(id, peer, link, c.link_size, region("rx", c.rx, c.rx_size), region("tx", c.tx, c.tx_size), None) }
        .unwrap_or_else(|e| panic!("tenant {id}: its link: {e}"))
}

/// The generic timer's frequency, for idle times in seconds (QEMU virt's 62.5 MHz if the
/// firmware left CNTFRQ_EL0 unset).
fn ticks_per_second() -> u64 {
    match edgeos_microkit::counter_frequency() {
        0 => 62_500_000,
        f => f,
    }
}

/// The services file (shared with the manager) and the instance windows: the template-backed
/// services this virtualiser serves.
fn instance_slots(static_tenants: TenantId, ticks_per_sec: u64) -> (InstanceMap, Vec<Slot>) {
    let configs = [
        link_config!(inst0_channel, inst0_link_vaddr, inst0_link_stride, inst0_rx_vaddr, inst0_rx_stride, inst0_tx_vaddr, inst0_tx_stride),
        link_config!(inst1_channel, inst1_link_vaddr, inst1_link_stride, inst1_rx_vaddr, inst1_rx_stride, inst1_tx_vaddr, inst1_tx_stride),
        link_config!(inst2_channel, inst2_link_vaddr, inst2_link_stride, inst2_rx_vaddr, inst2_rx_stride, inst2_tx_vaddr, inst2_tx_stride),
        link_config!(inst3_channel, inst3_link_vaddr, inst3_link_stride, inst3_rx_vaddr, inst3_rx_stride, inst3_tx_vaddr, inst3_tx_stride),
    ];
    const _: () = assert!(MAX_SLOTS == 4);
    let config_size = *var!(services_config_size: usize = 0);
    let mut specs = Vec::new();
    let mut slots = Vec::new();
    if config_size != 0 {
        let text = data_region("services_config", memory_region_symbol!(services_config_vaddr: *mut u8), config_size, 0);
        let mut copy = alloc::vec![0u8; config_size.min(0x10000)];
        if text.read(0, &mut copy).is_err() {
            panic!("net-virt: cannot read the services configuration");
        }
        let services = edgeos_manager_core::config::parse(&copy).unwrap_or_else(|e| panic!("net-virt: {e}"));
        for (id, svc) in services.iter() {
            let Some(c) = configs.get(svc.fork as usize).filter(|c| c.channel != usize::MAX) else {
                debug_println!(
                    "net-virt: service '{}' (fork {}) has no instance windows here (inst{}_* variables); not served",
                    svc.name, svc.fork, svc.fork
                );
                continue;
            };
            let spec = ServiceSpec {
                service: id,
                fork: svc.fork,
                port_lo: svc.port_lo,
                port_hi: svc.port_hi,
                udp: svc.has_protocol(edgeos_manager_core::config::Protocol::Udp),
                tcp: svc.has_protocol(edgeos_manager_core::config::Protocol::Tcp),
                policy: match svc.policy {
                    edgeos_manager_core::config::Policy::Port => InstancePolicy::Port,
                    edgeos_manager_core::config::Policy::Client => InstancePolicy::Client,
                    edgeos_manager_core::config::Policy::Shared => InstancePolicy::Shared,
                },
                idle_ticks: instances::seconds_to_ticks(svc.idle_secs, ticks_per_sec),
            };
            if c.link == 0 || c.rx == 0 || c.tx == 0 {
                panic!("net-virt: service '{}': inst{}_* windows missing (link, rx and tx)", svc.name, svc.fork);
            }
            if c.link_size < TENANT_LINK_BYTES {
                panic!("net-virt: service '{}': link window stride {:#x} < {TENANT_LINK_BYTES:#x}", svc.name, c.link_size);
            }
            let rx_layout = layout_of("instance rx", c.rx_size);
            let tx_layout = layout_of("instance tx", c.tx_size);
            debug_println!(
                "net-virt: service '{}' (fork {}) from instances on channel array {}: {} ports {}-{}, policy {}, idle {} s, {}+{} buffers",
                svc.name, svc.fork, c.channel, svc.protocols_text(), svc.port_lo, svc.port_hi, svc.policy.name(), svc.idle_secs,
                rx_layout.region_bytes() / 2048, tx_layout.region_bytes() / 2048
            );
            specs.push(spec);
            slots.push(Slot {
                spec,
                array: ChannelArray::new(c.channel),
                link: c.link,
                link_stride: c.link_size,
                rx: c.rx,
                rx_stride: c.rx_size,
                tx: c.tx,
                tx_stride: c.tx_size,
                rx_layout,
                tx_layout,
                instances: Vec::new(),
            });
        }
    }
    let map = InstanceMap::new(static_tenants, specs).unwrap_or_else(|e| panic!("net-virt: instance services: {e:?}"));
    (map, slots)
}

// The heap holds the flow table (two 64 Ki-entry port arrays and the connection table: about
// 0x60000 bytes) and the per-instance state of live instances.
#[protection_domain(heap_size = 0x200000)]
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
    let nic_queue = |name, vaddr, size| {
        // SAFETY: the description maps the NIC link's queue regions for the PD's lifetime and
        // only queue views touch them.
        unsafe { raw::nic_queue(name, vaddr, size) }
    };
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
        link_config!(tenant0_channel, tenant0_link_vaddr, tenant0_link_size, tenant0_rx_vaddr, tenant0_rx_size, tenant0_tx_vaddr, tenant0_tx_size),
        link_config!(tenant1_channel, tenant1_link_vaddr, tenant1_link_size, tenant1_rx_vaddr, tenant1_rx_size, tenant1_tx_vaddr, tenant1_tx_size),
        link_config!(tenant2_channel, tenant2_link_vaddr, tenant2_link_size, tenant2_rx_vaddr, tenant2_rx_size, tenant2_tx_vaddr, tenant2_tx_size),
        link_config!(tenant3_channel, tenant3_link_vaddr, tenant3_link_size, tenant3_rx_vaddr, tenant3_rx_size, tenant3_tx_vaddr, tenant3_tx_size),
        link_config!(tenant4_channel, tenant4_link_vaddr, tenant4_link_size, tenant4_rx_vaddr, tenant4_rx_size, tenant4_tx_vaddr, tenant4_tx_size),
    ];
    const _: () = assert!(MAX_TENANTS == 5);
    let present = configs.iter().take_while(|c| c.channel != usize::MAX).count();
    let ticks_per_sec = ticks_per_second();
    let (map, slots) = instance_slots(present as TenantId, ticks_per_sec);
    // Instance tenants are routed by port (policies port, shared) or by connection (client):
    // room for thousands of connections when a service routes by connection.
    let connection_slots = if map.slots().iter().any(|s| s.policy == InstancePolicy::Client) { 8192 } else { 1024 };
    let mut table = FlowTable::with_connections(map.tenants(), connection_slots);
    let mut tenants = Vec::with_capacity(present);
    // The ports each tenant is told about (the first UDP and TCP route of each).
    let mut infos: Vec<LinkInfo> = (0..present).map(|i| LinkInfo { tenant: i as u16, udp_port: 0, tcp_port: 0 }).collect();
    let mut install = |route: Route| {
        if let Some(slot) = map.slot_for(route.protocol, route.port) {
            panic!("net-virt: static route {route:?} overlaps the ports of instance service {}", map.slots()[slot].service);
        }
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
        // SAFETY: the link region is mapped for the PD's life (checked in `open_tenant`).
        if !unsafe { write_link_info(link, &info) } {
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
        map,
        slots,
        live: Vec::new(),
        doomed: Vec::new(),
        touch: Vec::new(),
        heard: Vec::new(),
        work: WorkSet::new(),
        blocked: WorkSet::new(),
        deadlines: Deadlines::new(),
        woken: WorkSet::new(),
        woken_spare: WorkSet::new(),
        refusals: Refusals::new(ticks_per_sec / ASSIGN_BACKOFF_PER_SECOND),
        refill: false,
        now: 0,
        manager: ManagerLink::from_description(),
        controller: match *var!(controller_channel: usize = usize::MAX) {
            usize::MAX => None,
            id => Some(id),
        },
        instance_counters: InstanceCounters::default(),
        table,
        node_mac,
        node_ip,
        driver_touched: false,
        malformed: 0,
        unrouted: 0,
        refused_calls: 0,
        frames: 0,
        busy_ticks: 0,
        reported_at: 0,
        events: 0,
        visits: 0,
        reviews: 0,
    };
    // Every receive buffer starts with the driver.
    for i in 0..NIC_BUFFERS {
        if let Err(e) = v.nic_rx_free.enqueue(Descriptor::new(NIC_LAYOUT.offset(i), 0)) {
            panic!("filling the driver's receive queue: {e:?}");
        }
    }
    v.driver_touched = true;
    // Every static tenant is visited once: its `tx_active` asks for a signal from then on.
    for t in 0..v.tenants.len() {
        v.work.add(t as TenantId);
    }
    v.batch();
    v.work.clear();
    debug_println!(
        "net-virt: node {}.{}.{}.{} MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {} tenants, {} instance services",
        node_ip[0], node_ip[1], node_ip[2], node_ip[3],
        node_mac[0], node_mac[1], node_mac[2], node_mac[3], node_mac[4], node_mac[5],
        v.tenants.len(), v.slots.len()
    );
    match v.controller {
        Some(c) => debug_println!("net-virt: route API: controller on channel {c}"),
        None => debug_println!("net-virt: route API: no controller_channel; every call is refused"),
    }
    if !v.slots.is_empty() && v.manager.is_none() {
        panic!("net-virt: instance services need the manager's channel (manager_channel)");
    }
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

/// A tenant by its flow-table id: static tenants, then instance tenants (None: not live).
fn tenant_mut<'a>(tenants: &'a mut [Tenant], slots: &'a mut [Slot], map: &InstanceMap, id: TenantId) -> Option<&'a mut Tenant> {
    if (id as usize) < tenants.len() {
        return tenants.get_mut(id as usize);
    }
    let (slot, i) = map.instance(id)?;
    slots.get_mut(slot)?.instances.get_mut(i as usize)?.as_deref_mut()
}

macro_rules! tenant {
    ($v:ident, $id:expr) => {
        tenant_mut(&mut $v.tenants, &mut $v.slots, &$v.map, $id)
    };
}

/// What became of a frame offered to a tenant.
enum Delivery {
    Done,
    /// No free receive buffer.
    NoBuffer,
    /// Broken (now or before): not served.
    Failed,
}

/// Puts a `len`-byte frame into `tenant`'s next free receive buffer; `copy` writes it there.
fn put_frame(tenant: &mut Tenant, len: u32, copy: impl FnOnce(&SharedRegion, u64) -> bool) -> Delivery {
    if tenant.broken {
        return Delivery::Failed;
    }
    let d = match tenant.rx_free.dequeue() {
        Ok(Some(d)) => d,
        Ok(None) => return Delivery::NoBuffer,
        Err(e) => {
            tenant.fail("rx_free", e);
            return Delivery::Failed;
        }
    };
    if let Err(e) = tenant.rx_layout.check(d) {
        tenant.fail("rx_free", e);
        return Delivery::Failed;
    }
    if !copy(&tenant.rx_data, d.offset) {
        tenant.fail("rx_free", Corrupt::Offset { offset: d.offset });
        return Delivery::Failed;
    }
    match tenant.rx_active.enqueue(Descriptor::new(d.offset, len)) {
        Ok(()) => {
            tenant.counters.received += 1;
            tenant.touched = true;
            tenant.starving = false;
            Delivery::Done
        }
        Err(EnqueueError::Full) => {
            tenant.fail("rx_active", Corrupt::Index { items: TENANT_BUFFERS + 1, capacity: TENANT_BUFFERS });
            Delivery::Failed
        }
        Err(EnqueueError::Corrupt(e)) => {
            tenant.fail("rx_active", e);
            Delivery::Failed
        }
    }
}

/// Why an instance is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drop {
    Idle,
    Broken,
}

impl Virtualiser {
    /// The id of the `k`th tenant served: static tenants, then live instances.
    fn id_at(&self, k: usize) -> TenantId {
        if k < self.tenants.len() {
            k as TenantId
        } else {
            self.live[k - self.tenants.len()]
        }
    }

    fn served(&self) -> usize {
        self.tenants.len() + self.live.len()
    }

    /// Copies a received frame into tenant `t`'s next free buffer.
    fn deliver(&mut self, t: TenantId, nic_offset: u64, len: u32) {
        self.work.add(t);
        let now = self.now;
        let idle = self.map.instance(t).map_or(0, |(slot, _)| self.slots[slot].spec.idle_ticks);
        let Some(tenant) = tenant_mut(&mut self.tenants, &mut self.slots, &self.map, t) else { return };
        let nic_rx = &self.nic_rx;
        match put_frame(tenant, len, |region, offset| region.copy_from(offset, nic_rx, nic_offset, len as usize).is_ok()) {
            Delivery::Done => {
                if tenant.life.as_mut().is_some_and(|l| l.active(now, idle)) {
                    self.touch.push(t);
                }
            }
            Delivery::NoBuffer => {
                // A fresh instance that has not run yet may have no buffers visible: keep its
                // first frame (a TCP SYN) for when it first notifies.
                if let Some(life) = tenant.life.as_mut().filter(|l| !l.heard) {
                    let mut frame = [0u8; MAX_FRAME];
                    let frame = &mut frame[..len as usize];
                    if nic_rx.read(nic_offset, frame).is_ok() && life.park(frame) {
                        self.instance_counters.parked += 1;
                        return;
                    }
                }
                // The tenant is not keeping up: it alone loses this frame.
                tenant.counters.dropped += 1;
                if !tenant.starving {
                    tenant.starving = true;
                    debug_println!("net-virt: tenant {} is not draining its ring; dropping its frames", tenant.id);
                }
            }
            Delivery::Failed => {}
        }
    }

    /// Instance tenant `t` notified: it runs, so its parked frame can go in now.
    fn heard_from(&mut self, t: TenantId) {
        self.work.add(t);
        let Some(tenant) = tenant!(self, t) else { return };
        let Some(mut life) = tenant.life.take() else { return };
        life.heard = true;
        life.retry_parked(|frame| {
            matches!(put_frame(tenant, frame.len() as u32, |region, offset| region.write(offset, frame).is_ok()), Delivery::Done)
        });
        tenant.life = Some(life);
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
                    for k in 0..self.served() {
                        let t = self.id_at(k);
                        self.deliver(t, frame_offset, len);
                    }
                } else {
                    self.unrouted += 1;
                }
            }
            Payload::Ipv4(ip) => {
                let connection = match (ip.destination == self.node_ip, Protocol::from_ip(ip.protocol), ip.ports, ip.fragmented) {
                    (true, Some(protocol), Some(ports), false) => Some(Connection {
                        protocol,
                        remote_ip: ip.source,
                        remote_port: ports.source,
                        local_port: ports.destination,
                    }),
                    _ => None,
                };
                let route = connection.and_then(|c| {
                    self.table.lookup(&c).or_else(|| {
                        // A flow to an instance service's port with no route yet: ask the manager.
                        let slot = self.map.slot_for(c.protocol, c.local_port)?;
                        if self.refusals.backing_off(self.slots[slot].spec.service, &c, self.now) {
                            // Refused a moment ago: drop it without asking again.
                            self.instance_counters.backed_off += 1;
                            return None;
                        }
                        self.assign(slot, &c)
                    })
                });
                match route {
                    Some(t) => self.deliver(t, frame_offset, len),
                    None => self.unrouted += 1,
                }
            }
            Payload::Other(_) => self.unrouted += 1,
        }
    }

    /// Asks the manager for an instance of slot `slot`'s service for the flow `c`, installs the
    /// flow's route and makes the instance a tenant (a fresh one learns its LinkInfo first).
    fn assign(&mut self, slot: usize, c: &Connection) -> Option<TenantId> {
        let spec = self.slots[slot].spec;
        let manager = self.manager.as_ref()?;
        let a = match manager.assign(spec.service, c) {
            Ok(a) => a,
            Err(e) => {
                self.instance_counters.refused += 1;
                self.refusals.refused(spec.service, c, self.now);
                if self.instance_counters.refused.is_power_of_two() {
                    debug_println!("net-virt: the manager gave no instance of service {} for port {}: {e:?}", spec.service, c.local_port);
                }
                return None;
            }
        };
        self.refill |= a.refill;
        let Some(t) = self.map.tenant(slot, a.instance.index).filter(|_| a.instance.fork == spec.fork) else {
            debug_println!("net-virt: the manager assigned {:?}, not an instance this virtualiser can serve", a.instance);
            self.instance_counters.refused += 1;
            self.refusals.refused(spec.service, c, self.now);
            let _ = manager.release(a.instance);
            return None;
        };
        self.instance_counters.assigned += 1;
        let open = self.slots[slot].instances.get(a.instance.index as usize).is_some_and(|i| i.is_some());
        if open && a.fresh {
            // A new instance under an id we still hold state for: that state is stale.
            self.drop_instance(t);
        }
        if (!open || a.fresh) && !self.open_instance(slot, a.instance.index, t, c.local_port) {
            return None;
        }
        if let Err(e) = InstanceMap::install(&mut self.table, self.map.route_for(slot, c), t) {
            self.instance_counters.route_errors += 1;
            debug_println!("net-virt: route for instance tenant {t}: {e:?}");
        }
        Some(t)
    }

    /// Opens instance `index` of slot `slot` as tenant `t` in its instance windows, and writes
    /// its LinkInfo; it is notified at the end of the batch.
    fn open_instance(&mut self, slot: usize, index: u32, t: TenantId, local_port: u16) -> bool {
        let s = &mut self.slots[slot];
        let at = |base: usize, stride: usize| NonNull::new(base.wrapping_add(index as usize * stride) as *mut u8);
        let (Some(link), Some(rx), Some(tx)) = (at(s.link, s.link_stride), at(s.rx, s.rx_stride), at(s.tx, s.tx_stride)) else {
            return false;
        };
        let peer = Peer::Instance(s.array, Instance::new(index));
        // SAFETY: the manager has just handed instance `index` over, so it lives and its windows
        // are mapped (the kernel's ids are below the grant's max_instances, the windows' extent,
        // and the strides are the regions' sizes: the description's default); they stay
        // so until this virtualiser RELEASEs it or acknowledges its death, and it drops this
        // state before either.
        let opened = unsafe {
            open_link(t, peer, link, s.link_stride, (rx, s.rx_stride, s.rx_layout), (tx, s.tx_stride, s.tx_layout), Some(Life::new(self.now)))
        };
        let mut tenant = match opened {
            Ok(tenant) => tenant,
            Err(e) => {
                // Its queues are already corrupt (from the template): never served.
                debug_println!("net-virt: instance tenant {t}: its link is corrupt ({e}); released");
                self.instance_counters.released_broken += 1;
                if let Some(m) = self.manager.as_ref() {
                    let _ = m.release(edgeos_manager_core::policy::InstanceRef::new(s.spec.fork, index));
                }
                return false;
            }
        };
        let (udp_port, tcp_port) = self.map.link_ports(slot, local_port);
        let info = LinkInfo { tenant: t, udp_port, tcp_port };
        // SAFETY: the link window is mapped (above).
        if !unsafe { write_link_info(link, &info) } {
            return false;
        }
        tenant.force_notify = true;
        tenant.touched = true;
        let i = index as usize;
        if s.instances.len() <= i {
            s.instances.resize_with(i + 1, || None);
        }
        s.instances[i] = Some(Box::new(tenant));
        self.live.push(t);
        self.work.add(t);
        self.instance_counters.fresh += 1;
        if self.instance_counters.fresh <= 64 || self.instance_counters.fresh.is_power_of_two() {
            debug_println!(
                "net-virt: instance {index} of service {} is tenant {t}: udp port {udp_port}, tcp port {tcp_port}",
                s.spec.service
            );
        }
        true
    }

    /// Forgets instance tenant `t`: its routes and its state (its windows are never touched
    /// again). True if it was live.
    fn drop_instance(&mut self, t: TenantId) -> bool {
        let Some((slot, i)) = self.map.instance(t) else { return false };
        self.map.remove_routes(&mut self.table, t);
        let was = self.slots[slot].instances.get_mut(i as usize).and_then(|s| s.take()).is_some();
        if let Some(k) = self.live.iter().position(|x| *x == t) {
            self.live.swap_remove(k);
        }
        self.touch.retain(|x| *x != t);
        self.deadlines.forget(t);
        was
    }

    fn instance_ref(&self, t: TenantId) -> Option<edgeos_manager_core::policy::InstanceRef> {
        let (slot, i) = self.map.instance(t)?;
        Some(edgeos_manager_core::policy::InstanceRef::new(self.slots[slot].spec.fork, i))
    }

    /// Drops and RELEASEs the instances found idle or broken during this event; reports
    /// activity (TOUCH) and asks for a pool refill.
    fn settle(&mut self) {
        // Only tenants visited this event can have broken their queues in it.
        for k in 0..self.work.len() {
            let t = self.work.get(k);
            if (t as usize) < self.tenants.len() {
                continue;
            }
            if tenant!(self, t).is_some_and(|x| x.broken) && !self.doomed.iter().any(|(d, _)| *d == t) {
                self.doomed.push((t, Drop::Broken));
            }
        }
        while let Some((t, why)) = self.doomed.pop() {
            let Some(r) = self.instance_ref(t) else { continue };
            if !self.drop_instance(t) {
                continue;
            }
            let released = match why {
                Drop::Idle => {
                    self.instance_counters.released_idle += 1;
                    self.instance_counters.released_idle
                }
                Drop::Broken => {
                    self.instance_counters.released_broken += 1;
                    self.instance_counters.released_broken
                }
            };
            if released <= 64 || released.is_power_of_two() {
                let reason = if why == Drop::Idle { "idle" } else { "broken" };
                debug_println!("net-virt: instance {} of fork {} (tenant {t}) released: {reason}", r.index, r.fork);
            }
            if let Some(m) = self.manager.as_ref() {
                match m.release(r) {
                    Ok(()) => {}
                    // The manager's own idle clock retired it first: it is on the dead list,
                    // and dropped here already, so acknowledge it (the manager destroys it).
                    Err(ApiError::NotAssigned) => {
                        if let Err(e) = m.ack_dead(r) {
                            debug_println!("net-virt: ACK_DEAD of {r:?}: {e:?}");
                        }
                    }
                    Err(e) => debug_println!("net-virt: RELEASE of {r:?}: {e:?}"),
                }
            }
        }
        if !self.touch.is_empty() {
            let refs: Vec<_> = self.touch.iter().filter_map(|t| self.instance_ref(*t)).collect();
            self.touch.clear();
            if let Some(m) = self.manager.as_ref() {
                m.touch(&refs);
            }
        }
        if core::mem::take(&mut self.refill) {
            if let Some(m) = self.manager.as_ref() {
                m.notify();
            }
        }
    }

    /// The manager retires instances: drop each (routes, state), then acknowledge it.
    fn collect_dead(&mut self) {
        if self.manager.is_none() {
            return;
        }
        let mut list = [edgeos_manager_core::policy::InstanceRef::new(0, 0); edgeos_manager_core::api::DEAD_LIST_MAX];
        // The list shrinks by every acknowledgement; a bound keeps a confused manager from
        // holding the virtualiser here.
        for _ in 0..1024 {
            let manager = self.manager.as_ref().expect("checked above");
            let (n, _total) = match manager.dead_list(&mut list) {
                Ok(x) => x,
                Err(e) => {
                    debug_println!("net-virt: DEAD_LIST: {e:?}");
                    return;
                }
            };
            if n == 0 {
                return;
            }
            for r in &list[..n] {
                let t = self.map.slot_of_fork(r.fork).and_then(|slot| self.map.tenant(slot, r.index));
                if let Some(t) = t {
                    if self.drop_instance(t) {
                        self.instance_counters.dead += 1;
                        if self.instance_counters.dead <= 64 || self.instance_counters.dead.is_power_of_two() {
                            debug_println!("net-virt: instance {} of fork {} (tenant {t}) retired by the manager", r.index, r.fork);
                        }
                    }
                }
                let manager = self.manager.as_ref().expect("checked above");
                if let Err(e) = manager.ack_dead(*r) {
                    debug_println!("net-virt: ACK_DEAD of {r:?}: {e:?}");
                }
            }
        }
    }

    /// Takes up to `TX_ROUND` frames from tenant `t` to the driver; true if it did anything.
    fn transmit_from(&mut self, t: TenantId) -> bool {
        let mut progress = false;
        let now = self.now;
        let idle = self.map.instance(t).map_or(0, |(slot, _)| self.slots[slot].spec.idle_ticks);
        for _ in 0..TX_ROUND {
            let Some(tenant) = tenant_mut(&mut self.tenants, &mut self.slots, &self.map, t) else { return progress };
            if tenant.broken {
                return progress;
            }
            if self.tx_pool.is_empty() {
                tenant.tx_blocked = !matches!(tenant.tx_active.is_empty(), Ok(true));
                if tenant.tx_blocked {
                    self.blocked.add(t);
                }
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
            if let Err(e) = tenant.tx_layout.check(d) {
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
                Ok(()) => {
                    tenant.counters.sent += 1;
                    if tenant.life.as_mut().is_some_and(|l| l.active(now, idle)) {
                        self.touch.push(t);
                    }
                }
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
            let mut returned = false;
            while let Some(d) = driver_queue(self.nic_tx_free.dequeue()) {
                let index = driver_queue(NIC_LAYOUT.check(d));
                self.tx_pool.push(index);
                returned = true;
            }
            // Tenants that were waiting for a transmit buffer can go on: visit them.
            if returned && !self.blocked.is_empty() {
                for k in 0..self.blocked.len() {
                    let t = self.blocked.get(k);
                    if let Some(tenant) = tenant!(self, t) {
                        tenant.tx_blocked = false;
                    }
                }
                self.blocked.move_into(&mut self.work);
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
                for k in 0..self.work.len() {
                    let t = self.work.get(k);
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
            for k in 0..self.work.len() {
                let t = self.work.get(k);
                let Some(tenant) = tenant!(self, t) else { continue };
                if core::mem::take(&mut tenant.touched) && !tenant.broken {
                    let rx = tenant.rx_active.signal_wanted();
                    let tx = tenant.tx_free.signal_wanted();
                    // A fresh instance is notified whatever its queues say: its LinkInfo is
                    // written, it may attach now.
                    if rx | tx | core::mem::take(&mut tenant.force_notify) {
                        tenant.peer.notify();
                    }
                }
            }
            // Ask to be woken, then re-check every queue we consume. Sent buffers coming back
            // wake the virtualiser only when it runs low or a tenant waits for one (every batch
            // takes them back anyway), which saves a notification a frame.
            let mut more = !driver_queue(self.nic_rx_active.finish_batch());
            let any_blocked = !self.blocked.is_empty();
            let need_tx_buffers = self.tx_pool.len() < (NIC_BUFFERS / 4) as usize || any_blocked;
            if need_tx_buffers {
                more |= !driver_queue(self.nic_tx_free.finish_batch());
            } else {
                self.nic_tx_free.cancel_signal();
            }
            // Every tenant visited leaves with a signal requested on its `tx_active`, or with
            // frames waiting for a transmit buffer (in `blocked`: visited when buffers come
            // back, which then wakes us), or is visited again now.
            let pool_empty = self.tx_pool.is_empty();
            for k in 0..self.work.len() {
                let t = self.work.get(k);
                let Some(tenant) = tenant!(self, t) else { continue };
                if tenant.broken {
                    continue;
                }
                match tenant.tx_active.finish_batch() {
                    Ok(true) => {}
                    Ok(false) if tenant.tx_blocked || pool_empty => {
                        if !tenant.tx_blocked {
                            tenant.tx_blocked = true;
                            self.blocked.add(t);
                        }
                    }
                    Ok(false) => more = true,
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
    /// so a tenant cannot make the virtualiser spin. Instances idle past their service's time
    /// are doomed (dropped and RELEASEd by `settle`); the timer also wakes for the next one.
    ///
    /// Only the tenants visited this event and those whose heap entry is due are looked at:
    /// a tenant publishes an earlier deadline with a notification (so it is visited), and a
    /// deadline that moved later (activity, a later `wake_at`) is found when the earlier
    /// entry pops and re-scheduled.
    fn serve_deadlines(&mut self) {
        if self.timer.is_none() {
            return;
        }
        let now = counter();
        // Tenants woken for a deadline: once one has published its next deadline (any value
        // but the one served), read it; until then, look again at the next event.
        if !self.woken.is_empty() {
            core::mem::swap(&mut self.woken, &mut self.woken_spare);
            for k in 0..self.woken_spare.len() {
                let t = self.woken_spare.get(k);
                match tenant!(self, t) {
                    Some(x) if !x.broken && x.control.wake_at() == x.served_wake => {
                        self.woken.add(t);
                    }
                    Some(_) => self.review_deadline(t, now),
                    None => {}
                }
            }
            self.woken_spare.clear();
        }
        for k in 0..self.work.len() {
            let t = self.work.get(k);
            self.review_deadline(t, now);
        }
        while let Some(t) = self.deadlines.pop_due(now) {
            self.review_deadline(t, now);
        }
        let next = self.deadlines.next();
        if next != self.armed {
            arm_timer(next);
            self.armed = next;
        }
    }

    /// Reads tenant `t`'s deadlines at `now`: dooms it if idle past its service's time,
    /// notifies it if its published deadline passed (once per deadline), and schedules what
    /// is ahead.
    fn review_deadline(&mut self, t: TenantId, now: u64) {
        self.reviews += 1;
        let idle = self.map.instance(t).map_or(0, |(slot, _)| self.slots[slot].spec.idle_ticks);
        let Some(tenant) = tenant_mut(&mut self.tenants, &mut self.slots, &self.map, t) else { return };
        if tenant.broken {
            return;
        }
        let mut next = u64::MAX;
        if let Some(life) = tenant.life.as_ref() {
            if life.idle(now, idle) {
                if !self.doomed.iter().any(|(d, _)| *d == t) {
                    self.doomed.push((t, Drop::Idle));
                }
                return;
            }
            next = life.idle_at(idle);
        }
        let wake = tenant.control.wake_at();
        if wake != u64::MAX && wake != tenant.served_wake {
            if wake <= now {
                tenant.served_wake = wake;
                tenant.peer.notify();
                self.woken.add(t);
            } else {
                next = next.min(wake);
            }
        }
        self.deadlines.schedule(t, next);
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
        // A batch visits the tenants with work (`work`): static tenants whose channel is in
        // `channels`, instances the channel arrays name, tenants frames go to, fresh instances,
        // and tenants waiting for transmit buffers when some come back.
        let start = counter();
        self.now = start;
        for t in 0..self.tenants.len() {
            if let Peer::Static(c) = self.tenants[t].peer {
                if channels.contains(c) {
                    self.work.add(t as TenantId);
                }
            }
        }
        if let Some(timer) = self.timer {
            if channels.contains(timer) {
                // The timer condition holds until re-armed: force `serve_deadlines` to re-arm.
                self.armed = 0;
                self.ack_timer = true;
            }
        }
        if let Some(m) = self.manager.as_ref() {
            if channels.contains(m.channel()) {
                self.collect_dead();
            }
        }
        for slot in 0..self.slots.len() {
            let array = self.slots[slot].array;
            if !channels.contains(Channel::new(array.index())) {
                continue;
            }
            let mut heard = core::mem::take(&mut self.heard);
            if let Err(e) = array.take(|i| heard.push((slot, i.index()))) {
                debug_println!("net-virt: channel array {}: {e}", array.index());
            }
            for (slot, i) in heard.drain(..) {
                if let Some(t) = self.map.tenant(slot, i) {
                    self.heard_from(t);
                }
            }
            self.heard = heard;
        }
        self.batch();
        self.serve_deadlines();
        self.settle();
        self.events += 1;
        self.visits += self.work.len() as u64;
        self.work.clear();
        self.busy_ticks += counter() - start;
        if self.frames - self.reported_at >= STATS_EVERY {
            self.reported_at = self.frames;
            let (mut sent, mut dropped) = (0, 0);
            for k in 0..self.served() {
                let t = self.id_at(k);
                if let Some(tenant) = tenant!(self, t) {
                    sent += tenant.counters.sent;
                    dropped += tenant.counters.dropped;
                }
            }
            let c = self.instance_counters;
            debug_println!(
                "net-virt: stats: frames {} sent {} dropped {} malformed {} unrouted {} handler_ticks {} instances live {} assigned {} fresh {} refused {} backed_off {} idle {} broken {} dead {} parked {} deadlines {} events {} visits {} reviews {}",
                self.frames, sent, dropped, self.malformed, self.unrouted, self.busy_ticks, self.live.len(), c.assigned,
                c.fresh, c.refused, c.backed_off, c.released_idle, c.released_broken, c.dead, c.parked, self.deadlines.len(),
                self.events, self.visits, self.reviews
            );
        }
        Ok(())
    }

    fn protected(&mut self, channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        let count = msg_info.count().min(8);
        let mut mrs = [0u64; 8];
        for (i, mr) in mrs.iter_mut().enumerate().take(count) {
            *mr = get_mr(i);
        }
        // Who may ask (checked first), then the request and what a route may name.
        let request = api::admitted(msg_info.label(), &mrs[..count], channel.index(), self.controller, &self.map);
        if request == Err(api::ApiError::NotController) {
            self.refused_calls += 1;
            if self.refused_calls.is_power_of_two() {
                debug_println!("net-virt: route API call on channel {} refused: not the controller", channel.index());
            }
        }
        let reply = match request {
            Ok(Request::Counters { tenant }) => match tenant_mut(&mut self.tenants, &mut self.slots, &self.map, tenant) {
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
