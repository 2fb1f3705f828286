//! Parent of the `child_stop` and `child_stop_waiting` tests.
//!
//! As `stopper` (`child_stop`), parent of a live child (id 1, a `counting_spinner` at the same
//! priority, so round robin lets both run): stops it and checks its counter stays still for
//! 50 ms while this PD keeps running; resumes it and checks it counts on from where it was (no
//! new start); stops it again and restarts it at its entry, which runs `init` again (start 2)
//! and counts on.
//!
//! As `wait_stopper` (`child_stop_waiting`), parent of a child blocked in its event loop (id 2,
//! a `stop_waiter`, same priority): stopped while waiting, it must not run its handler for a
//! notification sent meanwhile; resumed, it gets exactly that notification once (the wait it
//! was stopped in goes on, as seL4 restarts the interrupted system call), and nothing else.
#![no_std]
#![no_main]

use core::ptr::read_volatile;

use edgeos_microkit::{
    counter, counter_frequency, debug_println, memory_region_symbol, pd_name, protection_domain, Channel, Child,
    NullHandler,
};
use edgeos_system_test_pds::{check, fail, pass};

const CHILD: Child = Child::new(1);
const WAITER: Child = Child::new(2);
const TO_WAITER: Channel = Channel::new(2);
/// PD programs are linked with `_start` first at 0x200000.
const CHILD_ENTRY: usize = 0x20_0000;

fn count() -> u64 {
    // SAFETY: the child's counter map, mapped read-only here; the child writes it.
    unsafe { read_volatile(memory_counter()) }
}

fn starts() -> u64 {
    // SAFETY: as in count(), word 1.
    unsafe { read_volatile(memory_counter().add(1)) }
}

fn memory_counter() -> *const u64 {
    memory_region_symbol!(counter: *mut u64).as_ptr()
}

/// Word `w` of the waiter's report (see `stop_waiter`).
fn waiter(w: usize) -> u64 {
    // SAFETY: the waiter's report map, read-only here; w < 4.
    unsafe { read_volatile(memory_region_symbol!(waiter_report: *mut u64).as_ptr().add(w)) }
}

/// Spins for `ms` milliseconds of counter time.
fn spin_ms(ms: u64) {
    let start = counter();
    let ticks = counter_frequency() / 1000 * ms;
    while counter() - start < ticks {
        core::hint::spin_loop();
    }
}

/// Waits (up to 5 s) until the child's counter passes `from` by 1000 iterations.
fn expect_counting(from: u64, what: &str) {
    let start = counter();
    let limit = counter_frequency() * 5;
    while count() < from + 1000 {
        if counter() - start > limit {
            fail(format_args!("{what}: the child's counter stayed at {} for 5 s", count()));
        }
        core::hint::spin_loop();
    }
    debug_println!("stopper: {what}: the child counts ({from} -> {})", count());
}

/// Stops the child and checks its counter does not move for 50 ms.
fn stop_and_check(what: &str) -> u64 {
    CHILD.pd_stop().unwrap_or_else(|e| fail(format_args!("{what}: pd_stop: {e}")));
    let frozen = count();
    spin_ms(50);
    let later = count();
    check!(later == frozen, "{what}: the stopped child still counts ({frozen} -> {later})");
    debug_println!("stopper: {what}: stopped, counter stays at {frozen} for 50 ms");
    frozen
}

#[protection_domain]
fn init() -> NullHandler {
    if pd_name() == Ok("wait_stopper") {
        stop_waiting()
    }
    expect_counting(0, "at start");
    check!(starts() == 1, "the child started {} times", starts());

    let frozen = stop_and_check("first stop");
    CHILD.pd_resume().unwrap_or_else(|e| fail(format_args!("pd_resume: {e}")));
    expect_counting(frozen, "after resume");
    check!(starts() == 1, "resume re-ran init (start {})", starts());

    let frozen = stop_and_check("second stop");
    CHILD.pd_restart(CHILD_ENTRY).unwrap_or_else(|e| fail(format_args!("pd_restart: {e}")));
    expect_counting(frozen, "after restart");
    check!(starts() == 2, "the restarted child did not run init again (start {})", starts());
    pass("a parent stops, resumes and restarts a live child")
}

fn stop_waiting() -> ! {
    // Let the waiter finish init and block in its wait (it shares our priority).
    let start = counter();
    while waiter(0) != 1 {
        check!(counter() - start < counter_frequency() * 5, "the waiter did not finish init in 5 s");
    }
    spin_ms(20);
    check!(waiter(1) == 0, "the waiter was notified before anyone notified it");
    WAITER.pd_stop().unwrap_or_else(|e| fail(format_args!("stopping the waiter: {e}")));
    TO_WAITER.notify();
    spin_ms(50);
    check!(waiter(1) == 0, "the stopped waiter ran its handler");
    WAITER.pd_resume().unwrap_or_else(|e| fail(format_args!("resuming the waiter: {e}")));
    let start = counter();
    while waiter(1) == 0 {
        check!(counter() - start < counter_frequency() * 5, "the resumed waiter did not get the notification in 5 s");
    }
    spin_ms(50);
    check!(
        waiter(1) == 1,
        "the resumed waiter ran its handler {} times for one notification, first with the channels {:#b}",
        waiter(1),
        waiter(3)
    );
    check!(waiter(2) == 1 << 3, "the resumed waiter got the channels {:#b}, expected only 3", waiter(2));
    debug_println!("stopper: the waiter, stopped while waiting, got the notification once after resume");
    pass("a child stopped while waiting gets, once resumed, the notification sent meanwhile, once")
}
