//! A timer driver: owns the EL1 physical timer (IRQ 30, granted by the description, as sDDF's
//! timer driver on QEMU virt), programs it from EL0 every 10 ms and counts its interrupts, acking
//! each with a deferred IRQ ack.
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{debug_println, protection_domain, Channel, ChannelSet, DeferredAction, Handler, Infallible};
use edgeos_system_test_pds::{check, pass};

const TIMER: Channel = Channel::new(3);
const TICKS: u64 = 5;

fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the physical counter is allowed at EL0 and has no side effects.
    unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) v) };
    v
}

fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 at EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v) };
    v
}

/// Arms the physical timer for `deadline` (physical counter value), or disarms it.
fn arm(deadline: Option<u64>) {
    // SAFETY: the kernel lets this PD program the physical timer because it owns IRQ 30; the
    // registers affect nothing but that timer.
    unsafe {
        match deadline {
            Some(d) => asm!("msr cntp_cval_el0, {d}", "msr cntp_ctl_el0, {on}", "isb", d = in(reg) d, on = in(reg) 1u64),
            None => asm!("msr cntp_ctl_el0, {off}", "isb", off = in(reg) 0u64),
        }
    }
}

struct Driver {
    start: u64,
    period: u64,
    ticks: u64,
    ack: bool,
}

#[protection_domain]
fn init() -> Driver {
    let period = frequency() / 100;
    let start = counter();
    arm(Some(start + period));
    Driver { start, period, ticks: 0, ack: false }
}

impl Handler for Driver {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(TIMER), "unexpected notification {}", channels.display());
        let now = counter();
        self.ticks += 1;
        check!(now >= self.start + self.ticks * self.period, "timer fired early at tick {}", self.ticks);
        if self.ticks == TICKS {
            arm(None);
            debug_println!("timer: {TICKS} interrupts, {} us", (now - self.start) * 1_000_000 / frequency());
            pass("timer IRQ delivered to a driver PD");
        }
        arm(Some(self.start + (self.ticks + 1) * self.period));
        self.ack = true;
        Ok(())
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        core::mem::take(&mut self.ack).then(|| DeferredAction::new_irq_ack(TIMER))
    }
}
