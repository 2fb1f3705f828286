//! The kernel model driven by a fake platform: each test plays PDs by writing their registers
//! and making system calls, as the arch layer would.

use super::*;
use bootinfo::{Builder, Channel, ChannelEnd, Irq, ProtectionDomain, Range, Trigger, NO_PD};
use std::boxed::Box;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// The kernel's timer IRQ on QEMU virt (the virtual timer), as the arch layer passes it.
const KERNEL_TIMER_IRQ: u32 = 27;

/// Time in microseconds (frequency 1 MHz) and a log of what the kernel asked for.
#[derive(Default)]
struct FakePlatform {
    now: u64,
    timer: Option<u64>,
    irq_enabled: Vec<(u32, bool)>,
    copies: Vec<(PdId, PdId, usize)>,
    written: Vec<(PdId, Vec<u64>)>,
    faults: Vec<(PdId, FaultKind)>,
    printed: String,
    shutdown: Option<u32>,
    /// Fake IPC buffers, by PD (identified through ipc_buffer = index + 1).
    mrs: Vec<[u64; 8]>,
}

impl Platform for FakePlatform {
    fn now(&mut self) -> u64 {
        self.now
    }
    fn frequency(&self) -> u64 {
        1_000_000
    }
    fn set_timer(&mut self, deadline: Option<u64>) {
        self.timer = deadline;
    }
    fn set_irq_enabled(&mut self, irq: u32, enabled: bool) {
        self.irq_enabled.push((irq, enabled));
    }
    fn copy_mrs(&mut self, from: &Pd, to: &Pd, count: usize) {
        let (f, t) = (from.ipc_buffer as usize - 1, to.ipc_buffer as usize - 1);
        self.copies.push((f as PdId, t as PdId, count));
        for i in 0..count.min(8) {
            self.mrs[t][i] = self.mrs[f][i];
        }
    }
    fn write_mrs(&mut self, to: &Pd, words: &[u64]) {
        let t = to.ipc_buffer as usize - 1;
        self.written.push((t as PdId, words.to_vec()));
    }
    fn debug_write(&mut self, _pd: PdId, vaddr: u64, len: u64) -> Result<(), Error> {
        if vaddr == 0 {
            return Err(Error::InvalidAddress);
        }
        self.printed.push_str(&std::format!("[{vaddr:#x}+{len}]"));
        Ok(())
    }
    fn report_fault(&mut self, pd: PdId, _ctx: &UserContext, fault: &FaultInfo) {
        self.faults.push((pd, fault.kind));
    }
    fn shutdown(&mut self, status: u32) {
        self.shutdown = Some(status);
    }
}

#[derive(Clone)]
struct Spec {
    priority: u8,
    passive: bool,
    budget: u64,
    period: u64,
    parent: Option<(u32, u32)>,
    irqs: Vec<(u32, u32)>,
}

fn spec(priority: u8) -> Spec {
    Spec { priority, passive: false, budget: 1000, period: 1000, parent: None, irqs: vec![] }
}

/// (pd_a, id_a, pp_a, notify_a, pd_b, id_b, pp_b, notify_b)
type ChannelSpec = (u32, u32, bool, bool, u32, u32, bool, bool);

fn boot(pds: Vec<Spec>, channels: &[ChannelSpec]) -> (Kernel<'static>, FakePlatform) {
    boot_with_slots(pds, channels, 0)
}

/// As `boot`, with `extra` PD slots past the description's (templates, instances).
fn boot_with_slots(pds: Vec<Spec>, channels: &[ChannelSpec], extra: usize) -> (Kernel<'static>, FakePlatform) {
    try_boot_with(pds, channels, extra, 0).unwrap()
}

fn try_boot(pds: Vec<Spec>, channels: &[ChannelSpec]) -> Result<(Kernel<'static>, FakePlatform), BuildError> {
    try_boot_with(pds, channels, 0, 0)
}

/// Builds the blob (with header `flags`) and the kernel from it.
fn try_boot_with(
    pds: Vec<Spec>,
    channels: &[ChannelSpec],
    extra: usize,
    flags: u32,
) -> Result<(Kernel<'static>, FakePlatform), BuildError> {
    let mut b = Builder::new();
    b.flags = flags;
    for (i, s) in pds.iter().enumerate() {
        let name = b.add_string(&std::format!("pd{i}"));
        let first = b.irqs.len() as u32;
        for &(irq, id) in &s.irqs {
            b.irqs.push(Irq { irq, channel_id: id, trigger: Trigger::Level });
        }
        let (parent, child_id) = s.parent.unwrap_or((NO_PD, 0));
        b.pds.push(ProtectionDomain {
            name,
            priority: s.priority,
            passive: s.passive,
            budget_us: s.budget,
            period_us: s.period,
            parent,
            child_id,
            entry: 0x20_0000,
            stack_top: bootinfo::layout::PD_STACK_TOP,
            stack_size: 0x1000,
            irqs: Range { first, count: s.irqs.len() as u32 },
            ..Default::default()
        });
    }
    for c in channels {
        b.channels.push(Channel {
            ends: [
                ChannelEnd { pd: c.0, id: c.1, pp: c.2, notify: c.3 },
                ChannelEnd { pd: c.4, id: c.5, pp: c.6, notify: c.7 },
            ],
        });
    }
    let blob: &'static [u8] = Box::leak(b.finish(0x4800_0000).into_boxed_slice());
    let info = BootInfo::parse(blob).unwrap();
    let n = pds.len() + extra;
    let storage = Storage {
        pds: Box::leak(vec![Pd::EMPTY; n].into_boxed_slice()),
        run_links: Box::leak(vec![Link::UNQUEUED; n].into_boxed_slice()),
        release_heap: Box::leak(vec![0u32; n].into_boxed_slice()),
        release_pos: Box::leak(vec![0u32; n].into_boxed_slice()),
        release_time: Box::leak(vec![0u64; n].into_boxed_slice()),
        irq_owner: Box::leak(vec![None; MAX_IRQS].into_boxed_slice()),
    };
    let k = Kernel::new(storage, &info, 1_000_000, KERNEL_TIMER_IRQ)?;
    for (i, pd) in k.pds.iter_mut().enumerate() {
        pd.ipc_buffer = i as u64 + 1;
    }
    let plat = FakePlatform { mrs: vec![[0; 8]; n], ..Default::default() };
    Ok((k, plat))
}

/// PD `pd` makes system call `number`, through the fast paths first as the arch layer does
/// (when `pd` is the current PD: tests also play PDs that are not running).
fn call(k: &mut Kernel, p: &mut FakePlatform, pd: PdId, number: u64, args: &[u64]) -> Next {
    let ctx = &mut k.pds[pd as usize].ctx;
    ctx.x[8] = number;
    for (i, a) in args.iter().enumerate() {
        ctx.x[i] = *a;
    }
    if k.current() == Some(pd) {
        if let Some(next) = k.fast_syscall(p) {
            return next;
        }
    }
    k.syscall(p, pd)
}

fn recv(k: &mut Kernel, p: &mut FakePlatform, pd: PdId) {
    call(k, p, pd, sys::RECV, &[0, 0, 0, 0]);
}

fn x(k: &Kernel, pd: PdId, i: usize) -> u64 {
    k.pds[pd as usize].ctx.x[i]
}

#[test]
fn highest_priority_runs_first_and_waiting_pds_leave_the_queue() {
    let (mut k, mut p) = boot(vec![spec(10), spec(200), spec(50)], &[]);
    assert_eq!(k.schedule(&mut p), Some(1));
    recv(&mut k, &mut p, 1);
    assert_eq!(k.pds[1].state, State::Receiving);
    assert_eq!(k.schedule(&mut p), Some(2));
    recv(&mut k, &mut p, 2);
    assert_eq!(k.schedule(&mut p), Some(0));
    recv(&mut k, &mut p, 0);
    assert_eq!(k.schedule(&mut p), None);
    assert_eq!(p.timer, None, "idle with nothing pending arms no timer");
}

#[test]
fn notifications_coalesce_and_wake_the_receiver() {
    // 0 <-> 1 on ids 3 / 4, and 0 <-> 1 again on ids 5 / 6.
    let (mut k, mut p) = boot(vec![spec(1), spec(1)], &[(0, 3, false, true, 1, 4, false, true), (0, 5, false, true, 1, 6, false, true)]);
    assert_eq!(k.schedule(&mut p), Some(0));
    recv(&mut k, &mut p, 0);
    assert_eq!(k.schedule(&mut p), Some(1));
    call(&mut k, &mut p, 1, sys::NOTIFY, &[4]);
    assert_eq!(x(&k, 1, 0), 0);
    // Woken with the bit of ITS id (3), ready behind the notifier.
    assert_eq!(k.pds[0].state, State::Ready);
    assert_eq!(x(&k, 0, 0), Event::Notification as u64);
    assert_eq!(x(&k, 0, 1), 1 << 3);
    // Two notifications to a busy PD arrive together.
    call(&mut k, &mut p, 0, sys::NOTIFY, &[3]);
    call(&mut k, &mut p, 0, sys::NOTIFY, &[5]);
    recv(&mut k, &mut p, 1);
    assert_eq!(x(&k, 1, 0), Event::Notification as u64);
    assert_eq!(x(&k, 1, 1), (1 << 4) | (1 << 6));
    assert_eq!(k.pds[1].pending, 0);
}

#[test]
fn ungranted_uses_are_refused_with_errors() {
    // 0 may notify 1 but not call it; 1 may neither notify nor call 0.
    let (mut k, mut p) = boot(vec![spec(1), spec(2)], &[(0, 0, false, true, 1, 0, false, false)]);
    call(&mut k, &mut p, 0, sys::PP_CALL, &[0, 0]);
    assert_eq!(x(&k, 0, 0), Error::NotGranted as u64);
    call(&mut k, &mut p, 1, sys::NOTIFY, &[0]);
    assert_eq!(x(&k, 1, 0), Error::NotGranted as u64);
    call(&mut k, &mut p, 0, sys::NOTIFY, &[7]);
    assert_eq!(x(&k, 0, 0), Error::NotGranted as u64);
    call(&mut k, &mut p, 0, sys::NOTIFY, &[62]);
    assert_eq!(x(&k, 0, 0), Error::InvalidChannel as u64);
    call(&mut k, &mut p, 0, sys::IRQ_ACK, &[0]);
    assert_eq!(x(&k, 0, 0), Error::NotGranted as u64);
    call(&mut k, &mut p, 0, sys::PD_RESTART, &[0, 0]);
    assert_eq!(x(&k, 0, 0), Error::InvalidChild as u64);
    call(&mut k, &mut p, 0, 999, &[]);
    assert_eq!(x(&k, 0, 0), Error::InvalidCall as u64);
    // A reply with nothing to reply to is reported, and the wait still happens.
    call(&mut k, &mut p, 0, sys::RECV, &[RECV_REPLY, 0, 0, 0]);
    assert_eq!(x(&k, 0, 4), Error::InvalidState as u64);
    assert_eq!(k.pds[0].state, State::Receiving);
    assert_eq!(p.shutdown, None);
}

#[test]
fn protected_call_to_a_passive_server_runs_on_the_callers_time() {
    let mut server = spec(100);
    server.passive = true;
    let (mut k, mut p) = boot(vec![spec(1), server], &[(0, 2, true, true, 1, 9, false, true)]);
    assert_eq!(k.schedule(&mut p), Some(1));
    recv(&mut k, &mut p, 1); // init done: passive from now on
    assert_eq!(k.pds[1].running_sc, None);
    assert_eq!(k.schedule(&mut p), Some(0));
    p.mrs[0][0] = 0xaa;
    p.mrs[0][1] = 0xbb;
    call(&mut k, &mut p, 0, sys::PP_CALL, &[2, MessageInfo::new(7, 2).0]);
    assert_eq!(k.pds[0].state, State::AwaitingReply { server: 1 });
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(k.pds[1].running_sc, Some(0));
    assert_eq!(x(&k, 1, 0), Event::ProtectedCall as u64);
    assert_eq!(x(&k, 1, 1), 9);
    assert_eq!(MessageInfo(x(&k, 1, 2)), MessageInfo::new(7, 2));
    assert_eq!(&p.mrs[1][..2], &[0xaa, 0xbb]);
    // Reply with one MR.
    p.mrs[1][0] = 0xcc;
    call(&mut k, &mut p, 1, sys::RECV, &[RECV_REPLY, MessageInfo::new(3, 1).0, 0, 0]);
    assert_eq!(x(&k, 1, 4), 0);
    assert_eq!(k.pds[1].state, State::Receiving);
    assert_eq!(k.pds[1].running_sc, None);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(x(&k, 0, 0), 0);
    assert_eq!(MessageInfo(x(&k, 0, 1)), MessageInfo::new(3, 1));
    assert_eq!(p.mrs[0][0], 0xcc);
    // A passive server can still be notified: it runs on its own SC.
    call(&mut k, &mut p, 0, sys::NOTIFY, &[2]);
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(k.pds[1].running_sc, Some(1));
}

#[test]
fn calls_to_a_busy_server_queue_in_order() {
    let (mut k, mut p) = boot(vec![spec(1), spec(1), spec(50)], &[(0, 0, true, true, 2, 0, false, true), (1, 0, true, true, 2, 1, false, true)]);
    // The server has not waited yet: both callers queue.
    call(&mut k, &mut p, 0, sys::PP_CALL, &[0, 0]);
    call(&mut k, &mut p, 1, sys::PP_CALL, &[0, 0]);
    assert_eq!(k.pds[0].state, State::Calling { server: 2 });
    recv(&mut k, &mut p, 2);
    assert_eq!((x(&k, 2, 0), x(&k, 2, 1)), (Event::ProtectedCall as u64, 0));
    call(&mut k, &mut p, 2, sys::RECV, &[RECV_REPLY, 0, 0, 0]);
    assert_eq!((x(&k, 2, 0), x(&k, 2, 1)), (Event::ProtectedCall as u64, 1));
    assert_eq!(k.pds[0].state, State::Ready);
    assert_eq!(k.pds[1].state, State::AwaitingReply { server: 2 });
}

#[test]
fn child_fault_goes_to_parent_which_restarts_it() {
    let mut child = spec(1);
    child.parent = Some((0, 4));
    let (mut k, mut p) = boot(vec![spec(10), child], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    recv(&mut k, &mut p, 0);
    assert_eq!(k.schedule(&mut p), Some(1));
    let fault = FaultInfo { kind: FaultKind::DataAbort, pc: 0x20_0040, address: 0x1234, syndrome: 0x9200_0047, is_write: true, sp: 0x10 };
    k.fault(&mut p, 1, fault);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(x(&k, 0, 0), Event::Fault as u64);
    assert_eq!(x(&k, 0, 1), 4);
    assert_eq!(MessageInfo(x(&k, 0, 2)).label(), FaultKind::DataAbort as u64);
    assert_eq!(p.written, vec![(0, fault.message().to_vec())]);
    assert!(p.faults.is_empty(), "a child's fault is not reported on the console");
    call(&mut k, &mut p, 0, sys::PD_RESTART, &[4, 0x20_0000]);
    assert_eq!(x(&k, 0, 0), 0);
    assert_eq!(k.pds[1].state, State::Ready);
    assert_eq!(k.pds[1].ctx.pc, 0x20_0000);
    // Replying to the (already restarted) fault is harmless; then stop and resume.
    call(&mut k, &mut p, 0, sys::PD_STOP, &[4]);
    assert_eq!(k.pds[1].state, State::Stopped);
    call(&mut k, &mut p, 0, sys::PD_RESUME, &[4]);
    assert_eq!(k.pds[1].state, State::Ready);
    call(&mut k, &mut p, 1, sys::PD_STOP, &[4]);
    assert_eq!(x(&k, 1, 0), Error::InvalidChild as u64, "a child cannot stop its siblings or itself");
}

#[test]
fn instances_resume_from_the_checkpoint_and_fault_to_their_holder() {
    // PD 0 holds the fork grant; slot 1 is the template, slots 2 and 3 instances.
    let (mut k, mut p) = boot_with_slots(vec![spec(50)], &[], 3);
    assert_eq!(k.pds[2].state, State::Stopped, "instance slots start empty");
    k.init_template(1, 1000, 1000, 0x20_0000, 0x4000);
    assert!(!k.checkpoint_reached(1));
    assert_eq!(k.schedule(&mut p), Some(1), "the template runs its init first (higher priority)");
    k.pds[1].ctx.pc = 0x20_0123; // where its first wait is
    recv(&mut k, &mut p, 1);
    assert!(k.checkpoint_reached(1));
    assert_eq!(k.schedule(&mut p), Some(0));
    k.start_instance(2, 1, 100, 0, 3, 7);
    k.start_instance(3, 1, 100, 0, 3, 8);
    let badge = edgeos_kernel_abi::INSTANCE_FAULT | 3 << 32 | 7;
    k.pds[2].ipc_buffer = 3; // the arch layer's job (fake buffers are numbered from 1)
    k.pds[3].ipc_buffer = 4;
    assert_eq!((k.pds[2].state, k.pds[2].ctx.pc, k.pds[2].priority), (State::Receiving, 0x20_0123, 100));
    // A call to instance 2 returns from the checkpoint's wait as a protected call.
    assert_eq!(k.call_instance(&mut p, 0, 2, 0, MessageInfo::new(1, 0)), Next::Schedule);
    assert_eq!(k.schedule(&mut p), Some(2));
    assert_eq!(x(&k, 2, 0), Event::ProtectedCall as u64);
    call(&mut k, &mut p, 2, sys::RECV, &[RECV_REPLY, MessageInfo::new(9, 0).0, 0, 0]);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!((x(&k, 0, 0), MessageInfo(x(&k, 0, 1)).label()), (0, 9));
    // Instance 3 faults while serving a call: the call fails, the fault waits for the holder.
    k.call_instance(&mut p, 0, 3, 0, MessageInfo::new(1, 0));
    assert_eq!(k.schedule(&mut p), Some(3));
    let fault = FaultInfo { kind: FaultKind::DataAbort, pc: 0x20_0040, address: 0x1234, syndrome: 0, is_write: false, sp: 0x10 };
    k.fault(&mut p, 3, fault);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(x(&k, 0, 0), Error::InvalidState as u64);
    recv(&mut k, &mut p, 0);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!((x(&k, 0, 0), x(&k, 0, 1)), (Event::Fault as u64, badge + 1));
    assert_eq!(k.pds[0].serving, Some(3));
    // Destroying it clears the holder's fault; the slot is empty again.
    k.kill_instance(3);
    assert_eq!(k.pds[0].serving, None);
    assert_eq!(k.pds[3].state, State::Stopped);
    assert_eq!(k.pds[3].parent, None);
    // A queued call to an instance that is killed fails rather than hanging.
    k.pds[2].state = State::Ready; // busy: the call queues on its endpoint
    k.call_instance(&mut p, 0, 2, 0, MessageInfo::new(1, 0));
    assert_eq!(k.pds[0].state, State::Calling { server: 2 });
    k.kill_instance(2);
    assert_eq!((k.pds[0].state, x(&k, 0, 0)), (State::Ready, Error::InvalidState as u64));
}

#[test]
fn root_fault_stops_only_that_pd() {
    let (mut k, mut p) = boot(vec![spec(10), spec(5)], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    let f = FaultInfo { kind: FaultKind::UndefinedInstruction, pc: 0x20_0000, address: 0, syndrome: 0, is_write: false, sp: 0 };
    k.fault(&mut p, 0, f);
    assert_eq!(p.faults, vec![(0, FaultKind::UndefinedInstruction)]);
    assert_eq!(k.pds[0].state, State::Stopped);
    assert_eq!(k.schedule(&mut p), Some(1));
}

#[test]
fn equal_priorities_share_by_round_robin() {
    let (mut k, mut p) = boot(vec![spec(5), spec(5)], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, Some(1000), "a peer at the same priority needs a time slice");
    p.now = 1000;
    k.timer_expired();
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(p.timer, Some(2000));
    p.now = 2000;
    k.timer_expired();
    assert_eq!(k.schedule(&mut p), Some(0));
}

#[test]
fn a_spent_budget_throttles_until_the_period_ends() {
    let mut spinner = spec(5);
    spinner.budget = 300;
    spinner.period = 1000;
    let (mut k, mut p) = boot(vec![spinner, spec(1)], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, Some(300));
    p.now = 300;
    k.timer_expired();
    // The lower-priority PD gets the rest of the period.
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(p.timer, Some(1000));
    p.now = 1000;
    k.timer_expired();
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, Some(1300));
}

#[test]
fn a_lone_pd_with_a_full_budget_gets_no_timer() {
    let (mut k, mut p) = boot(vec![spec(5)], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, None);
}

#[test]
fn irqs_are_masked_until_acked_and_preempt_lower_priorities() {
    let mut driver = spec(200);
    driver.irqs = vec![(33, 7)];
    let (mut k, mut p) = boot(vec![spec(1), driver], &[]);
    assert_eq!(k.owned_irqs().collect::<Vec<_>>(), vec![(33, 1)]);
    assert_eq!(k.schedule(&mut p), Some(1));
    recv(&mut k, &mut p, 1);
    assert_eq!(k.schedule(&mut p), Some(0));
    k.interrupt(&mut p, 33);
    assert_eq!(p.irq_enabled, vec![(33, false)]);
    assert_eq!(k.schedule(&mut p), Some(1), "the driver preempts");
    assert_eq!(x(&k, 1, 1), 1 << 7);
    // Deferred ack fused with the next wait.
    call(&mut k, &mut p, 1, sys::RECV, &[0, 0, DeferredKind::IrqAck as u64, 7]);
    assert_eq!(x(&k, 1, 3), 0);
    assert_eq!(p.irq_enabled, vec![(33, false), (33, true)]);
    assert_eq!(k.schedule(&mut p), Some(0));
    // The kernel's own timer interrupt is not a PD's.
    k.interrupt(&mut p, KERNEL_TIMER_IRQ);
    assert_eq!(p.irq_enabled.len(), 2);
}

#[test]
fn only_the_owner_of_the_physical_timer_irq_may_program_that_timer() {
    let mut driver = spec(200);
    driver.irqs = vec![(PD_TIMER_IRQ, 3)];
    let (mut k, mut p) = boot(vec![spec(1), driver, spec(1)], &[]);
    assert_eq!(k.owned_irqs().collect::<Vec<_>>(), vec![(PD_TIMER_IRQ, 1)]);
    assert_eq!(k.pds.iter().map(|pd| pd.owns_physical_timer).collect::<Vec<_>>(), vec![false, true, false]);
    assert_eq!(k.schedule(&mut p), Some(1));
    recv(&mut k, &mut p, 1);
    assert_eq!(k.schedule(&mut p), Some(0));
    // Its interrupt goes to the driver like any other device's, masked until acked.
    k.interrupt(&mut p, PD_TIMER_IRQ);
    assert_eq!(p.irq_enabled, vec![(PD_TIMER_IRQ, false)]);
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(x(&k, 1, 1), 1 << 3);
}

#[test]
fn descriptions_claiming_kernel_or_shared_irqs_are_refused() {
    let mut a = spec(1);
    a.irqs = vec![(KERNEL_TIMER_IRQ, 1)];
    let mut b = Builder::new();
    let name = b.add_string("a");
    b.irqs.push(Irq { irq: KERNEL_TIMER_IRQ, channel_id: 1, trigger: Trigger::Level });
    b.pds.push(ProtectionDomain {
        name,
        priority: a.priority,
        budget_us: 1000,
        period_us: 1000,
        parent: NO_PD,
        stack_top: bootinfo::layout::PD_STACK_TOP,
        stack_size: 0x1000,
        irqs: Range { first: 0, count: 1 },
        ..Default::default()
    });
    let blob = b.finish(0x4800_0000);
    let info = BootInfo::parse(&blob).unwrap();
    let storage = Storage {
        pds: Box::leak(vec![Pd::EMPTY; 1].into_boxed_slice()),
        run_links: Box::leak(vec![Link::UNQUEUED; 1].into_boxed_slice()),
        release_heap: Box::leak(vec![0u32; 1].into_boxed_slice()),
        release_pos: Box::leak(vec![0u32; 1].into_boxed_slice()),
        release_time: Box::leak(vec![0u64; 1].into_boxed_slice()),
        irq_owner: Box::leak(vec![None; MAX_IRQS].into_boxed_slice()),
    };
    assert!(matches!(
        Kernel::new(storage, &info, 1_000_000, KERNEL_TIMER_IRQ),
        Err(BuildError::BadIrq(KERNEL_TIMER_IRQ))
    ));
}

#[test]
fn debug_print_and_shutdown_reach_the_platform() {
    let (mut k, mut p) = boot(vec![spec(1)], &[]);
    call(&mut k, &mut p, 0, sys::DEBUG_PUTS, &[0x20_1000, 5]);
    assert_eq!(x(&k, 0, 0), 0);
    call(&mut k, &mut p, 0, sys::DEBUG_PUTS, &[0, 5]);
    assert_eq!(x(&k, 0, 0), Error::InvalidAddress as u64);
    assert_eq!(p.printed, "[0x201000+5]");
    // Not a test image: no PD may power the node off.
    call(&mut k, &mut p, 0, sys::DEBUG_SHUTDOWN, &[3]);
    assert_eq!((x(&k, 0, 0), p.shutdown), (Error::NotGranted as u64, None));
    k.debug_exit = true;
    call(&mut k, &mut p, 0, sys::DEBUG_SHUTDOWN, &[3]);
    assert_eq!(p.shutdown, Some(3));
}

#[test]
fn the_debug_exit_flag_comes_from_the_blob() {
    assert!(!boot(vec![spec(1)], &[]).0.debug_exit);
    assert!(try_boot_with(vec![spec(1)], &[], 0, bootinfo::FLAG_DEBUG_EXIT).unwrap().0.debug_exit);
}

#[test]
fn protected_calls_must_go_to_a_higher_priority() {
    let (k, _) = boot(vec![spec(1), spec(2)], &[(0, 0, true, false, 1, 0, false, false)]);
    assert_eq!(k.pds[0].priority, 1);
    for (caller, callee) in [(2u8, 1u8), (2, 2)] {
        let r = try_boot(vec![spec(caller), spec(callee)], &[(0, 0, true, false, 1, 0, false, false)]);
        assert!(matches!(r, Err(BuildError::CallNotUpward { caller: 0, callee: 1 })));
    }
}

#[test]
fn syndromes_classify() {
    assert_eq!(classify_syndrome(0x9200_0047), (FaultKind::DataAbort, true)); // EC 0x24, WnR
    assert_eq!(classify_syndrome(0x9200_0007), (FaultKind::DataAbort, false));
    assert_eq!(classify_syndrome(0x9200_0061), (FaultKind::Alignment, true));
    assert_eq!(classify_syndrome(0x8200_000f), (FaultKind::InstructionAbort, false));
    assert_eq!(classify_syndrome(0x0200_0000), (FaultKind::UndefinedInstruction, false));
    assert_eq!(classify_syndrome(0xf200_0000), (FaultKind::Debug, false)); // BRK
    assert_eq!(classify_syndrome(0x8a00_0000), (FaultKind::Alignment, false)); // PC alignment
}

// ------------------------------------------------------------------ fast paths vs general path

/// A small deterministic generator for the randomized tests (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random system: 2..=6 PDs at priorities 1..=3 (so equal priorities are common), some
/// passive, and channels between random pairs, notifiable both ways, with a protected call from
/// the lower to the strictly higher priority end (the boot description allows nothing else).
fn random_system(rng: &mut Rng) -> (Vec<Spec>, Vec<ChannelSpec>) {
    let n = 2 + rng.below(5) as u32;
    let specs: Vec<Spec> = (0..n)
        .map(|i| {
            let mut s = spec(1 + rng.below(3) as u8);
            s.passive = rng.below(3) == 0;
            // An IRQ on channel id 9 wakes the system when every PD waits.
            s.irqs = vec![(40 + i, 9)];
            s
        })
        .collect();
    let mut channels = Vec::new();
    let mut next_id = vec![0u32; n as usize];
    for _ in 0..rng.below(8) {
        let (a, b) = (rng.below(n as u64) as u32, rng.below(n as u64) as u32);
        if a == b || next_id[a as usize] >= 8 || next_id[b as usize] >= 8 {
            continue;
        }
        let (ia, ib) = (next_id[a as usize], next_id[b as usize]);
        next_id[a as usize] += 1;
        next_id[b as usize] += 1;
        let (pa, pb) = (specs[a as usize].priority, specs[b as usize].priority);
        channels.push((a, ia, pa < pb, true, b, ib, pb < pa, true));
    }
    (specs, channels)
}

/// What PD `pd` can observe, and what decides its future: compared between the two kernels.
fn observable(k: &Kernel, p: &FakePlatform, pd: PdId) -> String {
    let d = &k.pds[pd as usize];
    std::format!(
        "state {:?} regs {:?} pending {:#x} sc {:?} holder {} serving {:?} mrs {:?}",
        d.state,
        &d.ctx.x[..5],
        d.pending,
        d.running_sc,
        d.sc.holder,
        d.serving,
        p.mrs[pd as usize]
    )
}

#[test]
fn fast_paths_leave_the_same_state_as_the_general_path() {
    let mut fast_steps = 0;
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (specs, channels) = random_system(&mut rng);
        let n = specs.len();
        let (mut fast, mut pf) = boot(specs.clone(), &channels);
        let (mut slow, mut ps) = boot(specs, &channels);
        assert_eq!(fast.schedule(&mut pf), slow.schedule(&mut ps));
        for step in 0..300 {
            let Some(pd) = fast.current() else {
                // Everything waits: an interrupt for a random PD.
                let irq = 40 + rng.below(n as u64) as u32;
                fast.interrupt(&mut pf, irq);
                slow.interrupt(&mut ps, irq);
                assert_eq!(fast.schedule(&mut pf), slow.schedule(&mut ps), "seed {seed} step {step}: after IRQ {irq}");
                continue;
            };
            assert_eq!(slow.current(), Some(pd), "seed {seed} step {step}: a different PD runs");
            // A random system call by the running PD (mostly on its granted channel ids), with
            // random MRs in its IPC buffer.
            let granted: Vec<u64> =
                (0..10).filter(|&i| fast.pds[pd as usize].grants[i as usize] != Grant::None).collect();
            let ch = if !granted.is_empty() && rng.below(5) != 0 { granted[rng.below(granted.len() as u64) as usize] } else { rng.below(10) };
            let (number, args) = match rng.below(6) {
                0 | 1 => (sys::NOTIFY, [ch, 0, 0, 0]),
                2 => (sys::PP_CALL, [ch, MessageInfo::new(rng.below(4), rng.below(5) as usize).0, 0, 0]),
                3 => (sys::RECV, [RECV_REPLY, MessageInfo::new(rng.below(4), rng.below(5) as usize).0, 0, 0]),
                4 => (sys::RECV, [0, 0, DeferredKind::Notify as u64, ch]),
                _ => (sys::RECV, [rng.below(2), 0, rng.below(3), ch]),
            };
            let mrs: [u64; 8] = core::array::from_fn(|_| rng.next());
            pf.mrs[pd as usize] = mrs;
            ps.mrs[pd as usize] = mrs;
            for k in [&mut fast, &mut slow] {
                let ctx = &mut k.pds[pd as usize].ctx;
                ctx.x[8] = number;
                ctx.x[..4].copy_from_slice(&args);
            }
            // The kernel under test: fast paths first, the general path otherwise, and the
            // scheduler only when asked for (as the arch layer does).
            let next = match fast.fast_syscall(&mut pf) {
                Some(next) => {
                    fast_steps += 1;
                    next
                }
                None => fast.syscall(&mut pf, pd),
            };
            if next == Next::Schedule {
                fast.schedule(&mut pf);
            }
            if let Next::Switch(to) = next {
                assert_eq!(fast.current(), Some(to));
            }
            // The reference: the general path, and the scheduler after every call.
            slow.syscall(&mut ps, pd);
            slow.schedule(&mut ps);
            assert_eq!(fast.current(), slow.current(), "seed {seed} step {step}: call {number} {args:?} by PD {pd}");
            for q in 0..n as PdId {
                assert_eq!(
                    observable(&fast, &pf, q),
                    observable(&slow, &ps, q),
                    "seed {seed} step {step}: PD {q} differs after call {number} {args:?} by PD {pd}"
                );
            }
        }
    }
    assert!(fast_steps > 10_000, "the scenarios exercise the fast paths ({fast_steps} steps)");
}

#[test]
fn a_child_stopped_in_a_wait_waits_again_when_resumed() {
    let mut child = spec(10);
    child.parent = Some((0, 4));
    let (mut k, mut p) = boot(vec![spec(1), child], &[]);
    assert_eq!(k.schedule(&mut p), Some(1));
    k.pds[1].ctx.pc = 0x20_0104;
    recv(&mut k, &mut p, 1);
    assert_eq!(k.pds[1].state, State::Receiving);
    // What its wait asked for besides waiting (a reply, a deferred notify) was done on entry.
    k.pds[1].ctx.x[0] |= RECV_REPLY;
    k.pds[1].ctx.x[2] = DeferredKind::Notify as u64;
    assert_eq!(k.schedule(&mut p), Some(0));
    call(&mut k, &mut p, 0, sys::PD_STOP, &[4]);
    call(&mut k, &mut p, 0, sys::PD_RESUME, &[4]);
    let c = &k.pds[1];
    assert_eq!(c.state, State::Ready);
    // It runs its wait again, without the reply and deferred notify it already made.
    assert_eq!((c.ctx.pc, c.ctx.x[8]), (0x20_0100, sys::RECV));
    assert_eq!((c.ctx.x[0] & RECV_REPLY, c.ctx.x[2]), (0, DeferredKind::None as u64));
}

#[test]
fn a_child_stopped_in_a_call_retries_it_or_gets_an_error() {
    // PD 0 parent, PD 1 its child, PD 2 a server the child calls (higher priority, passive).
    let mut child = spec(5);
    child.parent = Some((0, 4));
    let mut server = spec(20);
    server.passive = true;
    let (mut k, mut p) = boot(vec![spec(10), child, server], &[(1, 2, true, false, 2, 3, false, false)]);
    // The server takes its first call: the child's call is accepted, and the child is stopped
    // while awaiting the reply: resumed, it sees the call fail.
    recv(&mut k, &mut p, 2);
    k.pds[1].ctx.pc = 0x20_0204;
    call(&mut k, &mut p, 1, sys::PP_CALL, &[2, 0]);
    assert_eq!(k.pds[1].state, State::AwaitingReply { server: 2 });
    call(&mut k, &mut p, 0, sys::PD_STOP, &[4]);
    call(&mut k, &mut p, 0, sys::PD_RESUME, &[4]);
    assert_eq!(k.pds[1].ctx.pc, 0x20_0204);
    assert_eq!(x(&k, 1, 0), Error::InvalidState as u64);
    // A call still queued (the server busy) runs again on resume.
    k.pds[2].state = State::Ready;
    call(&mut k, &mut p, 1, sys::PP_CALL, &[2, 0]);
    assert!(matches!(k.pds[1].state, State::Calling { server: 2 }));
    call(&mut k, &mut p, 0, sys::PD_STOP, &[4]);
    call(&mut k, &mut p, 0, sys::PD_RESUME, &[4]);
    assert_eq!((k.pds[1].ctx.pc, k.pds[1].ctx.x[8]), (0x20_0200, sys::PP_CALL));
}

#[test]
fn a_late_budget_timer_charges_the_overrun() {
    let mut greedy = spec(5);
    greedy.budget = 200;
    greedy.period = 1000;
    let (mut k, mut p) = boot(vec![greedy, spec(1)], &[]);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, Some(200));
    // The timer arrives 1 100 ticks late: greedy ran 1 300 = 6.5 budgets, so it waits until
    // 6.5 periods have passed since its period began.
    p.now = 1300;
    k.timer_expired();
    assert_eq!(k.schedule(&mut p), Some(1));
    assert_eq!(p.timer, Some(6500));
    p.now = 6500;
    k.timer_expired();
    assert_eq!(k.schedule(&mut p), Some(0));
}

#[test]
fn a_preempted_time_slice_keeps_what_is_left_of_it() {
    // PDs 0 and 1 share priority 5 on 1 000-tick slices; PD 2 (priority 9) preempts PD 0 for
    // longer than a slice: PD 0 then finishes its own slice, not a fresh one.
    let (mut k, mut p) = boot(vec![spec(5), spec(5), spec(9)], &[]);
    assert_eq!(k.schedule(&mut p), Some(2));
    recv(&mut k, &mut p, 2);
    assert_eq!(k.schedule(&mut p), Some(0));
    p.now = 400;
    // (Woken as an event would: ready at its priority.)
    k.pds[2].state = State::Ready;
    k.runq.push_back(2, 9);
    assert_eq!(k.schedule(&mut p), Some(2));
    p.now = 3000;
    recv(&mut k, &mut p, 2);
    assert_eq!(k.schedule(&mut p), Some(0));
    assert_eq!(p.timer, Some(3600), "600 ticks of its slice were left");
}
