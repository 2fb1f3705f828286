//! Parent of a faulting child (child id 1). As `restarter` it expects a data abort near
//! address 0, restarts the child and passes when the restarted child notifies it. As
//! `ro_checker` it expects a write fault at the child's read-only map and passes. As
//! `guard_checker` it expects a write fault in the guard page below the child's stack (the
//! description's default stack size, 8 KiB) and passes.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, pd_name, protection_domain, var, Channel, ChannelSet, Child, FaultKind, Handler, Infallible, MessageInfo};
use edgeos_system_test_pds::{check, pass};

const CHILD_CHANNEL: Channel = Channel::new(0);
/// The child's entry point: PD programs are linked with `_start` first at 0x200000.
const CHILD_ENTRY: usize = 0x20_0000;
/// The top of every PD stack (bootinfo::layout::PD_STACK_TOP) and the default stack size.
const PD_STACK_TOP: u64 = 0x40_0000_0000;
const DEFAULT_STACK_SIZE: u64 = 0x2000;

struct Parent {
    restarter: bool,
    faults: u64,
}

#[protection_domain]
fn init() -> Parent {
    Parent { restarter: pd_name() == Ok("restarter"), faults: 0 }
}

impl Handler for Parent {
    type Error = Infallible;

    fn fault(&mut self, child: Child, msg_info: MessageInfo) -> Result<Option<MessageInfo>, Infallible> {
        let f = msg_info.fault();
        self.faults += 1;
        debug_println!(
            "{}: child {} faulted: {:?} at pc {:#x}, address {:#x}, write {}",
            pd_name().unwrap_or("?"),
            child.index(),
            f.kind,
            f.pc,
            f.address,
            f.is_write
        );
        check!(child.index() == 1, "fault from unexpected child {}", child.index());
        check!(f.kind == Some(FaultKind::DataAbort) && f.is_write, "expected a write data abort, got {f:?}");
        if pd_name() == Ok("guard_checker") {
            let guard_top = PD_STACK_TOP - DEFAULT_STACK_SIZE;
            check!(
                f.address < guard_top && f.address >= guard_top - 4096,
                "fault at {:#x}, not in the guard page below {guard_top:#x}",
                f.address
            );
            pass("stack overflow hits the guard page")
        }
        if self.restarter {
            check!(f.address == 0x10, "unexpected fault address {:#x}", f.address);
            check!(self.faults == 1, "the child faulted again after its restart");
            child.pd_restart(CHILD_ENTRY).unwrap_or_else(|e| edgeos_system_test_pds::fail(format_args!("restart: {e}")));
            Ok(None)
        } else {
            let expected = *var!(ro_region_vaddr: u64 = 0);
            check!(f.address == expected, "fault at {:#x}, expected the read-only map at {expected:#x}", f.address);
            pass("write to a read-only map faults")
        }
    }

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(CHILD_CHANNEL), "unexpected notification {}", channels.display());
        check!(self.restarter && self.faults == 1, "child ran on without the expected fault");
        pass("child fault delivered to its parent, which restarted it")
    }
}
