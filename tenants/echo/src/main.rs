//! An echo tenant: every UDP datagram to its port comes back to the sender, and every TCP
//! connection to its port gets back what it sends, with several connections at once. It
//! serves the UDP and TCP ports the network virtualiser routes to it (the virtualiser's route
//! configuration, told to the tenant through its link), so one program serves many tenants.
//!
//! It runs as a static PD or as a template's instances: `init` opens the link and makes the
//! sockets; the interface (addresses, random seed) and the ports are set up when the link's
//! info is first there, in `init` for a static PD, at the first notification for an instance.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;

use edgeos_microkit::{debug_println, debug_time, pd_name, protection_domain, ChannelSet, Handler};
use edgeos_net_device::{LinkError, LinkInfo, NetLink};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;

/// TCP connections served at once (one listening socket each).
const TCP_SOCKETS: usize = 8;
const TCP_BUFFER: usize = 16 * 1024;
const UDP_PACKETS: usize = 64;
const UDP_BUFFER: usize = 64 * 1024;

struct Echo {
    link: NetLink,
    /// None until the link is described (see `attach`).
    iface: Option<Interface>,
    sockets: SocketSet<'static>,
    udp: SocketHandle,
    tcp: [SocketHandle; TCP_SOCKETS],
    tcp_port: u16,
}

fn now() -> Instant {
    let (ticks, frequency) = debug_time();
    Instant::from_micros((ticks as u128 * 1_000_000 / frequency.max(1) as u128) as i64)
}

#[protection_domain(heap_size = 0x80000)]
fn init() -> Echo {
    let link = match NetLink::from_description() {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let mut sockets = SocketSet::new(vec![]);
    let udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUFFER]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUFFER]),
    );
    let udp = sockets.add(udp_socket);
    let tcp = core::array::from_fn(|_| {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; TCP_BUFFER]), tcp::SocketBuffer::new(vec![0; TCP_BUFFER]));
        // Echoes go out at once: acknowledge with the data, no Nagle.
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        sockets.add(s)
    });
    let mut echo = Echo { link, iface: None, sockets, udp, tcp, tcp_port: 0 };
    // A static PD attaches here and drains whatever already arrived; a template finds its link
    // not described yet and waits (its instances attach at their first notification).
    if let Err(e) = echo.run() {
        panic!("echo: {e}");
    }
    if echo.iface.is_none() {
        debug_println!("echo: PD {}: link not described yet; attaching at the first notification", pd_name().unwrap_or("?"));
    }
    echo
}

impl Echo {
    /// Sets up what depends on the link's info: the interface (address, gateway, a seed of
    /// this tenant's own) and the ports.
    fn attach(&mut self, info: LinkInfo) {
        let (udp_port, tcp_port) = (info.udp_port, info.tcp_port);
        let iface = self.link.interface(info.random_seed(debug_time().0));
        if udp_port != 0 {
            if let Err(e) = self.sockets.get_mut::<udp::Socket>(self.udp).bind(udp_port) {
                panic!("echo: bind UDP port {udp_port}: {e}");
            }
        }
        self.tcp_port = tcp_port;
        debug_println!("echo: PD {} (tenant {}) serving UDP port {udp_port}, TCP port {tcp_port}", pd_name().unwrap_or("?"), info.tenant);
        self.iface = Some(iface);
        self.listen();
    }

    /// Puts every closed TCP socket back to listening.
    fn listen(&mut self) {
        if self.tcp_port == 0 {
            return;
        }
        for &h in &self.tcp {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if !s.is_open() {
                if let Err(e) = s.listen(self.tcp_port) {
                    panic!("echo: listen on TCP port {}: {e}", self.tcp_port);
                }
            }
        }
    }

    /// Echoes whatever the sockets hold; true if anything moved.
    fn serve(&mut self) -> bool {
        let mut moved = false;
        let mut buffer = [0u8; 2048];
        let udp = self.sockets.get_mut::<udp::Socket>(self.udp);
        while udp.can_recv() && udp.can_send() {
            match udp.recv_slice(&mut buffer) {
                Ok((n, meta)) => {
                    // A full transmit buffer drops the echo, as a network would.
                    let _ = udp.send_slice(&buffer[..n], meta.endpoint);
                    moved = true;
                }
                Err(_) => break,
            }
        }
        for &h in &self.tcp {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            while s.can_recv() && s.can_send() {
                let room = s.send_capacity() - s.send_queue();
                if room == 0 {
                    break;
                }
                let want = room.min(buffer.len());
                let n = match s.recv_slice(&mut buffer[..want]) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                // `room` bytes fit, so all of them are queued.
                let _ = s.send_slice(&buffer[..n]);
                moved = true;
            }
            // The peer closed its side and everything was echoed: close ours.
            if !s.may_recv() && s.may_send() && s.send_queue() == 0 {
                s.close();
                moved = true;
            }
        }
        moved
    }

    fn run(&mut self) -> Result<(), LinkError> {
        if self.iface.is_none() {
            match self.link.info() {
                Some(info) => self.attach(info),
                None => return self.link.wait_for_info(),
            }
        }
        loop {
            loop {
                let Some(iface) = self.iface.as_mut() else { unreachable!("attached above") };
                let changed = iface.poll(now(), &mut self.link, &mut self.sockets);
                let moved = self.serve();
                self.listen();
                if !moved && changed == smoltcp::iface::PollResult::None {
                    break;
                }
            }
            let next = self.iface.as_mut().and_then(|iface| iface.poll_at(now(), &self.sockets));
            self.link.set_wake_at(next);
            if self.link.finish_batch()? {
                return Ok(());
            }
        }
    }
}

impl Handler for Echo {
    type Error = LinkError;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), LinkError> {
        self.run()
    }
}
