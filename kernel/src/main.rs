//! EdgeOS kernel: a small microkernel that runs the protection domains of a Microkit-style system
//! description on aarch64 (QEMU `virt`).
//!
//! Boot: `arch/boot.S` drops to EL1, turns the MMU on with the kernel in the high half and calls
//! [`kmain`], which brings up the console, interrupt controller and timer, reads the boot blob
//! the image tool placed after the kernel, builds every PD and enters the scheduler. From then on
//! the kernel runs only in exception handlers ([`handle_user_sync`], [`handle_user_irq`],
//! [`handle_user_other`]), with interrupts masked.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod fwp;
mod hw;
mod loader;
mod memory;

use core::cell::UnsafeCell;

use bootinfo::board::QEMU_VIRT_AARCH64 as BOARD;
use bootinfo::BootInfo;
use edgeos_kernel_core::context::UserContext;
use edgeos_kernel_core::fpu::LazyFp;
use edgeos_kernel_core::kernel::{classify_syndrome, FaultInfo, Kernel, Next, PdId};
use edgeos_kernel_core::runqueue::NIL;

use crate::hw::Hardware;

/// Global kernel state: the model, the boot description and what the hardware holds for the
/// running PD (address space, physical-timer access, FP/SIMD registers).
struct State {
    kernel: Kernel<'static>,
    info: BootInfo<'static>,
    hw: Hardware,
    /// The PD whose address space is in TTBR0 (NIL: none).
    installed: PdId,
    /// Whether EL0 may program the physical timer (CNTKCTL_EL1.EL0PTEN) right now.
    physical_timer_access: bool,
    fp: LazyFp,
    /// Frames and tables (forks allocate from here, destroys free into it).
    mem: memory::Memory,
    /// Featherweight-process books: templates, fork grants, live instances.
    instances: edgeos_kernel_core::fwp::Instances<'static>,
    /// Each template's fork plan (empty until its first fork, see `fwp::prepare`).
    plans: &'static mut [fwp::Prepared],
}

struct Global(UnsafeCell<Option<State>>);

// SAFETY: one core; the kernel runs with interrupts masked and is entered only through the
// exception vectors, so the state is never accessed by two contexts at once.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(None));

/// The kernel state, for exception handlers (which run only after boot has set it).
#[inline(always)]
fn state() -> &'static mut State {
    // SAFETY: see Global's Sync; every kernel entry takes this reference once and drops it before
    // leaving the kernel. Exceptions from EL0 (the only way in after boot) can only happen once
    // kmain has stored the state and entered the first PD, so the state is always there.
    unsafe { (*STATE.0.get()).as_mut().unwrap_unchecked() }
}

fn pd_name(pd: PdId) -> &'static str {
    state().info.pd_name(pd as usize)
}

/// Kernel entry from `boot.S`, in the high half with the MMU on.
#[unsafe(no_mangle)]
extern "C" fn kmain(_dtb: u64, entered_el2: u64) -> ! {
    arch::init_cpu();
    arch::console::init(BOARD.uart);
    arch::power::init(entered_el2 != 0);
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
            arch::power::off(1);
        }
    };
    if info.flags() & bootinfo::FLAG_DEBUG_EXIT != 0 {
        arch::power::use_semihosting_exit();
    }
    let reserved_end = info.reserved_end_paddr().max(blob_paddr + info.total_size());
    // Regions the description fixes in RAM (DMA areas at a device's address) are excluded from
    // the frame allocator rather than reserved by the tool, so RAM below them stays usable.
    let fixed = (0..info.region_count()).map(|i| info.region(i)).filter_map(|r| {
        (r.flags & bootinfo::REGION_FIXED != 0 && BOARD.in_ram(r.paddr, r.size)).then_some((r.paddr, r.paddr + r.size))
    });
    let Some(mut mem) = memory::Memory::new(reserved_end, ram_end, fixed) else {
        cannot_build(format_args!("no room for the frame bitmap between {reserved_end:#x} and {ram_end:#x}"));
    };
    let mut kernel = match loader::load(&info, blob_paddr, &mut mem, frequency) {
        Ok(k) => k,
        Err(e) => {
            cannot_build(format_args!("{e}"));
        }
    };
    let instances = match loader::instances(&info, &mut mem) {
        Ok(i) => i,
        Err(e) => {
            cannot_build(format_args!("{e}"));
        }
    };
    if let Err(e) = loader::arrays(&info, &mut mem, &instances).and_then(|a| kernel.install_arrays(a).map_err(loader::LoadError::Kernel)) {
        cannot_build(format_args!("{e}"));
    }
    let plans: &'static mut [fwp::Prepared] = if info.template_count() == 0 {
        &mut []
    } else {
        match mem.alloc_table(info.template_count(), fwp::Prepared::NONE) {
            Some(t) => t,
            None => {
                cannot_build(format_args!("no memory for fork plans"));
            }
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
    if info.template_count() == 0 {
        println!("edgeos: {} protection domains, {} KiB free", info.pd_count(), mem.frames.free_frames() * 4);
    } else {
        println!(
            "edgeos: {} protection domains, {} templates, {} KiB free",
            info.pd_count(),
            info.template_count(),
            mem.frames.free_frames() * 4
        );
    }

    // SAFETY: see Global; boot is single-threaded and no reference to the state exists yet.
    unsafe {
        *STATE.0.get() = Some(State {
            kernel,
            info,
            hw: Hardware { frequency, names: pd_name },
            installed: NIL,
            physical_timer_access: false,
            fp: LazyFp::new(),
            mem,
            instances,
            plans,
        })
    };
    arch::mmu::enable_user_translation();
    let ctx = next_context(state());
    // SAFETY: the context belongs to a PD in the kernel's PD table (never moved or freed) and
    // next_context installed its address space.
    unsafe { arch::context::enter_user(ctx) }
}

/// Runs the scheduler until some PD can run (idling in WFI meanwhile) and switches to it.
fn next_context(s: &mut State) -> *mut UserContext {
    let pd = loop {
        if let Some(pd) = s.kernel.schedule(&mut s.hw) {
            break pd;
        }
        arch::cpu::wait_for_interrupt();
        handle_interrupts(s);
    };
    switch_to(s, pd)
}

/// Makes the hardware ready to resume `pd` (the kernel's current PD): its address space, its
/// physical-timer access and FP/SIMD access; returns its context.
#[inline]
fn switch_to(s: &mut State, pd: PdId) -> *mut UserContext {
    let p = s.kernel.pd(pd);
    if s.installed != pd {
        arch::mmu::set_user_table(p.root, p.asid.id);
        if p.owns_physical_timer != s.physical_timer_access {
            s.physical_timer_access = p.owns_physical_timer;
            arch::timer::set_user_physical_timer_access(p.owns_physical_timer);
        }
        s.installed = pd;
    }
    if let Some(enable) = s.fp.on_resume(pd) {
        arch::cpu::set_user_fp_access(enable);
    }
    &mut s.kernel.pd_mut(pd).ctx
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

/// The PD that was running when the exception was taken.
#[inline(always)]
fn current(s: &State) -> PdId {
    match s.kernel.current() {
        Some(pd) => pd,
        None => panic!("exception from EL0 with no current PD"),
    }
}

/// Exception class (ESR_EL1.EC) of an SVC from AArch64.
const EC_SVC64: u64 = 0x15;
/// Exception class of an FP/SIMD instruction trapped by CPACR_EL1.FPEN.
const EC_FP_TRAP: u64 = 0x07;

/// A synchronous exception from EL0 (see `vectors.S`): a system call, a trapped first FP/SIMD
/// use, or a fault. The PD's general registers are saved in `ctx`, its context. The protected
/// call and reply fast paths are tried first and kept small: everything else is out of line.
#[unsafe(no_mangle)]
extern "C" fn handle_user_sync(ctx: *mut UserContext) -> *mut UserContext {
    let s = state();
    let esr = arch::cpu::esr();
    if esr >> 26 == EC_SVC64 {
        return match s.kernel.fast_syscall(&mut s.hw) {
            Some(Next::Resume) => ctx,
            Some(Next::Switch(next)) => switch_to(s, next),
            Some(Next::Schedule) => next_context(s),
            None => syscall(s, ctx),
        };
    }
    other_sync(s, esr, ctx)
}

/// A system call the fast paths did not take.
#[inline(never)]
fn syscall(s: &mut State, ctx: *mut UserContext) -> *mut UserContext {
    let pd = current(s);
    let number = s.kernel.pd(pd).ctx.x[8];
    if (edgeos_kernel_abi::sys::FORK..=edgeos_kernel_abi::sys::DEBUG_FREE_FRAMES).contains(&number)
        || number == edgeos_kernel_abi::sys::RECYCLE
    {
        return match fwp::syscall(s, pd, number) {
            Next::Resume => ctx,
            Next::Switch(next) => switch_to(s, next),
            Next::Schedule => next_context(s),
        };
    }
    match s.kernel.syscall(&mut s.hw, pd) {
        Next::Resume => ctx,
        Next::Switch(next) => switch_to(s, next),
        Next::Schedule => next_context(s),
    }
}

/// A synchronous exception other than a system call: the first FP/SIMD use since another PD
/// used the registers, or a fault.
#[inline(never)]
fn other_sync(s: &mut State, esr: u64, ctx: *mut UserContext) -> *mut UserContext {
    let pd = current(s);
    if esr >> 26 == EC_FP_TRAP {
        fp_trap(s, pd);
        return ctx;
    }
    if fwp::demand_fault(s, pd, esr, arch::cpu::far()) {
        return ctx;
    }
    let (kind, is_write) = classify_syndrome(esr);
    let c = &s.kernel.pds[pd as usize].ctx;
    let fault = FaultInfo { kind, pc: c.pc, address: arch::cpu::far(), syndrome: esr, is_write, sp: c.sp };
    s.kernel.fault(&mut s.hw, pd, fault);
    next_context(s)
}

/// `pd` used FP/SIMD while another PD's registers were loaded: move the registers, give it
/// access, and let it re-run the instruction.
#[cold]
fn fp_trap(s: &mut State, pd: PdId) {
    if let Some(switch) = s.fp.on_trap(pd) {
        let pds = &mut s.kernel.pds;
        if let Some(old) = switch.save {
            arch::cpu::save_fp(&mut pds[old as usize].fp);
        }
        arch::cpu::load_fp(&pds[switch.load as usize].fp);
    }
    if let Some(enable) = s.fp.on_resume(pd) {
        arch::cpu::set_user_fp_access(enable);
    }
}

/// An IRQ taken while a PD ran.
#[unsafe(no_mangle)]
extern "C" fn handle_user_irq(_ctx: *mut UserContext) -> *mut UserContext {
    let s = state();
    handle_interrupts(s);
    next_context(s)
}

/// FIQ, SError or any exception from AArch32: treated as the PD's fault.
#[unsafe(no_mangle)]
extern "C" fn handle_user_other(_ctx: *mut UserContext) -> *mut UserContext {
    let s = state();
    let pd = current(s);
    let c = &s.kernel.pds[pd as usize].ctx;
    let fault = FaultInfo {
        kind: edgeos_kernel_abi::FaultKind::Unknown,
        pc: c.pc,
        address: 0,
        syndrome: arch::cpu::esr(),
        is_write: false,
        sp: c.sp,
    };
    s.kernel.fault(&mut s.hw, pd, fault);
    next_context(s)
}

/// The description cannot be built into a running system: say why and end the run (status 1).
fn cannot_build(why: core::fmt::Arguments) -> ! {
    println!("edgeos: cannot build the system: {why}");
    println!("EDGEOS-TEST: FAIL (boot)");
    arch::power::off(1)
}

/// An exception taken while in the kernel: always a kernel bug.
#[unsafe(no_mangle)]
extern "C" fn handle_kernel_exception(esr: u64, elr: u64, far: u64, sp: u64) -> ! {
    println!("KERNEL FAULT: esr={esr:#x} elr={elr:#x} far={far:#x} sp={sp:#x}");
    println!("EDGEOS-TEST: FAIL (kernel fault)");
    arch::power::off(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("KERNEL PANIC: {info}");
    println!("EDGEOS-TEST: FAIL (kernel panic)");
    arch::power::off(1)
}
