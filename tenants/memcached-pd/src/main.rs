//! The memcached tenant: the `edgeos-memcached` library (package `edgeos-memcached`, lib
//! `memcached`) served over smoltcp on the TCP and UDP ports the network virtualiser routes to
//! this tenant (11211 in the default system).
//!
//! - TCP: `TCP_SOCKETS` listening sockets, so that many clients at once; each has its own
//!   [`Connection`]. Replies wait in a per-connection output buffer and go out as the socket's
//!   send buffer drains; while more than `OUTPUT_HIGH_WATER` bytes wait, no more input is read
//!   from that connection (backpressure reaches the client through the TCP window).
//! - UDP: one socket; every datagram is answered by [`udp::handle_datagram`] (8-byte frame
//!   header, replies cut into datagrams of at most 1400 bytes).
//! - Time: unix seconds from the PL031 real-time clock of QEMU `virt` (RTCDR), mapped into the
//!   PD as the `rtc` region (`rtc_vaddr`). Without that mapping the clock starts at
//!   `FALLBACK_EPOCH` and follows the system counter.
//! - Expiry: lazy in the store, plus [`Store::crawl`] once a second while the store holds items,
//!   woken by the virtualiser's timer (the same deadline word smoltcp's timers use).
//! - Memory: the store's limit is `memcached_memory_limit` (16 MiB by default), inside a heap of
//!   `HEAP_SIZE` bytes that also holds the socket and connection buffers. `init` writes only the
//!   socket buffers and the scratch buffer (with zeros); the store starts empty, so the rest of
//!   the heap stays untouched until items arrive.
//! - Static PD or template: `init` opens the link, makes the sockets and the buffers; the
//!   interface (addresses, random seed), the ports, the store (its hash seed, its start time,
//!   the ports and process id its `stats` report) are set up when the link's info is first
//!   there: in `init` for a static PD, at the first notification for a template's instance.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use edgeos_microkit::{debug_println, debug_time, pd_name, protection_domain, var, ChannelSet, Handler};
use edgeos_net_device::{LinkError, LinkInfo, NetLink};
use memcached::{udp as mc_udp, Action, Config, Connection, Store};
use smoltcp::iface::{Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};

/// The PD's heap: the store (its memory limit plus the per-item bookkeeping the limit does not
/// count), the socket buffers and what connections hold (a value being received, replies not
/// yet sent: up to about twice the item size limit each).
const HEAP_SIZE: usize = 64 << 20;
/// The store's memory limit unless `memcached_memory_limit` says otherwise.
const DEFAULT_MEMORY_LIMIT: usize = 16 << 20;
/// Heap kept out of the store's reach for everything else.
const HEAP_RESERVE: usize = 24 << 20;
/// TCP connections served at once (one listening socket each).
const TCP_SOCKETS: usize = 32;
const TCP_RX_BUFFER: usize = 64 * 1024;
const TCP_TX_BUFFER: usize = 64 * 1024;
/// While a connection has more than this many reply bytes waiting, its input is not read.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Reply buffers larger than this are released once drained, not kept for the next reply.
const OUTPUT_KEEP: usize = 256 * 1024;
const UDP_PACKETS: usize = 256;
const UDP_RX_BUFFER: usize = 128 * 1024;
const UDP_TX_BUFFER: usize = 256 * 1024;
/// How often expired items are swept, and how many slots one sweep examines.
const CRAWL_PERIOD: Duration = Duration::from_millis(1000);
const CRAWL_BUDGET: usize = 10_000;
/// Unix time at boot when there is no RTC (2026-01-01).
const FALLBACK_EPOCH: u32 = 1_767_225_600;

/// The PL031 real-time clock: RTCDR (offset 0) counts seconds since the unix epoch on QEMU.
#[allow(unsafe_code)]
mod rtc {
    use core::ptr::NonNull;

    pub struct Rtc(Option<NonNull<u32>>);

    impl Rtc {
        /// The clock mapped at `rtc_vaddr` (device memory, uncached), if the description maps it.
        pub fn from_description() -> Self {
            let vaddr = *edgeos_microkit::var!(rtc_vaddr: usize = 0);
            Rtc(NonNull::new(vaddr as *mut u32))
        }

        pub fn present(&self) -> bool {
            self.0.is_some()
        }

        /// RTCDR, or None without a mapping.
        pub fn seconds(&self) -> Option<u32> {
            // SAFETY: `rtc_vaddr` is patched by the image tool with the address of a mapping of
            // the PL031's register page (see system.xml), valid for the PD's life; RTCDR is a
            // 32-bit read-only register at offset 0 and reading it has no side effect.
            self.0.map(|p| unsafe { core::ptr::read_volatile(p.as_ptr()) })
        }
    }
}

/// One TCP socket and the memcached connection on it.
struct Slot {
    handle: SocketHandle,
    connection: Connection,
    /// Replies produced and not yet all queued on the socket: `output[sent..]` waits.
    output: Vec<u8>,
    sent: usize,
    /// A client is connected (counted in the store's connection statistics).
    open: bool,
    /// The protocol asked to close: send what waits, then close.
    closing: bool,
}

impl Slot {
    fn waiting(&self) -> usize {
        self.output.len() - self.sent
    }
}

struct Memcached {
    link: NetLink,
    /// None until the link is described (see `attach`).
    iface: Option<Interface>,
    sockets: SocketSet<'static>,
    udp: SocketHandle,
    slots: Vec<Slot>,
    tcp_port: u16,
    store: Store,
    rtc: rtc::Rtc,
    boot: Instant,
    next_crawl: Instant,
    /// The store's memory limit (`memcached_memory_limit`, clamped).
    memory_limit: usize,
    scratch: Vec<u8>,
}

fn now() -> Instant {
    let (ticks, frequency) = debug_time();
    Instant::from_micros((ticks as u128 * 1_000_000 / frequency.max(1) as u128) as i64)
}

#[protection_domain(heap_size = HEAP_SIZE)]
fn init() -> Memcached {
    let limit = *var!(memcached_memory_limit: usize = DEFAULT_MEMORY_LIMIT);
    let memory_limit = limit.clamp(1 << 20, HEAP_SIZE - HEAP_RESERVE);
    let link = match NetLink::from_description() {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let boot = now();
    let rtc = rtc::Rtc::from_description();
    let mut sockets = SocketSet::new(vec![]);
    let udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_RX_BUFFER]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_TX_BUFFER]),
    );
    let udp = sockets.add(udp_socket);
    let slots = (0..TCP_SOCKETS)
        .map(|_| {
            let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; TCP_RX_BUFFER]), tcp::SocketBuffer::new(vec![0; TCP_TX_BUFFER]));
            // Replies go out at once: acknowledge with the data, no Nagle (memcached sets
            // TCP_NODELAY too).
            s.set_ack_delay(None);
            s.set_nagle_enabled(false);
            Slot { handle: sockets.add(s), connection: Connection::new(), output: Vec::new(), sent: 0, open: false, closing: false }
        })
        .collect();

    let mut mc = Memcached {
        link,
        iface: None,
        sockets,
        udp,
        slots,
        tcp_port: 0,
        // Empty (allocates nothing); replaced at `attach`.
        store: Store::new(Config::default(), 0),
        rtc,
        boot,
        next_crawl: boot + CRAWL_PERIOD,
        memory_limit,
        scratch: vec![0; 64 * 1024],
    };
    // A static PD attaches here and drains whatever already arrived; a template finds its link
    // not described yet and waits (its instances attach at their first notification).
    if let Err(e) = mc.run() {
        panic!("memcached: {e}");
    }
    if mc.iface.is_none() {
        debug_println!("memcached: PD {}: link not described yet; attaching at the first notification", pd_name().unwrap_or("?"));
    }
    mc
}

impl Memcached {
    /// Sets up what depends on the link's info: the interface (address, gateway, a seed of
    /// this tenant's own), the ports and the store.
    fn attach(&mut self, info: LinkInfo) {
        let (udp_port, tcp_port) = (info.udp_port, info.tcp_port);
        let seed = info.random_seed(debug_time().0);
        let iface = self.link.interface(seed);
        if udp_port != 0 {
            if let Err(e) = self.sockets.get_mut::<udp::Socket>(self.udp).bind(udp_port) {
                panic!("memcached: bind UDP port {udp_port}: {e}");
            }
        }
        self.tcp_port = tcp_port;
        let unix = self.unix_now();
        self.store = Store::new(
            Config {
                memory_limit: self.memory_limit,
                hash_seed: seed ^ 0x9e37_79b9_7f4a_7c15 ^ ((unix as u64) << 20),
                process_id: 1 + info.tenant as u32,
                max_connections: TCP_SOCKETS as u32,
                tcp_port,
                udp_port,
                ..Config::default()
            },
            unix,
        );
        self.next_crawl = now() + CRAWL_PERIOD;
        debug_println!(
            "memcached: PD {} (tenant {}) serving TCP port {tcp_port} ({TCP_SOCKETS} connections), UDP port {udp_port}, {} MiB, clock {} (unix {unix})",
            pd_name().unwrap_or("?"),
            info.tenant,
            self.memory_limit >> 20,
            if self.rtc.present() { "PL031" } else { "counter (no RTC mapped)" },
        );
        self.iface = Some(iface);
        self.listen();
    }

    /// Unix seconds: the RTC if mapped, else the fallback epoch plus the time since boot.
    fn unix_now(&self) -> u32 {
        match self.rtc.seconds() {
            Some(s) => s,
            None => FALLBACK_EPOCH.wrapping_add(((now() - self.boot).total_millis() / 1000) as u32),
        }
    }

    /// Puts every closed TCP socket back to listening.
    fn listen(&mut self) {
        if self.tcp_port == 0 {
            return;
        }
        for slot in &self.slots {
            let s = self.sockets.get_mut::<tcp::Socket>(slot.handle);
            if !s.is_open() {
                if let Err(e) = s.listen(self.tcp_port) {
                    panic!("memcached: listen on TCP port {}: {e}", self.tcp_port);
                }
            }
        }
    }

    /// Serves what the sockets hold; true if anything moved.
    fn serve(&mut self, unix: u32) -> bool {
        let mut moved = false;
        let udp = self.sockets.get_mut::<udp::Socket>(self.udp);
        while udp.can_recv() {
            let (n, endpoint) = match udp.recv_slice(&mut self.scratch) {
                Ok((n, meta)) => (n, meta.endpoint),
                Err(_) => break,
            };
            moved = true;
            for reply in mc_udp::handle_datagram(&self.scratch[..n], &mut self.store, unix) {
                // A full transmit buffer drops the reply, as a network would; memcached's UDP
                // clients handle lost datagrams.
                let _ = udp.send_slice(&reply, endpoint);
            }
        }

        for slot in &mut self.slots {
            let s = self.sockets.get_mut::<tcp::Socket>(slot.handle);
            if s.is_active() && !slot.open {
                slot.open = true;
                self.store.connection_opened();
            }
            if slot.open && !s.is_active() {
                // Closed, reset or timed out: forget the connection.
                slot.open = false;
                slot.closing = false;
                slot.connection = Connection::new();
                slot.output = Vec::new();
                slot.sent = 0;
                self.store.connection_closed();
                moved = true;
                continue;
            }
            if !slot.open {
                continue;
            }
            loop {
                moved |= flush(slot, s);
                if slot.closing || slot.waiting() > OUTPUT_HIGH_WATER || !s.can_recv() {
                    break;
                }
                let n = match s.recv_slice(&mut self.scratch) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                moved = true;
                if slot.connection.feed(&self.scratch[..n], &mut self.store, unix, &mut slot.output) == Action::Close {
                    slot.closing = true;
                }
            }
            // Close once everything is queued, after `quit` (or a protocol error that closes),
            // or after the client closed its side and nothing more will come.
            if slot.waiting() == 0 && s.may_send() && (slot.closing || (!s.may_recv() && !s.can_recv())) {
                s.close();
                moved = true;
            }
        }
        moved
    }

    fn crawl(&mut self, unix: u32) {
        let t = now();
        if t >= self.next_crawl {
            self.store.crawl(unix, CRAWL_BUDGET);
            self.next_crawl = t + CRAWL_PERIOD;
        }
    }

    fn run(&mut self) -> Result<(), LinkError> {
        if self.iface.is_none() {
            match self.link.info() {
                Some(info) => self.attach(info),
                None => return self.link.wait_for_info(),
            }
        }
        loop {
            let unix = self.unix_now();
            self.crawl(unix);
            loop {
                let Some(iface) = self.iface.as_mut() else { unreachable!("attached above") };
                let changed = iface.poll(now(), &mut self.link, &mut self.sockets);
                let moved = self.serve(unix);
                self.listen();
                if !moved && changed == PollResult::None {
                    break;
                }
            }
            let mut next = self.iface.as_mut().and_then(|iface| iface.poll_at(now(), &self.sockets));
            if !self.store.is_empty() {
                next = Some(next.map_or(self.next_crawl, |n| n.min(self.next_crawl)));
            }
            self.link.set_wake_at(next);
            if self.link.finish_batch()? {
                return Ok(());
            }
        }
    }
}

/// Queues as much of a connection's waiting output as its socket takes; true if any went.
fn flush(slot: &mut Slot, s: &mut tcp::Socket) -> bool {
    let mut moved = false;
    while slot.waiting() > 0 && s.can_send() {
        match s.send_slice(&slot.output[slot.sent..]) {
            Ok(n) if n > 0 => {
                slot.sent += n;
                moved = true;
            }
            _ => break,
        }
    }
    if slot.waiting() == 0 && slot.sent > 0 {
        if slot.output.capacity() > OUTPUT_KEEP {
            slot.output = Vec::new();
        } else {
            slot.output.clear();
        }
        slot.sent = 0;
    }
    moved
}

impl Handler for Memcached {
    type Error = LinkError;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), LinkError> {
        self.run()
    }
}
