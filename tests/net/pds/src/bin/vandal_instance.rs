//! A hostile template for the instance test (tests/net/instances): its `init` does nothing (a
//! template's `init` may not signal anyone); each instance, at its first event (the
//! virtualiser has written its LinkInfo and notified it), hands the virtualiser a transmit
//! descriptor far outside its region and notifies. The virtualiser must drop and RELEASE that
//! instance alone ("instance tenant N broke its tx_active queue", "released: broken") and go
//! on serving everyone else.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, memory_region_symbol, protection_domain, var, Channel, ChannelSet, Handler, Infallible};
use edgeos_rings::net::{TenantQueue, TENANT_BUFFERS};
use edgeos_rings::{raw, Descriptor, Producer};

struct Vandal {
    done: bool,
}

#[protection_domain(heap_size = 0x1000)]
fn init() -> Vandal {
    Vandal { done: false }
}

impl Handler for Vandal {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        if core::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let link = memory_region_symbol!(net_link_vaddr: *mut u8);
        let size = *var!(net_link_size: usize = 0);
        // SAFETY: the description maps the link region (an instance region) into every instance.
        let view = unsafe { raw::tenant_queue(link, size, TenantQueue::TxActive) }.unwrap_or_else(|e| panic!("vandal: {e}"));
        let mut tx = Producer::new(view, TENANT_BUFFERS).unwrap_or_else(|e| panic!("vandal: {e}"));
        if let Err(e) = tx.enqueue(Descriptor::new(1 << 40, 60)) {
            panic!("vandal: {e:?}");
        }
        Channel::new(*var!(net_channel: usize = 0)).notify();
        debug_println!("vandal: an instance sent a descriptor 1 TiB outside its region");
        Ok(())
    }
}
