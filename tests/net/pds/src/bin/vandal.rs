//! A hostile tenant: it hands the virtualiser a transmit descriptor that points far outside its
//! region and notifies. The virtualiser must refuse it, stop serving this tenant (it says so
//! once: "tenant N broke its tx_active queue") and go on serving everyone else.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, memory_region_symbol, protection_domain, var, Channel, Handler, Infallible};
use edgeos_rings::net::{TenantQueue, TENANT_BUFFERS};
use edgeos_rings::{raw, Descriptor, Producer};

struct Vandal;

#[protection_domain(heap_size = 0x1000)]
fn init() -> Vandal {
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
}
