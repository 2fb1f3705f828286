//! The route API's controller in the network test, as the manager will be: the virtualiser's
//! `controller_channel` is this PD's protected-call channel.
//!
//! At start-up it installs and removes a port route and a connection route, checks the
//! refusals (a taken port, an unknown tenant, an instance tenant, an unknown label, too few
//! arguments), reads a tenant's counters, and prints one line the test looks for:
//! `netctl: route API ok` (or `netctl: FAIL ...`).
//!
//! Then it is a tenant of its own (smoltcp over its link) so the host test can drive the API
//! while traffic flows:
//! - on its UDP port (the link's, 7005 in tests/net) each datagram is one call, in decimal:
//!   `LABEL [MR0 MR1 ...]` (at most 8 registers). The answer is
//!   `LABEL [MR0 ...] @A.B.C.D:PORT`: the reply's label (0 or an `ApiError` code) and
//!   registers, and the address and port the request came from as the guest sees it (the
//!   host test uses it to name its own flow in a connection route).
//! - on UDP port [`STEER_PORT`] (echo1's port, which is not routed here) it echoes with the
//!   prefix `netctl:`, so a flow a connection route steers here answers differently from one
//!   echo1 answers.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use core::fmt::Write;

use edgeos_microkit::{debug_println, get_mr, protection_domain, set_mr, var, Channel, ChannelSet, Handler, MessageInfo};
use edgeos_net_device::{LinkError, NetLink};
use edgeos_netvirt_core::api::{self, ApiError};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;

/// echo1's port: only a connection route can bring a datagram to it here.
const STEER_PORT: u16 = 7001;
const MAX_MRS: usize = 8;

struct NetCtl {
    virt: Channel,
    link: NetLink,
    iface: Interface,
    sockets: SocketSet<'static>,
    control: SocketHandle,
    steer: SocketHandle,
}

/// One call: what it checks, its label and arguments, and the reply (label, first register)
/// expected (`u64::MAX`: no register).
type Check = (&'static str, u64, &'static [u64], (u64, u64));

fn call(ch: Channel, label: u64, args: &[u64]) -> (u64, u64) {
    for (i, a) in args.iter().enumerate() {
        set_mr(i, *a);
    }
    let reply = ch.pp_call(MessageInfo::new(label, args.len()));
    (reply.label(), if reply.count() > 0 { get_mr(0) } else { u64::MAX })
}

/// The start-up checks; None if all passed.
fn self_test(virt: Channel) -> Option<()> {
    const UDP: u64 = 17;
    const TCP: u64 = 6;
    const PEER: u64 = 0x0a00_0202; // 10.0.2.2
    let checks: [Check; 10] = [
        ("install tcp 7009 -> tenant 1", api::LABEL_INSTALL_PORT, &[TCP, 7009, 1], (0, u64::MAX)),
        ("port 7001 is taken", api::LABEL_INSTALL_PORT, &[UDP, 7001, 1], (ApiError::Taken as u64, u64::MAX)),
        ("no tenant 9", api::LABEL_INSTALL_PORT, &[UDP, 7010, 9], (ApiError::NoSuchTenant as u64, u64::MAX)),
        ("no tenant 5 (one past the static ones)", api::LABEL_INSTALL_CONNECTION, &[UDP, PEER, 1, 7010, 5], (ApiError::NoSuchTenant as u64, u64::MAX)),
        ("remove tcp 7009", api::LABEL_REMOVE_PORT, &[TCP, 7009], (0, 1)),
        ("remove it again", api::LABEL_REMOVE_PORT, &[TCP, 7009], (ApiError::NotFound as u64, u64::MAX)),
        ("install a connection", api::LABEL_INSTALL_CONNECTION, &[TCP, PEER, 40000, 7001, 1], (0, u64::MAX)),
        ("remove the connection", api::LABEL_REMOVE_CONNECTION, &[TCP, PEER, 40000, 7001], (0, 1)),
        ("unknown label", 77, &[], (ApiError::UnknownLabel as u64, u64::MAX)),
        ("too few arguments", api::LABEL_INSTALL_PORT, &[UDP], (ApiError::BadArguments as u64, u64::MAX)),
    ];
    for (what, label, args, want) in checks {
        let got = call(virt, label, args);
        if got != want {
            debug_println!("netctl: FAIL {what}: got {got:?}, want {want:?}");
            return Some(());
        }
    }
    let (status, received) = call(virt, api::LABEL_COUNTERS, &[0]);
    if status != 0 {
        debug_println!("netctl: FAIL counters: status {status}");
        return Some(());
    }
    debug_println!("netctl: route API ok (tenant 0 has received {received} frames)");
    None
}

/// Parses `LABEL [MR...]` (decimal, spaces); None if it is not that.
fn parse_request(text: &[u8]) -> Option<(u64, [u64; MAX_MRS], usize)> {
    let text = core::str::from_utf8(text).ok()?;
    let mut words = text.split_ascii_whitespace();
    let label = words.next()?.parse().ok()?;
    let mut mrs = [0u64; MAX_MRS];
    let mut n = 0;
    for w in words {
        *mrs.get_mut(n)? = w.parse().ok()?;
        n += 1;
    }
    Some((label, mrs, n))
}

/// A fixed-size text buffer for the answers.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl NetCtl {
    /// One request from `from`: the call, and the answer's text.
    fn answer(&self, request: &[u8], from: IpEndpoint) -> Line {
        let mut line = Line { buf: [0; 256], len: 0 };
        let Some((label, mrs, n)) = parse_request(request) else {
            let _ = write!(line, "? @{from}");
            return line;
        };
        for (i, v) in mrs[..n].iter().enumerate() {
            set_mr(i, *v);
        }
        let reply = self.virt.pp_call(MessageInfo::new(label, n));
        let _ = write!(line, "{}", reply.label());
        for i in 0..reply.count().min(MAX_MRS) {
            let _ = write!(line, " {}", get_mr(i));
        }
        let _ = write!(line, " @{from}");
        line
    }

    /// Serves both sockets; true if anything moved.
    fn serve(&mut self) -> bool {
        let mut moved = false;
        let mut buffer = [0u8; 1500];
        loop {
            let s = self.sockets.get_mut::<udp::Socket>(self.control);
            if !(s.can_recv() && s.can_send()) {
                break;
            }
            let Ok((n, meta)) = s.recv_slice(&mut buffer) else { break };
            let line = self.answer(&buffer[..n], meta.endpoint);
            let s = self.sockets.get_mut::<udp::Socket>(self.control);
            let _ = s.send_slice(&line.buf[..line.len], meta.endpoint);
            moved = true;
        }
        let s = self.sockets.get_mut::<udp::Socket>(self.steer);
        while s.can_recv() && s.can_send() {
            let Ok((n, meta)) = s.recv_slice(&mut buffer[7..]) else { break };
            buffer[..7].copy_from_slice(b"netctl:");
            let _ = s.send_slice(&buffer[..7 + n], meta.endpoint);
            moved = true;
        }
        moved
    }

    fn run(&mut self) -> Result<(), LinkError> {
        loop {
            loop {
                let now = self.link.now();
                let changed = self.iface.poll(now, &mut self.link, &mut self.sockets);
                let moved = self.serve();
                if !moved && changed == smoltcp::iface::PollResult::None {
                    break;
                }
            }
            let now = self.link.now();
            let next = self.iface.poll_at(now, &self.sockets);
            self.link.set_wake_at(next);
            if self.link.finish_batch()? {
                return Ok(());
            }
        }
    }
}

fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1024]),
    )
}

#[protection_domain(heap_size = 0x40000)]
fn init() -> NetCtl {
    let virt = Channel::new(*var!(virtualiser_channel: usize = 0));
    let _ = self_test(virt);
    let mut link = NetLink::from_description().unwrap_or_else(|e| panic!("netctl: {e}"));
    let info = link.info().unwrap_or_else(|| panic!("netctl: the virtualiser did not describe the link"));
    let iface = link.interface(info.random_seed(edgeos_microkit::debug_time().0));
    let mut sockets = SocketSet::new(vec![]);
    let mut control = udp_socket();
    if let Err(e) = control.bind(info.udp_port) {
        panic!("netctl: bind UDP port {}: {e}", info.udp_port);
    }
    let mut steer = udp_socket();
    if let Err(e) = steer.bind(STEER_PORT) {
        panic!("netctl: bind UDP port {STEER_PORT}: {e}");
    }
    let control = sockets.add(control);
    let steer = sockets.add(steer);
    debug_println!("netctl: tenant {} serving the route API on UDP port {}", info.tenant, info.udp_port);
    let mut n = NetCtl { virt, link, iface, sockets, control, steer };
    if let Err(e) = n.run() {
        panic!("netctl: {e}");
    }
    n
}

impl Handler for NetCtl {
    type Error = LinkError;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), LinkError> {
        self.run()
    }
}
