//! The fork holder of the featherweight-process system tests. Its name picks the test:
//!
//! - `basic-N`: forks N instances of `fwp_counter` (fork id 0), calls each twice (answers 1001
//!   then 1002: every instance has its own copy of the snapshot's counter), destroys them all and
//!   checks the kernel's free frames are back where they started; prints fork/destroy latency
//!   (median and p99 over the N, in instructions under `-icount shift=0`) and memory per instance.
//! - `cycles-N`: N fork/call/destroy cycles; free frames must come back exactly.
//! - `quota`: fork id 0 allows 4 instances, fork id 1 a memory quota of 2 instances: the next
//!   fork is refused (QuotaExceeded) with free memory unchanged, and works again after a destroy.
//! - `spin`: an instance spins forever inside a call (see `fwp_witness`).
//! - `hostile`: instances that read a wild address and write to their code are reported to
//!   `instance_fault` and destroyed; the others keep answering.
#![no_std]
#![no_main]


use edgeos_microkit::{
    debug_free_frames, debug_println, get_mr, pd_name, protection_domain, Fork, ForkError, Handler, Infallible, Instance,
    MessageInfo,
};
use edgeos_system_test_pds::{check, fail, pass};

const COUNTERS: Fork = Fork::new(0);
const SMALL: Fork = Fork::new(1);
const MAX: usize = 1000;

use edgeos_microkit::{counter, counter_frequency as frequency};

/// Counter ticks to nanoseconds (= instructions under -icount shift=0).
fn ns(ticks: u64) -> u64 {
    ticks * 1_000_000_000 / frequency()
}

fn ask(fork: Fork, i: Instance) -> u64 {
    match fork.call(i, MessageInfo::new(0, 0)) {
        Ok(reply) if reply.label() == 0 => get_mr(0),
        Ok(reply) => fail(format_args!("instance {} answered label {}", i.index(), reply.label())),
        Err(e) => fail(format_args!("call to instance {}: {e}", i.index())),
    }
}

fn fork_one(fork: Fork) -> Instance {
    match fork.fork() {
        Ok(i) => i,
        Err(e) => fail(format_args!("fork: {e}")),
    }
}

/// Sorts and returns (median, p99).
fn stats(v: &mut [u64]) -> (u64, u64) {
    v.sort_unstable();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

fn basic(n: usize) {
    let free0 = debug_free_frames();
    let mut ids = [Instance::new(0); MAX];
    let mut fork_t = [0u64; MAX];
    let mut destroy_t = [0u64; MAX];
    for k in 0..n {
        let t0 = counter();
        ids[k] = fork_one(COUNTERS);
        fork_t[k] = counter() - t0;
    }
    let per_instance = (free0 - debug_free_frames()) * 4096 / n as u64;
    for (round, want) in [(1, 1001), (2, 1002)] {
        for &i in &ids[..n] {
            let v = ask(COUNTERS, i);
            check!(v == want, "round {round}: instance {} answered {v}, expected {want}", i.index());
        }
    }
    // Recycle: each instance back to the snapshot (its counter answers 1001 again).
    let mut recycle_t = [0u64; MAX];
    for k in 0..n {
        let t0 = counter();
        if let Err(e) = COUNTERS.recycle(ids[k]) {
            fail(format_args!("recycle {}: {e}", ids[k].index()));
        }
        recycle_t[k] = counter() - t0;
        let v = ask(COUNTERS, ids[k]);
        check!(v == 1001, "a recycled instance answered {v}, expected 1001");
    }
    for k in 0..n {
        let t0 = counter();
        if let Err(e) = COUNTERS.destroy(ids[k]) {
            fail(format_args!("destroy {}: {e}", ids[k].index()));
        }
        destroy_t[k] = counter() - t0;
    }
    check!(COUNTERS.destroy(ids[0]) == Err(ForkError::InvalidChild), "double destroy accepted");
    let free1 = debug_free_frames();
    check!(free1 == free0, "free frames {free0} before, {free1} after");
    // A complete start: fork, first call answered, destroy (100 times).
    let rounds = n.min(100);
    let mut start_t = [0u64; 100];
    for t in start_t[..rounds].iter_mut() {
        let t0 = counter();
        let i = fork_one(COUNTERS);
        let v = ask(COUNTERS, i);
        let _ = COUNTERS.destroy(i);
        *t = counter() - t0;
        check!(v == 1001, "a fresh instance answered {v}");
    }
    check!(debug_free_frames() == free0, "free frames after the start rounds");
    let (sm, sp) = stats(&mut start_t[..rounds]);
    let (fm, fp) = stats(&mut fork_t[..n]);
    let (dm, dp) = stats(&mut destroy_t[..n]);
    let (rm, rp) = stats(&mut recycle_t[..n]);
    debug_println!("fwp: {n} instances, each answered 1001 then 1002; free frames back to {free0}");
    debug_println!("bench: fork: median {} p99 {} instructions", ns(fm), ns(fp));
    debug_println!("bench: destroy: median {} p99 {} instructions", ns(dm), ns(dp));
    debug_println!("bench: recycle: median {} p99 {} instructions", ns(rm), ns(rp));
    debug_println!("bench: start (fork + first call + destroy): median {} p99 {} instructions", ns(sm), ns(sp));
    debug_println!("bench: memory per instance: {per_instance} bytes");
}

fn cycles(n: usize) {
    let free0 = debug_free_frames();
    let t0 = counter();
    for k in 0..n {
        let i = fork_one(COUNTERS);
        if k % 1000 == 0 {
            let v = ask(COUNTERS, i);
            check!(v == 1001, "cycle {k}: answered {v}");
        }
        if let Err(e) = COUNTERS.destroy(i) {
            fail(format_args!("cycle {k}: destroy: {e}"));
        }
    }
    let per = ns(counter() - t0) / n as u64;
    let free1 = debug_free_frames();
    check!(free1 == free0, "free frames {free0} before {n} cycles, {free1} after");
    debug_println!("fwp: {n} fork/destroy cycles, free frames back to {free0}");
    debug_println!("bench: fork+destroy cycle: {per} instructions");
}

fn quota() {
    let free0 = debug_free_frames();
    let mut ids = [Instance::new(0); 4];
    for id in ids.iter_mut() {
        *id = fork_one(COUNTERS);
    }
    let free1 = debug_free_frames();
    check!(COUNTERS.fork() == Err(ForkError::QuotaExceeded), "5th fork over max_instances=4 accepted");
    check!(debug_free_frames() == free1, "a refused fork kept memory");
    check!(COUNTERS.destroy(ids[1]).is_ok(), "destroy");
    ids[1] = fork_one(COUNTERS);
    check!(ask(COUNTERS, ids[1]) == 1001, "refork answers");
    let a = fork_one(SMALL);
    let b = fork_one(SMALL);
    let free2 = debug_free_frames();
    check!(SMALL.fork() == Err(ForkError::QuotaExceeded), "fork over the memory quota accepted");
    check!(debug_free_frames() == free2, "a fork refused for memory kept memory");
    check!(ask(SMALL, a) == 1001 && ask(SMALL, b) == 1001, "small instances answer");
    check!(COUNTERS.fork() == Err(ForkError::QuotaExceeded), "still at max_instances");
    check!(Fork::new(5).fork() == Err(ForkError::NotGranted), "fork without a grant accepted");
    for i in ids {
        check!(COUNTERS.destroy(i).is_ok(), "destroy");
    }
    check!(SMALL.destroy(a).is_ok() && SMALL.destroy(b).is_ok(), "destroy");
    check!(debug_free_frames() == free0, "free frames back");
    debug_println!("fwp: quotas enforced (max_instances and memory), nothing leaked");
}

struct Manager {
    mode: Mode,
    good: [Instance; 8],
    hostile: Option<Instance>,
    stage: u32,
    free0: u64,
}

#[derive(PartialEq)]
enum Mode {
    Done,
    Hostile,
}

/// The first fork of a template drops its all-zero pages for good (the kernel's compaction):
/// fork and destroy once so that free memory is measured from a steady state.
fn warm_up() {
    for fork in [COUNTERS, SMALL] {
        if let Ok(i) = fork.fork() {
            let _ = fork.destroy(i);
        }
    }
}

#[protection_domain]
fn init() -> Manager {
    let name = pd_name().unwrap_or("?");
    warm_up();
    let mut m = Manager { mode: Mode::Done, good: [Instance::new(0); 8], hostile: None, stage: 0, free0: 0 };
    if let Some(n) = name.strip_prefix("basic-") {
        basic(n.parse().unwrap_or(1).min(MAX));
        pass("featherweight processes: fork, call, destroy");
    } else if let Some(n) = name.strip_prefix("cycles-") {
        cycles(n.parse().unwrap_or(1));
        pass("featherweight processes: fork/destroy cycles");
    } else if name == "quota" {
        quota();
        pass("featherweight processes: quotas");
    } else if name == "spin" {
        // The spinner never answers: this PD stays blocked; `fwp_witness` (lower priority)
        // passes the test if the spinner's budget lets it run.
        let good = fork_one(COUNTERS);
        check!(ask(COUNTERS, good) == 1001, "first answer");
        let spinner = fork_one(COUNTERS);
        debug_println!("fwp: instance {} spins", spinner.index());
        let r = COUNTERS.call(spinner, MessageInfo::new(3, 0));
        fail(format_args!("the spinning instance answered {r:?}"));
    } else if name == "hostile" {
        m.mode = Mode::Hostile;
        m.free0 = debug_free_frames();
        for g in m.good.iter_mut() {
            *g = fork_one(COUNTERS);
            check!(ask(COUNTERS, *g) == 1001, "first answer");
        }
        m.next_hostile();
    } else {
        fail(format_args!("unknown mode {name}"));
    }
    m
}

impl Manager {
    /// Forks the next hostile instance and has it misbehave (stage 0: wild read, 1: write to
    /// its code); the call fails and the fault arrives in `instance_fault`.
    fn next_hostile(&mut self) {
        let h = fork_one(COUNTERS);
        self.hostile = Some(h);
        let r = COUNTERS.call(h, MessageInfo::new(1 + self.stage as u64, 0));
        check!(r == Err(ForkError::InvalidState), "a faulting instance's call returned {r:?}");
    }
}

impl Handler for Manager {
    type Error = Infallible;

    fn instance_fault(&mut self, fork: Fork, instance: Instance, msg_info: MessageInfo) -> Result<(), Infallible> {
        check!(self.mode == Mode::Hostile, "unexpected instance fault");
        check!(fork == COUNTERS && Some(instance) == self.hostile, "fault of instance {} of fork {}", instance.index(), fork.index());
        let f = msg_info.fault();
        debug_println!("fwp: instance {} faulted: {f:?}", instance.index());
        let again = COUNTERS.call(instance, MessageInfo::new(0, 0));
        check!(again == Err(ForkError::InvalidState), "a call to a faulted instance returned {again:?}");
        check!(COUNTERS.destroy(instance).is_ok(), "destroy of the faulted instance");
        self.stage += 1;
        for g in self.good {
            let v = ask(COUNTERS, g);
            check!(v == 1001 + self.stage as u64, "instance {} answered {v} after stage {}", g.index(), self.stage);
        }
        if self.stage < 2 {
            self.next_hostile();
            return Ok(());
        }
        for g in self.good {
            check!(COUNTERS.destroy(g).is_ok(), "destroy");
        }
        check!(debug_free_frames() == self.free0, "free frames back");
        pass("featherweight processes: hostile instances contained");
    }
}
