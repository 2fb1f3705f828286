//! EdgeOS kernel: a small microkernel that runs the protection domains of a Microkit-style system
//! description on aarch64 (QEMU `virt`).
//!
//! Boot: `arch/boot.S` drops to EL1, turns the MMU on with the kernel in the high half and calls
//! [`kmain`], which brings up the console, interrupt controller and timer, reads the boot blob
//! the image tool placed after the kernel, builds every PD and enters the scheduler. From then on
//! the kernel runs only in exception handlers ([`handle_user_exception`]), with interrupts masked.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod hw;
mod loader;
mod memory;

use core::cell::UnsafeCell;

use bootinfo::board::QEMU_VIRT_AARCH64 as BOARD;
use bootinfo::BootInfo;
use edgeos_kernel_core::context::UserContext;
use edgeos_kernel_core::kernel::{classify_syndrome, FaultInfo, Kernel, PdId};
use edgeos_abi_kinds::*;

use crate::hw::Hardware;

/// Exception kinds passed by `vectors.S`.
mod edgeos_abi_kinds {
    pub const KIND_SYNC: u64 = 0;
    pub const KIND_IRQ: u64 = 1;
}

/// Global kernel state: the model, the boot description and which address space is installed.
struct State {
    kernel: Kernel<'static>,
    info: BootInfo<'static>,
    hw: Hardware,
    installed: Option<PdId>,
}

struct Global(UnsafeCell<Option<State>>);

// SAFETY: one core; the kernel runs with interrupts masked and is entered only through the
// exception vectors, so the state is never accessed by two contexts at once.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(None));

fn state() -> &'static mut State {
    // SAFETY: see Global's Sync; every kernel entry takes this reference once and drops it before
    // leaving the kernel (enter_user never returns).
    unsafe { (*STATE.0.get()).as_mut().expect("kernel state used before boot finished") }
}

fn pd_name(pd: PdId) -> &'static str {
    state().info.pd_name(pd as usize)
}

/// Kernel entry from `boot.S`, in the high half with the MMU on.
#[unsafe(no_mangle)]
extern "C" fn kmain(_dtb: u64, entered_el2: u64) -> ! {
    arch::init_cpu();
    arch::console::init(BOARD.uart);
    arch::psci::init(entered_el2 != 0);
    let gic = arch::gic::init(BOARD.gic_distributor, BOARD.gic_cpu_interface, BOARD.gic_redistributor);
    let frequency = arch::timer::frequency();
    println!(
        "EdgeOS kernel: {} entered at EL{}, GIC{:?}, timer {} Hz",
        arch::cpu::core_name(),
        if entered_el2 != 0 { 2 } else { 1 },
        gic,
        frequency
    );

    let ram_end = BOARD.ram_base + BOARD.ram_size;
    let blob_paddr = arch::kernel_phys_end().next_multiple_of(4096);
    // SAFETY: from the end of the kernel image to the end of RAM is memory nobody else uses yet;
    // the blob is only read.
    let blob = unsafe { memory::phys_slice(blob_paddr, (ram_end - blob_paddr) as usize) };
    let info = match BootInfo::parse(blob) {
        Ok(info) => info,
        Err(e) => {
            println!("edgeos: no usable boot description at {blob_paddr:#x} ({e}); nothing to run");
            arch::psci::system_off();
        }
    };
    let reserved_end = info.reserved_end_paddr().max(blob_paddr + info.total_size());
    let mut mem = memory::Memory::new(reserved_end, ram_end);
    let kernel = match loader::load(&info, blob_paddr, &mut mem, frequency) {
        Ok(k) => k,
        Err(e) => {
            println!("edgeos: cannot build the system: {e}");
            println!("EDGEOS-TEST: FAIL (boot)");
            arch::psci::system_off();
        }
    };
    for (irq, _) in kernel.owned_irqs() {
        let edge = (0..info.irq_count()).any(|i| info.irq(i).irq == irq && info.irq(i).trigger == bootinfo::Trigger::Edge);
        arch::gic::configure(irq, edge);
        // Masked until its PD acks it (the runtime acks every IRQ once after init).
        arch::gic::set_enabled(irq, false);
    }
    arch::gic::configure(arch::timer::KERNEL_TIMER_IRQ, false);
    arch::gic::set_enabled(arch::timer::KERNEL_TIMER_IRQ, true);
    println!(
        "edgeos: {} protection domains, {} KiB free",
        info.pd_count(),
        mem.frames.free_frames() * 4
    );

    // SAFETY: see Global; boot is single-threaded and no reference to the state exists yet.
    unsafe { *STATE.0.get() = Some(State { kernel, info, hw: Hardware { frequency, names: pd_name }, installed: None }) };
    arch::mmu::enable_user_translation();
    let ctx = next_context();
    // SAFETY: the context belongs to a PD in the kernel's PD table (never moved or freed) and
    // next_context installed its address space.
    unsafe { arch::context::enter_user(ctx) }
}

/// Runs the scheduler until some PD can run (idling in WFI meanwhile), installs its address
/// space and returns its context.
fn next_context() -> *mut UserContext {
    let s = state();
    let pd = loop {
        if let Some(pd) = s.kernel.schedule(&mut s.hw) {
            break pd;
        }
        arch::cpu::wait_for_interrupt();
        handle_interrupts(s);
    };
    if s.installed != Some(pd) {
        let p = &s.kernel.pds[pd as usize];
        arch::mmu::set_user_table(p.root, p.asid.id);
        arch::timer::set_user_virtual_timer_access(p.owns_virtual_timer);
        s.installed = Some(pd);
    }
    &mut s.kernel.pds[pd as usize].ctx
}

fn handle_interrupts(s: &mut State) {
    while let Some(irq) = arch::gic::acknowledge() {
        if irq >= 1020 {
            break;
        }
        if irq == arch::timer::KERNEL_TIMER_IRQ {
            arch::timer::cancel();
        }
        s.kernel.interrupt(&mut s.hw, irq);
        arch::gic::end(irq);
    }
}

/// An exception from EL0 (see `vectors.S`): the PD's registers are saved in its context.
#[unsafe(no_mangle)]
extern "C" fn handle_user_exception(_ctx: *mut UserContext, kind: u64) -> *mut UserContext {
    let s = state();
    let Some(pd) = s.kernel.current() else {
        panic!("exception from EL0 with no current PD");
    };
    match kind {
        KIND_SYNC => {
            let esr = arch::cpu::esr();
            if esr >> 26 == 0x15 {
                s.kernel.syscall(&mut s.hw, pd);
            } else {
                let (kind, is_write) = classify_syndrome(esr);
                let ctx = &s.kernel.pds[pd as usize].ctx;
                let fault = FaultInfo { kind, pc: ctx.pc, address: arch::cpu::far(), syndrome: esr, is_write, sp: ctx.sp };
                s.kernel.fault(&mut s.hw, pd, fault);
            }
        }
        KIND_IRQ => handle_interrupts(s),
        _ => {
            // FIQ or SError from a PD: treat it as the PD's fault.
            let ctx = &s.kernel.pds[pd as usize].ctx;
            let fault = FaultInfo {
                kind: edgeos_kernel_abi::FaultKind::Unknown,
                pc: ctx.pc,
                address: 0,
                syndrome: arch::cpu::esr(),
                is_write: false,
                sp: ctx.sp,
            };
            s.kernel.fault(&mut s.hw, pd, fault);
        }
    }
    next_context()
}

/// An exception taken while in the kernel: always a kernel bug.
#[unsafe(no_mangle)]
extern "C" fn handle_kernel_exception(esr: u64, elr: u64, far: u64, sp: u64) -> ! {
    println!("KERNEL FAULT: esr={esr:#x} elr={elr:#x} far={far:#x} sp={sp:#x}");
    println!("EDGEOS-TEST: FAIL (kernel fault)");
    arch::psci::system_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("KERNEL PANIC: {info}");
    println!("EDGEOS-TEST: FAIL (kernel panic)");
    arch::psci::system_off()
}
