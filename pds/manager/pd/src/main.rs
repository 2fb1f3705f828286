//! The featherweight-process manager PD (`docs/featherweight.md`, "Manager (pds/manager)").
//!
//! It holds the `<fork>` grants of the tenant templates and decides, with
//! `edgeos_manager_core::policy`, which instance serves each new flow the network virtualiser
//! asks about (protected calls, `edgeos_manager_core::api`): the key's instance, one from the
//! service's pool, or a fresh fork. It pre-forks the pools at start-up and refills them when the
//! virtualiser notifies it, reclaims idle instances, and retires faulted ones through the
//! dead-instance protocol (notify the virtualiser, destroy after its ACK_DEAD). After every
//! change it rewrites its statistics region (`edgeos_manager_core::stats`).
//!
//! Description variables:
//!
//! | variable | what |
//! |---|---|
//! | `services_config_vaddr`, `services_config_size` | the services file (`setvar_vaddr` / `setvar_size` of a prefilled region); size 0: no services |
//! | `manager_stats_vaddr`, `manager_stats_size` | the statistics region (optional) |
//! | `virtualiser_channel` | the channel the virtualiser calls on and is notified on (`setvar_id`) |
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

use edgeos_manager_core::api::{self, Kernel, MAX_MRS};
use edgeos_manager_core::policy::{ForkFailure, InstanceRef, Manager};
use edgeos_manager_core::{config, stats};
use edgeos_microkit::{
    debug_println, memory_region_symbol, protection_domain, set_mr, var, with_msg_regs, Channel, ChannelSet, DeferredAction,
    Fork, ForkError, Handler, Infallible, Instance, MessageInfo,
};

/// The longest services file read (the rest of a larger region is ignored).
const CONFIG_MAX: usize = 0x10000;

use edgeos_microkit::{counter, counter_frequency as frequency};

/// The kernel side of the policy: fork and destroy system calls, the counter.
struct Sys;

impl Kernel for Sys {
    fn now(&mut self) -> u64 {
        counter()
    }

    fn fork(&mut self, fork: u8) -> Result<u32, ForkFailure> {
        match Fork::new(fork as usize).fork() {
            Ok(i) => Ok(i.index()),
            Err(ForkError::QuotaExceeded) => Err(ForkFailure::Quota),
            // The template has not reached its checkpoint (it runs `init` at its own, lower,
            // priority): the pools fill on a later event.
            Err(ForkError::InvalidState) => Err(ForkFailure::NotReady),
            Err(e) => {
                debug_println!("manager: fork from grant {fork}: {e}");
                Err(ForkFailure::Other)
            }
        }
    }

    fn destroy(&mut self, instance: InstanceRef) {
        if let Err(e) = Fork::new(instance.fork as usize).destroy(Instance::new(instance.index)) {
            debug_println!("manager: destroy of instance {} of grant {}: {e}", instance.index, instance.fork);
        }
    }
}

/// The statistics region: written with a sequence word, odd while the record is rewritten.
struct StatsRegion {
    base: NonNull<u8>,
    size: usize,
    buffer: Vec<u8>,
    sequence: u32,
}

impl StatsRegion {
    fn write(&mut self, m: &mut Manager) {
        self.sequence = self.sequence.wrapping_add(2);
        let Some((n, written)) = m.encode_stats_update(self.sequence, counter(), &mut self.buffer) else { return };
        let base = self.base.as_ptr();
        // SAFETY: the region is mapped read-write into this PD for its whole life
        // (`manager_stats_size` bytes, checked against `n` when the buffer was sized), and only
        // this PD writes it; readers (a host tool through QEMU) see the sequence word.
        unsafe {
            let seq = base.add(stats::SEQUENCE_OFFSET) as *mut u32;
            seq.write_volatile(self.sequence.wrapping_sub(1));
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            // The header but its sequence word, and the service records that changed, in
            // plain copies (only this PD writes).
            let src = self.buffer.as_ptr();
            core::ptr::copy_nonoverlapping(src, base, stats::SEQUENCE_OFFSET);
            let rest = stats::SEQUENCE_OFFSET + 4;
            core::ptr::copy_nonoverlapping(src.add(rest), base.add(rest), stats::HEADER_SIZE - rest);
            let mut bits = written;
            while bits != 0 {
                let at = stats::HEADER_SIZE + bits.trailing_zeros() as usize * stats::SERVICE_RECORD_SIZE;
                if at + stats::SERVICE_RECORD_SIZE <= n {
                    core::ptr::copy_nonoverlapping(src.add(at), base.add(at), stats::SERVICE_RECORD_SIZE);
                }
                bits &= bits - 1;
            }
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            seq.write_volatile(self.sequence);
        }
        debug_assert!(n <= self.size);
    }
}

struct ManagerPd {
    manager: Manager,
    kernel: Sys,
    virtualiser: Option<Channel>,
    stats: Option<StatsRegion>,
    /// Notify the virtualiser with the next wait (the dead list grew).
    notify_virtualiser: bool,
}

impl ManagerPd {
    fn refill(&mut self) -> usize {
        api::refill(&mut self.manager, &mut self.kernel)
    }

    fn publish(&mut self) {
        if let Some(s) = self.stats.as_mut() {
            s.write(&mut self.manager);
        }
    }

    /// Idle reclaim; a grown dead list is announced to the virtualiser.
    fn tick(&mut self) {
        if self.manager.tick(counter()) > 0 {
            self.notify_virtualiser = true;
        }
    }
}

fn read_config() -> config::Services {
    let size = *var!(services_config_size: usize = 0);
    if size == 0 {
        debug_println!("manager: no services configuration (services_config_size is 0): no services");
        return config::Services::default();
    }
    let base = memory_region_symbol!(services_config_vaddr: *mut u8);
    let n = size.min(CONFIG_MAX);
    let mut copy = vec![0u8; n];
    for (i, b) in copy.iter_mut().enumerate() {
        // SAFETY: the region is mapped (read-only) for `size` bytes; it is copied byte by byte
        // into private memory before parsing, so its contents are only ever untrusted data.
        *b = unsafe { base.as_ptr().add(i).read_volatile() };
    }
    match config::parse(&copy) {
        Ok(s) => s,
        Err(e) => panic!("manager: {e}"),
    }
}

fn open_stats(services: usize) -> Option<StatsRegion> {
    let size = *var!(manager_stats_size: usize = 0);
    if size == 0 {
        return None;
    }
    let base = memory_region_symbol!(manager_stats_vaddr: *mut u8);
    let needed = stats::record_size(services);
    if size < needed {
        debug_println!("manager: the stats region is {size:#x} bytes; {services} services need {needed:#x}: no statistics");
        return None;
    }
    Some(StatsRegion { base, size, buffer: vec![0; needed], sequence: 0 })
}

#[protection_domain(heap_size = 0x100000)]
fn init() -> ManagerPd {
    let services = read_config();
    let freq = frequency();
    let virtualiser = match *var!(virtualiser_channel: usize = usize::MAX) {
        usize::MAX => None,
        ch => Some(Channel::new(ch)),
    };
    let mut pd = ManagerPd {
        manager: Manager::new(&services, freq),
        kernel: Sys,
        virtualiser,
        stats: open_stats(services.len()),
        notify_virtualiser: false,
    };
    let t0 = counter();
    let forks = pd.refill();
    let t = counter() - t0;
    for (id, s) in services.iter() {
        let st = pd.manager.stats(id).expect("every service has statistics");
        debug_println!(
            "manager: service {} (fork {}, ports {}-{} {}, policy {}, idle {} s): pool {}/{}",
            s.name,
            s.fork,
            s.port_lo,
            s.port_hi,
            s.protocols_text(),
            s.policy.name(),
            s.idle_secs,
            st.pooled,
            s.pool
        );
    }
    debug_println!(
        "manager: {} services, {forks} instances pre-forked in {} us",
        services.len(),
        t * 1_000_000 / freq.max(1)
    );
    let short = services.iter().any(|(id, s)| pd.manager.stats(id).is_some_and(|st| st.pooled < s.pool));
    if short {
        debug_println!("manager: templates not ready yet (lower priority): pools fill on the virtualiser's first notification");
    }
    pd.publish();
    pd
}

impl Handler for ManagerPd {
    type Error = Infallible;

    fn protected(&mut self, _channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        let retired = self.manager.retired_total();
        let count = msg_info.count().min(MAX_MRS);
        let request = with_msg_regs(|mr| api::decode_request(msg_info.label(), &mr[..count.min(mr.len())]));
        let answer = request.and_then(|r| api::serve(&mut self.manager, &mut self.kernel, &r));
        let reply = api::encode_reply(&answer);
        for (i, &v) in reply.regs().iter().enumerate() {
            set_mr(i, v);
        }
        if self.manager.retired_total() != retired {
            self.notify_virtualiser = true;
        }
        self.publish();
        Ok(MessageInfo::new(reply.label, reply.count))
    }

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        // The virtualiser's "done with a batch": time to refill pools out of its way.
        self.refill();
        self.tick();
        self.publish();
        Ok(())
    }

    fn instance_fault(&mut self, fork: Fork, instance: Instance, msg_info: MessageInfo) -> Result<(), Infallible> {
        let r = InstanceRef::new(fork.index() as u8, instance.index());
        debug_println!("manager: instance {} of fork {} faulted: {:?}", r.index, r.fork, msg_info.fault());
        if api::fault(&mut self.manager, &mut self.kernel, r) {
            self.notify_virtualiser = true;
        }
        self.tick();
        self.publish();
        Ok(())
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        if !core::mem::take(&mut self.notify_virtualiser) {
            return None;
        }
        self.virtualiser.map(DeferredAction::new_notify)
    }
}
