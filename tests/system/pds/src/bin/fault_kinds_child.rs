//! The children of the `fault_kinds` test: each raises one kind of fault (chosen by its PD name),
//! after writing into the shared `report` region the PC and address its parent must see. The
//! parent (`fault_kinds_parent`) checks the fault and restarts the child, which then tells it
//! on channel 0 that it runs again. Memory survives a restart, so the run counter tells a first
//! run from a restarted one.
//!
//! Report layout (u64 words, shared with `fault_kinds_parent`): child id `i` owns the words
//! `i * 8 ..`: [0] the expected faulting PC, [1] the expected fault address, [2] runs so far,
//! [3] a marker set by `alt_entry`, [4] the address of `alt_entry`.
//!
//! - `undef` (id 1): `udf #0`.
//! - `unaligned` (id 2): an 8-byte load from an odd address of a `cached="false"` map (device
//!   memory faults on misaligned access even with SCTLR.A clear), after the same misaligned
//!   load from a normal (cached) map succeeded.
//! - `noexec` (id 3): branches into its read-write (hence never executable) `report` map, where
//!   it first wrote a `ret` (so a missing fault shows up as a return, not a hang). The parent
//!   restarts it at `alt_entry`, a new PC.
//! - `badaddr` (id 4): loads from an unmapped user address, then (restarted) from past the top
//!   of the user address space, then from the kernel's direct map of RAM.
//! - `unaligned_pc` (id 5): a branch to a misaligned address (PC alignment fault). (A load
//!   through a misaligned SP would be another alignment fault, but QEMU does not implement SP
//!   alignment checking, so it cannot be tested here.)
#![no_std]
#![no_main]

use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{debug_println, memory_region_symbol, pd_name, protection_domain, Channel, NullHandler};

const PARENT: Channel = Channel::new(0);
/// Where `noexec` branches: inside its `report` map, past the report words.
const NOEXEC_OFFSET: usize = 0x800;
/// `ret` (AArch64).
const RET: u32 = 0xd65f_03c0;
/// The user address space ends here (bootinfo::layout::USER_TOP).
const USER_TOP: u64 = 1 << 39;
/// The kernel's direct map of physical RAM (0x4000_0000) in the high half.
const KERNEL_RAM: u64 = 0xffff_ff80_0000_0000 + 0x4000_0000;
/// The addresses `badaddr` loads from on its runs 1, 2 and 3.
const BAD_ADDRESSES: [u64; 3] = [0xdead_0008, USER_TOP + 0x10, KERNEL_RAM];

static RUNS: AtomicU64 = AtomicU64::new(0);

fn report() -> *mut u64 {
    memory_region_symbol!(report: *mut u64).as_ptr()
}

fn device() -> *mut u8 {
    memory_region_symbol!(device: *mut u8).as_ptr()
}

/// Word `w` of child `id`'s report block.
fn slot(id: usize, w: usize) -> *mut u64 {
    // SAFETY: stays inside the 4 KiB report map (id <= 5, w < 8).
    unsafe { report().add(id * 8 + w) }
}

fn set(id: usize, w: usize, v: u64) {
    // SAFETY: the report map is mapped read-write in every child.
    unsafe { write_volatile(slot(id, w), v) }
}

/// Loads 8 bytes from `addr` with one `ldr`, recording its PC in word 0 and `addr` in word 1
/// of `id`'s block first.
fn recorded_load(id: usize, addr: u64) -> u64 {
    set(id, 1, addr);
    let v: u64;
    // SAFETY: deliberately faulting (or, for the normal-memory check, a valid) load; the PC of
    // the `ldr` is stored to the report slot first.
    unsafe {
        asm!(
            "adr {t}, 2f",
            "str {t}, [{pc_slot}]",
            "2: ldr {v}, [{addr}]",
            t = out(reg) _,
            pc_slot = in(reg) slot(id, 0),
            addr = in(reg) addr,
            v = out(reg) v,
            options(nostack),
        )
    };
    v
}

#[protection_domain]
fn init() -> NullHandler {
    let run = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    let name = pd_name().unwrap_or("?");
    let id = match name {
        "undef" => 1,
        "unaligned" => 2,
        "noexec" => 3,
        "badaddr" => 4,
        "unaligned_pc" => 5,
        _ => panic!("unexpected PD name {name}"),
    };
    set(id, 2, run);
    debug_println!("{name}: run {run}");
    match (id, run) {
        (1, 1) => {
            // SAFETY: raises an undefined-instruction exception; its PC is recorded first.
            unsafe {
                asm!(
                    "adr {t}, 2f",
                    "str {t}, [{pc_slot}]",
                    "2: udf #0",
                    t = out(reg) _,
                    pc_slot = in(reg) slot(id, 0),
                    options(nostack),
                )
            };
            debug_println!("undef: udf #0 did not fault!");
        }
        (2, 1) => {
            // A misaligned load from normal memory is fine (SCTLR_EL1.A is clear)...
            let base = report() as u64;
            // SAFETY: the report map is readable; the 8 bytes at +0x401 are inside it.
            unsafe { write_volatile((base + 0x400) as *mut u64, 0x1122_3344_5566_7788) };
            let v = recorded_load(id, base + 0x401);
            debug_println!("unaligned: misaligned load from normal memory gave {v:#x}");
            // ... and an aligned load from the device map works.
            let dev = device() as u64;
            // SAFETY: the device map is readable and writable; aligned 8-byte accesses.
            let d = unsafe {
                write_volatile(dev as *mut u64, 0xfeed);
                read_volatile(dev as *const u64)
            };
            debug_println!("unaligned: aligned load from the device map gave {d:#x}");
            if v != 0x11_2233_4455_6677 || d != 0xfeed {
                debug_println!("unaligned: unexpected values; not faulting, the parent fails the test");
            } else {
                let v = recorded_load(id, dev + 3);
                debug_println!("unaligned: misaligned load from device memory did not fault (got {v:#x})!");
            }
        }
        (3, 1) => {
            let target = report() as u64 + NOEXEC_OFFSET as u64;
            set(id, 4, alt_entry as *const () as usize as u64);
            set(id, 0, target);
            set(id, 1, target);
            // SAFETY: a `ret` written into the (read-write, non-executable) report map; branching
            // there must raise an instruction abort. Were it executed, it would just return.
            unsafe {
                write_volatile(target as *mut u32, RET);
                asm!("blr {t}", t = in(reg) target, clobber_abi("C"));
            }
            debug_println!("noexec: executed code in a read-write map!");
        }
        (4, r) if r <= BAD_ADDRESSES.len() as u64 => {
            let addr = BAD_ADDRESSES[r as usize - 1];
            let v = recorded_load(id, addr);
            debug_println!("badaddr: load from {addr:#x} did not fault (got {v:#x})!");
        }
        (5, 1) => {
            // SAFETY: branches to 2 bytes past a label in this function's code: a misaligned PC
            // raises a PC alignment fault before anything executes there. The target (recorded
            // as both PC and address) is inside `nop`s that would fall through were it to run.
            unsafe {
                asm!(
                    "adr {t}, 3f",
                    "add {t}, {t}, #2",
                    "str {t}, [{pc_slot}]",
                    "str {t}, [{addr_slot}]",
                    "br {t}",
                    "3: nop",
                    "nop",
                    t = out(reg) _,
                    pc_slot = in(reg) slot(id, 0),
                    addr_slot = in(reg) slot(id, 1),
                    options(nostack),
                )
            };
            debug_println!("unaligned_pc: a branch to a misaligned PC did not fault!");
        }
        _ => {}
    }
    PARENT.notify();
    NullHandler::new()
}

/// Where the parent restarts `noexec` (a new PC, not the ELF entry): marks the report and tells
/// the parent, then serves events as usual. SP is what it was at the fault (a restart sets only
/// the PC), inside the stack.
extern "C" fn alt_entry() -> ! {
    set(3, 3, 0xa17);
    debug_println!("noexec: restarted at alt_entry");
    PARENT.notify();
    edgeos_microkit::_private::run_main(NullHandler::new)
}
