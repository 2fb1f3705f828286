//! A hostile tenant: it hands the virtualiser a transmit descriptor that points far outside its
//! region and notifies. The virtualiser must refuse it, stop serving this tenant (it says so
//! once: "tenant N broke its tx_active queue") and go on serving everyone else.
//!
//! First it tries the route API over a protected-call channel of its own (it is not the
//! virtualiser's `controller_channel`): taking echo1's port 7001, steering a connection to
//! itself, removing echo1's route, reading counters. Every call must be refused with
//! `ApiError::NotController`; it prints `vandal: route API refused every call` (or
//! `vandal: FAIL ...`).
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, get_mr, memory_region_symbol, protection_domain, set_mr, var, Channel, ChannelSet, Handler, Infallible, MessageInfo};
use edgeos_netvirt_core::api::{self, ApiError};
use edgeos_rings::net::{TenantQueue, TENANT_BUFFERS};
use edgeos_rings::{raw, Descriptor, Producer};

struct Vandal;

/// Tries every route API call on `virt`; true if each was refused as a non-controller's.
fn try_route_api(virt: Channel) -> bool {
    const UDP: u64 = 17;
    let calls: [(&str, u64, &[u64]); 5] = [
        ("take echo1's port", api::LABEL_INSTALL_PORT, &[UDP, 7001, 3]),
        ("remove echo1's port", api::LABEL_REMOVE_PORT, &[UDP, 7001]),
        ("steer a connection to itself", api::LABEL_INSTALL_CONNECTION, &[UDP, 0x0a00_0202, 40000, 7001, 3]),
        ("remove a connection", api::LABEL_REMOVE_CONNECTION, &[UDP, 0x0a00_0202, 40000, 7001]),
        ("read counters", api::LABEL_COUNTERS, &[0]),
    ];
    for (what, label, args) in calls {
        for (i, a) in args.iter().enumerate() {
            set_mr(i, *a);
        }
        let reply = virt.pp_call(MessageInfo::new(label, args.len()));
        if reply.label() != ApiError::NotController as u64 || reply.count() != 0 {
            let first = if reply.count() > 0 { get_mr(0) } else { u64::MAX };
            debug_println!("vandal: FAIL {what}: reply label {} ({} registers, first {first}), want NotController", reply.label(), reply.count());
            return false;
        }
    }
    true
}

#[protection_domain(heap_size = 0x1000)]
fn init() -> Vandal {
    let virt = *var!(virtualiser_channel: usize = usize::MAX);
    if virt != usize::MAX && try_route_api(Channel::new(virt)) {
        debug_println!("vandal: route API refused every call (not the controller)");
    }
    let link = memory_region_symbol!(net_link_vaddr: *mut u8);
    let size = *var!(net_link_size: usize = 0);
    let channel = Channel::new(*var!(net_channel: usize = 0));
    // SAFETY: the description maps the link region into this PD for its whole life.
    let view = unsafe { raw::tenant_queue(link, size, TenantQueue::TxActive) }.unwrap_or_else(|e| panic!("vandal: {e}"));
    let mut tx = Producer::new(view, TENANT_BUFFERS).unwrap_or_else(|e| panic!("vandal: {e}"));
    if let Err(e) = tx.enqueue(Descriptor::new(1 << 40, 60)) {
        panic!("vandal: {e:?}");
    }
    channel.notify();
    debug_println!("vandal: sent a descriptor 1 TiB outside its region");
    Vandal
}

impl Handler for Vandal {
    type Error = Infallible;

    /// The virtualiser may notify it (for the deadline its link's zeroed control word seems to
    /// publish) before it is cut off; there is nothing to do.
    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        Ok(())
    }
}
