//! Parent of the `fault_kinds` test (children 1..=5, see `fault_kinds_child`): for every fault
//! it checks the kind, the exception class, the PC and the address against what the child
//! recorded in the shared `report` region, and that SP is in the child's stack; then restarts
//! the child (at its ELF entry, or `noexec` at a new PC, its `alt_entry`). It passes once every
//! child has faulted as often as expected and reported back after its last restart.
#![no_std]
#![no_main]

use core::ptr::read_volatile;

use edgeos_microkit::{
    debug_println, memory_region_symbol, protection_domain, ChannelSet, Child, Fault, FaultKind, Handler,
    Infallible, MessageInfo,
};
use edgeos_system_test_pds::{check, fail, pass};

/// PD programs are linked with `_start` first at 0x200000.
const CHILD_ENTRY: usize = 0x20_0000;
/// The top of every PD stack (bootinfo::layout::PD_STACK_TOP) and the default stack size.
const PD_STACK_TOP: u64 = 0x40_0000_0000;
const DEFAULT_STACK_SIZE: u64 = 0x2000;
const NAMES: [&str; 6] = ["", "undef", "unaligned", "noexec", "badaddr", "unaligned_pc"];
/// Faults expected from each child id (badaddr faults on three addresses, one per run).
const EXPECTED_FAULTS: [u64; 6] = [0, 1, 1, 1, 3, 1];

struct Parent {
    faults: [u64; 6],
    done: [bool; 6],
}

fn report(id: usize, w: usize) -> u64 {
    let base = memory_region_symbol!(report: *mut u64).as_ptr();
    // SAFETY: inside the 4 KiB report map (id <= 5, w < 8), read-only here.
    unsafe { read_volatile(base.add(id * 8 + w)) }
}

#[protection_domain]
fn init() -> Parent {
    Parent { faults: [0; 6], done: [false; 6] }
}

fn check_fault(id: usize, f: &Fault) {
    let name = NAMES[id];
    let (pc, addr) = (report(id, 0), report(id, 1));
    let ec = (f.syndrome >> 26) & 0x3f;
    let fsc = f.syndrome & 0x3f;
    check!(
        f.sp <= PD_STACK_TOP && f.sp >= PD_STACK_TOP - DEFAULT_STACK_SIZE,
        "{name}: SP {:#x} is not in the child's stack",
        f.sp
    );
    check!(f.pc == pc, "{name}: fault at pc {:#x}, the child faulted at {pc:#x}", f.pc);
    match id {
        1 => {
            check!(f.kind == Some(FaultKind::UndefinedInstruction), "undef: expected an undefined instruction, got {f:?}");
            check!(ec == 0, "undef: exception class {ec:#x}, expected 0 (unknown reason)");
        }
        2 => {
            check!(f.kind == Some(FaultKind::Alignment), "unaligned: expected an alignment fault, got {f:?}");
            check!(ec == 0x24 && fsc == 0x21, "unaligned: syndrome {:#x} is not a data abort with alignment status", f.syndrome);
            check!(f.address == addr, "unaligned: address {:#x}, expected {addr:#x}", f.address);
            check!(!f.is_write, "unaligned: a load reported as a write");
        }
        3 => {
            check!(f.kind == Some(FaultKind::InstructionAbort), "noexec: expected an instruction abort, got {f:?}");
            check!(ec == 0x20, "noexec: exception class {ec:#x}, expected 0x20 (instruction abort from EL0)");
            check!(f.address == addr, "noexec: address {:#x}, expected {addr:#x}", f.address);
            // A permission fault (the page is mapped, but not executable), any level.
            check!(fsc & 0x3c == 0x0c, "noexec: fault status {fsc:#x} is not a permission fault");
        }
        4 => {
            check!(f.kind == Some(FaultKind::DataAbort), "badaddr: expected a data abort, got {f:?}");
            check!(ec == 0x24, "badaddr: exception class {ec:#x}, expected 0x24 (data abort from EL0)");
            check!(f.address == addr, "badaddr: address {:#x}, expected {addr:#x}", f.address);
            check!(!f.is_write, "badaddr: a load reported as a write");
        }
        5 => {
            check!(f.kind == Some(FaultKind::Alignment), "unaligned_pc: expected an alignment fault, got {f:?}");
            check!(ec == 0x22, "unaligned_pc: exception class {ec:#x}, expected 0x22 (PC alignment)");
            check!(f.address == addr, "unaligned_pc: address {:#x}, expected {addr:#x}", f.address);
        }
        _ => fail(format_args!("fault from unexpected child {id}")),
    }
}

impl Handler for Parent {
    type Error = Infallible;

    fn fault(&mut self, child: Child, msg_info: MessageInfo) -> Result<Option<MessageInfo>, Infallible> {
        let id = child.index();
        let f = msg_info.fault();
        debug_println!(
            "parent: child {id} ({}) faulted: {:?} at pc {:#x}, address {:#x}, syndrome {:#x}, write {}, sp {:#x}",
            NAMES.get(id).unwrap_or(&"?"),
            f.kind,
            f.pc,
            f.address,
            f.syndrome,
            f.is_write,
            f.sp
        );
        check!((1..=5).contains(&id), "fault from unexpected child {id}");
        check_fault(id, &f);
        self.faults[id] += 1;
        check!(self.faults[id] <= EXPECTED_FAULTS[id], "{}: fault {} (expected {})", NAMES[id], self.faults[id], EXPECTED_FAULTS[id]);
        check!(report(id, 2) == self.faults[id], "{}: fault on run {}, expected run {}", NAMES[id], report(id, 2), self.faults[id]);
        let pc = if id == 3 { report(3, 4) as usize } else { CHILD_ENTRY };
        child.pd_restart(pc).unwrap_or_else(|e| fail(format_args!("restart of {} at {pc:#x}: {e}", NAMES[id])));
        Ok(None)
    }

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        for ch in channels.iter() {
            let id = ch.index();
            check!((1..=5).contains(&id), "notified on unexpected channel {id}");
            let name = NAMES[id];
            check!(!self.done[id], "{name} reported back twice");
            check!(
                self.faults[id] == EXPECTED_FAULTS[id],
                "{name} reported back after {} faults, expected {}",
                self.faults[id],
                EXPECTED_FAULTS[id]
            );
            if id == 3 {
                // Restarted at alt_entry: init did not run again, the marker is set.
                check!(report(3, 3) == 0xa17, "noexec: not restarted at its new PC (marker {:#x})", report(3, 3));
                check!(report(3, 2) == 1, "noexec: init ran {} times, expected once", report(3, 2));
            } else {
                check!(report(id, 2) == EXPECTED_FAULTS[id] + 1, "{name}: reported back on run {}", report(id, 2));
            }
            debug_println!("parent: {name} runs again after its restart");
            self.done[id] = true;
        }
        if self.done[1..].iter().all(|d| *d) {
            pass("fault kinds: undefined instruction, alignment, instruction abort, bad addresses and a misaligned PC reach the parent, which restarts each child");
        }
        Ok(())
    }
}
