//! Protection domains and everything the kernel does with them: system calls, notifications,
//! protected calls, faults, interrupts and scheduling with budgets.
//!
//! This is plain logic over plain data. The arch layer saves a PD's registers into
//! [`Pd::ctx`], calls one of [`Kernel::syscall`], [`Kernel::fault`], [`Kernel::interrupt`] or
//! [`Kernel::timer_expired`], then [`Kernel::schedule`] (unless the system call says the caller
//! simply resumes or a fast path already chose the next PD: [`Next`]), and resumes the PD it
//! returns. Anything that touches hardware or user memory goes through [`Platform`].
//!
//! # Model
//! - Each PD is one thread with one scheduling context (SC: budget per period, in counter ticks).
//!   An active PD always runs on its own SC. A passive PD runs on its own SC for its `init` and
//!   when woken by a notification; it runs on the caller's SC while serving a protected call
//!   (and on the faulting child's SC while handling a fault), as in Microkit 2.3.
//! - Ready PDs other than the running one sit in [`RunQueues`]; the highest priority runs, round
//!   robin within a priority (a PD goes to the tail of its queue when its SC's budget is used up
//!   and refilled). The running PD stays off the queues, as in seL4: blocking it or switching
//!   straight to another PD touches no queue. A running PD that is preempted goes back to the
//!   head of its queue (it keeps its turn).
//! - Fast paths: a protected call to a waiting server of higher priority, and a server's reply
//!   fused with its wait when the caller is then the highest ready PD, switch directly between
//!   the two PDs without the scheduler. A passive server keeps running on the caller's SC, so
//!   no time accounting is needed; an active one switches SCs (charge, refresh, re-arm). Anything
//!   unusual (queued callers, pending notifications, throttled budgets, an equal-priority PD
//!   waiting) takes the general path. Both paths leave the same PD-visible state (host tests run
//!   every scenario both ways and compare).
//! - An SC with `budget < period` that uses its budget is throttled until its period ends: its
//!   holder leaves the run queue and the SC waits in the [`ReleaseQueue`]. With `budget ==
//!   period` the budget is a round-robin time slice.
//! - The timer is programmed for the next real event only: the running SC's budget end (when it
//!   matters) or the earliest release. Idle costs nothing.
//! - A PD's endpoint queue holds the PDs waiting for it to accept a protected call or a fault;
//!   they are accepted in FIFO order when it next waits, after pending notifications.

use bootinfo::BootInfo;
use edgeos_kernel_abi::{fault_mr, sys, DeferredKind, Error, Event, FaultKind, MessageInfo, CHANNEL_IDS, RECV_REPLY};

use crate::arrays::Arrays;
use crate::asid::Asid;
use crate::context::{FpContext, UserContext};
use crate::grants::{self, Grant, GrantError, GrantTable, NO_CHILD};
use crate::release::ReleaseQueue;
use crate::runqueue::{Link, RunQueues, NIL};
use crate::time::us_to_ticks;

/// A PD's index in the boot description.
pub type PdId = u32;

/// Largest IRQ number a PD may own (GIC INTIDs below the special range).
pub const MAX_IRQS: usize = 1020;

/// The IRQ of the EL1 physical timer (PPI 30): the PD that owns it may program that timer from
/// EL0 (the kernel keeps the virtual timer for itself, as seL4 leaves the physical one to PDs).
pub const PD_TIMER_IRQ: u32 = 30;

/// What a PD is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Runnable (it runs when it is the highest ready PD and its SC has budget).
    Ready,
    /// Blocked in RECV, waiting for an event.
    Receiving,
    /// Waiting for `server` to accept its protected call (on the server's endpoint queue).
    Calling { server: PdId },
    /// Its call was accepted by `server`; waiting for the reply.
    AwaitingReply { server: PdId },
    /// Faulted; waiting for `parent` to accept the fault (on the parent's endpoint queue).
    FaultSending { parent: PdId },
    /// Faulted; the parent has the fault and decides (restart, resume, reply or stop).
    FaultDelivered { parent: PdId },
    /// Stopped by its parent, or a root PD stopped by its fault.
    Stopped,
}

/// A scheduling context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedContext {
    /// Budget per period, in ticks.
    pub budget: u64,
    pub period: u64,
    /// Budget left in the current period.
    pub remaining: u64,
    /// Start of the current period.
    pub period_start: u64,
    /// The PD currently running on this SC (the owner, or a passive server it called).
    pub holder: PdId,
    /// Budget spent; waiting in the release queue.
    pub throttled: bool,
}

/// What the kernel knows about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    pub kind: FaultKind,
    pub pc: u64,
    pub address: u64,
    pub syndrome: u64,
    pub is_write: bool,
    pub sp: u64,
}

impl FaultInfo {
    /// The fault message's MRs, laid out as [`fault_mr`] says.
    pub fn message(&self) -> [u64; fault_mr::COUNT] {
        let mut m = [0; fault_mr::COUNT];
        m[fault_mr::PC] = self.pc;
        m[fault_mr::ADDRESS] = self.address;
        m[fault_mr::SYNDROME] = self.syndrome;
        m[fault_mr::IS_WRITE] = self.is_write as u64;
        m[fault_mr::SP] = self.sp;
        m
    }
}

/// Classifies an exception syndrome (ESR_EL1) taken from EL0 that is not a system call.
pub fn classify_syndrome(esr: u64) -> (FaultKind, bool) {
    let ec = (esr >> 26) & 0x3f;
    let iss = esr & 0x1ff_ffff;
    match ec {
        0x24 | 0x25 => {
            let is_write = iss & (1 << 6) != 0;
            if iss & 0x3f == 0x21 {
                (FaultKind::Alignment, is_write)
            } else {
                (FaultKind::DataAbort, is_write)
            }
        }
        0x20 | 0x21 => (FaultKind::InstructionAbort, false),
        0x22 | 0x26 => (FaultKind::Alignment, false),
        // Unknown reason, trapped WFI/WFE, trapped system register access, FP trap, illegal state.
        0x00 | 0x01 | 0x07 | 0x18 | 0x0e => (FaultKind::UndefinedInstruction, false),
        0x30..=0x3c => (FaultKind::Debug, false),
        _ => (FaultKind::Unknown, false),
    }
}

/// One protection domain.
#[derive(Clone, Copy, Debug)]
pub struct Pd {
    /// Registers while not running (the arch layer saves and restores them here).
    pub ctx: UserContext,
    /// FP/SIMD registers while another PD owns the hardware's (see [`crate::fpu`]).
    pub fp: FpContext,
    pub state: State,
    pub priority: u8,
    pub passive: bool,
    /// This PD's own scheduling context.
    pub sc: SchedContext,
    /// The SC it runs on while ready: its own, a caller's (passive server), or none (passive
    /// and waiting).
    pub running_sc: Option<PdId>,
    /// Notification bits not yet delivered (bit = channel id).
    pub pending: u64,
    /// The PD whose call or fault this PD is serving (the target of its next reply).
    pub serving: Option<PdId>,
    /// While calling: the message info of the call and the badge (the server's channel id).
    pub call_info: MessageInfo,
    pub call_badge: u8,
    /// While faulted: what happened.
    pub fault: Option<FaultInfo>,
    /// Endpoint queue of PDs waiting for this one (head, tail) and this PD's link in the queue
    /// it is on.
    ep_head: u32,
    ep_tail: u32,
    ep_next: u32,
    pub parent: Option<PdId>,
    pub child_id: u8,
    /// A featherweight instance: its parent's fork handle for its template ([`NOT_INSTANCE`]
    /// for every other PD) and its instance id (see [`Pd::fault_badge`]).
    pub instance_handle: u8,
    pub instance_id: u16,
    pub grants: GrantTable,
    /// Child id -> PD, [`NO_CHILD`] where none.
    pub children: [u32; CHANNEL_IDS],
    /// Arch data: translation table root (physical), ASID, the IPC buffer page as the
    /// platform addresses it (the kernel's direct-map address on the hardware; 0 if none), and
    /// whether EL0 may program the physical timer (owns [`PD_TIMER_IRQ`]).
    pub root: u64,
    pub asid: Asid,
    pub ipc_buffer: u64,
    pub owns_physical_timer: bool,
}

/// The priority templates run their `init` at (the highest: before every PD).
pub const TEMPLATE_INIT_PRIORITY: u8 = 254;

/// [`Pd::instance_handle`] of a PD that is not a featherweight instance.
pub const NOT_INSTANCE: u8 = u8::MAX;

impl Pd {
    /// The badge of this PD's fault event at its parent: its child id, or for a featherweight
    /// instance [`edgeos_kernel_abi::INSTANCE_FAULT`] | handle << 32 | instance id.
    #[inline]
    pub fn fault_badge(&self) -> u64 {
        if self.instance_handle == NOT_INSTANCE {
            self.child_id as u64
        } else {
            edgeos_kernel_abi::INSTANCE_FAULT | (self.instance_handle as u64) << 32 | self.instance_id as u64
        }
    }

    /// A PD that has not been set up (placeholder for storage).
    pub const EMPTY: Pd = Pd {
        ctx: UserContext::new(0, 0),
        fp: FpContext::ZERO,
        state: State::Stopped,
        priority: 0,
        passive: false,
        sc: SchedContext { budget: 0, period: 0, remaining: 0, period_start: 0, holder: 0, throttled: false },
        running_sc: None,
        pending: 0,
        serving: None,
        call_info: MessageInfo(0),
        call_badge: 0,
        fault: None,
        ep_head: NIL,
        ep_tail: NIL,
        ep_next: NIL,
        parent: None,
        child_id: 0,
        instance_handle: NOT_INSTANCE,
        instance_id: 0,
        grants: [Grant::None; CHANNEL_IDS],
        children: [NO_CHILD; CHANNEL_IDS],
        root: 0,
        asid: Asid { id: 0, generation: 0 },
        ipc_buffer: 0,
        owns_physical_timer: false,
    };
}

/// What the kernel needs from the machine.
pub trait Platform {
    /// The counter.
    fn now(&mut self) -> u64;
    /// Counter ticks per second.
    fn frequency(&self) -> u64;
    /// Arms the kernel timer for `deadline`, or disarms it.
    fn set_timer(&mut self, deadline: Option<u64>);
    /// Masks or unmasks a hardware interrupt.
    fn set_irq_enabled(&mut self, irq: u32, enabled: bool);
    /// Copies MRs `0..count` from one PD's IPC buffer to another's.
    fn copy_mrs(&mut self, from: &Pd, to: &Pd, count: usize);
    /// Writes MRs `0..words.len()` of a PD's IPC buffer.
    fn write_mrs(&mut self, to: &Pd, words: &[u64]);
    /// Prints `len` bytes at user address `vaddr` of PD `pd` (whose address space is active).
    fn debug_write(&mut self, pd: PdId, vaddr: u64, len: u64) -> Result<(), Error>;
    /// Reports a root PD's fault on the console.
    fn report_fault(&mut self, pd: PdId, ctx: &UserContext, fault: &FaultInfo);
    /// Ends a test run with `status` (0: passed); may return in host tests.
    fn shutdown(&mut self, status: u32);
}

/// What the arch layer does after a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Resume the caller: nothing it did changes which PD runs or when the timer fires.
    Resume,
    /// Resume this PD: a fast path made it the current PD (no scheduler trip).
    Switch(PdId),
    /// Ask [`Kernel::schedule`].
    Schedule,
}

/// Storage for the kernel's tables, sized from the boot description by the caller.
pub struct Storage<'a> {
    /// One per PD.
    pub pds: &'a mut [Pd],
    /// One per PD.
    pub run_links: &'a mut [Link],
    /// One per PD (scheduling contexts are numbered like their owners).
    pub release_heap: &'a mut [u32],
    pub release_pos: &'a mut [u32],
    pub release_time: &'a mut [u64],
    /// IRQ number -> (owner, channel id), [`MAX_IRQS`] entries.
    pub irq_owner: &'a mut [Option<(PdId, u8)>],
}

/// Why the kernel could not be built from a description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    Grants(GrantError),
    /// The storage does not match the description.
    StorageSize,
    /// A channel or child names a PD the description does not have.
    BadPd(u32),
    /// An IRQ number the kernel does not hand out (too large, or the kernel's own timer).
    BadIrq(u32),
    /// Two PDs claim the same IRQ.
    IrqTwice(u32),
    /// A protected-call grant into a PD of lower or equal priority.
    CallNotUpward { caller: u32, callee: u32 },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Grants(e) => write!(f, "{e}"),
            BuildError::StorageSize => write!(f, "kernel storage does not match the description"),
            BuildError::BadPd(pd) => write!(f, "the description names PD {pd}, which does not exist"),
            BuildError::BadIrq(i) => write!(f, "IRQ {i} cannot be given to a PD"),
            BuildError::IrqTwice(i) => write!(f, "IRQ {i} is claimed twice"),
            BuildError::CallNotUpward { caller, callee } => {
                write!(f, "PD {caller} may call PD {callee}, whose priority is not higher")
            }
        }
    }
}

/// The kernel's state.
pub struct Kernel<'a> {
    pub pds: &'a mut [Pd],
    runq: RunQueues<'a>,
    releases: ReleaseQueue<'a>,
    irq_owner: &'a mut [Option<(PdId, u8)>],
    /// The PD last chosen to run.
    current: Option<PdId>,
    /// The SC being charged, and since when.
    current_sc: Option<PdId>,
    sc_started: u64,
    /// The deadline the timer is armed for.
    armed: Option<u64>,
    /// IRQs the kernel keeps for itself (its timer).
    reserved_irq: u32,
    /// Channel arrays (see [`Kernel::install_arrays`]).
    arrays: Arrays<'a>,
    /// A test image: `DEBUG_SHUTDOWN` ends the run (refused otherwise).
    debug_exit: bool,
}

impl<'a> Kernel<'a> {
    /// Builds the kernel's view of the description: PDs with their priorities, budgets, grants,
    /// children and IRQs. Address spaces and entry registers are the arch layer's job
    /// (`pds[i].ctx`, `root`, `asid`, `ipc_buffer`), done before the first `schedule`.
    /// `kernel_irq` is the interrupt the kernel keeps for its timer.
    pub fn new(storage: Storage<'a>, info: &BootInfo, frequency: u64, kernel_irq: u32) -> Result<Self, BuildError> {
        let n = info.pd_count();
        let Storage { pds, run_links, release_heap, release_pos, release_time, irq_owner } = storage;
        // Slots past the description's PDs (templates, then featherweight instances) start empty
        // and stopped; the arch layer fills them (`init_template`, `start_instance`).
        let slots = pds.len();
        if slots < n || run_links.len() != slots || release_heap.len() != slots || irq_owner.len() != MAX_IRQS {
            return Err(BuildError::StorageSize);
        }
        irq_owner.fill(None);
        for pd in pds[n..].iter_mut() {
            *pd = Pd::EMPTY;
        }
        for (i, pd) in pds[..n].iter_mut().enumerate() {
            let d = info.pd(i);
            let budget = us_to_ticks(d.budget_us, frequency);
            let period = us_to_ticks(d.period_us, frequency).max(budget);
            *pd = Pd::EMPTY;
            pd.ctx = UserContext::new(d.entry, d.stack_top);
            pd.state = State::Ready;
            pd.priority = d.priority;
            pd.passive = d.passive;
            pd.sc = SchedContext { budget, period, remaining: budget, period_start: 0, holder: i as PdId, throttled: false };
            pd.running_sc = Some(i as PdId);
            if d.parent != bootinfo::NO_PD {
                pd.parent = Some(d.parent);
                pd.child_id = d.child_id as u8;
            }
            for j in info.pd_irqs(&d) {
                let irq = info.irq(j);
                if irq.irq as usize >= MAX_IRQS || irq.irq == kernel_irq {
                    return Err(BuildError::BadIrq(irq.irq));
                }
                let slot = &mut irq_owner[irq.irq as usize];
                if slot.is_some() {
                    return Err(BuildError::IrqTwice(irq.irq));
                }
                *slot = Some((i as PdId, irq.channel_id as u8));
                if irq.irq == PD_TIMER_IRQ {
                    pd.owns_physical_timer = true;
                }
            }
        }
        grants::build_into(info, &mut |pd, id, g| {
            let slot = &mut pds[pd as usize].grants[id as usize];
            if *slot != Grant::None {
                return Err(GrantError::DuplicateId { pd, id });
            }
            *slot = g;
            Ok(())
        })
        .map_err(BuildError::Grants)?;
        grants::build_children_into(info, &mut |parent, id, child| {
            let slot = &mut pds[parent as usize].children[id as usize];
            if *slot != NO_CHILD {
                return Err(GrantError::DuplicateChild { pd: parent, id });
            }
            *slot = child;
            Ok(())
        })
        .map_err(BuildError::Grants)?;
        // Every PD id the kernel will hold is below n from here on (the fast paths index the PD
        // table without bounds checks and rely on it): check the ids the description brought.
        for (i, pd) in pds.iter().enumerate() {
            for g in pd.grants.iter() {
                if let Grant::Channel { peer, pp, .. } = *g {
                    if peer as usize >= n {
                        return Err(BuildError::BadPd(peer));
                    }
                    // Microkit's rule, kept by the kernel too (the tool checks it first): a
                    // protected call runs the callee on the caller's time at the callee's
                    // priority, so it must go strictly up, or a call chain could form a cycle.
                    if pp && pds[peer as usize].priority <= pd.priority {
                        return Err(BuildError::CallNotUpward { caller: i as u32, callee: peer });
                    }
                }
            }
            if let Some(&c) = pd.children.iter().find(|&&c| c != NO_CHILD && c as usize >= n) {
                return Err(BuildError::BadPd(c));
            }
            if let Some(parent) = pd.parent.filter(|&p| p as usize >= n) {
                return Err(BuildError::BadPd(parent));
            }
        }
        let mut runq = RunQueues::new(run_links);
        for (i, pd) in pds[..n].iter().enumerate() {
            runq.push_back(i as u32, pd.priority);
        }
        // (No PD runs yet: all are queued, and the first schedule takes the highest.)
        Ok(Kernel {
            pds,
            runq,
            releases: ReleaseQueue::new(release_heap, release_pos, release_time),
            irq_owner,
            current: None,
            current_sc: None,
            sc_started: 0,
            armed: None,
            debug_exit: info.flags() & bootinfo::FLAG_DEBUG_EXIT != 0,
            reserved_irq: kernel_irq,
            arrays: Arrays::default(),
        })
    }

    /// Installs the channel arrays (once instance slots are laid out): each holder's channel id
    /// becomes the array's static end; instances get their end when they start.
    pub fn install_arrays(&mut self, arrays: Arrays<'a>) -> Result<(), BuildError> {
        for (a, info) in arrays.iter() {
            let slot = self.pds.get_mut(info.holder as usize).ok_or(BuildError::BadPd(info.holder))?;
            let g = slot.grants.get_mut(info.holder_id as usize).ok_or(BuildError::BadPd(info.holder))?;
            if *g != Grant::None {
                return Err(BuildError::Grants(GrantError::DuplicateId { pd: info.holder, id: info.holder_id as u32 }));
            }
            *g = Grant::Array { array: a as u16 };
            if info.first_slot as usize + info.max_instances as usize > self.pds.len() {
                return Err(BuildError::StorageSize);
            }
        }
        self.arrays = arrays;
        Ok(())
    }

    /// The PD last chosen to run.
    pub fn current(&self) -> Option<PdId> {
        self.current
    }

    /// PD `pd`, without a bounds check (for the fast paths and the arch layer's switch).
    ///
    /// Every PD id the kernel holds is a valid index: ids from the description are checked in
    /// [`Kernel::new`], and all others come from the kernel's own tables. A `pd` from anywhere
    /// else must be checked by the caller.
    #[inline(always)]
    pub fn pd(&self, pd: PdId) -> &Pd {
        debug_assert!((pd as usize) < self.pds.len());
        // SAFETY: `pd` is below `pds.len()` (see above).
        unsafe { self.pds.get_unchecked(pd as usize) }
    }

    /// PD `pd` for writing, without a bounds check (see [`Kernel::pd`]).
    #[inline(always)]
    pub fn pd_mut(&mut self, pd: PdId) -> &mut Pd {
        debug_assert!((pd as usize) < self.pds.len());
        // SAFETY: as in `pd`.
        unsafe { self.pds.get_unchecked_mut(pd as usize) }
    }

    /// The owner of a hardware interrupt.
    pub fn irq_owner(&self, irq: u32) -> Option<(PdId, u8)> {
        self.irq_owner.get(irq as usize).copied().flatten()
    }

    /// Every IRQ handed to a PD, with its owner (for the arch layer to configure at boot).
    pub fn owned_irqs(&self) -> impl Iterator<Item = (u32, PdId)> + '_ {
        self.irq_owner.iter().enumerate().filter_map(|(i, o)| o.map(|(pd, _)| (i as u32, pd)))
    }

    // ---------------------------------------------------------------- system calls

    /// The fast paths (see the module docs) for the system call the current PD made: if it is
    /// one they handle, does it and says what runs next. Otherwise returns None having changed
    /// nothing: then call [`Kernel::syscall`]. Small on purpose (the arch layer calls it on
    /// every system call).
    #[inline]
    pub fn fast_syscall(&mut self, plat: &mut impl Platform) -> Option<Next> {
        let pd = self.current?;
        let ctx = &self.pd(pd).ctx;
        let (number, a0, a1, a2, a3) = (ctx.x[8], ctx.x[0], ctx.x[1], ctx.x[2], ctx.x[3]);
        match number {
            sys::PP_CALL => self.call_fast(plat, pd, a0, MessageInfo(a1)).map(Next::Switch),
            sys::RECV if a0 == RECV_REPLY => self.reply_recv_fast(plat, pd, a0, MessageInfo(a1), a2).map(Next::Switch),
            sys::RECV if a0 == 0 => self.recv_fast(plat, pd, a2, a3),
            sys::NOTIFY => self.notify_fast(plat, pd, a0),
            _ => None,
        }
    }

    /// Handles the system call PD `pd` (the running PD) made, with its registers in its context,
    /// and says what runs next. This is the general path: every call is correct here, fast
    /// paths included.
    pub fn syscall(&mut self, plat: &mut impl Platform, pd: PdId) -> Next {
        let ctx = &self.pds[pd as usize].ctx; // checked once: the rest indexes unchecked
        let (number, a0, a1, a2, a3) = (ctx.x[8], ctx.x[0], ctx.x[1], ctx.x[2], ctx.x[3]);
        let result = match number {
            sys::PP_CALL => match self.pp_call(plat, pd, a0, MessageInfo(a1)) {
                Ok(()) => return Next::Schedule, // blocked; the reply sets the registers
                Err(e) => Some(e),
            },
            sys::RECV => return self.recv(plat, pd, a0, MessageInfo(a1), a2, a3),
            sys::NOTIFY => match self.notify(pd, a0) {
                Ok(woken) => {
                    self.pd_mut(pd).ctx.x[0] = 0;
                    return self.after_wake(plat, pd, woken);
                }
                Err(e) => Some(e),
            },
            sys::DEBUG_PUTS => plat.debug_write(pd, a0, a1).err(),
            sys::IRQ_ACK => self.irq_ack(plat, pd, a0).err(),
            sys::PD_RESTART => {
                let r = self.restart_child(pd, a0, a1).err();
                self.pd_mut(pd).ctx.x[0] = r.map_or(0, |e| e as u64);
                return Next::Schedule;
            }
            sys::PD_STOP => {
                // Stopping a child can take back the SC its parent serves it on: schedule.
                let r = self.stop_child(pd, a0).err();
                self.pd_mut(pd).ctx.x[0] = r.map_or(0, |e| e as u64);
                return Next::Schedule;
            }
            sys::PD_RESUME => {
                let r = self.resume_child(pd, a0).err();
                self.pd_mut(pd).ctx.x[0] = r.map_or(0, |e| e as u64);
                return Next::Schedule;
            }
            // Only a test image lets a PD end the run (like seL4's debug-build halt); in any
            // other image no PD can power the node off.
            sys::DEBUG_SHUTDOWN if self.debug_exit => {
                plat.shutdown(a0 as u32);
                None
            }
            sys::DEBUG_SHUTDOWN => Some(Error::NotGranted),
            sys::ARRAY_NOTIFY => match self.array_notify(pd, a0, a1) {
                Ok(woken) => {
                    self.pd_mut(pd).ctx.x[0] = 0;
                    return self.after_wake(plat, pd, woken);
                }
                Err(e) => Some(e),
            },
            sys::ARRAY_TAKE => {
                let r = self.array_take(pd, a0, a1);
                let ctx = &mut self.pd_mut(pd).ctx;
                match r {
                    Ok((word, bits)) => {
                        ctx.x[0] = 0;
                        ctx.x[1] = word;
                        ctx.x[2] = bits;
                    }
                    Err(e) => ctx.x[0] = e as u64,
                }
                return Next::Resume;
            }
            sys::DEBUG_TIME => {
                let now = plat.now();
                let ctx = &mut self.pd_mut(pd).ctx;
                ctx.x[0] = now;
                ctx.x[1] = plat.frequency();
                return Next::Resume;
            }
            _ => Some(Error::InvalidCall),
        };
        self.pd_mut(pd).ctx.x[0] = result.map_or(0, |e| e as u64);
        Next::Resume
    }

    /// The running PD `pd` woke `woken` (if any) and goes on: a higher priority preempts it (the
    /// scheduler switches); an equal one now shares its priority, so its time slice must be
    /// enforced; a lower one just waits its turn.
    fn after_wake(&mut self, plat: &mut impl Platform, pd: PdId, woken: Option<PdId>) -> Next {
        let Some(w) = woken else { return Next::Resume };
        let (wp, p) = (self.pd(w).priority, self.pd(pd).priority);
        if wp > p {
            return Next::Schedule;
        }
        if wp == p {
            self.arm_slice(plat);
        }
        Next::Resume
    }

    /// The running PD has a peer at its priority now: make sure the timer ends its SC's budget
    /// (what `schedule` would arm, computed without reading the counter: the budget ends at
    /// `sc_started + remaining` whatever time has passed since).
    fn arm_slice(&mut self, plat: &mut impl Platform) {
        let Some(sc) = self.current_sc else { return };
        let end = self.sc_started.saturating_add(self.pd(sc).sc.remaining);
        let deadline = self.releases.earliest().map_or(end, |(_, t)| t.min(end));
        if Some(deadline) != self.armed {
            plat.set_timer(Some(deadline));
            self.armed = Some(deadline);
        }
    }

    fn channel(&self, pd: PdId, ch: u64) -> Result<Grant, Error> {
        if ch >= CHANNEL_IDS as u64 {
            return Err(Error::InvalidChannel);
        }
        Ok(self.pd(pd).grants[ch as usize])
    }

    /// Notifies the other end of channel `ch`; returns the PD it woke, if it was waiting.
    fn notify(&mut self, pd: PdId, ch: u64) -> Result<Option<PdId>, Error> {
        match self.channel(pd, ch)? {
            Grant::Channel { peer, peer_id, notify: true, .. } => Ok(self.signal(peer, peer_id).then_some(peer)),
            Grant::ArrayMember { peer, peer_id, array, notify: true } => {
                let id = self.pd(pd).instance_id as u32;
                self.arrays.set(array as usize, id);
                Ok(self.signal(peer, peer_id).then_some(peer))
            }
            _ => Err(Error::NotGranted),
        }
    }

    fn array_of(&self, pd: PdId, ch: u64) -> Result<usize, Error> {
        match self.channel(pd, ch)? {
            Grant::Array { array } => Ok(array as usize),
            _ => Err(Error::NotGranted),
        }
    }

    /// The holder of channel array `ch` notifies its instance `index`.
    fn array_notify(&mut self, pd: PdId, ch: u64, index: u64) -> Result<Option<PdId>, Error> {
        let a = self.array_of(pd, ch)?;
        let info = *self.arrays.info(a);
        if !info.holder_notify {
            return Err(Error::NotGranted);
        }
        if index >= info.max_instances as u64 {
            return Err(Error::InvalidChild);
        }
        let slot = info.first_slot + index as u32;
        if self.pd(slot).instance_handle == NOT_INSTANCE {
            return Err(Error::InvalidChild);
        }
        Ok(self.signal(slot, info.instance_id).then_some(slot))
    }

    /// The holder of channel array `ch` takes its pending bits from word `from` on.
    fn array_take(&mut self, pd: PdId, ch: u64, from: u64) -> Result<(u64, u64), Error> {
        let a = self.array_of(pd, ch)?;
        Ok(self.arrays.take(a, from).unwrap_or((edgeos_kernel_abi::ARRAY_EMPTY, 0)))
    }

    fn irq_ack(&mut self, plat: &mut impl Platform, pd: PdId, ch: u64) -> Result<(), Error> {
        match self.channel(pd, ch)? {
            Grant::Irq { irq } => {
                plat.set_irq_enabled(irq, true);
                Ok(())
            }
            _ => Err(Error::NotGranted),
        }
    }

    fn pp_call(&mut self, plat: &mut impl Platform, pd: PdId, ch: u64, info: MessageInfo) -> Result<(), Error> {
        let Grant::Channel { peer, peer_id, pp: true, .. } = self.channel(pd, ch)? else {
            return Err(Error::NotGranted);
        };
        let caller = self.pd_mut(pd);
        caller.call_info = info;
        caller.call_badge = peer_id;
        caller.state = State::Calling { server: peer };
        self.runq.remove(pd);
        self.send_to_endpoint(plat, peer, pd);
        Ok(())
    }

    // ---------------------------------------------------------------- fast paths

    /// The protected-call fast path: `pd` calls a server that waits and has a higher priority
    /// (so it is the highest ready PD once `pd` blocks: the running PD is never below a queued
    /// one). The call is handed over directly and the server becomes the current PD. Returns
    /// None, having changed nothing, when the general path must decide.
    #[inline(always)]
    fn call_fast(&mut self, plat: &mut impl Platform, pd: PdId, ch: u64, info: MessageInfo) -> Option<PdId> {
        let Ok(Grant::Channel { peer: server, peer_id, pp: true, .. }) = self.channel(pd, ch) else {
            return None;
        };
        let (c, s) = (self.pd(pd), self.pd(server));
        // Waiting means no pending notification and no queued caller (either would have been
        // taken at once).
        if s.state != State::Receiving || s.priority <= c.priority {
            return None;
        }
        let client_sc = c.running_sc?;
        let sc = if s.passive { client_sc } else { server };
        if self.pd(sc).sc.throttled {
            return None;
        }
        plat.copy_mrs(self.pd(pd), self.pd(server), info.count());
        self.pd_mut(pd).state = State::AwaitingReply { server };
        let s = self.pd_mut(server);
        s.state = State::Ready;
        s.serving = Some(pd);
        s.ctx.x[0] = Event::ProtectedCall as u64;
        s.ctx.x[1] = peer_id as u64;
        s.ctx.x[2] = info.0;
        s.running_sc = Some(sc);
        self.pd_mut(sc).sc.holder = server;
        self.current = Some(server);
        if sc != client_sc {
            self.enter_sc(plat, server, sc);
        }
        Some(server)
    }

    /// The reply-and-wait fast path: `pd` replies to the protected call it serves and waits,
    /// with nothing pending and no caller queued, and the caller is then the highest ready PD
    /// (strictly: an equal-priority PD queued first would run before it). The reply is handed
    /// over directly and the caller becomes the current PD. Returns None, having changed
    /// nothing, when the general path must decide.
    #[inline(always)]
    fn reply_recv_fast(&mut self, plat: &mut impl Platform, pd: PdId, flags: u64, info: MessageInfo, deferred: u64) -> Option<PdId> {
        if flags != RECV_REPLY || deferred != DeferredKind::None as u64 {
            return None;
        }
        let s = self.pd(pd);
        let client = s.serving?;
        if s.pending != 0 || s.ep_head != NIL {
            return None;
        }
        let c = self.pd(client);
        if c.state != (State::AwaitingReply { server: pd }) || self.runq.any_at_or_above(c.priority) {
            return None;
        }
        let client_sc = c.running_sc?;
        if self.pd(client_sc).sc.throttled {
            return None;
        }
        let server_sc = s.running_sc;
        plat.copy_mrs(self.pd(pd), self.pd(client), info.count());
        let s = self.pd_mut(pd);
        s.serving = None;
        s.state = State::Receiving;
        s.ctx.x[3] = 0;
        s.ctx.x[4] = 0;
        if s.passive {
            // Gives back the borrowed SC (or, after a notification, its own).
            s.running_sc = None;
            if let Some(sc) = server_sc.filter(|&sc| sc != pd) {
                self.pd_mut(sc).sc.holder = sc;
            }
        }
        let c = self.pd_mut(client);
        c.state = State::Ready;
        c.ctx.x[0] = 0;
        c.ctx.x[1] = info.0;
        self.pd_mut(client_sc).sc.holder = client;
        self.current = Some(client);
        if server_sc != Some(client_sc) {
            self.enter_sc(plat, client, client_sc);
        }
        Some(client)
    }

    /// For the notification fast paths: the PD that channel `ch` of `pd` notifies and the bit it
    /// sets there, if the notification is granted and a fast path can deliver it (a waiting
    /// receiver whose budget is spent is left to the general path).
    #[inline(always)]
    fn fast_notify_target(&self, pd: PdId, ch: u64) -> Option<(PdId, u8)> {
        let Ok(Grant::Channel { peer, peer_id, notify: true, .. }) = self.channel(pd, ch) else {
            return None;
        };
        // A waiting PD runs on its own SC once woken.
        let t = self.pd(peer);
        if t.state == State::Receiving && t.sc.throttled {
            return None;
        }
        Some((peer, peer_id))
    }

    /// Sets notification bit `bit` of `pd`; if it waits, hands it its notifications and makes it
    /// ready, without queueing it (the caller decides whether it runs at once or queues).
    /// Returns true if it was woken.
    #[inline(always)]
    fn signal_fast(&mut self, pd: PdId, bit: u8) -> bool {
        let t = self.pd_mut(pd);
        t.pending |= 1 << bit;
        if t.state != State::Receiving {
            return false;
        }
        t.ctx.x[0] = Event::Notification as u64;
        t.ctx.x[1] = t.pending;
        t.ctx.x[2] = 0;
        t.pending = 0;
        t.state = State::Ready;
        if t.running_sc.is_none() {
            // A passive PD woken by a notification runs on its own SC.
            t.running_sc = Some(pd);
            t.sc.holder = pd;
        }
        true
    }

    /// The running PD `pd` (going on running) woke `woken`: a higher priority preempts it at
    /// once (`pd` keeps its turn at the head of its queue); an equal or lower one queues.
    #[inline(always)]
    fn woken_fast(&mut self, plat: &mut impl Platform, pd: PdId, woken: PdId) -> Next {
        let (wp, p) = (self.pd(woken).priority, self.pd(pd).priority);
        if wp > p {
            self.runq.push_front(pd, p);
            self.current = Some(woken);
            self.enter_sc(plat, woken, woken);
            return Next::Switch(woken);
        }
        self.runq.push_back(woken, wp);
        if wp == p {
            self.arm_slice(plat);
        }
        Next::Resume
    }

    /// The notify fast path: every notify whose target is granted (see
    /// [`Kernel::fast_notify_target`]).
    #[inline(always)]
    fn notify_fast(&mut self, plat: &mut impl Platform, pd: PdId, ch: u64) -> Option<Next> {
        let (peer, bit) = self.fast_notify_target(pd, ch)?;
        self.pd_mut(pd).ctx.x[0] = 0;
        if !self.signal_fast(peer, bit) {
            return Some(Next::Resume);
        }
        Some(self.woken_fast(plat, pd, peer))
    }

    /// The wait fast path (RECV without a reply, with at most a deferred notify), when no
    /// caller is queued: either a notification is pending and `pd` goes on at once, or it
    /// blocks and the head of the highest run queue runs.
    #[inline(always)]
    fn recv_fast(&mut self, plat: &mut impl Platform, pd: PdId, deferred: u64, ch: u64) -> Option<Next> {
        let target = match deferred {
            x if x == DeferredKind::None as u64 => None,
            x if x == DeferredKind::Notify as u64 => Some(self.fast_notify_target(pd, ch)?),
            _ => return None,
        };
        if self.pd(pd).ep_head != NIL {
            return None;
        }
        let woken = target.and_then(|(peer, bit)| self.signal_fast(peer, bit).then_some(peer));
        let p = self.pd_mut(pd);
        p.ctx.x[3] = 0;
        p.ctx.x[4] = 0;
        if p.pending != 0 {
            p.ctx.x[0] = Event::Notification as u64;
            p.ctx.x[1] = p.pending;
            p.ctx.x[2] = 0;
            p.pending = 0;
            return Some(match woken {
                Some(w) => self.woken_fast(plat, pd, w),
                None => Next::Resume,
            });
        }
        p.state = State::Receiving;
        if p.passive {
            // As in `wait`: a passive PD gives up the SC it ran on.
            if let Some(sc) = p.running_sc.take() {
                if sc != pd {
                    self.pd_mut(sc).sc.holder = sc;
                }
            }
        }
        if let Some(w) = woken {
            let wp = self.pd(w).priority;
            self.runq.push_back(w, wp);
        }
        let Some(next) = self.runq.pop_highest() else {
            return Some(Next::Schedule); // nothing to run: the scheduler idles
        };
        let sc = self.pd(next).running_sc.unwrap_or(next);
        self.current = Some(next);
        if Some(sc) != self.current_sc {
            self.enter_sc(plat, next, sc);
        } else {
            self.arm(plat, Some(next), Some(sc));
        }
        Some(Next::Switch(next))
    }

    /// The current PD `pd` starts running on SC `sc` (not throttled), which is not the one
    /// being charged: charge the old one, refresh the new one and re-arm the timer, as
    /// [`Kernel::schedule`] does.
    #[inline(never)]
    fn enter_sc(&mut self, plat: &mut impl Platform, pd: PdId, sc: PdId) {
        let now = plat.now();
        self.charge(now);
        self.refresh(sc, now);
        self.current_sc = Some(sc);
        self.sc_started = now;
        self.arm(plat, Some(pd), Some(sc));
    }

    /// The event-loop call: reply, deferred action, wait.
    /// Returns what runs next: the caller itself if an event was there at once (it keeps its SC
    /// and nothing it woke outranks it), else whatever the scheduler picks.
    fn recv(&mut self, plat: &mut impl Platform, pd: PdId, flags: u64, reply: MessageInfo, deferred: u64, ch: u64) -> Next {
        let sc_before = self.pd(pd).running_sc;
        let replied = flags & RECV_REPLY != 0;
        let reply_error = if replied { self.reply(plat, pd, reply).err() } else { None };
        let mut woken = None;
        let deferred_error = match deferred {
            x if x == DeferredKind::None as u64 => None,
            x if x == DeferredKind::Notify as u64 => match self.notify(pd, ch) {
                Ok(w) => {
                    woken = w;
                    None
                }
                Err(e) => Some(e),
            },
            x if x == DeferredKind::IrqAck as u64 => self.irq_ack(plat, pd, ch).err(),
            _ => Some(Error::InvalidCall),
        };
        let ctx = &mut self.pd_mut(pd).ctx;
        ctx.x[3] = deferred_error.map_or(0, |e| e as u64);
        ctx.x[4] = reply_error.map_or(0, |e| e as u64);
        self.wait(plat, pd);
        let p = self.pd(pd);
        if p.state != State::Ready || p.running_sc != sc_before || (replied && reply_error.is_none()) {
            return Next::Schedule;
        }
        self.after_wake(plat, pd, woken)
    }

    /// Replies to the call (or fault) `pd` is serving.
    fn reply(&mut self, plat: &mut impl Platform, pd: PdId, info: MessageInfo) -> Result<(), Error> {
        let Some(client) = self.pd_mut(pd).serving.take() else {
            return Err(Error::InvalidState);
        };
        self.return_borrowed_sc(pd, client);
        match self.pd(client).state {
            State::AwaitingReply { server } if server == pd => {
                plat.copy_mrs(self.pd(pd), self.pd(client), info.count());
                let ctx = &mut self.pd_mut(client).ctx;
                ctx.x[0] = 0;
                ctx.x[1] = info.0;
                self.make_ready(client);
            }
            State::FaultDelivered { parent } if parent == pd => {
                // Replying to a fault resumes the child (re-running the faulting instruction
                // unless the parent moved its PC with a restart).
                self.pd_mut(client).fault = None;
                self.make_ready(client);
            }
            // The client was restarted or stopped meanwhile: nothing to deliver.
            _ => {}
        }
        Ok(())
    }

    /// A passive server that ran on `client`'s SC gives it back.
    fn return_borrowed_sc(&mut self, server: PdId, client: PdId) {
        let s = self.pd(server);
        if !s.passive {
            return;
        }
        if let Some(sc) = s.running_sc.filter(|&sc| Some(sc) == self.pd(client).running_sc) {
            // Time keeps being charged to the same SC, now held by the client again.
            self.pd_mut(server).running_sc = None;
            self.pd_mut(sc).sc.holder = client;
        }
    }

    /// Waits for the next event: pending notifications first, then the endpoint queue.
    fn wait(&mut self, plat: &mut impl Platform, pd: PdId) {
        let p = self.pd_mut(pd);
        if p.pending != 0 {
            self.deliver_notifications(pd);
            return;
        }
        let head = p.ep_head;
        if head != NIL {
            self.pop_endpoint(pd);
            self.accept(plat, pd, head);
            return;
        }
        let p = self.pd_mut(pd);
        p.state = State::Receiving;
        if p.passive {
            // A passive PD gives up whatever SC it ran on (its own only runs it for init and
            // notifications); a borrowed one goes back to its owner.
            if let Some(sc) = p.running_sc.take() {
                if sc != pd {
                    self.pd_mut(sc).sc.holder = sc;
                }
            }
        }
        self.runq.remove(pd);
    }

    fn deliver_notifications(&mut self, pd: PdId) {
        let p = self.pd_mut(pd);
        p.ctx.x[0] = Event::Notification as u64;
        p.ctx.x[1] = p.pending;
        p.ctx.x[2] = 0;
        p.pending = 0;
        if p.running_sc.is_none() {
            // A passive PD woken by a notification runs on its own SC.
            p.running_sc = Some(pd);
            p.sc.holder = pd;
        }
        self.make_ready(pd);
    }

    /// `server` takes `client`'s call or fault.
    fn accept(&mut self, plat: &mut impl Platform, server: PdId, client: PdId) {
        // Only the fields needed: a Pd is kilobytes, never copy it whole on the IPC path.
        let (state, call_info, call_badge, fault_badge, fault, client_sc) = {
            let c = self.pd(client);
            (c.state, c.call_info, c.call_badge, c.fault_badge(), c.fault, c.running_sc)
        };
        let (event, badge, info) = match state {
            State::Calling { .. } => {
                plat.copy_mrs(self.pd(client), self.pd(server), call_info.count());
                self.pd_mut(client).state = State::AwaitingReply { server };
                (Event::ProtectedCall, call_badge as u64, call_info)
            }
            State::FaultSending { .. } => {
                let ctx = &self.pd(client).ctx;
                let fault = fault.unwrap_or(FaultInfo {
                    kind: FaultKind::Unknown,
                    pc: ctx.pc,
                    address: 0,
                    syndrome: 0,
                    is_write: false,
                    sp: ctx.sp,
                });
                plat.write_mrs(self.pd(server), &fault.message());
                self.pd_mut(client).state = State::FaultDelivered { parent: server };
                (Event::Fault, fault_badge, MessageInfo::new(fault.kind as u64, fault_mr::COUNT))
            }
            _ => return,
        };
        let s = self.pd_mut(server);
        s.serving = Some(client);
        s.ctx.x[0] = event as u64;
        s.ctx.x[1] = badge;
        s.ctx.x[2] = info.0;
        if s.passive {
            // Serve on the client's time.
            s.running_sc = client_sc;
            if let Some(sc) = client_sc {
                self.pd_mut(sc).sc.holder = server;
            }
        } else if s.running_sc.is_none() {
            s.running_sc = Some(server);
        }
        self.make_ready(server);
    }

    /// Queues `client` on `server`'s endpoint, or hands it over at once if the server waits.
    fn send_to_endpoint(&mut self, plat: &mut impl Platform, server: PdId, client: PdId) {
        if self.pd(server).state == State::Receiving {
            self.accept(plat, server, client);
            return;
        }
        self.pd_mut(client).ep_next = NIL;
        let s = self.pd_mut(server);
        let tail = s.ep_tail;
        s.ep_tail = client;
        if tail == NIL {
            s.ep_head = client;
        } else {
            self.pd_mut(tail).ep_next = client;
        }
    }

    fn pop_endpoint(&mut self, server: PdId) {
        let head = self.pd(server).ep_head;
        if head == NIL {
            return;
        }
        let next = self.pd(head).ep_next;
        let s = self.pd_mut(server);
        s.ep_head = next;
        if next == NIL {
            s.ep_tail = NIL;
        }
        self.pd_mut(head).ep_next = NIL;
    }

    /// Takes `client` off `server`'s endpoint queue wherever it is.
    fn unlink_endpoint(&mut self, server: PdId, client: PdId) {
        let mut prev = NIL;
        let mut at = self.pd(server).ep_head;
        while at != NIL {
            let next = self.pd(at).ep_next;
            if at == client {
                if prev == NIL {
                    self.pd_mut(server).ep_head = next;
                } else {
                    self.pd_mut(prev).ep_next = next;
                }
                if self.pd(server).ep_tail == client {
                    self.pd_mut(server).ep_tail = prev;
                }
                self.pd_mut(client).ep_next = NIL;
                return;
            }
            prev = at;
            at = next;
        }
    }

    // ---------------------------------------------------------------- featherweight processes

    /// Sets up slot `slot` (past the description's PDs) as a template: it runs its `init` like a
    /// root PD with no grants, so its first wait blocks for good (the checkpoint, see
    /// [`Kernel::checkpoint_reached`]). It runs at [`TEMPLATE_INIT_PRIORITY`], before every PD,
    /// so its holder can fork from its own `init` on (with no grants, a template cannot
    /// interact with anyone, so the order changes nothing else); its instances get the
    /// template's declared priority ([`Kernel::start_instance`]).
    pub fn init_template(&mut self, slot: PdId, budget: u64, period: u64, entry: u64, stack_top: u64) {
        let priority = TEMPLATE_INIT_PRIORITY;
        assert!((slot as usize) < self.pds.len());
        let pd = &mut self.pds[slot as usize];
        *pd = Pd::EMPTY;
        pd.ctx = UserContext::new(entry, stack_top);
        pd.state = State::Ready;
        pd.priority = priority;
        let period = period.max(budget);
        pd.sc = SchedContext { budget, period, remaining: budget, period_start: 0, holder: slot, throttled: false };
        pd.running_sc = Some(slot);
        self.runq.push_back(slot, priority);
    }

    /// True once template `slot` waits in its first RECV: its registers and memory are the
    /// checkpoint every instance resumes from (nothing can wake it: it has no grants).
    pub fn checkpoint_reached(&self, slot: PdId) -> bool {
        self.pds.get(slot as usize).is_some_and(|p| p.state == State::Receiving)
    }

    /// Makes slot `slot` an instance of template `template` (which reached its checkpoint): it
    /// waits in RECV with the template's registers, so the first event it receives returns from
    /// the template's first wait. Its faults go to `parent` (which forked it with fork handle
    /// `handle`, as instance `id`). Address space,
    /// ASID and IPC buffer are the arch layer's (set before it runs).
    pub fn start_instance(&mut self, slot: PdId, template: PdId, priority: u8, parent: PdId, handle: u8, id: u16) {
        assert!((slot as usize) < self.pds.len() && (template as usize) < self.pds.len() && (parent as usize) < self.pds.len());
        let t = &self.pds[template as usize];
        let (ctx, passive, budget, period) = (t.ctx, t.passive, t.sc.budget, t.sc.period);
        let pd = &mut self.pds[slot as usize];
        // The slot is empty (never used, or `kill_instance` emptied it): set every field but
        // the grant and child tables, which an empty slot has all None (a Pd is kilobytes:
        // never copied whole on this path).
        debug_assert!(pd.state == State::Stopped && pd.instance_handle == NOT_INSTANCE);
        pd.ctx = ctx;
        pd.fp = FpContext::ZERO;
        pd.state = State::Receiving;
        pd.priority = priority;
        pd.passive = passive;
        pd.sc = SchedContext { budget, period, remaining: budget, period_start: 0, holder: slot, throttled: false };
        pd.running_sc = if passive { None } else { Some(slot) };
        pd.pending = 0;
        pd.serving = None;
        pd.call_info = MessageInfo(0);
        pd.call_badge = 0;
        pd.fault = None;
        pd.ep_head = NIL;
        pd.ep_tail = NIL;
        pd.ep_next = NIL;
        pd.parent = Some(parent);
        pd.child_id = 0;
        pd.instance_handle = handle;
        pd.instance_id = id;
        pd.root = 0;
        pd.asid = Asid { id: 0, generation: 0 };
        pd.ipc_buffer = 0;
        pd.owns_physical_timer = false;
        // Its ends of the channel arrays joining its template to static PDs.
        for (a, info) in self.arrays.iter() {
            if info.template == template && (id as u32) < info.max_instances {
                self.pds[slot as usize].grants[info.instance_id as usize] = Grant::ArrayMember {
                    peer: info.holder,
                    peer_id: info.holder_id,
                    array: a as u16,
                    notify: info.instance_notify,
                };
            }
        }
    }

    /// Takes instance `slot` out of every queue and call it is part of and leaves the slot
    /// empty. The caller (its parent, running) cannot be waiting on it.
    pub fn kill_instance(&mut self, slot: PdId) {
        assert!((slot as usize) < self.pds.len());
        self.detach(slot);
        if self.releases.contains(slot) {
            self.releases.remove(slot);
        }
        // A client blocked on its endpoint (or awaiting its reply) gets an error back.
        loop {
            let head = self.pd(slot).ep_head;
            if head == NIL {
                break;
            }
            self.pop_endpoint(slot);
            self.fail_call(head);
        }
        if let Some(client) = self.pd(slot).serving {
            if self.pd(client).state == (State::AwaitingReply { server: slot }) {
                self.fail_call(client);
            }
        }
        if self.current_sc == Some(slot) {
            self.current_sc = None;
        }
        // A later instance with this id must not inherit a pending notification; its grants
        // (only channel-array ends) go back to None.
        let id = self.pd(slot).instance_id as u32;
        for a in 0..self.arrays.len() {
            let info = *self.arrays.info(a);
            if slot >= info.first_slot && slot - info.first_slot == id {
                self.arrays.clear(a, id);
                self.pds[slot as usize].grants[info.instance_id as usize] = Grant::None;
            }
        }
        // The rest is reset by `start_instance`; an empty slot is Stopped and no instance.
        let p = self.pd_mut(slot);
        p.state = State::Stopped;
        p.instance_handle = NOT_INSTANCE;
        p.serving = None;
        p.pending = 0;
        p.running_sc = None;
        p.parent = None;
        p.fault = None;
    }

    fn fail_call(&mut self, client: PdId) {
        let c = self.pd_mut(client);
        if matches!(c.state, State::Calling { .. } | State::AwaitingReply { .. }) {
            c.ctx.x[0] = Error::InvalidState as u64;
            c.ctx.x[1] = 0;
            c.running_sc = Some(client);
            c.sc.holder = client;
            self.make_ready(client);
        }
    }

    /// A protected call from `pd` (running) to instance `server`, arriving with badge `badge`
    /// (the instance's channel id); the caller blocks until the reply.
    pub fn call_instance(&mut self, plat: &mut impl Platform, pd: PdId, server: PdId, badge: u8, info: MessageInfo) -> Next {
        let caller = self.pd_mut(pd);
        caller.call_info = info;
        caller.call_badge = badge;
        caller.state = State::Calling { server };
        self.runq.remove(pd);
        self.send_to_endpoint(plat, server, pd);
        Next::Schedule
    }

    // ---------------------------------------------------------------- children

    fn child(&self, parent: PdId, id: u64) -> Result<PdId, Error> {
        if id >= CHANNEL_IDS as u64 {
            return Err(Error::InvalidChild);
        }
        let c = self.pd(parent).children[id as usize];
        if c == NO_CHILD {
            return Err(Error::InvalidChild);
        }
        Ok(c)
    }

    /// Takes a PD out of whatever it is blocked in (queues, calls, faults).
    fn detach(&mut self, pd: PdId) {
        match self.pd(pd).state {
            State::Calling { server } => self.unlink_endpoint(server, pd),
            State::FaultSending { parent } => self.unlink_endpoint(parent, pd),
            State::AwaitingReply { server } | State::FaultDelivered { parent: server } => {
                if self.pd(server).serving == Some(pd) {
                    self.return_borrowed_sc(server, pd);
                    self.pd_mut(server).serving = None;
                }
            }
            State::Ready | State::Receiving | State::Stopped => {}
        }
        self.runq.remove(pd);
        let p = self.pd_mut(pd);
        p.fault = None;
        if p.running_sc.is_none() || p.running_sc != Some(pd) {
            p.running_sc = Some(pd);
            p.sc.holder = pd;
        }
    }

    fn restart_child(&mut self, parent: PdId, id: u64, pc: u64) -> Result<(), Error> {
        let child = self.child(parent, id)?;
        self.detach(child);
        self.pd_mut(child).ctx.pc = pc;
        self.make_ready(child);
        Ok(())
    }

    fn stop_child(&mut self, parent: PdId, id: u64) -> Result<(), Error> {
        let child = self.child(parent, id)?;
        self.unwind_blocked_call(child);
        self.detach(child);
        self.pd_mut(child).state = State::Stopped;
        Ok(())
    }

    /// A PD stopped while blocked in a system call must not, once resumed, return from it with
    /// registers the kernel never wrote. As seL4 restarts such a thread, a wait, or a call its
    /// server has not yet accepted, runs again on resume: the PC goes back to its `svc` (a wait
    /// without the reply and deferred action it already did). A call the server has accepted
    /// fails with `InvalidState` instead: running it again would deliver it twice.
    fn unwind_blocked_call(&mut self, pd: PdId) {
        /// Bytes of the `svc` instruction the saved PC is just past.
        const SVC_SIZE: u64 = 4;
        let p = self.pd_mut(pd);
        match p.state {
            State::Receiving => {
                p.ctx.pc -= SVC_SIZE;
                p.ctx.x[0] &= !RECV_REPLY;
                p.ctx.x[2] = DeferredKind::None as u64;
            }
            State::Calling { .. } => p.ctx.pc -= SVC_SIZE,
            State::AwaitingReply { .. } => {
                p.ctx.x[0] = Error::InvalidState as u64;
                p.ctx.x[1] = 0;
            }
            State::Ready | State::FaultSending { .. } | State::FaultDelivered { .. } | State::Stopped => {}
        }
    }

    fn resume_child(&mut self, parent: PdId, id: u64) -> Result<(), Error> {
        let child = self.child(parent, id)?;
        match self.pd(child).state {
            State::Stopped | State::FaultDelivered { .. } | State::FaultSending { .. } => {
                self.detach(child);
                self.make_ready(child);
                Ok(())
            }
            _ => Err(Error::InvalidState),
        }
    }

    // ---------------------------------------------------------------- faults and interrupts

    /// PD `pd` took a fault: its parent hears of it, or (a root PD) it is reported and stopped.
    pub fn fault(&mut self, plat: &mut impl Platform, pd: PdId, info: FaultInfo) {
        assert!((pd as usize) < self.pds.len(), "fault of PD {pd}, which does not exist");
        self.runq.remove(pd);
        // A featherweight instance that faults while serving a call fails the call (its parent,
        // the only caller, must get back to its event loop to hear of the fault).
        if self.pd(pd).instance_handle != NOT_INSTANCE {
            if let Some(client) = self.pd(pd).serving {
                if self.pd(client).state == (State::AwaitingReply { server: pd }) {
                    self.pd_mut(pd).serving = None;
                    self.fail_call(client);
                }
            }
        }
        let p = self.pd_mut(pd);
        p.fault = Some(info);
        match p.parent {
            Some(parent) => {
                p.state = State::FaultSending { parent };
                self.send_to_endpoint(plat, parent, pd);
            }
            None => {
                p.state = State::Stopped;
                plat.report_fault(pd, &self.pd(pd).ctx, &info);
            }
        }
    }

    /// A hardware interrupt other than the kernel timer arrived (the arch layer has acknowledged
    /// it and ends it after this returns). It is masked until its owner acks it.
    pub fn interrupt(&mut self, plat: &mut impl Platform, irq: u32) {
        if irq == self.reserved_irq {
            self.timer_expired();
            return;
        }
        plat.set_irq_enabled(irq, false);
        if let Some((pd, ch)) = self.irq_owner(irq) {
            self.signal(pd, ch);
        }
    }

    /// The kernel timer fired: the next `schedule` charges time and releases budgets.
    pub fn timer_expired(&mut self) {
        self.armed = None;
    }

    /// Sets notification bit `bit` of `pd` and wakes it if it waits (returns true then).
    fn signal(&mut self, pd: PdId, bit: u8) -> bool {
        let p = self.pd_mut(pd);
        p.pending |= 1 << bit;
        if p.state == State::Receiving {
            self.deliver_notifications(pd);
            return true;
        }
        false
    }

    // ---------------------------------------------------------------- scheduling

    /// `pd` becomes ready. The current PD stays off the queues (it keeps running unless
    /// `schedule` finds a higher priority); any other joins the tail of its priority.
    fn make_ready(&mut self, pd: PdId) {
        let is_current = self.current == Some(pd);
        let p = self.pd_mut(pd);
        p.state = State::Ready;
        if is_current {
            return;
        }
        let sc = p.running_sc.unwrap_or(pd);
        if !self.pd(sc).sc.throttled {
            let prio = self.pd(pd).priority;
            self.runq.push_back(pd, prio);
        }
    }

    /// True if the current PD `pd` may go on running: ready, not queued (a used-up time slice
    /// queues it behind its peers) and its SC not throttled.
    fn can_continue(&self, pd: PdId) -> bool {
        let p = self.pd(pd);
        let sc = p.running_sc.unwrap_or(pd);
        p.state == State::Ready && !self.runq.is_queued(pd) && !self.pd(sc).sc.throttled
    }

    /// Charges the running SC for the time since it was last charged.
    fn charge(&mut self, now: u64) {
        let Some(sc) = self.current_sc else { return };
        let used = now.saturating_sub(self.sc_started);
        self.sc_started = now;
        let s = &mut self.pd_mut(sc).sc;
        let overrun = used.saturating_sub(s.remaining);
        s.remaining = s.remaining.saturating_sub(used);
        if s.remaining == 0 {
            self.budget_exhausted(sc, now, overrun);
        }
    }

    /// `sc` has used its budget, and `overrun` ticks more (the timer that should have ended the
    /// budget came late: an interrupt masked for a while, or an emulator descheduled by its
    /// host). The overrun is charged: the SC is released only once its whole use since the
    /// period began, `budget + overrun`, fits its rate (`budget` per `period`), so a late timer
    /// cannot hand a budget-limited PD more than its share.
    fn budget_exhausted(&mut self, sc: PdId, now: u64, overrun: u64) {
        let s = &mut self.pd_mut(sc).sc;
        let holder = s.holder;
        let window = ((s.budget as u128 + overrun as u128) * s.period as u128).div_ceil(s.budget.max(1) as u128);
        let release_at = s.period_start.saturating_add(window.min(u64::MAX as u128) as u64);
        if s.budget >= s.period || release_at <= now {
            // A time slice (or a period already over): refill and go to the back of the queue.
            s.remaining = s.budget;
            s.period_start = now;
            let h = self.pd(holder);
            let running = self.current == Some(holder) && h.state == State::Ready;
            if running || self.runq.is_queued(holder) {
                self.runq.push_back(holder, h.priority);
            }
        } else {
            s.throttled = true;
            self.runq.remove(holder);
            self.releases.insert(sc, release_at);
        }
    }

    /// Refills SCs whose release time has come.
    fn release_due(&mut self, now: u64) {
        while let Some(sc) = self.releases.pop_due(now) {
            let s = &mut self.pd_mut(sc).sc;
            s.throttled = false;
            s.remaining = s.budget;
            s.period_start = now;
            let holder = s.holder;
            let h = self.pd(holder);
            if h.state == State::Ready && h.running_sc == Some(sc) {
                self.runq.push_back(holder, h.priority);
            }
        }
    }

    /// An SC with a budget below its period starting to run after a pause gets a new period if
    /// its old one is over. A round-robin SC (budget = period: a time slice) keeps what is left
    /// of its slice however long it was preempted, so peers at its priority share fairly.
    fn refresh(&mut self, sc: PdId, now: u64) {
        let s = &mut self.pd_mut(sc).sc;
        if !s.throttled && s.budget < s.period && now >= s.period_start.saturating_add(s.period) {
            s.remaining = s.budget;
            s.period_start = now;
        }
    }

    /// The PD to run: the current one if it may continue and nothing of higher priority is
    /// queued, else the head of the highest queue (a preempted current PD keeps its turn at the
    /// head of its own).
    fn choose(&mut self) -> Option<PdId> {
        let queued = self.runq.highest_priority();
        if let Some(pd) = self.current.filter(|&pd| self.can_continue(pd)) {
            let prio = self.pd(pd).priority;
            match queued {
                Some(q) if q > prio => self.runq.push_front(pd, prio),
                _ => return Some(pd),
            }
        }
        let next = self.runq.highest()?;
        self.runq.remove(next);
        Some(next)
    }

    /// Arms the timer for the next event: the earliest release, or the end of `sc`'s budget
    /// when it matters (a budget below its period, or a peer of `pd`'s priority waiting for a
    /// time slice). `sc` is the SC being charged: its budget ends at `sc_started + remaining`.
    fn arm(&mut self, plat: &mut impl Platform, pd: Option<PdId>, sc: Option<PdId>) {
        let mut deadline = self.releases.earliest().map(|(_, t)| t);
        if let (Some(pd), Some(sc)) = (pd, sc) {
            let s = &self.pd(sc).sc;
            let prio = self.pd(pd).priority;
            if s.budget < s.period || self.runq.has_other_at(prio, pd) {
                let end = self.sc_started.saturating_add(s.remaining);
                deadline = Some(deadline.map_or(end, |d| d.min(end)));
            }
        }
        if deadline != self.armed {
            plat.set_timer(deadline);
            self.armed = deadline;
        }
    }

    /// Chooses the PD to run next (None: idle), and arms the timer for the next event.
    pub fn schedule(&mut self, plat: &mut impl Platform) -> Option<PdId> {
        let now = plat.now();
        self.charge(now);
        self.release_due(now);
        let next = self.choose();
        let next_sc = next.and_then(|pd| self.pd(pd).running_sc);
        if next_sc != self.current_sc {
            if let Some(sc) = next_sc {
                self.refresh(sc, now);
            }
            self.current_sc = next_sc;
            self.sc_started = now;
        }
        self.current = next;
        self.arm(plat, next, next_sc);
        next
    }
}

#[cfg(test)]
mod tests;
