//! A misbehaving tenant for the isolation test: it hands every receive buffer to the
//! virtualiser and then never drains its ring, so everything routed to it beyond those buffers
//! must be dropped, and only its own traffic.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use edgeos_microkit::{debug_println, protection_domain, ChannelSet, Handler, Infallible};
use edgeos_net_device::NetLink;

struct Sink {
    _link: NetLink,
}

#[protection_domain(heap_size = 0x4000)]
fn init() -> Sink {
    let mut link = NetLink::from_description().unwrap_or_else(|e| panic!("{e}"));
    match link.info() {
        Some(info) => debug_println!("sink: tenant {} on UDP port {} never drains its ring", info.tenant, info.udp_port),
        // A template: its instances never drain their rings either.
        None => debug_println!("sink: link not described yet; never drains its ring"),
    }
    Sink { _link: link }
}

impl Handler for Sink {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        Ok(())
    }
}
