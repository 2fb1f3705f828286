//! The interrupt controller: GICv2 or GICv3, told apart at boot by the distributor's
//! architecture revision (GICD_PIDR2), driven through the `arm-gic` crate.
//!
//! The kernel runs with interrupts masked at the CPU and takes them only from EL0 or while idle
//! in WFI, so there is no nesting: acknowledge, handle, end.

use core::cell::UnsafeCell;
use core::ptr::NonNull;

use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};

/// Which GIC the board has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

enum Driver {
    V2 { gic: GicV2<'static>, group: InterruptGroup },
    V3(GicV3<'static>),
}

struct Gic(UnsafeCell<Option<Driver>>);

// SAFETY: one core, interrupts masked in the kernel: never used by two contexts at once.
unsafe impl Sync for Gic {}

static GIC: Gic = Gic(UnsafeCell::new(None));

/// Priority given to every interrupt the kernel enables (all equal: the kernel never nests).
const PRIORITY: u8 = 0x80;

fn with<R>(f: impl FnOnce(&mut Driver) -> R) -> R {
    // SAFETY: see Gic's Sync. `init` has run before any other call (kmain's order).
    let driver = unsafe { (*GIC.0.get()).as_mut() };
    f(driver.expect("GIC used before init"))
}

/// Detects and initialises the GIC; returns its version.
pub fn init(distributor: u64, cpu_interface: u64, redistributor: u64) -> Version {
    let gicd = super::phys_to_virt(distributor);
    let arch_rev = if has_gicv3_system_registers() {
        // GICD_PIDR2 bits [7:4]: architecture revision (3 or 4: GICv3/v4). Only read when the
        // core has a GICv3 CPU interface: a GICv2 distributor is 4 KiB and has no such offset.
        // SAFETY: the distributor's registers are mapped as device memory in the direct map.
        let pidr2 = unsafe { core::ptr::read_volatile((gicd + 0xffe8) as *const u32) };
        (pidr2 >> 4) & 0xf
    } else {
        2
    };
    let driver = if arch_rev >= 3 {
        // SAFETY: the distributor and redistributor frames are mapped as device memory in the
        // direct map and this is the only driver instance using them.
        let mut gic = unsafe {
            GicV3::new(
                UniqueMmioPointer::new(NonNull::new_unchecked(gicd as *mut _)),
                NonNull::new_unchecked(super::phys_to_virt(redistributor) as *mut _),
                1,
            )
        }
        .expect("GICv3 redistributor layout not understood");
        gic.setup(0);
        GicCpuInterface::set_priority_mask(0xff);
        Driver::V3(gic)
    } else {
        // SAFETY: as above, for the GICv2 distributor and CPU interface.
        let mut gic = unsafe {
            GicV2::new(gicd as *mut _, super::phys_to_virt(cpu_interface) as *mut _)
        };
        gic.setup();
        let group = if gic.typer().has_security_extension() {
            InterruptGroup::Group1
        } else {
            InterruptGroup::Group0
        };
        Driver::V2 { gic, group }
    };
    let version = match driver {
        Driver::V2 { .. } => Version::V2,
        Driver::V3(_) => Version::V3,
    };
    // SAFETY: see Gic's Sync; nothing else holds a reference to the driver.
    unsafe { *GIC.0.get() = Some(driver) };
    version
}

/// Configures an interrupt's trigger and priority and enables or disables it.
pub fn configure(irq: u32, edge: bool) {
    let Ok(intid) = IntId::try_from(irq) else { return };
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    with(|d| match d {
        Driver::V2 { gic, .. } => {
            // SGIs and PPIs have a fixed trigger on GICv2.
            if irq >= 32 {
                gic.set_trigger(intid, trigger);
            }
            gic.set_interrupt_priority(intid, PRIORITY);
        }
        Driver::V3(gic) => {
            let cpu = intid.is_private().then_some(0);
            if irq >= 32 {
                let _ = gic.set_trigger(intid, cpu, trigger);
            }
            let _ = gic.set_interrupt_priority(intid, cpu, PRIORITY);
        }
    })
}

/// Enables (unmasks) or disables (masks) an interrupt at the controller.
pub fn set_enabled(irq: u32, enable: bool) {
    let Ok(intid) = IntId::try_from(irq) else { return };
    with(|d| match d {
        Driver::V2 { gic, .. } => {
            let _ = gic.enable_interrupt(intid, enable);
        }
        Driver::V3(gic) => {
            let cpu = intid.is_private().then_some(0);
            let _ = gic.enable_interrupt(intid, cpu, enable);
        }
    })
}

/// Acknowledges the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    with(|d| match d {
        Driver::V2 { gic, group } => gic.get_and_acknowledge_interrupt(*group),
        Driver::V3(_) => GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1),
    })
    .map(u32::from)
}

/// Ends (drops priority and deactivates) an acknowledged interrupt.
pub fn end(irq: u32) {
    let Ok(intid) = IntId::try_from(irq) else { return };
    with(|d| match d {
        Driver::V2 { gic, group } => gic.end_interrupt(intid, *group),
        Driver::V3(_) => GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1),
    })
}

/// ID_AA64PFR0_EL1.GIC: the core has the GICv3 system-register CPU interface (and it is wired).
fn has_gicv3_system_registers() -> bool {
    let pfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { core::arch::asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack, preserves_flags)) }
    (pfr0 >> 24) & 0xf != 0
}
