//! The template of the `fwp_array` test: an instance answers through its channel-array end and
//! its mailbox (an instance region the holder sees through an instance window). `init` writes
//! a marker into the mailbox: every instance must start with it (instance regions are part of
//! the snapshot). On each notification: mailbox word 1 = word 0 * 3 + marker, then notify.
//! The answer goes through a page of a 64 KiB zero array first: the template's zero pages are
//! not copied at fork, so this exercises the kernel's pages-on-demand.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{protection_domain, var, Channel, ChannelSet, Handler, Infallible};

/// What `init` leaves in mailbox word 2.
const MARKER: u64 = 0xfeed;
const HOLDER: Channel = Channel::new(0);

fn mailbox() -> *mut u64 {
    *var!(mailbox_vaddr: usize = 0) as *mut u64
}

/// 64 KiB of zeros (never touched by `init`).
static SCRATCH: [AtomicU64; 8192] = [const { AtomicU64::new(0) }; 8192];

struct Peer;

#[protection_domain]
fn init() -> Peer {
    // SAFETY: the description maps the mailbox (4 KiB, rw) at mailbox_vaddr.
    unsafe { mailbox().add(2).write_volatile(MARKER) };
    Peer
}

impl Handler for Peer {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        let m = mailbox();
        // SAFETY: as in init; the holder writes word 0 before notifying and reads word 1 after
        // this notifies back.
        unsafe {
            let x = m.read_volatile();
            let marker = m.add(2).read_volatile();
            let cell = &SCRATCH[(x as usize % 16) * 512];
            let before = cell.swap(x * 3 + marker, Ordering::Relaxed);
            let answer = if before == 0 { cell.load(Ordering::Relaxed) } else { 0 };
            m.add(1).write_volatile(answer);
        }
        HOLDER.notify();
        Ok(())
    }
}
