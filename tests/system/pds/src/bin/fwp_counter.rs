//! A tiny featherweight-process template. `init` sets a counter (in .bss) to 1000 and returns;
//! the kernel snapshots the template at its first wait, so every instance starts with 1000.
//! Protected calls (the fork holder's INSTANCE_CALL): label 0 = increment and answer the
//! counter in MR0; 1 = read an unmapped address; 2 = write to its own code; 3 = spin forever.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{protection_domain, set_mr, Channel, Handler, Infallible, MessageInfo};

static COUNTER: AtomicU64 = AtomicU64::new(0);

struct Counter;

#[protection_domain]
fn init() -> Counter {
    COUNTER.store(1000, Ordering::Relaxed);
    Counter
}

impl Handler for Counter {
    type Error = Infallible;

    fn protected(&mut self, _channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        match msg_info.label() {
            0 => {
                let v = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
                set_mr(0, v);
                Ok(MessageInfo::new(0, 1))
            }
            1 => {
                // SAFETY: deliberately invalid: nothing is mapped there; the kernel reports it.
                let v = unsafe { core::ptr::read_volatile(0x70_0000_0000 as *const u64) };
                set_mr(0, v);
                Ok(MessageInfo::new(0xbad, 1))
            }
            2 => {
                // SAFETY: deliberately invalid: code pages are read-only (and shared).
                unsafe { core::ptr::write_volatile(init as *const () as *mut u32, 0) };
                Ok(MessageInfo::new(0xbad, 0))
            }
            3 => loop {
                core::hint::spin_loop();
            },
            _ => Ok(MessageInfo::new(0xbad, 0)),
        }
    }
}
